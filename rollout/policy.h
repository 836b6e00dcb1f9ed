/* The rollout policy backed by the transformer: the engine's view of
 * model_prefill / model_decode_step over a KV cache the policy owns. */
#ifndef GRPO_ROLLOUT_POLICY_H
#define GRPO_ROLLOUT_POLICY_H

#include "model/kv_cache.h"
#include "model/transformer.h"
#include "rollout/engine.h"

typedef struct rollout_model_policy {
  model_transformer *model;   /* planned with max_tokens >= max(n_slots, longest prompt)
                                 and max_cache_len >= max_len */
  model_kv_cache cache;
} rollout_model_policy;

/* Allocates the cache (n_slots x max_len, host memory) and fills *pol. */
int rollout_model_policy_init(rollout_model_policy *mp, rollout_policy *pol, model_transformer *m,
                              const model_config *cfg, int n_slots, int max_len, grpo_error *err);
/* The same with the cache in be's memory (be: the backend m runs on; NULL or
 * a host-memory backend = rollout_model_policy_init). On a device backend the
 * decode steps also sample there (pol->step_sample: model_decode_step_sample)
 * when m is planned with model_plan_opts.sample_rows >= n_slots
 * (rollout_model_plan_sampling sets it); otherwise the logits of each step
 * come to the host. */
int rollout_model_policy_init_on(rollout_model_policy *mp, rollout_policy *pol, model_transformer *m,
                                 grpo_backend *be, const model_config *cfg, int n_slots,
                                 int max_len, grpo_error *err);
void rollout_model_policy_free(rollout_model_policy *mp);

/* Sets what rollout_model_policy_init_on needs in the plan of a model that
 * runs on be with n_slots slots: sample_rows = n_slots on a device backend
 * (the CPU backend samples on the host and needs none). */
void rollout_model_plan_sampling(model_plan_opts *po, const grpo_backend *be, int n_slots);

#endif
