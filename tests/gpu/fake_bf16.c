/* The bf16 stand-in device (see fake_bf16.h). */
#include "fake_bf16.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"

#define MAX_ALLOCS 4096

typedef struct fake_alloc_rec {
  char *base;
  size_t bytes;
  float *shadow; /* bytes / 2 floats: the f32 view of bf16 elements */
} fake_alloc_rec;

static grpo_backend fake;
static int made;
static fake_alloc_rec recs[MAX_ALLOCS];
static int n_recs;

static grpo_backend *cpu(void) { return grpo_backend_cpu(); }

static fake_alloc_rec *find(const void *p) {
  const char *c = p;
  for (int i = 0; i < n_recs; i++)
    if (c >= recs[i].base && c < recs[i].base + recs[i].bytes) return &recs[i];
  return NULL;
}

/* The f32 shadow of bf16 element p (NULL for NULL). */
static float *shadow_of(const void *p) {
  if (!p) return NULL;
  fake_alloc_rec *r = find(p);
  assert(r && "fake bf16: pointer outside every device allocation");
  size_t off = (size_t)((const char *)p - r->base);
  assert(off % 2 == 0);
  return r->shadow + off / 2;
}

/* Widens n bf16 elements at p into the shadow and returns the shadow. */
static float *load(const void *p, size_t n) {
  if (!p) return NULL;
  float *s = shadow_of(p);
  if (n) {
    assert((const char *)p + 2 * n <= find(p)->base + find(p)->bytes);
    grpo_bf16_to_f32_n(s, p, n);
  }
  return s;
}

/* Rounds n shadow elements back into the bf16 storage at p. */
static void store(void *p, size_t n) {
  if (p && n) grpo_f32_to_bf16_n(p, shadow_of(p), n);
}

/* elements spanned by rows x cols with row stride ld */
static size_t mat(int64_t rows, int64_t cols, int64_t ld) {
  return rows > 0 && cols > 0 ? (size_t)((rows - 1) * ld + cols) : 0;
}

/* ---- memory ------------------------------------------------------------------ */

static int f_alloc(grpo_backend *be, size_t bytes, void **out, grpo_error *err) {
  (void)be;
  *out = NULL;
  if (!bytes) return GRPO_OK;
  if (n_recs == MAX_ALLOCS) return GRPO_FAIL(err, GRPO_ENOMEM, "fake bf16: too many allocations");
  size_t padded = (bytes + 255) / 256 * 256;
  char *p = aligned_alloc(256, padded);
  float *sh = malloc((padded / 2) * sizeof(float));
  if (!p || !sh) {
    free(p);
    free(sh);
    return GRPO_FAIL(err, GRPO_ENOMEM, "fake bf16: out of memory");
  }
  memset(p, 0xFF, padded); /* NaN in bf16 and f32: unwritten memory is loud */
  recs[n_recs++] = (fake_alloc_rec){p, padded, sh};
  *out = p;
  return GRPO_OK;
}

static void f_free(grpo_backend *be, void *p) {
  (void)be;
  if (!p) return;
  for (int i = 0; i < n_recs; i++)
    if (recs[i].base == p) {
      free(recs[i].base);
      free(recs[i].shadow);
      recs[i] = recs[--n_recs];
      return;
    }
  assert(!"fake bf16: free of an unknown pointer");
}

static int f_copy(grpo_backend *be, void *d, const void *s, size_t n, grpo_error *err) {
  (void)be, (void)err;
  if (n) memmove(d, s, n);
  return GRPO_OK;
}

static void f_memset(grpo_backend *be, void *d, int byte, size_t n) {
  (void)be;
  if (n) memset(d, byte, n);
}

static int f_sync(grpo_backend *be, grpo_error *err) {
  (void)be, (void)err;
  return GRPO_OK;
}

