#include "rollout/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and aggregation --------------------------------------------------- */

static const char *const STRATEGY_NAMES[] = {"bon", "beam", "dvts"};
static const char *const AGG_NAMES[] = {"last", "min", "prod"};

int rollout_search_strategy_parse(const char *s, rollout_search_strategy *out) {
  for (int i = 0; s && i < 3; i++)
    if (strcmp(s, STRATEGY_NAMES[i]) == 0) {
      *out = (rollout_search_strategy)i;
      return 0;
    }
  return -1;
}

int rollout_prm_agg_parse(const char *s, rollout_prm_agg *out) {
  for (int i = 0; s && i < 3; i++)
    if (strcmp(s, AGG_NAMES[i]) == 0) {
      *out = (rollout_prm_agg)i;
      return 0;
    }
  return -1;
}

const char *rollout_search_strategy_name(rollout_search_strategy s) {
  return (unsigned)s < 3 ? STRATEGY_NAMES[s] : "?";
}

const char *rollout_prm_agg_name(rollout_prm_agg a) { return (unsigned)a < 3 ? AGG_NAMES[a] : "?"; }

float rollout_prm_aggregate(const float *scores, int n, rollout_prm_agg agg) {
  if (n <= 0) return 0.0f;
  if (agg == ROLLOUT_PRM_LAST) return scores[n - 1];
  float a = scores[0];
  for (int i = 1; i < n; i++) {
    if (agg == ROLLOUT_PRM_MIN)
      a = scores[i] < a ? scores[i] : a;
    else
      a *= scores[i];
  }
  return a;
}

void rollout_search_result_free(rollout_search_result *r) {
  free(r->ids);
  free(r->step_end);
  free(r->step_scores);
  memset(r, 0, sizeof *r);
}

/* Nodes and arena grow with n * max_steps; keep them far from int overflow. */
#define MAX_NODES (1L << 26)

int rollout_search_options_check(rollout_search_options *o, grpo_error *err) {
  if ((unsigned)o->strategy > ROLLOUT_SEARCH_DVTS)
    return GRPO_FAIL(err, GRPO_EINVAL, "search.strategy: %d is not bon, beam or dvts", (int)o->strategy);
  if ((unsigned)o->aggregation > ROLLOUT_PRM_PROD)
    return GRPO_FAIL(err, GRPO_EINVAL, "search.aggregation: %d is not last, min or prod",
                     (int)o->aggregation);
  if (o->n < 1 || o->n > 65536)
    return GRPO_FAIL(err, GRPO_EINVAL, "search.n: %d outside [1, 65536]", o->n);
  if (o->max_steps < 1 || o->max_step_tokens < 1)
    return GRPO_FAIL(err, GRPO_EINVAL, "search.max_steps (%d) and search.max_step_tokens (%d) must be >= 1",
                     o->max_steps, o->max_step_tokens);
  if ((long)o->max_steps * o->n >= MAX_NODES)
    return GRPO_FAIL(err, GRPO_EINVAL, "search: n %d x max_steps %d is over %ld candidates", o->n,
                     o->max_steps, MAX_NODES);
  if (o->strategy != ROLLOUT_SEARCH_BON &&
      (o->beam_width < 1 || o->beam_width > o->n || o->n % o->beam_width != 0))
    return GRPO_FAIL(err, GRPO_EINVAL, "search.beam_width: %d must divide search.n = %d",
                     o->beam_width, o->n);
  if (o->token_budget < 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "search.token_budget: %ld is negative", o->token_budget);
  if (o->token_budget == 0) o->token_budget = (long)o->n * o->max_steps * o->max_step_tokens;
  if (o->token_budget > (1L << 40))
    return GRPO_FAIL(err, GRPO_EINVAL, "search.token_budget: %ld is too large", o->token_budget);
  if (o->token_budget < o->n)
    return GRPO_FAIL(err, GRPO_EBUDGET,
                     "search.token_budget: %ld cannot give each of the %d first candidates a token",
                     o->token_budget, o->n);
  return GRPO_OK;
}

