/* The registry of named, weighted reward functions (DESIGN.md "Reward
 * function"; YAML `reward.functions: [{name, weight, options}]`).
 *
 *   reward_option ol[] = {{"max_completion_length", "1024"}, {"cache_length", "256"}};
 *   reward_spec specs[] = {{"math", 1.0, NULL, 0, NULL}, {"overlong", 1.0, ol, 2, NULL}};
 *   reward_registry *reg;  reward_registry_create(&reg, specs, 2, &err);
 *   reward_scratch *s;     reward_scratch_create(reg, &s, &err);    // one per thread
 *   reward_result r;       reward_registry_score(reg, s, &input, &r, &err);
 *
 * Functions (options in reward/README.md):
 *   math                score 1 if the verifier says correct, else incorrect_reward (0)
 *   format              structure of <think>...</think> + answer (reward/format.h)
 *   overlong            DAPO soft overlong penalty in [-penalty_factor, 0] (reward/length.h)
 *   length              target / budget / group length shaping (reward/length.h)
 *   pgrpo_acceleration  1{correct} * min(rho*eta, clip) (reward/pgrpo.h)
 *
 * Thread safety: a registry is immutable after creation and may be shared by
 * any number of threads; each thread owns its reward_scratch. There is no
 * global mutable state. After the first call on a scratch, scoring allocates
 * nothing in this module (the math verifier manages its own memory).
 *
 * Unscorable: a function that cannot score (math without a gold answer, an
 * unparseable gold, pgrpo without a correctness signal, a group-only function
 * in a per-completion call) reports NaN; the weighted total skips NaN scores
 * (TRL's nansum) and is NaN only when every function is NaN. */
#ifndef GRPO_REWARD_REGISTRY_H
#define GRPO_REWARD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define REWARD_MAX_FUNCTIONS 16
#define REWARD_NAME_MAX 32
#define REWARD_METRIC_MAX 64
#define REWARD_DETAIL_MAX 256

typedef struct reward_option {
  const char *key;
  const char *value; /* text form: "true", "0.5", "paper" */
} reward_option;

typedef struct reward_spec {
  const char *name;
  double weight; /* finite, >= 0 */
  const reward_option *options;
  int n_options;
  const char *where; /* optional message prefix for this entry, e.g.
                        "run.yaml:14:5: reward.functions[1]"; NULL gives
                        "reward.functions[i] (name)" */
} reward_spec;

typedef struct reward_registry reward_registry;
typedef struct reward_scratch reward_scratch;

/* Builds a registry from n specs (1 <= n <= REWARD_MAX_FUNCTIONS). Errors
 * (GRPO_EINVAL) name the entry, the function and the option: unknown name
 * (with the valid ones), duplicate name, negative or non-finite weight,
 * unknown option key, bad option value, missing required option. */
int reward_registry_create(reward_registry **out, const reward_spec *specs, int n,
                           grpo_error *err);

/* Same from a cJSON array of objects {"name": str, "weight": number (default 1),
 * "options": {key: string|number|bool}}; other keys are errors. `where` names
 * the source in messages (e.g. "config.yaml: reward.functions"); may be NULL.
 * Declared with an incomplete type so this header does not pull in cJSON. */
struct cJSON;
int reward_registry_from_json(reward_registry **out, const struct cJSON *array, const char *where,
                              grpo_error *err);

void reward_registry_free(reward_registry *reg);

int reward_registry_count(const reward_registry *reg);
const char *reward_registry_name(const reward_registry *reg, int i);
double reward_registry_weight(const reward_registry *reg, int i);
/* "rewards/<name>/mean" (TRL's metric name). */
const char *reward_registry_metric(const reward_registry *reg, int i);
/* 1 when some function needs correctness (math or pgrpo_acceleration, or
 * length in group mode). */
int reward_registry_needs_correct(const reward_registry *reg);

/* Per-thread working memory. Create one per scoring thread. */
int reward_scratch_create(const reward_registry *reg, reward_scratch **out, grpo_error *err);
void reward_scratch_free(reward_scratch *s);

