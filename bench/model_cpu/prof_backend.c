/* bench/model_cpu --profile: wraps a backend's op table with wall-clock
 * timers, per op and (for sgemm) per call shape, so the bench can say where
 * a training step or a decode step spends its time. The wrapped ops call the
 * real ones unchanged; only the bench uses this. */
#include "prof_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static grpo_backend *inner;
static grpo_backend wrapped;

typedef struct prof_row {
  char key[96];
  double s, cpu, flop;
  long calls;
} prof_row;

#define MAX_ROWS 256
static prof_row rows[MAX_ROWS];
static int n_rows;
static int enabled = 1;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* process CPU time: with one thread, an op's own work even when the shared
 * machine is loaded (wall time then stretches) */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double cpu_mark;

static void add(const char *key, double s, double flop) {
  if (!enabled) return;
  double c = cpu_now() - cpu_mark;
  for (int i = 0; i < n_rows; i++)
    if (!strcmp(rows[i].key, key)) {
      rows[i].cpu += c;
      rows[i].s += s;
      rows[i].flop += flop;
      rows[i].calls++;
      return;
    }
  if (n_rows == MAX_ROWS) return;
  prof_row *r = &rows[n_rows++];
  snprintf(r->key, sizeof r->key, "%s", key);
  r->s = s;
  r->cpu = c;
  r->flop = flop;
  r->calls = 1;
}

#define TIMED(name, call) \
  do {                    \
    cpu_mark = cpu_now(); \
    double t0_ = now();   \
    call;                 \
    add(name, now() - t0_, 0.0); \
  } while (0)

static void w_sgemm(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                    const void *A, int64_t lda, const void *B, int64_t ldb, float beta, void *C,
                    int64_t ldc) {
  cpu_mark = cpu_now();
  double t0 = now();
  inner->sgemm(inner, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  char key[96];
  snprintf(key, sizeof key, "sgemm %c%c m=%d n=%d k=%d", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
  add(key, now() - t0, 2.0 * m * n * (double)k);
}

static void w_rmsnorm_fwd(grpo_backend *be, void *y, int64_t ldy, float *rstd, const void *x,
                          int64_t ldx, const void *w, int r, int h, int d, float eps) {
  TIMED("rmsnorm_fwd", inner->rmsnorm_fwd(inner, y, ldy, rstd, x, ldx, w, r, h, d, eps));
}
static void w_rmsnorm_bwd(grpo_backend *be, void *dx, int64_t lddx, int acc, float *dw,
                          const void *dy, int64_t lddy, const void *x, int64_t ldx, const void *w,
                          const float *rstd, int r, int h, int d) {
  TIMED("rmsnorm_bwd", inner->rmsnorm_bwd(inner, dx, lddx, acc, dw, dy, lddy, x, ldx, w, rstd, r, h, d));
}
static void w_rope_fwd(grpo_backend *be, void *x, int64_t ldx, int r, int h, int hd,
                       const int32_t *pos, const float *f) {
  TIMED("rope_fwd", inner->rope_fwd(inner, x, ldx, r, h, hd, pos, f));
}
static void w_rope_bwd(grpo_backend *be, void *x, int64_t ldx, int r, int h, int hd,
                       const int32_t *pos, const float *f) {
  TIMED("rope_bwd", inner->rope_bwd(inner, x, ldx, r, h, hd, pos, f));
}
static void w_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo,
                       float *lse, void *ws, size_t wsb) {
  TIMED("attn_fwd", inner->attn_fwd(inner, s, out, ldo, lse, ws, wsb));
}
static void w_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                       const float *lse, const void *dout, int64_t lddo, void *dq, void *dk,
                       void *dv, void *ws, size_t wsb) {
  TIMED("attn_bwd", inner->attn_bwd(inner, s, out, ldo, lse, dout, lddo, dq, dk, dv, ws, wsb));
}
static void w_attn_decode(grpo_backend *be, void *out, const void *q, const void *kc,
                          const void *vc, const int32_t *slots, const int32_t *lens, int n, int nh,
                          int nkv, int hd, int tmax, float scale, void *ws, size_t wsb) {
  TIMED("attn_decode",
        inner->attn_decode(inner, out, q, kc, vc, slots, lens, n, nh, nkv, hd, tmax, scale, ws, wsb));
}
static void w_kv_write(grpo_backend *be, void *cache, const void *src, int64_t lds,
                       const int32_t *slots, const int32_t *pos, int n, int width, int tmax) {
  TIMED("kv_write", inner->kv_write(inner, cache, src, lds, slots, pos, n, width, tmax));
}
static void w_swiglu_fwd(grpo_backend *be, void *o, int64_t ldo, const void *g, int64_t ldg,
                         const void *u, int64_t ldu, int r, int c) {
  TIMED("swiglu_fwd", inner->swiglu_fwd(inner, o, ldo, g, ldg, u, ldu, r, c));
}
static void w_swiglu_bwd(grpo_backend *be, void *dg, int64_t lddg, void *du, int64_t lddu,
                         const void *d, int64_t lddo, const void *g, int64_t ldg, const void *u,
                         int64_t ldu, int r, int c) {
  TIMED("swiglu_bwd", inner->swiglu_bwd(inner, dg, lddg, du, lddu, d, lddo, g, ldg, u, ldu, r, c));
}
static void w_embed_fwd(grpo_backend *be, void *o, int64_t ldo, const void *t, const int32_t *ids,
                        int r, int d) {
  TIMED("embed_fwd", inner->embed_fwd(inner, o, ldo, t, ids, r, d));
}
static void w_embed_bwd(grpo_backend *be, float *dt, const void *d, int64_t ldd, const int32_t *ids,
                        int r, int dim) {
  TIMED("embed_bwd", inner->embed_bwd(inner, dt, d, ldd, ids, r, dim));
}
static void w_bias_add(grpo_backend *be, void *y, int64_t ldy, const void *b, int r, int c) {
  TIMED("bias_add", inner->bias_add(inner, y, ldy, b, r, c));
}
static void w_bias_grad(grpo_backend *be, float *db, const void *dy, int64_t lddy, int r, int c) {
  TIMED("bias_grad", inner->bias_grad(inner, db, dy, lddy, r, c));
}
static int w_copy_d2d(grpo_backend *be, void *d, const void *s, size_t n, grpo_error *err) {
  int rc;
  TIMED("copy_d2d", rc = inner->copy_d2d(inner, d, s, n, err));
  return rc;
}
static void w_memset(grpo_backend *be, void *d, int b, size_t n) {
  TIMED("memset", inner->memset(inner, d, b, n));
}
static void w_copy2d(grpo_backend *be, void *d, int64_t ldd, const void *s, int64_t lds, int r,
                     int c) {
  TIMED("copy2d", inner->copy2d(inner, d, ldd, s, lds, r, c));
}
static void w_cls_fwd(grpo_backend *be, const grpo_classifier_shape *s, float *lp, float *ent,
                      float *lse, void *ws, size_t wsb) {
  cpu_mark = cpu_now();
  double t0 = now();
  inner->classifier_fwd(inner, s, lp, ent, lse, ws, wsb);
  add("classifier_fwd", now() - t0, 2.0 * s->n * (double)s->vocab * s->hidden);
}
static void w_cls_bwd(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                      const float *ent, const float *dlp, const float *dent, void *dh,
                      int64_t lddh, float *dw, void *ws, size_t wsb) {
  cpu_mark = cpu_now();
  double t0 = now();
  inner->classifier_bwd(inner, s, lse, ent, dlp, dent, dh, lddh, dw, ws, wsb);
  add("classifier_bwd", now() - t0, 6.0 * s->n * (double)s->vocab * s->hidden);
}

