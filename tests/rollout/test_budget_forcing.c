/* Budget forcing in rollout/engine on a scripted token stream: an early end
 * of thinking is swapped for the continuation (and taken out of the policy's
 * KV cache), the continuation cap and the room rule hold, the maximum forces
 * the end of thinking at exactly max_think_tokens, injected tokens are marked
 * and never stop a sample, a disabled budget changes nothing, the outputs do
 * not depend on the batch layout, and the transformer's KV-cache rollback
 * matches a fresh prefill. */
#include "checkpoints/hf_io.h"
#include "checkpoints/safetensors.h"
#include "model/transformer.h"
#include "rollout/engine.h"
#include "rollout/policy.h"
#include "scripted_policy.h"
#include "test.h"

#define V 50
#define MAXNEW 40
#define OPEN 1 /* every prompt ends with it ("<think>") */
#define EOS 3
#define MAXOUT 16

/* The scripted model. Completion = tokens after the last OPEN. While thinking
 * it writes 10, 11, ... and, `run` tokens after the start or the last
 * continuation, the end-of-thinking sequence; after that sequence it answers
 * 20, 21, EOS. With `random`, the plain tokens are sampled from the
 * policy's pseudo-random logits instead, and the end starts at random. */
typedef struct script_cfg {
  const int32_t *end, *cont;
  int n_end, n_cont;
  int run;          /* < 0: never ends its thinking by itself */
  int random;
  int bad_history;  /* the policy saw a removed delimiter token before a continuation */
} script_cfg;
static script_cfg S;

static int find_seq(const int32_t *c, int m, const int32_t *pat, int np) {
  for (int i = 0; i + np <= m; i++)
    if (memcmp(c + i, pat, sizeof(int32_t) * (size_t)np) == 0) return i;
  return -1;
}

static int32_t script(const int32_t *seq, int n) {
  int p = n - 1;
  while (p >= 0 && seq[p] != OPEN) p--;
  const int32_t *c = seq + p + 1;
  int m = n - p - 1;
  for (int i = 1; i < m; i++)
    if (c[i] == S.cont[0])
      for (int k = 0; k < S.n_end; k++)
        if (c[i - 1] == S.end[k]) S.bad_history = 1;
  int k = find_seq(c, m, S.end, S.n_end);
  if (k >= 0) {
    int j = m - (k + S.n_end);
    if (S.random) return -1;
    return j < 2 ? 20 + j : EOS;
  }
  for (int i = S.n_end - 1; i >= 1; i--) /* finish a started delimiter */
    if (m >= i && memcmp(c + m - i, S.end, sizeof(int32_t) * (size_t)i) == 0) return S.end[i];
  int last = -1;
  for (int i = 0; i < m; i++)
    if (c[i] == S.cont[S.n_cont - 1]) last = i;
  int r = m - (last + 1);
  int run = S.run;
  if (S.random && run >= 0) run += (p > 0 ? seq[p - 1] : 0) % 4;
  if (run >= 0 && r >= run && (!S.random || (m > 0 && c[m - 1] % 3 == 0))) return S.end[0];
  return S.random ? -1 : 10 + r % 5;
}

static int piece(void *ctx, int32_t id, char *buf, int cap) {
  (void)ctx;
  (void)cap;
  static const char sp[V] = {[30] = '<', [31] = '/', [32] = '>', [41] = 'W', [42] = 't'};
  buf[0] = sp[id] ? sp[id] : (char)('a' + id % 26);
  return 1;
}

typedef struct run {
  rollout_output out[MAXOUT];
  int32_t ids[MAXOUT][MAXNEW];
  float lp[MAXOUT][MAXNEW], slp[MAXOUT][MAXNEW];
  uint8_t forced[MAXOUT][MAXNEW];
} run;

static void wire(run *r, int with_forced) {
  memset(r, 0, sizeof *r);
  for (int i = 0; i < MAXOUT; i++) {
    r->out[i].ids = r->ids[i];
    r->out[i].logprobs = r->lp[i];
    r->out[i].sampler_logprobs = r->slp[i];
    r->out[i].forced = with_forced ? r->forced[i] : NULL;
  }
}

