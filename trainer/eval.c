/* Evaluation: sets, the distributed sampling and scoring loop, and the
 * gathering of records and per-sample JSONL lines on rank 0. */
#include "trainer/eval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/log.h"
#include "reward/math_verify.h"
#include "checkpoints/hf_io.h"
#include "reward/pgrpo.h"
#include "rollout/search.h"
#include "trainer/allocate.h"

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
  int n = c->data.eval_paths.n + arith, max_rows = (int)c->data.num_eval, k = 0;
  if (n == 0) return GRPO_OK;
  trainer_eval_set *sets = calloc((size_t)n, sizeof *sets);
  if (!sets) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  int rc = arith ? set_arithmetic(c, &sets[k++], max_rows > 0 ? max_rows : 200, err) : GRPO_OK;
  /* eval_paths are files even without a '/' */
  for (int p = 0; !rc && p < c->data.eval_paths.n; p++)
    rc = set_from_file(c, &sets[k++], c->data.eval_paths.items[p], max_rows, err);
  *out = sets;
  *n_out = k;
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

/* Where a sample's JSONL line sits in its rank's text; order sorts the
 * views (samples, revise rounds, search). */
typedef struct line_ref {
  int64_t off;
  int32_t len, problem, sample, order;
} line_ref;

typedef struct eval_buffers {
  trainer_eval_record *recs;
  size_t n_recs, cap_recs;
  line_ref *lines;
  char *text;
  size_t text_len, text_cap;
} eval_buffers;

static int push_line(eval_buffers *b, const trainer_eval_record *rec, int order, const char *line,
                     grpo_error *err) {
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
  b->lines[b->n_recs] = (line_ref){(int64_t)b->text_len, (int32_t)len, rec->problem, rec->sample, order};
  if (len) memcpy(b->text + b->text_len, line, len);
  b->text_len += len;
  b->recs[b->n_recs++] = *rec;
  return GRPO_OK;
}

/* One scored response. */
typedef struct sample_out {
  char *text;               /* decoded response */
  char answer[REWARD_MATH_TEXT_MAX];
  int has_answer, correct, tokens, critical, truncated;
  float mean_logprob, prm_score;
  const char *finish;
  const char *strategy;     /* search: the strategy that chose it */
} sample_out;

/* A problem this rank evaluates: its prompt and its responses so far. */
typedef struct problem_state {
  int problem;              /* index in the set */
  model_ids pid;            /* the policy prompt */
  int usable;               /* the prompt fits */
  sample_out *so;           /* [cap] by sample index */
  int n, cap;
  int n_adaptive;           /* samples the adaptive view holds */
} problem_state;

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
  so->prm_score = NAN;
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

static const char *view_mode(int view) {
  return view == TRAINER_EVAL_SEARCH ? "search" : view >= 1 && view <= TRAINER_EVAL_MAX_REVISE ? "revise" : "sample";
}

/* Answer classes of responses [0, n) of one problem, then one record and
 * JSONL line each. Sample j belongs to view `view` (and, for the first view,
 * also to the adaptive view when j < n_adaptive). */
static int emit_problem(const trainer_eval_set *set, int problem, const sample_out *so, int n, int view,
                        int n_uniform, int n_adaptive, eval_buffers *b, grpo_error *err) {
  const trainer_eval_item *it = &set->items[problem];
  const char **answers = calloc((size_t)n + 1, sizeof *answers);
  int *cls = calloc((size_t)n + 1, sizeof *cls);
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
    rec.views = (j < n_uniform ? 1u << view : 0u) | (j < n_adaptive ? 1u << TRAINER_EVAL_ADAPTIVE : 0u);
    rec.cluster = cls[j];
    rec.tokens = so[j].tokens;
    rec.critical = so[j].critical;
    rec.correct = (int8_t)so[j].correct;
    rec.truncated = (int8_t)so[j].truncated;
    rec.mean_logprob = so[j].mean_logprob;
    rec.prm_score = so[j].prm_score;
    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o) {
      cJSON_AddStringToObject(o, "set", set->name);
      cJSON_AddNumberToObject(o, "problem", it->index);
      cJSON_AddNumberToObject(o, "sample", j);
      cJSON_AddStringToObject(o, "mode", view_mode(view));
      if (view >= 1 && view <= TRAINER_EVAL_MAX_REVISE) cJSON_AddNumberToObject(o, "round", view);
      if (n_adaptive > 0) cJSON_AddBoolToObject(o, "adaptive", j < n_adaptive);
      if (j >= n_uniform) cJSON_AddBoolToObject(o, "uniform", 0);
      cJSON_AddBoolToObject(o, "correct", so[j].correct);
      cJSON_AddStringToObject(o, "answer", so[j].answer);
      cJSON_AddStringToObject(o, "gold", it->gold);
      cJSON_AddNumberToObject(o, "answer_class", cls[j]);
      cJSON_AddNumberToObject(o, "tokens", so[j].tokens);
      cJSON_AddNumberToObject(o, "critical_path_tokens", so[j].critical);
      cJSON_AddStringToObject(o, "finish_reason", so[j].finish ? so[j].finish : "stop");
      cJSON_AddBoolToObject(o, "truncated", so[j].truncated);
      cJSON_AddNumberToObject(o, "mean_logprob", so[j].mean_logprob);
      if (!isnan(so[j].prm_score)) cJSON_AddNumberToObject(o, "prm_score", so[j].prm_score);
      if (so[j].strategy) cJSON_AddStringToObject(o, "strategy", so[j].strategy);
      cJSON_AddStringToObject(o, "completion", so[j].text ? so[j].text : "");
      line = cJSON_PrintUnformatted(o);
      cJSON_Delete(o);
    }
    if (!line) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
      break;
    }
    rc = push_line(b, &rec, view == TRAINER_EVAL_SEARCH ? 1000 : view, line, err);
    cJSON_free(line);
  }
  free(answers);
  free(cls);
  return rc;
}

