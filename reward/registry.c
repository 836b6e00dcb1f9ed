#include "reward/registry.h"

#include <assert.h>
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward/format.h"
#include "reward/length.h"
#include "reward/math_verify.h"
#include "reward/pgrpo.h"

/* ---- option value parsers ------------------------------------------------ */

int reward_parse_bool(const char *key, const char *value, int *out, grpo_error *err) {
  if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) *out = 1;
  else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) *out = 0;
  else
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': expected true or false, got '%s'", key, value);
  return GRPO_OK;
}

int reward_parse_double(const char *key, const char *value, double lo, double hi, double *out,
                        grpo_error *err) {
  char *end;
  errno = 0;
  double v = strtod(value, &end);
  if (end == value || *end != '\0' || errno == ERANGE)
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': expected a number, got '%s'", key, value);
  if (!isfinite(v))
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': must be finite, got '%s'", key, value);
  if (v < lo || v > hi)
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': %g is outside [%g, %g]", key, v, lo, hi);
  *out = v;
  return GRPO_OK;
}

int reward_parse_int64(const char *key, const char *value, int64_t lo, int64_t hi, int64_t *out,
                       grpo_error *err) {
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (end == value || *end != '\0' || errno == ERANGE)
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': expected an integer, got '%s'", key, value);
  if (v < lo || v > hi)
    return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': %lld is outside [%lld, %lld]", key, v,
                     (long long)lo, (long long)hi);
  *out = (int64_t)v;
  return GRPO_OK;
}

int reward_parse_enum(const char *key, const char *value, const char *const *names, int *out,
                      grpo_error *err) {
  char valid[256];
  size_t used = 0;
  valid[0] = '\0';
  for (int i = 0; names[i]; i++) {
    if (strcmp(value, names[i]) == 0) {
      *out = i;
      return GRPO_OK;
    }
    int n = snprintf(valid + used, sizeof valid - used, "%s%s", i ? "|" : "", names[i]);
    if (n > 0 && (size_t)n < sizeof valid - used) used += (size_t)n;
  }
  return GRPO_FAIL(err, GRPO_EINVAL, "option '%s': expected %s, got '%s'", key, valid, value);
}

/* ---- the function table ---------------------------------------------------- */

enum kind { K_MATH, K_FORMAT, K_OVERLONG, K_LENGTH, K_PGRPO, K_COUNT };
static const char *const k_names[K_COUNT] = {"math", "format", "overlong", "length",
                                             "pgrpo_acceleration"};

typedef struct math_fn_options {
  reward_math_options verify;
  double incorrect_reward; /* score of a wrong answer (0; ThreadWeaver's code uses -1) */
} math_fn_options;

typedef struct reward_fn {
  int kind;
  double weight;
  char name[REWARD_NAME_MAX];
  char metric[REWARD_METRIC_MAX];
  union {
    math_fn_options math;
    reward_format_options format;
    reward_overlong_options overlong;
    reward_length_options length;
    reward_pgrpo_options pgrpo;
  } opt;
} reward_fn;

struct reward_registry {
  int n;
  int needs_correct;
  int has_group;
  int math_index; /* the `math` entry whose options the shared verdict uses, or -1 */
  reward_fn fn[REWARD_MAX_FUNCTIONS];
};

struct reward_scratch {
  const reward_registry *reg;
  void *match_data[REWARD_MAX_FUNCTIONS]; /* format regexes */
  reward_math_verdict verdict;
};

