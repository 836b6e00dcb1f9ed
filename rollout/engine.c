#include "rollout/engine.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"

#define TAIL_CAP 256
#define STOP_MAX 64
#define TEXT_PER_TOKEN 16

/* A decoding stream bound to a KV-cache slot. */
typedef struct slot_state {
  int active;
  rollout_output *out;     /* where tokens go (a caller output, or the slot's own) */
  rollout_output own;      /* parallel mode: buffers of max_len entries */
  int max_new;
  uint32_t key_c0;         /* RNG token coordinate = key_c0 + emitted */
  int emitted;             /* tokens emitted, removed ones included (never decreases) */
  const char *const *stops;
  int n_stops;
  int32_t pending;         /* token to feed at the next step */
  int32_t *history;        /* context + generated, for the repetition penalty */
  int n_hist;
  int cached;              /* tokens in the KV cache */
  char tail[TAIL_CAP];     /* last bytes of the text, for stop strings */
  int tail_len;
  char *text;              /* parallel mode: the decoded text of the stream */
  int text_len;
  int keep_text;
  int traj, thread;        /* parallel mode: owner */
  int thinking;            /* budget forcing: the end of thinking is still to come */
  const int32_t *queue;    /* budget forcing: tokens to inject before sampling again */
  int n_queue;
  int rollback;            /* the policy's copy of the slot must be cut to `cached` */
} slot_state;

struct rollout_engine {
  rollout_policy pol;
  slot_state *slots;
  int32_t *history_mem, *own_ids, *scratch_ids;
  float *own_lp, *own_slp;
  char *text_mem;
  float *logits;           /* [n_slots, vocab] */
  int *step_slots;
  int32_t *step_ids;
  double *step_u;               /* [n_slots] draws of a step_sample step */
  grpo_sample_result *step_res; /* [n_slots] its results */
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
  size_t S = (size_t)policy->n_slots, V = (size_t)policy->vocab, L = (size_t)policy->max_len;
  e->slots = calloc(S, sizeof *e->slots);
  e->history_mem = malloc(S * L * sizeof(int32_t));
  e->own_ids = malloc(S * L * sizeof(int32_t));
  e->own_lp = malloc(S * L * sizeof(float));
  e->own_slp = malloc(S * L * sizeof(float));
  e->text_mem = malloc(S * L * TEXT_PER_TOKEN);
  e->scratch_ids = malloc(L * sizeof(int32_t));
  e->logits = malloc(S * V * sizeof(float));
  e->step_slots = malloc(S * sizeof(int));
  e->step_ids = malloc(S * sizeof(int32_t));
  e->step_u = malloc(S * sizeof(double));
  e->step_res = malloc(S * sizeof(grpo_sample_result));
  e->n_ws = omp_get_max_threads();
  e->ws = calloc((size_t)e->n_ws, sizeof *e->ws);
  int rc = (e->slots && e->history_mem && e->own_ids && e->own_lp && e->own_slp && e->text_mem &&
            e->scratch_ids && e->logits && e->step_slots && e->step_ids && e->step_u && e->step_res &&
            e->ws)
               ? GRPO_OK
               : GRPO_FAIL(err, GRPO_ENOMEM, "rollout engine: out of memory for %d slots", policy->n_slots);
  for (int i = 0; !rc && i < e->n_ws; i++) rc = rollout_sampler_ws_init(&e->ws[i], policy->vocab, err);
  if (rc) {
    rollout_engine_free(e);
    return rc;
  }
  for (size_t s = 0; s < S; s++) {
    slot_state *st = &e->slots[s];
    st->history = e->history_mem + s * L;
    st->own.ids = e->own_ids + s * L;
    st->own.logprobs = e->own_lp + s * L;
    st->own.sampler_logprobs = e->own_slp + s * L;
    st->text = e->text_mem + s * L * TEXT_PER_TOKEN;
  }
  *out = e;
  return GRPO_OK;
}

