/* A scripted policy for engine tests: its logits are a pure function of the
 * last two tokens and the position (Philox), so any batching must give the
 * same completions, and the expected output can be recomputed alone. Tokens
 * listed in `force` are put at fixed positions with a huge logit. */
#ifndef GRPO_TESTS_SCRIPTED_POLICY_H
#define GRPO_TESTS_SCRIPTED_POLICY_H

#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "rollout/engine.h"

typedef struct scripted {
  int vocab, n_slots, max_len;
  int32_t *toks;  /* [n_slots, max_len] */
  int *len;
  long appended, stepped, truncated; /* truncated: tokens dropped by truncate */
  /* position -> forced token (-1 none) */
  int32_t force[512];
  /* optional: the forced next token as a function of the whole sequence (-1 none) */
  int32_t (*script)(const int32_t *seq, int n);
  /* optional: added to every logit (stands in for the model's weights) */
  const float *bias;
} scripted;

static void scripted_logits(const scripted *sp, const int32_t *seq, int n, float *out) {
  int32_t a = n > 0 ? seq[n - 1] : 0, b = n > 1 ? seq[n - 2] : 0;
  for (int v = 0; v < sp->vocab; v++) {
    uint32_t w[4];
    grpo_rng_u32x4(77, GRPO_RNG_TEST, (uint32_t)n, (uint32_t)a, (uint32_t)b, (uint32_t)v, w);
    out[v] = 4.0f * grpo_rng_u32_to_unit(w[0]) - 2.0f + (sp->bias ? sp->bias[v] : 0.0f);
  }
  if (n < 512 && sp->force[n] >= 0) out[sp->force[n]] = 50.0f;
  if (sp->script) {
    int32_t f = sp->script(seq, n);
    if (f >= 0 && f < sp->vocab) out[f] = 50.0f;
  }
}

static int sp_reset(void *ctx, int slot, grpo_error *err) {
  (void)err;
  ((scripted *)ctx)->len[slot] = 0;
  return GRPO_OK;
}

static int sp_append(void *ctx, int slot, const int32_t *ids, int n, float *logits, grpo_error *err) {
  scripted *sp = ctx;
  if (sp->len[slot] + n > sp->max_len) return GRPO_FAIL(err, GRPO_EINVAL, "scripted: slot full");
  memcpy(sp->toks + (size_t)slot * sp->max_len + sp->len[slot], ids, sizeof *ids * (size_t)n);
  sp->len[slot] += n;
  sp->appended += n;
  scripted_logits(sp, sp->toks + (size_t)slot * sp->max_len, sp->len[slot], logits);
  return GRPO_OK;
}

static int sp_step(void *ctx, int n, const int *slots, const int32_t *ids, float *logits,
                   grpo_error *err) {
  scripted *sp = ctx;
  for (int i = 0; i < n; i++) {
    int s = slots[i];
    if (sp->len[s] + 1 > sp->max_len) return GRPO_FAIL(err, GRPO_EINVAL, "scripted: slot full");
    sp->toks[(size_t)s * sp->max_len + sp->len[s]++] = ids[i];
    scripted_logits(sp, sp->toks + (size_t)s * sp->max_len, sp->len[s], logits + (size_t)i * sp->vocab);
  }
  sp->stepped += n;
  return GRPO_OK;
}

static int sp_copy(void *ctx, int src, const int *dst, int n_dst, int n_tokens, grpo_error *err) {
  (void)err;
  scripted *sp = ctx;
  for (int i = 0; i < n_dst; i++) {
    memcpy(sp->toks + (size_t)dst[i] * sp->max_len, sp->toks + (size_t)src * sp->max_len,
           sizeof(int32_t) * (size_t)n_tokens);
    sp->len[dst[i]] = n_tokens;
  }
  return GRPO_OK;
}

static int sp_truncate(void *ctx, int slot, int n_tokens, grpo_error *err) {
  scripted *sp = ctx;
  if (n_tokens < 0 || n_tokens > sp->len[slot]) return GRPO_FAIL(err, GRPO_EINVAL, "scripted: bad truncate");
  sp->truncated += sp->len[slot] - n_tokens;
  sp->len[slot] = n_tokens;
  return GRPO_OK;
}

static void scripted_init(scripted *sp, rollout_policy *pol, int vocab, int n_slots, int max_len) {
  memset(sp, 0, sizeof *sp);
  sp->vocab = vocab;
  sp->n_slots = n_slots;
  sp->max_len = max_len;
  sp->toks = calloc((size_t)n_slots * max_len, sizeof(int32_t));
  sp->len = calloc((size_t)n_slots, sizeof(int));
  for (int i = 0; i < 512; i++) sp->force[i] = -1;
  *pol = (rollout_policy){sp, vocab, n_slots, max_len, sp_reset, sp_append, sp_step, sp_copy, sp_truncate,
                          NULL};
}

static void scripted_free(scripted *sp) {
  free(sp->toks);
  free(sp->len);
}

#endif