grpo_backend *prof_wrap(grpo_backend *be) {
  inner = be;
  wrapped = *be;
  wrapped.sgemm = w_sgemm;
  wrapped.rmsnorm_fwd = w_rmsnorm_fwd;
  wrapped.rmsnorm_bwd = w_rmsnorm_bwd;
  wrapped.rope_fwd = w_rope_fwd;
  wrapped.rope_bwd = w_rope_bwd;
  wrapped.attn_fwd = w_attn_fwd;
  wrapped.attn_bwd = w_attn_bwd;
  wrapped.attn_decode = w_attn_decode;
  wrapped.kv_write = w_kv_write;
  wrapped.swiglu_fwd = w_swiglu_fwd;
  wrapped.swiglu_bwd = w_swiglu_bwd;
  wrapped.embed_fwd = w_embed_fwd;
  wrapped.embed_bwd = w_embed_bwd;
  wrapped.bias_add = w_bias_add;
  wrapped.bias_grad = w_bias_grad;
  wrapped.copy_d2d = w_copy_d2d;
  wrapped.memset = w_memset;
  wrapped.copy2d = w_copy2d;
  wrapped.classifier_fwd = w_cls_fwd;
  wrapped.classifier_bwd = w_cls_bwd;
  return &wrapped;
}

void prof_reset(void) { n_rows = 0; }
void prof_enable(int on) { enabled = on; }

static int by_time(const void *a, const void *b) {
  double x = ((const prof_row *)a)->s, y = ((const prof_row *)b)->s;
  return x < y ? 1 : x > y ? -1 : 0;
}

void prof_report(const char *title, double wall, double peak_gflops) {
  qsort(rows, (size_t)n_rows, sizeof rows[0], by_time);
  double tot = 0, totc = 0;
  for (int i = 0; i < n_rows; i++) tot += rows[i].s, totc += rows[i].cpu;
  printf("profile %s: wall %.3f s, in ops %.3f s (process CPU %.3f s)\n", title, wall, tot, totc);
  printf("  %-40s %8s %8s %7s %6s %9s %7s\n", "op", "s", "cpu s", "%wall", "calls", "GFLOP/s", "%peak");
  for (int i = 0; i < n_rows; i++) {
    const prof_row *r = &rows[i];
    double gf = r->flop > 0 && r->s > 0 ? r->flop / r->s * 1e-9 : 0;
    printf("  %-40s %8.4f %8.4f %6.1f%% %6ld", r->key, r->s, r->cpu, 100 * r->s / wall, r->calls);
    if (gf > 0) printf(" %9.1f %6.1f%%", gf, 100 * gf / peak_gflops);
    printf("\n");
  }
}
