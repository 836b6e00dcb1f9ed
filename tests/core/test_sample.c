/* core/sample: the sampling rules (core/sample_math.h) on hand-made rows,
 * grpo_sampler on the CPU backend (and on a host-staged "device") equal to
 * rollout_sample row by row for every filter combination, ties included,
 * and the engine's device path (policy->step_sample) giving the same
 * completions as host sampling, budget forcing included. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/dtype.h"
#include "core/philox.h"
#include "core/sample.h"
#include "core/sample_math.h"
#include "rollout/engine.h"
#include "rollout/sampler.h"
#include "test.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static double unif(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }

static grpo_sample_params params(float t, float top_p, int top_k, float min_p) {
  grpo_sample_params p = {t, top_p, top_k, min_p};
  return p;
}

/* The filtered distribution of a hand-made row. */
static void dist(const float *x, int n, grpo_sample_params p, double *probs) {
  grpo_sample_ws ws;
  CHECK_EQ_INT(grpo_sample_ws_init(&ws, n, NULL), GRPO_OK);
  for (int v = 0; v < n; v++) ws.z[v] = x[v];
  grpo_sample_distribution_z(n, &p, &ws, probs);
  grpo_sample_ws_free(&ws);
}

static grpo_sample_result draw(const float *x, int n, grpo_sample_params p, double u) {
  grpo_sample_ws ws;
  grpo_sample_result r;
  CHECK_EQ_INT(grpo_sample_ws_init(&ws, n, NULL), GRPO_OK);
  grpo_sample_row(x, n, &p, u, &ws, &r);
  grpo_sample_ws_free(&ws);
  return r;
}

/* kept[v] = probs[v] > 0 */
static int kept_mask(const double *probs, int n) {
  int m = 0;
  for (int v = 0; v < n; v++) m |= (probs[v] > 0) << v;
  return m;
}

