/* Test-time search guided by a process reward model (PRM), as in "Scaling
 * LLM test-time compute optimally" (Snell et al.) and HF search-and-learn:
 * best-of-N weighted by PRM score, step-level beam search, and diverse
 * verifier tree search (DVTS), under a token budget.
 *
 * The algorithms see the model through two callbacks, so tests drive them
 * with scripted policies and PRMs:
 *  - a step proposer: given prefixes (prompt + steps so far), n candidate next
 *    steps each (ids, and whether the step ends the solution);
 *  - a step scorer: given the prompt and a path of steps, each step's score.
 * rollout_search_engine_proposer and rollout_search_prm_scorer back them with
 * the generation engine and a model_prm.
 *
 * Rounds. Every round proposes one more step for the live paths:
 *  - bon: N independent paths, one candidate each per round; at the end every
 *    path is scored and the best aggregated score wins.
 *  - beam (N beams, width M): the N candidates of a round are shared out over
 *    the live beams (M each when all N/M are alive; more each when some have
 *    finished, so every round proposes N); every candidate is scored; final
 *    candidates join the completed set; of the others the N/M best survive.
 *    Stops when no beam survives or N solutions are complete.
 *  - dvts: N/M independent subtrees, each a greedy beam of width M: a subtree
 *    proposes M candidates from its current node and moves to the best one;
 *    it is done when that one is final. The best subtree wins.
 * All strategies also stop after max_steps rounds or when the budget cannot
 * give every candidate of the next round at least one token.
 *
 * Token budget: proposed tokens (the steps' ids) are counted, never the
 * prefill. Each round every candidate may use at most
 * cap = min(max_step_tokens, remaining / candidates) tokens; a proposer that
 * returns more is an error. Hence tokens_spent <= token_budget always. A step
 * cut at the cap is an ordinary, non-final step.
 *
 * Aggregation of a path's step scores: last, min, or prod (product).
 *
 * Determinism and ties: candidates are numbered in generation order (request
 * by request, sample by sample; requests follow the order of the beams /
 * subtrees / paths, itself the previous round's ranking). Every choice takes
 * the highest aggregated score and, on equal scores, the lowest number (as
 * numpy's argmax / a stable sort). The final answer prefers complete paths,
 * then the higher score, then the earlier one (completed order for beam,
 * subtree order for dvts, path order for bon). A NaN score is an error.
 *
 * Memory: nodes, tokens and step lists are planned once per run from the
 * options (the token arena holds exactly token_budget tokens); the contiguous
 * prefixes handed to the proposer live in one buffer that only grows when a
 * round needs more than any before. */
#ifndef GRPO_ROLLOUT_SEARCH_H
#define GRPO_ROLLOUT_SEARCH_H

#include <stdint.h>

#include "core/error.h"
#include "model/prm.h"
#include "rollout/engine.h"

typedef enum rollout_search_strategy {
  ROLLOUT_SEARCH_BON = 0,
  ROLLOUT_SEARCH_BEAM = 1,
  ROLLOUT_SEARCH_DVTS = 2,
} rollout_search_strategy;

typedef enum rollout_prm_agg {
  ROLLOUT_PRM_LAST = 0,
  ROLLOUT_PRM_MIN = 1,
  ROLLOUT_PRM_PROD = 2,
} rollout_prm_agg;

/* "bon" | "beam" | "dvts" and "last" | "min" | "prod"; 0 or -1 when unknown. */
int rollout_search_strategy_parse(const char *s, rollout_search_strategy *out);
int rollout_prm_agg_parse(const char *s, rollout_prm_agg *out);
const char *rollout_search_strategy_name(rollout_search_strategy s);
const char *rollout_prm_agg_name(rollout_prm_agg a);

/* Aggregate of n >= 1 step scores (n == 0: 0). */
float rollout_prm_aggregate(const float *scores, int n, rollout_prm_agg agg);

typedef struct rollout_search_options {
  rollout_search_strategy strategy;
  int n;                  /* N: paths (bon), beams (beam), total width (dvts) */
  int beam_width;         /* M (beam, dvts): divides n; ignored by bon */
  int max_steps;          /* rounds (steps per path) */
  int max_step_tokens;    /* tokens one step may have */
  long token_budget;      /* proposed tokens; 0 = n * max_steps * max_step_tokens */
  rollout_prm_agg aggregation;
} rollout_search_options;

/* One proposed step, filled by the proposer: ids (room for the round's cap
 * tokens), n (<= cap) and final (EOS or a final answer: the path ends). */
typedef struct rollout_search_step {
  int32_t *ids;
  int n;
  int final;
} rollout_search_step;

/* n candidate steps after one prefix. key = round * options.n + index of the
 * request in its round: unique in a run, for the proposer's RNG. */
typedef struct rollout_search_request {
  const int32_t *prefix; /* prompt + steps so far */
  int n_prefix;
  int n_prompt;          /* the prompt's share of prefix */
  int n;
  uint32_t key;
  int index;             /* request number in this round */
  rollout_search_step *out; /* n entries */
} rollout_search_request;

typedef struct rollout_search_proposer {
  void *ctx;
  /* Fills every request's out[0..n); each step has at most max_tokens ids. */
  int (*propose)(void *ctx, const rollout_search_request *reqs, int n_reqs, int max_tokens,
                 grpo_error *err);
} rollout_search_proposer;