int rollout_search_pick(const rollout_search_setting *t, int n_rows, float pass_rate,
                        rollout_search_options *opt, grpo_error *err) {
  if (!(pass_rate >= 0.0f && pass_rate <= 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "search: pass rate %g outside [0, 1]", (double)pass_rate);
  if (n_rows < 1) return GRPO_FAIL(err, GRPO_EINVAL, "search settings: the table is empty");
  for (int i = 0; i < n_rows; i++) {
    if (!(t[i].max_pass_rate >= 0.0f && t[i].max_pass_rate <= 1.0f) ||
        (i > 0 && !(t[i].max_pass_rate > t[i - 1].max_pass_rate)))
      return GRPO_FAIL(err, GRPO_EINVAL,
                       "search settings: row %d: max_pass_rate %g must be in [0, 1] and above the row before",
                       i, (double)t[i].max_pass_rate);
  }
  if (t[n_rows - 1].max_pass_rate != 1.0f)
    return GRPO_FAIL(err, GRPO_EINVAL, "search settings: the last row must have max_pass_rate 1, not %g",
                     (double)t[n_rows - 1].max_pass_rate);
  int i = 0;
  while (t[i].max_pass_rate < pass_rate) i++;
  opt->strategy = t[i].strategy;
  opt->n = t[i].n;
  opt->beam_width = t[i].beam_width;
  opt->token_budget = t[i].token_budget;
  return GRPO_OK;
}

/* ---- the search state ---------------------------------------------------------- */

typedef struct node {
  int parent; /* -1: the root (the prompt) */
  int depth;  /* steps from the root */
  long off;   /* tokens in the arena */
  int n;
  int final;
  float agg;  /* aggregated score of the path ending here, once scored */
} node;

typedef struct search {
  rollout_search_options o;
  const rollout_search_proposer *prop;
  const rollout_search_scorer *sc;
  const int32_t *prompt;
  int n_prompt;
  node *nodes;
  int n_nodes, cap_nodes;
  int32_t *arena; /* every proposed token, token_budget of them at most */
  long used;
  rollout_search_request *reqs; /* [n] */
  rollout_search_step *steps;   /* [n] */
  int *req_node, *req_n;        /* [n] */
  int32_t *pre;                 /* the requests' prefixes, back to back */
  size_t pre_cap;
  int *chain;                   /* [max_steps] node ids root-first */
  rollout_search_span *spans;   /* [max_steps] */
  float *scores;                /* [max_steps] */
  int *a, *b, *c;               /* [n] strategy lists */
  int *cand;                    /* [n] candidate order */
  int rounds;
  long proposals, scored;
} search;

static void search_free(search *s) {
  free(s->nodes);
  free(s->arena);
  free(s->reqs);
  free(s->steps);
  free(s->req_node);
  free(s->req_n);
  free(s->pre);
  free(s->chain);
  free(s->spans);
  free(s->scores);
  free(s->a);
  free(s->b);
  free(s->c);
  free(s->cand);
}

static int search_init(search *s, const rollout_search_options *o, grpo_error *err) {
  memset(s, 0, sizeof *s);
  s->o = *o;
  size_t N = (size_t)o->n, S = (size_t)o->max_steps;
  s->cap_nodes = (int)(1 + S * N);
  s->nodes = malloc((size_t)s->cap_nodes * sizeof *s->nodes);
  s->arena = malloc((size_t)o->token_budget * sizeof *s->arena);
  s->reqs = calloc(N, sizeof *s->reqs);
  s->steps = calloc(N, sizeof *s->steps);
  s->req_node = calloc(N, sizeof *s->req_node);
  s->req_n = calloc(N, sizeof *s->req_n);
  s->chain = calloc(S, sizeof *s->chain);
  s->spans = calloc(S, sizeof *s->spans);
  s->scores = calloc(S, sizeof *s->scores);
  s->a = calloc(N, sizeof *s->a);
  s->b = calloc(N, sizeof *s->b);
  s->c = calloc(N, sizeof *s->c);
  s->cand = calloc(N, sizeof *s->cand);
  if (!s->nodes || !s->arena || !s->reqs || !s->steps || !s->req_node || !s->req_n || !s->chain ||
      !s->spans || !s->scores || !s->a || !s->b || !s->c || !s->cand) {
    search_free(s);
    return GRPO_FAIL(err, GRPO_ENOMEM, "search: cannot plan %zu nodes and %ld tokens",
                     (size_t)s->cap_nodes, o->token_budget);
  }
  s->nodes[0] = (node){.parent = -1};
  s->n_nodes = 1;
  return GRPO_OK;
}

/* Fills s->chain with the path root-first (root excluded); returns its length. */
static int path_of(search *s, int x) {
  int d = s->nodes[x].depth;
  for (int k = d - 1; k >= 0; k--, x = s->nodes[x].parent) s->chain[k] = x;
  return d;
}

static long path_tokens(search *s, int x) {
  long t = 0;
  for (; x > 0; x = s->nodes[x].parent) t += s->nodes[x].n;
  return t;
}

/* One round: request r asks req_n[r] candidates after node req_node[r]. The
 * new nodes are numbered from *first in generation order. Sets *out_of_budget
 * (and proposes nothing) when the budget cannot give each candidate a token. */
static int propose_round(search *s, int n_req, int *first, int *out_of_budget, grpo_error *err) {
  *out_of_budget = 0;
  int C = 0;
  size_t need = 0;
  for (int r = 0; r < n_req; r++) {
    C += s->req_n[r];
    need += (size_t)s->n_prompt + (size_t)path_tokens(s, s->req_node[r]);
  }
  long remaining = s->o.token_budget - s->used;
  long cap = remaining / C;
  if (cap > s->o.max_step_tokens) cap = s->o.max_step_tokens;
  if (cap < 1) {
    *out_of_budget = 1;
    return GRPO_OK;
  }
  if (need > s->pre_cap) { /* grows only when a round needs more than any before */
    size_t want = need > 2 * s->pre_cap ? need : 2 * s->pre_cap;
    int32_t *p = realloc(s->pre, want * sizeof *p);
    if (!p) return GRPO_FAIL(err, GRPO_ENOMEM, "search: cannot hold %zu prefix tokens", want);
    s->pre = p;
    s->pre_cap = want;
  }
  /* Candidates write straight into the arena, cap apart; C * cap <= remaining
   * tokens, which the arena always has free. */
  int32_t *slot = s->arena + s->used;
  size_t at = 0;
  int k = 0;
  for (int r = 0; r < n_req; r++) {
    rollout_search_request *q = &s->reqs[r];
    int32_t *p = s->pre + at;
    memcpy(p, s->prompt, (size_t)s->n_prompt * sizeof *p);
    size_t len = (size_t)s->n_prompt;
    int d = path_of(s, s->req_node[r]);
    for (int j = 0; j < d; j++) {
      const node *nd = &s->nodes[s->chain[j]];
      memcpy(p + len, s->arena + nd->off, (size_t)nd->n * sizeof *p);
      len += (size_t)nd->n;
    }
    at += len;
    *q = (rollout_search_request){.prefix = p, .n_prefix = (int)len, .n_prompt = s->n_prompt,
                                  .n = s->req_n[r],
                                  .key = (uint32_t)s->rounds * (uint32_t)s->o.n + (uint32_t)r,
                                  .index = r, .out = s->steps + k};
    for (int i = 0; i < s->req_n[r]; i++, k++)
      s->steps[k] = (rollout_search_step){.ids = slot + (size_t)k * cap, .n = 0, .final = 0};
  }
  int rc = s->prop->propose(s->prop->ctx, s->reqs, n_req, (int)cap, err);
  if (rc) return rc;
  *first = s->n_nodes;
  long off = s->used;
  k = 0;
  for (int r = 0; r < n_req; r++) {
    const node *parent = &s->nodes[s->req_node[r]];
    for (int i = 0; i < s->req_n[r]; i++, k++) {
      rollout_search_step *st = &s->steps[k];
      if (st->n < 0 || st->n > cap)
        return GRPO_FAIL(err, GRPO_EINVAL,
                         "search: the proposer returned a step of %d tokens; this round allows [0, %ld]",
                         st->n, cap);
      memmove(s->arena + off, st->ids, (size_t)st->n * sizeof *s->arena); /* off <= ids: compacts */
      s->nodes[s->n_nodes++] = (node){.parent = s->req_node[r], .depth = parent->depth + 1,
                                      .off = off, .n = st->n, .final = st->final != 0};
      off += st->n;
    }
  }
  s->used = off;
  s->rounds++;
  s->proposals += C;
  return GRPO_OK;
}

/* Scores the path ending at x; its aggregate goes to nodes[x].agg and the
 * step scores stay in s->scores. */
static int score_node(search *s, int x, grpo_error *err) {
  int d = path_of(s, x);
  for (int j = 0; j < d; j++) {
    const node *nd = &s->nodes[s->chain[j]];
    s->spans[j] = (rollout_search_span){s->arena + nd->off, nd->n};
  }
  int rc = s->sc->score(s->sc->ctx, s->prompt, s->n_prompt, s->spans, d, s->scores, err);
  if (rc) return rc;
  s->scored++;
  for (int j = 0; j < d; j++)
    if (!isfinite(s->scores[j]))
      return GRPO_FAIL(err, GRPO_ENUMERIC, "search: the scorer gave step %d of %d the score %g", j,
                       d, (double)s->scores[j]);
  s->nodes[x].agg = rollout_prm_aggregate(s->scores, d, s->o.aggregation);
  return GRPO_OK;
}

/* a better than b: complete first, then higher score; equal is "not better",
 * so the earlier of two equals stays ahead (stable). */
static int better(const search *s, int x, int y, int prefer_final) {
  const node *a = &s->nodes[x], *b = &s->nodes[y];
  if (prefer_final && a->final != b->final) return a->final > b->final;
  return a->agg > b->agg;
}

/* Stable insertion sort of node ids, best first. */
static void rank(const search *s, int *ids, int n, int prefer_final) {
  for (int i = 1; i < n; i++) {
    int v = ids[i], j = i;
    while (j > 0 && better(s, v, ids[j - 1], prefer_final)) {
      ids[j] = ids[j - 1];
      j--;
    }
    ids[j] = v;
  }
}

/* ---- strategies (each returns the chosen node via *best) ------------------------ */

static int run_bon(search *s, int *best, int *n_completed, grpo_error *err) {
  const int N = s->o.n;
  int *live = s->a;
  for (int i = 0; i < N; i++) live[i] = 0;
  for (int round = 0; round < s->o.max_steps; round++) {
    int n_req = 0;
    for (int i = 0; i < N; i++)
      if (!s->nodes[live[i]].final) {
        s->c[n_req] = i; /* which path request n_req extends */
        s->req_node[n_req] = live[i];
        s->req_n[n_req++] = 1;
      }
    if (n_req == 0) break;
    int first, broke, rc = propose_round(s, n_req, &first, &broke, err);
    if (rc) return rc;
    if (broke) break;
    for (int r = 0; r < n_req; r++) live[s->c[r]] = first + r;
  }
  *best = -1;
  *n_completed = 0;
  for (int i = 0; i < N; i++) {
    int rc = score_node(s, live[i], err);
    if (rc) return rc;
    *n_completed += s->nodes[live[i]].final;
    if (*best < 0 || better(s, live[i], *best, 1)) *best = live[i];
  }
  return GRPO_OK;
}

static int run_beam(search *s, int *best, int *n_completed, grpo_error *err) {
  const int N = s->o.n, keep = s->o.n / s->o.beam_width;
  int *frontier = s->a, *completed = s->b;
  int n_front = 1, n_done = 0;
  frontier[0] = 0;
  for (int round = 0; round < s->o.max_steps && n_front > 0 && n_done < N; round++) {
    for (int j = 0; j < n_front; j++) {
      s->req_node[j] = frontier[j];
      s->req_n[j] = N / n_front + (j < N % n_front);
    }
    int first, broke, rc = propose_round(s, n_front, &first, &broke, err);
    if (rc) return rc;
    if (broke) break;
    int n_open = 0;
    for (int x = first; x < first + N; x++) {
      if ((rc = score_node(s, x, err))) return rc;
      if (s->nodes[x].final) {
        if (n_done < N) completed[n_done++] = x;
      } else {
        s->cand[n_open++] = x;
      }
    }
    rank(s, s->cand, n_open, 0);
    n_front = n_open < keep ? n_open : keep;
    memcpy(frontier, s->cand, (size_t)n_front * sizeof *frontier);
  }
  *n_completed = n_done;
  if (n_done > 0) {
    *best = completed[0];
    for (int i = 1; i < n_done; i++)
      if (better(s, completed[i], *best, 0)) *best = completed[i];
  } else {
    *best = frontier[0]; /* ranked: the best live beam */
  }
  return GRPO_OK;
}

static int run_dvts(search *s, int *best, int *n_completed, grpo_error *err) {
  const int M = s->o.beam_width, S = s->o.n / M;
  int *cur = s->a, *req_tree = s->c;
  for (int t = 0; t < S; t++) cur[t] = 0;
  for (int round = 0; round < s->o.max_steps; round++) {
    int n_req = 0;
    for (int t = 0; t < S; t++)
      if (!s->nodes[cur[t]].final) {
        req_tree[n_req] = t;
        s->req_node[n_req] = cur[t];
        s->req_n[n_req++] = M;
      }
    if (n_req == 0) break;
    int first, broke, rc = propose_round(s, n_req, &first, &broke, err);
    if (rc) return rc;
    if (broke) break;
    for (int r = 0; r < n_req; r++) {
      int pick = -1;
      for (int i = 0; i < M; i++) {
        int x = first + r * M + i;
        if ((rc = score_node(s, x, err))) return rc;
        if (pick < 0 || better(s, x, pick, 0)) pick = x;
      }
      cur[req_tree[r]] = pick;
    }
  }
  *best = cur[0];
  *n_completed = 0;
  for (int t = 0; t < S; t++) {
    *n_completed += s->nodes[cur[t]].final;
    if (better(s, cur[t], *best, 1)) *best = cur[t];
  }
  return GRPO_OK;
}

int rollout_search_run(const rollout_search_options *opt, const rollout_search_proposer *prop,
                       const rollout_search_scorer *scorer, const int32_t *prompt, int n_prompt,
                       rollout_search_result *res, grpo_error *err) {
  memset(res, 0, sizeof *res);
  rollout_search_options o = *opt;
  int rc = rollout_search_options_check(&o, err);
  if (rc) return rc;
  if (n_prompt < 1 || !prompt) return GRPO_FAIL(err, GRPO_EINVAL, "search: empty prompt");
  search s;
  if ((rc = search_init(&s, &o, err))) return rc;
  s.prop = prop;
  s.sc = scorer;
  s.prompt = prompt;
  s.n_prompt = n_prompt;
  int best = 0, n_completed = 0;
  switch (o.strategy) {
    case ROLLOUT_SEARCH_BON: rc = run_bon(&s, &best, &n_completed, err); break;
    case ROLLOUT_SEARCH_BEAM: rc = run_beam(&s, &best, &n_completed, err); break;
    default: rc = run_dvts(&s, &best, &n_completed, err); break;
  }
  /* the chosen path's own step scores (one more scorer call) */
  if (!rc && best > 0) rc = score_node(&s, best, err);
  if (!rc) {
    int d = best > 0 ? path_of(&s, best) : 0;
    long n = path_tokens(&s, best);
    res->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *res->ids);
    res->step_end = malloc((size_t)(d > 0 ? d : 1) * sizeof *res->step_end);
    res->step_scores = malloc((size_t)(d > 0 ? d : 1) * sizeof *res->step_scores);
    if (!res->ids || !res->step_end || !res->step_scores) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "search: out of memory for the result");
    } else {
      long at = 0;
      for (int j = 0; j < d; j++) {
        const node *nd = &s.nodes[s.chain[j]];
        memcpy(res->ids + at, s.arena + nd->off, (size_t)nd->n * sizeof *res->ids);
        at += nd->n;
        res->step_end[j] = (int)at;
        res->step_scores[j] = s.scores[j];
      }
      res->n = (int)n;
      res->n_steps = d;
      res->score = best > 0 ? s.nodes[best].agg : 0.0f;
      res->complete = s.nodes[best].final;
    }
  }
  res->tokens_spent = s.used;
  res->rounds = s.rounds;
  res->n_completed = n_completed;
  res->proposals = s.proposals;
  res->scored = s.scored;
  search_free(&s);
  if (rc) {
    long spent = res->tokens_spent;
    rollout_search_result_free(res);
    res->tokens_spent = spent;
  }
  return rc;
}

