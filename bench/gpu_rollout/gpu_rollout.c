/* bench/gpu_rollout: batched decode throughput of a Qwen2.5-0.5B-shaped model
 * (random weights) on one GPU, against the HBM roofline of
 * shared/reference/model-and-io.md section 9:
 *
 *   bound (tokens/s) = BW * B / (W + B * ctx * kv_per_token)
 *
 * W = bytes of the weights one step reads (bf16: every layer tensor, the
 * final norm and the lm_head once; the embedding gather is excluded, and
 * tied, the lm_head is the embedding: W = 2 x all parameters), kv_per_token =
 * L * 2 * nkv * hd * 2 (bf16), ctx = the mean over the timed steps of the
 * rows each sequence's attention reads, BW = --bw-tbs (3.35: H100 SXM; 4.8:
 * H200). The bound is taken in bf16 whatever --act says (the target of the
 * issue); the run's own KV bytes are printed beside it.
 *
 * Flow: G distinct random prompts of P tokens, each prefilled once
 * (model_prefill) and copied into its B/G slots (model_kv_cache_copy_prefix,
 * as the rollout engine shares a group's prompt); then `warm` untimed decode
 * steps and N timed ones of all B slots, each model_decode_step_sample at
 * temperature 1 (no top-k/top-p: the RL default) with Philox draws, so the
 * [B, V] logits stay on the device and only the B results come back. EOS is
 * not a stop: every slot decodes every step. --host-sample instead returns the
 * logits to the host (model_decode_step) and samples there (a diagnostic).
 *
 *   bench_gpu_rollout [--device cuda|cpu] [--act bf16|f32] [--tiny] [--layers L]
 *                     [--batch B] [--groups G] [--prompt P] [--new N] [--warm W]
 *                     [--bw-tbs X] [--peak-tflops X] [--host-sample] [--json FILE]
 *
 * Defaults: cuda, bf16, B 256, G 16, P 768, N 512, W 8: the timed steps read
 * a mean context of about P + W + N/2 = 1032 rows (the roofline table's
 * "B=256, ctx 1024" column). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gpu/bench_common.h"
#include "core/philox.h"
#include "core/runtime.h"
#include "core/sample.h"
#include "model/kv_cache.h"
#include "model/params.h"
#include "model/transformer.h"

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--device cuda|cpu] [--act bf16|f32] [--tiny] [--layers L] [--batch B] [--groups G]\n"
          "          [--prompt P] [--new N] [--warm W] [--bw-tbs X] [--peak-tflops X] [--host-sample]\n"
          "          [--json FILE]\n",
          argv0);
  exit(2);
}

static void die(const char *what, const grpo_error *err) {
  fprintf(stderr, "bench_gpu_rollout: %s: %s\n", what, err->msg);
  exit(1);
}

/* Temperature-1 categorical draw from one row of host logits (inverse CDF). */
static int32_t host_sample(const float *z, int V, double u) {
  double mx = z[0], s = 0;
  for (int v = 1; v < V; v++)
    if (z[v] > mx) mx = z[v];
  for (int v = 0; v < V; v++) s += exp(z[v] - mx);
  double t = u * s, c = 0;
  for (int v = 0; v < V; v++) {
    c += exp(z[v] - mx);
    if (c > t) return v;
  }
  return V - 1;
}