void rollout_engine_free(rollout_engine *e) {
  if (!e) return;
  for (int i = 0; e->ws && i < e->n_ws; i++) rollout_sampler_ws_free(&e->ws[i]);
  free(e->ws);
  free(e->slots);
  free(e->history_mem);
  free(e->own_ids);
  free(e->own_lp);
  free(e->own_slp);
  free(e->text_mem);
  free(e->scratch_ids);
  free(e->logits);
  free(e->step_slots);
  free(e->step_ids);
  free(e->step_u);
  free(e->step_res);
  free(e);
}

/* Appends n bytes to the tail; returns the tail length before them. */
static int tail_push(slot_state *s, const char *piece, int n) {
  if (s->tail_len + n > TAIL_CAP) { /* keep the last STOP_MAX bytes */
    int keep = s->tail_len < STOP_MAX ? s->tail_len : STOP_MAX;
    memmove(s->tail, s->tail + s->tail_len - keep, (size_t)keep);
    s->tail_len = keep;
  }
  int before = s->tail_len;
  memcpy(s->tail + s->tail_len, piece, (size_t)n);
  s->tail_len += n;
  return before;
}

/* Appends the token's text; reports whether a stop string now ends in it
 * (never for an injected token: `check` is 0). */
static int hits_stop_string(rollout_engine *e, slot_state *s, const rollout_engine_options *opt,
                            int32_t tok, int check) {
  if (!opt->piece || (s->n_stops == 0 && !s->keep_text)) return 0;
  char piece[128];
  int n = opt->piece(opt->piece_ctx, tok, piece, (int)sizeof piece);
  if (n <= 0) return 0;
  if (n > TAIL_CAP / 2) n = TAIL_CAP / 2;
  if (s->keep_text && s->text_len + n < e->pol.max_len * TEXT_PER_TOKEN) {
    memcpy(s->text + s->text_len, piece, (size_t)n);
    s->text_len += n;
    s->text[s->text_len] = '\0';
  }
  int before = tail_push(s, piece, n);
  if (!check) return 0;
  for (int k = 0; k < s->n_stops; k++) {
    int L = (int)strlen(s->stops[k]);
    if (L == 0 || L > s->tail_len) continue;
    int first = before - L + 1; /* only matches that end inside the new bytes */
    if (first < 0) first = 0;
    for (int at = first; at + L <= s->tail_len; at++)
      if (memcmp(s->tail + at, s->stops[k], (size_t)L) == 0) return 1;
  }
  return 0;
}

/* Tokens left the completion (a removed end of thinking): their text must
 * leave the stop-string tail too, so it is rebuilt from the last tokens. */
static void rebuild_tail(const rollout_engine_options *opt, slot_state *s) {
  s->tail_len = 0;
  if (!opt->piece || s->n_stops == 0) return;
  const rollout_output *o = s->out;
  char piece[128];
  int first = o->n, bytes = 0;
  while (first > 0 && bytes < STOP_MAX) {
    int n = opt->piece(opt->piece_ctx, o->ids[first - 1], piece, (int)sizeof piece);
    bytes += n > 0 ? n : 0;
    first--;
  }
  for (int t = first; t < o->n; t++) {
    int n = opt->piece(opt->piece_ctx, o->ids[t], piece, (int)sizeof piece);
    if (n <= 0) continue;
    if (n > TAIL_CAP / 2) n = TAIL_CAP / 2;
    tail_push(s, piece, n);
  }
}

static int budget_on(const rollout_engine_options *opt) {
  return opt->budget.min_think_tokens > 0 || opt->budget.max_think_tokens > 0;
}

/* Appends one token to the completion; it is the next one fed to the policy. */
static void emit(rollout_engine *e, slot_state *s, int32_t tok, float lp, float slp, int forced) {
  rollout_output *o = s->out;
  o->ids[o->n] = tok;
  o->logprobs[o->n] = lp;
  if (o->sampler_logprobs) o->sampler_logprobs[o->n] = slp;
  if (o->forced) o->forced[o->n] = (uint8_t)forced;
  o->n++;
  s->emitted++;
  if (s->n_hist < e->pol.max_len) s->history[s->n_hist++] = tok;
  s->pending = tok;
}

