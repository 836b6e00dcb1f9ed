/* Evaluation: sets, the distributed sampling and scoring loop, and the
 * gathering of records and per-sample JSONL lines on rank 0. */
#include "trainer/eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "reward/math_verify.h"
#include "reward/pgrpo.h"

/* ---- sets ------------------------------------------------------------------------ */

static int set_from_file(const grpo_config *c, trainer_eval_set *s, const char *path, int max_rows,
                         grpo_error *err) {
  task_format fmt;
  trainer_session_layout(c, path, &fmt);
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(s->name, sizeof s->name, "%s", fmt.name[0] && strcmp(fmt.name, "jsonl") ? fmt.name : path);
  int rc = task_dataset_load(&s->ds, path, &fmt, err);
  if (rc) return rc;
  s->n = (int)s->ds.n;
  if (max_rows > 0 && s->n > max_rows) s->n = max_rows;
  s->items = calloc((size_t)(s->n ? s->n : 1), sizeof *s->items);
  if (!s->items) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  for (int i = 0; i < s->n; i++) {
    s->items[i].index = (uint32_t)i;
    s->items[i].question = s->ds.items[i].question;
    s->items[i].gold = s->ds.items[i].gold;
  }
  return GRPO_OK;
}

static int set_arithmetic(const grpo_config *c, trainer_eval_set *s, int n, grpo_error *err) {
  snprintf(s->name, sizeof s->name, "arithmetic");
  task_arith_options o;
  trainer_session_arith_options(c, &o);
  int rc = task_arith_validate(&o, err);
  if (rc) return rc;
  s->n = n;
  s->items = calloc((size_t)n, sizeof *s->items);
  if (!s->items) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  for (int i = 0; i < n; i++) {
    trainer_eval_item *it = &s->items[i];
    it->index = (uint32_t)i;
    task_arith_generate(&o, (uint64_t)c->seed, TASK_SPLIT_EVAL, (uint64_t)i, &it->arith);
    it->question = it->arith.question;
    it->gold = it->arith.answer;
  }
  return GRPO_OK;
}

int trainer_eval_sets_open(const grpo_config *c, const char *const *specs, int n_specs,
                           const char *data_dir, int max_rows, trainer_eval_set **out, int *n_out,
                           grpo_error *err) {
  *out = NULL;
  *n_out = 0;
  if (n_specs <= 0) return GRPO_FAIL(err, GRPO_EINVAL, "eval: no sets given");
  trainer_eval_set *sets = calloc((size_t)n_specs, sizeof *sets);
  if (!sets) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  int rc = GRPO_OK, k = 0;
  for (; !rc && k < n_specs; k++) {
    const char *spec = specs[k];
    size_t len = strlen(spec);
    if (strcmp(spec, "arithmetic") == 0) {
      rc = set_arithmetic(c, &sets[k], max_rows > 0 ? max_rows : 200, err);
    } else if (strchr(spec, '/') || (len > 6 && strcmp(spec + len - 6, ".jsonl") == 0)) {
      rc = set_from_file(c, &sets[k], spec, max_rows, err);
    } else {
      task_format fmt;
      if (task_format_builtin(spec, &fmt) != GRPO_OK) {
        rc = GRPO_FAIL(err, GRPO_EINVAL, "eval: unknown set \"%s\" (known: %s, arithmetic, or a .jsonl path)",
                       spec, task_format_names());
        break;
      }
      char path[1024];
      snprintf(path, sizeof path, "%s/%s/test.jsonl", data_dir && *data_dir ? data_dir : ".", spec);
      rc = set_from_file(c, &sets[k], path, max_rows, err);
    }
  }
  *out = sets;
  *n_out = k;
  return rc;
}

