/* trainer/allocate: the difficulty-adaptive sample allocator (issue #11).
 * Hand-computed greedy sequences, a brute-force optimum, a randomized budget
 * property over many Philox seeds, and the adaptive-vs-uniform comparison. */
#include <stdint.h>

#include "core/philox.h"
#include "test.h"
#include "trainer/allocate.h"

static trainer_alloc_options opts(trainer_alloc_objective obj, int64_t samples, int64_t tokens) {
  trainer_alloc_options o = {.objective = obj, .budget_samples = samples, .budget_tokens = tokens,
                             .min_extra = 0, .max_extra = -1, .max_tokens = 0};
  return o;
}

/* Two prompts, 0 of 2 (posterior Beta(1,3)) and no pilot (Beta(1,1)), groups
 * from g_min = 1. Gains f(G+1) - f(G) = E[p^G q] + E[q^G p]:
 *   Beta(1,3): (18/((G+1)(G+2)) + 3) / ((G+3)(G+4)) = .3, .15, .0929 (G = 1, 2, 3)
 *   Beta(1,1): 2/((G+1)(G+2))                       = 1/3, 1/6, 1/10
 * so from {1, 1} the samples go to prompts 1, 0 (budget 4), 1, 0, 1. */
TEST(group_sizes_hand_computed) {
  const int n0[2] = {2, 0}, c[2] = {0, 0};
  const int want[4][2] = {{2, 2}, {2, 3}, {3, 3}, {3, 4}};
  for (int b = 4; b <= 7; b++) {
    int g[2] = {-1, -1};
    grpo_error err = {0};
    CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, 2, NULL, b, 1, 10, g, &err), GRPO_OK);
    CHECK_EQ_INT(g[0], want[b - 4][0]);
    CHECK_EQ_INT(g[1], want[b - 4][1]);
  }
}

/* ESTIMATE: gain m(1-m) S / ((S+1)(S+e)(S+e+1)), posteriors Beta(2,2) and
 * Beta(1,3) (S = 4) from 1/2 and 0/2: .01, .00667, .00476 and .0075, .005.
 * Samples only: .01 -> 0; .00667 < .0075 -> 1; .00667 > .005 -> 0.
 * Tokens (costs ceil(9.5) = 10 and 6, 22 tokens): per token .001 < .00125 -> 1
 * (16 left); .001 > .000833 -> 0 (6 left); 0's next needs 10: 1 (0 left). */
TEST(eval_estimate_hand_computed) {
  const int n0[2] = {2, 2}, c[2] = {1, 0};
  int e[2];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_ESTIMATE, 3, -1);
  trainer_alloc_usage u;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 2, &o, e, &u, &err), GRPO_OK);
  CHECK_EQ_INT(e[0], 2);
  CHECK_EQ_INT(e[1], 1);
  CHECK_EQ_INT(u.samples, 3);
  CHECK_EQ_INT(u.tokens, 0);

  const double mean[2] = {9.5, 6.0};
  o = opts(TRAINER_ALLOC_ESTIMATE, -1, 22);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, mean, 2, &o, e, &u, &err), GRPO_OK);
  CHECK_EQ_INT(e[0], 1);
  CHECK_EQ_INT(e[1], 2);
  CHECK_EQ_INT(u.samples, 3);
  CHECK_EQ_INT(u.tokens, 22);
}

/* ANY_CORRECT: prompt 0 is solved (gain 0); 0/4 and 0/8 give Beta(1, B),
 * B = 5, 9, and gains E[q^e p] = B/((B+e)(B+e+1)): 1/6, .119, .0893, .0694
 * and .1, .0818, .0682. Budget 3: 1, 1, 2; budget 5: then 1, 2. */
TEST(eval_any_correct_hand_computed) {
  const int n0[3] = {4, 4, 8}, c[3] = {1, 0, 0};
  int e[3];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_ANY_CORRECT, 3, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 0 && e[1] == 2 && e[2] == 1);
  o.budget_samples = 5;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 0 && e[1] == 3 && e[2] == 2);
  /* a solved prompt gets nothing however large the budget: it is left unspent */
  o.budget_samples = 1000;
  o.max_extra = 10;
  trainer_alloc_usage u;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, &u, &err), GRPO_OK);
  CHECK(e[0] == 0 && e[1] == 10 && e[2] == 10);
  CHECK_EQ_INT(u.samples, 20);
}