TEST(rules_by_hand) {
  /* the order: larger first, lower id first on ties */
  CHECK(grpo_sample_before(2.0, 5, 1.0, 0));
  CHECK(grpo_sample_before(1.0, 2, 1.0, 3));
  CHECK(!grpo_sample_before(1.0, 3, 1.0, 2));
  CHECK(grpo_sample_use_topk(3, 10) && !grpo_sample_use_topk(10, 10) && !grpo_sample_use_topk(0, 10));
  CHECK(grpo_sample_use_topp(0.9f) && !grpo_sample_use_topp(1.0f));
  CHECK(grpo_sample_use_minp(0.1f) && !grpo_sample_use_minp(0.0f));
  /* top-k keeps ties with the k-th value */
  CHECK(!grpo_sample_topk_drops(1, 2, 3.0, 3.0) && !grpo_sample_topk_drops(2, 2, 3.0, 3.0));
  CHECK(grpo_sample_topk_drops(2, 2, 2.0, 3.0));
  /* top-p: dropped once the mass before reaches top_p; never the first */
  CHECK(!grpo_sample_topp_drops(0, 1.0, 1.0, 0.5f));
  CHECK(grpo_sample_topp_drops(1, 0.5, 1.0, 0.5f) && !grpo_sample_topp_drops(1, 0.49, 1.0, 0.5f));
  /* min-p threshold zmax + log(min_p) */
  CHECK_NEAR(grpo_sample_minp_threshold(2.0, 0.5f), 2.0 + log(0.5), 1e-15);
  CHECK(grpo_sample_minp_drops(1, 0.0, 0.5) && !grpo_sample_minp_drops(0, 0.0, 0.5));
  CHECK(grpo_sample_cdf_hit(0.5, 0.4) && !grpo_sample_cdf_hit(0.4, 0.4));
  CHECK(grpo_sample_inv_t(0.0f) == 1.0 && grpo_sample_inv_t(0.5f) == 2.0);

  double pr[8];
  /* top-k = 2 over {1, 3, 3, 2, 3}: the three 3s stay */
  const float a[5] = {1, 3, 3, 2, 3};
  dist(a, 5, params(1, 1, 2, 0), pr);
  CHECK_EQ_INT(kept_mask(pr, 5), 0x16);
  CHECK_NEAR(pr[1], 1.0 / 3, 1e-15);
  /* top-p = 0.5 over four equal values: the cut falls inside the run, the
   * two lowest ids stay (mass before id 2 is 0.5) */
  const float b[4] = {0, 0, 0, 0};
  dist(b, 4, params(1, 0.5f, 0, 0), pr);
  CHECK_EQ_INT(kept_mask(pr, 4), 0x3);
  dist(b, 4, params(1, 0.51f, 0, 0), pr);
  CHECK_EQ_INT(kept_mask(pr, 4), 0x7);
  /* min-p: probabilities 1 : 0.5 : 0.1 relative to the top, min_p 0.2 */
  const float c[3] = {0, (float)log(0.5), (float)log(0.1)};
  dist(c, 3, params(1, 1, 0, 0.2f), pr);
  CHECK_EQ_INT(kept_mask(pr, 3), 0x3);
  /* with top-k, top-p renormalises over the top-k set: probabilities
   * 0.5, 0.3, 0.2 (+ small), top-k 2 -> 0.625, 0.375; top-p 0.6 keeps one */
  const float d[4] = {(float)log(0.5), (float)log(0.3), (float)log(0.2), (float)log(0.01)};
  dist(d, 4, params(1, 0.6f, 2, 0), pr);
  CHECK_EQ_INT(kept_mask(pr, 4), 0x1);
  dist(d, 4, params(1, 0.6f, 0, 0), pr);
  CHECK_EQ_INT(kept_mask(pr, 4), 0x3);
  /* top-k keeping more than half the vocabulary, then top-p over it in
   * order: weights 1, .9, .8, .1; top-k 3, top-p 0.5 keeps ids 0 and 1 (the
   * kept list was once partly reversed past vocab / 2, giving ids 0 and 2) */
  const float k4[4] = {0, (float)log(0.9), (float)log(0.8), (float)log(0.1)};
  dist(k4, 4, params(1, 0.5f, 3, 0), pr);
  CHECK_EQ_INT(kept_mask(pr, 4), 0x3);
  /* greedy: the lowest id among the maxima */
  const float g[4] = {1, 5, 5, 2};
  grpo_sample_result r = draw(g, 4, params(0, 1, 0, 0), 0.99);
  CHECK_EQ_INT(r.token, 1);
  CHECK(r.sampler_logprob == 0.0f);
  CHECK_NEAR(r.logprob, 5.0 - log(exp(1.0) + 2 * exp(5.0) + exp(2.0)), 1e-6);
  /* no filter: the draw walks the ids in order; any filter: the order */
  const float h[2] = {0, 1}; /* probabilities 0.269, 0.731 */
  CHECK_EQ_INT(draw(h, 2, params(1, 1, 0, 0), 0.2).token, 0);
  CHECK_EQ_INT(draw(h, 2, params(1, 1, 0, 1e-6f), 0.2).token, 1);
  CHECK_EQ_INT(draw(h, 2, params(1, 1, 0, 0), 0.3).token, 1);
  CHECK_EQ_INT(draw(h, 2, params(1, 1, 0, 1e-6f), 0.8).token, 0);
  /* logprob / sampler_logprob / entropy at T = 0.5 */
  const float e3[3] = {1, 0.5f, -1};
  r = draw(e3, 3, params(0.5f, 1, 2, 0), 0.0);
  double z[3] = {2, 1, -2}, s = 0, dot = 0;
  for (int i = 0; i < 3; i++) s += exp(z[i] - 2);
  for (int i = 0; i < 3; i++) dot += exp(z[i] - 2) * (z[i] - 2);
  CHECK_EQ_INT(r.token, 0);
  CHECK_NEAR(r.logprob, -log(s), 1e-6);
  CHECK_NEAR(r.sampler_logprob, -log(1 + exp(-1.0)), 1e-6);
  CHECK_NEAR(r.entropy, log(s) - dot / s, 1e-6);
  /* a masked (-inf) logit has probability 0 and adds nothing to the entropy
   * (not 0 * -inf = NaN) */
  const float m3[3] = {0, -INFINITY, 0};
  r = draw(m3, 3, params(1, 1, 0, 0), 0.7);
  CHECK_EQ_INT(r.token, 2);
  CHECK_NEAR(r.entropy, log(2.0), 1e-6);
  CHECK_NEAR(r.logprob, -log(2.0), 1e-6);
  /* the draw's last-token fallback (u * total rounds to the total) */
  const float f1[1] = {0};
  CHECK_EQ_INT(draw(f1, 1, params(1, 1, 0, 0), 1.0 - 1.0 / 9007199254740992.0).token, 0);
}

