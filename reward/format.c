#include "reward/format.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "reward/pgrpo.h"
#include "reward/registry.h"

/* Bounds a hostile pattern/subject pair: the match gives up and the rule fails. */
#define FORMAT_REGEX_MATCH_LIMIT 1000000u
#define FORMAT_REGEX_DEPTH_LIMIT 10000u

static const char *const k_rule_names[REWARD_FORMAT_NRULES] = {
    "think_open", "leading",      "think_close",   "think_content", "answer",
    "answer_tags", "boxed",       "single_boxed",  "no_tags_after", "parallel",
    "regex",
};

const char *reward_format_rule_name(int rule) {
  return rule >= 0 && rule < REWARD_FORMAT_NRULES ? k_rule_names[rule] : "?";
}

void reward_format_defaults(reward_format_options *opt) {
  memset(opt, 0, sizeof *opt);
  snprintf(opt->think_open, sizeof opt->think_open, "<think>");
  snprintf(opt->think_close, sizeof opt->think_close, "</think>");
  opt->require_think_content = 1;
  opt->require_answer = 1;
  opt->require_boxed = 1;
  opt->no_tags_after = 1;
}

void reward_format_release(reward_format_options *opt) {
  if (opt->regex_code) pcre2_code_free((pcre2_code *)opt->regex_code);
  if (opt->regex_mctx) pcre2_match_context_free((pcre2_match_context *)opt->regex_mctx);
  opt->regex_code = NULL;
  opt->regex_mctx = NULL;
}

static int set_tag(char *dst, const char *key, const char *value, int may_be_empty,
                   grpo_error *err) {
  size_t n = strlen(value);
  if ((n == 0 && !may_be_empty) || n >= REWARD_FORMAT_TAG_MAX)
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': tag must be %d..%d bytes, got %zu", key,
                     may_be_empty ? 0 : 1, REWARD_FORMAT_TAG_MAX - 1, n);
  memcpy(dst, value, n + 1);
  return GRPO_OK;
}

static int compile_regex(reward_format_options *opt, const char *value, grpo_error *err) {
  size_t n = strlen(value);
  if (n >= REWARD_FORMAT_REGEX_MAX)
    return GRPO_FAIL(err, GRPO_EINVAL, "option 'answer_regex': pattern longer than %d bytes",
                     REWARD_FORMAT_REGEX_MAX - 1);
  reward_format_release(opt);
  memcpy(opt->answer_regex, value, n + 1);
  if (n == 0) return GRPO_OK;
  int code;
  PCRE2_SIZE at;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, n, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code,
                                 &at, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    opt->answer_regex[0] = '\0';
    return GRPO_FAIL(err, GRPO_EINVAL, "option 'answer_regex': %s at offset %zu of \"%s\"",
                     (const char *)msg, (size_t)at, value);
  }
  pcre2_match_context *mc = pcre2_match_context_create(NULL);
  if (!mc) {
    pcre2_code_free(re);
    return GRPO_FAIL(err, GRPO_ENOMEM, "option 'answer_regex': out of memory");
  }
  pcre2_set_match_limit(mc, FORMAT_REGEX_MATCH_LIMIT);
  pcre2_set_depth_limit(mc, FORMAT_REGEX_DEPTH_LIMIT);
  opt->regex_code = re;
  opt->regex_mctx = mc;
  return GRPO_OK;
}

int reward_format_set(reward_format_options *opt, const char *key, const char *value,
                      grpo_error *err) {
  static const struct {
    const char *key;
    size_t field;
  } bools[] = {
      {"think_in_prompt", offsetof(reward_format_options, think_in_prompt)},
      {"allow_leading_text", offsetof(reward_format_options, allow_leading_text)},
      {"require_think_content", offsetof(reward_format_options, require_think_content)},
      {"require_answer", offsetof(reward_format_options, require_answer)},
      {"require_boxed", offsetof(reward_format_options, require_boxed)},
      {"single_boxed", offsetof(reward_format_options, single_boxed)},
      {"no_tags_after", offsetof(reward_format_options, no_tags_after)},
      {"check_parallel", offsetof(reward_format_options, check_parallel)},
      {"partial", offsetof(reward_format_options, partial)},
  };
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
    if (strcmp(key, bools[i].key) == 0)
      return reward_parse_bool(key, value, (int *)((char *)opt + bools[i].field), err);
  if (strcmp(key, "think_open") == 0) return set_tag(opt->think_open, key, value, 0, err);
  if (strcmp(key, "think_close") == 0) return set_tag(opt->think_close, key, value, 0, err);
  if (strcmp(key, "answer_open") == 0) return set_tag(opt->answer_open, key, value, 1, err);
  if (strcmp(key, "answer_close") == 0) return set_tag(opt->answer_close, key, value, 1, err);
  if (strcmp(key, "answer_regex") == 0) return compile_regex(opt, value, err);
  return GRPO_FAIL(err, GRPO_EINVAL,
                   "unknown option '%s' (valid: think_open, think_close, answer_open, "
                   "answer_close, think_in_prompt, "
                   "allow_leading_text, require_think_content, require_answer, require_boxed, "
                   "single_boxed, no_tags_after, check_parallel, partial, answer_regex)",
                   key);
}