static int math_set(math_fn_options *o, const char *key, const char *value, grpo_error *err) {
  reward_math_options *v = &o->verify;
  int64_t i64;
  int rc;
  if (strcmp(key, "incorrect_reward") == 0)
    return reward_parse_double(key, value, -1e6, 1e6, &o->incorrect_reward, err);
  if (strcmp(key, "require_think_close") == 0) return reward_parse_bool(key, value, &v->require_think_close, err);
  if (strcmp(key, "allow_rounded") == 0) return reward_parse_bool(key, value, &v->allow_rounded, err);
  if (strcmp(key, "allow_set_relation") == 0) return reward_parse_bool(key, value, &v->allow_set_relation, err);
  if (strcmp(key, "percent_bare_ok") == 0) return reward_parse_bool(key, value, &v->percent_bare_ok, err);
  if (strcmp(key, "last_number_fallback") == 0) return reward_parse_bool(key, value, &v->last_number_fallback, err);
  if (strcmp(key, "sentence_gold_phrase") == 0) return reward_parse_bool(key, value, &v->sentence_gold_phrase, err);
  if (strcmp(key, "rel_tol") == 0) return reward_parse_double(key, value, 0.0, 1.0, &v->rel_tol, err);
  if (strcmp(key, "rounded_min_sig") == 0) {
    if ((rc = reward_parse_int64(key, value, 1, 100, &i64, err))) return rc;
    v->rounded_min_sig = (int)i64;
    return GRPO_OK;
  }
  if (strcmp(key, "seed") == 0) {
    if ((rc = reward_parse_int64(key, value, 0, INT64_MAX, &i64, err))) return rc;
    v->seed = (uint64_t)i64;
    return GRPO_OK;
  }
  if (strcmp(key, "max_input") == 0) {
    if ((rc = reward_parse_int64(key, value, 1, INT32_MAX, &i64, err))) return rc;
    v->max_input = (size_t)i64;
    return GRPO_OK;
  }
  if (strcmp(key, "max_nodes") == 0) {
    if ((rc = reward_parse_int64(key, value, 1, INT32_MAX, &i64, err))) return rc;
    v->max_nodes = (int)i64;
    return GRPO_OK;
  }
  if (strcmp(key, "max_steps") == 0) {
    if ((rc = reward_parse_int64(key, value, 1, INT32_MAX, &i64, err))) return rc;
    v->max_steps = (long)i64;
    return GRPO_OK;
  }
  return GRPO_FAIL(err, GRPO_EINVAL,
                   "unknown option '%s' (valid: incorrect_reward, require_think_close, "
                   "allow_rounded, rounded_min_sig, rel_tol, allow_set_relation, percent_bare_ok, "
                   "sentence_gold_phrase, "
                   "last_number_fallback, seed, max_input, max_nodes, max_steps)",
                   key);
}

static void fn_release(reward_fn *f) {
  if (f->kind == K_FORMAT) reward_format_release(&f->opt.format);
}

static int fn_init(reward_fn *f, const reward_spec *sp, grpo_error *err) {
  int kind = -1;
  for (int k = 0; k < K_COUNT; k++)
    if (strcmp(sp->name, k_names[k]) == 0) kind = k;
  if (kind < 0)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "unknown reward function '%s' (valid: math, format, overlong, length, "
                     "pgrpo_acceleration)",
                     sp->name);
  if (!isfinite(sp->weight) || sp->weight < 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "weight must be finite and >= 0, got %g", sp->weight);
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->weight = sp->weight;
  snprintf(f->name, sizeof f->name, "%s", sp->name);
  snprintf(f->metric, sizeof f->metric, "rewards/%s/mean", sp->name);
  switch (kind) {
    case K_MATH: reward_math_options_default(&f->opt.math.verify); break;
    case K_FORMAT: reward_format_defaults(&f->opt.format); break;
    case K_OVERLONG: reward_overlong_defaults(&f->opt.overlong); break;
    case K_LENGTH: reward_length_defaults(&f->opt.length); break;
    default: reward_pgrpo_defaults(&f->opt.pgrpo); break;
  }
  if (sp->n_options < 0 || (sp->n_options > 0 && !sp->options))
    return GRPO_FAIL(err, GRPO_EINVAL, "bad options list (n_options %d)", sp->n_options);
  int rc = GRPO_OK;
  for (int j = 0; j < sp->n_options && rc == GRPO_OK; j++) {
    const reward_option *o = &sp->options[j];
    if (!o->key || !o->value) {
      rc = GRPO_FAIL(err, GRPO_EINVAL, "options[%d]: key and value must be set", j);
      break;
    }
    for (int k = 0; k < j; k++)
      if (strcmp(sp->options[k].key, o->key) == 0)
        rc = GRPO_FAIL(err, GRPO_EINVAL, "option '%s' given twice", o->key);
    if (rc) break;
    switch (kind) {
      case K_MATH: rc = math_set(&f->opt.math, o->key, o->value, err); break;
      case K_FORMAT: rc = reward_format_set(&f->opt.format, o->key, o->value, err); break;
      case K_OVERLONG: rc = reward_overlong_set(&f->opt.overlong, o->key, o->value, err); break;
      case K_LENGTH: rc = reward_length_set(&f->opt.length, o->key, o->value, err); break;
      default: rc = reward_pgrpo_set(&f->opt.pgrpo, o->key, o->value, err); break;
    }
  }
  if (rc == GRPO_OK) {
    switch (kind) {
      case K_FORMAT: rc = reward_format_finish(&f->opt.format, err); break;
      case K_OVERLONG: rc = reward_overlong_finish(&f->opt.overlong, err); break;
      case K_LENGTH: rc = reward_length_finish(&f->opt.length, err); break;
      default: break;
    }
  }
  if (rc) fn_release(f);
  return rc;
}