static int cmp_line(const void *a, const void *b) {
  const line_ref *x = a, *y = b;
  if (x->order != y->order) return x->order < y->order ? -1 : 1;
  if (x->problem != y->problem) return x->problem < y->problem ? -1 : 1;
  return x->sample < y->sample ? -1 : x->sample > y->sample;
}

/* Every rank's records to every rank; the lines to rank 0, written in
 * (view, problem, sample) order. */
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

/* The sampling machinery of one trainer_eval_run: engine options and the
 * output buffers of one batch (cap samples). */
typedef struct sampler_ctx {
  trainer_session *s;
  const trainer_eval_set *set;
  rollout_engine_options eo;
  rollout_tw_options two;
  int parallel, cap;
  rollout_group *groups;
  problem_state **gprob;
  rollout_output *outs;
  int32_t *tok, *offs;
  float *lps;
  rollout_tw *trajs;
  char *tbuf;
  size_t tcap;
} sampler_ctx;

static int grow_samples(problem_state *ps, int need, grpo_error *err) {
  if (need <= ps->cap) return GRPO_OK;
  int cap = need > 2 * ps->cap ? need : 2 * ps->cap;
  sample_out *so = realloc(ps->so, sizeof *so * (size_t)cap);
  if (!so) return GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory for %d samples", cap);
  memset(so + ps->cap, 0, sizeof *so * (size_t)(cap - ps->cap));
  ps->so = so;
  ps->cap = cap;
  return GRPO_OK;
}

/* Draws samples [ps->n, want[i]) of every usable problem (keyed by sample
 * index, so later draws continue the sequence) in batches of ctx->cap. */
static int draw_samples(sampler_ctx *x, problem_state **probs, int n_probs, const int *want, grpo_error *err) {
  int rc = GRPO_OK, i = 0;
  while (!rc) {
    int used = 0, in_batch = 0;
    while (!rc && i < n_probs) {
      problem_state *ps = probs[i];
      int count = want[i] - ps->n;
      if (!ps->usable || count <= 0) {
        i++;
        continue;
      }
      if (in_batch + count > x->cap) {
        if (used) break;
        count = x->cap; /* a group larger than a batch goes in pieces */
      }
      rc = grow_samples(ps, ps->n + count, err);
      if (rc) break;
      x->groups[used] = (rollout_group){ps->pid.ids, (int)ps->pid.n, count, x->set->items[ps->problem].index,
                                        (uint32_t)ps->n};
      x->gprob[used++] = ps;
      in_batch += count;
      if (ps->n + count < want[i]) break; /* the rest of this problem in the next batch */
      i++;
    }
    if (rc || !used) break;
    if (x->parallel)
      rc = rollout_engine_generate_parallel(x->s->engine, &x->eo, &x->two, x->groups, used, x->trajs, NULL, err);
    else
      rc = rollout_engine_generate(x->s->engine, &x->eo, x->groups, used, x->outs, NULL, err);
    for (int g = 0, q = 0; !rc && g < used; g++) {
      problem_state *ps = x->gprob[g];
      const char *gold = x->set->items[ps->problem].gold;
      for (int j = 0; !rc && j < x->groups[g].n_samples; j++, q++) {
        sample_out *so = &ps->so[ps->n];
        memset(so, 0, sizeof *so);
        if (x->parallel) {
          const rollout_tw *t = &x->trajs[q];
          rc = score_response(x->s, gold, t->combined.ids + t->n_prompt, t->combined.n - t->n_prompt,
                              t->combined.logprob + t->n_prompt, 1, t->truncated, t->finish, &x->tbuf, &x->tcap,
                              x->offs, so, err);
        } else {
          const rollout_output *o = &x->outs[q];
          rc = score_response(x->s, gold, o->ids, o->n, o->logprobs, 0, o->truncated, o->finish, &x->tbuf,
                              &x->tcap, x->offs, so, err);
        }
        if (!rc) ps->n++;
      }
    }
    for (int q = 0; x->parallel && q < in_batch; q++) rollout_tw_free(&x->trajs[q]);
  }
  return rc;
}

/* One solve-review-revise round over the first n responses of every problem:
 * each is shown back to the model with the review turn; a new final answer
 * replaces the old one, no answer keeps it. Draws are keyed (seed, round,
 * problem, sample). */