/* GROUP_VARIANCE in eval (refill a group): a mixed pilot already has its
 * gradient; all-wrong and all-right (mirror posteriors) share the rest. */
TEST(eval_group_refill) {
  const int n0[3] = {4, 4, 4}, c[3] = {2, 0, 4};
  int e[3];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_GROUP_VARIANCE, 7, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 0 && e[1] == 4 && e[2] == 3);
}

/* UNIFORM: round robin from the lowest index; with a token budget a prompt
 * whose sample no longer fits drops out and the others go on. */
TEST(eval_uniform_round_robin) {
  const int n0[3] = {4, 4, 4}, c[3] = {0, 2, 4};
  int e[3];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_UNIFORM, 7, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 3 && e[1] == 2 && e[2] == 2);
  const double mean[3] = {10, 1, 1};
  o = opts(TRAINER_ALLOC_UNIFORM, -1, 13);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, mean, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 1 && e[1] == 2 && e[2] == 1);
}

/* A prompt with no mean costs max_tokens (the conservative bound). */
TEST(eval_unknown_cost_is_max_tokens) {
  const int n0[2] = {4, 4}, c[2] = {2, 2};
  const double mean[2] = {3, NAN};
  int e[2];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_UNIFORM, -1, 30);
  o.max_tokens = 100;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, mean, 2, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 10 && e[1] == 0);
  o.budget_tokens = 103;
  trainer_alloc_usage u;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, mean, 2, &o, e, &u, &err), GRPO_OK);
  CHECK(e[0] == 1 && e[1] == 1);
  CHECK_EQ_INT(u.tokens, 103);
  o.max_tokens = 0;  /* unknown cost and no bound: refused, naming the prompt */
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, mean, 2, &o, e, NULL, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "prompt 1") != NULL);
}

TEST(uncertain_prompts_get_more) {
  /* eval: p = 1/10, 1/2, 9/10, 3/10 */
  const int n0[4] = {8, 8, 8, 8}, c[4] = {0, 4, 8, 2};
  int e[4];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_ESTIMATE, 40, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 4, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[1] > e[3] && e[3] > e[0]);
  CHECK(e[0] == e[2] || e[0] == e[2] + 1);  /* symmetric in p <-> 1-p; ties to the lower index */
  CHECK_EQ_INT(e[0] + e[1] + e[2] + e[3], 40);

  /* GRPO: a coin-flip prompt gets a large group; prompts confirmed near 0 or
   * 1 (0/64, 64/64) stay near g_min while the budget is tight */
  const int m0[3] = {64, 8, 64}, mc[3] = {0, 4, 64};
  int g[3];
  CHECK_EQ_INT(trainer_alloc_group_sizes(m0, mc, 3, NULL, 12, 2, 16, g, &err), GRPO_OK);
  CHECK(g[1] > g[0] && g[1] > g[2] && g[0] >= g[2]);
}

TEST(caps_are_honoured) {
  const int n0[3] = {8, 8, 8}, c[3] = {4, 3, 0};
  int e[3];
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_ESTIMATE, 100, -1);
  o.min_extra = 1;
  o.max_extra = 2;
  trainer_alloc_usage u;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, &u, &err), GRPO_OK);
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(e[i], 2);
  CHECK_EQ_INT(u.samples, 6);
  /* the minimum is given even to a prompt the objective ignores */
  o = opts(TRAINER_ALLOC_ANY_CORRECT, 5, -1);
  o.min_extra = 1;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 1 && e[1] == 1 && e[2] == 3);
  /* group sizes: g_max caps the coin flips, the rest is left unspent */
  int g[3];
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, 3, NULL, 1000, 2, 5, g, &err), GRPO_OK);
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(g[i], 5);
}