static void f_copy2d(grpo_backend *be, void *dst, int64_t ldd, const void *src, int64_t lds,
                     int rows, int cols) {
  (void)be;
  for (int r = 0; r < rows; r++)
    memmove((uint16_t *)dst + r * ldd, (const uint16_t *)src + r * lds, 2 * (size_t)cols);
}

static void f_convert(grpo_backend *be, void *dst, grpo_dtype dt, const void *src, grpo_dtype st,
                      size_t n) {
  (void)be;
  if (dt == st)
    memmove(dst, src, n * grpo_dtype_size(dt));
  else if (dt == GRPO_BF16 && st == GRPO_F32)
    grpo_f32_to_bf16_n(dst, src, n);
  else if (dt == GRPO_F32 && st == GRPO_BF16)
    grpo_bf16_to_f32_n(dst, src, n);
  else
    assert(!"fake bf16: conversion not offered");
}

/* ---- matmul ------------------------------------------------------------------ */

static void f_sgemm(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha, const void *A,
                    int64_t lda, const void *B, int64_t ldb, float beta, void *C, int64_t ldc) {
  (void)be;
  float *a = load(A, ta ? mat(k, m, lda) : mat(m, k, lda));
  float *b = load(B, tb ? mat(n, k, ldb) : mat(k, n, ldb));
  float *c = load(C, mat(m, n, ldc));
  cpu()->sgemm(cpu(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  store(C, mat(m, n, ldc));
}

static void f_sgemm_batched(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                            const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                            int64_t sB, int b_group, float beta, void *C, int64_t ldc, int64_t sC,
                            int batch) {
  (void)be;
  size_t na = (size_t)(batch - 1) * sA + (ta ? mat(k, m, lda) : mat(m, k, lda));
  size_t nb = (size_t)((batch - 1) / b_group) * sB + (tb ? mat(n, k, ldb) : mat(k, n, ldb));
  size_t nc = (size_t)(batch - 1) * sC + mat(m, n, ldc);
  float *a = load(A, na), *b = load(B, nb), *c = load(C, nc);
  cpu()->sgemm_batched(cpu(), ta, tb, m, n, k, alpha, a, lda, sA, b, ldb, sB, b_group, beta, c, ldc,
                       sC, batch);
  store(C, nc);
}

static void f_gemm_wgrad(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                         const void *A, int64_t lda, const void *B, int64_t ldb, float *C,
                         int64_t ldc) {
  (void)be;
  float *a = load(A, ta ? mat(k, m, lda) : mat(m, k, lda));
  float *b = load(B, tb ? mat(n, k, ldb) : mat(k, n, ldb));
  cpu()->gemm_wgrad(cpu(), ta, tb, m, n, k, alpha, a, lda, b, ldb, C, ldc);
}

/* ---- norms, rope, mlp, embedding, elementwise --------------------------------------- */

static void f_rmsnorm_fwd(grpo_backend *be, void *y, int64_t ldy, float *rstd, const void *x,
                          int64_t ldx, const void *w, int rows, int heads, int dim, float eps) {
  (void)be;
  float *xs = load(x, mat(rows, (int64_t)heads * dim, ldx)), *ws = load(w, (size_t)dim);
  float *ys = load(y, mat(rows, (int64_t)heads * dim, ldy));
  cpu()->rmsnorm_fwd(cpu(), ys, ldy, rstd, xs, ldx, ws, rows, heads, dim, eps);
  store(y, mat(rows, (int64_t)heads * dim, ldy));
}

static void f_rmsnorm_bwd(grpo_backend *be, void *dx, int64_t lddx, int accumulate, float *dw,
                          const void *dy, int64_t lddy, const void *x, int64_t ldx, const void *w,
                          const float *rstd, int rows, int heads, int dim) {
  (void)be;
  int64_t cols = (int64_t)heads * dim;
  float *dys = load(dy, mat(rows, cols, lddy)), *xs = load(x, mat(rows, cols, ldx));
  float *ws = load(w, (size_t)dim), *dxs = load(dx, mat(rows, cols, lddx));
  if (dx == dy) dxs = dys;
  cpu()->rmsnorm_bwd(cpu(), dxs, lddx, accumulate, dw, dys, lddy, xs, ldx, ws, rstd, rows, heads, dim);
  store(dx, mat(rows, cols, lddx));
}

static void f_rope_fwd(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                       const int32_t *pos, const float *inv_freq) {
  (void)be;
  float *xs = load(x, mat(rows, (int64_t)heads * hd, ldx));
  cpu()->rope_fwd(cpu(), xs, ldx, rows, heads, hd, pos, inv_freq);
  store(x, mat(rows, (int64_t)heads * hd, ldx));
}

static void f_rope_bwd(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                       const int32_t *pos, const float *inv_freq) {
  (void)be;
  float *xs = load(x, mat(rows, (int64_t)heads * hd, ldx));
  cpu()->rope_bwd(cpu(), xs, ldx, rows, heads, hd, pos, inv_freq);
  store(x, mat(rows, (int64_t)heads * hd, ldx));
}

static void f_swiglu_fwd(grpo_backend *be, void *out, int64_t ldo, const void *gate, int64_t ldg,
                         const void *up, int64_t ldu, int rows, int cols) {
  (void)be;
  float *g = load(gate, mat(rows, cols, ldg)), *u = load(up, mat(rows, cols, ldu));
  float *o = load(out, mat(rows, cols, ldo));
  cpu()->swiglu_fwd(cpu(), o, ldo, g, ldg, u, ldu, rows, cols);
  store(out, mat(rows, cols, ldo));
}

static void f_swiglu_bwd(grpo_backend *be, void *dgate, int64_t lddg, void *dup, int64_t lddu,
                         const void *dout, int64_t lddo, const void *gate, int64_t ldg,
                         const void *up, int64_t ldu, int rows, int cols) {
  (void)be;
  float *g = load(gate, mat(rows, cols, ldg)), *u = load(up, mat(rows, cols, ldu));
  float *d = load(dout, mat(rows, cols, lddo));
  /* dgate / dup may alias gate / up: their shadows then are the same floats */
  float *dg = dgate == gate ? g : load(dgate, mat(rows, cols, lddg));
  float *du = dup == up ? u : load(dup, mat(rows, cols, lddu));
  cpu()->swiglu_bwd(cpu(), dg, lddg, du, lddu, d, lddo, g, ldg, u, ldu, rows, cols);
  store(dgate, mat(rows, cols, lddg));
  store(dup, mat(rows, cols, lddu));
}

static int max_index(const int32_t *idx, int n) {
  int mx = -1;
  for (int i = 0; i < n; i++)
    if (idx[i] > mx) mx = idx[i];
  return mx;
}

static void f_embed_fwd(grpo_backend *be, void *out, int64_t ldo, const void *table,
                        const int32_t *ids, int rows, int dim) {
  (void)be;
  float *t = load(table, (size_t)(max_index(ids, rows) + 1) * dim);
  float *o = load(out, mat(rows, dim, ldo));
  cpu()->embed_fwd(cpu(), o, ldo, t, ids, rows, dim);
  store(out, mat(rows, dim, ldo));
}

static void f_embed_bwd(grpo_backend *be, float *dtable, const void *dout, int64_t lddo,
                        const int32_t *ids, int rows, int dim) {
  (void)be;
  cpu()->embed_bwd(cpu(), dtable, load(dout, mat(rows, dim, lddo)), lddo, ids, rows, dim);
}

static void f_bias_add(grpo_backend *be, void *y, int64_t ldy, const void *b, int rows, int cols) {
  (void)be;
  float *ys = load(y, mat(rows, cols, ldy)), *bs = load(b, (size_t)cols);
  cpu()->bias_add(cpu(), ys, ldy, bs, rows, cols);
  store(y, mat(rows, cols, ldy));
}

static void f_bias_grad(grpo_backend *be, float *db, const void *dy, int64_t lddy, int rows,
                        int cols) {
  (void)be;
  cpu()->bias_grad(cpu(), db, load(dy, mat(rows, cols, lddy)), lddy, rows, cols);
}

static void f_add(grpo_backend *be, void *y, const void *a, const void *b, size_t n) {
  (void)be;
  float *as = load(a, n), *bs = load(b, n), *ys = load(y, n);
  if (y == a) ys = as;
  if (y == b) ys = bs;
  cpu()->add(cpu(), ys, as, bs, n);
  store(y, n);
}

static void f_axpy(grpo_backend *be, void *y, float alpha, const void *x, size_t n) {
  (void)be;
  float *xs = load(x, n), *ys = load(y, n);
  cpu()->axpy(cpu(), ys, alpha, xs, n);
  store(y, n);
}

/* ---- attention ------------------------------------------------------------------ */

/* The shape with q, k, v replaced by their loaded shadows. */
static grpo_attn_shape attn_loaded(const grpo_attn_shape *s) {
  grpo_attn_shape w = *s;
  w.q = load(s->q, mat(s->T, (int64_t)s->nh * s->hd, s->ldq));
  w.k = load(s->k, mat(s->T, (int64_t)s->nkv * s->hd, s->ldk));
  w.v = load(s->v, mat(s->T, (int64_t)s->nkv * s->hd, s->ldv));
  return w;
}

static void f_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo,
                       float *lse, void *ws, size_t ws_bytes) {
  (void)be;
  grpo_attn_shape w = attn_loaded(s);
  size_t no = mat(s->T, (int64_t)s->nh * s->hd, ldo);
  float *o = load(out, no);
  cpu()->attn_fwd(cpu(), &w, o, ldo, lse, ws, ws_bytes);
  store(out, no);
}

static void f_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                       const float *lse, const void *dout, int64_t lddo, void *dq, void *dk,
                       void *dv, void *ws, size_t ws_bytes) {
  (void)be;
  grpo_attn_shape w = attn_loaded(s);
  size_t nq = mat(s->T, (int64_t)s->nh * s->hd, s->ldq);
  size_t nk = mat(s->T, (int64_t)s->nkv * s->hd, s->ldk);
  size_t nv = mat(s->T, (int64_t)s->nkv * s->hd, s->ldv);
  float *o = load(out, mat(s->T, (int64_t)s->nh * s->hd, ldo));
  float *d = load(dout, mat(s->T, (int64_t)s->nh * s->hd, lddo));
  float *q = load(dq, nq), *k = load(dk, nk), *v = load(dv, nv);
  cpu()->attn_bwd(cpu(), &w, o, ldo, lse, d, lddo, q, k, v, ws, ws_bytes);
  store(dq, nq);
  store(dk, nk);
  store(dv, nv);
}