/* A step of a path, as the scorer sees it. */
typedef struct rollout_search_span {
  const int32_t *ids;
  int n;
} rollout_search_span;

typedef struct rollout_search_scorer {
  void *ctx;
  /* scores[k] = the score of step k of prompt + steps[0..n_steps). */
  int (*score)(void *ctx, const int32_t *prompt, int n_prompt, const rollout_search_span *steps,
               int n_steps, float *scores, grpo_error *err);
} rollout_search_scorer;

typedef struct rollout_search_result {
  int32_t *ids;        /* the chosen completion (steps concatenated); malloc'd */
  int n;
  int n_steps;
  int *step_end;       /* [n_steps] end offset of each step in ids; malloc'd */
  float *step_scores;  /* [n_steps] the scorer's scores of the chosen path; malloc'd */
  float score;         /* their aggregate */
  int complete;        /* the path ended with a final step */
  long tokens_spent;   /* proposed tokens, <= the budget */
  int rounds;
  int n_completed;     /* complete paths found */
  long proposals;      /* candidate steps proposed */
  long scored;         /* scorer calls */
} rollout_search_result;

void rollout_search_result_free(rollout_search_result *r);

/* Checks the options (ranges, n % beam_width) and fills the budget default;
 * errors name the field (search.n, ...). */
int rollout_search_options_check(rollout_search_options *opt, grpo_error *err);

/* Runs the search on one prompt (n_prompt >= 1). */
int rollout_search_run(const rollout_search_options *opt, const rollout_search_proposer *prop,
                       const rollout_search_scorer *scorer, const int32_t *prompt, int n_prompt,
                       rollout_search_result *res, grpo_error *err);

/* ---- difficulty-dependent settings ----------------------------------------- */

/* Rows sorted by max_pass_rate ascending, the last one 1: the first row whose
 * max_pass_rate >= the estimated pass rate applies (hard problems first). */
typedef struct rollout_search_setting {
  float max_pass_rate;
  rollout_search_strategy strategy;
  int n, beam_width;
  long token_budget;
} rollout_search_setting;

/* Copies the matching row's strategy, n, beam_width and token_budget into
 * *opt (its other fields stay). pass_rate must be in [0, 1]. */
int rollout_search_pick(const rollout_search_setting *table, int n_rows, float pass_rate,
                        rollout_search_options *opt, grpo_error *err);

/* ---- engine-backed proposer -------------------------------------------------- */

/* Steps from the generation engine: each request becomes a group (prompt =
 * the prefix, prompt_index = key, n samples), generated with base's sampling,
 * seed, step, stop ids and stop strings (the step separator, e.g. "\n\n", and
 * the engine keeps it in the step), max_new_tokens = the round's cap. A step
 * is final when it ended on a stop id (EOS), when its text contains
 * final_marker (e.g. "\\boxed{", NULL = none), or when the slot is full.
 * Cost: the whole prefix is prefilled again every round for every request
 * (groups still share one prefill for their samples): about
 * rounds * requests * prefix tokens of prefill on top of the decode. */
typedef struct rollout_search_engine_proposer {
  rollout_engine *engine;
  rollout_engine_options base;
  int max_len;                /* the policy's slot length */
  const char *final_marker;
  int max_candidates, max_step_tokens;
  rollout_group *groups;
  rollout_output *outs;
  int32_t *ids;
  float *lp;
  char *text;                 /* decode buffer for final_marker */
  rollout_engine_stats stats; /* summed over every call */
} rollout_search_engine_proposer;

/* base must outlive the proposer (its pointers are kept); max_candidates = the
 * search's n. */
int rollout_search_engine_proposer_init(rollout_search_engine_proposer *ep,
                                        rollout_search_proposer *out, rollout_engine *engine,
                                        int max_len, const rollout_engine_options *base,
                                        const char *final_marker, int max_candidates,
                                        int max_step_tokens, grpo_error *err);
void rollout_search_engine_proposer_free(rollout_search_engine_proposer *ep);

/* ---- PRM-backed scorer ------------------------------------------------------- */

/* Scores a path with a model_prm: the PRM input is prm_prompt (NULL: the
 * search prompt; the PRM usually wants its own template, e.g. system + user +
 * assistant header of the PRM's chat template) followed by each step with its
 * trailing strip ids removed (e.g. the "\n\n" token the separator replaces)
 * and sep_id appended. A path that does not fit the PRM's max_tokens is an
 * error naming both sizes. One PRM forward per call. */
typedef struct rollout_search_prm_scorer {
  model_prm *prm;
  int32_t sep_id;
  const int32_t *prm_prompt;
  int n_prm_prompt;
  const int32_t *strip_ids;
  int n_strip;
  int32_t *buf;   /* [PRM max_tokens] */
  int cap_steps;
} rollout_search_prm_scorer;

/* The pointers are kept; max_steps = the search's max_steps. */
int rollout_search_prm_scorer_init(rollout_search_prm_scorer *ps, rollout_search_scorer *out,
                                   model_prm *prm, int32_t sep_id, const int32_t *prm_prompt,
                                   int n_prm_prompt, const int32_t *strip_ids, int n_strip,
                                   int max_steps, grpo_error *err);
void rollout_search_prm_scorer_free(rollout_search_prm_scorer *ps);

#endif