TEST(determinism_and_ties) {
  const int n0[5] = {3, 3, 3, 3, 3}, c[5] = {1, 1, 1, 1, 1};
  int a[5], b[5];
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, 5, NULL, 17, 2, 8, a, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, 5, NULL, 17, 2, 8, b, &err), GRPO_OK);
  const int want[5] = {4, 4, 3, 3, 3};  /* equal prompts: the remainder to the lowest indices */
  for (int i = 0; i < 5; i++) {
    CHECK_EQ_INT(a[i], b[i]);
    CHECK_EQ_INT(a[i], want[i]);
  }
  trainer_alloc_options o = opts(TRAINER_ALLOC_ESTIMATE, 12, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 5, &o, a, NULL, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 5, &o, b, NULL, &err), GRPO_OK);
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(a[i], want[i] - 1);
  CHECK(memcmp(a, b, sizeof a) == 0);
}

TEST(degenerate_inputs) {
  grpo_error err = {0};
  trainer_alloc_options o = opts(TRAINER_ALLOC_ESTIMATE, 10, 100);
  trainer_alloc_usage u = {-1, -1};
  /* no prompts */
  CHECK_EQ_INT(trainer_alloc_eval(NULL, NULL, NULL, 0, &o, NULL, &u, &err), GRPO_OK);
  CHECK(u.samples == 0 && u.tokens == 0);
  CHECK_EQ_INT(trainer_alloc_group_sizes(NULL, NULL, 0, NULL, 0, 2, 8, NULL, &err), GRPO_OK);
  double m = -1;
  CHECK_EQ_INT(trainer_alloc_expected_success(NULL, NULL, NULL, NULL, 0, TRAINER_METRIC_MAJORITY, &m, &err), GRPO_OK);
  CHECK(m == 0);

  /* zero budget: nothing, cleanly; a minimum that cannot fit: EBUDGET, output untouched */
  const int n0[3] = {0, 5, 5}, c[3] = {0, 0, 5};
  int e[3] = {7, 7, 7};
  o = opts(TRAINER_ALLOC_GROUP_VARIANCE, 0, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_OK);
  CHECK(e[0] == 0 && e[1] == 0 && e[2] == 0);
  for (int i = 0; i < 3; i++) e[i] = 7;
  o.min_extra = 1;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_EBUDGET);
  CHECK(strstr(err.msg, "budget_samples") != NULL);
  CHECK(e[0] == 7 && e[1] == 7 && e[2] == 7);
  o = opts(TRAINER_ALLOC_GROUP_VARIANCE, -1, 0);
  o.max_tokens = 4;
  o.min_extra = 1;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, 3, &o, e, NULL, &err), GRPO_EBUDGET);
  CHECK(strstr(err.msg, "budget_tokens") != NULL);
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, 3, NULL, 5, 2, 8, e, &err), GRPO_EBUDGET);
  CHECK(e[0] == 7);

  /* every prompt all-wrong or all-right; n0 = 0 included */
  const int z0[4] = {0, 4, 4, 0}, zc[4] = {0, 0, 4, 0};
  int g[4];
  CHECK_EQ_INT(trainer_alloc_group_sizes(z0, zc, 4, NULL, 16, 2, 8, g, &err), GRPO_OK);
  CHECK_EQ_INT(g[0] + g[1] + g[2] + g[3], 16);
  o = opts(TRAINER_ALLOC_ANY_CORRECT, 100, -1);
  const int s0[2] = {4, 4}, sc[2] = {4, 1};
  CHECK_EQ_INT(trainer_alloc_eval(s0, sc, NULL, 2, &o, e, &u, &err), GRPO_OK);
  CHECK(e[0] == 0 && e[1] == 0 && u.samples == 0);  /* all solved: spend nothing */

  /* bad input is refused with the field named */
  const int b0[2] = {4, 4}, bc[2] = {1, 5};
  o = opts(TRAINER_ALLOC_ESTIMATE, 10, -1);
  CHECK_EQ_INT(trainer_alloc_eval(b0, bc, NULL, 2, &o, e, NULL, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "correct[1]") != NULL);
  const int n_neg[1] = {-1}, c0[1] = {0};
  CHECK_EQ_INT(trainer_alloc_group_sizes(n_neg, c0, 1, NULL, 4, 2, 8, e, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "n0[0]") != NULL);
  CHECK_EQ_INT(trainer_alloc_group_sizes(b0, c0, 1, NULL, 4, 0, 8, e, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "g_min") != NULL);
  CHECK_EQ_INT(trainer_alloc_group_sizes(b0, c0, 1, NULL, 4, 3, 2, e, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "g_max") != NULL);
  o = opts(TRAINER_ALLOC_ESTIMATE, -1, -1);
  CHECK_EQ_INT(trainer_alloc_eval(b0, c0, NULL, 1, &o, e, NULL, &err), GRPO_EINVAL);
  o = opts(TRAINER_ALLOC_ESTIMATE, 4, -1);
  o.min_extra = 3;
  o.max_extra = 2;
  CHECK_EQ_INT(trainer_alloc_eval(b0, c0, NULL, 1, &o, e, NULL, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "min_extra") != NULL);
  o = opts((trainer_alloc_objective)9, 4, -1);
  CHECK_EQ_INT(trainer_alloc_eval(b0, c0, NULL, 1, &o, e, NULL, &err), GRPO_EINVAL);
  const double huge[1] = {1e300};
  o = opts(TRAINER_ALLOC_ESTIMATE, -1, 100);
  CHECK_EQ_INT(trainer_alloc_eval(b0, c0, huge, 1, &o, e, NULL, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "mean_tokens[0]") != NULL);
}