static rollout_engine_options base_opts(void) {
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.max_new_tokens = MAXNEW;
  o.seed = 99;
  o.step = 3;
  static const int32_t eos[1] = {EOS};
  o.stop_ids = eos;
  o.n_stop_ids = 1;
  return o;
}

/* One prompt, one sample, one slot; sp_out keeps the policy for inspection. */
static int generate_one(run *r, const rollout_engine_options *o, scripted *sp, int max_len,
                        int with_truncate, grpo_error *err) {
  rollout_policy pol;
  scripted_init(sp, &pol, V, 1, max_len);
  sp->script = script;
  if (!with_truncate) pol.truncate = NULL;
  static const int32_t prompt[3] = {5, 6, OPEN};
  rollout_group g = {prompt, 3, 1, 0, 0};
  wire(r, 1);
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, NULL), GRPO_OK);
  int rc = rollout_engine_generate(e, o, &g, 1, r->out, NULL, err);
  rollout_engine_free(e);
  return rc;
}

static void check_stream(const rollout_output *o, const int32_t *want, int n_want, const int *forced_at,
                         int n_forced) {
  CHECK_EQ_INT(o->n, n_want);
  for (int t = 0; t < o->n && t < n_want; t++) CHECK_MSG(o->ids[t] == want[t], "token %d: %d, want %d", t, o->ids[t], want[t]);
  int f = 0;
  for (int t = 0; t < o->n; t++) {
    int want_forced = 0;
    for (int k = 0; k < n_forced; k++) want_forced |= forced_at[k] == t;
    CHECK_MSG(o->forced[t] == want_forced, "forced[%d] = %d", t, o->forced[t]);
    if (o->forced[t]) {
      f++;
      CHECK(o->logprobs[t] == 0.0f && o->sampler_logprobs[t] == 0.0f);
    }
  }
  CHECK_EQ_INT(f, n_forced);
}

static const int32_t END1[1] = {40}, WAIT1[1] = {41};

TEST(early_end_of_thinking_is_swapped_for_the_continuation) {
  S = (script_cfg){END1, WAIT1, 1, 1, 3, 0, 0};
  rollout_engine_options o = base_opts();
  /* an injected token never stops a sample, even one listed as a stop id */
  static const int32_t stops[2] = {EOS, 41};
  o.stop_ids = stops;
  o.n_stop_ids = 2;
  o.budget = (rollout_budget_forcing){.end_think = END1, .n_end_think = 1, .continuation = WAIT1,
                                      .n_continuation = 1, .min_think_tokens = 8};
  static run r;
  scripted sp;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want[] = {10, 11, 12, 41, 10, 11, 12, 41, 10, 11, 12, 40, 20, 21, EOS};
  static const int fat[] = {3, 7};
  check_stream(&r.out[0], want, 15, fat, 2);
  CHECK(r.out[0].finish == ROLLOUT_FINISH_EOS && !r.out[0].truncated);
  CHECK_EQ_INT(r.out[0].n_continuations, 2);
  CHECK_EQ_INT(r.out[0].end_forced, 0);
  CHECK_EQ_INT(sp.truncated, 0); /* a one-token delimiter is never fed: nothing to take back */
  CHECK(!S.bad_history);
  scripted_free(&sp);

  /* the cap: one continuation, then the early end stands */
  o.budget.max_continuations = 1;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want1[] = {10, 11, 12, 41, 10, 11, 12, 40, 20, 21, EOS};
  static const int fat1[] = {3};
  check_stream(&r.out[0], want1, 11, fat1, 1);
  CHECK_EQ_INT(r.out[0].n_continuations, 1);
  scripted_free(&sp);

  /* room: with max_new 5 the continuation fits before the limit... */
  o.budget.max_continuations = 0;
  o.max_new_tokens = 5;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want2[] = {10, 11, 12, 41, 10};
  check_stream(&r.out[0], want2, 5, fat1, 1);
  CHECK(r.out[0].truncated && r.out[0].finish == ROLLOUT_FINISH_LENGTH);
  scripted_free(&sp);
  /* ...with 4 no sampled token would follow it, so the end of thinking stands */
  o.max_new_tokens = 4;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want3[] = {10, 11, 12, 40};
  check_stream(&r.out[0], want3, 4, NULL, 0);
  CHECK_EQ_INT(r.out[0].n_continuations, 0);
  CHECK(r.out[0].truncated);
  scripted_free(&sp);
}