/* Ends the stream at a length limit; feeding the pending token needs one more cache row. */
static int hits_length(const rollout_engine *e, slot_state *s) {
  rollout_output *o = s->out;
  if (o->n < s->max_new && s->cached + 1 < e->pol.max_len) return 0;
  o->finish = ROLLOUT_FINISH_LENGTH;
  o->truncated = 1;
  s->active = 0;
  return 1;
}

/* Queues the forced end of thinking once the thinking budget is spent. */
static void maybe_force_end(slot_state *s, const rollout_budget_forcing *b) {
  if (!s->thinking || s->n_queue > 0 || b->max_think_tokens <= 0 || s->out->n < b->max_think_tokens)
    return;
  int own = b->n_force_end > 0;
  s->queue = own ? b->force_end : b->end_think;
  s->n_queue = own ? b->n_force_end : b->n_end_think;
  s->thinking = 0;
  s->out->end_forced = 1;
}

/* Emits the next queued token in place of a sample. */
static void inject_next(rollout_engine *e, slot_state *s, const rollout_engine_options *opt) {
  int32_t tok = *s->queue++;
  s->n_queue--;
  emit(e, s, tok, 0.0f, 0.0f, 1);
  hits_stop_string(e, s, opt, tok, 0);
  if (hits_length(e, s)) return;
  maybe_force_end(s, &opt->budget);
}

static int ends_thinking(const rollout_output *o, const rollout_budget_forcing *b) {
  return o->n >= b->n_end_think &&
         memcmp(o->ids + o->n - b->n_end_think, b->end_think, sizeof(int32_t) * (size_t)b->n_end_think) == 0;
}

/* The completion just ended its thinking early: swaps the delimiter for the
 * continuation when the budget asks for it and a sampled token fits after
 * it; reports whether it did. */
static int continue_thinking(rollout_engine *e, slot_state *s, const rollout_engine_options *opt) {
  const rollout_budget_forcing *b = &opt->budget;
  rollout_output *o = s->out;
  const int nd = b->n_end_think, nc = b->n_continuation;
  const int think = o->n - nd;
  /* the delimiter's last token is pending; the others are in the cache */
  const int cached = s->cached - (nd - 1);
  if (think >= b->min_think_tokens) return 0;
  if (b->max_continuations > 0 && o->n_continuations >= b->max_continuations) return 0;
  if (think + nc >= s->max_new || cached + nc >= e->pol.max_len) return 0;
  if (b->max_think_tokens > 0 && think + nc >= b->max_think_tokens) return 0;
  o->n = think;
  s->n_hist -= nd;
  if (cached != s->cached) {
    s->cached = cached;
    s->rollback = 1;
  }
  o->n_continuations++;
  rebuild_tail(opt, s);
  s->queue = b->continuation;
  s->n_queue = nc;
  inject_next(e, s, opt);
  return 1;
}

/* The draw for the stream's next token. */
static double next_draw(const rollout_engine_options *opt, const slot_state *s) {
  const rollout_output *o = s->out;
  return rollout_sampler_uniform(opt->seed, opt->step, o->prompt_index, o->sample_index,
                                 s->key_c0 + (uint32_t)s->emitted);
}

/* Takes a sampled token, or injects a queued one instead (the sample is then
 * ignored); marks the stream inactive when it ends. */
static void take_sample(rollout_engine *e, slot_state *s, const rollout_engine_options *opt,
                        const rollout_sample_result *r) {
  if (s->n_queue > 0) {
    inject_next(e, s, opt);
    return;
  }
  rollout_output *o = s->out;
  emit(e, s, r->token, r->logprob, r->sampler_logprob, 0);
  if (s->thinking && ends_thinking(o, &opt->budget)) {
    if (continue_thinking(e, s, opt)) return;
    s->thinking = 0;
  }
  for (int k = 0; k < opt->n_stop_ids; k++)
    if (r->token == opt->stop_ids[k]) {
      o->finish = ROLLOUT_FINISH_EOS;
      s->active = 0;
      return;
    }
  if (hits_stop_string(e, s, opt, r->token, 1)) {
    o->finish = ROLLOUT_FINISH_STOP;
    s->active = 0;
    return;
  }
  if (hits_length(e, s)) return;
  maybe_force_end(s, &opt->budget);
}

/* Draws the next token from a logits row on the host (or injects a queued
 * one). */