TEST(expected_success_hand_computed) {
  grpo_error err = {0};
  double m;
  const double p[4] = {0.5, 0.5, 0.7, 0.3};
  const int n[4] = {3, 2, 3, 0};
  /* no first round. any: 7/8, 3/4, 1 - .027, 0 */
  CHECK_EQ_INT(trainer_alloc_expected_success(p, NULL, NULL, n, 4, TRAINER_METRIC_ANY_CORRECT, &m, &err), GRPO_OK);
  CHECK_NEAR(m, (0.875 + 0.75 + 0.973) / 4, 1e-12);
  /* majority: 1/2; 1/4 + (1/2)(1/2) (tie); .343 + 3(.49)(.3) = .784; 0 */
  CHECK_EQ_INT(trainer_alloc_expected_success(p, NULL, NULL, n, 4, TRAINER_METRIC_MAJORITY, &m, &err), GRPO_OK);
  CHECK_NEAR(m, (0.5 + 0.5 + 0.784) / 4, 1e-12);
  /* group variance: 1 - 2/8, 1 - 2/4, 1 - .343 - .027, 0 */
  CHECK_EQ_INT(trainer_alloc_expected_success(p, NULL, NULL, n, 4, TRAINER_METRIC_GROUP_VARIANCE, &m, &err), GRPO_OK);
  CHECK_NEAR(m, (0.75 + 0.5 + 0.63) / 4, 1e-12);

  /* with a first round: (n0, c) = (2, 1), (2, 0), (3, 3), (2, 2) */
  const int n0[4] = {2, 2, 3, 2}, c[4] = {1, 0, 3, 2};
  /* any: solved 1; 1 - .5^2 = .75; solved 1; solved 1 */
  CHECK_EQ_INT(trainer_alloc_expected_success(p, n0, c, n, 4, TRAINER_METRIC_ANY_CORRECT, &m, &err), GRPO_OK);
  CHECK_NEAR(m, (1 + 0.75 + 1 + 1) / 4, 1e-12);
  /* majority of 5 votes with 1 in: X >= 2 of 3 at p = .5: 1/2;
   * 4 votes with 0 in: X = 2 of 2 is a tie: .25/2;
   * 6 votes with 3 in: X >= 1 of 3 wins (1 - .027), X = 0 ties (.027/2);
   * 2 votes, both right, nothing more: 1 */
  CHECK_EQ_INT(trainer_alloc_expected_success(p, n0, c, n, 4, TRAINER_METRIC_MAJORITY, &m, &err), GRPO_OK);
  CHECK_NEAR(m, (0.5 + 0.125 + 0.973 + 0.0135 + 1) / 4, 1e-12);
  /* group variance: mixed 1; all wrong, 2 more at .5: .75; all right,
   * 3 more at .7: 1 - .343; all right, none more: 0 */
  CHECK_EQ_INT(trainer_alloc_expected_success(p, n0, c, n, 4, TRAINER_METRIC_GROUP_VARIANCE, &m, &err), GRPO_OK);
  CHECK_NEAR(m, (1 + 0.75 + 0.657 + 0) / 4, 1e-12);

  /* extremes and a large n (log-space pmf): p = 0.6, n = 2001 -> ~1 */
  const double q[3] = {0.0, 1.0, 0.6};
  const int k[3] = {5, 5, 2001};
  CHECK_EQ_INT(trainer_alloc_expected_success(q, NULL, NULL, k, 3, TRAINER_METRIC_MAJORITY, &m, &err), GRPO_OK);
  CHECK_NEAR(m, 2.0 / 3, 1e-9);
  const double bad[1] = {NAN};
  CHECK_EQ_INT(trainer_alloc_expected_success(bad, NULL, NULL, k, 1, TRAINER_METRIC_MAJORITY, &m, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "pass_rate[0]") != NULL);
  CHECK_EQ_INT(trainer_alloc_expected_success(p, n0, NULL, n, 4, TRAINER_METRIC_MAJORITY, &m, &err), GRPO_EINVAL);
}

