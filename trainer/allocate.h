/* Difficulty-adaptive sample allocation (issue #11).
 *
 * A first small round of samples per prompt (n0 drawn, c correct) gives its
 * pass rate p a Beta(a + c, b + n0 - c) posterior; the prior is Beta(1, 1)
 * (so 0/4 is not "never") or one fitted to the batch. A budget of further
 * samples (and/or tokens) then goes, one sample at a time, to the prompt
 * whose next sample buys the most expected objective per unit of cost; ties
 * go to the lowest index, so the result is a pure function of the inputs.
 * Every objective has diminishing returns in the sample count, so this greedy
 * is optimal for a sample budget and the usual ratio greedy for a token one.
 *
 * The expectation is over the posterior, not at a point estimate: with
 * Laplace's p = 1/6 for a 0/4 prompt, a batch of mostly hopeless and mostly
 * solved prompts got big groups for the hopeless ones and lost to uniform G
 * (simulated: about -0.01 of the groups with a gradient); the posterior
 * breaks even there and a fitted prior gains (tests/trainer/test_allocate.c).
 *
 * The budget is a hard bound on planned cost: sum(extra_i) <= budget_samples
 * and sum(extra_i * cost_i) <= budget_tokens, where cost_i is the prompt's
 * mean tokens per sample rounded up, or max_tokens when it has none. Pass
 * max_tokens = max_completion_length and no means for a bound on real cost.
 *
 * Two front ends share the greedy: trainer_alloc_eval hands out extra samples
 * for evaluation; trainer_alloc_group_sizes picks GRPO group sizes
 * (rollout.adaptive_group_size) so fewer groups come back with zero reward
 * variance, which carry no gradient. trainer_alloc_expected_success scores an
 * allocation under given pass rates, to report it against the uniform one
 * (TRAINER_ALLOC_UNIFORM with the same budget). */
#ifndef GRPO_TRAINER_ALLOCATE_H
#define GRPO_TRAINER_ALLOCATE_H

#include <stdint.h>

#include "core/error.h"

typedef enum trainer_alloc_objective {
  /* P(the prompt's samples are not all equal): the chance its GRPO group has
   * a gradient. For group sizes, 1 - p^G - (1-p)^G; for eval, the extra
   * samples join the n0 pilot ones (dynamic-sampling refill): mixed pilots
   * gain nothing, all-equal ones need one sample of the other kind. */
  TRAINER_ALLOC_GROUP_VARIANCE = 0,
  /* Minus the posterior variance of the pass rate after e more samples (the
   * accuracy estimate's error); priority ~ p(1-p) / n^2. */
  TRAINER_ALLOC_ESTIMATE = 1,
  /* P(at least one correct): prompts already solved in the first round gain
   * nothing; the others 1 - (1-p)^e. */
  TRAINER_ALLOC_ANY_CORRECT = 2,
  /* Round robin (the baseline): everyone gets the same count, the
   * remainder to the lowest indices. */
  TRAINER_ALLOC_UNIFORM = 3,
} trainer_alloc_objective;

/* Beta(a, b) prior on a prompt's pass rate; a = b = 0 means Beta(1, 1). */
typedef struct trainer_alloc_prior {
  double a, b;
} trainer_alloc_prior;

/* Fits the prior to a batch's first round by the method of moments (the
 * spread of pass rates beyond binomial noise), over prompts with n0 >= 2.
 * Too little data, or all wrong / all right: Beta(1, 1). */
int trainer_alloc_fit_prior(const int *n0, const int *correct, int n_prompts,
                            trainer_alloc_prior *prior, grpo_error *err);

typedef struct trainer_alloc_options {
  trainer_alloc_objective objective;
  int64_t budget_samples;  /* extra samples in all; < 0: no sample budget */
  int64_t budget_tokens;   /* extra tokens in all; < 0: no token budget */
  int min_extra;           /* every prompt gets at least this many (>= 0) */
  int max_extra;           /* and at most this many; < 0: no cap */
  int max_tokens;          /* cost of a sample of a prompt with no mean tokens */
  trainer_alloc_prior prior; /* {0, 0}: Beta(1, 1) */
} trainer_alloc_options;

/* What an allocation spent (planned cost). */
typedef struct trainer_alloc_usage {
  int64_t samples;
  int64_t tokens;          /* 0 when no token budget was given */
} trainer_alloc_usage;

/* Extra samples per prompt for evaluation. n0[i] and correct[i] are prompt
 * i's first round (0 <= correct <= n0; n0 = 0 is allowed: p = 1/2);
 * mean_tokens (may be NULL) its mean completion tokens per sample, a value
 * <= 0 or NaN meaning unknown. Writes extra[n_prompts] and, if usage is not
 * NULL, what was spent. Fails (extra untouched) on bad input, on no budget
 * at all, or when the minimum does not fit the budget (GRPO_EBUDGET). */
int trainer_alloc_eval(const int *n0, const int *correct, const double *mean_tokens,
                       int n_prompts, const trainer_alloc_options *opt, int *extra,
                       trainer_alloc_usage *usage, grpo_error *err);

/* GRPO group sizes under a per-step sample budget: group_size[i] in
 * [g_min, g_max] (1 <= g_min <= g_max), sum <= budget, chosen to maximise the
 * expected number of groups with non-zero reward variance given the pilot
 * estimates n0/correct (e.g. the prompt's last visit) under prior (NULL:
 * Beta(1, 1)). Fails with GRPO_EBUDGET when n_prompts * g_min > budget. */
int trainer_alloc_group_sizes(const int *n0, const int *correct, int n_prompts,
                              const trainer_alloc_prior *prior, int64_t budget, int g_min, int g_max,
                              int *group_size, grpo_error *err);

typedef enum trainer_alloc_metric {
  TRAINER_METRIC_ANY_CORRECT = 0,    /* at least one correct: 1 - (1-p)^n (pass@n) */
  TRAINER_METRIC_MAJORITY = 1,       /* more than half correct, a tie counts 1/2 (maj@n) */
  TRAINER_METRIC_GROUP_VARIANCE = 2, /* not all equal: 1 - p^n - (1-p)^n (GRPO groups with a gradient) */
} trainer_alloc_metric;

/* Mean over prompts of the metric when prompt i, with pass rate
 * pass_rate[i] in [0, 1], gets n_samples[i] >= 0 more samples after a first
 * round of n0[i] with correct[i] right (n0 and correct both NULL: no first
 * round). The first round counts: a prompt solved there has pass@n 1, its
 * votes join the majority, a mixed pilot group has its variance. Conditioning
 * on it is what makes an adaptive allocation comparable with a uniform one.
 * Writes *mean (0 for no prompts). */
int trainer_alloc_expected_success(const double *pass_rate, const int *n0, const int *correct,
                                   const int *n_samples, int n_prompts, trainer_alloc_metric metric,
                                   double *mean, grpo_error *err);

#endif