/* Random rows: smooth, heavy ties, wide, masked (-inf) entries. */
static void fill_row(float *x, int n, int mode) {
  for (int v = 0; v < n; v++) {
    switch (mode) {
    case 0: x[v] = (float)(unif() * 10 - 5); break;
    case 1: x[v] = (float)((int)(rnd() % 5) - 2); break;
    case 2: x[v] = (float)(unif() * 40 - 20); break;
    default: x[v] = rnd() % 7 == 0 ? -INFINITY : (float)((int)(rnd() % 9) * 0.5 - 2); break;
    }
  }
  if (mode == 3) x[rnd() % (uint64_t)n] = 3.0f;
}

static const float Ts[] = {0, 0.4f, 1, 1.7f};
static const float Ps[] = {1, 0.95f, 0.6f, 0.05f};
static const float Ms[] = {0, 0.03f, 0.3f, 1};
#define N_COMBOS (4 * 4 * 4 * 6)

static void combo(int c, int vocab, rollout_sampling *s) {
  rollout_sampling_defaults(s);
  s->temperature = Ts[c % 4];
  s->top_p = Ps[(c / 4) % 4];
  s->min_p = Ms[(c / 16) % 4];
  const int ks[6] = {0, 1, 2, 7, vocab - 1, vocab};
  s->top_k = ks[(c / 64) % 6] > 0 ? ks[(c / 64) % 6] : 0;
}

static int same(const grpo_sample_result *a, const rollout_sample_result *b) {
  return a->token == b->token && memcmp(&a->logprob, &b->logprob, 4) == 0 &&
         memcmp(&a->sampler_logprob, &b->sampler_logprob, 4) == 0 &&
         memcmp(&a->entropy, &b->entropy, 4) == 0;
}

/* A "device" whose memory is the host's: grpo_sampler stages its rows. */
static grpo_backend staged_backend(void) {
  grpo_backend b = *grpo_backend_cpu();
  b.name = "staged-device";
  b.kind = GRPO_DEVICE_CUDA;
  return b;
}

