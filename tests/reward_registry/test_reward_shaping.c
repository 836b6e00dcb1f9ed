/* reward/format and reward/length: every rule and formula against values
 * worked out by hand. */
#include <stdint.h>

#include "reward/format.h"
#include "reward/length.h"
#include "test.h"

static reward_format_report fmt_check(const reward_format_options *o, const char *s) {
  reward_format_report r;
  reward_format_check(o, s, strlen(s), NULL, &r);
  return r;
}

static int fails(const reward_format_report *r, int rule) { return (r->failed >> rule) & 1; }

TEST(format_good_and_bad) {
  reward_format_options o;
  reward_format_defaults(&o);
  reward_format_report r = fmt_check(&o, "<think>2+3=5</think>The answer is \\boxed{5}.");
  CHECK_NEAR(r.score, 1.0, 0.0);
  CHECK_EQ_INT(r.failed, 0);
  CHECK_EQ_INT(r.first_failed, -1);
  r = fmt_check(&o, "\n  <think>\nok\n</think>\n\\boxed{ x^2 }");
  CHECK_NEAR(r.score, 1.0, 0.0);
  /* text before <think> */
  r = fmt_check(&o, "Sure! <think>ok</think>\\boxed{5}");
  CHECK_NEAR(r.score, 0.0, 0.0);
  CHECK_EQ_INT(r.first_failed, REWARD_FORMAT_LEADING);
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_LEADING);
  /* no </think>: the answer part does not exist, so answer and boxed fail too */
  r = fmt_check(&o, "<think>ok \\boxed{5}");
  CHECK_EQ_INT(r.first_failed, REWARD_FORMAT_THINK_CLOSE);
  CHECK(fails(&r, REWARD_FORMAT_ANSWER) && fails(&r, REWARD_FORMAT_BOXED));
  /* no <think> */
  r = fmt_check(&o, "ok</think>\\boxed{5}");
  CHECK_EQ_INT(r.first_failed, REWARD_FORMAT_THINK_OPEN);
  CHECK(fails(&r, REWARD_FORMAT_THINK_CLOSE));
  /* two think blocks */
  r = fmt_check(&o, "<think>a</think><think>b</think>\\boxed{5}");
  CHECK(fails(&r, REWARD_FORMAT_THINK_OPEN) && fails(&r, REWARD_FORMAT_THINK_CLOSE));
  /* close before open */
  r = fmt_check(&o, "</think><think>a \\boxed{5}");
  CHECK(fails(&r, REWARD_FORMAT_THINK_CLOSE));
  /* blank reasoning */
  r = fmt_check(&o, "<think> \n </think>\\boxed{5}");
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_THINK_CONTENT);
  /* nothing after </think> */
  r = fmt_check(&o, "<think>a</think>  \n");
  CHECK_EQ_INT(r.failed, (1u << REWARD_FORMAT_ANSWER) | (1u << REWARD_FORMAT_BOXED));
  /* box only inside the think block */
  r = fmt_check(&o, "<think>\\boxed{5}</think> five");
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_BOXED);
}

TEST(format_boxes) {
  reward_format_options o;
  reward_format_defaults(&o);
  const char *bad[] = {"<think>a</think>\\boxed{5", "<think>a</think>\\boxed{}",
                       "<think>a</think>\\boxed{  }", "<think>a</think>\\boxedfoo{5}",
                       "<think>a</think>\\boxed 5", "<think>a</think>\\boxed{5\\}", NULL};
  for (int i = 0; bad[i]; i++) CHECK_MSG(fmt_check(&o, bad[i]).score == 0.0, "%s", bad[i]);
  const char *good[] = {"<think>a</think>\\boxed{\\{1,2\\}}", "<think>a</think>\\fbox{7}",
                        "<think>a</think>\\boxed {\\frac{1}{2}}", "<think>a</think>\\boxed{a\\\\}",
                        NULL};
  for (int i = 0; good[i]; i++) CHECK_MSG(fmt_check(&o, good[i]).score == 1.0, "%s", good[i]);
  CHECK_EQ_INT(reward_format_set(&o, "single_boxed", "true", NULL), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, "<think>a</think>\\boxed{5} or \\boxed{7}").score, 0.0, 0.0);
  CHECK_NEAR(fmt_check(&o, "<think>a</think>\\boxed{\\boxed{5}}").score, 0.0, 0.0);
  CHECK_NEAR(fmt_check(&o, "<think>a \\boxed{4}</think>so \\boxed{5}").score, 1.0, 0.0);
  reward_format_defaults(&o);
  /* An unclosed outer box fails even with a closed box inside it. */
  CHECK_NEAR(fmt_check(&o, "<think>a</think>\\boxed{ \\boxed{5}").score, 0.0, 0.0);
  CHECK_NEAR(fmt_check(&o, "<think>a</think>}} \\boxed{5}").score, 1.0, 0.0);
}