static int revise_round(sampler_ctx *x, problem_state **probs, int n_probs, int n, int round, const char *prompt,
                        eval_buffers *b, grpo_error *err) {
  trainer_session *s = x->s;
  rollout_engine_options eo = x->eo;
  eo.step = (uint32_t)round;
  int per = x->cap < n ? n : x->cap;
  model_ids *pids = calloc((size_t)per, sizeof *pids);
  int *slot = malloc(sizeof(int) * (size_t)per);
  sample_out *fresh = calloc((size_t)n, sizeof *fresh);
  int rc = pids && slot && fresh ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  /* batches of whole problems */
  for (int i = 0; !rc && i < n_probs;) {
    int first = i, used = 0, k = 0;
    for (; i < n_probs && (k == 0 || k + n <= per); i++) {
      problem_state *ps = probs[i];
      if (!ps->usable) continue;
      const trainer_eval_item *it = &x->set->items[ps->problem];
      for (int j = 0; !rc && j < n && j < ps->n; j++, k++) {
        const char *turns[3] = {it->question, ps->so[j].text ? ps->so[j].text : "", prompt};
        pids[k].n = 0;
        slot[k] = -1;
        rc = trainer_session_conversation(s, turns, 3, &pids[k], err);
        if (rc || (int)pids[k].n + 1 >= s->max_len) continue; /* too long to review: the answer stands */
        x->groups[used] = (rollout_group){pids[k].ids, (int)pids[k].n, 1, it->index, (uint32_t)j};
        slot[k] = used++;
      }
    }
    if (!rc && used) rc = rollout_engine_generate(s->engine, &eo, x->groups, used, x->outs, NULL, err);
    k = 0;
    for (int p = first; !rc && p < i; p++) {
      problem_state *ps = probs[p];
      if (!ps->usable) continue;
      const char *gold = x->set->items[ps->problem].gold;
      int m = ps->n < n ? ps->n : n;
      for (int j = 0; !rc && j < m; j++, k++) {
        sample_out *old = &ps->so[j], r = {0};
        if (slot[k] >= 0) {
          const rollout_output *o = &x->outs[slot[k]];
          rc = score_response(s, gold, o->ids, o->n, o->logprobs, 0, o->truncated, o->finish, &x->tbuf, &x->tcap,
                              NULL, &r, err);
          if (rc) break;
          if (!r.has_answer) { /* keep the previous answer; review the new text next round */
            r.has_answer = old->has_answer;
            r.correct = old->correct;
            memcpy(r.answer, old->answer, sizeof r.answer);
          }
          free(old->text);
          *old = r;
        } else {
          old->tokens = 0;
          old->critical = 0;
        }
        fresh[j] = *old;
      }
      if (!rc) rc = emit_problem(x->set, ps->problem, fresh, m, round, m, 0, b, err);
    }
    for (int q = 0; q < per; q++) model_ids_free(&pids[q]);
  }
  free(pids);
  free(slot);
  free(fresh);
  return rc;
}

/* Without gold answers the pass rate is estimated by agreement: the votes
 * of the largest class of verifier-equivalent answers among the pilot
 * samples (self-consistency). Returns the count, or a negative status. */
static int pilot_agreement(const problem_state *ps, grpo_error *err) {
  if (ps->n == 0) return 0;
  const char **answers = calloc((size_t)ps->n, sizeof *answers);
  int *cls = calloc((size_t)ps->n, sizeof *cls), *votes = calloc((size_t)ps->n, sizeof *votes);
  int best = 0, nc = answers && cls && votes ? 0 : -GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  for (int j = 0; nc == 0 && j < ps->n; j++) answers[j] = ps->so[j].has_answer ? ps->so[j].answer : NULL;
  if (nc == 0) nc = trainer_answer_classes(answers, ps->n, cls, err);
  for (int j = 0; nc > 0 && j < ps->n; j++)
    if (cls[j] >= 0 && ++votes[cls[j]] > best) best = votes[cls[j]];
  free(answers);
  free(cls);
  free(votes);
  return nc < 0 ? nc : best;
}

/* The adaptive allocation: every rank computes the same plan from the
 * gathered pilot results. want[i] becomes max(n, pilot + extra_i). */