int reward_registry_create(reward_registry **out, const reward_spec *specs, int n,
                           grpo_error *err) {
  *out = NULL;
  if (n < 1 || n > REWARD_MAX_FUNCTIONS || !specs)
    return GRPO_FAIL(err, GRPO_EINVAL, "reward.functions: need 1..%d functions, got %d",
                     REWARD_MAX_FUNCTIONS, n);
  reward_registry *reg = calloc(1, sizeof *reg);
  if (!reg) return GRPO_FAIL(err, GRPO_ENOMEM, "reward.functions: out of memory");
  reg->math_index = -1;
  for (int i = 0; i < n; i++) {
    const char *name = specs[i].name ? specs[i].name : "(null)";
    int rc = specs[i].name ? GRPO_OK : GRPO_FAIL(err, GRPO_EINVAL, "missing name");
    for (int k = 0; k < i && rc == GRPO_OK; k++)
      if (strcmp(reg->fn[k].name, name) == 0)
        rc = GRPO_FAIL(err, GRPO_EINVAL, "duplicate function (first at reward.functions[%d])", k);
    if (rc == GRPO_OK) rc = fn_init(&reg->fn[i], &specs[i], err);
    if (rc) {
      if (specs[i].where) grpo_error_prefix(err, "%s (%s)", specs[i].where, name);
      else grpo_error_prefix(err, "reward.functions[%d] (%s)", i, name);
      reg->n = i;
      reward_registry_free(reg);
      return rc;
    }
    reg->n = i + 1;
    reward_fn *f = &reg->fn[i];
    if (f->kind == K_MATH && reg->math_index < 0) reg->math_index = i;
    if (f->kind == K_MATH || f->kind == K_PGRPO) reg->needs_correct = 1;
    if (f->kind == K_LENGTH && f->opt.length.mode == REWARD_LENGTH_GROUP)
      reg->needs_correct = reg->has_group = 1;
  }
  *out = reg;
  return GRPO_OK;
}

/* Text form of a JSON option value. */
static int json_value_text(const cJSON *v, char *buf, size_t cap) {
  if (cJSON_IsString(v)) {
    snprintf(buf, cap, "%s", v->valuestring);
    return strlen(v->valuestring) < cap;
  }
  if (cJSON_IsBool(v)) {
    snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    return 1;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9e15) snprintf(buf, cap, "%lld", (long long)d);
    else snprintf(buf, cap, "%.17g", d);
    return 1;
  }
  return 0;
}

#define JSON_MAX_OPTIONS 32
#define JSON_VALUE_MAX 288

