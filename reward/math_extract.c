/* Answer extraction from completions and golds (priority order in
 * reward/README.md). Every scan is linear in the input; nothing recurses. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "reward/math_internal.h"

static size_t copy_trim(const char *s, size_t n, char *out, size_t cap) {
  /* a tab or form feed glued to letters may be a command whose backslash a
   * JSON writer ate ("\frac" read as "\f" + "rac"): math_verify.c restores it */
  while (n > 0 && isspace((unsigned char)*s) &&
         !(strchr("\t\f\r", *s) && n > 1 && isalpha((unsigned char)s[1])))
    s++, n--;
  while (n > 0 && (isspace((unsigned char)s[n - 1]))) n--;
  if (n >= cap) n = cap - 1;
  memcpy(out, s, n);
  out[n] = '\0';
  return n;
}

/* Last occurrence of needle in s[0, n), case-insensitive when ci. The first
 * byte is filtered before the full compare, so 1 MB scans in about 1 ms. */
static const char *rfind(const char *s, size_t n, const char *needle, int ci) {
  size_t k = strlen(needle);
  if (k == 0 || k > n) return NULL;
  unsigned char f = (unsigned char)needle[0], fl = ci ? (unsigned char)tolower(f) : f;
  for (size_t i = n - k + 1; i-- > 0;) {
    unsigned char ch = (unsigned char)s[i];
    if (ci ? ((unsigned char)tolower(ch) != fl) : ch != f) continue;
    if (ci ? strncasecmp(s + i, needle, k) == 0 : memcmp(s + i, needle, k) == 0) return s + i;
  }
  return NULL;
}

/* Content of the last \boxed / \fbox. 1 found (out may be empty), 0 none. */
static int last_box(const char *s, size_t n, char *out, size_t cap) {
  const char *b1 = rfind(s, n, "\\boxed", 0), *b2 = rfind(s, n, "\\fbox", 0);
  const char *b = b1 > b2 ? b1 : b2;
  if (!b) return 0;
  size_t p = (size_t)(b - s) + (b == b1 ? 6 : 5);
  while (p < n && (s[p] == ' ' || s[p] == '\t')) p++;
  if (p < n && s[p] == '{') {
    size_t q = p + 1;
    int depth = 1;
    while (q < n) {
      if (s[q] == '\\' && q + 1 < n) {
        q += 2;
        continue;
      }
      if (s[q] == '{') depth++;
      if (s[q] == '}' && --depth == 0) break;
      q++;
    }
    if (depth != 0) {
      out[0] = '\0';
      return 1; /* unbalanced: no answer */
    }
    copy_trim(s + p + 1, q - p - 1, out, cap);
  } else {
    /* \boxed X: up to the next $ or line end */
    size_t q = p;
    while (q < n && s[q] != '$' && s[q] != '\n') q++;
    copy_trim(s + p, q - p, out, cap);
  }
  /* nested \boxed{\boxed{X}} */
  for (int k = 0; k < 4; k++) {
    size_t len = strlen(out);
    if (len > 7 && (strncmp(out, "\\boxed", 6) == 0 || strncmp(out, "\\fbox", 5) == 0)) {
      char tmp[MV_MAX_ANSWER];
      if (!last_box(out, len, tmp, sizeof tmp)) break;
      snprintf(out, cap, "%s", tmp);
    } else {
      break;
    }
  }
  return 1;
}

static size_t line_end(const char *s, size_t n, size_t p) {
  while (p < n && s[p] != '\n') p++;
  return p;
}

int mv_extract_gold(const char *s, size_t n, char *out, size_t cap) {
  const char *h = rfind(s, n, "####", 0);
  if (h) {
    size_t p = (size_t)(h - s) + 4;
    size_t e = line_end(s, n, p);
    char tmp[256];
    copy_trim(s + p, e - p, tmp, sizeof tmp);
    size_t k = 0;
    for (size_t i = 0; tmp[i] && k + 1 < cap; i++)
      if (tmp[i] != ',') out[k++] = tmp[i];
    out[k] = '\0';
    return k > 0;
  }
  if (last_box(s, n, out, cap)) return out[0] != '\0';
  copy_trim(s, n, out, cap);
  return out[0] != '\0';
}