static int plan_adaptive(MPI_Comm comm, const trainer_eval_set *set, const trainer_eval_options *opt, int max_new,
                         problem_state *ps, int n_mine, int *want, grpo_error *err) {
  int P = set->n, pilot = opt->adaptive_pilot, n = opt->n_samples;
  double *loc = calloc((size_t)P * 3, sizeof *loc);
  int *n0 = calloc((size_t)P, sizeof *n0), *c = calloc((size_t)P, sizeof *c), *extra = calloc((size_t)P, sizeof *extra);
  double *mt = calloc((size_t)P, sizeof *mt);
  int rc = loc && n0 && c && extra && mt ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  for (int i = 0; !rc && i < n_mine; i++) {
    double tok = 0;
    int cc = 0;
    for (int j = 0; j < ps[i].n; j++) {
      tok += ps[i].so[j].tokens;
      cc += ps[i].so[j].correct;
    }
    if (!opt->adaptive_oracle) {
      int ag = pilot_agreement(&ps[i], err);
      if (ag < 0) {
        rc = -ag;
        break;
      }
      cc = ag;
    }
    loc[3 * ps[i].problem] = ps[i].usable ? ps[i].n : -1;
    loc[3 * ps[i].problem + 1] = cc;
    loc[3 * ps[i].problem + 2] = ps[i].n ? tok / ps[i].n : 0;
  }
  if (!rc) MPI_Allreduce(MPI_IN_PLACE, loc, P * 3, MPI_DOUBLE, MPI_SUM, comm);
  long usable = 0;
  double tok_sum = 0, tok_n = 0;
  for (int p = 0; !rc && p < P; p++) {
    n0[p] = loc[3 * p] < 0 ? 0 : (int)loc[3 * p];
    c[p] = (int)loc[3 * p + 1];
    mt[p] = loc[3 * p + 2];
    if (loc[3 * p] >= 0) {
      usable++;
      tok_sum += mt[p] * n0[p];
      tok_n += n0[p];
    }
  }
  trainer_alloc_options ao = {0};
  ao.objective = (trainer_alloc_objective)opt->adaptive_objective;
  ao.budget_samples = (int64_t)(n - pilot) * usable;
  /* the tokens uniform sampling would spend, by the pilot's mean length */
  ao.budget_tokens = opt->adaptive_token_budget > 0 ? opt->adaptive_token_budget
                                                    : (int64_t)ceil((tok_n > 0 ? tok_sum / tok_n : 1) * ao.budget_samples);
  ao.min_extra = 0;
  ao.max_extra = -1;
  ao.max_tokens = max_new;
  if (!rc && ao.budget_samples > 0) {
    trainer_alloc_usage use;
    rc = trainer_alloc_eval(n0, c, mt, P, &ao, extra, &use, err);
    if (rc) grpo_error_prefix(err, "eval.adaptive");
  }
  for (int i = 0; !rc && i < n_mine; i++) {
    int p = ps[i].problem;
    ps[i].n_adaptive = ps[i].usable ? pilot + extra[p] : 0;
    want[i] = ps[i].usable ? (ps[i].n_adaptive > n ? ps[i].n_adaptive : n) : 0;
  }
  free(loc);
  free(n0);
  free(c);
  free(extra);
  free(mt);
  return rc;
}

/* ---- PRM-guided search ------------------------------------------------------------- */

struct trainer_eval_search {
  trainer_session *s;
  model_prm *prm;
  rollout_search_options so;
  const char *stops[1];
  rollout_engine_options base;
  rollout_search_engine_proposer ep;
  rollout_search_proposer prop;
  rollout_search_prm_scorer psc;
  rollout_search_scorer scorer;
  int have_ep, have_psc;
  int32_t sep_id;
  int32_t strip[16];
  int n_strip;
  model_ids prm_prompt;
  int by_difficulty;
  rollout_search_setting table[3];
};

void trainer_eval_search_close(trainer_eval_search *x) {
  if (!x) return;
  if (x->have_ep) rollout_search_engine_proposer_free(&x->ep);
  if (x->have_psc) rollout_search_prm_scorer_free(&x->psc);
  model_prm_free(x->prm);
  model_ids_free(&x->prm_prompt);
  free(x);
}