static void f_attn_decode(grpo_backend *be, void *out, const void *q, const void *kcache,
                          const void *vcache, const int32_t *slots, const int32_t *lens, int n,
                          int nh, int nkv, int hd, int tmax, float scale, void *ws,
                          size_t ws_bytes) {
  (void)be;
  size_t row = (size_t)nkv * hd;
  for (int i = 0; i < n; i++) { /* only the rows each query reads */
    size_t at = (size_t)(slots ? slots[i] : i) * tmax * row;
    load((const uint16_t *)kcache + at, (size_t)lens[i] * row);
    load((const uint16_t *)vcache + at, (size_t)lens[i] * row);
  }
  size_t nq = (size_t)n * nh * hd;
  float *qs = load(q, nq), *o = load(out, nq);
  cpu()->attn_decode(cpu(), o, qs, shadow_of(kcache), shadow_of(vcache), slots, lens, n, nh, nkv,
                     hd, tmax, scale, ws, ws_bytes);
  store(out, nq);
}

static void f_kv_write(grpo_backend *be, void *cache, const void *src, int64_t lds,
                       const int32_t *slots, const int32_t *pos, int n, int width, int tmax) {
  (void)be;
  for (int i = 0; i < n; i++) /* a copy: no rounding involved */
    memmove((uint16_t *)cache + ((size_t)slots[i] * tmax + pos[i]) * width,
            (const uint16_t *)src + i * lds, 2 * (size_t)width);
}

