/* rollout/engine on a scripted policy: completions are identical whatever the
 * slot count or batch composition, each sample matches a one-at-a-time
 * recomputation, prefill happens once per prompt, and stops work. */
#include "rollout/engine.h"
#include "scripted_policy.h"
#include "test.h"

#define V 50
#define MAXNEW 24

typedef struct run {
  rollout_output out[64];
  int32_t ids[64][MAXNEW];
  float lp[64][MAXNEW], slp[64][MAXNEW];
  rollout_engine_stats stats;
} run;

static int32_t PROMPTS[4][6] = {{1, 2, 3}, {4, 5, 6, 7, 8, 9}, {10}, {11, 12}};
static int PLEN[4] = {3, 6, 1, 2};

static int piece(void *ctx, int32_t id, char *buf, int cap) {
  (void)ctx;
  /* token v prints as one letter; 49 prints "ST" so the string "STOP" needs two */
  if (id == 49) return snprintf(buf, (size_t)cap, "ST");
  if (id == 48) return snprintf(buf, (size_t)cap, "OP");
  buf[0] = (char)('a' + id % 26);
  return 1;
}

static void generate(run *r, int n_slots, const int *order, int G, rollout_engine_options *opt,
                     scripted *sp_out) {
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, n_slots, 64);
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, NULL), GRPO_OK);
  rollout_group groups[4];
  for (int i = 0; i < 4; i++)
    groups[i] = (rollout_group){PROMPTS[order[i]], PLEN[order[i]], G, (uint32_t)order[i], 0};
  for (int i = 0; i < 4 * G; i++) {
    r->out[i].ids = r->ids[i];
    r->out[i].logprobs = r->lp[i];
    r->out[i].sampler_logprobs = r->slp[i];
  }
  grpo_error err = {0};
  CHECK_EQ_INT(rollout_engine_generate(e, opt, groups, 4, r->out, &r->stats, &err), GRPO_OK);
  rollout_engine_free(e);
  if (sp_out) {
    sp_out->appended = sp.appended;
    sp_out->stepped = sp.stepped;
  }
  scripted_free(&sp);
}

/* The completion of (prompt p, sample j) by layout: find it in a run. */
static const rollout_output *find(const run *r, int n, uint32_t p, uint32_t j) {
  for (int i = 0; i < n; i++)
    if (r->out[i].prompt_index == p && r->out[i].sample_index == j) return &r->out[i];
  return NULL;
}

static rollout_engine_options base_opts(void) {
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.sampling.top_p = 0.9f;
  o.max_new_tokens = MAXNEW;
  o.seed = 1234;
  o.step = 7;
  return o;
}

TEST(same_completions_whatever_the_layout) {
  static run a, b, c;
  rollout_engine_options o = base_opts();
  static const int32_t eos[1] = {3};
  o.stop_ids = eos;
  o.n_stop_ids = 1;
  int order1[4] = {0, 1, 2, 3}, order2[4] = {3, 1, 0, 2};
  scripted counts;
  generate(&a, 64, order1, 4, &o, &counts);
  CHECK_EQ_INT(a.stats.prefills, 4); /* once per prompt, not per sample */
  CHECK_EQ_INT(a.stats.prefill_tokens, 3 + 6 + 1 + 2);
  generate(&b, 5, order2, 4, &o, NULL);  /* groups split over few slots */
  generate(&c, 1, order1, 4, &o, NULL);  /* one sample at a time */
  int differs_within_group = 0, stopped = 0;
  for (uint32_t p = 0; p < 4; p++)
    for (uint32_t j = 0; j < 4; j++) {
      const rollout_output *x = find(&a, 16, p, j), *y = find(&b, 16, p, j), *z = find(&c, 16, p, j);
      CHECK(x && y && z);
      if (!x || !y || !z) continue;
      CHECK_EQ_INT(x->n, y->n);
      CHECK_EQ_INT(x->n, z->n);
      CHECK(memcmp(x->ids, y->ids, sizeof(int32_t) * (size_t)x->n) == 0);
      CHECK(memcmp(x->ids, z->ids, sizeof(int32_t) * (size_t)x->n) == 0);
      CHECK(memcmp(x->logprobs, z->logprobs, sizeof(float) * (size_t)x->n) == 0);
      CHECK(x->finish == z->finish);
      if (x->finish == ROLLOUT_FINISH_EOS) {
        stopped++;
        CHECK_EQ_INT(x->ids[x->n - 1], 3);
      } else {
        CHECK(x->truncated && x->n == MAXNEW);
      }
      const rollout_output *first = find(&a, 16, p, 0);
      if (j > 0 && (first->n != x->n || memcmp(first->ids, x->ids, sizeof(int32_t) * (size_t)x->n)))
        differs_within_group = 1;
    }
  CHECK(differs_within_group); /* samples of a group are not copies */
  CHECK(stopped > 0);
}