/* Adversarial sizes stay linear: 1 MB of "\boxed{" or of nested tags
 * (a quadratic scan would not finish within the test timeout). */
TEST(format_large_inputs) {
  size_t n = 1 << 20;
  char *s = malloc(n + 32);
  CHECK(s != NULL);
  if (!s) return;
  size_t k = (size_t)snprintf(s, 32, "<think>a</think>");
  while (k + 7 <= n) {
    memcpy(s + k, "\\boxed{", 7);
    k += 7;
  }
  s[k] = '\0';
  reward_format_options o;
  reward_format_defaults(&o);
  reward_format_report r;
  reward_format_check(&o, s, k, NULL, &r);
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_BOXED);
  /* Every block is unclosed and nested: the parallel rule parses 1 MB. */
  static const char unit[] = "<Parallel><Outlines><Outline>1:<Thread>1:x";
  size_t u = sizeof unit - 1;
  k = (size_t)snprintf(s, 32, "<think>");
  while (k + u + 20 <= n) {
    memcpy(s + k, unit, u);
    k += u;
  }
  k += (size_t)snprintf(s + k, 32, "</think>\\boxed{1}");
  CHECK_EQ_INT(reward_format_set(&o, "check_parallel", "true", NULL), GRPO_OK);
  reward_format_check(&o, s, k, NULL, &r);
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_PARALLEL);
  free(s);
}