int reward_registry_from_json(reward_registry **out, const cJSON *array, const char *where,
                              grpo_error *err) {
  *out = NULL;
  if (!where) where = "reward.functions";
  if (!cJSON_IsArray(array))
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: expected a list of {name, weight, options}", where);
  int n = cJSON_GetArraySize(array);
  if (n < 1 || n > REWARD_MAX_FUNCTIONS)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: need 1..%d functions, got %d", where,
                     REWARD_MAX_FUNCTIONS, n);
  /* Creation is not a hot path: one block for the converted text. */
  struct slot {
    reward_option opts[JSON_MAX_OPTIONS];
    char values[JSON_MAX_OPTIONS][JSON_VALUE_MAX];
    char where[160];
  } *slots = calloc((size_t)n, sizeof *slots);
  reward_spec specs[REWARD_MAX_FUNCTIONS];
  if (!slots) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", where);
  int rc = GRPO_OK, i = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, array) {
    reward_spec *sp = &specs[i];
    memset(sp, 0, sizeof *sp);
    sp->weight = 1.0;
    sp->options = slots[i].opts;
    snprintf(slots[i].where, sizeof slots[i].where, "%s[%d]", where, i);
    sp->where = slots[i].where;
    if (!cJSON_IsObject(item)) {
      rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d]: expected an object {name, weight, options}", where, i);
      break;
    }
    const cJSON *field;
    cJSON_ArrayForEach(field, item) {
      const char *k = field->string ? field->string : "";
      if (strcmp(k, "name") == 0) {
        if (!cJSON_IsString(field)) {
          rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d].name: expected a string", where, i);
          break;
        }
        sp->name = field->valuestring;
      } else if (strcmp(k, "weight") == 0) {
        if (!cJSON_IsNumber(field)) {
          rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d].weight: expected a number", where, i);
          break;
        }
        sp->weight = field->valuedouble;
      } else if (strcmp(k, "options") == 0) {
        if (!cJSON_IsObject(field)) {
          rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d].options: expected a mapping", where, i);
          break;
        }
        const cJSON *o;
        cJSON_ArrayForEach(o, field) {
          if (sp->n_options == JSON_MAX_OPTIONS) {
            rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d].options: more than %d options", where, i,
                           JSON_MAX_OPTIONS);
            break;
          }
          char *buf = slots[i].values[sp->n_options];
          if (!json_value_text(o, buf, JSON_VALUE_MAX)) {
            rc = GRPO_FAIL(err, GRPO_EINVAL,
                           "%s[%d].options.%s: expected a string, number or boolean (at most %d bytes)",
                           where, i, o->string ? o->string : "?", JSON_VALUE_MAX - 1);
            break;
          }
          slots[i].opts[sp->n_options].key = o->string ? o->string : "";
          slots[i].opts[sp->n_options].value = buf;
          sp->n_options++;
        }
        if (rc) break;
      } else {
        rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d]: unknown key '%s' (valid: name, weight, options)",
                       where, i, k);
        break;
      }
    }
    if (rc) break;
    if (!sp->name) {
      rc = GRPO_FAIL(err, GRPO_EINVAL, "%s[%d]: missing 'name'", where, i);
      break;
    }
    i++;
  }
  if (rc == GRPO_OK) rc = reward_registry_create(out, specs, n, err);
  free(slots);
  return rc;
}

void reward_registry_free(reward_registry *reg) {
  if (!reg) return;
  for (int i = 0; i < reg->n; i++) fn_release(&reg->fn[i]);
  free(reg);
}

int reward_registry_count(const reward_registry *reg) { return reg->n; }
const char *reward_registry_name(const reward_registry *reg, int i) { return reg->fn[i].name; }
double reward_registry_weight(const reward_registry *reg, int i) { return reg->fn[i].weight; }
const char *reward_registry_metric(const reward_registry *reg, int i) { return reg->fn[i].metric; }
int reward_registry_needs_correct(const reward_registry *reg) { return reg->needs_correct; }

/* ---- documentation table ---------------------------------------------------- */