int trainer_eval_sets_from_config(const grpo_config *c, trainer_eval_set **out, int *n_out,
                                  grpo_error *err) {
  *out = NULL;
  *n_out = 0;
  int arith = c->data.task == GRPO_CFG_TASK_ARITHMETIC;
  int n = c->data.eval_paths.n + arith;
  if (n == 0) return GRPO_OK;
  const char **specs = calloc((size_t)n, sizeof *specs);
  if (!specs) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  int k = 0;
  if (arith) specs[k++] = "arithmetic";
  for (int p = 0; p < c->data.eval_paths.n; p++) specs[k++] = c->data.eval_paths.items[p];
  /* eval_paths are files even without a '/' */
  trainer_eval_set *sets = calloc((size_t)n, sizeof *sets);
  int rc = sets ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  int max_rows = (int)c->data.num_eval, done = 0;
  for (; !rc && done < n; done++)
    rc = strcmp(specs[done], "arithmetic") == 0 && arith && done == 0
             ? set_arithmetic(c, &sets[done], max_rows > 0 ? max_rows : 200, err)
             : set_from_file(c, &sets[done], specs[done], max_rows, err);
  free(specs);
  *out = sets;
  *n_out = sets ? done : 0;
  return rc;
}

void trainer_eval_sets_close(trainer_eval_set *sets, int n) {
  for (int i = 0; sets && i < n; i++) {
    free(sets[i].items);
    if (sets[i].ds.items) task_dataset_free(&sets[i].ds);
  }
  free(sets);
}

/* ---- running --------------------------------------------------------------------- */

/* Where a sample's JSONL line sits in its rank's text. */
typedef struct line_ref {
  int64_t off;
  int32_t len, problem, sample, round;
} line_ref;

typedef struct eval_buffers {
  trainer_eval_record *recs;
  size_t n_recs, cap_recs;
  line_ref *lines;
  char *text;
  size_t text_len, text_cap;
} eval_buffers;

static int push_line(eval_buffers *b, const trainer_eval_record *rec, const char *line, grpo_error *err) {
  if (b->n_recs == b->cap_recs) {
    size_t cap = b->cap_recs ? 2 * b->cap_recs : 256;
    trainer_eval_record *nr = realloc(b->recs, cap * sizeof *nr);
    if (nr) b->recs = nr;
    line_ref *nl = realloc(b->lines, cap * sizeof *nl);
    if (nl) b->lines = nl;
    if (!nr || !nl) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
    b->cap_recs = cap;
  }
  size_t len = line ? strlen(line) : 0;
  if (b->text_len + len + 1 > b->text_cap) {
    size_t cap = 2 * (b->text_len + len + 1);
    char *nt = realloc(b->text, cap);
    if (!nt) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
    b->text = nt;
    b->text_cap = cap;
  }
  b->lines[b->n_recs] = (line_ref){(int64_t)b->text_len, (int32_t)len, rec->problem, rec->sample, rec->round};
  if (len) memcpy(b->text + b->text_len, line, len);
  b->text_len += len;
  b->recs[b->n_recs++] = *rec;
  return GRPO_OK;
}

/* One generated response of one problem, before its class is known. */
typedef struct sample_out {
  char *text;               /* decoded response */
  char answer[REWARD_MATH_TEXT_MAX];
  int has_answer, correct, tokens, critical, truncated;
  float mean_logprob;
  const char *finish;
} sample_out;

/* A response kept for the next revise round (problem-major, sample-minor). */
typedef struct kept_response {
  int problem;              /* index in the set */
  sample_out so;
} kept_response;

static const char *finish_name(rollout_finish f) {
  return f == ROLLOUT_FINISH_LENGTH ? "length" : "stop";
}

