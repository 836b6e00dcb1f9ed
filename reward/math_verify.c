/* reward_math_verify: extraction, parsing and equivalence glued together,
 * with the fallbacks and caps described in reward/README.md. */
#include "reward/math_verify.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward/math_internal.h"

void reward_math_options_default(reward_math_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->require_think_close = 0;
  opt->allow_rounded = 1;
  opt->rounded_min_sig = 3;
  opt->rel_tol = 1e-9;
  opt->allow_set_relation = 0;
  opt->percent_bare_ok = 1;
  opt->last_number_fallback = 1;
  opt->sentence_gold_phrase = 1;
  opt->seed = 0x5eed2024u;
  opt->max_input = 1u << 20;
  opt->max_nodes = 1024;
  opt->max_steps = 400000;
}

const char *reward_math_result_name(reward_math_result r) {
  switch (r) {
    case REWARD_MATH_CORRECT: return "correct";
    case REWARD_MATH_INCORRECT: return "incorrect";
    case REWARD_MATH_UNSCORABLE: return "unscorable";
  }
  return "?";
}

const char *reward_math_rule_name(reward_math_rule r) {
  static const char *const names[] = {"none",   "boxed",     "hashes", "final_answer",
                                      "answer", "last_math", "whole",  "last_number"};
  return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* Loose string key for answers that do not parse: lower case, no spaces,
 * no $ or \text wrappers. */
static void loose_key(const char *s, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; s[i] && k + 1 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (isspace(ch) || ch == '$' || ch == '{' || ch == '}' || ch == '.') continue;
    if (ch == '\\') {
      size_t j = i + 1;
      while (isalpha((unsigned char)s[j])) j++;
      size_t len = j - i - 1;
      if ((len == 4 && strncmp(s + i + 1, "text", 4) == 0) ||
          (len == 6 && strncmp(s + i + 1, "textbf", 6) == 0) ||
          (len == 6 && strncmp(s + i + 1, "mathrm", 6) == 0) || len == 0) {
        i = len ? j - 1 : i;
        continue;
      }
    }
    out[k++] = (char)tolower(ch);
  }
  out[k] = '\0';
}

/* LaTeX put in a JSON string without doubling its backslashes reads back with
 * "\f" (form feed) + "rac" for \frac; likewise \b, \t, \r (backspace, tab,
 * carriage return). A control byte that completes one of these commands is
 * that command; other control bytes stay whitespace. */
static const char *const ESCAPED_CMDS[] = {
    "frac", "fbox", "beta", "binom", "bar", "boxed", "bigg", "big", "times", "text",
    "textbf", "textrm", "theta", "tan", "tau", "tfrac", "tilde", "right", "rho", "rfloor",
    "rceil", "rangle",
};

static size_t escaped_cmd(const char *s, char *letter) {
  static const char esc[][2] = {{'\b', 'b'}, {'\t', 't'}, {'\f', 'f'}, {'\r', 'r'}};
  for (size_t e = 0; e < sizeof esc / sizeof esc[0]; e++) {
    if (s[0] != esc[e][0]) continue;
    size_t len = 1;
    while (isalpha((unsigned char)s[len])) len++;
    for (size_t i = 0; i < sizeof ESCAPED_CMDS / sizeof ESCAPED_CMDS[0]; i++)
      if (ESCAPED_CMDS[i][0] == esc[e][1] && strlen(ESCAPED_CMDS[i]) == len &&
          memcmp(ESCAPED_CMDS[i] + 1, s + 1, len - 1) == 0) {
        *letter = esc[e][1];
        return len;
      }
  }
  return 0;
}

/* Rewrites an answer before parsing into out: circled numbers
 * (U+2460..U+2473) name numbered statements in multiple-choice answers, so
 * "②③" is the list 2, 3; JSON-eaten command backslashes are restored.
 * Returns 0 (out unused) when there is nothing to rewrite or it does not fit. */
static int normalise_answer(const char *s, char *out, size_t cap) {
  if (!strstr(s, "\xe2\x91") && !strpbrk(s, "\b\t\f\r")) return 0;
  size_t k = 0;
  int found = 0, prev = 0;
  for (size_t i = 0; s[i];) {
    const unsigned char *u = (const unsigned char *)s + i;
    if (u[0] == 0xe2 && u[1] == 0x91 && u[2] >= 0xa0 && u[2] <= 0xb3) {
      if (k + 8 >= cap) return 0;
      k += (size_t)snprintf(out + k, cap - k, "%s%d", prev ? ", " : "", u[2] - 0xa0 + 1);
      i += 3;
      found = prev = 1;
      continue;
    }
    prev = 0;
    char letter;
    size_t len = escaped_cmd(s + i, &letter);
    if (len) {
      if (k + len + 2 >= cap) return 0;
      out[k++] = '\\';
      out[k++] = letter;
      memcpy(out + k, s + i + 1, len - 1);
      k += len - 1;
      i += len;
      found = 1;
      continue;
    }
    if (k + 1 >= cap) return 0;
    out[k++] = s[i++];
  }
  out[k] = '\0';
  return found;
}