static void sampler_equals_reference(grpo_backend *be) {
  enum { ROWS = 6, PLAN_V = 300 };
  grpo_error err = {0};
  grpo_sampler *sm = NULL;
  CHECK_EQ_INT(grpo_sampler_create(be, ROWS, PLAN_V, &sm, &err), GRPO_OK);
  rollout_sampler_ws ws;
  CHECK_EQ_INT(rollout_sampler_ws_init(&ws, PLAN_V, &err), GRPO_OK);
  float *x = malloc(sizeof(float) * ROWS * (PLAN_V + 5));
  float *xr = malloc(sizeof(float) * ROWS * PLAN_V);
  uint16_t *xb = malloc(sizeof(uint16_t) * ROWS * (PLAN_V + 5));
  long cases = 0, bad = 0, bad16 = 0;
  for (int trial = 0; trial < 24; trial++) {
    int vocab = trial % 6 == 0 ? 1 + (int)(rnd() % 4) : 2 + (int)(rnd() % (PLAN_V - 1));
    int ld = vocab + (int)(rnd() % 5);
    int mode = trial % 4;
    for (int i = 0; i < ROWS; i++) fill_row(x + (size_t)i * ld, vocab, mode);
    for (int i = 0; i < ROWS; i++)
      for (int v = 0; v < vocab; v++) {
        xb[(size_t)i * ld + v] = grpo_f32_to_bf16(x[(size_t)i * ld + v]);
        xr[(size_t)i * vocab + v] = grpo_bf16_to_f32(xb[(size_t)i * ld + v]);
      }
    for (int c = 0; c < N_COMBOS; c++) {
      rollout_sampling s;
      combo(c, vocab, &s);
      grpo_sample_params p;
      rollout_sampling_params(&s, &p);
      double u[ROWS];
      for (int i = 0; i < ROWS; i++) u[i] = c % 13 == 0 ? 0.0 : unif();
      grpo_sample_result out[ROWS], out16[ROWS];
      CHECK_EQ_INT(grpo_sampler_run(sm, x, ld, ROWS, vocab, &p, u, out, &err), GRPO_OK);
      CHECK_EQ_INT(grpo_sampler_run_dtype(sm, xb, GRPO_BF16, ld, ROWS, vocab, &p, u, out16, &err),
                   GRPO_OK);
      for (int i = 0; i < ROWS; i++) {
        rollout_sample_result r;
        rollout_sample(x + (size_t)i * ld, vocab, &s, NULL, 0, u[i], &ws, &r);
        bad += !same(&out[i], &r);
        rollout_sample(xr + (size_t)i * vocab, vocab, &s, NULL, 0, u[i], &ws, &r);
        bad16 += !same(&out16[i], &r);
        cases++;
      }
    }
  }
  CHECK_MSG(bad == 0, "%ld of %ld rows differ from rollout_sample (%s)", bad, cases, be->name);
  CHECK_MSG(bad16 == 0, "%ld of %ld bf16 rows differ from rollout_sample (%s)", bad16, cases, be->name);
  /* plan limits */
  grpo_sample_params p = params(1, 1, 0, 0);
  double u[ROWS + 1] = {0};
  grpo_sample_result out[ROWS + 1];
  CHECK_EQ_INT(grpo_sampler_run(sm, x, PLAN_V, ROWS + 1, PLAN_V, &p, u, out, &err), GRPO_EINVAL);
  CHECK_EQ_INT(grpo_sampler_run(sm, x, PLAN_V + 1, 1, PLAN_V + 1, &p, u, out, &err), GRPO_EINVAL);
  CHECK_EQ_INT(grpo_sampler_run(sm, x, 10, 1, 11, &p, u, out, &err), GRPO_EINVAL);
  p.top_p = 0;
  CHECK_EQ_INT(grpo_sampler_run(sm, x, PLAN_V, 1, PLAN_V, &p, u, out, &err), GRPO_EINVAL);
  CHECK_EQ_INT(grpo_sampler_run(sm, x, PLAN_V, 0, PLAN_V, &p, u, out, &err), GRPO_EINVAL);
  free(x);
  free(xr);
  free(xb);
  rollout_sampler_ws_free(&ws);
  grpo_sampler_free(sm);
}

TEST(cpu_sampler_equals_rollout_sample) { sampler_equals_reference(grpo_backend_cpu()); }

TEST(staged_sampler_equals_rollout_sample) {
  grpo_backend b = staged_backend();
  sampler_equals_reference(&b);
}

/* ---- the engine: step_sample vs host sampling --------------------------------- */

#define PV 40
#define PSLOTS 3
#define PLEN 80
#define THINK 1
#define END_THINK 7
#define EOS_ID 3

typedef struct tpol {
  int32_t toks[PSLOTS][PLEN];
  int len[PSLOTS];
  float logits[PSLOTS * PV];
  grpo_sampler *sm;
  long sampled_steps;
} tpol;

/* Logits: a pure function of the last two tokens and the position, in steps
 * of 0.25 (ties), EOS and the end of thinking made likelier with the length. */