static void sample_into(rollout_engine *e, slot_state *s, const rollout_engine_options *opt,
                        const float *logits, int vocab, rollout_sampler_ws *ws) {
  if (s->n_queue > 0) {
    inject_next(e, s, opt);
    return;
  }
  rollout_sample_result r;
  rollout_sample(logits, vocab, &opt->sampling, s->history, s->n_hist, next_draw(opt, s), ws, &r);
  take_sample(e, s, opt, &r);
}

static void stream_begin(slot_state *s, rollout_output *out, int max_new, uint32_t key_c0,
                         const char *const *stops, int n_stops, const int32_t *context, int n_ctx,
                         int keep_text) {
  s->active = 1;
  s->out = out;
  s->max_new = max_new;
  s->key_c0 = key_c0;
  s->emitted = 0;
  s->thinking = 0;
  s->queue = NULL;
  s->n_queue = 0;
  s->rollback = 0;
  s->stops = stops;
  s->n_stops = n_stops;
  memcpy(s->history, context, sizeof(int32_t) * (size_t)n_ctx);
  s->n_hist = n_ctx;
  s->tail_len = 0;
  s->text_len = 0;
  s->keep_text = keep_text;
  s->text[0] = '\0';
}

/* One batched decode step over every active slot; returns a status. */
static int decode_step(rollout_engine *e, const rollout_engine_options *opt, int vocab,
                       rollout_engine_stats *stats, grpo_error *err) {
  const rollout_policy *pol = &e->pol;
  int n = 0, rc;
  for (int s = 0; s < pol->n_slots; s++) {
    slot_state *st = &e->slots[s];
    if (!st->active || !st->rollback) continue;
    if ((rc = pol->truncate(pol->ctx, s, st->cached, err))) return rc;
    st->rollback = 0;
  }
  for (int s = 0; s < pol->n_slots; s++)
    if (e->slots[s].active) {
      e->step_slots[n] = s;
      e->step_ids[n] = e->slots[s].pending;
      n++;
    }
  if (n == 0) return GRPO_OK;
  if (pol->step_sample && opt->sampling.repetition_penalty == 1.0f) {
    /* sampled where the logits are; the draws are the host path's */
    grpo_sample_params p;
    rollout_sampling_params(&opt->sampling, &p);
    for (int i = 0; i < n; i++) {
      const slot_state *s = &e->slots[e->step_slots[i]];
      e->step_u[i] = s->n_queue > 0 ? 0.0 : next_draw(opt, s);
    }
    rc = pol->step_sample(pol->ctx, n, e->step_slots, e->step_ids, vocab, &p, e->step_u,
                          e->step_res, err);
    if (rc) return rc;
    stats->decode_steps++;
    stats->decode_tokens += n;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
      slot_state *s = &e->slots[e->step_slots[i]];
      s->cached++;
      take_sample(e, s, opt, &e->step_res[i]);
    }
    return GRPO_OK;
  }
  rc = pol->step(pol->ctx, n, e->step_slots, e->step_ids, e->logits, err);
  if (rc) return rc;
  stats->decode_steps++;
  stats->decode_tokens += n;
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < n; i++) {
    slot_state *s = &e->slots[e->step_slots[i]];
    s->cached++;
    sample_into(e, s, opt, e->logits + (size_t)i * pol->vocab, vocab, &e->ws[omp_get_thread_num()]);
  }
  return GRPO_OK;
}

static int check_options(const rollout_engine *e, const rollout_engine_options *opt,
                         const rollout_group *groups, int n_groups, grpo_error *err) {
  int rc = rollout_sampling_validate(&opt->sampling, err);
  if (rc) return rc;
  if (opt->max_new_tokens <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.max_completion_length must be > 0, got %d",
                     opt->max_new_tokens);
  for (int k = 0; k < opt->n_stop_strings; k++)
    if (strlen(opt->stop_strings[k]) > STOP_MAX)
      return GRPO_FAIL(err, GRPO_EINVAL, "stop string %d is longer than %d bytes", k, STOP_MAX);
  if (opt->n_stop_strings > 0 && !opt->piece)
    return GRPO_FAIL(err, GRPO_EINVAL, "stop strings need a token-to-text callback");
  for (int g = 0; g < n_groups; g++)
    if (groups[g].n_prompt <= 0 || groups[g].n_prompt >= e->pol.max_len)
      return GRPO_FAIL(err, GRPO_EINVAL, "prompt %u has %d tokens; the limit is %d",
                       groups[g].prompt_index, groups[g].n_prompt, e->pol.max_len - 1);
  return GRPO_OK;
}