int trainer_eval_search_open(trainer_eval_search **out, trainer_session *s, grpo_error *err) {
  const grpo_config *c = s->cfg;
  *out = NULL;
  if (c->eval.search == GRPO_CFG_SEARCH_NONE) return GRPO_OK;
  if (!c->eval.prm_path[0]) return GRPO_FAIL(err, GRPO_EINVAL, "eval.search needs eval.prm_path (a PRM directory)");
  if (c->rollout.parallel_threads)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "eval.search does not combine with rollout.parallel_threads");
  trainer_eval_search *x = calloc(1, sizeof *x);
  if (!x) return GRPO_FAIL(err, GRPO_ENOMEM, "eval.search: out of memory");
  x->s = s;
  model_params bb;
  model_prm_head head;
  memset(&bb, 0, sizeof bb);
  memset(&head, 0, sizeof head);
  int rc = ckpt_hf_load_prm(c->eval.prm_path, &bb, &head, err);
  if (!rc) {
    rc = model_prm_create(&x->prm, &bb, &head, s->be, (int)c->eval.prm_max_tokens, err);
    if (rc) {
      model_params_free(&bb);
      model_prm_head_free(&head);
    }
  }
  if (rc) grpo_error_prefix(err, "eval.prm_path");
  /* the PRM reads the policy's token ids as they are */
  if (!rc && model_prm_config(x->prm)->vocab < model_tokenizer_n_ids(s->tok))
    rc = GRPO_FAIL(err, GRPO_EINVAL,
                   "eval.prm_path: the PRM's vocabulary (%d) does not cover the policy tokenizer (%d ids); the two "
                   "must share a tokenizer", model_prm_config(x->prm)->vocab, model_tokenizer_n_ids(s->tok));
  int32_t sep[4];
  if (!rc && trainer_encode_text(s->tok, c->eval.prm_step_token, sep, 4) != 1)
    rc = GRPO_FAIL(err, GRPO_EINVAL, "eval.prm_step_token \"%s\" is not one token of the tokenizer",
                   c->eval.prm_step_token);
  x->sep_id = sep[0];
  if (!rc) {
    x->n_strip = trainer_encode_text(s->tok, c->eval.step_separator, x->strip, 16);
    if (x->n_strip < 1)
      rc = GRPO_FAIL(err, GRPO_EINVAL, "eval.step_separator must be 1 to 16 tokens");
  }
  if (!rc) {
    static const rollout_search_strategy strat[] = {ROLLOUT_SEARCH_BON, ROLLOUT_SEARCH_BON, ROLLOUT_SEARCH_BEAM,
                                                    ROLLOUT_SEARCH_DVTS};
    x->so.strategy = strat[c->eval.search];
    x->so.n = (int)c->eval.search_n;
    x->so.beam_width = (int)c->eval.beam_width;
    x->so.max_steps = (int)c->eval.search_max_steps;
    x->so.max_step_tokens = (int)c->eval.search_max_step_tokens;
    x->so.token_budget = (long)c->eval.search_token_budget;
    x->so.aggregation = c->eval.prm_aggregation == GRPO_CFG_PRM_MIN    ? ROLLOUT_PRM_MIN
                        : c->eval.prm_aggregation == GRPO_CFG_PRM_PROD ? ROLLOUT_PRM_PROD
                                                                       : ROLLOUT_PRM_LAST;
    rc = rollout_search_options_check(&x->so, err);
    if (rc) grpo_error_prefix(err, "eval");
  }
  if (!rc && c->eval.search_by_difficulty) {
    /* Snell et al.: beam search pays on hard problems, best-of-N on easy
     * ones; DVTS in between. Hard problems get 1.5x the budget, easy 0.5x. */
    long b = x->so.token_budget;
    x->by_difficulty = 1;
    x->table[0] = (rollout_search_setting){1.0f / 3, ROLLOUT_SEARCH_BEAM, x->so.n, x->so.beam_width, b + b / 2};
    x->table[1] = (rollout_search_setting){2.0f / 3, ROLLOUT_SEARCH_DVTS, x->so.n, x->so.beam_width, b};
    x->table[2] = (rollout_search_setting){1.0f, ROLLOUT_SEARCH_BON, x->so.n, x->so.beam_width, b / 2 > 0 ? b / 2 : 1};
  }
  if (!rc && x->so.n > s->policy.n_slots)
    rc = GRPO_FAIL(err, GRPO_EINVAL, "eval.search_n (%d) is above rollout.max_batch_size (%d)", x->so.n,
                   s->policy.n_slots);
  if (!rc) {
    trainer_session_engine_options(s, (uint64_t)c->seed, 0, &x->base);
    x->base.sampling.temperature = (float)c->eval.temperature;
    x->base.sampling.top_p = (float)c->eval.top_p;
    memset(&x->base.budget, 0, sizeof x->base.budget);
    x->stops[0] = c->eval.step_separator;
    x->base.stop_strings = x->stops;
    x->base.n_stop_strings = 1;
    rc = rollout_search_engine_proposer_init(&x->ep, &x->prop, s->engine, s->max_len, &x->base, c->eval.final_marker,
                                             x->so.n, x->so.max_step_tokens, err);
    x->have_ep = rc == GRPO_OK;
  }
  if (!rc) {
    rc = rollout_search_prm_scorer_init(&x->psc, &x->scorer, x->prm, x->sep_id, NULL, 0, x->strip, x->n_strip,
                                        x->so.max_steps, err);
    x->have_psc = rc == GRPO_OK;
  }
  if (rc) {
    trainer_eval_search_close(x);
    return rc;
  }
  *out = x;
  return GRPO_OK;
}

/* The PRM's input before the steps: its system message, the question and the
 * assistant header, in the policy's chat template (Qwen2.5-Math-PRM's). */
static int prm_prompt(trainer_eval_search *x, const char *question, grpo_error *err) {
  trainer_session *s = x->s;
  const grpo_config *c = s->cfg;
  model_text text = {0};
  int rc;
  x->prm_prompt.n = 0;
  if (s->chat.kind == MODEL_CHAT_RAW) {
    size_t len = strlen(c->eval.prm_system_prompt) + strlen(question) + 5;
    char *t = malloc(len);
    if (!t) return GRPO_FAIL(err, GRPO_ENOMEM, "eval.search: out of memory");
    snprintf(t, len, "%s\n\n%s\n\n", c->eval.prm_system_prompt, question);
    rc = model_tokenizer_encode(s->tok, t, strlen(t), &x->prm_prompt, err);
    free(t);
    return rc;
  }
  model_chat_message msgs[2] = {{"system", c->eval.prm_system_prompt}, {"user", question}};
  rc = model_chat_render(&s->chat, msgs, 2, 1, &text, err);
  if (!rc) rc = model_tokenizer_encode(s->tok, text.s ? text.s : "", text.n, &x->prm_prompt, err);
  model_text_free(&text);
  return rc;
}

