/* rollout/sampler: the filtered distributions equal transformers' logits
 * processors (tests/rollout/sampler_fixture.json), draws follow them, and
 * draws are keyed by (seed, step, prompt, sample, token) only. */
#include <cjson/cJSON.h>

#include "rollout/sampler.h"
#include "test.h"

static cJSON *g_fix;

static int load(void) {
  FILE *f = fopen(test_path("tests/rollout/sampler_fixture.json"), "rb");
  if (!f) return 0;
  static char buf[1 << 18];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  g_fix = cJSON_Parse(buf);
  return g_fix != NULL;
}

static void settings_of(const cJSON *c, rollout_sampling *s) {
  const cJSON *st = cJSON_GetObjectItem(c, "settings");
  s->temperature = (float)cJSON_GetObjectItem(st, "temperature")->valuedouble;
  s->top_p = (float)cJSON_GetObjectItem(st, "top_p")->valuedouble;
  s->top_k = cJSON_GetObjectItem(st, "top_k")->valueint;
  s->min_p = (float)cJSON_GetObjectItem(st, "min_p")->valuedouble;
  s->repetition_penalty = (float)cJSON_GetObjectItem(st, "repetition_penalty")->valuedouble;
}

TEST(distributions_match_transformers) {
  int V = cJSON_GetObjectItem(g_fix, "vocab")->valueint;
  int32_t hist[16];
  int nh = 0;
  const cJSON *h;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(g_fix, "history")) hist[nh++] = h->valueint;
  rollout_sampler_ws ws;
  CHECK_EQ_INT(rollout_sampler_ws_init(&ws, V, NULL), GRPO_OK);
  const cJSON *c;
  int k = 0;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(g_fix, "cases")) {
    rollout_sampling s;
    settings_of(c, &s);
    float logits[64];
    double probs[64];
    for (int v = 0; v < V; v++)
      logits[v] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(c, "logits"), v)->valuedouble;
    rollout_sampler_distribution(logits, V, &s, hist, nh, &ws, probs);
    for (int v = 0; v < V; v++) {
      double want = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "probs"), v)->valuedouble;
      CHECK_MSG(fabs(probs[v] - want) <= 1e-6, "case %d token %d: %.9g vs transformers %.9g", k, v,
                probs[v], want);
    }
    k++;
  }
  CHECK_EQ_INT(k, 27);
  rollout_sampler_ws_free(&ws);
}

TEST(draws_follow_the_distribution) {
  const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(g_fix, "cases"), 6); /* all filters */
  int V = cJSON_GetObjectItem(g_fix, "vocab")->valueint;
  rollout_sampling s;
  settings_of(c, &s);
  float logits[64];
  double probs[64], counts[64] = {0};
  for (int v = 0; v < V; v++)
    logits[v] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(c, "logits"), v)->valuedouble;
  int32_t hist[6] = {3, 7, 7, 11, 0, 39};
  rollout_sampler_ws ws;
  rollout_sampler_ws_init(&ws, V, NULL);
  rollout_sampler_distribution(logits, V, &s, hist, 6, &ws, probs);
  const int n = 40000;
  for (int i = 0; i < n; i++) {
    rollout_sample_result r;
    rollout_sample(logits, V, &s, hist, 6, rollout_sampler_uniform(9, 0, 0, 0, (uint32_t)i), &ws, &r);
    counts[r.token] += 1;
    CHECK(probs[r.token] > 0);
    CHECK_NEAR(r.sampler_logprob, log(probs[r.token]), 1e-5);
  }
  for (int v = 0; v < V; v++)
    CHECK_MSG(fabs(counts[v] / n - probs[v]) < 4 * sqrt(probs[v] * (1 - probs[v]) / n) + 1e-4,
              "token %d: %g vs %g", v, counts[v] / n, probs[v]);
  rollout_sampler_ws_free(&ws);
}

