/* grpo report: charts for the metrics present, one polyline per metric with
 * one point per step, a standalone SVG per chart, and clear errors. */
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "trainer/report.h"

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
  b[n] = 0;
  fclose(f);
  return b;
}

TEST(report_draws_the_metrics) {
  char dir[128], path[256];
  snprintf(dir, sizeof dir, "/tmp/grpo_report_test_%d", (int)getpid());
  mkdir(dir, 0777);
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *f = fopen(path, "w");
  for (int s = 1; s <= 5; s++)
    fprintf(f, "{\"step\": %d, \"data\": {\"reward\": %g, \"rewards/math/mean\": %g, \"grad_norm\": %g, \"kl\": null}}\n",
            s, 0.1 * s, 0.1 * s, 1.0 / s);
  fprintf(f, "{\"step\": 5, \"data\": {\"eval/gsm8k/accuracy\": 0.4}}\n{\"step\": 6, \"da"); /* torn last line */
  fclose(f);
  int n = 0;
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_report(dir, &n, &err), GRPO_OK);
  CHECK_EQ_INT(n, 3); /* reward, accuracy, optim */
  snprintf(path, sizeof path, "%s/report.html", dir);
  char *html = slurp(path);
  CHECK(html != NULL);
  if (html) {
    CHECK_EQ_INT(count(html, "<svg "), 3);
    CHECK_EQ_INT(count(html, "<polyline"), 4);
    CHECK(strstr(html, "data-metric=\"rewards/math/mean\"") != NULL);
    CHECK(strstr(html, "<script") == NULL); /* self-contained, static */
    /* 5 points in the reward line */
    const char *p = strstr(html, "data-metric=\"reward\" points=\"");
    CHECK(p != NULL);
    if (p) {
      p = strchr(p + 22, '"') + 1;
      int pts = 0;
      for (; *p != '"'; p++) pts += *p == ',';
      CHECK_EQ_INT(pts, 5);
    }
    free(html);
  }
  snprintf(path, sizeof path, "%s/charts/reward.svg", dir);
  CHECK(access(path, R_OK) == 0);
  CHECK_EQ_INT(trainer_report("/nonexistent/run", NULL, &err), GRPO_ENOTFOUND);
  CHECK(strstr(err.msg, "/nonexistent/run/metrics.jsonl") != NULL);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

/* grpo eval's summary alone: accuracy against k (pass@k and maj@k per set)
 * and maj@k against k x mean tokens, k on a log2 axis. */
TEST(report_draws_eval_curves) {
  char dir[128], path[256];
  snprintf(dir, sizeof dir, "/tmp/grpo_report_eval_%d", (int)getpid());
  mkdir(dir, 0777);
  snprintf(path, sizeof path, "%s/eval", dir);
  mkdir(path, 0777);
  snprintf(path, sizeof path, "%s/eval/summary.json", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"model\": \"m\", \"sets\": {\"gsm8k\": {\"pass@1\": 0.5, \"pass@k\": {\"1\": 0.5, \"2\": 0.6, \"4\": 0.7},"
        " \"maj@k\": {\"1\": 0.5, \"2\": 0.5, \"4\": 0.55}, \"mean_completion_tokens\": 100}}}\n", f);
  fclose(f);
  int n = 0;
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_report(dir, &n, &err), GRPO_OK);
  CHECK_EQ_INT(n, 2);
  snprintf(path, sizeof path, "%s/charts/eval_tokens.svg", dir);
  char *svg = slurp(path);
  CHECK(svg && strstr(svg, "data-metric=\"gsm8k maj@k\"") && strstr(svg, "tokens 400 (log scale)"));
  free(svg);
  snprintf(path, sizeof path, "%s/charts/eval_samples.svg", dir);
  svg = slurp(path);
  CHECK(svg && strstr(svg, "data-metric=\"gsm8k pass@k\"") && strstr(svg, "k 4 (log scale)"));
  /* k = 1, 2, 4 evenly spaced on the log axis: x = 60, 340, 620 */
  CHECK(svg && strstr(svg, "points=\"60.0,") && strstr(svg, " 340.0,") && strstr(svg, " 620.0,"));
  free(svg);
  /* a summary that is not one is an error naming it */
  snprintf(path, sizeof path, "%s/eval/summary.json", dir);
  f = fopen(path, "w");
  fputs("[1, 2]", f);
  fclose(f);
  CHECK(trainer_report(dir, &n, &err) != GRPO_OK);
  CHECK(strstr(err.msg, "eval/summary.json") != NULL);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

int main(void) {
  RUN(report_draws_the_metrics);
  RUN(report_draws_eval_curves);
  return test_summary();
}