typedef struct reward_input {
  const char *prompt;           /* may be NULL (no function reads it yet) */
  const char *completion;       /* NUL-terminated decoded completion, special
                                   tokens kept (the ThreadWeaver tags) */
  int32_t n_tokens;             /* completion tokens (lengths, overlong) */
  const int32_t *token_offsets; /* optional: byte offset where each of the n_tokens
                                   tokens starts (pgrpo counts tokens); NULL = bytes */
  const char *gold;             /* gold answer; NULL = none (math is unscorable) */
  int truncated;                /* hit the length limit without a stop */
  int correct;                  /* -1: ask the verifier (default); 0/1: known */
} reward_input;

typedef struct reward_result {
  double total;                         /* Σ weight * score over non-NaN scores */
  double scores[REWARD_MAX_FUNCTIONS];  /* per function, registry order; NaN = unscorable */
  int correct;                          /* verifier verdict: 1, 0, or -1 (not computed
                                           or unscorable) */
  char detail[REWARD_DETAIL_MAX];       /* "math=1 format=0(no </think>) ..." (truncated) */
} reward_result;

/* Zero-initialises *in (correct = -1). */
void reward_input_init(reward_input *in);

/* Scores one completion with every function. Returns GRPO_OK, or GRPO_EINVAL
 * for a bad input (NULL completion, negative n_tokens, bad token offsets),
 * naming it. The verifier runs at most once per call. */
int reward_registry_score(const reward_registry *reg, reward_scratch *s, const reward_input *in,
                          reward_result *out, grpo_error *err);

/* Scores the n completions of one prompt's group (any n >= 0):
 * reward_registry_score for each, then the group-relative functions
 * (length mode=group) and totals. */
int reward_registry_score_group(const reward_registry *reg, reward_scratch *s,
                                const reward_input *in, int n, reward_result *out,
                                grpo_error *err);

/* Per-step accumulator of per-function means and stds (NaN scores skipped).
 * All sums are one contiguous run of doubles, so ranks combine them with
 *   MPI_Allreduce(MPI_IN_PLACE, reward_stats_doubles(&st), REWARD_STATS_NDOUBLES,
 *                 MPI_DOUBLE, MPI_SUM, comm); */
typedef struct reward_stats {
  double count[REWARD_MAX_FUNCTIONS];
  double sum[REWARD_MAX_FUNCTIONS];
  double sumsq[REWARD_MAX_FUNCTIONS];
  double total_count, total_sum, total_sumsq;
  int n; /* functions (not summed) */
} reward_stats;
#define REWARD_STATS_NDOUBLES (3 * REWARD_MAX_FUNCTIONS + 3)
static inline double *reward_stats_doubles(reward_stats *st) { return st->count; }

void reward_stats_init(reward_stats *st, const reward_registry *reg);
void reward_stats_add(reward_stats *st, const reward_result *r);
void reward_stats_merge(reward_stats *dst, const reward_stats *src);
/* NaN when no sample was scored. std is the population std. */
double reward_stats_mean(const reward_stats *st, int i);
double reward_stats_std(const reward_stats *st, int i);
double reward_stats_total_mean(const reward_stats *st);

/* The documented options of every function, for `grpo config` help and for
 * the docs-vs-code test: {function, key, default ("" = required or unset),
 * help}. Returns the table and its length. */
typedef struct reward_option_doc {
  const char *function;
  const char *key;
  const char *default_value;
  const char *help;
} reward_option_doc;
const reward_option_doc *reward_registry_option_docs(int *n);

/* Option-value parsers shared by the reward functions. `key` names the option
 * in the message; each accepts only the whole string. */
int reward_parse_bool(const char *key, const char *value, int *out, grpo_error *err);
int reward_parse_double(const char *key, const char *value, double lo, double hi, double *out,
                        grpo_error *err);
int reward_parse_int64(const char *key, const char *value, int64_t lo, int64_t hi, int64_t *out,
                       grpo_error *err);
/* names: NULL-terminated list; *out = index. */
int reward_parse_enum(const char *key, const char *value, const char *const *names, int *out,
                      grpo_error *err);

#endif