TEST(format_options) {
  reward_format_options o;
  reward_format_defaults(&o);
  grpo_error err;
  /* The chat template opened the block: the completion must not open it again. */
  CHECK_EQ_INT(reward_format_set(&o, "think_in_prompt", "true", &err), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, "reasoning</think>\\boxed{2}").score, 1.0, 0.0);
  CHECK_NEAR(fmt_check(&o, "<think>reasoning</think>\\boxed{2}").score, 0.0, 0.0);
  reward_format_defaults(&o);
  CHECK_EQ_INT(reward_format_set(&o, "allow_leading_text", "true", &err), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, "Sure! <think>ok</think>\\boxed{5}").score, 1.0, 0.0);
  reward_format_defaults(&o);
  CHECK_EQ_INT(reward_format_set(&o, "require_boxed", "false", &err), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, "<think>a</think>five").score, 1.0, 0.0);
  /* partial: 7 rules enabled by default; one failing gives 6/7. */
  reward_format_defaults(&o);
  CHECK_EQ_INT(reward_format_set(&o, "partial", "true", &err), GRPO_OK);
  reward_format_report r = fmt_check(&o, "<think>a</think>five");
  CHECK_EQ_INT(__builtin_popcount(r.checked), 7);
  CHECK_NEAR(r.score, 6.0 / 7.0, 1e-12);
  r = fmt_check(&o, "no structure at all");
  /* every rule fails: a rule whose text is missing fails */
  CHECK_NEAR(r.score, 0.0, 0.0);
  /* Custom tags. */
  reward_format_defaults(&o);
  CHECK_EQ_INT(reward_format_set(&o, "think_open", "<reasoning>", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_set(&o, "think_close", "</reasoning>", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_finish(&o, &err), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, "<reasoning>x</reasoning>\\boxed{1}").score, 1.0, 0.0);
  CHECK_NEAR(fmt_check(&o, "<think>x</think>\\boxed{1}").score, 0.0, 0.0);
  CHECK_EQ_INT(reward_format_set(&o, "think_close", "reasoning>", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_finish(&o, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "must not contain") != NULL);
  /* Bad values. */
  CHECK_EQ_INT(reward_format_set(&o, "partial", "yes", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "option 'partial': expected true or false, got 'yes'") != NULL);
  CHECK_EQ_INT(reward_format_set(&o, "think_open", "", &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_format_set(&o, "boxed", "true", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "unknown option 'boxed'") != NULL);
}

/* DeepSeek-R1 / open-r1 style: <think>...</think> <answer>...</answer>. */
TEST(format_answer_tags) {
  reward_format_options o;
  reward_format_defaults(&o);
  grpo_error err;
  CHECK_EQ_INT(reward_format_set(&o, "answer_open", "<answer>", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_finish(&o, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "set together") != NULL);
  CHECK_EQ_INT(reward_format_set(&o, "answer_close", "</answer>", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_set(&o, "require_boxed", "false", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_finish(&o, &err), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, "<think>a</think>\n<answer>\n5\n</answer>\n").score, 1.0, 0.0);
  const char *bad[] = {"<think>a</think>5", "<think>a</think>so <answer>5</answer>",
                       "<think>a</think><answer>5</answer> more", "<think>a</think><answer> </answer>",
                       "<think>a</think><answer>5</answer><answer>6</answer>",
                       "<think>a</think></answer>5<answer>", "<think>a</think><answer>5", NULL};
  for (int i = 0; bad[i]; i++) {
    reward_format_report r = fmt_check(&o, bad[i]);
    CHECK_MSG(r.failed == 1u << REWARD_FORMAT_ANSWER_TAGS, "%s", bad[i]);
  }
  CHECK_EQ_INT(reward_format_set(&o, "answer_close", "answer>", &err), GRPO_OK);
  CHECK_EQ_INT(reward_format_finish(&o, &err), GRPO_EINVAL);
}

TEST(format_threadweaver_rules) {
  reward_format_options o;
  reward_format_defaults(&o);
  const char *good =
      "<think>plan<Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"
      "<Thread>1: x</Thread><Thread>2: y</Thread></Parallel>done</think>\\boxed{3}";
  CHECK_NEAR(fmt_check(&o, good).score, 1.0, 0.0);
  /* Structure tags after </think> fail no_tags_after. */
  reward_format_report r = fmt_check(&o, "<think>a</think><Thread>1: x</Thread>\\boxed{3}");
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_NO_TAGS_AFTER);
  CHECK_EQ_INT(reward_format_set(&o, "check_parallel", "true", NULL), GRPO_OK);
  CHECK_NEAR(fmt_check(&o, good).score, 1.0, 0.0);
  r = fmt_check(&o, "<think><Parallel><Thread>1: x</Thread></Parallel></think>\\boxed{3}");
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_PARALLEL);
  CHECK_STR(reward_format_rule_name(r.first_failed), "parallel");
}

TEST(format_regex) {
  reward_format_options o;
  reward_format_defaults(&o);
  grpo_error err;
  CHECK_EQ_INT(reward_format_set(&o, "answer_regex", "^\\s*\\\\boxed\\{-?\\d+\\}\\s*$", &err), GRPO_OK);
  void *md = reward_format_match_data(&o);
  CHECK(md != NULL);
  reward_format_report r;
  const char *s = "<think>a</think> \\boxed{-12}\n";
  reward_format_check(&o, s, strlen(s), md, &r);
  CHECK_NEAR(r.score, 1.0, 0.0);
  s = "<think>a</think>so \\boxed{12}";
  reward_format_check(&o, s, strlen(s), md, &r);
  CHECK_EQ_INT(r.failed, 1u << REWARD_FORMAT_REGEX);
  /* Invalid UTF-8 in the completion is just a non-match, never an error. */
  s = "<think>a</think>\xff\xfe\\boxed{1}";
  reward_format_check(&o, s, strlen(s), md, &r);
  CHECK(fails(&r, REWARD_FORMAT_REGEX));
  reward_format_match_data_free(md);
  CHECK_EQ_INT(reward_format_set(&o, "answer_regex", "(unclosed", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "answer_regex") != NULL && strstr(err.msg, "offset 9") != NULL);
  CHECK(o.regex_code == NULL);
  reward_format_release(&o);
}

/* DAPO: L_max = 100, L_cache = 20 -> 0 up to 80, then -(L-80)/20, -1 past 100. */
TEST(overlong_formula) {
  reward_overlong_options o;
  reward_overlong_defaults(&o);
  grpo_error err;
  CHECK_EQ_INT(reward_overlong_finish(&o, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "max_completion_length") != NULL);
  CHECK_EQ_INT(reward_overlong_set(&o, "max_completion_length", "100", &err), GRPO_OK);
  CHECK_EQ_INT(reward_overlong_finish(&o, &err), GRPO_OK);
  CHECK_EQ_INT(o.cache_length, 20); /* default max/5 */
  CHECK_NEAR(reward_overlong_score(&o, 0, 0), 0.0, 0.0);
  CHECK_NEAR(reward_overlong_score(&o, 80, 0), 0.0, 0.0);
  CHECK_NEAR(reward_overlong_score(&o, 81, 0), -0.05, 1e-12);
  CHECK_NEAR(reward_overlong_score(&o, 90, 0), -0.5, 1e-12);
  CHECK_NEAR(reward_overlong_score(&o, 100, 1), -1.0, 1e-12);
  CHECK_NEAR(reward_overlong_score(&o, 101, 0), -1.0, 0.0);
  CHECK_NEAR(reward_overlong_score(&o, 50, 1), 0.0, 0.0); /* truncated is ignored by default */
  CHECK_EQ_INT(reward_overlong_set(&o, "penalty_factor", "0.5", &err), GRPO_OK);
  CHECK_NEAR(reward_overlong_score(&o, 90, 0), -0.25, 1e-12);
  CHECK_EQ_INT(reward_overlong_set(&o, "penalize_truncated", "true", &err), GRPO_OK);
  CHECK_NEAR(reward_overlong_score(&o, 50, 1), -0.5, 0.0);
  /* cache 0: a cliff at L_max. */
  reward_overlong_defaults(&o);
  CHECK_EQ_INT(reward_overlong_set(&o, "max_completion_length", "100", &err), GRPO_OK);
  CHECK_EQ_INT(reward_overlong_set(&o, "cache_length", "0", &err), GRPO_OK);
  CHECK_EQ_INT(reward_overlong_finish(&o, &err), GRPO_OK);
  CHECK_NEAR(reward_overlong_score(&o, 100, 0), 0.0, 0.0);
  CHECK_NEAR(reward_overlong_score(&o, 101, 0), -1.0, 0.0);
  /* cache past max, and bad numbers. */
  CHECK_EQ_INT(reward_overlong_set(&o, "cache_length", "101", &err), GRPO_OK);
  CHECK_EQ_INT(reward_overlong_finish(&o, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "cache_length") != NULL);
  CHECK_EQ_INT(reward_overlong_set(&o, "max_completion_length", "0", &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_overlong_set(&o, "max_completion_length", "12abc", &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_overlong_set(&o, "penalty_factor", "inf", &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_overlong_set(&o, "buffer", "3", &err), GRPO_EINVAL);
}

TEST(length_shaping) {
  reward_length_options o;
  reward_length_defaults(&o);
  grpo_error err;
  CHECK_EQ_INT(reward_length_finish(&o, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "target_length") != NULL);
  CHECK_EQ_INT(reward_length_set(&o, "target_length", "100", &err), GRPO_OK);
  CHECK_EQ_INT(reward_length_finish(&o, &err), GRPO_OK);
  CHECK_NEAR(reward_length_score(&o, 100), 0.0, 0.0);
  CHECK_NEAR(reward_length_score(&o, 150), -0.5, 1e-12);
  CHECK_NEAR(reward_length_score(&o, 50), -0.5, 1e-12);
  CHECK_NEAR(reward_length_score(&o, 300), -1.0, 0.0);
  CHECK_EQ_INT(reward_length_set(&o, "mode", "budget", &err), GRPO_OK);
  CHECK_EQ_INT(reward_length_set(&o, "tolerance", "200", &err), GRPO_OK);
  CHECK_EQ_INT(reward_length_finish(&o, &err), GRPO_OK);
  CHECK_NEAR(reward_length_score(&o, 50), 0.0, 0.0);
  CHECK_NEAR(reward_length_score(&o, 150), -0.25, 1e-12);
  CHECK_EQ_INT(reward_length_set(&o, "mode", "group", &err), GRPO_OK);
  CHECK(isnan(reward_length_score(&o, 150)));
  CHECK_EQ_INT(reward_length_set(&o, "mode", "short", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "target|budget|group") != NULL);
  /* Kimi k1.5: lambda = 0.5 - (L - 100)/(300 - 100) = 0.5, 0, -0.5, 0.25. */
  int64_t len[4] = {100, 200, 300, 150};
  int ok[4] = {1, 0, 1, 0};
  double out[4];
  reward_length_group(len, ok, 4, out);
  CHECK_NEAR(out[0], 0.5, 1e-12);
  CHECK_NEAR(out[1], 0.0, 0.0);
  CHECK_NEAR(out[2], -0.5, 1e-12);
  CHECK_NEAR(out[3], 0.0, 0.0); /* incorrect: min(0, 0.25) */
  int64_t same[2] = {7, 7};
  reward_length_group(same, ok, 2, out);
  CHECK_NEAR(out[0], 0.0, 0.0);
  CHECK_NEAR(out[1], 0.0, 0.0);
}

int main(void) {
  RUN(format_good_and_bad);
  RUN(format_boxes);
  RUN(format_large_inputs);
  RUN(format_options);
  RUN(format_answer_tags);
  RUN(format_threadweaver_rules);
  RUN(format_regex);
  RUN(overlong_formula);
  RUN(length_shaping);
  return test_summary();
}