/* ---- classifier ------------------------------------------------------------------ */

static size_t cls_h_span(const grpo_classifier_shape *s, int64_t ld) {
  int last = s->rows ? max_index(s->rows, s->n) : s->n - 1;
  return mat(last + 1, s->hidden, ld);
}

static grpo_classifier_shape cls_loaded(const grpo_classifier_shape *s) {
  grpo_classifier_shape w = *s;
  w.h = load(s->h, cls_h_span(s, s->ldh));
  w.w = load(s->w, (size_t)s->vocab * s->hidden);
  return w;
}

static void f_classifier_fwd(grpo_backend *be, const grpo_classifier_shape *s, float *logprob,
                             float *entropy, float *lse, void *ws, size_t ws_bytes) {
  (void)be;
  grpo_classifier_shape w = cls_loaded(s);
  cpu()->classifier_fwd(cpu(), &w, logprob, entropy, lse, ws, ws_bytes);
}

static void f_classifier_bwd(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                             const float *entropy, const float *dlogprob, const float *dentropy,
                             void *dh, int64_t lddh, float *dw, void *ws, size_t ws_bytes) {
  (void)be;
  grpo_classifier_shape w = cls_loaded(s);
  size_t nd = cls_h_span(s, lddh);
  float *d = load(dh, nd);
  cpu()->classifier_bwd(cpu(), &w, lse, entropy, dlogprob, dentropy, d, lddh, dw, ws, ws_bytes);
  store(dh, nd);
}

