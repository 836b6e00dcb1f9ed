/* Achieved FLOP/s of the CPU backend's FLOP-heavy fused ops (packed
 * attention fwd/bwd, classifier fwd/bwd) as a fraction of the sgemm peak
 * measured in the same run. Shapes default to the bench model
 * (hidden 512, 8 heads / 2 KV heads, head_dim 64, vocab 32000, 4096 tokens).
 *   Usage: bench_backend_ops [tokens=4096] [seq_len=1024] [reps=3] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/backend.h"
#include "core/sgemm_peak.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static void *xalloc(grpo_backend *be, size_t bytes) {
  void *p = NULL;
  grpo_error err = {0};
  if (be->alloc(be, bytes, &p, &err) != GRPO_OK) {
    fprintf(stderr, "bench_backend_ops: %s\n", err.msg);
    exit(1);
  }
  return p;
}

static void fill(float *x, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u + seed) % 1001) / 1001.0f - 0.5f;
}

int main(int argc, char **argv) {
  int T = argc > 1 ? atoi(argv[1]) : 4096, L = argc > 2 ? atoi(argv[2]) : 1024;
  int reps = argc > 3 ? atoi(argv[3]) : 3;
  if (T <= 0 || L <= 0 || reps <= 0) {
    fprintf(stderr, "usage: bench_backend_ops [tokens] [seq_len] [reps]\n");
    return 2;
  }
  grpo_backend *be = grpo_backend_cpu();
  grpo_sgemm_peak pk;
  grpo_error err = {0};
  if (grpo_sgemm_peak_measure(2048, 2.0, &pk, &err) != GRPO_OK) {
    fprintf(stderr, "bench_backend_ops: %s\n", err.msg);
    return 1;
  }
  double peak = pk.best_gflops, cpeak = pk.cpu_gflops / pk.threads;
  printf("sgemm peak: %.1f GFLOP/s (n=%d, %d threads); %.1f GFLOP per CPU-second\n", peak, pk.n,
         pk.threads, cpeak);

  /* attention: causal packing of T/L sequences of L tokens, fused QKV layout */
  int nh = 8, nkv = 2, hd = 64;
  int64_t ld = (int64_t)(nh + 2 * nkv) * hd;
  float *qkv = xalloc(be, sizeof(float) * T * ld), *dqkv = xalloc(be, sizeof(float) * T * ld);
  float *o = xalloc(be, sizeof(float) * T * nh * hd), *dout = xalloc(be, sizeof(float) * T * nh * hd);
  float *lse = xalloc(be, sizeof(float) * nh * T);
  int32_t *tin = xalloc(be, sizeof(int32_t) * T), *tout = xalloc(be, sizeof(int32_t) * T);
  fill(qkv, (size_t)T * ld, 1);
  fill(dout, (size_t)T * nh * hd, 2);
  double pairs = 0; /* visible (query, key) pairs */
  for (int i = 0; i < T; i++) {
    int s0 = i / L * L, s1 = s0 + L < T ? s0 + L : T;
    tin[i] = i;
    tout[i] = s1 - 1;
    pairs += i - s0 + 1;
  }
  grpo_attn_shape s = {T, nh, nkv, hd, 0.125f, qkv, ld, qkv + nh * hd, ld, qkv + (nh + nkv) * hd, ld, tin, tout, 0, 0, NULL};
  size_t wb = be->attn_workspace(be, T, nh, nkv, hd);
  void *ws = xalloc(be, wb);
  double f_fwd = 4.0 * pairs * nh * hd, f_bwd = 2.5 * f_fwd; /* useful FLOPs: fwd 2 products, bwd 5, no recompute */
  double best_f = 1e30, best_b = 1e30, cpu_f = 0, cpu_b = 0;
  for (int r = 0; r < reps; r++) {
    double c0 = cpu_s(), t0 = now_s();
    be->attn_fwd(be, &s, o, nh * hd, lse, ws, wb);
    double c1 = cpu_s(), t1 = now_s();
    be->attn_bwd(be, &s, o, nh * hd, lse, dout, nh * hd, dqkv, dqkv + nh * hd, dqkv + (nh + nkv) * hd, ws, wb);
    double c2 = cpu_s(), t2 = now_s();
    best_f = t1 - t0 < best_f ? t1 - t0 : best_f;
    best_b = t2 - t1 < best_b ? t2 - t1 : best_b;
    cpu_f += (c1 - c0) / reps;
    cpu_b += (c2 - c1) / reps;
  }
  printf("attention T=%d seq=%d nh=%d nkv=%d hd=%d: fwd %.1f ms %.1f GFLOP/s (%.0f%% of peak), "
         "bwd %.1f ms %.1f GFLOP/s (%.0f%%)\n",
         T, L, nh, nkv, hd, best_f * 1e3, f_fwd / best_f * 1e-9, 100 * f_fwd / best_f * 1e-9 / peak,
         best_b * 1e3, f_bwd / best_b * 1e-9, 100 * f_bwd / best_b * 1e-9 / peak);
  printf("  per CPU-second: fwd %.1f GFLOP (%.0f%% of sgemm's), bwd %.1f GFLOP (%.0f%%)\n",
         f_fwd / cpu_f * 1e-9, 100 * f_fwd / cpu_f * 1e-9 / cpeak, f_bwd / cpu_b * 1e-9,
         100 * f_bwd / cpu_b * 1e-9 / cpeak);

  /* classifier: every token predicts, untied lm_head [V, H] */
  int n = T, H = 512, V = 32000;
  float *h = xalloc(be, sizeof(float) * n * H), *W = xalloc(be, sizeof(float) * V * H);
  float *dh = xalloc(be, sizeof(float) * n * H), *dW = xalloc(be, sizeof(float) * V * H);
  float *lp = xalloc(be, sizeof(float) * n), *en = xalloc(be, sizeof(float) * n);
  float *ls = xalloc(be, sizeof(float) * n), *g = xalloc(be, sizeof(float) * n);
  int32_t *tg = xalloc(be, sizeof(int32_t) * n);
  fill(h, (size_t)n * H, 3);
  fill(W, (size_t)V * H, 4);
  be->memset(be, dh, 0, sizeof(float) * n * H);
  be->memset(be, dW, 0, sizeof(float) * V * H);
  for (int i = 0; i < n; i++) tg[i] = (int32_t)((i * 7919u) % (unsigned)V), g[i] = 1.0f / n;
  grpo_classifier_shape c = {n, H, V, h, H, NULL, W, tg, 1.0f, 0, 0};
  size_t cb = be->classifier_workspace(be, &c);
  void *cw = xalloc(be, cb);
  double cf = 2.0 * n * H * (double)V;
  best_f = best_b = 1e30;
  cpu_f = cpu_b = 0;
  for (int r = 0; r < reps; r++) {
    double c0 = cpu_s(), t0 = now_s();
    be->classifier_fwd(be, &c, lp, en, ls, cw, cb);
    double c1 = cpu_s(), t1 = now_s();
    be->classifier_bwd(be, &c, ls, en, g, g, dh, H, dW, cw, cb);
    double c2 = cpu_s(), t2 = now_s();
    best_f = t1 - t0 < best_f ? t1 - t0 : best_f;
    best_b = t2 - t1 < best_b ? t2 - t1 : best_b;
    cpu_f += (c1 - c0) / reps;
    cpu_b += (c2 - c1) / reps;
  }
  printf("classifier n=%d H=%d V=%d (workspace %.1f MB): fwd %.1f ms %.1f GFLOP/s (%.0f%%), "
         "bwd %.1f ms %.1f GFLOP/s (%.0f%%; 3 sgemms: logits recompute, dh, dW)\n",
         n, H, V, cb / 1e6, best_f * 1e3, cf / best_f * 1e-9, 100 * cf / best_f * 1e-9 / peak,
         best_b * 1e3, 3 * cf / best_b * 1e-9, 100 * 3 * cf / best_b * 1e-9 / peak);
  printf("  per CPU-second: fwd %.1f GFLOP (%.0f%% of sgemm's), bwd %.1f GFLOP (%.0f%%)\n",
         cf / cpu_f * 1e-9, 100 * cf / cpu_f * 1e-9 / cpeak, 3 * cf / cpu_b * 1e-9,
         100 * 3 * cf / cpu_b * 1e-9 / cpeak);
  return 0;
}
