#include "rollout/engine.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"

#define TAIL_CAP 256
#define STOP_MAX 64

typedef struct slot_state {
  int active;
  int out;            /* index into outs */
  int group;
  int32_t pending;    /* token to feed at the next step */
  int32_t *history;   /* prompt + generated, for the repetition penalty */
  int n_hist;
  int cached;         /* tokens in the KV cache */
  char tail[TAIL_CAP];/* last bytes of the text, for stop strings */
  int tail_len;
} slot_state;

struct rollout_engine {
  rollout_policy pol;
  slot_state *slots;
  int32_t *history_mem;
  float *logits;      /* [n_slots, vocab] */
  int *step_slots;
  int32_t *step_ids;
  rollout_sampler_ws *ws;  /* one per OpenMP thread */
  int n_ws;
};

int rollout_engine_create(rollout_engine **out, const rollout_policy *policy, grpo_error *err) {
  *out = NULL;
  if (policy->n_slots <= 0 || policy->vocab <= 0 || policy->max_len <= 1)
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout engine: bad policy shape (slots %d, vocab %d, len %d)",
                     policy->n_slots, policy->vocab, policy->max_len);
  rollout_engine *e = calloc(1, sizeof *e);
  if (!e) return GRPO_FAIL(err, GRPO_ENOMEM, "rollout engine: out of memory");
  e->pol = *policy;
  size_t S = (size_t)policy->n_slots, V = (size_t)policy->vocab;
  e->slots = calloc(S, sizeof *e->slots);
  e->history_mem = malloc(S * (size_t)policy->max_len * sizeof(int32_t));
  e->logits = malloc(S * V * sizeof(float));
  e->step_slots = malloc(S * sizeof(int));
  e->step_ids = malloc(S * sizeof(int32_t));
  e->n_ws = omp_get_max_threads();
  e->ws = calloc((size_t)e->n_ws, sizeof *e->ws);
  int rc = (e->slots && e->history_mem && e->logits && e->step_slots && e->step_ids && e->ws)
               ? GRPO_OK
               : GRPO_FAIL(err, GRPO_ENOMEM, "rollout engine: out of memory for %d slots", policy->n_slots);
  for (int i = 0; !rc && i < e->n_ws; i++) rc = rollout_sampler_ws_init(&e->ws[i], policy->vocab, err);
  if (rc) {
    rollout_engine_free(e);
    return rc;
  }
  for (size_t s = 0; s < S; s++) e->slots[s].history = e->history_mem + s * (size_t)policy->max_len;
  *out = e;
  return GRPO_OK;
}

void rollout_engine_free(rollout_engine *e) {
  if (!e) return;
  for (int i = 0; e->ws && i < e->n_ws; i++) rollout_sampler_ws_free(&e->ws[i]);
  free(e->ws);
  free(e->slots);
  free(e->history_mem);
  free(e->logits);
  free(e->step_slots);
  free(e->step_ids);
  free(e);
}

/* Appends the token's text and reports whether a stop string now ends in it. */
static int hits_stop_string(slot_state *s, const rollout_engine_options *opt, int32_t tok) {
  if (opt->n_stop_strings == 0 || !opt->piece) return 0;
  char piece[128];
  int n = opt->piece(opt->piece_ctx, tok, piece, (int)sizeof piece);
  if (n <= 0) return 0;
  if (n > TAIL_CAP / 2) n = TAIL_CAP / 2;
  if (s->tail_len + n > TAIL_CAP) { /* keep the last STOP_MAX bytes */
    int keep = s->tail_len < STOP_MAX ? s->tail_len : STOP_MAX;
    memmove(s->tail, s->tail + s->tail_len - keep, (size_t)keep);
    s->tail_len = keep;
  }
  int before = s->tail_len;
  memcpy(s->tail + s->tail_len, piece, (size_t)n);
  s->tail_len += n;
  for (int k = 0; k < opt->n_stop_strings; k++) {
    int L = (int)strlen(opt->stop_strings[k]);
    if (L == 0 || L > s->tail_len) continue;
    /* only matches that end inside the new bytes */
    int first = before - L + 1;
    if (first < 0) first = 0;
    for (int at = first; at + L <= s->tail_len; at++)
      if (memcmp(s->tail + at, opt->stop_strings[k], (size_t)L) == 0) return 1;
  }
  return 0;
}

/* Records a sampled token; returns 1 when the sample is finished. */
static int take_token(rollout_engine *e, slot_state *s, rollout_output *o,
                      const rollout_engine_options *opt, const rollout_sample_result *r) {
  o->ids[o->n] = r->token;
  o->logprobs[o->n] = r->logprob;
  if (o->sampler_logprobs) o->sampler_logprobs[o->n] = r->sampler_logprob;
  o->n++;
  s->history[s->n_hist++] = r->token;
  s->pending = r->token;
  for (int k = 0; k < opt->n_stop_ids; k++)
    if (r->token == opt->stop_ids[k]) {
      o->finish = ROLLOUT_FINISH_EOS;
      return 1;
    }
  if (hits_stop_string(s, opt, r->token)) {
    o->finish = ROLLOUT_FINISH_STOP;
    return 1;
  }
  /* feeding the pending token needs one more cache row */
  if (o->n >= opt->max_new_tokens || s->cached + 1 >= e->pol.max_len) {
    o->finish = ROLLOUT_FINISH_LENGTH;
    o->truncated = 1;
    return 1;
  }
  return 0;
}