static void tp_logits(const int32_t *seq, int n, float *out) {
  int32_t a = n > 0 ? seq[n - 1] : 0, b = n > 1 ? seq[n - 2] : 0;
  for (int v = 0; v < PV; v++) {
    uint32_t w[4];
    grpo_rng_u32x4(5, GRPO_RNG_TEST, (uint32_t)n, (uint32_t)a, (uint32_t)b, (uint32_t)v, w);
    out[v] = 0.25f * (float)(w[0] % 16) - 2.0f;
  }
  out[EOS_ID] += 0.05f * (float)n;
  out[END_THINK] += 0.1f * (float)n;
}

static int tp_reset(void *ctx, int slot, grpo_error *err) {
  ((tpol *)ctx)->len[slot] = 0;
  return GRPO_OK;
}
static int tp_append(void *ctx, int slot, const int32_t *ids, int n, float *logits, grpo_error *err) {
  tpol *t = ctx;
  if (t->len[slot] + n > PLEN) return GRPO_FAIL(err, GRPO_EINVAL, "full");
  memcpy(t->toks[slot] + t->len[slot], ids, sizeof *ids * (size_t)n);
  t->len[slot] += n;
  tp_logits(t->toks[slot], t->len[slot], logits);
  return GRPO_OK;
}
static int tp_step(void *ctx, int n, const int *slots, const int32_t *ids, float *logits,
                   grpo_error *err) {
  tpol *t = ctx;
  for (int i = 0; i < n; i++) {
    int s = slots[i];
    if (t->len[s] + 1 > PLEN) return GRPO_FAIL(err, GRPO_EINVAL, "full");
    t->toks[s][t->len[s]++] = ids[i];
    tp_logits(t->toks[s], t->len[s], logits + (size_t)i * PV);
  }
  return GRPO_OK;
}
static int tp_step_sample(void *ctx, int n, const int *slots, const int32_t *ids, int vocab,
                          const grpo_sample_params *p, const double *u, grpo_sample_result *out,
                          grpo_error *err) {
  tpol *t = ctx;
  int rc = tp_step(ctx, n, slots, ids, t->logits, err);
  if (!rc) rc = grpo_sampler_run(t->sm, t->logits, PV, n, vocab, p, u, out, err);
  t->sampled_steps++;
  return rc;
}
static int tp_copy(void *ctx, int src, const int *dst, int n_dst, int n_tokens, grpo_error *err) {
  tpol *t = ctx;
  for (int i = 0; i < n_dst; i++) {
    memcpy(t->toks[dst[i]], t->toks[src], sizeof(int32_t) * (size_t)n_tokens);
    t->len[dst[i]] = n_tokens;
  }
  return GRPO_OK;
}
static int tp_truncate(void *ctx, int slot, int n_tokens, grpo_error *err) {
  ((tpol *)ctx)->len[slot] = n_tokens;
  return GRPO_OK;
}

#define NOUT 5
#define MAXNEW 24
typedef struct run_out {
  int32_t ids[NOUT][MAXNEW];
  float lp[NOUT][MAXNEW], slp[NOUT][MAXNEW];
  uint8_t forced[NOUT][MAXNEW];
  rollout_output o[NOUT];
} run_out;

