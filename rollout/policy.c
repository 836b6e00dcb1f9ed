#include "rollout/policy.h"

static int mp_reset(void *ctx, int slot, grpo_error *err) {
  return model_kv_cache_reset(&((rollout_model_policy *)ctx)->cache, slot, err);
}

static int mp_append(void *ctx, int slot, const int32_t *ids, int n, float *logits, grpo_error *err) {
  rollout_model_policy *mp = ctx;
  return model_prefill(mp->model, &mp->cache, slot, ids, n, logits, err);
}

static int mp_step(void *ctx, int n, const int *slots, const int32_t *ids, float *logits,
                   grpo_error *err) {
  rollout_model_policy *mp = ctx;
  return model_decode_step(mp->model, &mp->cache, n, slots, ids, logits, err);
}

static int mp_step_sample(void *ctx, int n, const int *slots, const int32_t *ids, int vocab,
                          const grpo_sample_params *p, const double *u, grpo_sample_result *out,
                          grpo_error *err) {
  rollout_model_policy *mp = ctx;
  return model_decode_step_sample(mp->model, &mp->cache, n, slots, ids, vocab, p, u, out, err);
}

static int mp_copy(void *ctx, int src, const int *dst, int n_dst, int n_tokens, grpo_error *err) {
  return model_kv_cache_copy_prefix(&((rollout_model_policy *)ctx)->cache, src, dst, n_dst, n_tokens,
                                    err);
}

/* The decode path writes each new token at row len[slot] and attends to rows
 * [0, len), so shortening len is the whole rollback. */
static int mp_truncate(void *ctx, int slot, int n_tokens, grpo_error *err) {
  model_kv_cache *c = &((rollout_model_policy *)ctx)->cache;
  if (slot < 0 || slot >= c->n_slots)
    return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: slot %d out of range [0, %d)", slot, c->n_slots);
  if (n_tokens < 0 || n_tokens > c->len[slot])
    return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: cannot truncate slot %d holding %d tokens to %d",
                     slot, c->len[slot], n_tokens);
  c->len[slot] = n_tokens;
  return GRPO_OK;
}

int rollout_model_policy_init(rollout_model_policy *mp, rollout_policy *pol, model_transformer *m,
                              const model_config *cfg, int n_slots, int max_len, grpo_error *err) {
  return rollout_model_policy_init_on(mp, pol, m, NULL, cfg, n_slots, max_len, err);
}

int rollout_model_policy_init_on(rollout_model_policy *mp, rollout_policy *pol, model_transformer *m,
                                 grpo_backend *be, const model_config *cfg, int n_slots,
                                 int max_len, grpo_error *err) {
  mp->model = m;
  int rc = model_kv_cache_init_on(&mp->cache, cfg, be, n_slots, max_len, err);
  if (rc) return rc;
  /* on a device the decode steps sample there when the plan has the rows */
  int device = be && be->kind != GRPO_DEVICE_CPU && model_transformer_sample_rows(m) >= n_slots;
  *pol = (rollout_policy){.ctx = mp,
                          .vocab = cfg->vocab,
                          .n_slots = n_slots,
                          .max_len = max_len,
                          .reset = mp_reset,
                          .append = mp_append,
                          .step = mp_step,
                          .copy_prefix = mp_copy,
                          .truncate = mp_truncate,
                          .step_sample = device ? mp_step_sample : NULL};
  return GRPO_OK;
}

void rollout_model_policy_free(rollout_model_policy *mp) { model_kv_cache_free(&mp->cache); }

void rollout_model_plan_sampling(model_plan_opts *po, const grpo_backend *be, int n_slots) {
  if (be && be->kind != GRPO_DEVICE_CPU && po->sample_rows < n_slots) po->sample_rows = n_slots;
}