/* ---- engine-backed proposer ----------------------------------------------------- */

#define TEXT_PER_TOKEN 64 /* bytes of decoded text kept per step token (marker search) */

static int ep_propose(void *ctx, const rollout_search_request *reqs, int n_reqs, int max_tokens,
                      grpo_error *err) {
  rollout_search_engine_proposer *ep = ctx;
  int total = 0;
  for (int r = 0; r < n_reqs; r++) total += reqs[r].n;
  if (total > ep->max_candidates || max_tokens > ep->max_step_tokens)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "search proposer: %d candidates of %d tokens exceed the plan (%d of %d)", total,
                     max_tokens, ep->max_candidates, ep->max_step_tokens);
  rollout_engine_options opt = ep->base;
  opt.max_new_tokens = max_tokens;
  int o = 0;
  for (int r = 0; r < n_reqs; r++) {
    ep->groups[r] = (rollout_group){.prompt = reqs[r].prefix, .n_prompt = reqs[r].n_prefix,
                                    .n_samples = reqs[r].n, .prompt_index = reqs[r].key};
    for (int i = 0; i < reqs[r].n; i++, o++) {
      memset(&ep->outs[o], 0, sizeof ep->outs[o]);
      ep->outs[o].ids = ep->ids + (size_t)o * ep->max_step_tokens;
      ep->outs[o].logprobs = ep->lp + (size_t)o * ep->max_step_tokens;
    }
  }
  rollout_engine_stats st = {0};
  int rc = rollout_engine_generate(ep->engine, &opt, ep->groups, n_reqs, ep->outs, &st, err);
  if (rc) return rc;
  ep->stats.prefills += st.prefills;
  ep->stats.prefill_tokens += st.prefill_tokens;
  ep->stats.decode_steps += st.decode_steps;
  ep->stats.decode_tokens += st.decode_tokens;
  ep->stats.seconds += st.seconds;
  o = 0;
  for (int r = 0; r < n_reqs; r++)
    for (int i = 0; i < reqs[r].n; i++, o++) {
      const rollout_output *out = &ep->outs[o];
      rollout_search_step *step = &reqs[r].out[i];
      int n = out->n < max_tokens ? out->n : max_tokens;
      memcpy(step->ids, out->ids, (size_t)n * sizeof *step->ids);
      step->n = n;
      step->final = out->finish == ROLLOUT_FINISH_EOS || reqs[r].n_prefix + n + 1 >= ep->max_len;
      if (!step->final && ep->final_marker && ep->base.piece) {
        size_t cap = (size_t)ep->max_step_tokens * TEXT_PER_TOKEN, len = 0;
        for (int t = 0; t < n && len + TEXT_PER_TOKEN <= cap; t++) {
          int k = ep->base.piece(ep->base.piece_ctx, out->ids[t], ep->text + len, TEXT_PER_TOKEN);
          if (k > 0) len += (size_t)(k < TEXT_PER_TOKEN ? k : TEXT_PER_TOKEN);
        }
        ep->text[len] = '\0';
        step->final = strstr(ep->text, ep->final_marker) != NULL;
      }
    }
  return GRPO_OK;
}