/* Scores a response and fills *so (text copied). */
static int score_response(trainer_session *s, const char *gold, const int32_t *ids, int n,
                          const float *lps, int parallel, int truncated, rollout_finish fin,
                          char **tbuf, size_t *tcap, int32_t *offs, sample_out *so, grpo_error *err) {
  int rc = trainer_session_response_text(s, ids, n, tbuf, tcap, parallel ? offs : NULL, err);
  if (rc) return rc;
  reward_math_verdict v;
  rc = reward_math_verify(gold, *tbuf, NULL, &v, err);
  if (rc) return rc;
  so->text = strdup(*tbuf);
  if (!so->text) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  so->correct = v.correct;
  so->has_answer = v.rule != REWARD_MATH_RULE_NONE && v.pred_answer[0];
  snprintf(so->answer, sizeof so->answer, "%s", so->has_answer ? v.pred_answer : "");
  so->tokens = n;
  so->critical = n;
  if (parallel) {
    reward_pgrpo_stats st;
    grpo_error perr = {0};
    if (reward_pgrpo_parse(*tbuf, strlen(*tbuf), offs, n, &st, &perr) == GRPO_OK && st.longest > 0)
      so->critical = (int)st.longest;
  }
  double sum = 0;
  int cnt = 0;
  for (int k = 0; lps && k < n; k++)
    if (isfinite(lps[k])) {
      sum += lps[k];
      cnt++;
    }
  so->mean_logprob = cnt ? (float)(sum / cnt) : 0.0f;
  so->truncated = truncated;
  so->finish = finish_name(fin);
  return GRPO_OK;
}

/* Classes of one problem's responses, then records and JSONL lines. */
static int emit_problem(const trainer_eval_set *set, const trainer_eval_item *it, int problem,
                        sample_out *so, int n, int round, eval_buffers *b, grpo_error *err) {
  const char **answers = calloc((size_t)n, sizeof *answers);
  int *cls = calloc((size_t)n, sizeof *cls);
  int rc = answers && cls ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  for (int j = 0; !rc && j < n; j++) answers[j] = so[j].has_answer ? so[j].answer : NULL;
  if (!rc) {
    int nc = trainer_answer_classes(answers, n, cls, err);
    if (nc < 0) rc = -nc;
  }
  for (int j = 0; !rc && j < n; j++) {
    trainer_eval_record rec = {0};
    rec.problem = problem;
    rec.sample = j;
    rec.round = (int8_t)round;
    rec.cluster = cls[j];
    rec.tokens = so[j].tokens;
    rec.critical = so[j].critical;
    rec.correct = (int8_t)so[j].correct;
    rec.truncated = (int8_t)so[j].truncated;
    rec.mean_logprob = so[j].mean_logprob;
    rec.prm_score = NAN;
    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o) {
      cJSON_AddStringToObject(o, "set", set->name);
      cJSON_AddNumberToObject(o, "problem", it->index);
      cJSON_AddNumberToObject(o, "sample", j);
      if (round) cJSON_AddNumberToObject(o, "round", round);
      cJSON_AddBoolToObject(o, "correct", so[j].correct);
      cJSON_AddStringToObject(o, "answer", so[j].answer);
      cJSON_AddStringToObject(o, "gold", it->gold);
      cJSON_AddNumberToObject(o, "answer_class", cls[j]);
      cJSON_AddNumberToObject(o, "tokens", so[j].tokens);
      cJSON_AddNumberToObject(o, "critical_path_tokens", so[j].critical);
      cJSON_AddStringToObject(o, "finish_reason", so[j].finish);
      cJSON_AddBoolToObject(o, "truncated", so[j].truncated);
      cJSON_AddNumberToObject(o, "mean_logprob", so[j].mean_logprob);
      cJSON_AddStringToObject(o, "completion", so[j].text ? so[j].text : "");
      line = cJSON_PrintUnformatted(o);
      cJSON_Delete(o);
    }
    if (!line) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
      break;
    }
    rc = push_line(b, &rec, line, err);
    cJSON_free(line);
  }
  free(answers);
  free(cls);
  return rc;
}

static int cmp_line(const void *a, const void *b) {
  const line_ref *x = a, *y = b;
  if (x->round != y->round) return x->round < y->round ? -1 : 1;
  if (x->problem != y->problem) return x->problem < y->problem ? -1 : 1;
  return x->sample < y->sample ? -1 : x->sample > y->sample;
}

/* Every rank's records to every rank; the lines to rank 0, written in
 * (round, problem, sample) order. */