TEST(the_maximum_forces_the_end_of_thinking) {
  S = (script_cfg){END1, WAIT1, 1, 1, -1, 0, 0};
  rollout_engine_options o = base_opts();
  o.budget = (rollout_budget_forcing){.end_think = END1, .n_end_think = 1, .max_think_tokens = 5};
  static run r;
  scripted sp;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want[] = {10, 11, 12, 13, 14, 40, 20, 21, EOS};
  static const int fat[] = {5};
  check_stream(&r.out[0], want, 9, fat, 1);
  CHECK_EQ_INT(r.out[0].end_forced, 1);
  CHECK(r.out[0].finish == ROLLOUT_FINISH_EOS);
  scripted_free(&sp);

  /* the caller's own forced ids (a newline, then the delimiter) */
  static const int32_t nl_end[2] = {43, 40};
  o.budget.force_end = nl_end;
  o.budget.n_force_end = 2;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want1[] = {10, 11, 12, 13, 14, 43, 40, 20, 21, EOS};
  static const int fat1[] = {5, 6};
  check_stream(&r.out[0], want1, 10, fat1, 2);
  scripted_free(&sp);

  /* minimum and maximum together: two continuations, then the maximum at 9 */
  S.run = 3;
  o.budget = (rollout_budget_forcing){.end_think = END1, .n_end_think = 1, .continuation = WAIT1,
                                      .n_continuation = 1, .min_think_tokens = 8, .max_think_tokens = 9};
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want2[] = {10, 11, 12, 41, 10, 11, 12, 41, 10, 40, 20, 21, EOS};
  static const int fat2[] = {3, 7, 9};
  check_stream(&r.out[0], want2, 13, fat2, 3);
  CHECK_EQ_INT(r.out[0].n_continuations, 2);
  CHECK_EQ_INT(r.out[0].end_forced, 1);
  scripted_free(&sp);
}

static const int32_t END3[3] = {30, 31, 32}, WAIT2[2] = {41, 42};

TEST(a_multi_token_end_of_thinking_is_rolled_back) {
  S = (script_cfg){END3, WAIT2, 3, 2, 2, 0, 0};
  rollout_engine_options o = base_opts();
  /* "Wt" ends inside injected text: no stop. "/Wtk" would match only if the
   * removed "</" stayed in the text that stop strings are matched in. */
  static const char *stops[2] = {"Wt", "/Wtk"};
  o.stop_strings = stops;
  o.n_stop_strings = 2;
  o.piece = piece;
  o.budget = (rollout_budget_forcing){.end_think = END3, .n_end_think = 3, .continuation = WAIT2,
                                      .n_continuation = 2, .min_think_tokens = 10};
  static run r;
  scripted sp;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  static const int32_t want[] = {10, 11, 41, 42, 10, 11, 41, 42, 10, 11, 30, 31, 32, 20, 21, EOS};
  static const int fat[] = {2, 3, 6, 7};
  check_stream(&r.out[0], want, 16, fat, 4);
  CHECK(r.out[0].finish == ROLLOUT_FINISH_EOS);
  CHECK_EQ_INT(r.out[0].n_continuations, 2);
  CHECK_EQ_INT(sp.truncated, 4); /* "<" "/" fed twice, taken back twice */
  CHECK(!S.bad_history);
  /* the policy's cache holds exactly prompt + completion (the final EOS is never fed) */
  static const int32_t prompt[3] = {5, 6, OPEN};
  CHECK_EQ_INT(sp.len[0], 3 + 15);
  CHECK(memcmp(sp.toks, prompt, sizeof prompt) == 0);
  CHECK(memcmp(sp.toks + 3, want, sizeof(int32_t) * 15) == 0);
  scripted_free(&sp);

  /* the same without the stop strings: same tokens (they never fired) */
  o.n_stop_strings = 0;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, NULL), GRPO_OK);
  check_stream(&r.out[0], want, 16, fat, 4);
  scripted_free(&sp);

  /* a policy that cannot roll back is refused up front */
  grpo_error err = {0};
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 0, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "roll its KV cache back") != NULL);
  scripted_free(&sp);
}