static const reward_option_doc k_docs[] = {
    {"math", "incorrect_reward", "0", "score of a wrong answer (ThreadWeaver's code uses -1)"},
    {"math", "require_think_close", "verifier default", "grade only the text after the last </think>"},
    {"math", "allow_rounded", "verifier default", "accept a rounded decimal for an exact gold, and a gold with 2+ decimals as a rounding of an exact prediction (reward/README.md)"},
    {"math", "rounded_min_sig", "verifier default", "significant digits such a decimal needs"},
    {"math", "rel_tol", "verifier default", "relative tolerance for inexact values"},
    {"math", "allow_set_relation", "verifier default", "accept x > 2 for the gold (2, \\infty)"},
    {"math", "percent_bare_ok", "verifier default", "accept p for a gold p\\%"},
    {"math", "sentence_gold_phrase", "verifier default", "accept a short phrase of a sentence gold"},
    {"math", "last_number_fallback", "verifier default", "grade the last number when no anchor matched"},
    {"math", "seed", "verifier default", "seed of the random evaluation points"},
    {"math", "max_input", "verifier default", "bytes of each text considered"},
    {"math", "max_nodes", "verifier default", "parser node cap"},
    {"math", "max_steps", "verifier default", "work step cap"},
    {"format", "think_open", "<think>", "opening tag of the reasoning block"},
    {"format", "think_close", "</think>", "closing tag of the reasoning block"},
    {"format", "answer_open", "", "opening answer tag, e.g. <answer> (unset: no answer-tag rule)"},
    {"format", "answer_close", "", "closing answer tag, e.g. </answer>"},
    {"format", "think_in_prompt", "false", "the chat template opened the block: the completion must not"},
    {"format", "allow_leading_text", "false", "allow text before the opening tag"},
    {"format", "require_think_content", "true", "non-blank reasoning"},
    {"format", "require_answer", "true", "non-blank text after the closing tag"},
    {"format", "require_boxed", "true", "a closed, non-blank \\boxed{} or \\fbox{} after the closing tag"},
    {"format", "single_boxed", "false", "exactly one box after the closing tag"},
    {"format", "no_tags_after", "true", "no ThreadWeaver tag after the closing tag"},
    {"format", "check_parallel", "false", "the ThreadWeaver structure in the block is well-formed"},
    {"format", "partial", "false", "score = fraction of enabled rules passed instead of 0/1"},
    {"format", "answer_regex", "", "PCRE2 pattern the answer part must match"},
    {"overlong", "max_completion_length", "", "L_max in tokens (required)"},
    {"overlong", "cache_length", "max_completion_length/5", "L_cache: the soft window before L_max"},
    {"overlong", "penalty_factor", "1.0", "scale of the penalty"},
    {"overlong", "penalize_truncated", "false", "a truncated completion gets -penalty_factor"},
    {"length", "mode", "target", "target | budget | group"},
    {"length", "target_length", "", "target length in tokens (target and budget modes)"},
    {"length", "tolerance", "target_length", "deviation that costs the full -1"},
    {"pgrpo_acceleration", "rho", "0.5", "acceleration factor"},
    {"pgrpo_acceleration", "clip", "0.2", "bonus cap"},
    {"pgrpo_acceleration", "form", "paper", "paper: min(rho*eta, clip); code: rho*min(eta, clip)"},
    {"pgrpo_acceleration", "malformed", "zero", "zero: malformed structure earns no bonus; lenient: count it"},
};

const reward_option_doc *reward_registry_option_docs(int *n) {
  *n = (int)(sizeof k_docs / sizeof k_docs[0]);
  return k_docs;
}

/* ---- scratch ---------------------------------------------------------------- */

int reward_scratch_create(const reward_registry *reg, reward_scratch **out, grpo_error *err) {
  reward_scratch *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) return GRPO_FAIL(err, GRPO_ENOMEM, "reward scratch: out of memory");
  s->reg = reg;
  for (int i = 0; i < reg->n; i++) {
    if (reg->fn[i].kind != K_FORMAT || !reg->fn[i].opt.format.regex_code) continue;
    s->match_data[i] = reward_format_match_data(&reg->fn[i].opt.format);
    if (!s->match_data[i]) {
      reward_scratch_free(s);
      return GRPO_FAIL(err, GRPO_ENOMEM, "reward scratch: out of memory (regex match data)");
    }
  }
  *out = s;
  return GRPO_OK;
}

void reward_scratch_free(reward_scratch *s) {
  if (!s) return;
  for (int i = 0; i < REWARD_MAX_FUNCTIONS; i++) reward_format_match_data_free(s->match_data[i]);
  free(s);
}

/* ---- scoring ---------------------------------------------------------------- */