static int gather(MPI_Comm comm, const eval_buffers *b, FILE *samples, trainer_eval_record **all,
                  size_t *n_all, grpo_error *err) {
  int rank, world;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  int *cnt = calloc((size_t)world, sizeof *cnt), *disp = calloc((size_t)world, sizeof *disp);
  int mine = (int)(b->n_recs * sizeof(trainer_eval_record)), rc = GRPO_OK;
  if (!cnt || !disp) rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  char *recv = NULL, *lrecv = NULL, *trecv = NULL;
  size_t total = 0;
  if (!rc) {
    MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, comm);
    for (int r = 0; r < world; r++) {
      disp[r] = (int)total;
      total += (size_t)cnt[r];
    }
    recv = malloc(total ? total : 1);
    if (!recv) rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  }
  if (!rc) MPI_Allgatherv(b->recs, mine, MPI_BYTE, recv, cnt, disp, MPI_BYTE, comm);
  *all = (trainer_eval_record *)recv;
  *n_all = total / sizeof(trainer_eval_record);
  int want = samples != NULL;
  MPI_Bcast(&want, 1, MPI_INT, 0, comm);
  if (rc || !want) goto done;
  /* line references, then the text, to rank 0 */
  int lmine = (int)(b->n_recs * sizeof(line_ref)), tmine = (int)b->text_len;
  int *lcnt = calloc((size_t)world, sizeof *lcnt), *ldisp = calloc((size_t)world, sizeof *ldisp);
  int *tcnt = calloc((size_t)world, sizeof *tcnt), *tdisp = calloc((size_t)world, sizeof *tdisp);
  MPI_Gather(&lmine, 1, MPI_INT, lcnt, 1, MPI_INT, 0, comm);
  MPI_Gather(&tmine, 1, MPI_INT, tcnt, 1, MPI_INT, 0, comm);
  size_t ltot = 0, ttot = 0;
  if (rank == 0)
    for (int r = 0; r < world; r++) {
      ldisp[r] = (int)ltot;
      tdisp[r] = (int)ttot;
      ltot += (size_t)lcnt[r];
      ttot += (size_t)tcnt[r];
    }
  lrecv = malloc(ltot ? ltot : 1);
  trecv = malloc(ttot ? ttot : 1);
  MPI_Gatherv(b->lines, lmine, MPI_BYTE, lrecv, lcnt, ldisp, MPI_BYTE, 0, comm);
  MPI_Gatherv(b->text, tmine, MPI_BYTE, trecv, tcnt, tdisp, MPI_BYTE, 0, comm);
  if (rank == 0) {
    line_ref *lr = (line_ref *)lrecv;
    size_t nl = ltot / sizeof(line_ref);
    /* offsets are per rank: make them global before sorting */
    for (int r = 0, at = 0; r < world; r++)
      for (int i = 0; i < lcnt[r] / (int)sizeof(line_ref); i++) lr[at++].off += tdisp[r];
    qsort(lr, nl, sizeof *lr, cmp_line);
    for (size_t i = 0; i < nl; i++) {
      fwrite(trecv + lr[i].off, 1, (size_t)lr[i].len, samples);
      fputc('\n', samples);
    }
    fflush(samples);
  }
  free(lcnt);
  free(ldisp);
  free(tcnt);
  free(tdisp);
done:
  free(lrecv);
  free(trecv);
  free(cnt);
  free(disp);
  return rc;
}

/* One solve-review-revise round: each kept response is shown back to the
 * model with opt->revise_prompt as a second user turn; a new final answer
 * replaces the old one, no answer keeps it. Sample j of problem p draws with
 * the key (seed, round, p, j). */
