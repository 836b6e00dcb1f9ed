/* bench/model_cpu: forward+backward and decode throughput of the 'bench'
 * model on the CPU backend, against the machine's sgemm peak measured in the
 * same run, and peak RSS against the analytic memory sum.
 *
 * Model: Qwen2-shaped, hidden 512, 8 layers, 8 heads / 2 KV heads, FFN 1408,
 * vocab 32000, tied embeddings, random init. Batch: 4096 tokens packed as
 * 8 sequences x 512; every next-token prediction (4088) weighted randomly.
 * Decode: 8 slots, 128-token prompts, 128 greedy steps (tools/bench_torch_model.py
 * runs the same in PyTorch).
 *
 *   bench_model_cpu [--iters N] [--recompute] [--peak-seconds S] [--no-decode] [--no-train]
 *                   [--profile]   (per-op wall time of the last step and of decode)
 * Threads: OMP_NUM_THREADS (OpenBLAS follows it). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/backend.h"
#include "core/philox.h"
#include "core/sgemm_peak.h"
#include "model/kv_cache.h"
#include "model/params.h"
#include "model/transformer.h"
#include "prof_backend.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* process CPU time (all threads): on a shared, loaded machine wall time
 * stretches with other jobs, CPU time much less (with 1 thread it is the
 * step's own work; with more it also counts OpenMP's spin-waiting) */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double peak_rss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

static void die(const char *what, const grpo_error *err) {
  fprintf(stderr, "bench_model_cpu: %s: %s\n", what, err->msg);
  exit(1);
}

