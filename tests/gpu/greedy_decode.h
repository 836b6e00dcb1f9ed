/* Greedy decoding through the rollout engine on the transformer of bound
 * parameters, for the device tests: one prompt, 3 samples (one prefill, the
 * prefix copied to the other two), a KV cache of 4 slots on be. Header-only,
 * for test programs. */
#ifndef GRPO_TESTS_GREEDY_DECODE_H
#define GRPO_TESTS_GREEDY_DECODE_H

#include "model/transformer.h"
#include "rollout/policy.h"

typedef struct greedy_out {
  int n[3];          /* tokens generated per sample */
  int32_t ids[3][64];
  float lp[3][64];
  int prefills;      /* engine prefills (1: the prefix was copied) */
  int cache_on_be;   /* the KV cache lives in be's memory (not the host's) */
} greedy_out;

/* p: bound to be (or on the CPU backend); plan: max_tokens / max_cache_len /
 * sample_rows of the transformer; max_len: the cache length; new_tokens <= 64. */
static int greedy_decode(const model_params *p, grpo_backend *be, const model_plan_opts *plan,
                         int max_len, const int32_t *prompt, int np, int new_tokens, greedy_out *out,
                         grpo_error *err) {
  memset(out, 0, sizeof *out);
  model_transformer *m = NULL;
  rollout_model_policy mp;
  rollout_policy pol;
  rollout_engine *e = NULL;
  int rc = model_transformer_create(&m, model_params_device(p), be, plan, err);
  int have_mp = 0;
  if (!rc) rc = rollout_model_policy_init_on(&mp, &pol, m, be, &p->cfg, 4, max_len, err);
  have_mp = !rc;
  if (!rc) rc = rollout_engine_create(&e, &pol, err);
  if (!rc) {
    out->cache_on_be = mp.cache.be == be;
    rollout_engine_options o = {0};
    rollout_sampling_defaults(&o.sampling);
    o.sampling.temperature = 0.0f;
    o.max_new_tokens = new_tokens;
    rollout_group g = {prompt, np, 3, 0, 0};
    rollout_output outs[3];
    for (int i = 0; i < 3; i++) outs[i] = (rollout_output){.ids = out->ids[i], .logprobs = out->lp[i]};
    rollout_engine_stats st;
    rc = rollout_engine_generate(e, &o, &g, 1, outs, &st, err);
    for (int i = 0; i < 3; i++) out->n[i] = outs[i].n;
    out->prefills = (int)st.prefills;
  }
  rollout_engine_free(e);
  if (have_mp) rollout_model_policy_free(&mp);
  model_transformer_free(m);
  return rc;
}

#endif