static int revise_round(trainer_session *s, const trainer_eval_set *set, const trainer_eval_options *opt,
                        const rollout_engine_options *eo0, int round, kept_response *kept, size_t n_kept,
                        int n, eval_buffers *b, grpo_error *err) {
  const grpo_config *c = s->cfg;
  rollout_engine_options eo = *eo0;
  eo.step = (uint32_t)round;
  const int max_new = eo.max_new_tokens;
  int per = (int)c->rollout.max_batch_size;
  if (per < n) per = n;
  per = per / n * n; /* whole problems per batch */
  rollout_group *groups = calloc((size_t)per, sizeof *groups);
  model_ids *pids = calloc((size_t)per, sizeof *pids);
  rollout_output *outs = calloc((size_t)per, sizeof *outs);
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)per * (size_t)max_new);
  float *lps = malloc(sizeof(float) * (size_t)per * (size_t)max_new);
  int *slot = malloc(sizeof(int) * (size_t)per);
  sample_out *so = calloc((size_t)n, sizeof *so);
  char *tbuf = NULL;
  size_t tcap = 0;
  int rc = groups && pids && outs && tok && lps && slot && so ? GRPO_OK
                                                                : GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  for (int i = 0; !rc && i < per; i++) {
    outs[i].ids = tok + (size_t)i * max_new;
    outs[i].logprobs = lps + (size_t)i * max_new;
  }
  for (size_t first = 0; !rc && first < n_kept; first += (size_t)per) {
    size_t last = first + (size_t)per < n_kept ? first + (size_t)per : n_kept;
    int used = 0;
    for (size_t q = first; !rc && q < last; q++) {
      kept_response *k = &kept[q];
      const trainer_eval_item *it = &set->items[k->problem];
      const char *turns[3] = {it->question, k->so.text ? k->so.text : "", opt->revise_prompt};
      int i = (int)(q - first);
      slot[i] = -1;
      pids[i].n = 0;
      rc = trainer_session_conversation(s, turns, 3, &pids[i], err);
      if (rc || (int)pids[i].n + 1 >= s->max_len) continue; /* too long to review: the answer stands */
      groups[used] = (rollout_group){pids[i].ids, (int)pids[i].n, 1, it->index, (uint32_t)(q % (size_t)n)};
      slot[i] = used++;
    }
    if (!rc && used) rc = rollout_engine_generate(s->engine, &eo, groups, used, outs, NULL, err);
    for (size_t q = first; !rc && q < last; q++) {
      kept_response *k = &kept[q];
      const trainer_eval_item *it = &set->items[k->problem];
      int i = (int)(q - first);
      sample_out nso = k->so;
      nso.tokens = 0;
      nso.critical = 0;
      if (slot[i] >= 0) {
        rollout_output *o = &outs[slot[i]];
        sample_out r = {0};
        rc = score_response(s, it->gold, o->ids, o->n, o->logprobs, 0, o->truncated, o->finish, &tbuf, &tcap,
                            NULL, &r, err);
        if (rc) break;
        if (r.has_answer) {
          free(k->so.text);
          k->so = r;
        } else {
          /* keep the previous answer, but review the new text next round */
          free(k->so.text);
          r.has_answer = k->so.has_answer;
          r.correct = k->so.correct;
          memcpy(r.answer, k->so.answer, sizeof r.answer);
          k->so = r;
        }
        nso = k->so;
      }
      so[q % (size_t)n] = nso;
      if (q % (size_t)n == (size_t)n - 1) rc = emit_problem(set, it, k->problem, so, n, round, b, err);
    }
  }
  for (int i = 0; i < per && pids; i++) model_ids_free(&pids[i]);
  free(groups);
  free(pids);
  free(outs);
  free(tok);
  free(lps);
  free(slot);
  free(so);
  free(tbuf);
  return rc;
}