static int vocab_of(const rollout_engine *e, const rollout_engine_options *opt) {
  return opt->vocab_limit > 0 && opt->vocab_limit < e->pol.vocab ? opt->vocab_limit : e->pol.vocab;
}

static int check_ids(const int32_t *ids, int n, int vocab, const char *what, grpo_error *err) {
  if (n < 0 || (n > 0 && !ids))
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: bad token list (%d ids)", what, n);
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= vocab)
      return GRPO_FAIL(err, GRPO_EINVAL, "%s: token %d is %d, outside the vocabulary [0, %d)", what, i,
                       ids[i], vocab);
  return GRPO_OK;
}

/* Messages name the config keys the options come from (trainer/session.c). */
static int check_budget(const rollout_engine *e, const rollout_engine_options *opt, int vocab,
                        grpo_error *err) {
  const rollout_budget_forcing *b = &opt->budget;
  if (b->min_think_tokens < 0 || b->max_think_tokens < 0 || b->max_continuations < 0)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "rollout.budget_min_think_tokens (%d), rollout.budget_max_think_tokens (%d) and "
                     "rollout.budget_max_continuations (%d) must be >= 0",
                     b->min_think_tokens, b->max_think_tokens, b->max_continuations);
  if (!budget_on(opt)) return GRPO_OK;
  int rc;
  if ((rc = check_ids(b->end_think, b->n_end_think, vocab, "rollout.end_think", err)) ||
      (rc = check_ids(b->continuation, b->n_continuation, vocab, "rollout.budget_continuation", err)) ||
      (rc = check_ids(b->force_end, b->n_force_end, vocab, "budget forcing end ids", err)))
    return rc;
  if (b->n_end_think == 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "budget forcing needs the end-of-thinking tokens (rollout.end_think is empty)");
  if (b->min_think_tokens > 0 && b->n_continuation == 0)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "rollout.budget_min_think_tokens = %d needs a continuation (rollout.budget_continuation is empty)",
                     b->min_think_tokens);
  if (b->max_think_tokens > 0 && b->min_think_tokens > b->max_think_tokens)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "rollout.budget_min_think_tokens (%d) exceeds rollout.budget_max_think_tokens (%d)",
                     b->min_think_tokens, b->max_think_tokens);
  if (b->min_think_tokens > 0 && b->n_end_think > 1 && !e->pol.truncate)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "budget forcing: rollout.end_think is %d tokens and this policy cannot roll its KV "
                     "cache back to remove them", b->n_end_think);
  return GRPO_OK;
}

/* Prefills a prompt once into free slots ids[0..k) (KV copied); the logits
 * of its last token are left in e->logits. */
static int prefill_shared(rollout_engine *e, const rollout_group *g, const int *ids, int k,
                          rollout_engine_stats *stats, grpo_error *err) {
  const rollout_policy *pol = &e->pol;
  int rc = pol->reset(pol->ctx, ids[0], err);
  if (!rc) rc = pol->append(pol->ctx, ids[0], g->prompt, g->n_prompt, e->logits, err);
  if (rc) return rc;
  stats->prefills++;
  stats->prefill_tokens += g->n_prompt;
  if (k > 1 && (rc = pol->copy_prefix(pol->ctx, ids[0], ids + 1, k - 1, g->n_prompt, err))) return rc;
  for (int j = 0; j < k; j++) e->slots[ids[j]].cached = g->n_prompt;
  return GRPO_OK;
}

static int free_slots(const rollout_engine *e, int *ids, int want) {
  int n = 0;
  for (int s = 0; s < e->pol.n_slots && n < want; s++)
    if (!e->slots[s].active) ids[n++] = s;
  return n;
}