/* P(a fresh group of G is mixed) under the Beta(A, B) posterior, written
 * independently of the allocator: E[p^G] = prod_j (A+j)/(A+B+j). */
static double mixed_prob(double A, double B, int G) {
  double ep = 1, eq = 1;
  for (int j = 0; j < G; j++) {
    ep *= (A + j) / (A + B + j);
    eq *= (B + j) / (A + B + j);
  }
  return 1 - ep - eq;
}

static double group_value(const int *n0, const int *c, const int *g, int n) {
  double v = 0;
  for (int i = 0; i < n; i++) v += mixed_prob(1.0 + c[i], 1.0 + n0[i] - c[i], g[i]);
  return v;
}

static double group_optimum(const int *n0, const int *c, int n, int budget, int gmin, int gmax) {
  double best[64], next[64];
  for (int b = 0; b <= budget; b++) best[b] = 0;
  for (int i = 0; i < n; i++) {
    for (int b = 0; b <= budget; b++) {
      next[b] = -1e300;
      for (int g = gmin; g <= gmax && g <= b; g++) {
        double v = best[b - g] + mixed_prob(1.0 + c[i], 1.0 + n0[i] - c[i], g);
        if (v > next[b]) next[b] = v;
      }
    }
    memcpy(best, next, sizeof best);
  }
  return best[budget];
}

TEST(group_sizes_are_optimal) {
  for (uint32_t seed = 0; seed < 300; seed++) {
    grpo_rng_stream s;
    grpo_rng_stream_init(&s, 11, GRPO_RNG_TEST, seed, 1);
    int n = 1 + (int)grpo_rng_stream_below(&s, 5);
    int n0[5], c[5], g[5];
    for (int i = 0; i < n; i++) {
      n0[i] = (int)grpo_rng_stream_below(&s, 17);
      c[i] = (int)grpo_rng_stream_below(&s, (uint32_t)n0[i] + 1);
    }
    int gmin = 1 + (int)grpo_rng_stream_below(&s, 3);
    int gmax = gmin + (int)grpo_rng_stream_below(&s, 10);
    int budget = n * gmin + (int)grpo_rng_stream_below(&s, (uint32_t)(63 - n * gmin));
    grpo_error err = {0};
    CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, n, NULL, budget, gmin, gmax, g, &err), GRPO_OK);
    int sum = 0;
    for (int i = 0; i < n; i++) sum += g[i];
    CHECK(sum <= budget);
    CHECK_EQ_INT(sum, budget < n * gmax ? budget : n * gmax);  /* every gain is > 0: fills */
    CHECK_NEAR(group_value(n0, c, g, n), group_optimum(n0, c, n, budget, gmin, gmax), 1e-12);
  }
}