/* Recompute one sample alone, straight from the sampler and the logits. */
TEST(each_sample_matches_a_direct_recomputation) {
  static run a;
  rollout_engine_options o = base_opts();
  int order[4] = {0, 1, 2, 3};
  generate(&a, 16, order, 4, &o, NULL);
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 1, 64);
  rollout_sampler_ws ws;
  rollout_sampler_ws_init(&ws, V, NULL);
  for (uint32_t p = 0; p < 4; p++) {
    const rollout_output *x = find(&a, 16, p, 2);
    int32_t seq[64];
    int n = PLEN[p];
    memcpy(seq, PROMPTS[p], sizeof(int32_t) * (size_t)n);
    for (int t = 0; t < x->n; t++) {
      float logits[V];
      scripted_logits(&sp, seq, n, logits);
      rollout_sample_result r;
      rollout_sample(logits, V, &o.sampling, seq, n, rollout_sampler_uniform(1234, 7, p, 2, (uint32_t)t), &ws, &r);
      CHECK_EQ_INT(r.token, x->ids[t]);
      CHECK(r.logprob == x->logprobs[t]);
      seq[n++] = r.token;
    }
  }
  rollout_sampler_ws_free(&ws);
  scripted_free(&sp);
}

TEST(stop_strings_and_length_limits) {
  static run a;
  rollout_engine_options o = base_opts();
  o.sampling.temperature = 0.0f; /* greedy: forced tokens win */
  static const char *stops[1] = {"STOP"};
  o.stop_strings = stops;
  o.n_stop_strings = 1;
  o.piece = piece;
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 8, 64);
  /* prompt {10} has length 1: force "ST" "OP" at positions 4 and 5 */
  sp.force[4] = 49;
  sp.force[5] = 48;
  rollout_engine *e;
  rollout_engine_create(&e, &pol, NULL);
  rollout_group g = {PROMPTS[2], 1, 2, 0, 0};
  for (int i = 0; i < 2; i++) {
    a.out[i].ids = a.ids[i];
    a.out[i].logprobs = a.lp[i];
    a.out[i].sampler_logprobs = NULL;
  }
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, a.out, NULL, NULL), GRPO_OK);
  CHECK(a.out[0].finish == ROLLOUT_FINISH_STOP);
  CHECK_EQ_INT(a.out[0].n, 5); /* tokens at positions 1..5; the one completing "STOP" is kept */
  CHECK_EQ_INT(a.out[0].ids[4], 48);
  /* a slot length limit truncates */
  sp.force[4] = sp.force[5] = -1;
  rollout_engine_free(e);
  scripted_free(&sp);
  scripted_init(&sp, &pol, V, 8, 10);
  rollout_engine_create(&e, &pol, NULL);
  o.n_stop_strings = 0;
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, a.out, NULL, NULL), GRPO_OK);
  CHECK(a.out[0].truncated && a.out[0].finish == ROLLOUT_FINISH_LENGTH);
  CHECK_EQ_INT(a.out[0].n, 9);
  /* bad requests are errors */
  grpo_error err = {0};
  rollout_group big = {PROMPTS[1], 6, 1, 0, 0};
  big.n_prompt = 10;
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &big, 1, a.out, NULL, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "prompt 0 has 10 tokens") != NULL);
  o.sampling.top_p = 2.0f;
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, a.out, NULL, &err), GRPO_EINVAL);
  rollout_engine_free(e);
  scripted_free(&sp);
}

/* first_sample continues a prompt's sample sequence: samples 2 and 3 drawn
 * later equal samples 2 and 3 of one call that drew 0..3. */
TEST(first_sample_continues_the_sequence) {
  static run a, b;
  rollout_engine_options o = base_opts();
  int order[4] = {0, 1, 2, 3};
  generate(&a, 8, order, 4, &o, NULL);
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 8, 64);
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, NULL), GRPO_OK);
  rollout_group g = {PROMPTS[1], PLEN[1], 2, 1, 2};
  for (int i = 0; i < 2; i++) {
    b.out[i].ids = b.ids[i];
    b.out[i].logprobs = b.lp[i];
    b.out[i].sampler_logprobs = b.slp[i];
  }
  grpo_error err = {0};
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, b.out, NULL, &err), GRPO_OK);
  for (int j = 0; j < 2; j++) {
    const rollout_output *want = find(&a, 16, 1, (uint32_t)(2 + j));
    CHECK(want != NULL);
    CHECK_EQ_INT((int)b.out[j].sample_index, 2 + j);
    CHECK(want && b.out[j].n == want->n && memcmp(b.out[j].ids, want->ids, sizeof(int32_t) * (size_t)want->n) == 0);
  }
  /* and differ from samples 0 and 1 */
  const rollout_output *s0 = find(&a, 16, 1, 0);
  CHECK(s0 && !(b.out[0].n == s0->n && memcmp(b.out[0].ids, s0->ids, sizeof(int32_t) * (size_t)s0->n) == 0));
  rollout_engine_free(e);
  scripted_free(&sp);
}

int main(void) {
  RUN(same_completions_whatever_the_layout);
  RUN(each_sample_matches_a_direct_recomputation);
  RUN(stop_strings_and_length_limits);
  RUN(first_sample_continues_the_sequence);
  return test_summary();
}