int main(int argc, char **argv) {
  grpo_runtime_init(argv);
  const char *device = "cuda", *act = NULL, *json = NULL;
  int tiny = 0, layers = 0, B = 0, G = 0, P = 0, N = 0, warm = 8, host = 0;
  double bw_tbs = 3.35, peak_tflops = 989.4;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--device") && more) device = argv[++i];
    else if (!strcmp(a, "--act") && more) act = argv[++i];
    else if (!strcmp(a, "--tiny")) tiny = 1;
    else if (!strcmp(a, "--layers") && more) layers = atoi(argv[++i]);
    else if (!strcmp(a, "--batch") && more) B = atoi(argv[++i]);
    else if (!strcmp(a, "--groups") && more) G = atoi(argv[++i]);
    else if (!strcmp(a, "--prompt") && more) P = atoi(argv[++i]);
    else if (!strcmp(a, "--new") && more) N = atoi(argv[++i]);
    else if (!strcmp(a, "--warm") && more) warm = atoi(argv[++i]);
    else if (!strcmp(a, "--bw-tbs") && more) bw_tbs = atof(argv[++i]);
    else if (!strcmp(a, "--peak-tflops") && more) peak_tflops = atof(argv[++i]);
    else if (!strcmp(a, "--host-sample")) host = 1;
    else if (!strcmp(a, "--json") && more) json = argv[++i];
    else usage(argv[0]);
  }
  if (!act) act = strcmp(device, "cpu") ? "bf16" : "f32";
  if (B <= 0) B = tiny ? 16 : 256;
  if (G <= 0) G = tiny ? 4 : 16;
  if (P <= 0) P = tiny ? 32 : 768;
  if (N <= 0) N = tiny ? 32 : 512;
  if (G > B || B % G || warm < 0 || bw_tbs <= 0) usage(argv[0]);
  const int max_len = P + warm + N + 1;

  grpo_error err = {0};
  model_config cfg;
  if (bench_qwen_config(&cfg, tiny, layers, &err)) die("config", &err);
  grpo_backend *be = NULL;
  if (bench_backend(device, act, &be, &err)) die("backend", &err);
  char devname[256];
  bench_device_name(be, devname, sizeof devname);
  double mem_total = 0;
  double mem_start = bench_mem_used(be, &mem_total);

  model_params p;
  if (model_params_init(&p, &cfg, &err)) die("params", &err);
  bench_init_weights(&p, 7, 0.02f);
  if (model_params_bind(&p, be, &err)) die("bind", &err);
  double mem_params = bench_mem_used(be, &mem_total);
  model_plan_opts po = {.max_tokens = P > B ? P : B, .max_pred = 1, .max_cache_len = max_len,
                        .sample_rows = host ? 0 : B};
  model_transformer *m = NULL;
  if (model_transformer_create(&m, model_params_device(&p), be, &po, &err)) die("plan", &err);
  double mem_plan = bench_mem_used(be, &mem_total);
  model_kv_cache kv;
  if (model_kv_cache_init_on(&kv, &cfg, be, B, max_len, &err)) die("kv cache", &err);
  double kv_bytes = (double)model_kv_cache_bytes_on(&cfg, be, B, max_len);
  double mem_kv = bench_mem_used(be, &mem_total);

  /* prompts: G random prompts, each prefilled once and copied to its group */
  const int per = B / G;
  int32_t *prompt = malloc(sizeof(int32_t) * (size_t)P);
  int *slots = malloc(sizeof(int) * (size_t)B), *dst = malloc(sizeof(int) * (size_t)B);
  int32_t *next = malloc(sizeof(int32_t) * (size_t)B);
  double *u = malloc(sizeof(double) * (size_t)B);
  grpo_sample_result *res = malloc(sizeof *res * (size_t)B);
  float *logits = host ? malloc(sizeof(float) * (size_t)B * cfg.vocab) : NULL;
  if (!prompt || !slots || !dst || !next || !u || !res || (host && !logits)) return 1;
  grpo_rng_stream rs;
  grpo_rng_stream_init(&rs, 5, GRPO_RNG_TEST, 0, 0);
  double t0 = bench_now();
  for (int g = 0; g < G; g++) {
    for (int i = 0; i < P; i++) prompt[i] = (int32_t)grpo_rng_stream_below(&rs, (uint32_t)cfg.vocab);
    if (model_prefill(m, &kv, g * per, prompt, P, NULL, &err)) die("prefill", &err);
    for (int j = 1; j < per; j++) dst[j - 1] = g * per + j;
    if (per > 1 && model_kv_cache_copy_prefix(&kv, g * per, dst, per - 1, P, &err)) die("prefix copy", &err);
  }
  if (be->sync(be, &err)) die("prefill", &err);
  double t_prefill = bench_now() - t0;
  for (int i = 0; i < B; i++) {
    slots[i] = i;
    next[i] = (int32_t)grpo_rng_stream_below(&rs, (uint32_t)cfg.vocab);
  }

  /* decode: warm-up steps, then the timed ones (each synchronises: the
   * sampled ids come back to the host for the next step) */
  grpo_sample_params sp = {.temperature = 1.0f, .top_p = 1.0f, .top_k = 0, .min_p = 0.0f};
  double *t_step = calloc((size_t)N, sizeof(double)), ctx_sum = 0, lp_sum = 0, ent_sum = 0;
  double mem_lo = 0, mem_hi = 0;
  if (!t_step) return 1;
  double t_dec = 0;
  for (int step = 0; step < warm + N; step++) {
    int held = kv.len[slots[0]]; /* rows attention reads this step: held + 1 */
    for (int i = 0; i < B; i++) {
      uint32_t w[4];
      grpo_rng_u32x4(3, GRPO_RNG_SAMPLING, (uint32_t)step, (uint32_t)i, 0, 0, w);
      u[i] = grpo_rng_u64_to_unit(w[0], w[1]);
    }
    double s0 = bench_now();
    if (host) {
      if (model_decode_step(m, &kv, B, slots, next, logits, &err)) die("decode", &err);
      for (int i = 0; i < B; i++) next[i] = host_sample(logits + (size_t)i * cfg.vocab, cfg.vocab, u[i]);
    } else {
      if (model_decode_step_sample(m, &kv, B, slots, next, cfg.vocab, &sp, u, res, &err)) die("decode", &err);
      for (int i = 0; i < B; i++) next[i] = res[i].token;
    }
    double s1 = bench_now();
    if (step >= warm) {
      t_step[step - warm] = s1 - s0;
      t_dec += s1 - s0;
      ctx_sum += held + 1;
      if (!host)
        for (int i = 0; i < B; i++) lp_sum += res[i].logprob, ent_sum += res[i].entropy;
      double used = bench_mem_used(be, &mem_total);
      if (step == warm || used < mem_lo) mem_lo = used;
      if (step == warm || used > mem_hi) mem_hi = used;
    }
  }
  for (int i = 0; i < B; i++)
    if (next[i] < 0 || next[i] >= cfg.vocab) {
      fprintf(stderr, "bench_gpu_rollout: slot %d sampled id %d outside the vocabulary\n", i, next[i]);
      return 1;
    }
  if (be->kind == GRPO_DEVICE_CPU) mem_hi = bench_cpu_peak_rss();

  /* roofline (bf16 weights and KV) */
  const double nparams = (double)model_config_num_params(&cfg);
  const double embed = (double)cfg.vocab * cfg.hidden;
  const double W = 2.0 * (cfg.tie_embeddings ? nparams : nparams - embed);
  const double kv_tok = (double)cfg.n_layers * 2 * cfg.n_kv_heads * cfg.head_dim * 2;
  const double ctx = ctx_sum / N;
  const double bound = bw_tbs * 1e12 * B / (W + B * ctx * kv_tok);
  const double flops_tok = 2.0 * (bench_layer_matmul_params(&cfg) + embed); /* matmuls incl. lm_head */
  const double ceiling = peak_tflops * 1e12 / flops_tok;
  const double tok_s = (double)B * N / t_dec, med = bench_median(t_step, N);
  const double bytes_step = W + B * ctx * kv_tok; /* per step, at the mean context */

  printf("bench_gpu_rollout: %s, device %s (%s), act %s, sampler %s\n",
         tiny ? "qwen2.5-tiny" : "qwen2.5-0.5b-shaped", device, devname, act,
         host ? "host (logits copied back)" : "device (model_decode_step_sample)");
  printf("  model            H=%d L=%d nh=%d nkv=%d hd=%d I=%d V=%d tied; %.1f M params\n", cfg.hidden,
         cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn, cfg.vocab, nparams / 1e6);
  printf("  batch            %d slots = %d prompts x %d, prompt %d, %d warm-up + %d timed steps, T=1\n", B, G,
         per, P, warm, N);
  printf("  prefill          %.3f s for %d prompts (%.0f prompt tokens/s; copies to %d slots included)\n",
         t_prefill, G, G * (double)P / t_prefill, B);
  printf("  decode           %.0f tokens/s (%d x %d tokens in %.3f s); step median %.3f ms\n", tok_s, B, N,
         t_dec, 1e3 * med);
  printf("  roofline         W %.3f GB, KV %.0f B/token, mean ctx %.1f -> %.3f GB/step; bound at %.2f TB/s: "
         "%.0f tokens/s\n", W / 1e9, kv_tok, ctx, bytes_step / 1e9, bw_tbs, bound);
  printf("  vs roofline      %.1f%% of the bound (achieved %.2f TB/s effective); compute ceiling %.0f tokens/s "
         "(%.1f%%)\n", 100 * tok_s / bound, tok_s / B * bytes_step / 1e12, ceiling, 100 * tok_s / ceiling);
  if (!host)
    printf("  sampled          mean logprob %.3f, mean entropy %.3f (ln V = %.3f)\n", lp_sum / ((double)B * N),
           ent_sum / ((double)B * N), log((double)cfg.vocab));
  printf("  memory (%s)  start %.2f GiB, +weights %.2f, +plan %.2f, +KV cache %.2f (analytic %.2f) -> "
         "%.2f GiB; during decode %.3f..%.3f GiB of %.2f\n",
         be->kind == GRPO_DEVICE_CPU ? "RSS" : "device", mem_start / BENCH_GIB,
         (mem_params - mem_start) / BENCH_GIB, (mem_plan - mem_params) / BENCH_GIB,
         (mem_kv - mem_plan) / BENCH_GIB, kv_bytes / BENCH_GIB, mem_kv / BENCH_GIB, mem_lo / BENCH_GIB,
         mem_hi / BENCH_GIB, mem_total / BENCH_GIB);

  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) {
      fprintf(stderr, "bench_gpu_rollout: cannot write %s\n", json);
      return 1;
    }
    fprintf(f,
            "{\n  \"bench\": \"gpu_rollout\", \"impl\": \"grpo\", \"model\": \"%s\", \"device\": \"%s\",\n"
            "  \"device_name\": \"%s\", \"act\": \"%s\", \"sampler\": \"%s\",\n"
            "  \"params\": %.0f, \"batch\": %d, \"groups\": %d, \"prompt\": %d, \"new\": %d, \"warm\": %d,\n"
            "  \"prefill_s\": %.4f, \"decode_s\": %.4f, \"decode_tokens_per_s\": %.2f, \"step_ms_median\": %.4f,\n"
            "  \"weight_bytes_bf16\": %.0f, \"kv_bytes_per_token_bf16\": %.0f, \"mean_ctx\": %.2f,\n"
            "  \"bw_tbs\": %.3f, \"roofline_tokens_per_s\": %.2f, \"roofline_frac\": %.5f,\n"
            "  \"compute_ceiling_tokens_per_s\": %.2f, \"peak_tflops\": %.1f,\n"
            "  \"kv_cache_bytes\": %.0f, \"mem_kind\": \"%s\", \"mem_start_bytes\": %.0f,"
            " \"mem_after_kv_bytes\": %.0f, \"mem_decode_min_bytes\": %.0f, \"mem_decode_max_bytes\": %.0f,"
            " \"mem_total_bytes\": %.0f\n}\n",
            tiny ? "qwen2.5-tiny" : "qwen2.5-0.5b-shaped", device, devname, act, host ? "host" : "device",
            nparams, B, G, P, N, warm, t_prefill, t_dec, tok_s, 1e3 * med, W, kv_tok, ctx, bw_tbs, bound,
            tok_s / bound, ceiling, peak_tflops, kv_bytes, be->kind == GRPO_DEVICE_CPU ? "rss" : "cudaMemGetInfo",
            mem_start, mem_kv, mem_lo, mem_hi, mem_total);
    fclose(f);
  }

  model_kv_cache_free(&kv);
  model_transformer_free(m);
  model_params_free(&p);
  bench_backend_free(be);
  free(prompt);
  free(slots);
  free(dst);
  free(next);
  free(u);
  free(res);
  free(logits);
  free(t_step);
  return 0;
}