static void sample_into(rollout_engine *e, slot_state *s, rollout_output *o,
                        const rollout_engine_options *opt, const float *logits, int vocab,
                        rollout_sampler_ws *ws) {
  rollout_sample_result r;
  double u = rollout_sampler_uniform(opt->seed, opt->step, o->prompt_index, o->sample_index,
                                     (uint32_t)o->n);
  rollout_sample(logits, vocab, &opt->sampling, s->history, s->n_hist, u, ws, &r);
  if (take_token(e, s, o, opt, &r)) s->active = 0;
}

int rollout_engine_generate(rollout_engine *e, const rollout_engine_options *opt,
                            const rollout_group *groups, int n_groups, rollout_output *outs,
                            rollout_engine_stats *stats, grpo_error *err) {
  rollout_engine_stats local = {0};
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  double t0 = grpo_now_seconds();
  const rollout_policy *pol = &e->pol;
  int rc = rollout_sampling_validate(&opt->sampling, err);
  if (rc) return rc;
  if (opt->max_new_tokens <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.max_completion_length must be > 0, got %d",
                     opt->max_new_tokens);
  for (int k = 0; k < opt->n_stop_strings; k++)
    if (strlen(opt->stop_strings[k]) > STOP_MAX)
      return GRPO_FAIL(err, GRPO_EINVAL, "stop string %d is longer than %d bytes", k, STOP_MAX);
  const int vocab = opt->vocab_limit > 0 && opt->vocab_limit < pol->vocab ? opt->vocab_limit : pol->vocab;
  int total = 0;
  for (int g = 0; g < n_groups; g++) {
    if (groups[g].n_prompt <= 0 || groups[g].n_prompt >= pol->max_len)
      return GRPO_FAIL(err, GRPO_EINVAL, "prompt %u has %d tokens; the limit is %d",
                       groups[g].prompt_index, groups[g].n_prompt, pol->max_len - 1);
    for (int j = 0; j < groups[g].n_samples; j++) {
      rollout_output *o = &outs[total + j];
      o->n = 0;
      o->finish = ROLLOUT_FINISH_LENGTH;
      o->truncated = 0;
      o->prompt_index = groups[g].prompt_index;
      o->sample_index = (uint32_t)j;
    }
    total += groups[g].n_samples;
  }
  for (int s = 0; s < pol->n_slots; s++) e->slots[s].active = 0;

  int next_group = 0, next_sample = 0, next_out = 0, active = 0;
  while (next_group < n_groups || active > 0) {
    /* ---- admit: one prefill per (part of a) group -------------------------- */
    while (next_group < n_groups && active < pol->n_slots) {
      const rollout_group *g = &groups[next_group];
      int free_n = pol->n_slots - active, want = g->n_samples - next_sample;
      int k = want < free_n ? want : free_n;
      int ids[1024];
      if (k > (int)(sizeof ids / sizeof ids[0])) k = (int)(sizeof ids / sizeof ids[0]);
      int n_free = 0;
      for (int s = 0; s < pol->n_slots && n_free < k; s++)
        if (!e->slots[s].active) ids[n_free++] = s;
      if ((rc = pol->reset(pol->ctx, ids[0], err))) return rc;
      if ((rc = pol->append(pol->ctx, ids[0], g->prompt, g->n_prompt, e->logits, err))) return rc;
      stats->prefills++;
      stats->prefill_tokens += g->n_prompt;
      if (k > 1 && (rc = pol->copy_prefix(pol->ctx, ids[0], ids + 1, k - 1, g->n_prompt, err)))
        return rc;
      for (int j = 0; j < k; j++) {
        slot_state *s = &e->slots[ids[j]];
        s->active = 1;
        s->out = next_out + j;
        s->group = next_group;
        memcpy(s->history, g->prompt, sizeof(int32_t) * (size_t)g->n_prompt);
        s->n_hist = g->n_prompt;
        s->cached = g->n_prompt;
        s->tail_len = 0;
        sample_into(e, s, &outs[s->out], opt, e->logits, vocab, &e->ws[0]);
        active += s->active;
      }
      next_out += k;
      next_sample += k;
      if (next_sample == g->n_samples) {
        next_group++;
        next_sample = 0;
      }
    }
    if (active == 0) continue;
    /* ---- one decode step for every active slot ---------------------------- */
    int n = 0;
    for (int s = 0; s < pol->n_slots; s++)
      if (e->slots[s].active) {
        e->step_slots[n] = s;
        e->step_ids[n] = e->slots[s].pending;
        n++;
      }
    if ((rc = pol->step(pol->ctx, n, e->step_slots, e->step_ids, e->logits, err))) return rc;
    stats->decode_steps++;
    stats->decode_tokens += n;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
      slot_state *s = &e->slots[e->step_slots[i]];
      s->cached++;
      sample_into(e, s, &outs[s->out], opt, e->logits + (size_t)i * pol->vocab, vocab,
                  &e->ws[omp_get_thread_num()]);
    }
    active = 0;
    for (int s = 0; s < pol->n_slots; s++) active += e->slots[s].active;
  }
  stats->seconds = grpo_now_seconds() - t0;
  return GRPO_OK;
}