int trainer_eval_run(trainer_session *s, MPI_Comm comm, const trainer_eval_set *set,
                     const trainer_eval_options *opt, trainer_eval_stats *stats, grpo_error *err) {
  const grpo_config *c = s->cfg;
  int rank, world;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  const int n = opt->n_samples > 0 ? opt->n_samples : 1;
  const int parallel = c->rollout.parallel_threads != 0;
  rollout_engine_options eo;
  trainer_session_engine_options(s, opt->seed, 0, &eo);
  eo.sampling.temperature = opt->temperature;
  if (opt->top_p > 0) eo.sampling.top_p = opt->top_p;
  rollout_tw_options two;
  trainer_session_tw_options(s, &two);
  const int max_new = eo.max_new_tokens;
  int chunk = (int)c->rollout.max_batch_size / n;
  if (chunk < 1) chunk = 1;
  size_t cap = (size_t)chunk * (size_t)n;
  rollout_group *groups = calloc((size_t)chunk, sizeof *groups);
  model_ids *pids = calloc((size_t)chunk, sizeof *pids);
  int *gprob = calloc((size_t)chunk, sizeof *gprob);
  rollout_output *outs = calloc(cap, sizeof *outs);
  int32_t *tok = malloc(sizeof(int32_t) * cap * (size_t)max_new);
  float *lps = malloc(sizeof(float) * cap * (size_t)max_new);
  rollout_tw *trajs = parallel ? calloc(cap, sizeof *trajs) : NULL;
  sample_out *so = calloc(cap, sizeof *so);
  int32_t *offs = malloc(sizeof(int32_t) * (size_t)(s->max_len + 1));
  char *tbuf = NULL;
  size_t tcap = 0;
  eval_buffers b = {0};
  int rc = GRPO_OK;
  /* this rank's problems times n, for the revise rounds */
  size_t kept_cap = opt->revise_rounds > 0 ? (size_t)((set->n + world - 1) / world) * (size_t)n : 0, n_kept = 0;
  kept_response *kept = kept_cap ? calloc(kept_cap, sizeof *kept) : NULL;
  if (kept_cap && !kept) rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory for the revise rounds");
  if (!groups || !pids || !gprob || !outs || !tok || !lps || (parallel && !trajs) || !so || !offs)
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory for %zu samples in flight", cap);
  for (size_t i = 0; !rc && i < cap; i++) {
    outs[i].ids = tok + i * (size_t)max_new;
    outs[i].logprobs = lps + i * (size_t)max_new;
  }
  long too_long = 0, first_long = -1;
  /* ---- round 0: n samples per problem ---- */
  for (int first = rank; !rc && first < set->n; first += chunk * world) {
    int used = 0;
    for (int p = first; !rc && p < set->n && p < first + chunk * world; p += world) {
      const trainer_eval_item *it = &set->items[p];
      pids[used].n = 0;
      rc = trainer_session_prompt(s, it->question, &pids[used], err);
      if (rc) break;
      if ((long)pids[used].n > c->data.max_prompt_length || (int)pids[used].n >= s->max_len) {
        /* a skipped problem has no records and counts as wrong */
        if (!too_long++)
          first_long = (long)it->index;
        continue;
      }
      groups[used] = (rollout_group){pids[used].ids, (int)pids[used].n, n, it->index, 0};
      gprob[used++] = p;
    }
    if (rc || !used) continue;
    if (parallel)
      rc = rollout_engine_generate_parallel(s->engine, &eo, &two, groups, used, trajs, NULL, err);
    else
      rc = rollout_engine_generate(s->engine, &eo, groups, used, outs, NULL, err);
    for (int g = 0; !rc && g < used; g++) {
      const trainer_eval_item *it = &set->items[gprob[g]];
      for (int j = 0; !rc && j < n; j++) {
        size_t q = (size_t)g * n + j;
        memset(&so[j], 0, sizeof so[j]);
        if (parallel) {
          const rollout_tw *t = &trajs[q];
          rc = score_response(s, it->gold, t->combined.ids + t->n_prompt, t->combined.n - t->n_prompt,
                              t->combined.logprob + t->n_prompt, 1, t->truncated, t->finish, &tbuf, &tcap,
                              offs, &so[j], err);
        } else {
          rc = score_response(s, it->gold, outs[q].ids, outs[q].n, outs[q].logprobs, 0, outs[q].truncated,
                              outs[q].finish, &tbuf, &tcap, offs, &so[j], err);
        }
      }
      if (!rc) rc = emit_problem(set, it, gprob[g], so, n, 0, &b, err);
      for (int j = 0; j < n; j++) {
        if (!rc && opt->revise_rounds > 0 && n_kept < kept_cap) {
          kept[n_kept].problem = gprob[g];
          kept[n_kept++].so = so[j];
        } else {
          free(so[j].text);
        }
        so[j].text = NULL;
      }
    }
    for (size_t q = 0; parallel && q < (size_t)used * n; q++) rollout_tw_free(&trajs[q]);
  }
  /* ---- revise rounds: review each previous answer in a second turn ---- */
  for (int round = 1; !rc && round <= opt->revise_rounds; round++)
    rc = revise_round(s, set, opt, &eo, round, kept, n_kept, n, &b, err);
  long skipped[2] = {too_long, first_long < 0 ? (long)set->n : first_long};
  MPI_Allreduce(MPI_IN_PLACE, &skipped[0], 1, MPI_LONG, MPI_SUM, comm);
  MPI_Allreduce(MPI_IN_PLACE, &skipped[1], 1, MPI_LONG, MPI_MIN, comm);
  if (rank == 0 && skipped[0])
    GRPO_WARN("eval %s: %ld of %d problems skipped (scored wrong): prompt over data.max_prompt_length or the "
              "model's length (first: problem %ld)", set->name, skipped[0], set->n, skipped[1]);
  trainer_eval_record *all = NULL;
  size_t n_all = 0;
  /* every rank takes part in the gathers even after a local error */
  int bad = rc != GRPO_OK, any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, comm);
  if (any_bad && !rc) rc = GRPO_FAIL(err, GRPO_EINVAL, "eval %s: another rank failed", set->name);
  if (!any_bad) rc = gather(comm, &b, rank == 0 ? opt->samples : NULL, &all, &n_all, err);
  for (int round = 0; !rc && round <= opt->revise_rounds; round++)
    rc = trainer_eval_summarize(all, n_all, set->n, opt->ks, opt->n_ks, round, &stats[round], err);
  free(all);
  free(b.recs);
  free(b.lines);
  free(b.text);
  for (int i = 0; i < chunk; i++) model_ids_free(&pids[i]);
  free(groups);
  free(pids);
  free(gprob);
  free(outs);
  free(tok);
  free(lps);
  free(trajs);
  free(so);
  free(offs);
  free(tbuf);
  for (size_t i = 0; i < n_kept; i++) free(kept[i].so.text);
  free(kept);
  return rc;
}