void reward_input_init(reward_input *in) {
  memset(in, 0, sizeof *in);
  in->correct = -1;
}

/* Appends "name=score(note) " to the detail line; cut silently when full. */
static void detail_add(char *buf, size_t *used, const char *name, double score, const char *note) {
  if (*used >= REWARD_DETAIL_MAX - 1) return;
  int n = snprintf(buf + *used, REWARD_DETAIL_MAX - *used, "%s%s=%.4g%s%s%s", *used ? " " : "",
                   name, score, note && note[0] ? "(" : "", note ? note : "",
                   note && note[0] ? ")" : "");
  if (n > 0) *used += (size_t)n < REWARD_DETAIL_MAX - *used ? (size_t)n : REWARD_DETAIL_MAX - 1 - *used;
}

static double weighted_total(const reward_registry *reg, const double *scores) {
  double total = 0.0;
  int any = 0;
  for (int i = 0; i < reg->n; i++) {
    if (isnan(scores[i])) continue;
    total += reg->fn[i].weight * scores[i];
    any = 1;
  }
  return any ? total : NAN;
}

int reward_registry_score(const reward_registry *reg, reward_scratch *s, const reward_input *in,
                          reward_result *out, grpo_error *err) {
  if (!reg || !s || !in || !out || s->reg != reg)
    return GRPO_FAIL(err, GRPO_EINVAL, "reward score: NULL argument or scratch of another registry");
  if (!in->completion) return GRPO_FAIL(err, GRPO_EINVAL, "reward score: completion is NULL");
  if (in->n_tokens < 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "reward score: n_tokens %d is negative", (int)in->n_tokens);
  size_t len = strlen(in->completion);
  out->correct = -1;
  out->detail[0] = '\0';
  size_t used = 0;

  /* Correctness once per completion: given by the caller, or the verifier's
   * verdict with the first `math` entry's options. */
  int correct = in->correct >= 0 ? (in->correct ? 1 : 0) : -1;
  const char *math_note = "";
  if (correct < 0 && reg->needs_correct && in->gold) {
    const reward_math_options *mo = reg->math_index >= 0 ? &reg->fn[reg->math_index].opt.math.verify : NULL;
    grpo_error verr;
    if (reward_math_verify(in->gold, in->completion, mo, &s->verdict, &verr) == GRPO_OK) {
      if (s->verdict.result != REWARD_MATH_UNSCORABLE) correct = s->verdict.correct ? 1 : 0;
      math_note = s->verdict.result == REWARD_MATH_UNSCORABLE ? "unscorable gold"
                                                              : reward_math_rule_name(s->verdict.rule);
    } else {
      math_note = "verifier error";
    }
  }
  out->correct = correct;

  for (int i = 0; i < reg->n; i++) {
    const reward_fn *f = &reg->fn[i];
    double sc = NAN;
    char note[48];
    note[0] = '\0';
    switch (f->kind) {
      case K_MATH:
        if (correct >= 0) sc = correct ? 1.0 : f->opt.math.incorrect_reward;
        snprintf(note, sizeof note, "%s", correct >= 0 || in->gold ? math_note : "no gold");
        break;
      case K_FORMAT: {
        reward_format_report rep;
        reward_format_check(&f->opt.format, in->completion, len, s->match_data[i], &rep);
        sc = rep.score;
        if (rep.first_failed >= 0) snprintf(note, sizeof note, "%s", reward_format_rule_name(rep.first_failed));
        break;
      }
      case K_OVERLONG:
        sc = reward_overlong_score(&f->opt.overlong, in->n_tokens, in->truncated);
        break;
      case K_LENGTH:
        sc = reward_length_score(&f->opt.length, in->n_tokens);
        if (isnan(sc)) snprintf(note, sizeof note, "group");
        break;
      default: {
        reward_pgrpo_stats st;
        int rc = reward_pgrpo_parse(in->completion, len, in->token_offsets, in->n_tokens, &st, err);
        if (rc) {
          grpo_error_prefix(err, "reward.functions[%d] (%s)", i, f->name);
          return rc;
        }
        assert(!in->token_offsets || st.total == in->n_tokens);
        if (correct >= 0) sc = reward_pgrpo_acceleration(&f->opt.pgrpo, &st, correct);
        if (st.flags) {
          char fl[40];
          snprintf(note, sizeof note, "%s", reward_pgrpo_flags_str(st.flags, fl, sizeof fl));
        } else if (st.blocks) {
          snprintf(note, sizeof note, "eta=%.3f", st.total ? 1.0 - (double)st.longest / st.total : 0.0);
        }
        break;
      }
    }
    out->scores[i] = sc;
    detail_add(out->detail, &used, f->name, sc, note);
  }
  for (int i = reg->n; i < REWARD_MAX_FUNCTIONS; i++) out->scores[i] = NAN;
  out->total = weighted_total(reg, out->scores);
  return GRPO_OK;
}

