#include "reward/length.h"

#include <math.h>
#include <string.h>

#include "reward/registry.h"

void reward_overlong_defaults(reward_overlong_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->penalty_factor = 1.0;
}

int reward_overlong_set(reward_overlong_options *opt, const char *key, const char *value,
                        grpo_error *err) {
  if (strcmp(key, "max_completion_length") == 0)
    return reward_parse_int64(key, value, 1, INT32_MAX, &opt->max_completion_length, err);
  if (strcmp(key, "cache_length") == 0) {
    opt->cache_set = 1;
    return reward_parse_int64(key, value, 0, INT32_MAX, &opt->cache_length, err);
  }
  if (strcmp(key, "penalty_factor") == 0) return reward_parse_double(key, value, 0.0, 1e6, &opt->penalty_factor, err);
  if (strcmp(key, "penalize_truncated") == 0)
    return reward_parse_bool(key, value, &opt->penalize_truncated, err);
  return GRPO_FAIL(err, GRPO_EINVAL,
                   "unknown option '%s' (valid: max_completion_length, cache_length, penalty_factor, "
                   "penalize_truncated)",
                   key);
}

int reward_overlong_finish(reward_overlong_options *opt, grpo_error *err) {
  if (opt->max_completion_length <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "missing required option 'max_completion_length'");
  if (!opt->cache_set) opt->cache_length = opt->max_completion_length / 5;
  if (opt->cache_length > opt->max_completion_length)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "option 'cache_length' = %lld exceeds max_completion_length = %lld",
                     (long long)opt->cache_length, (long long)opt->max_completion_length);
  return GRPO_OK;
}

double reward_overlong_score(const reward_overlong_options *opt, int64_t length, int truncated) {
  if (truncated && opt->penalize_truncated) return -opt->penalty_factor;
  int64_t free_len = opt->max_completion_length - opt->cache_length;
  if (length <= free_len) return 0.0;
  if (length > opt->max_completion_length) return -opt->penalty_factor;
  /* cache_length > 0 here: free_len < length <= max. */
  return opt->penalty_factor * (double)(free_len - length) / (double)opt->cache_length;
}

void reward_length_defaults(reward_length_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->mode = REWARD_LENGTH_TARGET;
}

int reward_length_set(reward_length_options *opt, const char *key, const char *value,
                      grpo_error *err) {
  if (strcmp(key, "mode") == 0) {
    static const char *const names[] = {"target", "budget", "group", NULL};
    return reward_parse_enum(key, value, names, &opt->mode, err);
  }
  if (strcmp(key, "target_length") == 0)
    return reward_parse_int64(key, value, 1, INT32_MAX, &opt->target_length, err);
  if (strcmp(key, "tolerance") == 0)
    return reward_parse_int64(key, value, 1, INT32_MAX, &opt->tolerance, err);
  return GRPO_FAIL(err, GRPO_EINVAL,
                   "unknown option '%s' (valid: mode, target_length, tolerance)", key);
}

int reward_length_finish(reward_length_options *opt, grpo_error *err) {
  if (opt->mode == REWARD_LENGTH_GROUP) return GRPO_OK;
  if (opt->target_length <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "mode %s needs option 'target_length'",
                     opt->mode == REWARD_LENGTH_TARGET ? "target" : "budget");
  if (opt->tolerance <= 0) opt->tolerance = opt->target_length;
  return GRPO_OK;
}

double reward_length_score(const reward_length_options *opt, int64_t length) {
  if (opt->mode == REWARD_LENGTH_GROUP) return NAN;
  int64_t d = length - opt->target_length;
  if (opt->mode == REWARD_LENGTH_BUDGET && d < 0) d = 0;
  if (d < 0) d = -d;
  return -fmin(1.0, (double)d / (double)opt->tolerance);
}

void reward_length_group(const int64_t *lengths, const int *correct, int n, double *out) {
  if (n <= 0) return;
  int64_t lo = lengths[0], hi = lengths[0];
  for (int i = 1; i < n; i++) {
    if (lengths[i] < lo) lo = lengths[i];
    if (lengths[i] > hi) hi = lengths[i];
  }
  for (int i = 0; i < n; i++) out[i] = reward_length_group_one(lo, hi, lengths[i], correct[i]);
}

double reward_length_group_one(int64_t lo, int64_t hi, int64_t length, int correct) {
  double lambda = hi == lo ? 0.0 : 0.5 - (double)(length - lo) / (double)(hi - lo);
  return correct ? lambda : fmin(0.0, lambda);
}
