/* Evaluation with test-time scaling metrics, for `grpo eval` and the
 * trainer's periodic evaluation.
 *
 * For every problem of a set, n completions are sampled (keyed RNG: sample j
 * of problem i is the same whatever n, the rank count or the batch layout),
 * each is scored by the math verifier against the gold answer, and the
 * extracted answers are grouped into classes of verifier-equivalent answers
 * (\frac{1}{2} and 0.5 vote together). Per set:
 *   pass@1          mean over problems of c_i / n_i
 *   pass@k          unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)
 *   maj@k           the majority class of the first k samples is correct
 *                   (ties: the class whose first member came first)
 *   best-of-N       oracle: any of the n is correct (= pass@n);
 *                   self-consistency: the sample with the largest class,
 *                   ties broken by its mean token logprob
 *   mean tokens     completion tokens (all threads of a ThreadWeaver trajectory)
 *   critical path   ThreadWeaver: tokens on the longest path; speedup is
 *                   total / critical per sample, averaged per problem, then
 *                   over problems (as the ThreadWeaver paper reports it).
 *
 *   trainer_eval_set *sets; int n;
 *   trainer_eval_sets_open(cfg, specs, n_specs, data_dir, 0, &sets, &n, &err);
 *   trainer_eval_run(&session, comm, &sets[0], &opt, &stats, &err);
 *   trainer_eval_print_table(stdout, names, stats, n);
 */
#ifndef GRPO_TRAINER_EVAL_H
#define GRPO_TRAINER_EVAL_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/error.h"
#include "tasks/arith.h"
#include "tasks/dataset.h"
#include "trainer/session.h"

/* ---- sets ------------------------------------------------------------------------ */

typedef struct trainer_eval_item {
  const char *question, *gold;
  uint32_t index;                /* row in the set: the problem's RNG key */
  task_arith_problem arith;      /* storage for the synthetic set */
} trainer_eval_item;

typedef struct trainer_eval_set {
  char name[64];
  char path[512];                /* "" for the synthetic set */
  int n;
  trainer_eval_item *items;
  task_dataset ds;               /* JSONL sets own their strings here */
} trainer_eval_set;

/* Opens sets by spec. A spec is a file (it holds '/' or ends in .jsonl), the
 * synthetic set "arithmetic" (data.arith_* keys), or a benchmark name
 * resolved to <data_dir>/<name>/test.jsonl. The layout (field mapping) is the
 * built-in one named by the file's folder or stem (tasks/dataset.h).
 * max_rows > 0 keeps the first max_rows rows of each set. */
int trainer_eval_sets_open(const grpo_config *c, const char *const *specs, int n_specs,
                           const char *data_dir, int max_rows, trainer_eval_set **out, int *n_out,
                           grpo_error *err);
/* The periodic-evaluation sets of a training config: data.eval_paths, plus
 * the synthetic held-out split when data.task is arithmetic. */
int trainer_eval_sets_from_config(const grpo_config *c, trainer_eval_set **out, int *n_out,
                                  grpo_error *err);
void trainer_eval_sets_close(trainer_eval_set *sets, int n);

/* ---- statistics (pure) ----------------------------------------------------------- */

/* Unbiased pass@k for c correct of n samples; k > n is treated as k = n. */
double trainer_pass_at_k(int n, int c, int k);

/* Groups n answers by verifier equivalence: cluster[i] is the class of
 * answers[i] (numbered from 0 in order of first appearance), -1 when
 * answers[i] is NULL or empty (no vote). Each answer is compared with the
 * first member of each class so far. Returns the number of classes, or a
 * negative status. */
int trainer_answer_classes(const char *const *answers, int n, int *cluster, grpo_error *err);

/* One scored sample. */
typedef struct trainer_eval_record {
  int32_t problem, sample;
  int32_t cluster;       /* answer class within the problem; -1: no answer */
  int32_t tokens;        /* completion tokens over all threads */
  int32_t critical;      /* tokens on the critical path (= tokens without threads) */
  uint32_t views;        /* bit v: the record belongs to view v (trainer_eval_view) */
  int8_t correct;        /* verifier against gold */
  int8_t truncated;
  int8_t pad_[2];
  float mean_logprob;    /* mean sampled-token logprob (self-consistency tie-break) */
  float prm_score;       /* aggregated PRM score; NaN when no PRM */
} trainer_eval_record;

/* The rows of a set's report; a record can belong to several. */
enum trainer_eval_view {
  TRAINER_EVAL_SAMPLES = 0,   /* the first n samples of every problem (uniform) */
  /* 1 .. TRAINER_EVAL_MAX_REVISE: the answers after revise round r */
  TRAINER_EVAL_ADAPTIVE = 20, /* the samples the adaptive allocation gave each problem */
  TRAINER_EVAL_SEARCH = 21,   /* the answer PRM-guided search chose */
};