int rollout_search_engine_proposer_init(rollout_search_engine_proposer *ep,
                                        rollout_search_proposer *out, rollout_engine *engine,
                                        int max_len, const rollout_engine_options *base,
                                        const char *final_marker, int max_candidates,
                                        int max_step_tokens, grpo_error *err) {
  memset(ep, 0, sizeof *ep);
  if (max_candidates < 1 || max_step_tokens < 1 || max_len < 2)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "search proposer: max_candidates %d, max_step_tokens %d and max_len %d must be positive",
                     max_candidates, max_step_tokens, max_len);
  if (final_marker && !base->piece)
    return GRPO_FAIL(err, GRPO_EINVAL, "search proposer: a final marker needs the piece function");
  ep->engine = engine;
  ep->base = *base;
  ep->max_len = max_len;
  ep->final_marker = final_marker && *final_marker ? final_marker : NULL;
  ep->max_candidates = max_candidates;
  ep->max_step_tokens = max_step_tokens;
  size_t C = (size_t)max_candidates, L = (size_t)max_step_tokens;
  ep->groups = calloc(C, sizeof *ep->groups);
  ep->outs = calloc(C, sizeof *ep->outs);
  ep->ids = calloc(C * L, sizeof *ep->ids);
  ep->lp = calloc(C * L, sizeof *ep->lp);
  ep->text = malloc(L * TEXT_PER_TOKEN + 1);
  if (!ep->groups || !ep->outs || !ep->ids || !ep->lp || !ep->text) {
    rollout_search_engine_proposer_free(ep);
    return GRPO_FAIL(err, GRPO_ENOMEM, "search proposer: out of memory");
  }
  *out = (rollout_search_proposer){ep, ep_propose};
  return GRPO_OK;
}