int reward_format_finish(reward_format_options *opt, grpo_error *err) {
  /* Counting one tag must never count the other. */
  if (strstr(opt->think_open, opt->think_close) || strstr(opt->think_close, opt->think_open))
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "options 'think_open' (\"%s\") and 'think_close' (\"%s\") must not contain "
                     "one another",
                     opt->think_open, opt->think_close);
  if (!opt->answer_open[0] != !opt->answer_close[0])
    return GRPO_FAIL(err, GRPO_EINVAL, "options 'answer_open' and 'answer_close' must be set together");
  if (opt->answer_open[0] &&
      (strstr(opt->answer_open, opt->answer_close) || strstr(opt->answer_close, opt->answer_open)))
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "options 'answer_open' (\"%s\") and 'answer_close' (\"%s\") must not contain "
                     "one another",
                     opt->answer_open, opt->answer_close);
  return GRPO_OK;
}

static const char *find(const char *hay, size_t n, const char *needle, size_t m) {
  if (m == 0 || m > n) return NULL;
  const char *p = hay, *end = hay + n - m + 1;
  while (p < end) {
    const char *c = memchr(p, needle[0], (size_t)(end - p));
    if (!c) return NULL;
    if (memcmp(c, needle, m) == 0) return c;
    p = c + 1;
  }
  return NULL;
}

/* Counts occurrences; *first and *last get the first and last positions. */
static int count_tag(const char *text, size_t len, const char *tag, size_t *first, size_t *last) {
  size_t m = strlen(tag);
  int n = 0;
  const char *p = text, *end = text + len;
  for (;;) {
    const char *c = find(p, (size_t)(end - p), tag, m);
    if (!c) break;
    if (n == 0) *first = (size_t)(c - text);
    *last = (size_t)(c - text);
    n++;
    p = c + m;
  }
  return n;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_space(s[i])) return 0;
  return 1;
}

/* Counts \boxed / \fbox commands in s[0..n) (starts) and the outermost ones
 * whose {...} argument closes and is not blank (valid). One pass with a
 * global brace depth, so a megabyte of "\boxed{" costs O(n). A backslash
 * escapes the next byte: \{ \} and \\ do not group. A box inside a box
 * counts as a start only. */
static void count_boxes(const char *s, size_t n, int *starts, int *valid) {
  size_t depth = 0, content = 0;
  long box_depth = -1; /* depth outside the open outermost box, -1 when none */
  *starts = *valid = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '{') {
      depth++;
    } else if (c == '}') {
      if (depth > 0) depth--;
      if (box_depth >= 0 && depth == (size_t)box_depth) {
        if (!blank(s + content, i - content)) (*valid)++;
        box_depth = -1;
      }
    } else if (c == '\\') {
      size_t cmd = 0;
      if (n - i >= 6 && memcmp(s + i, "\\boxed", 6) == 0) cmd = 6;
      else if (n - i >= 5 && memcmp(s + i, "\\fbox", 5) == 0) cmd = 5;
      if (!cmd) {
        i++; /* skip the escaped byte */
        continue;
      }
      size_t j = i + cmd;
      if (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) {
        i = j - 1; /* a longer command such as \boxedtext */
        continue;
      }
      (*starts)++;
      while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
      if (j < n && s[j] == '{' && box_depth < 0) {
        box_depth = (long)depth;
        depth++;
        content = j + 1;
        i = j;
      } else {
        i = j - 1;
      }
    }
  }
}

static int has_threadweaver_tag(const char *s, size_t n) {
  static const char *const tags[] = {"<Parallel>", "</Parallel>", "<Outlines>", "</Outlines>",
                                     "<Outline>",  "</Outline>",  "<Thread>",   "</Thread>"};
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
    if (find(s, n, tags[i], strlen(tags[i]))) return 1;
  return 0;
}

void *reward_format_match_data(const reward_format_options *opt) {
  if (!opt->regex_code) return NULL;
  return pcre2_match_data_create_from_pattern((const pcre2_code *)opt->regex_code, NULL);
}

void reward_format_match_data_free(void *match_data) {
  if (match_data) pcre2_match_data_free((pcre2_match_data *)match_data);
}