TEST(bad_budgets_are_errors) {
  S = (script_cfg){END1, WAIT1, 1, 1, 3, 0, 0};
  rollout_engine_options o = base_opts();
  static run r;
  scripted sp;
  grpo_error err = {0};
  o.budget = (rollout_budget_forcing){.min_think_tokens = 4, .continuation = WAIT1, .n_continuation = 1};
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "rollout.end_think") != NULL);
  scripted_free(&sp);
  o.budget = (rollout_budget_forcing){.end_think = END1, .n_end_think = 1, .min_think_tokens = 4};
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "rollout.budget_continuation") != NULL);
  scripted_free(&sp);
  o.budget.continuation = WAIT1;
  o.budget.n_continuation = 1;
  o.budget.max_think_tokens = 3;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "exceeds rollout.budget_max_think_tokens") != NULL);
  scripted_free(&sp);
  static const int32_t out_of_vocab[1] = {V};
  o.budget.max_think_tokens = 0;
  o.budget.continuation = out_of_vocab;
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "outside the vocabulary") != NULL);
  scripted_free(&sp);
  o.budget = (rollout_budget_forcing){.min_think_tokens = -1};
  CHECK_EQ_INT(generate_one(&r, &o, &sp, 64, 1, &err), GRPO_EINVAL);
  scripted_free(&sp);

  /* P-GRPO's parallel mode does not take a budget */
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 4, 64);
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, NULL), GRPO_OK);
  o.budget = (rollout_budget_forcing){.end_think = END1, .n_end_think = 1, .max_think_tokens = 5};
  o.piece = piece;
  static const int32_t prompt[2] = {5, OPEN};
  rollout_group g = {prompt, 2, 1, 0, 0};
  rollout_tw_options two;
  memset(&two, 0, sizeof two);
  rollout_tw traj;
  CHECK_EQ_INT(rollout_engine_generate_parallel(e, &o, &two, &g, 1, &traj, NULL, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "parallel_threads") != NULL);
  rollout_engine_free(e);
  scripted_free(&sp);
}

/* ---- random streams over several groups and layouts ----------------------- */

#define NP 4
#define G 3
static const int32_t P0[] = {5, 6, OPEN}, P1[] = {7, OPEN}, P2[] = {8, 9, 4, OPEN}, P3[] = {OPEN};
static const int32_t *PROMPTS[NP] = {P0, P1, P2, P3};
static const int PLEN[NP] = {3, 2, 4, 1};

static float BIAS[V];

static void generate_many(run *r, int n_slots, const int *order, const rollout_engine_options *o,
                          int with_forced, scripted *counts) {
  float *bias = BIAS;
  /* special tokens come only from the script or the engine */
  static const int special[] = {OPEN, 30, 31, 32, 40, 41, 42, 43};
  for (size_t k = 0; k < sizeof special / sizeof *special; k++) bias[special[k]] = -100.0f;
  /* ...but "<" keeps some mass (the model may start a delimiter at random,
   * which the script completes), so a removed "<" left in the history would
   * show through the repetition penalty */
  bias[30] = -3.0f;
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, n_slots, 64);
  sp.script = script;
  sp.bias = bias;
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, NULL), GRPO_OK);
  rollout_group groups[NP];
  for (int i = 0; i < NP; i++) groups[i] = (rollout_group){PROMPTS[order[i]], PLEN[order[i]], G, (uint32_t)order[i], 0};
  wire(r, with_forced);
  grpo_error err = {0};
  CHECK_EQ_INT(rollout_engine_generate(e, o, groups, NP, r->out, NULL, &err), GRPO_OK);
  rollout_engine_free(e);
  if (counts) counts->truncated = sp.truncated;
  scripted_free(&sp);
}