static int parse_answer(mv_ctx *c, const char *s) {
  char buf[2 * MV_MAX_ANSWER];
  if (normalise_answer(s, buf, sizeof buf)) return mv_parse(c, buf, strlen(buf));
  return mv_parse(c, s, strlen(s));
}

/* Lower-case alphabetic words of s (\text and other commands dropped). */
static int words_of(const char *s, char w[][24], int cap, int *digits) {
  int n = 0;
  *digits = 0;
  for (size_t i = 0; s[i];) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\\') {
      i++;
      while (isalpha((unsigned char)s[i])) i++;
      continue;
    }
    if (isdigit(ch)) *digits = 1;
    if (!isalpha(ch)) {
      i++;
      continue;
    }
    size_t k = 0;
    while (isalpha((unsigned char)s[i])) {
      if (k < 23 && n < cap) w[n][k++] = (char)tolower((unsigned char)s[i]);
      i++;
    }
    if (n < cap) w[n++][k] = '\0';
  }
  return n;
}

static int stopword(const char *w) {
  static const char *const stop[] = {"the", "a", "an", "of", "is", "in", "on", "to", "and",
                                     "or", "it", "be", "are", "by", "for", "at", "as"};
  for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
    if (strcmp(w, stop[i]) == 0) return 1;
  return strlen(w) < 3;
}

/* Sentence golds ("Petya will receive the last token."): a short text
 * prediction (1-3 words, no digits, not only stopwords) that appears in the
 * gold as a contiguous phrase names its answer. */
static int sentence_phrase_match(const char *gold, const char *pred) {
  char gw[64][24], pw[4][24];
  int gd, pd;
  int ng = words_of(gold, gw, 64, &gd), np = words_of(pred, pw, 4, &pd);
  if (ng < 4 || np < 1 || np > 3 || pd) return 0;
  if (strpbrk(pred, "=<>+*/^")) return 0;
  int content = 0;
  for (int j = 0; j < np; j++) content += !stopword(pw[j]);
  if (!content) return 0;
  for (int i = 0; i + np <= ng; i++) {
    int ok = 1;
    for (int j = 0; j < np && ok; j++) ok = strcmp(gw[i + j], pw[j]) == 0;
    if (ok) return 1;
  }
  return 0;
}

/* Multiple-choice letter A-J parsed alone (C, (C), \text{C}), else 0. */
static char choice_letter(const mv_ctx *c, int id) {
  if (id < 0) return 0;
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_TUPLE && n->n == 1) n = &c->nodes[n->kid];
  if (n->kind != MV_VAR || n->name[1] || n->name[0] < 'A' || n->name[0] > 'J') return 0;
  return n->name[0];
}

/* A choice label at s: "C. " or "C) " (or "(C) " when paren), A-J. */
static char label_at(const char *s, int paren) {
  char l = s[0];
  if (l < 'A' || l > 'J') return 0;
  if (!(s[1] == ')' || (!paren && s[1] == '.')) || s[2] != ' ') return 0;
  return l;
}

/* The choice an answer opens with, "C. x = 42" or "(C) 42", followed by
 * more text; 0 when there is none or a second label follows ("A. 1, B. 2"
 * lists the options instead of choosing one). */
static char choice_label(const char *s) {
  while (*s == ' ' || *s == '$') s++;
  int paren = *s == '(';
  char l = label_at(s + paren, paren);
  if (!l) return 0;
  s += paren + 3;
  while (*s == ' ') s++;
  if (!*s) return 0;
  for (const char *q = s; *q; q++)
    if ((q[0] == ' ' || q[0] == ',' || q[0] == ';') &&
        (label_at(q + 1, 0) || (q[1] == '(' && label_at(q + 2, 1))))
      return 0;
  return l;
}

