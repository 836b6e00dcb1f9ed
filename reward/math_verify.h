/* Rule-based math answer verifier: does a completion's final answer equal
 * the gold answer? (issue #6, ../shared/reference/verifier.md).
 *
 * Pipeline: extract the answer from the completion (last \boxed, ####,
 * "final answer is", "Answer:", else the last math expression), parse gold and
 * prediction into expression trees, then compare them (exact rationals,
 * relative-tolerance numerics, evaluation at Philox-random points, set / tuple
 * / interval rules). The policies are documented in reward/README.md.
 *
 * Thread-safe: no global mutable state. Every call has a bounded cost (input
 * size, token, node, depth and step caps); exceeding a cap gives a verdict
 * with a reason, never a hang. */
#ifndef GRPO_REWARD_MATH_VERIFY_H
#define GRPO_REWARD_MATH_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum reward_math_result {
  REWARD_MATH_INCORRECT = 0,
  REWARD_MATH_CORRECT = 1,
  REWARD_MATH_UNSCORABLE = 2, /* gold unparseable: drop the sample, never reward it */
} reward_math_result;

/* Which extraction rule produced the predicted answer. */
typedef enum reward_math_rule {
  REWARD_MATH_RULE_NONE = 0,     /* nothing extracted */
  REWARD_MATH_RULE_BOXED,        /* last \boxed{} / \fbox{} */
  REWARD_MATH_RULE_HASHES,       /* GSM8K "#### N" */
  REWARD_MATH_RULE_FINAL_ANSWER, /* "final answer is X", "the answer is X" */
  REWARD_MATH_RULE_ANSWER_COLON, /* "Answer: X", "**Answer:** X" */
  REWARD_MATH_RULE_LAST_MATH,    /* last $...$ / \[...\] environment */
  REWARD_MATH_RULE_WHOLE,        /* the whole (short) text is the answer */
  REWARD_MATH_RULE_LAST_NUMBER,  /* last number in the text */
} reward_math_rule;

typedef struct reward_math_options {
  /* Grade only the text after the last </think>; without one the prediction
   * is INCORRECT ("no </think>"). Off by default. */
  int require_think_close;
  /* Accept a decimal prediction that equals an exact gold rounded or
   * truncated to the digits given (3.3166 for \sqrt{11}), when it has at
   * least rounded_min_sig significant digits; and a decimal gold with two or
   * more decimals as the rounding of a value with no short decimal form
   * (6.67 for 20/3, not 2.5 for 2.45). */
  int allow_rounded;
  int rounded_min_sig;
  /* Relative tolerance for comparing inexact values (floats, roots, pi). */
  double rel_tol;
  /* Accept a predicted relation (x > 2) for a gold interval ((2, \infty)). */
  int allow_set_relation;
  /* percent: p\% equals p/100; a bare p is also accepted when the gold carries
   * the % sign. 0 disables the bare-p leniency. */
  int percent_bare_ok;
  /* Fall back to the last number of a free-text prediction when no anchor
   * matched (eval-style; the reward default keeps it on, see README). */
  int last_number_fallback;
  /* A gold that is a sentence (>= 4 words) accepts a 1-3 word text
   * prediction that appears in it as a phrase ("Petya" for "Petya will
   * receive the last token."). */
  int sentence_gold_phrase;
  /* Seed for the random evaluation points (deterministic). */
  uint64_t seed;
  /* Caps: bytes of each input considered, parser nodes, work steps. */
  size_t max_input;
  int max_nodes;
  long max_steps;
} reward_math_options;

/* Defaults documented in reward/README.md. */
void reward_math_options_default(reward_math_options *opt);

enum { REWARD_MATH_TEXT_MAX = 256, REWARD_MATH_REASON_MAX = 128 };

typedef struct reward_math_verdict {
  int correct;                   /* 1 when result == REWARD_MATH_CORRECT */
  reward_math_result result;
  reward_math_rule rule;         /* extraction rule used for the prediction */
  int gold_parsed, pred_parsed;  /* 1 when the text parsed into a tree */
  char gold_answer[REWARD_MATH_TEXT_MAX]; /* extracted text, truncated */
  char pred_answer[REWARD_MATH_TEXT_MAX];
  char gold_form[REWARD_MATH_TEXT_MAX];   /* parsed form, printed, truncated */
  char pred_form[REWARD_MATH_TEXT_MAX];
  char reason[REWARD_MATH_REASON_MAX];    /* why it matched or not */
  long steps;                    /* work steps used */
} reward_math_verdict;

/* Scores one completion against a gold answer (bare LaTeX or plain text;
 * a GSM8K solution ending in "#### N" is reduced to N). opt may be NULL for
 * the defaults. Returns GRPO_OK and fills *out whatever the texts contain
 * (garbage gives INCORRECT, an unparseable gold UNSCORABLE); returns
 * GRPO_EINVAL only for NULL arguments and GRPO_ENOMEM when scratch memory
 * cannot be allocated. */
int reward_math_verify(const char *gold, const char *completion, const reward_math_options *opt,
                       reward_math_verdict *out, grpo_error *err);

/* Convenience: 1.0 for CORRECT, 0.0 otherwise (UNSCORABLE included; callers
 * that must drop unscorable samples read the verdict instead). */
double reward_math_score(const char *gold, const char *completion, const reward_math_options *opt);

const char *reward_math_result_name(reward_math_result r);
const char *reward_math_rule_name(reward_math_rule r);

#endif
