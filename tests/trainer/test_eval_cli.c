/* End to end `grpo eval`: a short SFT of the quickstart model, then an
 * evaluation on the synthetic set and a slice of GSM8K from ../shared/data.
 *   - summary.json has every set with the requested n and k values;
 *   - samples.jsonl has one line per sample, and its `correct` fields agree
 *     with the verifier and with summary.json's pass@1 and maj@k;
 *   - 1 rank and 2 ranks (mpirun) write identical samples.jsonl (keyed RNG);
 *   - an unknown set fails with a message that lists the known ones.
 * Args: the mpiexec binary. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "reward/math_verify.h"
#include "test.h"
#include "trainer/eval.h"

static char g_grpo[2048], g_dir[1024], g_mpiexec[1024];
static const int N = 4, PROBLEMS = 6;

static int run(const char *cmd) {
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp_text(const char *path) {
  char *buf = NULL;
  size_t n = 0;
  grpo_error err = {0};
  if (grpo_read_file(path, 1 << 28, &buf, &n, &err)) return NULL;
  return buf;
}

/* Removes every "mean_logprob":<number> in place. */
static void strip_logprobs(char *text) {
  const char *key = "\"mean_logprob\":";
  for (char *p = text ? strstr(text, key) : NULL; p; p = strstr(p, key)) {
    char *end = p + strlen(key);
    while (*end && *end != ',' && *end != '}') end++;
    memmove(p, end, strlen(end) + 1);
  }
}

static const char *COMMON =
    "model.max_position_embeddings=1024 data.max_prompt_length=900 rollout.max_completion_length=40";

static int eval_cmd(const char *launcher, const char *out, const char *extra) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "%s '%s' eval configs/quickstart.yaml --ckpt '%s/sft/checkpoints' --sets arithmetic,gsm8k "
           "--data-dir ../shared/data --n %d --k 1,2,4 --max-problems %d --out '%s/%s' %s %s "
           "logging.progress=false > '%s/%s.log' 2>&1",
           launcher, g_grpo, g_dir, N, PROBLEMS, g_dir, out, COMMON, extra, g_dir, out);
  return run(cmd);
}

TEST(eval_writes_consistent_summary_and_samples) {
  char cmd[8192], path[1200];
  snprintf(cmd, sizeof cmd,
           "'%s' sft configs/quickstart.yaml output_dir='%s/sft' trainer.sft_max_steps=60 %s "
           "logging.progress=false > '%s/sft.log' 2>&1",
           g_grpo, g_dir, COMMON, g_dir);
  CHECK_EQ_INT(run(cmd), 0);
  CHECK_EQ_INT(eval_cmd("", "one", ""), 0);
  snprintf(path, sizeof path, "%s/one/summary.json", g_dir);
  char *sum_text = slurp_text(path);
  CHECK(sum_text != NULL);
  cJSON *sum = sum_text ? cJSON_Parse(sum_text) : NULL;
  CHECK(sum != NULL);
  const cJSON *sets = cJSON_GetObjectItemCaseSensitive(sum, "sets");
  const char *names[] = {"arithmetic", "gsm8k"};
  snprintf(path, sizeof path, "%s/one/samples.jsonl", g_dir);
  char *lines = slurp_text(path);
  CHECK(lines != NULL);
  for (int si = 0; si < 2 && sets && lines; si++) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(sets, names[si]);
    CHECK_MSG(s != NULL, "set %s missing from summary.json", names[si]);
    if (!s) continue;
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(s, "problems")->valueint, PROBLEMS);
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(s, "samples_per_problem")->valueint, N);
    const cJSON *maj = cJSON_GetObjectItemCaseSensitive(s, "maj@k");
    CHECK(cJSON_GetArraySize(maj) == 3 && cJSON_GetObjectItemCaseSensitive(maj, "4"));
    /* recompute from the samples: every line re-verified */
    int count = 0, correct = 0, by_problem[16][8], cls[16][8];
    memset(by_problem, 0, sizeof by_problem);
    for (char *l = lines; l && *l;) {
      char *nl = strchr(l, '\n');
      if (nl) *nl = 0;
      cJSON *o = cJSON_Parse(l);
      CHECK(o != NULL);
      const char *set = o ? cJSON_GetObjectItemCaseSensitive(o, "set")->valuestring : "";
      if (o && strcmp(set, names[si]) == 0) {
        int p = cJSON_GetObjectItemCaseSensitive(o, "problem")->valueint;
        int j = cJSON_GetObjectItemCaseSensitive(o, "sample")->valueint;
        int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "correct"));
        const char *gold = cJSON_GetObjectItemCaseSensitive(o, "gold")->valuestring;
        const char *completion = cJSON_GetObjectItemCaseSensitive(o, "completion")->valuestring;
        reward_math_verdict v;
        grpo_error err = {0};
        CHECK_EQ_INT(reward_math_verify(gold, completion, NULL, &v, &err), 0);
        CHECK_MSG(v.correct == ok, "%s problem %d sample %d: verifier %d, samples.jsonl %d", set, p, j, v.correct, ok);
        if (p < 16 && j < 8) {
          by_problem[p][j] = ok;
          cls[p][j] = cJSON_GetObjectItemCaseSensitive(o, "answer_class")->valueint;
        }
        count++;
        correct += ok;
      }
      cJSON_Delete(o);
      if (nl) *nl = '\n';
      l = nl ? nl + 1 : NULL;
    }
    CHECK_EQ_INT(count, N * PROBLEMS);
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(s, "pass@1")->valuedouble, (double)correct / count, 1e-6);
    /* maj@4 by hand from the classes */
    int majority = 0;
    for (int p = 0; p < PROBLEMS; p++) {
      int votes[8] = {0}, best = -1;
      for (int j = 0; j < N; j++)
        if (cls[p][j] >= 0) votes[cls[p][j]]++;
      for (int j = 0; j < N; j++)
        if (cls[p][j] >= 0 && (best < 0 || votes[cls[p][j]] > votes[cls[p][best]])) best = j;
      majority += best >= 0 && by_problem[p][best];
    }
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(maj, "4")->valuedouble, (double)majority / PROBLEMS, 1e-6);
  }
  cJSON_Delete(sum);
  free(sum_text);

  /* the same samples from two ranks */
  char launcher[1200];
  snprintf(launcher, sizeof launcher, "'%s' -np 2", g_mpiexec);
  CHECK_EQ_INT(eval_cmd(launcher, "two", ""), 0);
  snprintf(path, sizeof path, "%s/two/samples.jsonl", g_dir);
  char *lines2 = slurp_text(path);
  /* tokens and texts are identical; logprobs may differ in the last bits
   * (another batch composition sums in another order) */
  strip_logprobs(lines);
  strip_logprobs(lines2);
  CHECK(lines && lines2 && strcmp(lines, lines2) == 0);
  free(lines);
  free(lines2);
}