grpo_backend *fake_bf16_backend(void) {
  if (made) return &fake;
  fake = *cpu(); /* workspace sizes, f32 ops (scale, sumsq, adamw) as they are */
  fake.name = "fake-bf16";
  fake.kind = GRPO_DEVICE_CUDA;
  fake.act_dtype = GRPO_BF16;
  fake.alloc = f_alloc;
  fake.free = f_free;
  fake.copy_h2d = f_copy;
  fake.copy_d2h = f_copy;
  fake.copy_d2d = f_copy;
  fake.memset = f_memset;
  fake.sync = f_sync;
  fake.copy2d = f_copy2d;
  fake.convert = f_convert;
  fake.sgemm = f_sgemm;
  fake.sgemm_batched = f_sgemm_batched;
  fake.gemm_wgrad = f_gemm_wgrad;
  fake.rmsnorm_fwd = f_rmsnorm_fwd;
  fake.rmsnorm_bwd = f_rmsnorm_bwd;
  fake.rope_fwd = f_rope_fwd;
  fake.rope_bwd = f_rope_bwd;
  fake.attn_fwd = f_attn_fwd;
  fake.attn_bwd = f_attn_bwd;
  fake.attn_decode = f_attn_decode;
  fake.kv_write = f_kv_write;
  fake.swiglu_fwd = f_swiglu_fwd;
  fake.swiglu_bwd = f_swiglu_bwd;
  fake.embed_fwd = f_embed_fwd;
  fake.embed_bwd = f_embed_bwd;
  fake.bias_add = f_bias_add;
  fake.bias_grad = f_bias_grad;
  fake.add = f_add;
  fake.axpy = f_axpy;
  fake.classifier_fwd = f_classifier_fwd;
  fake.classifier_bwd = f_classifier_bwd;
  made = 1;
  return &fake;
}

int fake_bf16_live_allocations(void) { return n_recs; }