/* Searches one problem and records the chosen answer (tokens = every token
 * the search proposed, its compute). */
static int pilot_agreement(const problem_state *ps, grpo_error *err);

static int search_problem(trainer_eval_search *x, const trainer_eval_set *set, const problem_state *ps,
                          char **tbuf, size_t *tcap, eval_buffers *b, grpo_error *err) {
  const int problem = ps->problem;
  const model_ids *pid = &ps->pid;
  const trainer_eval_item *it = &set->items[problem];
  rollout_search_options so = x->so;
  int rc = GRPO_OK;
  if (x->by_difficulty && ps->n > 0) {
    /* difficulty from the agreement of the problem's samples (no gold) */
    int ag = pilot_agreement(ps, err);
    if (ag < 0) return -ag;
    rc = rollout_search_pick(x->table, 3, (float)ag / (float)ps->n, &so, err);
    if (!rc) rc = rollout_search_options_check(&so, err);
    if (rc) return grpo_error_prefix(err, "eval.search_by_difficulty");
  }
  rc = prm_prompt(x, it->question, err);
  if (rc) return rc;
  x->psc.prm_prompt = x->prm_prompt.ids;
  x->psc.n_prm_prompt = (int)x->prm_prompt.n;
  x->ep.base.step = it->index; /* no two problems share sampling keys */
  rollout_search_result res;
  memset(&res, 0, sizeof res);
  rc = rollout_search_run(&so, &x->prop, &x->scorer, pid->ids, (int)pid->n, &res, err);
  sample_out out = {0};
  if (!rc)
    rc = score_response(x->s, it->gold, res.ids, res.n, NULL, 0, !res.complete,
                        res.complete ? ROLLOUT_FINISH_STOP : ROLLOUT_FINISH_LENGTH, tbuf, tcap, NULL, &out, err);
  if (!rc) {
    out.prm_score = res.score;
    out.tokens = (int)res.tokens_spent;
    out.critical = (int)res.tokens_spent;
    out.strategy = rollout_search_strategy_name(so.strategy);
    rc = emit_problem(set, problem, &out, 1, TRAINER_EVAL_SEARCH, 1, 0, b, err);
  }
  free(out.text);
  rollout_search_result_free(&res);
  if (rc) grpo_error_prefix(err, "eval.search");
  return rc;
}