int rollout_engine_generate(rollout_engine *e, const rollout_engine_options *opt,
                            const rollout_group *groups, int n_groups, rollout_output *outs,
                            rollout_engine_stats *stats, grpo_error *err) {
  rollout_engine_stats local = {0};
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  double t0 = grpo_now_seconds();
  const rollout_policy *pol = &e->pol;
  int rc = check_options(e, opt, groups, n_groups, err);
  if (rc) return rc;
  const int vocab = vocab_of(e, opt);
  if ((rc = check_budget(e, opt, vocab, err))) return rc;
  int total = 0;
  for (int g = 0; g < n_groups; g++) {
    for (int j = 0; j < groups[g].n_samples; j++) {
      rollout_output *o = &outs[total + j];
      o->n = 0;
      o->finish = ROLLOUT_FINISH_LENGTH;
      o->truncated = 0;
      o->n_continuations = 0;
      o->end_forced = 0;
      o->prompt_index = groups[g].prompt_index;
      o->sample_index = groups[g].first_sample + (uint32_t)j;
    }
    total += groups[g].n_samples;
  }
  for (int s = 0; s < pol->n_slots; s++) e->slots[s].active = 0;
  int *ids = e->step_slots; /* free-slot list during admission */

  int next_group = 0, next_sample = 0, next_out = 0;
  for (;;) {
    /* admit: one prefill per (part of a) group */
    while (next_group < n_groups) {
      const rollout_group *g = &groups[next_group];
      int k = free_slots(e, ids, g->n_samples - next_sample);
      if (k == 0) break;
      if ((rc = prefill_shared(e, g, ids, k, stats, err))) return rc;
      for (int j = 0; j < k; j++) {
        slot_state *s = &e->slots[ids[j]];
        stream_begin(s, &outs[next_out + j], opt->max_new_tokens, 0, opt->stop_strings,
                     opt->n_stop_strings, g->prompt, g->n_prompt, 0);
        s->thinking = budget_on(opt);
        sample_into(e, s, opt, e->logits, vocab, &e->ws[0]);
      }
      next_out += k;
      next_sample += k;
      if (next_sample == g->n_samples) {
        next_group++;
        next_sample = 0;
      }
    }
    int active = 0;
    for (int s = 0; s < pol->n_slots; s++) active += e->slots[s].active;
    if (active == 0 && next_group >= n_groups) break;
    if ((rc = decode_step(e, opt, vocab, stats, err))) return rc;
  }
  stats->seconds = grpo_now_seconds() - t0;
  return GRPO_OK;
}

/* ---- P-GRPO ------------------------------------------------------------------ */

typedef struct traj_state {
  int admitted, done;
  int main_slot;           /* -1 before admission */
  int main_busy;           /* a main stream is decoding */
  uint64_t thread_busy;    /* bit k: thread k has a stream */
} traj_state;

/* Starts the stream for request r of trajectory t; returns a status. */
static int start_request(rollout_engine *e, const rollout_engine_options *opt, traj_state *ts, int t, const rollout_tw_request *r, int slot, int vocab,
                         rollout_engine_stats *stats, grpo_error *err) {
  const rollout_policy *pol = &e->pol;
  slot_state *s = &e->slots[slot];
  int rc;
  int n_ctx = r->n_prefix + r->n_suffix;
  int32_t *ctx = e->scratch_ids;
  memcpy(ctx, r->prefix, sizeof(int32_t) * (size_t)r->n_prefix);
  if (r->n_suffix > 0) memcpy(ctx + r->n_prefix, r->suffix, sizeof(int32_t) * (size_t)r->n_suffix);
  int have;
  if (r->thread < 0) {
    have = s->cached; /* the main slot already holds the start of the combined view */
  } else {
    const slot_state *m = &e->slots[ts->main_slot];
    have = m->cached < r->n_prefix ? m->cached : r->n_prefix;
    if ((rc = pol->copy_prefix(pol->ctx, ts->main_slot, &slot, 1, have, err))) return rc;
    s->cached = have;
  }
  if (have >= n_ctx) have = n_ctx - 1; /* the last context token must be fed for its logits */
  if (have < s->cached) {
    /* cannot rewind a slot: rebuild it from the shared prefix */
    if ((rc = pol->reset(pol->ctx, slot, err))) return rc;
    have = 0;
  }
  if ((rc = pol->append(pol->ctx, slot, ctx + have, n_ctx - have, e->logits, err))) return rc;
  stats->prefills++;
  stats->prefill_tokens += n_ctx - have;
  s->cached = n_ctx;
  rollout_output *o = &s->own;
  o->n = 0;
  o->finish = ROLLOUT_FINISH_LENGTH;
  o->truncated = 0;
  o->prompt_index = e->slots[ts->main_slot].own.prompt_index;
  o->sample_index = e->slots[ts->main_slot].own.sample_index;
  static const char *const stop_strs[2] = {"</Outlines>", "</Thread>"};
  stream_begin(s, o, r->max_new > 0 ? r->max_new : 1, ((uint32_t)(r->thread + 1) << 24) + (uint32_t)n_ctx,
               &stop_strs[r->thread < 0 ? 0 : 1], 1, ctx, n_ctx, 1);
  s->traj = t;
  s->thread = r->thread;
  if (r->thread < 0)
    ts->main_busy = 1;
  else
    ts->thread_busy |= (uint64_t)1 << r->thread;
  sample_into(e, s, opt, e->logits, vocab, &e->ws[0]);
  return GRPO_OK;
}