enum { TRAINER_EVAL_MAX_KS = 16, TRAINER_EVAL_MAX_REVISE = 16 };

typedef struct trainer_eval_stats {
  int problems;
  int min_samples, max_samples;   /* per problem */
  int n_ks;
  int ks[TRAINER_EVAL_MAX_KS];    /* k values reported (<= min_samples) */
  double pass_at_k[TRAINER_EVAL_MAX_KS];
  double maj_at_k[TRAINER_EVAL_MAX_KS];
  double pass1;
  double bon_oracle, bon_self_consistency;
  double bon_prm;                 /* -1: no PRM scores */
  double maj_all;                 /* majority over all of a problem's samples */
  double mean_tokens, mean_critical, speedup;
  double answered, truncated;     /* fractions of samples */
  long total_samples;
  double total_tokens;            /* completion tokens over all samples */
} trainer_eval_stats;

/* Summarises the records of one view of n_problems problems (any order;
 * problems numbered 0..n_problems-1; a problem without records counts as
 * wrong). ks: the k values wanted; those above the fewest samples of a
 * problem are dropped. */
int trainer_eval_summarize(const trainer_eval_record *recs, size_t n_recs, int n_problems,
                           const int *ks, int n_ks, int view, trainer_eval_stats *out,
                           grpo_error *err);

/* Parses "1,4,16" into ks (ascending, unique, each >= 1). */
int trainer_eval_parse_ks(const char *text, int *ks, int cap, int *n, grpo_error *err);

/* ---- running --------------------------------------------------------------------- */

typedef struct trainer_eval_search trainer_eval_search;

typedef struct trainer_eval_options {
  int n_samples;                  /* per problem */
  const int *ks;
  int n_ks;
  uint64_t seed;
  float temperature;              /* overrides the rollout temperature */
  float top_p;                    /* <= 0: the rollout's */
  int revise_rounds;              /* solve, review, revise: extra rounds */
  const char *revise_prompt;      /* the review turn */
  /* difficulty-adaptive sampling: a pilot of adaptive_pilot samples per
   * problem, then the extra samples (and tokens) uniform n_samples would
   * spend, shared out by trainer_alloc_eval with this objective
   * (trainer/allocate.h); reported beside the uniform row */
  int adaptive;
  int adaptive_pilot;
  int adaptive_objective;         /* trainer_alloc_objective */
  long adaptive_token_budget;     /* 0: the tokens uniform sampling would spend */
  int adaptive_oracle;            /* difficulty from the gold answers (an upper bound);
                                     0: from the pilot's agreement (what a deployment has) */
  trainer_eval_search *search;    /* PRM-guided search, or NULL */
  FILE *samples;                  /* rank 0: per-sample JSONL, or NULL */
} trainer_eval_options;

/* One set's report. */
typedef struct trainer_eval_result {
  trainer_eval_stats samples;
  int n_revise;
  trainer_eval_stats revise[TRAINER_EVAL_MAX_REVISE];
  int has_adaptive, has_search;
  trainer_eval_stats adaptive, search;
} trainer_eval_result;

/* Evaluates one set with the session's model across the ranks of comm
 * (problem i goes to rank i % world). *res is filled on every rank. */
int trainer_eval_run(trainer_session *s, MPI_Comm comm, const trainer_eval_set *set,
                     const trainer_eval_options *opt, trainer_eval_result *res, grpo_error *err);

/* PRM-guided search (rollout/search.h) from the eval section: loads the
 * PRM of eval.prm_path and plans the engine proposer and PRM scorer. */
int trainer_eval_search_open(trainer_eval_search **out, trainer_session *s, grpo_error *err);
void trainer_eval_search_close(trainer_eval_search *search);

/* `grpo eval`: opens a session on the config's model (model.path: an HF
 * directory, a grpo checkpoint or a run's checkpoints folder), evaluates
 * each set with the eval section's settings, prints the table and, on rank
 * 0, writes <out_dir>/summary.json and <out_dir>/samples.jsonl. sets: NULL
 * for eval.sets. */
int trainer_eval_benchmarks(const grpo_config *c, MPI_Comm comm, const char *const *sets, int n_sets,
                            grpo_error *err);

/* ---- output ---------------------------------------------------------------------- */

/* The console table: one row per set (and revise round). */
void trainer_eval_print_table(FILE *f, const char *const *names, const trainer_eval_stats *stats,
                              int n);
/* One set's stats as a JSON object (no trailing newline). */
void trainer_eval_write_json(FILE *f, const trainer_eval_stats *s);

#endif
