/* PRM-guided search (rollout/search.h): best-of-N, beam search and DVTS on a
 * scripted tree of steps and a scripted PRM, where a hand calculation (in the
 * comments) says which path must win under each aggregation; the token budget
 * under random proposers (never exceeded, every round's cap respected); the
 * errors; the difficulty table; the engine-backed proposer on a scripted
 * policy; the PRM-backed scorer on the PRM fixture. */
#include <stdint.h>

#include "checkpoints/hf_io.h"
#include "core/philox.h"
#include "rollout/search.h"
#include "scripted_policy.h"
#include "test.h"

/* ---- a scripted tree ------------------------------------------------------------
 * A step is (len - 1) filler tokens then the node's own token, so the last
 * token of a prefix names the node it ends at (the prompt: the root, 0).
 * Candidate i of request r (n candidates each) is child (r * n + i) % 4: two
 * requests from the same node get different children, as two differently
 * keyed samples would. */
#define FILL 999

typedef struct tnode {
  int tok;
  int child[4];
  float score;
  int final;
  int len;
} tnode;

typedef struct tree {
  const tnode *nodes;
  int n;
  int unit_len; /* every step one token */
  long proposed;
  int errors;
} tree;

static const tnode *find(const tree *t, int tok) {
  for (int i = 0; i < t->n; i++)
    if (t->nodes[i].tok == tok) return &t->nodes[i];
  return NULL;
}

static int tree_propose(void *ctx, const rollout_search_request *reqs, int n_reqs, int max_tokens,
                        grpo_error *err) {
  tree *t = ctx;
  for (int r = 0; r < n_reqs; r++) {
    const rollout_search_request *q = &reqs[r];
    int at = q->n_prefix > q->n_prompt ? q->prefix[q->n_prefix - 1] : 0;
    const tnode *p = find(t, at);
    if (!p || p->final) {
      t->errors++;
      return GRPO_FAIL(err, GRPO_EINVAL, "tree: no node %d to expand", at);
    }
    for (int i = 0; i < q->n; i++) {
      const tnode *c = find(t, p->child[(q->index * q->n + i) % 4]);
      if (!c) {
        t->errors++;
        return GRPO_FAIL(err, GRPO_EINVAL, "tree: node %d lacks child %d", at, i);
      }
      int len = t->unit_len ? 1 : c->len;
      if (len > max_tokens) {
        t->errors++;
        return GRPO_FAIL(err, GRPO_EINVAL, "tree: step %d of %d tokens over the cap %d", c->tok, len, max_tokens);
      }
      for (int k = 0; k < len - 1; k++) q->out[i].ids[k] = FILL;
      q->out[i].ids[len - 1] = c->tok;
      q->out[i].n = len;
      q->out[i].final = c->final;
      t->proposed += len;
    }
  }
  return GRPO_OK;
}

static int tree_score(void *ctx, const int32_t *prompt, int n_prompt, const rollout_search_span *steps,
                      int n_steps, float *scores, grpo_error *err) {
  tree *t = ctx;
  for (int k = 0; k < n_steps; k++) {
    const tnode *c = find(t, steps[k].ids[steps[k].n - 1]);
    if (!c) return GRPO_FAIL(err, GRPO_EINVAL, "tree: unknown step");
    scores[k] = c->score;
  }
  return GRPO_OK;
}

