/* bench_rollout_cpu: the rollout engine on the 'bench' model (Qwen2-shaped:
 * hidden 512, 8 layers, 8 heads / 2 KV heads, FFN 1408, vocab 32000, random
 * weights). P prompts of L tokens, G samples each (one batch of P*G
 * sequences), N new tokens per sample (EOS ignored), temperature 1.
 *
 *   bench_rollout_cpu [P=8] [G=8] [L=64] [N=256] [threads]
 *
 * Reports decode tokens/s, prefill tokens/s (prefill runs once per prompt,
 * not per sample: the prefills count shows it), the decode matmul FLOP rate
 * against this machine's sgemm peak measured in the same run, and the KV
 * cache bytes against the analytic size. tools/bench_torch_generate.py runs
 * transformers' generate on the same model for the side-by-side. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/progress.h"
#include "core/runtime.h"
#include "core/sgemm_peak.h"
#include "model/transformer.h"
#include "rollout/policy.h"

/* The CPU backend with its two matmul entry points timed: the share of step
 * time spent in the model's matmuls (projections, MLP, lm_head). */
static grpo_backend g_timed;
static double g_matmul_s;
static void (*g_sgemm)(grpo_backend *, int, int, int, int, int, float, const void *, int64_t, const void *,
                       int64_t, float, void *, int64_t);
static void (*g_sgemm_batched)(grpo_backend *, int, int, int, int, int, float, const void *, int64_t, int64_t,
                               const void *, int64_t, int64_t, int, float, void *, int64_t, int64_t, int);