/* Adaptive allocation and PRM-guided beam search (a random PRM over the byte
 * vocabulary, tests/fixtures/prm_byte): their rows exist, the adaptive row
 * spends no more samples than the uniform one, the search never exceeds its
 * token budget, and 1 and 2 ranks agree sample for sample. Runs after the
 * first test (its SFT checkpoint). */
TEST(adaptive_and_search_rows) {
  const char *extra = "eval.adaptive=true eval.adaptive_pilot=2 eval.search=beam eval.prm_path=tests/fixtures/prm_byte "
                      "'eval.prm_step_token=\"|\"' 'eval.step_separator=\". \"' eval.search_n=4 eval.beam_width=2 "
                      "eval.search_max_steps=4 eval.search_max_step_tokens=12 eval.search_token_budget=100 "
                      "eval.search_by_difficulty=true";
  CHECK_EQ_INT(eval_cmd("", "tts1", extra), 0);
  char launcher[1200], path[1200];
  snprintf(launcher, sizeof launcher, "'%s' -np 2", g_mpiexec);
  CHECK_EQ_INT(eval_cmd(launcher, "tts2", extra), 0);
  snprintf(path, sizeof path, "%s/tts1/summary.json", g_dir);
  char *text = slurp_text(path);
  cJSON *sum = text ? cJSON_Parse(text) : NULL;
  const cJSON *sets = cJSON_GetObjectItemCaseSensitive(sum, "sets");
  const cJSON *uni = cJSON_GetObjectItemCaseSensitive(sets, "arithmetic");
  const cJSON *ada = cJSON_GetObjectItemCaseSensitive(sets, "arithmetic/adaptive");
  const cJSON *beam = cJSON_GetObjectItemCaseSensitive(sets, "arithmetic/beam");
  CHECK(uni && ada && beam);
  if (uni && ada && beam) {
    CHECK(cJSON_GetObjectItemCaseSensitive(ada, "total_samples")->valuedouble <=
          cJSON_GetObjectItemCaseSensitive(uni, "total_samples")->valuedouble);
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(beam, "problems")->valueint, PROBLEMS);
    /* search tokens are its compute: at most the budget per problem */
    /* by difficulty: at most 1.5x the budget on the hardest problems */
    CHECK(cJSON_GetObjectItemCaseSensitive(beam, "total_tokens")->valuedouble <= 150.0 * PROBLEMS);
    CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(beam, "best_of_n"), "prm") != NULL);
  }
  cJSON_Delete(sum);
  free(text);
  snprintf(path, sizeof path, "%s/tts1/samples.jsonl", g_dir);
  char *a = slurp_text(path);
  snprintf(path, sizeof path, "%s/tts2/samples.jsonl", g_dir);
  char *b = slurp_text(path);
  CHECK(a && strstr(a, "\"mode\":\"search\"") && strstr(a, "\"prm_score\"") && strstr(a, "\"strategy\":"));
  strip_logprobs(a);
  strip_logprobs(b);
  CHECK(a && b && strcmp(a, b) == 0);
  free(a);
  free(b);
}

