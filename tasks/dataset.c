#include "tasks/dataset.h"
#include "core/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/philox.h"

/* The layouts of the benchmark files in shared/data (one JSON object a line). */
static const task_format BUILTIN_FORMATS[] = {
    {"gsm8k", "", "question", "answer", TASK_GOLD_GSM8K, "answer"},
    {"math500", "unique_id", "problem", "answer", TASK_GOLD_FIELD, "solution"},
    {"aime24", "id", "problem", "answer", TASK_GOLD_FIELD, "solution"},
    {"amc23", "id", "problem", "answer", TASK_GOLD_FIELD, ""},
    {"minerva_math", "idx", "problem", "solution", TASK_GOLD_LAST_BOXED, "solution"},
    {"olympiadbench", "id", "question", "final_answer", TASK_GOLD_FIELD, "solution"},
};
#define N_BUILTIN (sizeof BUILTIN_FORMATS / sizeof BUILTIN_FORMATS[0])

int task_format_builtin(const char *name, task_format *fmt) {
  for (size_t i = 0; i < N_BUILTIN; i++)
    if (strcmp(name, BUILTIN_FORMATS[i].name) == 0) {
      *fmt = BUILTIN_FORMATS[i];
      return GRPO_OK;
    }
  return GRPO_ENOTFOUND;
}

const char *task_format_names(void) {
  return "gsm8k, math500, aime24, amc23, minerva_math, olympiadbench";
}

static char *dup_range(const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (!out) return NULL;
  memcpy(out, s, n);
  out[n] = '\0';
  return out;
}

/* Trims ASCII white space; returns a new string. */
static char *dup_trimmed(const char *s, size_t n) {
  while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
  return dup_range(s, n);
}

/* Content of the last \boxed{...} (or \fbox{...}) with balanced braces. */
static char *last_boxed(const char *text) {
  const char *best = NULL;
  size_t best_len = 0;
  static const char *const openers[] = {"\\boxed{", "\\fbox{"};
  for (int k = 0; k < 2; k++) {
    size_t olen = strlen(openers[k]);
    for (const char *p = strstr(text, openers[k]); p; p = strstr(p + 1, openers[k])) {
      const char *q = p + olen;
      int depth = 1;
      const char *r = q;
      for (; *r && depth; r++) {
        if (*r == '\\' && r[1]) { r++; continue; } /* \{ and \} do not nest */
        if (*r == '{') depth++;
        else if (*r == '}') depth--;
      }
      if (depth == 0 && (!best || q > best)) { /* the box that starts last wins */
        best = q;
        best_len = (size_t)(r - 1 - q);
      }
    }
  }
  return best ? dup_trimmed(best, best_len) : NULL;
}

char *task_extract_gold(const char *answer, task_gold_rule rule) {
  if (!answer) return NULL;
  switch (rule) {
    case TASK_GOLD_FIELD: return dup_trimmed(answer, strlen(answer));
    case TASK_GOLD_GSM8K: {
      const char *last = NULL;
      for (const char *p = strstr(answer, "####"); p; p = strstr(p + 4, "####")) last = p;
      if (!last) return NULL;
      char *g = dup_trimmed(last + 4, strlen(last + 4));
      if (g && !*g) {
        free(g);
        return NULL;
      }
      return g;
    }
    case TASK_GOLD_LAST_BOXED: return last_boxed(answer);
  }
  return NULL;
}

/* A JSON value as answer text: strings as is, numbers in shortest form,
 * lists of those joined by ", " (OlympiadBench's final_answer). */
static char *json_to_text(const cJSON *v) {
  if (cJSON_IsString(v)) return dup_range(v->valuestring, strlen(v->valuestring));
  if (cJSON_IsNumber(v)) {
    char buf[64];
    double d = v->valuedouble;
    if (d == (double)(long long)d && d > -1e15 && d < 1e15)
      snprintf(buf, sizeof buf, "%lld", (long long)d);
    else
      snprintf(buf, sizeof buf, "%.17g", d);
    return dup_range(buf, strlen(buf));
  }
  if (cJSON_IsArray(v)) {
    size_t cap = 16, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = '\0';
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
      char *part = json_to_text(e);
      if (!part) {
        free(out);
        return NULL;
      }
      size_t need = len + strlen(part) + 3;
      if (need > cap) {
        while (cap < need) cap *= 2;
        char *grown = realloc(out, cap);
        if (!grown) {
          free(part);
          free(out);
          return NULL;
        }
        out = grown;
      }
      if (len) {
        memcpy(out + len, ", ", 2);
        len += 2;
      }
      memcpy(out + len, part, strlen(part) + 1);
      len += strlen(part);
      free(part);
    }
    return out;
  }
  return NULL;
}