int rollout_engine_generate_parallel(rollout_engine *e, const rollout_engine_options *opt,
                                     const rollout_tw_options *tw_opt, const rollout_group *groups,
                                     int n_groups, rollout_tw *trajs, rollout_engine_stats *stats,
                                     grpo_error *err) {
  rollout_engine_stats local = {0};
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  double t0 = grpo_now_seconds();
  const rollout_policy *pol = &e->pol;
  int rc = check_options(e, opt, groups, n_groups, err);
  if (rc) return rc;
  if (budget_on(opt))
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "budget forcing (rollout.budget_min_think_tokens / budget_max_think_tokens) is not "
                     "supported with rollout.parallel_threads");
  if (pol->n_slots < 2)
    return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout needs at least 2 KV-cache slots, got %d",
                     pol->n_slots);
  if (!opt->piece)
    return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout needs a token-to-text callback");
  const int vocab = vocab_of(e, opt);
  int total = 0;
  for (int g = 0; g < n_groups; g++) total += groups[g].n_samples;
  traj_state *ts = calloc((size_t)(total ? total : 1), sizeof *ts);
  int *traj_group = malloc(sizeof(int) * (size_t)(total ? total : 1));
  int *traj_sample = malloc(sizeof(int) * (size_t)(total ? total : 1));
  if (!ts || !traj_group || !traj_sample) {
    free(ts);
    free(traj_group);
    free(traj_sample);
    return GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory");
  }
  rollout_tw_options two = *tw_opt;
  two.max_new_tokens = opt->max_new_tokens;
  if (two.max_len <= 0 || two.max_len > pol->max_len) two.max_len = pol->max_len;
  for (int g = 0, t = 0; g < n_groups; g++)
    for (int j = 0; j < groups[g].n_samples; j++, t++) {
      ts[t].main_slot = -1;
      traj_group[t] = g;
      traj_sample[t] = (int)groups[g].first_sample + j;
      if ((rc = rollout_tw_init(&trajs[t], &two, groups[g].prompt, groups[g].n_prompt, err))) {
        for (int u = 0; u < t; u++) rollout_tw_free(&trajs[u]);
        free(ts);
        free(traj_group);
        free(traj_sample);
        return rc;
      }
    }
  for (int s = 0; s < pol->n_slots; s++) e->slots[s].active = 0;
  /* slot ownership: main slots are held by their trajectory until it ends */
  int *owner = malloc(sizeof(int) * (size_t)pol->n_slots);
  int *ids = malloc(sizeof(int) * (size_t)pol->n_slots);
  if (!owner || !ids) rc = GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory");
  for (int s = 0; !rc && s < pol->n_slots; s++) owner[s] = -1;

  int next = 0, remaining = total;
  rollout_tw_request reqs[ROLLOUT_TW_MAX_THREADS];
  while (!rc && remaining > 0) {
    /* admit whole or partial groups, keeping one slot for threads */
    while (next < total) {
      int n_free = 0;
      for (int s = 0; s < pol->n_slots; s++) n_free += owner[s] < 0 && !e->slots[s].active;
      int g = traj_group[next], want = 0;
      for (int t = next; t < total && traj_group[t] == g; t++) want++;
      int k = want < n_free - 1 ? want : n_free - 1;
      if (k <= 0) break;
      int n = 0;
      for (int s = 0; s < pol->n_slots && n < k; s++)
        if (owner[s] < 0 && !e->slots[s].active) ids[n++] = s;
      if ((rc = prefill_shared(e, &groups[g], ids, k, stats, err))) break;
      for (int j = 0; j < k; j++) {
        int t = next + j;
        slot_state *s = &e->slots[ids[j]];
        owner[ids[j]] = t;
        ts[t].admitted = 1;
        ts[t].main_slot = ids[j];
        s->own.prompt_index = groups[g].prompt_index;
        s->own.sample_index = (uint32_t)traj_sample[t];
        /* the first main stream starts from the shared prefill's logits */
        rollout_tw_pending(&trajs[t], reqs, 1);
        s->own.n = 0;
        s->own.finish = ROLLOUT_FINISH_LENGTH;
        s->own.truncated = 0;
        static const char *const outl[1] = {"</Outlines>"};
        stream_begin(s, &s->own, reqs[0].max_new, (uint32_t)groups[g].n_prompt, outl, 1,
                     groups[g].prompt, groups[g].n_prompt, 1);
        s->traj = t;
        s->thread = -1;
        ts[t].main_busy = 1;
        sample_into(e, s, opt, e->logits, vocab, &e->ws[0]);
      }
      next += k;
    }
    if (rc) break;
    /* start streams for outstanding requests */
    for (int t = 0; t < total && !rc; t++) {
      if (!ts[t].admitted || ts[t].done) continue;
      int n_req = rollout_tw_pending(&trajs[t], reqs, ROLLOUT_TW_MAX_THREADS);
      for (int q = 0; q < n_req && !rc; q++) {
        const rollout_tw_request *r = &reqs[q];
        if (r->thread < 0) {
          if (ts[t].main_busy) continue;
          rc = start_request(e, opt, &ts[t], t, r, ts[t].main_slot, vocab, stats, err);
        } else {
          if (ts[t].thread_busy & ((uint64_t)1 << r->thread)) continue;
          int slot = -1;
          for (int s = 0; s < pol->n_slots && slot < 0; s++)
            if (owner[s] < 0 && !e->slots[s].active) slot = s;
          if (slot < 0) break; /* no slot now: later */
          owner[slot] = -2;    /* held by a thread stream */
          rc = start_request(e, opt, &ts[t], t, r, slot, vocab, stats, err);
        }
      }
    }
    if (rc) break;
    /* streams that ended at their first token, or after this step */
    for (int pass = 0; pass < 2 && !rc; pass++) {
      if (pass == 1 && (rc = decode_step(e, opt, vocab, stats, err))) break;
      for (int sl = 0; sl < pol->n_slots && !rc; sl++) {
        slot_state *s = &e->slots[sl];
        int streaming = (owner[sl] == -2) || (owner[sl] >= 0 && ts[owner[sl]].main_busy);
        if (s->active || !streaming) continue;
        int t = s->traj;
        rollout_output *o = &s->own;
        rc = rollout_tw_complete(&trajs[t], s->thread, o->ids, o->logprobs, o->n, o->finish,
                                 s->text, err);
        if (s->thread < 0) {
          ts[t].main_busy = 0;
        } else {
          ts[t].thread_busy &= ~((uint64_t)1 << s->thread);
          owner[sl] = -1;
        }
        if (!rc && trajs[t].state == ROLLOUT_TW_DONE) {
          ts[t].done = 1;
          owner[ts[t].main_slot] = -1;
          remaining--;
        }
      }
    }
  }
  free(owner);
  free(ids);
  free(ts);
  free(traj_group);
  free(traj_sample);
  stats->seconds = grpo_now_seconds() - t0;
  return rc;
}