/* Answer phrases, each followed by the answer. */
static const char *const PHRASES[] = {
    "final answer is",  "final answer:", "the answer is", "answer is", "answer:", "answer**:",
    "réponse est",      "réponse :",     "réponse:",      "答案：",     "答案:",     "ответ:",
    "respuesta es",     "respuesta:",    "antwort:",      "final answer",
};

static int math_char(unsigned char ch) {
  return isdigit(ch) || strchr("+-*/^_=()[]{}.,\\%!|<>' ", ch) != NULL;
}

/* Plain-text function names that the parser reads (math_parse.c PLAIN). */
static int plain_function(const char *w, size_t len) {
  static const char *const names[] = {"sqrt",   "exp",    "sin",    "cos", "tan", "ln",
                                      "log",    "arcsin", "arccos", "arctan", "cot", "sec",
                                      "csc",    "abs"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i]) == len && memcmp(names[i], w, len) == 0) return 1;
  return 0;
}

/* The last (or first) span of math-looking ASCII containing a digit. */
int mv_math_span(const char *s, size_t n, int want_last, char *out, size_t cap) {
  size_t best_a = 0, best_b = 0;
  int found = 0;
  size_t i = 0;
  while (i < n) {
    /* start of a span */
    size_t a = i, j = i;
    int digit = 0;
    while (j < n) {
      unsigned char ch = (unsigned char)s[j];
      if (ch == '\\' && j + 1 < n && isalpha((unsigned char)s[j + 1])) {
        j++;
        while (j < n && isalpha((unsigned char)s[j])) j++;
        continue;
      }
      if (isalpha(ch)) {
        /* a lone letter glued to math (2x, x^2) belongs to the span */
        int alone = (j + 1 >= n || !isalpha((unsigned char)s[j + 1])) &&
                    (j == 0 || !isalpha((unsigned char)s[j - 1]));
        int glued = (j > 0 && math_char((unsigned char)s[j - 1]) && s[j - 1] != ' ') ||
                    (j + 1 < n && math_char((unsigned char)s[j + 1]) && s[j + 1] != ' ');
        if (alone && glued) {
          j++;
          continue;
        }
        break;
      }
      if (ch == '.' && (j + 1 >= n || !isdigit((unsigned char)s[j + 1]))) break;
      if (ch == '*' && j + 1 < n && s[j + 1] == '*') break; /* markdown bold */
      if (!math_char(ch)) break;
      if (isdigit(ch)) digit = 1;
      j++;
    }
    if (digit) {
      /* trim separators at the ends */
      size_t x = a, y = j;
      while (x < y && strchr(" ,=:*", s[x])) x++;
      while (y > x && strchr(" ,=:*", s[y - 1])) y--;
      if (y > x && s[x] == '(' && x > 0 && isalpha((unsigned char)s[x - 1])) {
        /* "sqrt(2)", "lcm(4, 6)": the span is a function's argument; keep a
         * known function with it, never the bare argument (2 for sqrt(2)) */
        size_t w = x;
        while (w > 0 && isalpha((unsigned char)s[w - 1])) w--;
        x = plain_function(s + w, x - w) ? w : y;
      }
      if (y > x) {
        if (!want_last && !found) {
          best_a = x, best_b = y, found = 1;
          break;
        }
        best_a = x, best_b = y, found = 1;
      }
    }
    i = j > i ? j : i + 1;
  }
  if (!found) return 0;
  /* drop unbalanced outer parentheses such as "(\frac{2}{5}" */
  copy_trim(s + best_a, best_b - best_a, out, cap);
  int bal = 0;
  for (char *q = out; *q; q++) bal += (*q == '(') - (*q == ')');
  size_t len = strlen(out);
  if (bal > 0 && out[0] == '(') memmove(out, out + 1, len);
  else if (bal < 0 && len && out[len - 1] == ')') out[len - 1] = '\0';
  return out[0] != '\0';
}

int mv_last_number(const char *s, size_t n, char *out, size_t cap) {
  return mv_math_span(s, n, 1, out, cap);
}