/* Property: over many seeds and every objective, the budget is never
 * exceeded, caps hold, usage is what was spent, and the allocation is
 * maximal (no prompt with a positive gain could take one more sample). */
TEST(budget_never_exceeded_randomized) {
  int n_ok = 0, n_budget_fail = 0;
  for (uint32_t seed = 0; seed < 3000; seed++) {
    grpo_rng_stream s;
    grpo_rng_stream_init(&s, 2026, GRPO_RNG_TEST, seed, 0);
    enum { NMAX = 40 };
    int n = (int)grpo_rng_stream_below(&s, NMAX + 1);
    int n0[NMAX], c[NMAX], e[NMAX];
    double mean[NMAX];
    int64_t cost[NMAX];
    trainer_alloc_options o;
    o.objective = (trainer_alloc_objective)grpo_rng_stream_below(&s, 4);
    o.max_tokens = 1 + (int)grpo_rng_stream_below(&s, 64);
    int with_means = grpo_rng_stream_below(&s, 4) != 0;
    for (int i = 0; i < n; i++) {
      n0[i] = (int)grpo_rng_stream_below(&s, 17);
      c[i] = (int)grpo_rng_stream_below(&s, (uint32_t)n0[i] + 1);
      mean[i] = grpo_rng_stream_below(&s, 5) == 0 ? NAN : 0.25 + 40 * grpo_rng_stream_unit(&s);
      cost[i] = with_means && mean[i] > 0 ? (int64_t)ceil(mean[i]) : o.max_tokens;
    }
    uint32_t kind = grpo_rng_stream_below(&s, 3); /* samples, tokens, both */
    o.budget_samples = kind != 1 ? (int64_t)grpo_rng_stream_below(&s, 200) : -1;
    o.budget_tokens = kind != 0 ? (int64_t)grpo_rng_stream_below(&s, 3000) : -1;
    o.min_extra = grpo_rng_stream_below(&s, 3) == 0 ? (int)grpo_rng_stream_below(&s, 3) : 0;
    o.max_extra = grpo_rng_stream_below(&s, 2) ? o.min_extra + (int)grpo_rng_stream_below(&s, 12) : -1;
    o.prior.a = o.prior.b = 0;
    if (grpo_rng_stream_below(&s, 2)) {
      o.prior.a = 0.05 + 5 * grpo_rng_stream_unit(&s);
      o.prior.b = 0.05 + 5 * grpo_rng_stream_unit(&s);
    }
    for (int i = 0; i < n; i++) e[i] = -7;
    trainer_alloc_usage u;
    grpo_error err = {0};
    int rc = trainer_alloc_eval(n0, c, with_means ? mean : NULL, n, &o, e, &u, &err);
    if (rc == GRPO_EBUDGET) {
      /* only when the minimum alone does not fit */
      int64_t ms = (int64_t)n * o.min_extra, mt = 0;
      for (int i = 0; i < n; i++) mt += cost[i] * o.min_extra;
      CHECK((o.budget_samples >= 0 && ms > o.budget_samples) || (o.budget_tokens >= 0 && mt > o.budget_tokens));
      for (int i = 0; i < n; i++) CHECK_EQ_INT(e[i], -7);
      n_budget_fail++;
      continue;
    }
    CHECK_MSG(rc == GRPO_OK, "seed %u: %s", seed, err.msg);
    n_ok++;
    int64_t ss = 0, st = 0;
    for (int i = 0; i < n; i++) {
      CHECK(e[i] >= o.min_extra);
      CHECK(o.max_extra < 0 || e[i] <= o.max_extra);
      ss += e[i];
      st += e[i] * cost[i];
    }
    CHECK_MSG(o.budget_samples < 0 || ss <= o.budget_samples, "seed %u: %lld samples > %lld", seed,
              (long long)ss, (long long)o.budget_samples);
    CHECK_MSG(o.budget_tokens < 0 || st <= o.budget_tokens, "seed %u: %lld tokens > %lld", seed,
              (long long)st, (long long)o.budget_tokens);
    CHECK_EQ_INT(u.samples, ss);
    CHECK_EQ_INT(u.tokens, o.budget_tokens >= 0 ? st : 0);
    for (int i = 0; i < n; i++) {
      if (o.max_extra >= 0 && e[i] >= o.max_extra) continue;
      if (o.objective == TRAINER_ALLOC_ANY_CORRECT && c[i] > 0) continue;
      if (o.objective == TRAINER_ALLOC_GROUP_VARIANCE && c[i] > 0 && c[i] < n0[i]) continue;
      int fits = (o.budget_samples < 0 || ss < o.budget_samples) &&
                 (o.budget_tokens < 0 || st + cost[i] <= o.budget_tokens);
      CHECK_MSG(!fits, "seed %u: prompt %d could take another sample", seed, i);
    }
  }
  CHECK(n_ok > 2000);
  CHECK(n_budget_fail > 0);
}