static const rollout_output *find(const run *r, uint32_t p, uint32_t j) {
  for (int i = 0; i < NP * G; i++)
    if (r->out[i].prompt_index == p && r->out[i].sample_index == j) return &r->out[i];
  return NULL;
}

static int same_output(const rollout_output *x, const rollout_output *y, int cmp_forced) {
  return x && y && x->n == y->n && x->finish == y->finish && x->truncated == y->truncated &&
         x->n_continuations == y->n_continuations && x->end_forced == y->end_forced &&
         memcmp(x->ids, y->ids, sizeof(int32_t) * (size_t)x->n) == 0 &&
         memcmp(x->logprobs, y->logprobs, sizeof(float) * (size_t)x->n) == 0 &&
         memcmp(x->sampler_logprobs, y->sampler_logprobs, sizeof(float) * (size_t)x->n) == 0 &&
         (!cmp_forced || memcmp(x->forced, y->forced, (size_t)x->n) == 0);
}

static rollout_engine_options random_opts(void) {
  rollout_engine_options o = base_opts();
  /* the history must lose the removed tokens too: with no top-p cut, a
   * penalty on "<" shows in every sampler logprob */
  o.sampling.repetition_penalty = 1.1f;
  return o;
}

TEST(a_disabled_budget_changes_nothing) {
  S = (script_cfg){END3, WAIT2, 3, 2, 2, 1, 0};
  static run a, b, c;
  int order[NP] = {0, 1, 2, 3};
  rollout_engine_options o = random_opts();
  generate_many(&a, 5, order, &o, 0, NULL);
  /* ids given but both bounds 0: off; a forced buffer gets zeros */
  o.budget = (rollout_budget_forcing){.end_think = END3, .n_end_think = 3, .continuation = WAIT2,
                                      .n_continuation = 2, .max_continuations = 3};
  generate_many(&b, 5, order, &o, 1, NULL);
  /* on, but never reached: the same draws */
  o.budget.max_think_tokens = MAXNEW + 1;
  generate_many(&c, 5, order, &o, 1, NULL);
  int ended = 0;
  for (uint32_t p = 0; p < NP; p++)
    for (uint32_t j = 0; j < G; j++) {
      const rollout_output *x = find(&a, p, j), *y = find(&b, p, j), *z = find(&c, p, j);
      CHECK(same_output(x, y, 0));
      CHECK(same_output(x, z, 0));
      if (!y) continue;
      for (int t = 0; t < y->n; t++) CHECK(!y->forced[t] && !z->forced[t]);
      ended += find_seq(x->ids, x->n, END3, 3) >= 0;
    }
  CHECK(ended > 0); /* the scripted model does end its thinking early */
}

/* Recomputes a sample's sampled tokens alone from its final completion: the
 * context is prompt + completion so far, and the Philox coordinate counts the
 * removed delimiters (3 tokens before each continuation) too. */
static void check_recomputed(const rollout_output *x, const rollout_engine_options *o, const float *bias) {
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 1, 64);
  sp.script = script;
  sp.bias = bias;
  rollout_sampler_ws ws;
  rollout_sampler_ws_init(&ws, V, NULL);
  int32_t seq[128];
  int n = PLEN[x->prompt_index];
  memcpy(seq, PROMPTS[x->prompt_index], sizeof(int32_t) * (size_t)n);
  uint32_t removed = 0;
  for (int t = 0; t < x->n; t++) {
    if (x->forced[t]) {
      if (x->ids[t] == WAIT2[0]) removed += 3;
    } else {
      float logits[V];
      scripted_logits(&sp, seq, n, logits);
      rollout_sample_result r;
      double u = rollout_sampler_uniform(o->seed, o->step, x->prompt_index, x->sample_index,
                                         (uint32_t)t + removed);
      rollout_sample(logits, V, &o->sampling, seq, n, u, &ws, &r);
      CHECK_MSG(r.token == x->ids[t] && r.logprob == x->logprobs[t] &&
                    r.sampler_logprob == x->sampler_logprobs[t],
                "prompt %u sample %u token %d",
                x->prompt_index, x->sample_index, t);
    }
    seq[n++] = x->ids[t];
  }
  rollout_sampler_ws_free(&ws);
  scripted_free(&sp);
}