reward_math_rule mv_extract_pred(const char *s, size_t n, const reward_math_options *opt, char *out,
                                 size_t cap, char *why, size_t whycap) {
  out[0] = '\0';
  const char *t = rfind(s, n, "</think>", 0);
  if (t) {
    size_t k = (size_t)(t - s) + 8;
    s += k;
    n -= k;
  } else if (opt->require_think_close) {
    snprintf(why, whycap, "no </think>");
    return REWARD_MATH_RULE_NONE;
  }
  if (last_box(s, n, out, cap)) {
    if (!out[0]) {
      snprintf(why, whycap, "empty or unbalanced \\boxed");
      return REWARD_MATH_RULE_NONE;
    }
    return REWARD_MATH_RULE_BOXED;
  }
  const char *h = rfind(s, n, "####", 0);
  if (h) {
    size_t p = (size_t)(h - s) + 4;
    copy_trim(s + p, line_end(s, n, p) - p, out, cap);
    if (out[0]) return REWARD_MATH_RULE_HASHES;
  }
  /* one backward pass for the rightmost answer phrase */
  const char *best = NULL;
  size_t blen = 0;
  for (size_t i = n; i-- > 0 && !best;) {
    unsigned char ch = (unsigned char)tolower((unsigned char)s[i]);
    if (ch != 'a' && ch != 'f' && ch != 't' && ch != 'r' && ch < 0x80) continue;
    for (size_t k = 0; k < sizeof PHRASES / sizeof PHRASES[0]; k++) {
      size_t len = strlen(PHRASES[k]);
      if (i + len <= n && strncasecmp(s + i, PHRASES[k], len) == 0) {
        best = s + i;
        blen = len;
        break;
      }
    }
  }
  if (best) {
    size_t p = (size_t)(best - s) + blen;
    while (p < n && (s[p] == ' ' || s[p] == '*' || s[p] == ':' || s[p] == '\n')) p++;
    size_t e = line_end(s, n, p);
    copy_trim(s + p, e - p, out, cap);
    /* "is $5$. I hope it is correct": keep the math environment */
    if (out[0] == '$') {
      size_t a = out[1] == '$' ? 2 : 1;
      char *close = strchr(out + a, '$');
      if (close) {
        *close = '\0';
        memmove(out, out + a, strlen(out + a) + 1);
      }
    } else {
      /* a sentence ends at ". " before a capital letter */
      for (char *q = out; *q; q++)
        if (q[0] == '.' && q[1] == ' ' && isupper((unsigned char)q[2])) {
          *q = '\0';
          break;
        }
    }
    size_t len = strlen(out);
    while (len && (out[len - 1] == '.' || out[len - 1] == '*' || out[len - 1] == ' '))
      out[--len] = '\0';
    if (out[0]) return best[0] == 'f' || best[0] == 'F' ? REWARD_MATH_RULE_FINAL_ANSWER
                                                        : REWARD_MATH_RULE_ANSWER_COLON;
  }
  /* last $...$ or \[...\] / \(...\) */
  const char *end = NULL, *start = NULL;
  {
    const char *d2 = rfind(s, n, "\\]", 0), *p2 = rfind(s, n, "\\)", 0);
    const char *e = d2 > p2 ? d2 : p2;
    if (e) {
      const char *o = rfind(s, (size_t)(e - s), e == d2 ? "\\[" : "\\(", 0);
      if (o) start = o + 2, end = e;
    }
    /* dollars: pair them from the left, keep the last pair */
    const char *open = NULL, *la = NULL, *lb = NULL;
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '\\' && i + 1 < n) {
        i++;
        continue;
      }
      if (s[i] != '$') continue;
      size_t w = (i + 1 < n && s[i + 1] == '$') ? 2 : 1;
      if (!open) {
        open = s + i + w;
      } else {
        la = open;
        lb = s + i;
        open = NULL;
      }
      i += w - 1;
    }
    if (lb && (!end || lb > end)) start = la, end = lb;
  }
  size_t total = n;
  if (end && start && end > start && total - (size_t)(end - s) < 200) {
    copy_trim(start, (size_t)(end - start), out, cap);
    if (out[0]) return REWARD_MATH_RULE_LAST_MATH;
  }
  if (n <= 200) {
    copy_trim(s, n, out, cap);
    if (out[0]) return REWARD_MATH_RULE_WHOLE;
  }
  if (opt->last_number_fallback && mv_last_number(s, n, out, cap)) return REWARD_MATH_RULE_LAST_NUMBER;
  snprintf(why, whycap, "no answer found");
  return REWARD_MATH_RULE_NONE;
}
