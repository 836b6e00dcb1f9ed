/* trainer/session + generate: `grpo generate` end to end on the built-in
 * model with the byte tokenizer: every usable row gets n completions, bad
 * rows are skipped, and the tokens do not depend on the slot count. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "core/log.h"
#include "test.h"
#include "trainer/generate.h"

static const char *BASE[] = {"model.hidden_size=64", "model.num_layers=2", "model.num_heads=4",
                             "model.num_kv_heads=2", "model.intermediate_size=128",
                             "rollout.max_completion_length=12", "data.max_prompt_length=48",
                             "seed=3", NULL, NULL};

static char *run(const char *prompts, int n, const char *extra, int *rc_out) {
  grpo_config cfg;
  grpo_error err = {0};
  const char *over[10];
  int k = 0;
  for (; BASE[k]; k++) over[k] = BASE[k];
  if (extra) over[k++] = extra;
  CHECK_EQ_INT(grpo_config_load(&cfg, NULL, k, over, &err), GRPO_OK);
  trainer_session s;
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  int rc = trainer_session_open(&s, &cfg, 0, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  if (!rc) {
    rc = trainer_generate_file(&s, prompts, n, out, &err);
    trainer_session_close(&s);
  }
  fclose(out);
  grpo_config_free(&cfg);
  *rc_out = rc;
  return buf;
}

TEST(generate_end_to_end) {
  char path[] = "/tmp/grpo_prompts_XXXXXX";
  int fd = mkstemp(path);
  const char *rows = "{\"prompt\": \"Compute 2 + 3.\"}\n{\"question\": \"7 * 6?\"}\nnot json\n{\"other\": 1}\n"
                     "{\"problem\": \"1 + 1\"}\n";
  CHECK(write(fd, rows, strlen(rows)) == (ssize_t)strlen(rows));
  close(fd);
  grpo_log_set_level(GRPO_LOG_ERROR);
  int rc;
  char *a = run(path, 3, "rollout.max_batch_size=16", &rc);
  CHECK_EQ_INT(rc, GRPO_OK);
  char *b = run(path, 3, "rollout.max_batch_size=2", &rc);
  CHECK_EQ_INT(rc, GRPO_OK);
  /* 3 usable rows x 3 samples, same tokens whatever the slot count */
  int lines = 0;
  char *sa, *sb, *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
  for (; la && lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb)) {
    cJSON *x = cJSON_Parse(la), *y = cJSON_Parse(lb);
    CHECK(x && y);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(x, "completion")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(x, "tokens")) ==
          cJSON_GetArraySize(cJSON_GetObjectItem(x, "logprobs")));
    char *tx = cJSON_PrintUnformatted(cJSON_GetObjectItem(x, "tokens"));
    char *ty = cJSON_PrintUnformatted(cJSON_GetObjectItem(y, "tokens"));
    CHECK_STR(tx, ty);
    CHECK_EQ_INT(cJSON_GetObjectItem(x, "index")->valueint, cJSON_GetObjectItem(y, "index")->valueint);
    free(tx);
    free(ty);
    cJSON_Delete(x);
    cJSON_Delete(y);
    lines++;
  }
  CHECK_EQ_INT(lines, 9);
  free(a);
  free(b);
  char *c = run("/nonexistent/p.jsonl", 1, NULL, &rc);
  CHECK_EQ_INT(rc, GRPO_ENOTFOUND);
  free(c);
  unlink(path);
}

int main(void) {
  RUN(generate_end_to_end);
  return test_summary();
}