/* The tree of the beam and DVTS tests. Leaves not listed are never reached. */
static const tnode TREE[] = {
    {0, {1, 2, 3, 4}, 0.0f, 0, 1},
    {1, {11, 12, 13, 14}, 0.9f, 0, 1},
    {2, {21, 22, 23, 24}, 0.8f, 0, 3},
    {3, {31, 32, 33, 34}, 0.3f, 0, 1},
    {4, {41, 42, 43, 44}, 0.2f, 0, 1},
    {11, {0}, 0.4f, 0, 1},
    {12, {121, 122, 123, 124}, 0.5f, 0, 1},
    {23, {231, 232, 233, 234}, 0.95f, 0, 1},
    {24, {241, 242, 243, 244}, 0.6f, 0, 2},
    {33, {331, 332, 333, 334}, 0.7f, 0, 1},
    {34, {0}, 0.65f, 1, 1},
    {121, {0}, 0.6f, 1, 1},
    {122, {0}, 0.55f, 1, 1},
    {231, {0}, 0.7f, 1, 1},
    {232, {0}, 0.85f, 1, 1},
    {243, {0}, 0.99f, 1, 1},
    {244, {0}, 0.1f, 1, 1},
    {333, {0}, 0.8f, 1, 1},
    {334, {0}, 0.2f, 1, 1},
};
#define N_TREE ((int)(sizeof TREE / sizeof TREE[0]))

static const int32_t PROMPT[3] = {7, 8, 9};

static rollout_search_result run_tree(tree *t, rollout_search_strategy st, rollout_prm_agg agg,
                                      int n, int m, long budget, int *rc) {
  rollout_search_options o = {.strategy = st, .n = n, .beam_width = m, .max_steps = 10,
                              .max_step_tokens = 4, .token_budget = budget, .aggregation = agg};
  rollout_search_proposer prop = {t, tree_propose};
  rollout_search_scorer sc = {t, tree_score};
  rollout_search_result res;
  grpo_error err = {0};
  *rc = rollout_search_run(&o, &prop, &sc, PROMPT, 3, &res, &err);
  if (*rc) fprintf(stderr, "%s\n", err.msg);
  return res;
}

/* The node tokens of the result's steps (the last id of each step). */
static int path_is(const rollout_search_result *r, const int *want, int n) {
  if (r->n_steps != n) return 0;
  for (int k = 0; k < n; k++)
    if (r->ids[r->step_end[k] - 1] != want[k]) return 0;
  return 1;
}

/* Beam search, N = 4 beams, width M = 2 (keep N/M = 2 per round):
 *  round 1: the root proposes 4: 1 (.9), 2 (.8), 3 (.3), 4 (.2); keep 1, 2.
 *  round 2: 1 -> children 0,1 = 11 (.4), 12 (.5); 2 -> children 2,3 = 23 (.95), 24 (.6).
 *    last: 23 .95, 24 .6, 12 .5, 11 .4            -> keep 23, 24
 *    min:  23 min(.8,.95)=.8, 24 .6, 12 .5, 11 .4  -> keep 23, 24
 *    prod: 23 .76, 24 .48, 12 .45, 11 .36          -> keep 23, 24
 *  round 3: 23 -> 231 (.7), 232 (.85); 24 -> 243 (.99), 244 (.1); all final.
 *    last: 231 .7, 232 .85, 243 .99, 244 .1                  -> 2, 24, 243 (.99)
 *    min:  231 .7, 232 .8, 243 min(.8,.6,.99)=.6, 244 .1     -> 2, 23, 232 (.8)
 *    prod: 231 .8*.95*.7=.532, 232 .646, 243 .8*.6*.99=.4752 -> 2, 23, 232 (.646)
 *  tokens: round 1: 1+3+1+1, round 2: 1+1+1+2, round 3: 4 -> 15; scorer calls
 *  4+4+4 and one for the chosen path -> 13. */