void rollout_search_engine_proposer_free(rollout_search_engine_proposer *ep) {
  free(ep->groups);
  free(ep->outs);
  free(ep->ids);
  free(ep->lp);
  free(ep->text);
  memset(ep, 0, sizeof *ep);
}

/* ---- PRM-backed scorer ------------------------------------------------------------ */

static int is_strip(const rollout_search_prm_scorer *ps, int32_t id) {
  for (int i = 0; i < ps->n_strip; i++)
    if (ps->strip_ids[i] == id) return 1;
  return 0;
}

static int ps_score(void *ctx, const int32_t *prompt, int n_prompt, const rollout_search_span *steps,
                    int n_steps, float *scores, grpo_error *err) {
  rollout_search_prm_scorer *ps = ctx;
  const int cap = model_prm_max_tokens(ps->prm);
  const int32_t *pp = ps->prm_prompt ? ps->prm_prompt : prompt;
  long len = ps->prm_prompt ? ps->n_prm_prompt : n_prompt;
  long need = len;
  for (int k = 0; k < n_steps; k++) need += steps[k].n + 1;
  if (need > cap)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "PRM scorer: the path needs %ld tokens (prompt, %d steps and separators), the PRM holds %d",
                     need, n_steps, cap);
  if (n_steps > ps->cap_steps)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM scorer: %d steps, planned for %d", n_steps, ps->cap_steps);
  memcpy(ps->buf, pp, (size_t)len * sizeof *ps->buf);
  for (int k = 0; k < n_steps; k++) {
    int m = steps[k].n;
    while (m > 0 && is_strip(ps, steps[k].ids[m - 1])) m--;
    memcpy(ps->buf + len, steps[k].ids, (size_t)m * sizeof *ps->buf);
    len += m;
    ps->buf[len++] = ps->sep_id;
  }
  int got = 0;
  int rc = model_prm_step_scores(ps->prm, ps->buf, (int)len, ps->sep_id, scores, NULL, n_steps,
                                 &got, err);
  if (rc) return rc;
  if (got != n_steps)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "PRM scorer: %d separators for %d steps (the prompt or a step holds separator id %d)",
                     got, n_steps, ps->sep_id);
  return GRPO_OK;
}