/* The report: with a batch of mostly hard prompts (p ~ Beta(0.3, 1.5),
 * pilot of 8 drawn by Philox from the true rates), adaptive group sizes
 * leave fewer zero-variance groups than uniform G for the same budget, and
 * adaptive eval samples raise pass@n over uniform ones. */
static double beta_draw(grpo_rng_stream *s, double a, double b) {
  /* Johnk's method: exact for any a, b > 0 */
  for (;;) {
    double u = grpo_rng_stream_unit(s), v = grpo_rng_stream_unit(s);
    double x = pow(u, 1 / a), y = pow(v, 1 / b);
    if (x + y <= 1 && x + y > 0) return x / (x + y);
  }
}

TEST(adaptive_beats_uniform) {
  enum { N = 1000, N0 = 8, G = 8 };
  static double p[N];
  static int n0[N], c[N], g[N], gl[N], gu[N], e[N], eu[N];
  grpo_rng_stream s;
  grpo_rng_stream_init(&s, 5, GRPO_RNG_TEST, 77, 0);
  for (int i = 0; i < N; i++) {
    p[i] = beta_draw(&s, 0.3, 1.5);
    n0[i] = N0;
    c[i] = 0;
    for (int k = 0; k < N0; k++) c[i] += grpo_rng_stream_unit(&s) < p[i];
    gu[i] = G;
  }
  grpo_error err = {0};
  trainer_alloc_prior prior;
  CHECK_EQ_INT(trainer_alloc_fit_prior(n0, c, N, &prior, &err), GRPO_OK);
  CHECK(prior.a > 0.15 && prior.a < 0.6 && prior.b > 0.75 && prior.b < 3);
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, N, &prior, (int64_t)N * G, 2, 32, g, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, N, NULL, (int64_t)N * G, 2, 32, gl, &err), GRPO_OK);
  double va, vl, vu;
  CHECK_EQ_INT(trainer_alloc_expected_success(p, NULL, NULL, g, N, TRAINER_METRIC_GROUP_VARIANCE, &va, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_alloc_expected_success(p, NULL, NULL, gl, N, TRAINER_METRIC_GROUP_VARIANCE, &vl, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_alloc_expected_success(p, NULL, NULL, gu, N, TRAINER_METRIC_GROUP_VARIANCE, &vu, &err), GRPO_OK);
  printf("prior Beta(%.3f, %.3f); groups with a gradient: fitted prior %.4f, Beta(1,1) %.4f, uniform %.4f\n",
         prior.a, prior.b, va, vl, vu);
  CHECK(va > vu + 0.005);
  CHECK(vl > vu - 0.005);

  trainer_alloc_options o = opts(TRAINER_ALLOC_ANY_CORRECT, (int64_t)N * G, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, N, &o, e, NULL, &err), GRPO_OK);
  o.objective = TRAINER_ALLOC_UNIFORM;
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, N, &o, eu, NULL, &err), GRPO_OK);
  for (int i = 0; i < N; i++) CHECK_EQ_INT(eu[i], G);
  CHECK_EQ_INT(trainer_alloc_expected_success(p, n0, c, e, N, TRAINER_METRIC_ANY_CORRECT, &va, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_alloc_expected_success(p, n0, c, eu, N, TRAINER_METRIC_ANY_CORRECT, &vu, &err), GRPO_OK);
  printf("pass@n: adaptive %.4f, uniform %.4f\n", va, vu);
  CHECK(va > vu + 0.005);
  /* the accuracy estimate: posterior-variance allocation vs uniform, as the
   * mean squared error of the per-prompt pass-rate estimates would show */
  o = opts(TRAINER_ALLOC_ESTIMATE, (int64_t)N * G, -1);
  CHECK_EQ_INT(trainer_alloc_eval(n0, c, NULL, N, &o, e, NULL, &err), GRPO_OK);
  double mse_a = 0, mse_u = 0;
  for (int i = 0; i < N; i++) {
    mse_a += p[i] * (1 - p[i]) / (n0[i] + e[i]);
    mse_u += p[i] * (1 - p[i]) / (n0[i] + eu[i]);
  }
  printf("pass-rate estimate variance: adaptive %.6f, uniform %.6f\n", mse_a / N, mse_u / N);
  CHECK(mse_a < mse_u);
}