TEST(budget_forcing_does_not_depend_on_the_layout) {
  S = (script_cfg){END3, WAIT2, 3, 2, 2, 1, 0};
  static run a, b, c;
  static const int32_t force[4] = {43, 30, 31, 32};
  rollout_engine_options o = random_opts();
  const int MIN = 6, MAX = 14, CAP = 2;
  o.budget = (rollout_budget_forcing){.end_think = END3, .n_end_think = 3, .continuation = WAIT2,
                                      .n_continuation = 2, .force_end = force, .n_force_end = 4,
                                      .min_think_tokens = MIN, .max_think_tokens = MAX,
                                      .max_continuations = CAP};
  int order1[NP] = {0, 1, 2, 3}, order2[NP] = {3, 1, 0, 2};
  scripted counts;
  generate_many(&a, 64, order1, &o, 1, &counts);
  generate_many(&b, 5, order2, &o, 1, NULL); /* groups split over few slots */
  generate_many(&c, 1, order1, &o, 1, NULL); /* one sample at a time */
  CHECK(!S.bad_history);
  int conts = 0, forced_ends = 0, natural = 0;
  for (uint32_t p = 0; p < NP; p++)
    for (uint32_t j = 0; j < G; j++) {
      const rollout_output *x = find(&a, p, j);
      CHECK(same_output(x, find(&b, p, j), 1));
      CHECK(same_output(x, find(&c, p, j), 1));
      if (!x) continue;
      check_recomputed(x, &o, BIAS);
      conts += x->n_continuations;
      forced_ends += x->end_forced;
      int n_forced = 0;
      for (int t = 0; t < x->n; t++) n_forced += x->forced[t];
      int want = 2 * x->n_continuations + 4 * x->end_forced;
      CHECK(x->truncated ? n_forced <= want : n_forced == want);
      CHECK(x->n_continuations <= CAP);
      int k = find_seq(x->ids, x->n, END3, 3);
      if (x->end_forced) {
        CHECK(x->n <= MAX || memcmp(x->ids + MAX, force, sizeof(int32_t) * (size_t)(x->n - MAX < 4 ? x->n - MAX : 4)) == 0);
        CHECK(x->n <= MAX || x->forced[MAX]);
      } else if (k >= 0) {
        natural++;
        CHECK(k >= MIN || x->n_continuations == CAP);
        CHECK(k + 3 <= MAX); /* a partial delimiter at the maximum is thinking too */
      } else {
        CHECK(x->n <= MAX); /* no end of thinking only when it stopped first */
      }
    }
  CHECK(conts > 0);
  CHECK(forced_ends > 0);
  CHECK(natural > 0);
  CHECK(counts.truncated == 2 * conts); /* each removal takes back "<" "/" */
}

/* ---- the real transformer --------------------------------------------------- */

/* Greedy decoding of a fixture model whose own stream supplies a two-token
 * "end of thinking": every sampled token must be the argmax of a fresh
 * prefill of prompt + completion so far, which holds only if the KV-cache
 * rollback really dropped the removed tokens. */