int trainer_eval_run(trainer_session *s, MPI_Comm comm, const trainer_eval_set *set,
                     const trainer_eval_options *opt, trainer_eval_result *res, grpo_error *err) {
  const grpo_config *c = s->cfg;
  int rank, world;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  memset(res, 0, sizeof *res);
  const int n = opt->n_samples > 0 ? opt->n_samples : 1;
  const int revise = opt->revise_rounds < TRAINER_EVAL_MAX_REVISE ? opt->revise_rounds : TRAINER_EVAL_MAX_REVISE;
  const int adaptive = opt->adaptive && opt->adaptive_pilot > 0 && opt->adaptive_pilot < n;
  sampler_ctx x = {0};
  x.s = s;
  x.set = set;
  x.parallel = c->rollout.parallel_threads != 0;
  trainer_session_engine_options(s, opt->seed, 0, &x.eo);
  x.eo.sampling.temperature = opt->temperature;
  if (opt->top_p > 0) x.eo.sampling.top_p = opt->top_p;
  trainer_session_tw_options(s, &x.two);
  const int max_new = x.eo.max_new_tokens;
  x.cap = (int)c->rollout.max_batch_size;
  if (x.cap < n) x.cap = n;
  x.groups = calloc((size_t)x.cap, sizeof *x.groups);
  x.gprob = calloc((size_t)x.cap, sizeof *x.gprob);
  x.outs = calloc((size_t)x.cap, sizeof *x.outs);
  x.tok = malloc(sizeof(int32_t) * (size_t)x.cap * (size_t)max_new);
  x.lps = malloc(sizeof(float) * (size_t)x.cap * (size_t)max_new);
  x.trajs = x.parallel ? calloc((size_t)x.cap, sizeof *x.trajs) : NULL;
  x.offs = malloc(sizeof(int32_t) * (size_t)(s->max_len + 1));
  int n_mine = set->n > rank ? (set->n - rank + world - 1) / world : 0;
  problem_state *ps = calloc((size_t)n_mine + 1, sizeof *ps);
  problem_state **pp = calloc((size_t)n_mine + 1, sizeof *pp);
  int *want = calloc((size_t)n_mine + 1, sizeof *want);
  eval_buffers b = {0};
  int rc = GRPO_OK;
  if (!x.groups || !x.gprob || !x.outs || !x.tok || !x.lps || (x.parallel && !x.trajs) || !x.offs || !ps || !pp ||
      !want)
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory for %d samples in flight", x.cap);
  for (int i = 0; !rc && i < x.cap; i++) {
    x.outs[i].ids = x.tok + (size_t)i * max_new;
    x.outs[i].logprobs = x.lps + (size_t)i * max_new;
  }
  /* prompts */
  long too_long = 0, first_long = -1;
  for (int i = 0; !rc && i < n_mine; i++) {
    ps[i].problem = rank + i * world;
    pp[i] = &ps[i];
    rc = trainer_session_prompt(s, set->items[ps[i].problem].question, &ps[i].pid, err);
    ps[i].usable = !rc && (long)ps[i].pid.n <= c->data.max_prompt_length && (int)ps[i].pid.n < s->max_len;
    if (!rc && !ps[i].usable && !too_long++) first_long = (long)set->items[ps[i].problem].index;
  }
  /* samples: the pilot and the allocation first when adaptive */
  for (int i = 0; i < n_mine; i++) want[i] = adaptive ? opt->adaptive_pilot : n;
  if (!rc) rc = draw_samples(&x, pp, n_mine, want, err);
  int bad = rc != GRPO_OK, any_bad = 0;
  if (adaptive) {
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, comm);
    if (!any_bad) rc = plan_adaptive(comm, set, opt, max_new, ps, n_mine, want, err);
    else if (!rc) rc = GRPO_FAIL(err, GRPO_EINVAL, "eval %s: another rank failed", set->name);
    if (!rc) rc = draw_samples(&x, pp, n_mine, want, err);
  }
  for (int i = 0; !rc && i < n_mine; i++)
    if (ps[i].usable) rc = emit_problem(set, ps[i].problem, ps[i].so, ps[i].n, TRAINER_EVAL_SAMPLES, n,
                                        adaptive ? ps[i].n_adaptive : 0, &b, err);
  /* PRM-guided search: one answer per problem */
  for (int i = 0; !rc && opt->search && i < n_mine; i++)
    if (ps[i].usable) rc = search_problem(opt->search, set, &ps[i], &x.tbuf, &x.tcap, &b, err);
  /* revise rounds: review each of the first n answers in a second turn */
  for (int round = 1; !rc && round <= revise; round++)
    rc = revise_round(&x, pp, n_mine, n, round, opt->revise_prompt, &b, err);
  long skipped[2] = {too_long, first_long < 0 ? (long)set->n : first_long};
  MPI_Allreduce(MPI_IN_PLACE, &skipped[0], 1, MPI_LONG, MPI_SUM, comm);
  MPI_Allreduce(MPI_IN_PLACE, &skipped[1], 1, MPI_LONG, MPI_MIN, comm);
  if (rank == 0 && skipped[0])
    GRPO_WARN("eval %s: %ld of %d problems skipped (scored wrong): prompt over data.max_prompt_length or the "
              "model's length (first: problem %ld)", set->name, skipped[0], set->n, skipped[1]);
  trainer_eval_record *all = NULL;
  size_t n_all = 0;
  /* every rank takes part in the gathers even after a local error */
  bad = rc != GRPO_OK;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, comm);
  if (any_bad && !rc) rc = GRPO_FAIL(err, GRPO_EINVAL, "eval %s: another rank failed", set->name);
  if (!any_bad) rc = gather(comm, &b, rank == 0 ? opt->samples : NULL, &all, &n_all, err);
  if (!rc) rc = trainer_eval_summarize(all, n_all, set->n, opt->ks, opt->n_ks, TRAINER_EVAL_SAMPLES, &res->samples, err);
  for (int r = 1; !rc && r <= revise; r++)
    rc = trainer_eval_summarize(all, n_all, set->n, opt->ks, opt->n_ks, r, &res->revise[r - 1], err);
  res->n_revise = revise;
  if (!rc && adaptive) {
    res->has_adaptive = 1;
    rc = trainer_eval_summarize(all, n_all, set->n, opt->ks, opt->n_ks, TRAINER_EVAL_ADAPTIVE, &res->adaptive, err);
  }
  if (!rc && opt->search) {
    res->has_search = 1;
    rc = trainer_eval_summarize(all, n_all, set->n, opt->ks, opt->n_ks, TRAINER_EVAL_SEARCH, &res->search, err);
  }
  free(all);
  free(b.recs);
  free(b.lines);
  free(b.text);
  for (int i = 0; i < n_mine; i++) {
    model_ids_free(&ps[i].pid);
    for (int j = 0; j < ps[i].n; j++) free(ps[i].so[j].text);
    free(ps[i].so);
  }
  free(ps);
  free(pp);
  free(want);
  free(x.groups);
  free(x.gprob);
  free(x.outs);
  free(x.tok);
  free(x.lps);
  free(x.trajs);
  free(x.offs);
  free(x.tbuf);
  return rc;
}

/* ---- grpo eval ------------------------------------------------------------------- */