TEST(logprob_is_the_full_softmax_at_temperature) {
  float logits[5] = {1.0f, 2.0f, 0.5f, -1.0f, 2.0f};
  rollout_sampling s;
  rollout_sampling_defaults(&s);
  s.temperature = 0.5f;
  s.top_k = 2;
  s.repetition_penalty = 2.0f;
  rollout_sampler_ws ws;
  rollout_sampler_ws_init(&ws, 5, NULL);
  int32_t hist[1] = {1};
  rollout_sample_result r;
  rollout_sample(logits, 5, &s, hist, 1, 0.3, &ws, &r);
  double lse = 0;
  for (int v = 0; v < 5; v++) lse += exp(logits[v] / 0.5);
  lse = log(lse);
  CHECK_NEAR(r.logprob, logits[r.token] / 0.5 - lse, 1e-6);
  /* penalised token 1 (2 -> 1) leaves {4, 0} as the top-2 */
  CHECK(r.token == 4 || r.token == 0);
  /* greedy: lowest id among equal maxima; logprob at T = 1 */
  s.temperature = 0.0f;
  s.repetition_penalty = 1.0f;
  rollout_sample(logits, 5, &s, NULL, 0, 0.99, &ws, &r);
  CHECK_EQ_INT(r.token, 1);
  double lse1 = 0;
  for (int v = 0; v < 5; v++) lse1 += exp(logits[v]);
  CHECK_NEAR(r.logprob, 2.0 - log(lse1), 1e-6);
  CHECK_NEAR(r.sampler_logprob, 0.0, 0.0);
  /* padding rows beyond the tokenizer's vocabulary are never drawn */
  float big[6] = {0, 0, 0, 0, 0, 100.0f};
  s.temperature = 1.0f;
  for (int i = 0; i < 200; i++) {
    rollout_sample(big, 5, &s, NULL, 0, rollout_sampler_uniform(1, 0, 0, 0, (uint32_t)i), &ws, &r);
    CHECK(r.token < 5);
  }
  rollout_sampler_ws_free(&ws);
}

TEST(draws_are_keyed_by_coordinates) {
  double a = rollout_sampler_uniform(42, 3, 5, 1, 17);
  CHECK(a == rollout_sampler_uniform(42, 3, 5, 1, 17));
  CHECK(a != rollout_sampler_uniform(42, 3, 5, 2, 17));
  CHECK(a != rollout_sampler_uniform(42, 3, 6, 1, 17));
  CHECK(a != rollout_sampler_uniform(42, 4, 5, 1, 17));
  CHECK(a != rollout_sampler_uniform(42, 3, 5, 1, 18));
  CHECK(a >= 0 && a < 1);
}

TEST(validation_names_the_field) {
  rollout_sampling s;
  grpo_error err = {0};
  rollout_sampling_defaults(&s);
  CHECK_EQ_INT(rollout_sampling_validate(&s, &err), GRPO_OK);
  s.top_p = 0.0f;
  CHECK_EQ_INT(rollout_sampling_validate(&s, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "rollout.top_p") != NULL);
  rollout_sampling_defaults(&s);
  s.temperature = -1;
  CHECK_EQ_INT(rollout_sampling_validate(&s, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "rollout.temperature") != NULL);
  rollout_sampling_defaults(&s);
  s.repetition_penalty = 0;
  CHECK_EQ_INT(rollout_sampling_validate(&s, &err), GRPO_EINVAL);
}

int main(void) {
  if (!load()) {
    fprintf(stderr, "cannot read tests/rollout/sampler_fixture.json\n");
    return 1;
  }
  RUN(distributions_match_transformers);
  RUN(draws_follow_the_distribution);
  RUN(logprob_is_the_full_softmax_at_temperature);
  RUN(draws_are_keyed_by_coordinates);
  RUN(validation_names_the_field);
  cJSON_Delete(g_fix);
  return test_summary();
}