static void model_rollback(const char *arch) {
  char dir[512], dec[600];
  snprintf(dir, sizeof dir, "%s", test_path("tests/fixtures/models/"));
  strncat(dir, arch, sizeof dir - strlen(dir) - 1);
  snprintf(dec, sizeof dec, "%s/decode.safetensors", dir);
  grpo_error err = {0};
  model_params p;
  ckpt_st_model f;
  if (ckpt_hf_load(dir, &p, &err) || ckpt_st_open(&f, dec, &err)) {
    CHECK_MSG(0, "%s: %s", arch, err.msg);
    return;
  }
  const ckpt_st_tensor *tp = ckpt_st_find(&f, "decode.prompt");
  CHECK(tp && tp->numel <= 16);
  int np = tp ? (int)tp->numel : 0;
  int32_t prompt[16];
  if (np > 0) ckpt_st_read_i32(&f, "decode.prompt", prompt, (size_t)np, &err);
  enum { NEW = 24, LEN = 64 };
  model_plan_opts po = {.max_tokens = LEN, .max_cache_len = LEN};
  model_transformer *m;
  CHECK_EQ_INT(model_transformer_create(&m, &p, grpo_backend_cpu(), &po, &err), GRPO_OK);
  rollout_model_policy mp;
  rollout_policy pol;
  CHECK_EQ_INT(rollout_model_policy_init(&mp, &pol, m, &p.cfg, 2, LEN, &err), GRPO_OK);
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, &err), GRPO_OK);
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.sampling.temperature = 0.0f;
  o.max_new_tokens = NEW;
  rollout_group g = {prompt, np, 2, 0, 0};
  static run r;
  wire(&r, 1);
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, r.out, NULL, &err), GRPO_OK);
  /* the delimiter: the first pair of the greedy stream not seen before it
   * (past index 0 where there is one; tiny random models loop) */
  const int32_t *gr = r.ids[0];
  int k = 0;
  for (int i = 1; i + 1 < r.out[0].n && !k; i++) {
    int seen = 0;
    for (int h = 0; h < i; h++) seen |= gr[h] == gr[i] && gr[h + 1] == gr[i + 1];
    if (!seen) k = i;
  }
  int32_t end[2] = {gr[k], gr[k + 1]}, cont[2] = {gr[0], 5};
  o.budget = (rollout_budget_forcing){.end_think = end, .n_end_think = 2, .continuation = cont,
                                      .n_continuation = 2, .min_think_tokens = 12, .max_continuations = 3};
  wire(&r, 1);
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, r.out, NULL, &err), GRPO_OK);
  for (int j = 0; j < 2; j++) {
    const rollout_output *x = &r.out[j];
    CHECK(x->n_continuations >= 1); /* greedy: the stream repeats up to index k */
    CHECK(x->n >= k + 2 && x->ids[k] == cont[0] && x->ids[k + 1] == cont[1] && x->forced[k] &&
          x->forced[k + 1]);
    int32_t seq[LEN];
    memcpy(seq, prompt, sizeof(int32_t) * (size_t)np);
    float *logits = malloc(sizeof(float) * (size_t)pol.vocab);
    for (int t = 0; t < x->n; t++) {
      if (!x->forced[t]) {
        CHECK_EQ_INT(pol.reset(pol.ctx, 1, &err), GRPO_OK);
        CHECK_EQ_INT(pol.append(pol.ctx, 1, seq, np + t, logits, &err), GRPO_OK);
        int best = 0;
        for (int v = 1; v < pol.vocab; v++)
          if (logits[v] > logits[best]) best = v;
        CHECK_MSG(best == x->ids[t], "%s sample %d token %d: %d, a fresh prefill says %d", arch, j, t,
                  x->ids[t], best);
      }
      seq[np + t] = x->ids[t];
    }
    free(logits);
  }
  rollout_engine_free(e);
  rollout_model_policy_free(&mp);
  model_transformer_free(m);
  ckpt_st_close(&f);
  model_params_free(&p);
}

TEST(the_model_policy_rolls_its_cache_back) {
  model_rollback("qwen2");
  model_rollback("qwen3");
}

int main(void) {
  RUN(early_end_of_thinking_is_swapped_for_the_continuation);
  RUN(the_maximum_forces_the_end_of_thinking);
  RUN(a_multi_token_end_of_thinking_is_rolled_back);
  RUN(bad_budgets_are_errors);
  RUN(a_disabled_budget_changes_nothing);
  RUN(budget_forcing_does_not_depend_on_the_layout);
  RUN(the_model_policy_rolls_its_cache_back);
  return test_summary();
}