TEST(test_beam_hand) {
  static const int want_last[3] = {2, 24, 243}, want_min[3] = {2, 23, 232};
  const struct {
    rollout_prm_agg agg;
    const int *want;
    float score;
  } cases[3] = {{ROLLOUT_PRM_LAST, want_last, 0.99f},
                {ROLLOUT_PRM_MIN, want_min, 0.8f},
                {ROLLOUT_PRM_PROD, want_min, 0.8f * 0.95f * 0.85f}};
  for (int c = 0; c < 3; c++) {
    tree t = {TREE, N_TREE, 0, 0, 0};
    int rc;
    rollout_search_result r = run_tree(&t, ROLLOUT_SEARCH_BEAM, cases[c].agg, 4, 2, 0, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_MSG(path_is(&r, cases[c].want, 3), "aggregation %s", rollout_prm_agg_name(cases[c].agg));
    CHECK_NEAR(r.score, cases[c].score, 1e-6);
    CHECK_EQ_INT(r.complete, 1);
    CHECK_EQ_INT(r.rounds, 3);
    CHECK_EQ_INT(r.tokens_spent, 15);
    CHECK_EQ_INT(t.proposed, 15);
    CHECK_EQ_INT(r.n_completed, 4);
    CHECK_EQ_INT(r.proposals, 12);
    CHECK_EQ_INT(r.scored, 13);
    /* the ids: the steps back to back, fillers included */
    if (c == 0) {
      static const int32_t ids[6] = {FILL, FILL, 2, FILL, 24, 243};
      CHECK_EQ_INT(r.n, 6);
      CHECK(r.n == 6 && memcmp(r.ids, ids, sizeof ids) == 0);
      CHECK_NEAR(r.step_scores[0], 0.8f, 0);
      CHECK_NEAR(r.step_scores[1], 0.6f, 0);
      CHECK_NEAR(r.step_scores[2], 0.99f, 0);
    }
    rollout_search_result_free(&r);
  }
}

/* DVTS, N = 4, M = 2: two subtrees, each moving to its best of 2 candidates.
 *  round 1: subtree 0 (request 0) -> root children 0,1 = 1 (.9), 2 (.8): takes 1
 *           subtree 1 (request 1) -> root children 2,3 = 3 (.3), 4 (.2): takes 3
 *  round 2: subtree 0 at 1 -> 11 (.4), 12 (.5): takes 12 (every aggregation)
 *           subtree 1 at 3 -> children 2,3 = 33 (.7), 34 (.65, final):
 *             last: 33;  min: .3 and .3, a tie -> the first, 33
 *  round 3: subtree 0 at 12 -> 121 (.6), 122 (.55), both final:
 *             last: 121;  min: min(.9,.5,.6)=.5 = min(.9,.5,.55)=.5, a tie -> 121
 *           subtree 1 at 33 -> children 2,3 = 333 (.8), 334 (.2), final: 333
 *  final: last: 121 .6 vs 333 .8  -> 3, 33, 333   (beam search pruned 3 in round 1)
 *         min:  121 .5 vs 333 .3  -> 1, 12, 121
 *  tokens: 4 per round (step 2's 3 tokens are in round 1: 1+3+1+1) -> 6+4+4 = 14. */
TEST(test_dvts_hand) {
  static const int want_last[3] = {3, 33, 333}, want_min[3] = {1, 12, 121};
  for (int c = 0; c < 2; c++) {
    tree t = {TREE, N_TREE, 0, 0, 0};
    int rc;
    rollout_search_result r =
        run_tree(&t, ROLLOUT_SEARCH_DVTS, c ? ROLLOUT_PRM_MIN : ROLLOUT_PRM_LAST, 4, 2, 0, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(path_is(&r, c ? want_min : want_last, 3));
    CHECK_NEAR(r.score, c ? 0.5f : 0.8f, 1e-6);
    CHECK_EQ_INT(r.complete, 1);
    CHECK_EQ_INT(r.n_completed, 2);
    CHECK_EQ_INT(r.rounds, 3);
    CHECK_EQ_INT(r.tokens_spent, 14);
    CHECK_EQ_INT(t.proposed, 14);
    CHECK_EQ_INT(r.scored, 13);
    rollout_search_result_free(&r);
  }
}

/* Beam search out of budget, every step one token, budget 10, N = 4:
 *  round 1: cap = min(4, 10/4) = 2, spends 4; round 2: cap = min(4, 6/4) = 1,
 *  spends 4; round 3 would need 4 tokens with 2 left: stop. Nothing is
 *  complete, so the best live beam wins: 2, 23 (.95). */
TEST(test_beam_budget_hand) {
  tree t = {TREE, N_TREE, 1, 0, 0};
  int rc;
  rollout_search_result r = run_tree(&t, ROLLOUT_SEARCH_BEAM, ROLLOUT_PRM_LAST, 4, 2, 10, &rc);
  CHECK_EQ_INT(rc, 0);
  static const int want[2] = {2, 23};
  CHECK(path_is(&r, want, 2));
  CHECK_EQ_INT(r.complete, 0);
  CHECK_EQ_INT(r.n_completed, 0);
  CHECK_EQ_INT(r.rounds, 2);
  CHECK_EQ_INT(r.tokens_spent, 8);
  CHECK_NEAR(r.score, 0.95f, 1e-6);
  rollout_search_result_free(&r);
}

/* Best-of-3: path i takes child i at every step.
 *   5 (.2) -> 51 (.9);  6 (.8) -> 61 (.55);  7 (.7) -> 71 (.6); all final after 2.
 *   last: .9, .55, .6      -> 5, 51
 *   min:  .2, .55, .6      -> 7, 71
 *   prod: .18, .44, .42    -> 6, 61 */
static const tnode BON_TREE[] = {
    {0, {5, 6, 7, 0}, 0.0f, 0, 1},  {5, {51, 0, 0, 0}, 0.2f, 0, 2}, {6, {0, 61, 0, 0}, 0.8f, 0, 1},
    {7, {0, 0, 71, 0}, 0.7f, 0, 1}, {51, {0}, 0.9f, 1, 1},          {61, {0}, 0.55f, 1, 3},
    {71, {0}, 0.6f, 1, 1},
};

TEST(test_bon_hand) {
  static const int w_last[2] = {5, 51}, w_min[2] = {7, 71}, w_prod[2] = {6, 61};
  const int *want[3] = {w_last, w_min, w_prod};
  for (int a = 0; a < 3; a++) {
    tree t = {BON_TREE, 7, 0, 0, 0};
    int rc;
    rollout_search_result r = run_tree(&t, ROLLOUT_SEARCH_BON, (rollout_prm_agg)a, 3, 1, 0, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_MSG(path_is(&r, want[a], 2), "aggregation %s", rollout_prm_agg_name((rollout_prm_agg)a));
    CHECK_EQ_INT(r.n_completed, 3);
    CHECK_EQ_INT(r.tokens_spent, 2 + 1 + 1 + 1 + 3 + 1);
    CHECK_EQ_INT(r.scored, 4);
    rollout_search_result_free(&r);
  }
}

TEST(test_aggregate) {
  const float s[3] = {0.5f, 0.8f, 0.4f};
  CHECK_NEAR(rollout_prm_aggregate(s, 3, ROLLOUT_PRM_LAST), 0.4f, 0);
  CHECK_NEAR(rollout_prm_aggregate(s, 3, ROLLOUT_PRM_MIN), 0.4f, 0);
  CHECK_NEAR(rollout_prm_aggregate(s, 3, ROLLOUT_PRM_PROD), 0.16f, 1e-7);
  CHECK_NEAR(rollout_prm_aggregate(s, 2, ROLLOUT_PRM_MIN), 0.5f, 0);
  CHECK_NEAR(rollout_prm_aggregate(s, 0, ROLLOUT_PRM_PROD), 0.0f, 0);
  rollout_search_strategy st;
  rollout_prm_agg ag;
  CHECK(rollout_search_strategy_parse("dvts", &st) == 0 && st == ROLLOUT_SEARCH_DVTS);
  CHECK(rollout_search_strategy_parse("beams", &st) == -1);
  CHECK(rollout_prm_agg_parse("prod", &ag) == 0 && ag == ROLLOUT_PRM_PROD);
  CHECK(rollout_prm_agg_parse("mean", &ag) == -1);
}

/* ---- budget under random proposers ------------------------------------------- */

typedef struct rnd {
  long budget, spent;
  int over; /* a round whose caps could overrun the budget */
  int max_seen;
} rnd;

static uint32_t hash3(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t w[4];
  grpo_rng_u32x4(5, GRPO_RNG_TEST, a, b, c, 0, w);
  return w[0];
}

static int rnd_propose(void *ctx, const rollout_search_request *reqs, int n_reqs, int max_tokens,
                       grpo_error *err) {
  rnd *R = ctx;
  long C = 0;
  for (int r = 0; r < n_reqs; r++) C += reqs[r].n;
  if (C * max_tokens > R->budget - R->spent) R->over++;
  if (max_tokens > R->max_seen) R->max_seen = max_tokens;
  for (int r = 0; r < n_reqs; r++)
    for (int i = 0; i < reqs[r].n; i++) {
      uint32_t h = hash3(reqs[r].key, (uint32_t)i, (uint32_t)reqs[r].n_prefix);
      int n = 1 + (int)(h % (uint32_t)(2 * max_tokens)); /* half the time over the cap: cut */
      if (n > max_tokens) n = max_tokens;
      for (int k = 0; k < n; k++) reqs[r].out[i].ids[k] = (int32_t)((h >> 8) + (uint32_t)k) % 50;
      reqs[r].out[i].n = n;
      reqs[r].out[i].final = (h >> 20) % 5 == 0;
      R->spent += n;
    }
  return GRPO_OK;
}

static int rnd_score(void *ctx, const int32_t *prompt, int n_prompt, const rollout_search_span *steps,
                     int n_steps, float *scores, grpo_error *err) {
  for (int k = 0; k < n_steps; k++) {
    uint32_t h = hash3((uint32_t)steps[k].n, (uint32_t)steps[k].ids[0], (uint32_t)k);
    scores[k] = (float)(h % 1000) / 1000.0f;
  }
  return GRPO_OK;
}

TEST(test_budget_never_exceeded) {
  const int NM[5][2] = {{4, 2}, {6, 3}, {8, 2}, {3, 1}, {5, 5}};
  const long budgets[5] = {0, 8, 23, 61, 400};
  int runs = 0;
  for (int st = 0; st < 3; st++)
    for (int c = 0; c < 5; c++)
      for (int b = 0; b < 5; b++)
        for (int a = 0; a < 3; a++) {
          rollout_search_options o = {.strategy = (rollout_search_strategy)st, .n = NM[c][0],
                                      .beam_width = NM[c][1], .max_steps = 7, .max_step_tokens = 6,
                                      .token_budget = budgets[b], .aggregation = (rollout_prm_agg)a};
          long budget = budgets[b] ? budgets[b] : (long)NM[c][0] * 7 * 6;
          if (budget < NM[c][0]) continue;
          rnd R = {budget, 0, 0, 0};
          rollout_search_proposer prop = {&R, rnd_propose};
          rollout_search_scorer sc = {&R, rnd_score};
          rollout_search_result r;
          grpo_error err = {0};
          int rc = rollout_search_run(&o, &prop, &sc, PROMPT, 3, &r, &err);
          CHECK_MSG(rc == 0, "%s", err.msg);
          CHECK(r.tokens_spent <= budget);
          CHECK_EQ_INT(r.tokens_spent, R.spent);
          CHECK_EQ_INT(R.over, 0);
          CHECK(R.max_seen <= 6);
          CHECK(r.n_steps >= 1 && r.n_steps <= 7);
          CHECK(r.n <= r.tokens_spent);
          CHECK(r.n_steps >= 1 && r.step_end[r.n_steps - 1] == r.n);
          CHECK(r.score >= 0.0f && r.score <= 1.0f);
          /* the reported score is the aggregate of the reported step scores */
          CHECK_NEAR(r.score, rollout_prm_aggregate(r.step_scores, r.n_steps, o.aggregation), 1e-6);
          rollout_search_result_free(&r);
          runs++;
        }
  CHECK(runs > 150);
}

/* ---- errors -------------------------------------------------------------------- */

static int greedy_propose(void *ctx, const rollout_search_request *reqs, int n_reqs, int max_tokens,
                          grpo_error *err) {
  for (int r = 0; r < n_reqs; r++)
    for (int i = 0; i < reqs[r].n; i++) reqs[r].out[i].n = max_tokens + 1; /* over the cap */
  return GRPO_OK;
}

static int nan_score(void *ctx, const int32_t *prompt, int n_prompt, const rollout_search_span *steps,
                     int n_steps, float *scores, grpo_error *err) {
  for (int k = 0; k < n_steps; k++) scores[k] = NAN;
  return GRPO_OK;
}

TEST(test_errors) {
  grpo_error err = {0};
  rollout_search_options o = {.strategy = ROLLOUT_SEARCH_BEAM, .n = 6, .beam_width = 4,
                              .max_steps = 3, .max_step_tokens = 4};
  CHECK(rollout_search_options_check(&o, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "search.beam_width") != NULL);
  o.beam_width = 3;
  o.token_budget = 5;
  CHECK(rollout_search_options_check(&o, &err) == GRPO_EBUDGET);
  o.token_budget = 0;
  CHECK(rollout_search_options_check(&o, &err) == 0);
  CHECK_EQ_INT(o.token_budget, 6 * 3 * 4);
  o.n = 0;
  CHECK(rollout_search_options_check(&o, &err) == GRPO_EINVAL);
  o.n = 6;

  rnd R = {1000, 0, 0, 0};
  rollout_search_proposer bad = {&R, greedy_propose}, good = {&R, rnd_propose};
  rollout_search_scorer sc = {&R, rnd_score}, nan = {&R, nan_score};
  rollout_search_result r;
  CHECK(rollout_search_run(&o, &bad, &sc, PROMPT, 3, &r, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "proposer returned a step of 5 tokens") != NULL);
  CHECK(r.ids == NULL);
  CHECK(rollout_search_run(&o, &good, &nan, PROMPT, 3, &r, &err) == GRPO_ENUMERIC);
  CHECK(rollout_search_run(&o, &good, &sc, PROMPT, 0, &r, &err) == GRPO_EINVAL);
}

TEST(test_pick) {
  const rollout_search_setting table[3] = {
      {0.2f, ROLLOUT_SEARCH_BEAM, 16, 4, 4000},
      {0.6f, ROLLOUT_SEARCH_DVTS, 8, 2, 2000},
      {1.0f, ROLLOUT_SEARCH_BON, 4, 1, 1000},
  };
  grpo_error err = {0};
  rollout_search_options o = {.max_steps = 9, .aggregation = ROLLOUT_PRM_MIN};
  CHECK(rollout_search_pick(table, 3, 0.0f, &o, &err) == 0 && o.n == 16 && o.strategy == ROLLOUT_SEARCH_BEAM);
  CHECK(rollout_search_pick(table, 3, 0.2f, &o, &err) == 0 && o.n == 16);
  CHECK(rollout_search_pick(table, 3, 0.21f, &o, &err) == 0 && o.n == 8 && o.beam_width == 2 &&
        o.token_budget == 2000 && o.strategy == ROLLOUT_SEARCH_DVTS);
  CHECK(rollout_search_pick(table, 3, 1.0f, &o, &err) == 0 && o.strategy == ROLLOUT_SEARCH_BON);
  CHECK(o.max_steps == 9 && o.aggregation == ROLLOUT_PRM_MIN); /* untouched */
  CHECK(rollout_search_pick(table, 3, 1.5f, &o, &err) == GRPO_EINVAL);
  CHECK(rollout_search_pick(table, 3, NAN, &o, &err) == GRPO_EINVAL);
  CHECK(rollout_search_pick(table, 2, 0.5f, &o, &err) == GRPO_EINVAL); /* last row not 1 */
  const rollout_search_setting unsorted[2] = {{0.7f, ROLLOUT_SEARCH_BON, 4, 1, 10},
                                              {0.5f, ROLLOUT_SEARCH_BON, 4, 1, 10}};
  CHECK(rollout_search_pick(unsorted, 2, 0.5f, &o, &err) == GRPO_EINVAL);
}

/* ---- engine-backed proposer ------------------------------------------------------ */

#define EV 32
#define SEP_TOK 30 /* prints "\n\n": ends a step */
#define EOS_TOK 31
#define BOX_TOK 29 /* prints "\\boxed{": a final answer */

static int epiece(void *ctx, int32_t id, char *buf, int cap) {
  if (id == SEP_TOK) return snprintf(buf, (size_t)cap, "\n\n");
  if (id == BOX_TOK) return snprintf(buf, (size_t)cap, "\\boxed{");
  if (id == EOS_TOK) return 0;
  buf[0] = (char)('a' + id % 26);
  return 1;
}

static int run_engine_search(rollout_search_result *r, rollout_search_engine_proposer *ep_out) {
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, EV, 8, 96);
  static float bias[EV];
  bias[SEP_TOK] = 2.0f;
  bias[EOS_TOK] = 0.5f;
  bias[BOX_TOK] = 0.3f;
  sp.bias = bias;
  rollout_engine *e = NULL;
  grpo_error err = {0};
  int rc = rollout_engine_create(&e, &pol, &err);
  static const int32_t eos[1] = {EOS_TOK};
  static const char *stops[1] = {"\n\n"};
  rollout_engine_options base = {.max_new_tokens = 8, .seed = 11, .step = 3, .stop_ids = eos,
                                 .n_stop_ids = 1, .stop_strings = stops, .n_stop_strings = 1,
                                 .piece = epiece, .vocab_limit = EV};
  rollout_sampling_defaults(&base.sampling);
  rollout_search_proposer prop;
  rollout_search_engine_proposer ep;
  memset(&ep, 0, sizeof ep);
  memset(r, 0, sizeof *r);
  if (!rc) rc = rollout_search_engine_proposer_init(&ep, &prop, e, 96, &base, "\\boxed{", 4, 8, &err);
  rnd R = {0};
  rollout_search_scorer sc = {&R, rnd_score};
  rollout_search_options o = {.strategy = ROLLOUT_SEARCH_BEAM, .n = 4, .beam_width = 2,
                              .max_steps = 6, .max_step_tokens = 8, .token_budget = 120};
  static const int32_t prompt[4] = {3, 4, 5, 6};
  if (!rc) rc = rollout_search_run(&o, &prop, &sc, prompt, 4, r, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  *ep_out = ep;
  rollout_search_engine_proposer_free(&ep);
  rollout_engine_free(e);
  scripted_free(&sp);
  return rc;
}

TEST(test_engine_proposer) {
  rollout_search_result a, b;
  rollout_search_engine_proposer ep;
  CHECK_EQ_INT(run_engine_search(&a, &ep), 0);
  CHECK(a.tokens_spent <= 120 && a.tokens_spent > 0);
  /* every round re-prefills the prompt at least once */
  CHECK(ep.stats.prefills >= a.rounds && ep.stats.prefill_tokens >= 4L * a.rounds);
  /* each step of the answer: ends on the separator, or is the final step
   * (EOS or \boxed{), or was cut at a cap (<= 8 tokens) */
  CHECK(a.n_steps >= 1);
  int start = 0, seps = 0;
  for (int k = 0; k < a.n_steps; k++) {
    int end = a.step_end[k], last = a.ids[end - 1];
    int has_box = 0;
    for (int i = start; i < end; i++) {
      has_box |= a.ids[i] == BOX_TOK;
      CHECK(a.ids[i] != EOS_TOK || i == end - 1);
      CHECK(a.ids[i] != SEP_TOK || i == end - 1); /* the separator ends a step */
    }
    CHECK(end - start <= 8);
    if (k + 1 < a.n_steps) CHECK(last != EOS_TOK && !has_box);
    seps += last == SEP_TOK;
    start = end;
  }
  CHECK(seps > 0); /* the stop string split steps at least once */
  /* the same seed gives the same search */
  CHECK_EQ_INT(run_engine_search(&b, &ep), 0);
  CHECK(a.n == b.n && memcmp(a.ids, b.ids, sizeof(int32_t) * (size_t)a.n) == 0);
  CHECK_EQ_INT(a.tokens_spent, b.tokens_spent);
  rollout_search_result_free(&a);
  rollout_search_result_free(&b);
}

/* ---- PRM-backed scorer ------------------------------------------------------------- */

TEST(test_prm_scorer) {
  grpo_error err = {0};
  model_params bb;
  model_prm_head head;
  model_prm *prm = NULL;
  CHECK(ckpt_hf_load_prm(test_path("tests/fixtures/prm"), &bb, &head, &err) == 0);
  CHECK(model_prm_create(&prm, &bb, &head, grpo_backend_cpu(), 24, &err) == 0);
  if (!prm) return;
  const int32_t SEP = 151, NL = 150;
  const int32_t strip[1] = {NL};
  rollout_search_prm_scorer ps;
  rollout_search_scorer sc;
  CHECK(rollout_search_prm_scorer_init(&ps, &sc, prm, SEP, NULL, 0, strip, 1, 4, &err) == 0);
  const int32_t prompt[3] = {1, 2, 3}, s0[4] = {5, 6, 7, NL}, s1[2] = {8, 9};
  rollout_search_span steps[2] = {{s0, 4}, {s1, 2}};
  float got[2], want[2];
  CHECK(sc.score(sc.ctx, prompt, 3, steps, 2, got, &err) == 0);
  /* the same as the PRM on prompt + step 0 without its "\n\n" + sep + step 1 + sep */
  const int32_t direct[10] = {1, 2, 3, 5, 6, 7, SEP, 8, 9, SEP};
  int n = 0;
  CHECK(model_prm_step_scores(prm, direct, 10, SEP, want, NULL, 2, &n, &err) == 0);
  CHECK_EQ_INT(n, 2);
  CHECK_NEAR(got[0], want[0], 0);
  CHECK_NEAR(got[1], want[1], 0);
  /* a PRM prompt of its own replaces the search prompt */
  const int32_t pp[2] = {40, 41};
  rollout_search_prm_scorer ps2;
  rollout_search_scorer sc2;
  CHECK(rollout_search_prm_scorer_init(&ps2, &sc2, prm, SEP, pp, 2, strip, 1, 4, &err) == 0);
  const int32_t direct2[9] = {40, 41, 5, 6, 7, SEP, 8, 9, SEP};
  CHECK(sc2.score(sc2.ctx, prompt, 3, steps, 2, got, &err) == 0);
  CHECK(model_prm_step_scores(prm, direct2, 9, SEP, want, NULL, 2, &n, &err) == 0);
  CHECK_NEAR(got[1], want[1], 0);
  /* a path longer than the PRM holds, and a step holding the separator */
  const int32_t longer[20] = {0};
  rollout_search_span lsteps[2] = {{longer, 20}, {s1, 2}};
  CHECK(sc.score(sc.ctx, prompt, 3, lsteps, 2, got, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "the PRM holds 24") != NULL);
  const int32_t has_sep[2] = {SEP, 4};
  rollout_search_span ssteps[1] = {{has_sep, 2}};
  CHECK(sc.score(sc.ctx, prompt, 3, ssteps, 1, got, &err) == GRPO_EINVAL);
  rollout_search_prm_scorer_free(&ps2);
  CHECK(rollout_search_prm_scorer_init(&ps2, &sc2, prm, 160, NULL, 0, NULL, 0, 4, &err) == GRPO_EINVAL);
  rollout_search_prm_scorer_free(&ps);
  rollout_search_prm_scorer_free(&ps2);
  model_prm_free(prm);
}

int main(void) {
  RUN(test_beam_hand);
  RUN(test_dvts_hand);
  RUN(test_beam_budget_hand);
  RUN(test_bon_hand);
  RUN(test_aggregate);
  RUN(test_budget_never_exceeded);
  RUN(test_errors);
  RUN(test_pick);
  RUN(test_engine_proposer);
  RUN(test_prm_scorer);
  return test_summary();
}