TEST(fit_prior) {
  enum { N = 4000 };
  static int n0[N], c[N];
  grpo_rng_stream s;
  grpo_rng_stream_init(&s, 9, GRPO_RNG_TEST, 3, 0);
  for (int i = 0; i < N; i++) {
    double p = beta_draw(&s, 2, 6);
    n0[i] = 4 + (int)grpo_rng_stream_below(&s, 13);  /* n0 varies: 4..16 */
    c[i] = 0;
    for (int k = 0; k < n0[i]; k++) c[i] += grpo_rng_stream_unit(&s) < p;
  }
  grpo_error err = {0};
  trainer_alloc_prior pr;
  CHECK_EQ_INT(trainer_alloc_fit_prior(n0, c, N, &pr, &err), GRPO_OK);
  CHECK_MSG(fabs(pr.a - 2) < 0.4 && fabs(pr.b - 6) < 1.2, "Beta(%g, %g)", pr.a, pr.b);
  /* one rate for all: no spread beyond binomial noise, a sharp prior at the mean */
  for (int i = 0; i < N; i++) {
    n0[i] = 10;
    c[i] = 3;
  }
  CHECK_EQ_INT(trainer_alloc_fit_prior(n0, c, N, &pr, &err), GRPO_OK);
  CHECK(pr.a + pr.b > 1000);
  CHECK_NEAR(pr.a / (pr.a + pr.b), 0.3, 1e-9);
  /* nothing to learn from: flat */
  for (int i = 0; i < N; i++) c[i] = 0;
  CHECK_EQ_INT(trainer_alloc_fit_prior(n0, c, N, &pr, &err), GRPO_OK);
  CHECK(pr.a == 1 && pr.b == 1);
  CHECK_EQ_INT(trainer_alloc_fit_prior(n0, c, 1, &pr, &err), GRPO_OK);
  CHECK(pr.a == 1 && pr.b == 1);
  /* a bad prior is refused */
  trainer_alloc_prior bad = {-1, 2};
  int g[2];
  CHECK_EQ_INT(trainer_alloc_group_sizes(n0, c, 2, &bad, 8, 2, 4, g, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "prior") != NULL);
}

int main(void) {
  RUN(group_sizes_hand_computed);
  RUN(eval_estimate_hand_computed);
  RUN(eval_any_correct_hand_computed);
  RUN(eval_group_refill);
  RUN(eval_uniform_round_robin);
  RUN(eval_unknown_cost_is_max_tokens);
  RUN(uncertain_prompts_get_more);
  RUN(caps_are_honoured);
  RUN(determinism_and_ties);
  RUN(degenerate_inputs);
  RUN(expected_success_hand_computed);
  RUN(group_sizes_are_optimal);
  RUN(budget_never_exceeded_randomized);
  RUN(adaptive_beats_uniform);
  RUN(fit_prior);
  return test_summary();
}
