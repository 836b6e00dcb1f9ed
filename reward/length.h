/* Length rewards, in completion tokens.
 *
 * `overlong`: DAPO's soft overlong punishment (arXiv 2503.14476 Eq. 13;
 * reference/pgrpo.md §5), with L_max = max_completion_length and
 * L_cache = cache_length:
 *     0                                   L <= L_max - L_cache
 *     f * ((L_max - L_cache) - L) / L_cache   inside the cache window
 *     -f                                  L > L_max
 * with f = penalty_factor (1). penalize_truncated: a truncated completion
 * gets -f whatever L (off by default: DAPO looks at the length only).
 *
 * `length`: simple shaping, one of
 *   mode=target  -min(1, |L - target_length| / tolerance)
 *   mode=budget  -min(1, max(0, L - target_length) / tolerance)   (only above)
 *   mode=group   Kimi k1.5 group-relative: lambda = 0.5 - (L - L_min)/(L_max - L_min)
 *                over the group's lengths (0 when all equal); correct -> lambda,
 *                incorrect -> min(0, lambda). Needs the whole group
 *                (reward_registry_score_group); a per-completion call is NaN.
 * tolerance defaults to target_length. */
#ifndef GRPO_REWARD_LENGTH_H
#define GRPO_REWARD_LENGTH_H

#include <stdint.h>

#include "core/error.h"

typedef struct reward_overlong_options {
  int64_t max_completion_length; /* required, > 0 */
  int64_t cache_length;          /* default max_completion_length / 5 (DAPO: 4096 of 20480) */
  double penalty_factor;         /* 1.0 (verl/OpenRLHF overlong penalty_factor) */
  int penalize_truncated;        /* 0 */
  int cache_set;                 /* internal: cache_length was given */
} reward_overlong_options;

void reward_overlong_defaults(reward_overlong_options *opt);
int reward_overlong_set(reward_overlong_options *opt, const char *key, const char *value,
                        grpo_error *err);
/* Fills defaults that depend on other options and checks 0 <= cache <= max. */
int reward_overlong_finish(reward_overlong_options *opt, grpo_error *err);
double reward_overlong_score(const reward_overlong_options *opt, int64_t length, int truncated);

typedef enum reward_length_mode {
  REWARD_LENGTH_TARGET = 0,
  REWARD_LENGTH_BUDGET = 1,
  REWARD_LENGTH_GROUP = 2,
} reward_length_mode;

typedef struct reward_length_options {
  int mode;              /* reward_length_mode; default target */
  int64_t target_length; /* required for target and budget */
  int64_t tolerance;     /* default target_length */
} reward_length_options;

void reward_length_defaults(reward_length_options *opt);
int reward_length_set(reward_length_options *opt, const char *key, const char *value,
                      grpo_error *err);
int reward_length_finish(reward_length_options *opt, grpo_error *err);
/* target / budget modes; NaN in group mode. */
double reward_length_score(const reward_length_options *opt, int64_t length);
/* Group mode over n completions: out[i] from lengths[i] and correct[i] (0/1). */
void reward_length_group(const int64_t *lengths, const int *correct, int n, double *out);
/* One member of a group whose lengths span [lo, hi]. */
double reward_length_group_one(int64_t lo, int64_t hi, int64_t length, int correct);

#endif