int trainer_eval_benchmarks(const grpo_config *c, MPI_Comm comm, const char *const *sets, int n_sets,
                            grpo_error *err) {
  int rank, world;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  grpo_log_set_rank(rank, world);
  if (!sets) {
    sets = (const char *const *)c->eval.sets.items;
    n_sets = c->eval.sets.n;
  }
  if (n_sets <= 0) return GRPO_FAIL(err, GRPO_EINVAL, "eval: no sets (give --sets or eval.sets)");
  int ks[TRAINER_EVAL_MAX_KS], n_ks = 0;
  int rc = trainer_eval_parse_ks(c->eval.ks, ks, TRAINER_EVAL_MAX_KS, &n_ks, err);
  if (rc) return grpo_error_prefix(err, "eval.ks");
  if (c->eval.adaptive && c->eval.adaptive_pilot >= c->eval.num_samples)
    return GRPO_FAIL(err, GRPO_EINVAL, "eval.adaptive_pilot (%ld) must be below eval.num_samples (%ld)",
                     (long)c->eval.adaptive_pilot, (long)c->eval.num_samples);
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
  trainer_eval_search *search = NULL;
  if (!rc) {
    rc = trainer_session_open(&s, c, 0, err);
    have_s = rc == GRPO_OK;
  }
  if (!rc) rc = trainer_eval_search_open(&search, &s, err);
  FILE *samples = NULL;
  const int per_set = 3 + TRAINER_EVAL_MAX_REVISE;
  trainer_eval_result *res = calloc((size_t)n_es + 1, sizeof *res);
  trainer_eval_stats *rows = calloc((size_t)n_es * per_set + 1, sizeof *rows);
  const char **names = calloc((size_t)n_es * per_set + 1, sizeof *names);
  char (*labels)[96] = calloc((size_t)n_es * per_set + 1, sizeof *labels);
  if (!rc && (!res || !rows || !names || !labels)) rc = GRPO_FAIL(err, GRPO_ENOMEM, "eval: out of memory");
  if (!rc && rank == 0) {
    rc = grpo_mkdirs(out_dir, err);
    snprintf(path, sizeof path, "%s/samples.jsonl", out_dir);
    if (!rc && !(samples = fopen(path, "w")))
      rc = GRPO_FAIL(err, GRPO_EIO, "cannot write %s: %s", path, strerror(errno));
  }
  /* every rank must agree before the collectives run */
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
  eo.adaptive = c->eval.adaptive;
  eo.adaptive_pilot = (int)c->eval.adaptive_pilot;
  eo.adaptive_objective = c->eval.adaptive_objective == GRPO_CFG_ALLOC_ANY_CORRECT      ? TRAINER_ALLOC_ANY_CORRECT
                          : c->eval.adaptive_objective == GRPO_CFG_ALLOC_GROUP_VARIANCE ? TRAINER_ALLOC_GROUP_VARIANCE
                                                                                        : TRAINER_ALLOC_ESTIMATE;
  eo.adaptive_token_budget = (long)c->eval.adaptive_token_budget;
  eo.adaptive_oracle = c->eval.adaptive_oracle;
  eo.search = search;
  eo.samples = samples;
  int n_rows = 0;
  for (int i = 0; !rc && i < n_es; i++) {
    if (rank == 0) GRPO_INFO("eval %s: %d problems x %d samples", es[i].name, es[i].n, eo.n_samples);
    rc = trainer_eval_run(&s, comm, &es[i], &eo, &res[i], err);
    if (rc) break;
    snprintf(labels[n_rows], sizeof labels[0], "%s", es[i].name);
    rows[n_rows++] = res[i].samples;
    for (int r = 0; r < res[i].n_revise; r++) {
      snprintf(labels[n_rows], sizeof labels[0], "%s/revise%d", es[i].name, r + 1);
      rows[n_rows++] = res[i].revise[r];
    }
    if (res[i].has_adaptive) {
      snprintf(labels[n_rows], sizeof labels[0], "%s/adaptive", es[i].name);
      rows[n_rows++] = res[i].adaptive;
    }
    if (res[i].has_search) {
      snprintf(labels[n_rows], sizeof labels[0], "%s/%s", es[i].name,
               c->eval.search == GRPO_CFG_SEARCH_DVTS ? "dvts" : c->eval.search == GRPO_CFG_SEARCH_BEAM ? "beam" : "prm_bon");
      rows[n_rows++] = res[i].search;
    }
  }
  for (int i = 0; i < n_rows; i++) names[i] = labels[i];
  if (!rc && rank == 0) {
    trainer_eval_print_table(stdout, names, rows, n_rows);
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
      for (int i = 0; i < n_rows; i++) {
        cJSON *nm = cJSON_CreateString(names[i]);
        char *nms = nm ? cJSON_PrintUnformatted(nm) : NULL;
        fprintf(f, "%s\n  %s: ", i ? "," : "", nms ? nms : "\"?\"");
        cJSON_free(nms);
        cJSON_Delete(nm);
        trainer_eval_write_json(f, &rows[i]);
      }
      fprintf(f, "\n}}\n");
      if (fclose(f) || rename(tmp, path))
        rc = GRPO_FAIL(err, GRPO_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    if (!rc) GRPO_INFO("eval: wrote %s and %s/samples.jsonl", path, out_dir);
  }
  if (samples) fclose(samples);
  free(res);
  free(rows);
  free(names);
  free(labels);
  trainer_eval_search_close(search);
  if (have_s) trainer_session_close(&s);
  trainer_eval_sets_close(es, n_es);
  return rc;
}