static void timed_sgemm(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha, const void *A,
                        int64_t lda, const void *B, int64_t ldb, float beta, void *C, int64_t ldc) {
  double t = grpo_now_seconds();
  g_sgemm(be, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  g_matmul_s += grpo_now_seconds() - t;
}

static void timed_sgemm_batched(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                                const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb, int64_t sB,
                                int b_group, float beta, void *C, int64_t ldc, int64_t sC, int batch) {
  double t = grpo_now_seconds();
  g_sgemm_batched(be, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, b_group, beta, C, ldc, sC, batch);
  g_matmul_s += grpo_now_seconds() - t;
}

int main(int argc, char **argv) {
  grpo_runtime_init(argv);
  int P = argc > 1 ? atoi(argv[1]) : 8, G = argc > 2 ? atoi(argv[2]) : 8;
  int L = argc > 3 ? atoi(argv[3]) : 64, N = argc > 4 ? atoi(argv[4]) : 256;
  if (argc > 5) omp_set_num_threads(atoi(argv[5]));
  grpo_error err = {0};
  model_config cfg;
  model_config_defaults(&cfg, MODEL_ARCH_QWEN2);
  cfg.hidden = 512, cfg.n_layers = 8, cfg.n_heads = 8, cfg.n_kv_heads = 2, cfg.head_dim = 64;
  cfg.ffn = 1408, cfg.vocab = 32000, cfg.max_pos = 4096, cfg.tie_embeddings = 1;
  model_params p;
  if (model_config_validate(&cfg, "bench", &err) || model_params_init(&p, &cfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  model_params_init_random(&p, 1, 0.02f);
  const int slots = P * G, max_len = L + N + 1;
  model_plan_opts po = {.max_tokens = slots > L ? slots : L, .max_cache_len = max_len};
  model_transformer *m;
  rollout_model_policy mp;
  rollout_policy pol;
  rollout_engine *e;
  g_timed = *grpo_backend_cpu();
  g_sgemm = g_timed.sgemm;
  g_sgemm_batched = g_timed.sgemm_batched;
  g_timed.sgemm = timed_sgemm;
  g_timed.sgemm_batched = timed_sgemm_batched;
  if (model_transformer_create(&m, &p, &g_timed, &po, &err) ||
      rollout_model_policy_init(&mp, &pol, m, &cfg, slots, max_len, &err) ||
      rollout_engine_create(&e, &pol, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  int32_t *prompts = malloc(sizeof(int32_t) * (size_t)P * L);
  for (int i = 0; i < P * L; i++) prompts[i] = (i * 7919) % cfg.vocab;
  rollout_group *groups = calloc((size_t)P, sizeof *groups);
  for (int g = 0; g < P; g++) groups[g] = (rollout_group){prompts + (size_t)g * L, L, G, (uint32_t)g, 0};
  rollout_output *outs = calloc((size_t)slots, sizeof *outs);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)slots * N);
  float *lps = malloc(sizeof(float) * (size_t)slots * N);
  for (int i = 0; i < slots; i++) outs[i] = (rollout_output){.ids = ids + (size_t)i * N, .logprobs = lps + (size_t)i * N};
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.max_new_tokens = N;
  o.seed = 3;

  /* prefill alone: one group of one sample, timed separately */
  double t0 = grpo_now_seconds();
  rollout_engine_stats st;
  rollout_engine_options o1 = o;
  o1.max_new_tokens = 1;
  rollout_group one[1] = {{prompts, L, 1, 0, 0}};
  if (rollout_engine_generate(e, &o1, one, 1, outs, &st, &err)) goto fail;
  double t_prefill = grpo_now_seconds() - t0;

  t0 = grpo_now_seconds();
  g_matmul_s = 0;
  if (rollout_engine_generate(e, &o, groups, P, outs, &st, &err)) goto fail;
  double t = grpo_now_seconds() - t0;
  double matmul_s = g_matmul_s;

  grpo_sgemm_peak peak;
  if (grpo_sgemm_peak_measure(1024, 1.0, &peak, &err)) goto fail;
  /* decode matmul FLOPs per token: 2 * (params in the layers + lm_head) */
  double per_layer = (double)cfg.hidden * (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim +
                     (double)cfg.n_heads * cfg.head_dim * cfg.hidden + 3.0 * cfg.hidden * cfg.ffn;
  double flops_tok = 2.0 * (cfg.n_layers * per_layer + (double)cfg.hidden * cfg.vocab);
  double decode_tps = st.decode_tokens / t;
  size_t kv = model_kv_cache_bytes(&cfg, slots, max_len);
  size_t kv_analytic = 2ull * cfg.n_layers * slots * max_len * cfg.n_kv_heads * cfg.head_dim * sizeof(float) +
                       (size_t)slots * sizeof(int);
  printf("bench_rollout_cpu: %d prompts x G=%d = %d sequences, prompt %d, %d new tokens, %d threads\n", P, G,
         slots, L, N, omp_get_max_threads());
  printf("  prefill calls          %ld (one per prompt: %s)\n", st.prefills, st.prefills == P ? "yes" : "NO");
  printf("  prefill tokens/s       %.0f (one %d-token prompt in %.3f s)\n", L / t_prefill, L, t_prefill);
  printf("  decode tokens/s        %.1f (%ld tokens in %.2f s, %ld batched steps)\n", decode_tps,
         st.decode_tokens, t, st.decode_steps);
  printf("  decode matmul GFLOP/s  %.2f = %.1f%% of the sgemm peak %.2f (cpu-time peak %.2f)\n",
         decode_tps * flops_tok / 1e9, 100.0 * decode_tps * flops_tok / 1e9 / peak.best_gflops, peak.best_gflops,
         peak.cpu_gflops);
  printf("  time outside matmuls   %.1f%% (%.2f s of %.2f s in the model's sgemm calls; attention, sampling,\n"
         "                         norms and bookkeeping are the rest)\n",
         100.0 * (1.0 - matmul_s / t), matmul_s, t);
  printf("  KV cache bytes         %zu (analytic %zu: %s)\n", kv, kv_analytic, kv == kv_analytic ? "equal" : "DIFFERENT");
  rollout_engine_free(e);
  rollout_model_policy_free(&mp);
  model_transformer_free(m);
  model_params_free(&p);
  return 0;
fail:
  fprintf(stderr, "%s\n", err.msg);
  return 1;
}
