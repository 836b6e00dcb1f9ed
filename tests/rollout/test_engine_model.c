/* The engine on the real transformer: greedy decoding of the PyTorch
 * fixture models (tests/fixtures/models/, made by tools/make_model_fixtures.py)
 * equals the argmax tokens transformers produced, for every sample of a
 * group sharing one prefill, and the reported logprobs are the log-softmax of
 * transformers' logits. */
#include <math.h>

#include "checkpoints/hf_io.h"
#include "checkpoints/safetensors.h"
#include "model/transformer.h"
#include "rollout/policy.h"
#include "test.h"

static void greedy_parity(const char *arch) {
  char dir[512], dec[600];
  snprintf(dir, sizeof dir, "%s", test_path("tests/fixtures/models/"));
  strncat(dir, arch, sizeof dir - strlen(dir) - 1);
  snprintf(dec, sizeof dec, "%s/decode.safetensors", dir);
  grpo_error err = {0};
  model_params p;
  ckpt_st_model f;
  if (ckpt_hf_load(dir, &p, &err) || ckpt_st_open(&f, dec, &err)) {
    CHECK_MSG(0, "%s: %s", arch, err.msg);
    return;
  }
  const ckpt_st_tensor *tp = ckpt_st_find(&f, "decode.prompt"), *tt = ckpt_st_find(&f, "decode.tokens");
  const ckpt_st_tensor *tl = ckpt_st_find(&f, "decode.logits");
  CHECK(tp && tt && tl);
  if (!tp || !tt || !tl) return;
  int np = (int)tp->numel, ns = (int)tt->numel, V = p.cfg.vocab;
  int32_t prompt[64], want[64];
  float *logits = malloc(sizeof(float) * tl->numel);
  ckpt_st_read_i32(&f, "decode.prompt", prompt, (size_t)np, &err);
  ckpt_st_read_i32(&f, "decode.tokens", want, (size_t)ns, &err);
  ckpt_st_read_f32(&f, "decode.logits", logits, tl->numel, &err);

  model_plan_opts po = {.max_tokens = 16, .max_cache_len = 32};
  model_transformer *m;
  CHECK_EQ_INT(model_transformer_create(&m, &p, grpo_backend_cpu(), &po, &err), GRPO_OK);
  rollout_model_policy mp;
  rollout_policy pol;
  CHECK_EQ_INT(rollout_model_policy_init(&mp, &pol, m, &p.cfg, 4, 32, &err), GRPO_OK);
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, &err), GRPO_OK);
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.sampling.temperature = 0.0f;
  o.max_new_tokens = ns;
  rollout_group g = {prompt, np, 3, 0, 0};
  rollout_output outs[3];
  int32_t ids[3][64];
  float lp[3][64];
  for (int i = 0; i < 3; i++) outs[i] = (rollout_output){.ids = ids[i], .logprobs = lp[i]};
  rollout_engine_stats st;
  CHECK_EQ_INT(rollout_engine_generate(e, &o, &g, 1, outs, &st, &err), GRPO_OK);
  CHECK_EQ_INT(st.prefills, 1);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ_INT(outs[i].n, ns);
    for (int t = 0; t < ns && t < outs[i].n; t++) {
      CHECK_MSG(ids[i][t] == want[t], "%s sample %d step %d: %d, transformers %d", arch, i, t,
                ids[i][t], want[t]);
      const float *z = logits + (size_t)t * V;
      double mx = -INFINITY, s = 0;
      for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
      for (int v = 0; v < V; v++) s += exp(z[v] - mx);
      double ref = z[want[t]] - mx - log(s);
      CHECK_MSG(fabs(lp[i][t] - ref) <= 1e-4 * (1 + fabs(ref)), "%s step %d: logprob %g vs %g", arch,
                t, lp[i][t], ref);
    }
  }
  rollout_engine_free(e);
  rollout_model_policy_free(&mp);
  model_transformer_free(m);
  free(logits);
  ckpt_st_close(&f);
  model_params_free(&p);
}

TEST(greedy_matches_transformers) {
  greedy_parity("qwen2");
  greedy_parity("qwen3");
  greedy_parity("llama");
}

int main(void) {
  RUN(greedy_matches_transformers);
  return test_summary();
}
