/* The synthetic arithmetic task of the quickstart and the tests: multi-step
 * integer expressions with a short worked solution and a \boxed{} answer.
 *
 *   question: "Compute 12 + 7 * (9 - 5)."
 *   solution: "9 - 5 = 4. 7 * 4 = 28. 12 + 28 = 40. The answer is \boxed{40}."
 *
 * A problem is a pure function of (seed, split, index). The train and eval
 * splits are disjoint by construction: an expression belongs to the eval
 * split iff a hash of its text falls in the eval bucket, and each split only
 * keeps candidates of its own bucket. */
#ifndef GRPO_TASKS_ARITH_H
#define GRPO_TASKS_ARITH_H

#include <stdint.h>

#include "core/error.h"

typedef enum task_split { TASK_SPLIT_TRAIN = 0, TASK_SPLIT_EVAL = 1 } task_split;

typedef struct task_arith_options {
  int min_ops, max_ops;     /* binary operations per expression, 1..8 */
  int max_operand;          /* operands drawn from [0, max_operand], <= 10000 */
  int allow_sub, allow_mul, allow_div; /* + is always allowed */
  int allow_negative;       /* 0: every intermediate value stays >= 0 */
  long long max_abs_value;  /* bound on every intermediate value */
  int eval_bucket_per_mille;/* share of the expression space kept for eval (1..500) */
} task_arith_options;

/* Defaults: 2-3 ops, operands 0..20, + - *, no division, values <= 1000. */
void task_arith_default_options(task_arith_options *opt);
/* Checks ranges; the message names the offending option. */
int task_arith_validate(const task_arith_options *opt, grpo_error *err);

#define TASK_ARITH_MAX_OPS 8

typedef struct task_arith_problem {
  char expression[160];   /* "12 + 7 * (9 - 5)" */
  char question[224];
  char solution[640];     /* worked steps ending in \boxed{answer} */
  char answer[32];        /* the value in decimal */
  long long value;
  int n_ops;
} task_arith_problem;

/* Deterministic in (opt, seed, split, index). */
void task_arith_generate(const task_arith_options *opt, uint64_t seed, task_split split,
                         uint64_t index, task_arith_problem *out);

/* The split an expression text belongs to (the partition above). */
task_split task_arith_split_of(const task_arith_options *opt, const char *expression);

#endif