static void generate(int device, const rollout_engine_options *opt, run_out *r, long *sampled) {
  static tpol t;
  memset(&t, 0, sizeof t);
  grpo_error err = {0};
  CHECK_EQ_INT(grpo_sampler_create(grpo_backend_cpu(), PSLOTS, PV, &t.sm, &err), GRPO_OK);
  rollout_policy pol = {.ctx = &t,
                        .vocab = PV,
                        .n_slots = PSLOTS,
                        .max_len = PLEN,
                        .reset = tp_reset,
                        .append = tp_append,
                        .step = tp_step,
                        .copy_prefix = tp_copy,
                        .truncate = tp_truncate,
                        .step_sample = device ? tp_step_sample : NULL};
  rollout_engine *e = NULL;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, &err), GRPO_OK);
  const int32_t p0[3] = {11, 12, THINK}, p1[2] = {13, THINK};
  rollout_group g[2] = {{p0, 3, 3, 4, 0}, {p1, 2, 2, 9, 1}};
  memset(r, 0, sizeof *r);
  for (int i = 0; i < NOUT; i++)
    r->o[i] = (rollout_output){.ids = r->ids[i], .logprobs = r->lp[i], .sampler_logprobs = r->slp[i],
                               .forced = r->forced[i]};
  CHECK_EQ_INT(rollout_engine_generate(e, opt, g, 2, r->o, NULL, &err), GRPO_OK);
  *sampled = t.sampled_steps;
  rollout_engine_free(e);
  grpo_sampler_free(t.sm);
}

static void check_same_runs(const run_out *a, const run_out *b) {
  for (int i = 0; i < NOUT; i++) {
    CHECK_EQ_INT(a->o[i].n, b->o[i].n);
    CHECK_EQ_INT(a->o[i].finish, b->o[i].finish);
    CHECK_EQ_INT(a->o[i].n_continuations, b->o[i].n_continuations);
    CHECK_EQ_INT(a->o[i].end_forced, b->o[i].end_forced);
  }
  CHECK(memcmp(a->ids, b->ids, sizeof a->ids) == 0);
  CHECK(memcmp(a->lp, b->lp, sizeof a->lp) == 0);
  CHECK(memcmp(a->slp, b->slp, sizeof a->slp) == 0);
  CHECK(memcmp(a->forced, b->forced, sizeof a->forced) == 0);
}

TEST(engine_step_sample_equals_host_sampling) {
  static const int32_t stop[1] = {EOS_ID}, end[1] = {END_THINK}, cont[2] = {20, 21};
  static run_out host, dev;
  for (int c = 0; c < 8; c++) {
    rollout_engine_options o = {0};
    rollout_sampling_defaults(&o.sampling);
    const float T[4] = {1.0f, 0.0f, 0.7f, 1.3f};
    o.sampling.temperature = T[c % 4];
    if (c % 4 == 2) o.sampling.top_k = 6, o.sampling.top_p = 0.9f;
    if (c % 4 == 3) o.sampling.min_p = 0.1f;
    o.max_new_tokens = MAXNEW;
    o.seed = 77 + (uint64_t)c;
    o.step = 3;
    o.stop_ids = stop;
    o.n_stop_ids = 1;
    o.vocab_limit = PV - 3;
    if (c >= 4) { /* budget forcing: injected tokens ignore the drawn one */
      o.budget.end_think = end;
      o.budget.n_end_think = 1;
      o.budget.continuation = cont;
      o.budget.n_continuation = 2;
      o.budget.min_think_tokens = 6;
      o.budget.max_think_tokens = 12;
    }
    long sh = 0, sd = 0;
    generate(0, &o, &host, &sh);
    generate(1, &o, &dev, &sd);
    CHECK_EQ_INT(sh, 0);
    CHECK(sd > 0);
    check_same_runs(&host, &dev);
    long forced = 0;
    for (int i = 0; i < NOUT; i++)
      for (int t = 0; t < dev.o[i].n; t++) forced += dev.forced[i][t];
    if (c >= 4) CHECK(forced > 0);
  }
  /* a repetition penalty needs the history: the host path */
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.sampling.repetition_penalty = 1.3f;
  o.max_new_tokens = MAXNEW;
  o.seed = 5;
  long sh = 0, sd = 0;
  generate(0, &o, &host, &sh);
  generate(1, &o, &dev, &sd);
  CHECK_EQ_INT(sd, 0);
  check_same_runs(&host, &dev);
}

int main(void) {
  RUN(rules_by_hand);
  RUN(cpu_sampler_equals_rollout_sample);
  RUN(staged_sampler_equals_rollout_sample);
  RUN(engine_step_sample_equals_host_sampling);
  return test_summary();
}
