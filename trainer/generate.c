#include "trainer/generate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

typedef struct prompt_row {
  char *question;
  int index;
  model_ids ids;
} prompt_row;

static const char *question_of(const cJSON *row, const char *field) {
  static const char *const fallbacks[] = {"prompt", "question", "problem"};
  if (field && *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
  }
  for (int i = 0; i < 3; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, fallbacks[i]);
    if (cJSON_IsString(v)) return v->valuestring;
  }
  return NULL;
}

/* Reads the prompts; rows without a question are skipped with a logged reason. */
static int read_prompts(trainer_session *s, const char *path, prompt_row **rows_out, int *n_out,
                        grpo_error *err) {
  *rows_out = NULL;
  *n_out = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
  prompt_row *rows = NULL;
  int n = 0, cap = 0, lineno = 0, rc = GRPO_OK;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  while (!rc && (len = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    cJSON *row = cJSON_ParseWithLength(line, (size_t)len);
    const char *q = row ? question_of(row, s->cfg->data.prompt_field) : NULL;
    if (!q) {
      int blank = 1;
      for (ssize_t i = 0; i < len; i++) blank &= line[i] == ' ' || line[i] == '\n' || line[i] == '\r' || line[i] == '\t';
      if (!blank) GRPO_WARN("%s:%d: skipped row: %s", path, lineno, row ? "no question field" : "invalid JSON");
      cJSON_Delete(row);
      continue;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      prompt_row *grown = realloc(rows, sizeof *rows * (size_t)cap);
      if (!grown) {
        cJSON_Delete(row);
        rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
        break;
      }
      rows = grown;
    }
    prompt_row *r = &rows[n];
    memset(r, 0, sizeof *r);
    r->question = strdup(q);
    r->index = lineno - 1;
    cJSON_Delete(row);
    if (!r->question) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
      break;
    }
    n++;
    rc = trainer_session_prompt(s, r->question, &r->ids, err);
    if (rc) {
      grpo_error_prefix(err, "%s:%d", path, lineno);
      break;
    }
    if ((long)r->ids.n > s->cfg->data.max_prompt_length) {
      GRPO_WARN("%s:%d: skipped row: prompt has %zu tokens, data.max_prompt_length is %ld", path,
                lineno, r->ids.n, (long)s->cfg->data.max_prompt_length);
      free(r->question);
      model_ids_free(&r->ids);
      n--;
    }
  }
  free(line);
  fclose(f);
  *rows_out = rows;
  *n_out = n;
  return rc;
}

static void free_rows(prompt_row *rows, int n) {
  for (int i = 0; i < n; i++) {
    free(rows[i].question);
    model_ids_free(&rows[i].ids);
  }
  free(rows);
}

static int emit(trainer_session *s, FILE *out, const prompt_row *r, int sample, const int32_t *ids,
                const float *lps, int n, rollout_finish fin, int truncated, grpo_error *err) {
  model_text text = {0};
  int rc = model_tokenizer_decode(s->tok, ids, (size_t)n, 1, &text, err);
  if (rc) return rc;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "index", r->index);
  cJSON_AddNumberToObject(o, "sample", sample);
  cJSON_AddStringToObject(o, "prompt", r->question);
  cJSON_AddStringToObject(o, "completion", text.s ? text.s : "");
  cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lp = cJSON_AddArrayToObject(o, "logprobs");
  for (int t = 0; t < n; t++) {
    cJSON_AddItemToArray(toks, cJSON_CreateNumber(ids[t]));
    if (lps) cJSON_AddItemToArray(lp, cJSON_CreateNumber(lps[t]));
  }
  cJSON_AddStringToObject(o, "finish_reason", fin == ROLLOUT_FINISH_LENGTH ? "length" : "stop");
  cJSON_AddBoolToObject(o, "truncated", truncated);
  char *js = cJSON_PrintUnformatted(o);
  if (js) fprintf(out, "%s\n", js);
  free(js);
  cJSON_Delete(o);
  model_text_free(&text);
  return js ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "generate: out of memory writing JSON");
}

int trainer_generate_file(trainer_session *s, const char *prompts_path, int n_samples, FILE *out,
                          grpo_error *err) {
  if (n_samples <= 0) return GRPO_FAIL(err, GRPO_EINVAL, "--n must be >= 1, got %d", n_samples);
  prompt_row *rows;
  int n_rows;
  int rc = read_prompts(s, prompts_path, &rows, &n_rows, err);
  if (rc) {
    free_rows(rows, n_rows);
    return rc;
  }
  if (n_rows == 0) {
    free_rows(rows, n_rows);
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: no usable prompts", prompts_path);
  }
  rollout_engine_options eo;
  trainer_session_engine_options(s, (uint64_t)s->cfg->seed, 0, &eo);
  const int max_new = eo.max_new_tokens;
  /* a batch of prompts at a time keeps the output buffers bounded */
  int per = (int)s->cfg->rollout.max_batch_size / n_samples;
  if (per < 1) per = 1;
  size_t cap = (size_t)per * (size_t)n_samples;
  rollout_group *groups = calloc((size_t)per, sizeof *groups);
  rollout_output *outs = calloc(cap, sizeof *outs);
  int32_t *ids = malloc(cap * (size_t)max_new * sizeof *ids);
  float *lps = malloc(cap * (size_t)max_new * sizeof *lps);
  rollout_tw *trajs = calloc(cap, sizeof *trajs);
  if (!groups || !outs || !ids || !lps || !trajs) rc = GRPO_FAIL(err, GRPO_ENOMEM, "generate: out of memory");
  for (size_t i = 0; !rc && i < cap; i++) {
    outs[i].ids = ids + i * (size_t)max_new;
    outs[i].logprobs = lps + i * (size_t)max_new;
  }
  rollout_tw_options two;
  trainer_session_tw_options(s, &two);
  for (int first = 0; !rc && first < n_rows; first += per) {
    int ng = n_rows - first < per ? n_rows - first : per;
    for (int g = 0; g < ng; g++)
      groups[g] = (rollout_group){rows[first + g].ids.ids, (int)rows[first + g].ids.n, n_samples,
                                  (uint32_t)rows[first + g].index, 0};
    if (!s->cfg->rollout.parallel_threads) {
      rc = rollout_engine_generate(s->engine, &eo, groups, ng, outs, NULL, err);
      for (int k = 0; !rc && k < ng * n_samples; k++)
        rc = emit(s, out, &rows[first + k / n_samples], k % n_samples, outs[k].ids, outs[k].logprobs,
                  outs[k].n, outs[k].finish, outs[k].truncated, err);
    } else {
      rc = rollout_engine_generate_parallel(s->engine, &eo, &two, groups, ng, trajs, NULL, err);
      for (int k = 0; !rc && k < ng * n_samples; k++) {
        const rollout_tw *t = &trajs[k];
        rc = emit(s, out, &rows[first + k / n_samples], k % n_samples, t->combined.ids + t->n_prompt,
                  t->combined.logprob + t->n_prompt, t->combined.n - t->n_prompt, t->finish,
                  t->truncated, err);
      }
      for (int k = 0; k < ng * n_samples; k++) rollout_tw_free(&trajs[k]);
    }
  }
  free(groups);
  free(outs);
  free(ids);
  free(lps);
  free(trajs);
  free_rows(rows, n_rows);
  return rc;
}
