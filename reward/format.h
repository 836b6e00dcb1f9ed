/* The `format` reward: checks the structure of a reasoning completion,
 *
 *   [whitespace] <think> reasoning </think> answer-part
 *
 * rule by rule (each can be switched; reward/README.md lists them):
 *   think_open     exactly one opening tag (none at all when think_in_prompt:
 *                  the chat template already opened the block)
 *   leading        only whitespace before the opening tag (allow_leading_text)
 *   think_close    exactly one closing tag, after the opening tag
 *   think_content  non-whitespace reasoning inside the block (require_think_content)
 *   answer         non-whitespace text after the closing tag (require_answer)
 *   answer_tags    the answer part is exactly [ws] answer_open non-blank
 *                  answer_close [ws] (answer_open/answer_close, e.g. <answer>
 *                  and </answer> as in DeepSeek-R1 / open-r1; off when unset)
 *   boxed          an outermost \boxed{...} or \fbox{...} in the answer part
 *                  whose braces close (a backslash escapes the next byte) and
 *                  whose content is not blank (require_boxed)
 *   single_boxed   exactly one box in the answer part (single_boxed)
 *   no_tags_after  no ThreadWeaver tag (<Parallel>, <Thread>, ...) in the
 *                  answer part: parallel work belongs in the think block
 *   parallel       the ThreadWeaver structure inside the think block is
 *                  well-formed (reward/pgrpo.h flags == 0) (check_parallel)
 *   regex          the answer part matches a PCRE2 pattern (answer_regex)
 * A rule whose text is missing (no </think> -> no answer part) fails.
 * Score: 1 when every enabled rule passes, else 0; with partial=true, the
 * fraction of enabled rules that pass. */
#ifndef GRPO_REWARD_FORMAT_H
#define GRPO_REWARD_FORMAT_H

#include <stddef.h>

#include "core/error.h"

#define REWARD_FORMAT_TAG_MAX 32
#define REWARD_FORMAT_REGEX_MAX 256

typedef enum reward_format_rule {
  REWARD_FORMAT_THINK_OPEN = 0,
  REWARD_FORMAT_LEADING,
  REWARD_FORMAT_THINK_CLOSE,
  REWARD_FORMAT_THINK_CONTENT,
  REWARD_FORMAT_ANSWER,
  REWARD_FORMAT_ANSWER_TAGS,
  REWARD_FORMAT_BOXED,
  REWARD_FORMAT_SINGLE_BOXED,
  REWARD_FORMAT_NO_TAGS_AFTER,
  REWARD_FORMAT_PARALLEL,
  REWARD_FORMAT_REGEX,
  REWARD_FORMAT_NRULES,
} reward_format_rule;

typedef struct reward_format_options {
  char think_open[REWARD_FORMAT_TAG_MAX];  /* "<think>" */
  char think_close[REWARD_FORMAT_TAG_MAX]; /* "</think>" */
  char answer_open[REWARD_FORMAT_TAG_MAX];  /* "" = no answer tags */
  char answer_close[REWARD_FORMAT_TAG_MAX]; /* "" */
  int think_in_prompt;       /* 0 */
  int allow_leading_text;    /* 0 */
  int require_think_content; /* 1 */
  int require_answer;        /* 1 */
  int require_boxed;         /* 1 */
  int single_boxed;          /* 0 */
  int no_tags_after;         /* 1 */
  int check_parallel;        /* 0 */
  int partial;               /* 0 */
  char answer_regex[REWARD_FORMAT_REGEX_MAX]; /* "" = off */
  void *regex_code;          /* compiled answer_regex (pcre2_code *), owned */
  void *regex_mctx;          /* its match limits (pcre2_match_context *), owned */
} reward_format_options;

typedef struct reward_format_report {
  double score;
  unsigned checked; /* bit per reward_format_rule that was enabled */
  unsigned failed;  /* bit per rule that failed */
  int first_failed; /* reward_format_rule, or -1 */
} reward_format_report;

void reward_format_defaults(reward_format_options *opt);
/* Sets one option (keys as the field names above; tags must be 1..31 bytes,
 * answer tags may be "" to turn the rule off;
 * answer_regex is compiled here, so a bad pattern is reported with its
 * PCRE2 message and offset). */
int reward_format_set(reward_format_options *opt, const char *key, const char *value,
                      grpo_error *err);
/* Checks option consistency after all reward_format_set calls. */
int reward_format_finish(reward_format_options *opt, grpo_error *err);
void reward_format_release(reward_format_options *opt);

/* Scores text[0..len). match_data: a pcre2_match_data * made for the regex
 * (reward_format_match_data), or NULL, in which case one is made and freed
 * per call. Never fails: unusual text just fails rules. */
void reward_format_check(const reward_format_options *opt, const char *text, size_t len,
                         void *match_data, reward_format_report *rep);
/* Match data sized for opt's regex, NULL when there is no regex. */
void *reward_format_match_data(const reward_format_options *opt);
void reward_format_match_data_free(void *match_data);

const char *reward_format_rule_name(int rule);

#endif