/* ---- grpo eval ------------------------------------------------------------------- */

static int mkdirs(const char *path, grpo_error *err) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p) continue;
    char keep = *p;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST)
      return GRPO_FAIL(err, GRPO_EIO, "cannot create %s: %s", buf, strerror(errno));
    if (!keep) break;
    *p = keep;
  }
  return GRPO_OK;
}

int trainer_eval_benchmarks(const grpo_config *c, MPI_Comm comm, const char *const *sets, int n_sets,
                            grpo_error *err) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (!sets) {
    sets = (const char *const *)c->eval.sets.items;
    n_sets = c->eval.sets.n;
  }
  if (n_sets <= 0) return GRPO_FAIL(err, GRPO_EINVAL, "eval: no sets (give --sets or eval.sets)");
  int ks[TRAINER_EVAL_MAX_KS], n_ks = 0;
  int rc = trainer_eval_parse_ks(c->eval.ks, ks, TRAINER_EVAL_MAX_KS, &n_ks, err);
  if (rc) return grpo_error_prefix(err, "eval.ks");
  char out_dir[1024], path[1200];
  if (c->eval.output_dir[0])
    snprintf(out_dir, sizeof out_dir, "%s", c->eval.output_dir);
  else
    snprintf(out_dir, sizeof out_dir, "%s/eval", c->output_dir);
  trainer_eval_set *es = NULL;
  int n_es = 0;
  rc = trainer_eval_sets_open(c, sets, n_sets, c->eval.data_dir, (int)c->eval.max_problems, &es, &n_es, err);
  trainer_session s;
  int have_s = 0;
  if (!rc) {
    rc = trainer_session_open(&s, c, 0, err);
    have_s = rc == GRPO_OK;
  }
  FILE *samples = NULL;
  int rounds = (int)c->eval.revise_rounds + 1;
  trainer_eval_stats *st = calloc((size_t)n_es * (size_t)rounds + 1, sizeof *st);
  const char **names = calloc((size_t)n_es * (size_t)rounds + 1, sizeof *names);
  char (*labels)[96] = calloc((size_t)n_es * (size_t)rounds + 1, sizeof *labels);
  if (!rc && (!st || !names || !labels)) rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  if (!rc && rank == 0) {
    rc = mkdirs(out_dir, err);
    snprintf(path, sizeof path, "%s/samples.jsonl", out_dir);
    if (!rc && !(samples = fopen(path, "w")))
      rc = GRPO_FAIL(err, GRPO_EIO, "cannot write %s: %s", path, strerror(errno));
  }
  /* every rank must agree before the collective runs */
  int bad = rc != GRPO_OK, any = 0;
  MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
  if (any && !rc) rc = GRPO_FAIL(err, GRPO_EINVAL, "eval: another rank failed to start");
  trainer_eval_options eo = {0};
  eo.n_samples = (int)c->eval.num_samples;
  eo.ks = ks;
  eo.n_ks = n_ks;
  eo.seed = (uint64_t)c->seed;
  eo.temperature = (float)c->eval.temperature;
  eo.top_p = (float)c->eval.top_p;
  eo.revise_rounds = (int)c->eval.revise_rounds;
  eo.revise_prompt = c->eval.revise_prompt;
  eo.samples = samples;
  for (int i = 0; !rc && i < n_es; i++) {
    if (rank == 0) GRPO_INFO("eval %s: %d problems x %d samples", es[i].name, es[i].n, eo.n_samples);
    rc = trainer_eval_run(&s, comm, &es[i], &eo, &st[(size_t)i * rounds], err);
    for (int r = 0; r < rounds; r++) {
      if (r == 0)
        snprintf(labels[(size_t)i * rounds], sizeof labels[0], "%s", es[i].name);
      else
        snprintf(labels[(size_t)i * rounds + r], sizeof labels[0], "%s/revise%d", es[i].name, r);
      names[(size_t)i * rounds + r] = labels[(size_t)i * rounds + r];
    }
  }
  if (!rc && rank == 0) {
    trainer_eval_print_table(stdout, names, st, n_es * rounds);
    snprintf(path, sizeof path, "%s/summary.json", out_dir);
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
      rc = GRPO_FAIL(err, GRPO_EIO, "cannot write %s: %s", tmp, strerror(errno));
    } else {
      cJSON *mp = cJSON_CreateString(c->model.path);
      char *mps = mp ? cJSON_PrintUnformatted(mp) : NULL;
      fprintf(f, "{\"model\": %s, \"num_samples\": %d, \"temperature\": %g, \"top_p\": %g, \"sets\": {",
              mps ? mps : "\"\"", eo.n_samples, eo.temperature, eo.top_p);
      cJSON_free(mps);
      cJSON_Delete(mp);
      for (int i = 0; i < n_es * rounds; i++) {
        cJSON *nm = cJSON_CreateString(names[i]);
        char *nms = nm ? cJSON_PrintUnformatted(nm) : NULL;
        fprintf(f, "%s\n  %s: ", i ? "," : "", nms ? nms : "\"?\"");
        cJSON_free(nms);
        cJSON_Delete(nm);
        trainer_eval_write_json(f, &st[i]);
      }
      fprintf(f, "\n}}\n");
      if (fclose(f) || rename(tmp, path))
        rc = GRPO_FAIL(err, GRPO_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    if (!rc) GRPO_INFO("eval: wrote %s and %s/samples.jsonl", path, out_dir);
  }
  if (samples) fclose(samples);
  free(st);
  free(names);
  free(labels);
  if (have_s) trainer_session_close(&s);
  trainer_eval_sets_close(es, n_es);
  return rc;
}