int main(int argc, char **argv) {
  int iters = 3, recompute = 0, decode = 1, train = 1, profile = 0;
  double peak_s = 3.0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--recompute")) recompute = 1;
    else if (!strcmp(argv[i], "--no-decode")) decode = 0;
    else if (!strcmp(argv[i], "--no-train")) train = 0;
    else if (!strcmp(argv[i], "--profile")) profile = 1;
    else if (!strcmp(argv[i], "--peak-seconds") && i + 1 < argc) peak_s = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--iters N] [--recompute] [--peak-seconds S] [--no-decode] [--no-train] [--profile]\n",
              argv[0]);
      return 2;
    }
  }
  grpo_error err = {0};
  model_config cfg;
  model_config_defaults(&cfg, MODEL_ARCH_QWEN2);
  cfg.hidden = 512;
  cfg.n_layers = 8;
  cfg.n_heads = 8;
  cfg.n_kv_heads = 2;
  cfg.head_dim = 64;
  cfg.ffn = 1408;
  cfg.vocab = 32000;
  cfg.max_pos = 4096;
  cfg.rope_theta = 1e6;
  cfg.tie_embeddings = 1;
  if (model_config_validate(&cfg, "bench", &err)) die("config", &err);

  const int SEQS = 8, SEQLEN = 512, T = SEQS * SEQLEN;
  const int SLOTS = 8, PROMPT = 128, NEW = 128;
  grpo_sgemm_peak pk;
  if (grpo_sgemm_peak_measure(2048, peak_s, &pk, &err)) die("sgemm peak", &err);

  model_params p;
  if (model_params_init(&p, &cfg, &err) || model_params_alloc_grad(&p, &err)) die("params", &err);
  model_params_init_random(&p, 7, 0.02f);
  grpo_backend *be = grpo_backend_cpu();
  if (profile) be = prof_wrap(be);
  float *m_opt = calloc(p.total, sizeof(float)), *v_opt = calloc(p.total, sizeof(float));
  if (!m_opt || !v_opt) return 1;

  int32_t *ids = malloc(sizeof(int32_t) * T), *pos = malloc(sizeof(int32_t) * T);
  int32_t *tin = malloc(sizeof(int32_t) * T), *tout = malloc(sizeof(int32_t) * T);
  int32_t *row = malloc(sizeof(int32_t) * T), *tgt = malloc(sizeof(int32_t) * T);
  float *w = malloc(sizeof(float) * T), *lp = malloc(sizeof(float) * T);
  float *ent = malloc(sizeof(float) * T);
  grpo_rng_stream rs;
  grpo_rng_stream_init(&rs, 11, GRPO_RNG_TEST, 0, 0);
  int P = 0;
  for (int s = 0; s < SEQS; s++)
    for (int k = 0; k < SEQLEN; k++) {
      int i = s * SEQLEN + k;
      ids[i] = (int32_t)grpo_rng_stream_below(&rs, (uint32_t)cfg.vocab);
      pos[i] = k;
      tin[i] = i;
      tout[i] = s * SEQLEN + SEQLEN - 1;
      if (k > 0) {
        row[P] = i - 1;
        tgt[P] = ids[i];
        w[P] = (float)(grpo_rng_stream_unit(&rs) - 0.5) / T;
        P++;
      }
    }
  model_batch b = {.n_tokens = T, .ids = ids, .pos = pos, .tin = tin, .tout = tout, .n_pred = P,
                   .pred_row = row, .pred_target = tgt, .temperature = 1.0f};
  model_plan_opts opts = {.max_tokens = T, .max_pred = P, .recompute = recompute,
                          .max_cache_len = PROMPT + NEW};
  model_transformer *m = NULL;
  if (model_transformer_create(&m, &p, be, &opts, &err)) die("create", &err);

  /* matmul FLOPs of one forward (nominal; backward counted as 2x) */
  double H = cfg.hidden, I = cfg.ffn, V = cfg.vocab, qd = cfg.n_heads * cfg.head_dim,
         kd = cfg.n_kv_heads * cfg.head_dim;
  double per_tok = 2.0 * (H * qd + 2 * H * kd + qd * H + 3 * H * I) * cfg.n_layers;
  double attn_pairs = (double)SEQS * SEQLEN * (SEQLEN + 1) / 2.0;  /* causal (i, j) pairs */
  double fwd_flops = per_tok * T + 2.0 * 2.0 * attn_pairs * qd * cfg.n_layers + 2.0 * H * V * P;
  double step_flops = 3.0 * fwd_flops;

  grpo_adamw_hparams hp = {.lr = 1e-5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 0.0, .grad_scale = 1.0f};
  grpo_adamw_prepare(&hp, 1);
  double best = 1e30, sum = 0, best_f = 1e30, last_step = 0, best_cpu = 1e30;
  for (int it = 0; train && it <= iters; it++) {
    model_params_zero_grad(&p);
    if (profile) prof_reset();
    double c0 = cpu_now();
    double t0 = now();
    if (model_forward(m, &b, lp, ent, NULL, &err)) die("forward", &err);
    double t1 = now();
    if (model_backward(m, &b, w, NULL, &err)) die("backward", &err);
    double t2 = now();
    double c2 = cpu_now();
    if (it == 0) {
      /* touch the optimizer state once, as a training step would */
      be->adamw(be, p.data, p.grad, m_opt, v_opt, p.total, &hp);
      continue;  /* warm-up */
    }
    last_step = t2 - t0;
    if (c2 - c0 < best_cpu) best_cpu = c2 - c0;
    if (t2 - t0 < best) best = t2 - t0;
    if (t1 - t0 < best_f) best_f = t1 - t0;
    sum += t2 - t0;
  }
  double train_rss = peak_rss_mib();
  if (profile && train) prof_report("fwd+bwd (last step)", last_step, pk.best_gflops);

  double dec_tok_s = 0, prefill_tok_s = 0;
  size_t kv_bytes = 0;
  if (decode) {
    model_kv_cache c;
    if (model_kv_cache_init(&c, &cfg, SLOTS, PROMPT + NEW, &err)) die("kv cache", &err);
    kv_bytes = model_kv_cache_bytes(&cfg, SLOTS, PROMPT + NEW);
    float *logits = malloc(sizeof(float) * (size_t)SLOTS * cfg.vocab);
    int slots[64];
    int32_t next[64];
    double t0 = now();
    for (int s = 0; s < SLOTS; s++) {
      if (model_prefill(m, &c, s, ids + s * SEQLEN, PROMPT, logits + (size_t)s * cfg.vocab, &err))
        die("prefill", &err);
      slots[s] = s;
    }
    double t1 = now();
    if (profile) prof_reset();
    for (int step = 0; step < NEW; step++) {
      for (int s = 0; s < SLOTS; s++) {
        const float *z = logits + (size_t)s * cfg.vocab;
        int a = 0;
        for (int v = 1; v < cfg.vocab; v++)
          if (z[v] > z[a]) a = v;
        next[s] = a;
      }
      if (model_decode_step(m, &c, SLOTS, slots, next, logits, &err)) die("decode", &err);
    }
    double t2 = now();
    prefill_tok_s = SLOTS * PROMPT / (t1 - t0);
    dec_tok_s = SLOTS * NEW / (t2 - t1);
    if (profile) prof_report("decode (128 steps)", t2 - t1, pk.best_gflops);
    free(logits);
    model_kv_cache_free(&c);
  }

  double mib = 1024.0 * 1024.0;
  double params_b = p.total * 4.0, ws_b = (double)model_transformer_workspace_bytes(m);
  double analytic = 4 * params_b + ws_b;  /* params + grads + AdamW m, v + activations */
  printf("bench_model_cpu: qwen2-shaped H=512 L=8 nh=8 nkv=2 I=1408 V=32000 tied, %d tokens "
         "(%d x %d), %d predictions, recompute=%d\n", T, SEQS, SEQLEN, P, recompute);
  printf("threads: omp %d\n", omp_get_max_threads());
  printf("sgemm peak (n=%d, %d threads): best %.1f GFLOP/s, mean %.1f GFLOP/s\n", pk.n, pk.threads,
         pk.best_gflops, pk.mean_gflops);
  printf("fwd+bwd: best %.3f s, mean %.3f s over %d iters -> %.0f tokens/s (fwd alone %.3f s)\n",
         best, sum / iters, iters, T / best, best_f);
  printf("fwd+bwd process CPU time: best %.3f s (%.2f x wall)\n", best_cpu, best_cpu / best);
  printf("matmul FLOPs per step (3x forward) %.1f GFLOP -> %.1f GFLOP/s = %.1f%% of sgemm peak "
         "(best)\n", step_flops / 1e9, step_flops / best / 1e9,
         100.0 * step_flops / best / 1e9 / pk.best_gflops);
  if (decode)
    printf("decode: %d slots, prompt %d, %d new: prefill %.0f tokens/s, decode %.1f tokens/s\n",
           SLOTS, PROMPT, NEW, prefill_tok_s, dec_tok_s);
  printf("memory: params %.1f MiB, grads %.1f, AdamW m+v %.1f, activations/workspace %.1f, "
         "analytic sum %.1f MiB; kv cache %.1f MiB\n", params_b / mib, params_b / mib,
         2 * params_b / mib, ws_b / mib, analytic / mib, kv_bytes / mib);
  printf("peak RSS: after training steps %.1f MiB (%.2fx analytic), at end %.1f MiB (%.2fx "
         "analytic + kv)\n", train_rss, train_rss * mib / analytic, peak_rss_mib(),
         peak_rss_mib() * mib / (analytic + kv_bytes));
  model_transformer_free(m);
  model_params_free(&p);
  free(m_opt);
  free(v_opt);
  free(ids);
  free(pos);
  free(tin);
  free(tout);
  free(row);
  free(tgt);
  free(w);
  free(lp);
  free(ent);
  return 0;
}