int rollout_search_prm_scorer_init(rollout_search_prm_scorer *ps, rollout_search_scorer *out,
                                   model_prm *prm, int32_t sep_id, const int32_t *prm_prompt,
                                   int n_prm_prompt, const int32_t *strip_ids, int n_strip,
                                   int max_steps, grpo_error *err) {
  memset(ps, 0, sizeof *ps);
  if (max_steps < 1 || n_strip < 0 || n_prm_prompt < 0 || (prm_prompt && n_prm_prompt < 1))
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM scorer: bad sizes (max_steps %d, strip %d, prompt %d)",
                     max_steps, n_strip, n_prm_prompt);
  if (sep_id < 0 || sep_id >= model_prm_config(prm)->vocab)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM scorer: separator id %d outside the PRM vocabulary [0, %d)",
                     sep_id, model_prm_config(prm)->vocab);
  ps->prm = prm;
  ps->sep_id = sep_id;
  ps->prm_prompt = prm_prompt;
  ps->n_prm_prompt = n_prm_prompt;
  ps->strip_ids = strip_ids;
  ps->n_strip = n_strip;
  ps->cap_steps = max_steps;
  ps->buf = malloc((size_t)model_prm_max_tokens(prm) * sizeof *ps->buf);
  if (!ps->buf) return GRPO_FAIL(err, GRPO_ENOMEM, "PRM scorer: out of memory");
  *out = (rollout_search_scorer){ps, ps_score};
  return GRPO_OK;
}

void rollout_search_prm_scorer_free(rollout_search_prm_scorer *ps) {
  free(ps->buf);
  memset(ps, 0, sizeof *ps);
}