static void item_free(task_item *it) {
  free(it->id);
  free(it->question);
  free(it->gold);
  free(it->solution);
  memset(it, 0, sizeof *it);
}

/* Parses one row; returns NULL on success or a static reason for the skip. */
static const char *parse_row(const char *line, size_t len, const task_format *fmt, int lineno,
                             task_item *out) {
  memset(out, 0, sizeof *out);
  out->line = lineno;
  cJSON *row = cJSON_ParseWithLength(line, len);
  if (!row) return "invalid JSON";
  const char *why = NULL;
  if (!cJSON_IsObject(row)) {
    why = "not a JSON object";
    goto done;
  }
  const cJSON *q = cJSON_GetObjectItemCaseSensitive(row, fmt->question_field);
  if (!cJSON_IsString(q) || !*q->valuestring) {
    why = "missing or empty question field";
    goto done;
  }
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, fmt->answer_field);
  char *answer_text = a ? json_to_text(a) : NULL;
  if (!answer_text) {
    why = "missing answer field (or not a string, number or list)";
    goto done;
  }
  out->gold = task_extract_gold(answer_text, fmt->gold_rule);
  free(answer_text);
  if (!out->gold || !*out->gold) {
    why = fmt->gold_rule == TASK_GOLD_GSM8K        ? "answer has no '#### N' line"
          : fmt->gold_rule == TASK_GOLD_LAST_BOXED ? "answer has no \\boxed{...}"
                                                   : "empty answer";
    goto done;
  }
  out->question = dup_range(q->valuestring, strlen(q->valuestring));
  if (fmt->solution_field[0]) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(row, fmt->solution_field);
    if (cJSON_IsString(s)) out->solution = dup_range(s->valuestring, strlen(s->valuestring));
  }
  char idbuf[32];
  const cJSON *id = fmt->id_field[0] ? cJSON_GetObjectItemCaseSensitive(row, fmt->id_field) : NULL;
  out->id = id ? json_to_text(id) : NULL;
  if (!out->id) {
    snprintf(idbuf, sizeof idbuf, "%d", lineno);
    out->id = dup_range(idbuf, strlen(idbuf));
  }
  if (!out->question || !out->id) why = "out of memory";
done:
  cJSON_Delete(row);
  if (why) item_free(out);
  return why;
}

int task_dataset_load_buffer(task_dataset *ds, const char *name, const char *buf, size_t len,
                             const task_format *fmt, grpo_error *err) {
  memset(ds, 0, sizeof *ds);
  snprintf(ds->path, sizeof ds->path, "%s", name);
  size_t cap = 0;
  int lineno = 0;
  for (size_t pos = 0; pos < len;) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - line) : len - pos;
    pos += n + (nl ? 1 : 0);
    lineno++;
    size_t k = 0;
    while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (k == n) continue; /* blank line */
    if (memchr(line, '\0', n)) {
      GRPO_WARN("%s:%d: skipped row: NUL byte in line", name, lineno);
      ds->skipped++;
      continue;
    }
    task_item item;
    const char *why = parse_row(line, n, fmt, lineno, &item);
    if (why) {
      GRPO_WARN("%s:%d: skipped row: %s", name, lineno, why);
      ds->skipped++;
      continue;
    }
    if (ds->n == cap) {
      size_t ncap = cap ? cap * 2 : 256;
      task_item *grown = realloc(ds->items, ncap * sizeof *grown);
      if (!grown) {
        item_free(&item);
        task_dataset_free(ds);
        return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory at line %d", name, lineno);
      }
      ds->items = grown;
      cap = ncap;
    }
    ds->items[ds->n++] = item;
  }
  if (ds->n == 0) {
    size_t skipped = ds->skipped;
    task_dataset_free(ds);
    return GRPO_FAIL(err, GRPO_EPARSE,
                     "%s: no usable rows (%zu skipped; expected fields '%s' and '%s')", name,
                     skipped, fmt->question_field, fmt->answer_field);
  }
  if (ds->skipped)
    GRPO_WARN("%s: %zu of %zu rows skipped", name, ds->skipped, ds->skipped + ds->n);
  return GRPO_OK;
}