int reward_math_verify(const char *gold, const char *completion, const reward_math_options *opt,
                       reward_math_verdict *out, grpo_error *err) {
  if (!gold || !completion || !out)
    return GRPO_FAIL(err, GRPO_EINVAL, "reward_math_verify: NULL argument");
  reward_math_options defaults;
  if (!opt) {
    reward_math_options_default(&defaults);
    opt = &defaults;
  }
  memset(out, 0, sizeof *out);
  out->result = REWARD_MATH_INCORRECT;

  int max_nodes = opt->max_nodes > 0 && opt->max_nodes < MV_MAX_NODES ? opt->max_nodes : MV_MAX_NODES;
  mv_ctx *c = malloc(sizeof *c + sizeof(mv_node) * (size_t)max_nodes + 2 * MV_MAX_ANSWER);
  if (!c) return GRPO_FAIL(err, GRPO_ENOMEM, "reward_math_verify: out of memory");
  c->opt = opt;
  c->nodes = (mv_node *)(c + 1);
  c->nnodes = 0;
  c->max_nodes = max_nodes;
  c->steps = 0;
  c->max_steps = opt->max_steps > 0 ? opt->max_steps : 400000;
  c->budget_hit = 0;
  c->ntext = 0;
  c->err[0] = '\0';
  c->alias_from[0] = c->alias_to[0] = '\0';
  char *gbuf = (char *)(c->nodes + max_nodes);
  char *pbuf = gbuf + MV_MAX_ANSWER;

  size_t gn = strnlen(gold, opt->max_input + 1), pn = strnlen(completion, opt->max_input + 1);
  if (gn > opt->max_input) gn = opt->max_input;
  if (pn > opt->max_input) pn = opt->max_input;

  int have_gold = mv_extract_gold(gold, gn, gbuf, MV_MAX_ANSWER);
  snprintf(out->gold_answer, sizeof out->gold_answer, "%s", gbuf);
  int g = have_gold ? parse_answer(c, gbuf) : -1;
  if (g < 0) snprintf(out->gold_form, sizeof out->gold_form, "error: %s", have_gold ? c->err : "empty gold");
  else mv_print(c, g, out->gold_form, sizeof out->gold_form);
  out->gold_parsed = g >= 0;

  char why[REWARD_MATH_REASON_MAX] = "";
  reward_math_rule rule = mv_extract_pred(completion, pn, opt, pbuf, MV_MAX_ANSWER, why, sizeof why);
  out->rule = rule;
  int p = -1;
  if (rule != REWARD_MATH_RULE_NONE) {
    c->budget_hit = 0;
    p = parse_answer(c, pbuf);
    if (p < 0 && !c->budget_hit && rule != REWARD_MATH_RULE_BOXED) {
      /* an anchor or free text that is not pure math: its math span */
      char span[MV_MAX_ANSWER];
      int first = rule == REWARD_MATH_RULE_ANSWER_COLON || rule == REWARD_MATH_RULE_FINAL_ANSWER;
      if (mv_math_span(pbuf, strlen(pbuf), !first, span, sizeof span)) {
        c->steps = c->steps / 2; /* the failed attempt was bounded; allow the retry */
        p = parse_answer(c, span);
        if (p >= 0) {
          snprintf(pbuf, MV_MAX_ANSWER, "%s", span);
          if (rule == REWARD_MATH_RULE_WHOLE) out->rule = REWARD_MATH_RULE_LAST_NUMBER;
        }
      }
    }
  }
  snprintf(out->pred_answer, sizeof out->pred_answer, "%s", pbuf);
  if (p < 0) snprintf(out->pred_form, sizeof out->pred_form, "error: %s", rule == REWARD_MATH_RULE_NONE ? why : c->err);
  else mv_print(c, p, out->pred_form, sizeof out->pred_form);
  out->pred_parsed = p >= 0;

  if (g < 0) {
    char a[512], b[512];
    loose_key(gbuf, a, sizeof a);
    loose_key(pbuf, b, sizeof b);
    if (have_gold && a[0] && strcmp(a, b) == 0 && !strpbrk(gbuf, "\\{}^_")) {
      out->result = REWARD_MATH_CORRECT;
      snprintf(out->reason, sizeof out->reason, "gold unparsed; same text");
    } else {
      out->result = REWARD_MATH_UNSCORABLE;
      snprintf(out->reason, sizeof out->reason, "gold unparseable: %s", have_gold ? c->err : "empty");
    }
  } else if (p < 0) {
    out->result = REWARD_MATH_INCORRECT;
    snprintf(out->reason, sizeof out->reason, "pred: %s", rule == REWARD_MATH_RULE_NONE ? why : c->err);
  } else {
    c->budget_hit = 0;
    int eq = mv_equivalent(c, g, p, why, sizeof why);
    out->result = eq ? REWARD_MATH_CORRECT : REWARD_MATH_INCORRECT;
    snprintf(out->reason, sizeof out->reason, "%s", why);
  }
  if (out->result == REWARD_MATH_INCORRECT && g >= 0) {
    /* a choice letter against an answer labelled with it ("C" and "C. x = 42") */
    char gl = choice_letter(c, g), pl = choice_letter(c, p);
    if ((gl && gl == choice_label(pbuf)) || (pl && pl == choice_label(gbuf))) {
      out->result = REWARD_MATH_CORRECT;
      snprintf(out->reason, sizeof out->reason, "same choice letter");
    }
  }
  if (out->result != REWARD_MATH_CORRECT && have_gold && out->rule != REWARD_MATH_RULE_NONE &&
      opt->sentence_gold_phrase && sentence_phrase_match(gbuf, pbuf)) {
    out->result = REWARD_MATH_CORRECT;
    snprintf(out->reason, sizeof out->reason, "text answer is a phrase of the gold sentence");
  }
  out->correct = out->result == REWARD_MATH_CORRECT;
  out->steps = c->steps;
  free(c);
  return GRPO_OK;
}

double reward_math_score(const char *gold, const char *completion, const reward_math_options *opt) {
  reward_math_verdict v;
  if (reward_math_verify(gold, completion, opt, &v, NULL) != GRPO_OK) return 0.0;
  return v.correct ? 1.0 : 0.0;
}