int reward_registry_score_group(const reward_registry *reg, reward_scratch *s,
                                const reward_input *in, int n, reward_result *out,
                                grpo_error *err) {
  if (n < 0) return GRPO_FAIL(err, GRPO_EINVAL, "reward score_group: group size %d is negative", n);
  for (int j = 0; j < n; j++) {
    int rc = reward_registry_score(reg, s, &in[j], &out[j], err);
    if (rc) {
      grpo_error_prefix(err, "group sample %d", j);
      return rc;
    }
  }
  if (!reg->has_group || n == 0) return GRPO_OK;
  int64_t lo = in[0].n_tokens, hi = in[0].n_tokens;
  for (int j = 1; j < n; j++) {
    if (in[j].n_tokens < lo) lo = in[j].n_tokens;
    if (in[j].n_tokens > hi) hi = in[j].n_tokens;
  }
  for (int i = 0; i < reg->n; i++) {
    const reward_fn *f = &reg->fn[i];
    if (f->kind != K_LENGTH || f->opt.length.mode != REWARD_LENGTH_GROUP) continue;
    /* unknown correctness counts as incorrect */
    for (int j = 0; j < n; j++)
      out[j].scores[i] = reward_length_group_one(lo, hi, in[j].n_tokens, out[j].correct == 1);
  }
  for (int j = 0; j < n; j++) out[j].total = weighted_total(reg, out[j].scores);
  return GRPO_OK;
}

/* ---- per-step statistics ----------------------------------------------------- */

_Static_assert(offsetof(reward_stats, n) == REWARD_STATS_NDOUBLES * sizeof(double),
               "reward_stats sums must be contiguous doubles");

void reward_stats_init(reward_stats *st, const reward_registry *reg) {
  memset(st, 0, sizeof *st);
  st->n = reg ? reg->n : 0;
}

void reward_stats_add(reward_stats *st, const reward_result *r) {
  for (int i = 0; i < st->n; i++) {
    double v = r->scores[i];
    if (isnan(v)) continue;
    st->count[i] += 1;
    st->sum[i] += v;
    st->sumsq[i] += v * v;
  }
  if (!isnan(r->total)) {
    st->total_count += 1;
    st->total_sum += r->total;
    st->total_sumsq += r->total * r->total;
  }
}

void reward_stats_merge(reward_stats *dst, const reward_stats *src) {
  if (src->n > dst->n) dst->n = src->n;
  for (int i = 0; i < src->n; i++) {
    dst->count[i] += src->count[i];
    dst->sum[i] += src->sum[i];
    dst->sumsq[i] += src->sumsq[i];
  }
  dst->total_count += src->total_count;
  dst->total_sum += src->total_sum;
  dst->total_sumsq += src->total_sumsq;
}

double reward_stats_mean(const reward_stats *st, int i) {
  return st->count[i] > 0 ? st->sum[i] / st->count[i] : NAN;
}

double reward_stats_std(const reward_stats *st, int i) {
  if (st->count[i] <= 0) return NAN;
  double m = st->sum[i] / st->count[i];
  double var = st->sumsq[i] / st->count[i] - m * m;
  return var > 0 ? sqrt(var) : 0.0;
}

double reward_stats_total_mean(const reward_stats *st) {
  return st->total_count > 0 ? st->total_sum / st->total_count : NAN;
}