int task_dataset_load(task_dataset *ds, const char *path, const task_format *fmt,
                      grpo_error *err) {
  memset(ds, 0, sizeof *ds);
  char *buf;
  size_t len;
  int rc = grpo_read_file(path, (size_t)16 << 30, &buf, &len, err);
  if (rc) return rc;
  rc = task_dataset_load_buffer(ds, path, buf, len, fmt, err);
  free(buf);
  return rc;
}

void task_dataset_free(task_dataset *ds) {
  for (size_t i = 0; i < ds->n; i++) item_free(&ds->items[i]);
  free(ds->items);
  ds->items = NULL;
  ds->n = 0;
}

int task_cursor_init(task_cursor *c, size_t n, uint64_t seed, int shuffle) {
  memset(c, 0, sizeof *c);
  c->seed = seed;
  c->shuffle = shuffle;
  c->n = n;
  c->perm = malloc((n ? n : 1) * sizeof *c->perm);
  if (!c->perm) return GRPO_ENOMEM;
  c->perm_epoch = UINT32_MAX; /* not computed yet */
  return GRPO_OK;
}

static void build_perm(task_cursor *c) {
  for (size_t i = 0; i < c->n; i++) c->perm[i] = (uint32_t)i;
  if (c->shuffle) {
    grpo_rng_stream s;
    grpo_rng_stream_init(&s, c->seed, GRPO_RNG_DATA, c->epoch, 0);
    for (size_t i = c->n; i > 1; i--) {
      uint32_t j = grpo_rng_stream_below(&s, (uint32_t)i);
      uint32_t t = c->perm[i - 1];
      c->perm[i - 1] = c->perm[j];
      c->perm[j] = t;
    }
  }
  c->perm_epoch = c->epoch;
}

void task_cursor_seek(task_cursor *c, uint32_t epoch, uint32_t index) {
  c->epoch = epoch;
  c->index = index;
}

void task_cursor_next(task_cursor *c, size_t count, uint32_t *out) {
  for (size_t k = 0; k < count; k++) {
    if (c->index >= c->n) {
      c->epoch++;
      c->index = 0;
    }
    if (c->perm_epoch != c->epoch) build_perm(c);
    out[k] = c->perm[c->index++];
  }
}

void task_cursor_free(task_cursor *c) {
  free(c->perm);
  c->perm = NULL;
}

long task_prompt_render(const char *tmpl, const char *question, char *out, size_t cap,
                        grpo_error *err) {
  size_t len = 0, qlen = strlen(question);
  for (const char *p = tmpl; *p;) {
    const char *piece;
    size_t n;
    if (p[0] == '{' && p[1] == '{') {
      piece = "{", n = 1, p += 2;
    } else if (p[0] == '}' && p[1] == '}') {
      piece = "}", n = 1, p += 2;
    } else if (strncmp(p, "{question}", 10) == 0) {
      piece = question, n = qlen, p += 10;
    } else if (*p == '{' || *p == '}') {
      GRPO_FAIL(err, GRPO_EINVAL,
                "prompt template: unexpected '%c' at offset %ld (only {question} is a "
                "placeholder; write {{ or }} for a literal brace)",
                *p, (long)(p - tmpl));
      return -1;
    } else {
      piece = p, n = 1, p++;
    }
    if (len + n + 1 > cap) {
      GRPO_FAIL(err, GRPO_EINVAL, "prompt template: rendered prompt longer than %zu bytes", cap);
      return -1;
    }
    memcpy(out + len, piece, n);
    len += n;
  }
  out[len] = '\0';
  return (long)len;
}