void reward_format_check(const reward_format_options *opt, const char *text, size_t len,
                         void *match_data, reward_format_report *rep) {
  unsigned checked = 0, failed = 0;
#define RULE(r, pass)              \
  do {                             \
    checked |= 1u << (r);          \
    if (!(pass)) failed |= 1u << (r); \
  } while (0)

  if (!text) len = 0;
  size_t open_first = 0, open_last = 0, close_first = 0, close_last = 0;
  size_t open_len = strlen(opt->think_open), close_len = strlen(opt->think_close);
  int n_open = len ? count_tag(text, len, opt->think_open, &open_first, &open_last) : 0;
  int n_close = len ? count_tag(text, len, opt->think_close, &close_first, &close_last) : 0;

  if (opt->think_in_prompt) {
    RULE(REWARD_FORMAT_THINK_OPEN, n_open == 0);
  } else {
    RULE(REWARD_FORMAT_THINK_OPEN, n_open == 1);
    if (!opt->allow_leading_text) RULE(REWARD_FORMAT_LEADING, n_open >= 1 && blank(text, open_first));
  }
  /* The think block runs from the first opening tag (or the start) to the
   * last closing tag; the answer part is everything after that. */
  size_t think_at = opt->think_in_prompt || n_open == 0 ? 0 : open_first + open_len;
  int have_block = n_close >= 1 && (opt->think_in_prompt || (n_open >= 1 && close_first > open_first));
  RULE(REWARD_FORMAT_THINK_CLOSE, n_close == 1 && have_block);
  size_t think_end = have_block ? close_last : think_at;
  size_t ans_at = have_block ? close_last + close_len : len;
  const char *ans = text ? text + ans_at : NULL;
  size_t ans_n = len - ans_at;

  if (opt->require_think_content)
    RULE(REWARD_FORMAT_THINK_CONTENT, have_block && think_end > think_at && !blank(text + think_at, think_end - think_at));
  if (opt->require_answer) RULE(REWARD_FORMAT_ANSWER, have_block && !blank(ans, ans_n));
  if (opt->answer_open[0]) {
    size_t a_first = 0, a_last = 0, c_first = 0, c_last = 0;
    size_t a_len = strlen(opt->answer_open), c_len = strlen(opt->answer_close);
    int ok = have_block && count_tag(ans, ans_n, opt->answer_open, &a_first, &a_last) == 1 &&
             count_tag(ans, ans_n, opt->answer_close, &c_first, &c_last) == 1 &&
             c_first >= a_first + a_len && blank(ans, a_first) &&
             !blank(ans + a_first + a_len, c_first - a_first - a_len) &&
             blank(ans + c_first + c_len, ans_n - c_first - c_len);
    RULE(REWARD_FORMAT_ANSWER_TAGS, ok);
  }
  int starts = 0, valid = 0;
  if (have_block && (opt->require_boxed || opt->single_boxed)) count_boxes(ans, ans_n, &starts, &valid);
  if (opt->require_boxed) RULE(REWARD_FORMAT_BOXED, have_block && valid >= 1);
  if (opt->single_boxed) RULE(REWARD_FORMAT_SINGLE_BOXED, have_block && starts == 1 && valid == 1);
  if (opt->no_tags_after) RULE(REWARD_FORMAT_NO_TAGS_AFTER, have_block && !has_threadweaver_tag(ans, ans_n));
  if (opt->check_parallel) {
    reward_pgrpo_stats st;
    int ok = have_block &&
             reward_pgrpo_parse(text + think_at, think_end - think_at, NULL, 0, &st, NULL) == GRPO_OK &&
             st.flags == 0;
    RULE(REWARD_FORMAT_PARALLEL, ok);
  }
  if (opt->regex_code) {
    int ok = 0;
    if (have_block) {
      pcre2_match_data *md = match_data;
      if (!md) md = pcre2_match_data_create_from_pattern((const pcre2_code *)opt->regex_code, NULL);
      if (md)
        ok = pcre2_match((const pcre2_code *)opt->regex_code, (PCRE2_SPTR)ans, ans_n, 0, 0, md,
                         (pcre2_match_context *)opt->regex_mctx) >= 0;
      if (md && md != match_data) pcre2_match_data_free(md);
    }
    RULE(REWARD_FORMAT_REGEX, ok);
  }
#undef RULE
  rep->checked = checked;
  rep->failed = failed;
  rep->first_failed = -1;
  for (int r = 0; r < REWARD_FORMAT_NRULES; r++)
    if (failed & (1u << r)) {
      rep->first_failed = r;
      break;
    }
  int n_checked = __builtin_popcount(checked), n_failed = __builtin_popcount(failed);
  if (opt->partial) rep->score = n_checked ? (double)(n_checked - n_failed) / n_checked : 1.0;
  else rep->score = n_failed ? 0.0 : 1.0;
}