/* The revise loop (a row and N x problems "revise" lines per round) and
 * ThreadWeaver generation (rollout.parallel_threads: this model never opens
 * a <Parallel> block, so the critical path is every token: speedup 1). */
TEST(revise_rounds_and_parallel_threads) {
  CHECK_EQ_INT(eval_cmd("", "rev", "eval.revise_rounds=2"), 0);
  char path[1200];
  snprintf(path, sizeof path, "%s/rev/samples.jsonl", g_dir);
  char *lines = slurp_text(path);
  int revise = 0, round2 = 0;
  for (const char *p = lines ? strstr(lines, "\"mode\":\"revise\"") : NULL; p; p = strstr(p + 1, "\"mode\":\"revise\""))
    revise++;
  for (const char *p = lines ? strstr(lines, "\"round\":2") : NULL; p; p = strstr(p + 1, "\"round\":2")) round2++;
  CHECK_EQ_INT(revise, 2 * 2 * N * PROBLEMS); /* 2 sets x 2 rounds */
  CHECK_EQ_INT(round2, 2 * N * PROBLEMS);
  free(lines);
  snprintf(path, sizeof path, "%s/rev/summary.json", g_dir);
  char *text = slurp_text(path);
  cJSON *sum = text ? cJSON_Parse(text) : NULL;
  const cJSON *sets = cJSON_GetObjectItemCaseSensitive(sum, "sets");
  CHECK(cJSON_GetObjectItemCaseSensitive(sets, "arithmetic/revise1") &&
        cJSON_GetObjectItemCaseSensitive(sets, "gsm8k/revise2"));
  cJSON_Delete(sum);
  free(text);

  CHECK_EQ_INT(eval_cmd("", "par", "rollout.parallel_threads=true"), 0);
  snprintf(path, sizeof path, "%s/par/summary.json", g_dir);
  text = slurp_text(path);
  sum = text ? cJSON_Parse(text) : NULL;
  const cJSON *ar = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sum, "sets"), "arithmetic");
  CHECK(ar != NULL);
  if (ar) {
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(ar, "speedup")->valuedouble, 1.0, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(ar, "mean_critical_path_tokens")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(ar, "mean_completion_tokens")->valuedouble, 1e-9);
  }
  cJSON_Delete(sum);
  free(text);
}

TEST(unknown_set_is_a_clear_error) {
  char cmd[4096], path[1200];
  snprintf(cmd, sizeof cmd, "'%s' eval configs/quickstart.yaml --sets gsm9k --out '%s/bad' > '%s/bad.log' 2>&1",
           g_grpo, g_dir, g_dir);
  CHECK_EQ_INT(run(cmd), 1);
  snprintf(path, sizeof path, "%s/bad.log", g_dir);
  char *log = slurp_text(path);
  CHECK(log && strstr(log, "gsm9k") && strstr(log, "math500"));
  free(log);
}

int main(int argc, char **argv) {
  const char *build = getenv("GRPO_BUILD_DIR");
  snprintf(g_grpo, sizeof g_grpo, "%s/cli/grpo", build ? build : "build");
  snprintf(g_mpiexec, sizeof g_mpiexec, "%s", argc > 1 ? argv[1] : "mpirun");
  if (access("../shared/data/gsm8k/test.jsonl", R_OK) != 0) {
    fprintf(stderr, "skipped: ../shared/data is not beside the checkout\n");
    return 77;
  }
  snprintf(g_dir, sizeof g_dir, "tests/tmp/eval_cli_%d", (int)getpid());
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
  if (run(cmd)) return 1;
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  RUN(eval_writes_consistent_summary_and_samples);
  RUN(adaptive_and_search_rows);
  RUN(revise_rounds_and_parallel_threads);
  RUN(unknown_set_is_a_clear_error);
  int rc = test_summary();
  if (rc == 0) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    run(cmd);
  }
  return rc;
}
