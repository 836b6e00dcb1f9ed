/* CUDA fused classifier: logits in (row chunk x vocab chunk) tiles by cuBLAS,
 * a block per row keeps the online max / sum-exp / entropy sums (the CPU
 * reference's formulas: per-tile f32 sums relative to the running max, merged
 * in double), gathers the target logit; the backward recomputes each tile,
 * turns it into dlogits in place (grpo_cls_dlogit) and feeds two more gemms
 * (dh += dz W, dW += dz^T h). Only one tile of logits exists at a time.
 *
 * bf16 activations: h and w are bf16; the logits tile is f32 (bf16 operands,
 * fp32 accumulation and output), so the softmax statistics see no bf16
 * rounding of z; dlogits are computed in f32 and cast to bf16 (a second tile
 * buffer after the plan's) as the operand of the two gradient products; dh
 * sums over vocab chunks in the f32 row buffer and is added to dh once per
 * row chunk (one rounding); dW accumulates in f32. */
#include <assert.h>
#include <limits.h>
#include <math.h>

#include "core/classifier_plan.h"
#include "core/cuda/cuda_internal.cuh"
#include "core/ops_math.h"

#define DEFAULT_ROW_CHUNK 1024
#define DEFAULT_VOCAB_CHUNK 32768

typedef grpo_cls_ws cls_ws;

static void chunks(const grpo_classifier_shape *s, int *rc, int *vc) {
  grpo_cls_chunks(s, DEFAULT_ROW_CHUNK, DEFAULT_VOCAB_CHUNK, rc, vc);
}

static size_t layout(const grpo_classifier_shape *s, void *ws, cls_ws *w) {
  return grpo_cls_layout(s, DEFAULT_ROW_CHUNK, DEFAULT_VOCAB_CHUNK, 256, ws, w);
}

/* The plan's buffers (hbuf holds act-type rows, dhbuf f32 sums), then for
 * bf16 the tile of dlogits as a bf16 operand (zb). */
static size_t ws_layout(grpo_backend *be, const grpo_classifier_shape *s, void *ws, cls_ws *w,
                        void **zb) {
  size_t base = layout(s, ws, w);
  if (be->act_dtype != GRPO_BF16) {
    if (zb) *zb = NULL;
    return base;
  }
  int rc, vc;
  chunks(s, &rc, &vc);
  if (zb) *zb = (char *)ws + base;
  return base + cu_align256((size_t)rc * (vc > 0 ? vc : 1) * sizeof(cu_bf16));
}

size_t cu_classifier_workspace(grpo_backend *be, const grpo_classifier_shape *s) {
  return ws_layout(be, s, NULL, NULL, NULL);
}

/* ---- kernels ------------------------------------------------------------------ */

template <typename AT>
static __global__ void gather_rows_k(AT *dst, const AT *h, int64_t ldh, const int32_t *rows, int nr,
                                     int H, int *flag) {
  CU_GRID_LOOP(x, (int64_t)nr * H) {
    int64_t k = x / H, c = x % H;
    int32_t r = rows[k];
    if (r < 0) {
      cu_st(dst + x, 0.0f);
      if (c == 0) atomicOr(flag, CU_FLAG_ROWS);
    } else {
      dst[x] = h[(int64_t)r * ldh + c];
    }
  }
}

static __global__ void init_state_k(double *m, double *sum, double *sz, float *zt, int nr) {
  CU_GRID_LOOP(k, nr) {
    m[k] = -INFINITY;
    sum[k] = 0.0;
    sz[k] = 0.0;
    zt[k] = NAN;
  }
}

/* One block per row k of the tile z [nr, nv] (vocab entries v0..v0+nv). */
static __global__ void stats_k(const float *z, int nv, int v0, double *m, double *sum, double *sz,
                               float *zt, const int32_t *targets) {
  __shared__ float sh[32];
  int k = blockIdx.x;
  const float *row = z + (int64_t)k * nv;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < nv; j += blockDim.x) mx = fmaxf(mx, row[j]); /* NaN skipped */
  mx = cu_block_max(mx, sh);
  double mold = m[k], mnew = mx > mold ? mx : mold;
  float mf = (float)mnew;
  float cs = 0.0f, cz = 0.0f;
  for (int j = threadIdx.x; j < nv; j += blockDim.x) {
    float d = row[j] - mf, e = expf(d);
    cs += e;
    cz += e > 0.0f ? e * d : 0.0f; /* e = 0 at d = -inf: no 0 * inf */
  }
  cs = cu_block_sum(cs, sh);
  cz = cu_block_sum(cz, sh);
  if (threadIdx.x == 0) {
    if (sum[k] > 0.0) {
      double a = exp(mold - mnew);
      sz[k] = a * (sz[k] + (mold - mnew) * sum[k]) + cz;
      sum[k] = a * sum[k] + cs;
    } else {
      sz[k] = cz;
      sum[k] = cs;
    }
    m[k] = mnew;
    int t = targets[k];
    if (t >= v0 && t < v0 + nv) zt[k] = row[t - v0];
  }
}

static __global__ void finalize_k(const double *m, const double *sum, const double *sz,
                                  const float *zt, const int32_t *targets, int vocab, int nr,
                                  float *logprob, float *entropy, float *lse, int *flag) {
  CU_GRID_LOOP(k, nr) {
    double l = m[k] + log(sum[k]);
    lse[k] = (float)l;
    logprob[k] = (float)(zt[k] - l); /* NaN when the target was out of range */
    if (entropy) entropy[k] = (float)(log(sum[k]) - sz[k] / sum[k]);
    int t = targets[k];
    if (t < 0 || t >= vocab) atomicOr(flag, CU_FLAG_TARGET);
  }
}

/* z [nr, nv] -> dlogits (times temperature's 1/T, folded into g and ge),
 * into z itself (f32) or the bf16 tile dz. */
template <typename TZ>
static __global__ void grad_k(const float *z, TZ *dz, int nr, int nv, int v0, const float *lse,
                              const float *entropy, const float *dlogprob, const float *dentropy,
                              const int32_t *targets, float inv_t) {
  CU_GRID_LOOP(x, (int64_t)nr * nv) {
    int64_t k = x / nv;
    int j = (int)(x % nv);
    float L = lse[k];
    float g = dlogprob[k] * inv_t;
    float ge = dentropy ? dentropy[k] * inv_t : 0.0f;
    float ez = dentropy ? L - entropy[k] : 0.0f;
    float val = grpo_cls_dlogit(z[x], L, g, ge, ez);
    if (v0 + j == targets[k]) val += g;
    cu_st(dz + x, val);
  }
}

/* dst[r, :] += src[r, :] (f32 sums, one rounding of dst) */
template <typename AT>
static __global__ void add_rows_k(AT *dst, int64_t ldd, const float *src, int64_t lds, int nr,
                                  int H) {
  CU_GRID_LOOP(x, (int64_t)nr * H) {
    int64_t k = x / H, c = x % H;
    AT *d = dst + k * ldd + c;
    cu_st(d, cu_ld(d) + src[k * lds + c]);
  }
}

/* ---- ops ------------------------------------------------------------------------- */

/* The chunk's hidden rows: gathered into hbuf when rows != NULL. */
static const void *chunk_rows(grpo_backend *be, const grpo_classifier_shape *s, int r0, int nr,
                              void *hbuf, int64_t *ld) {
  cuda_impl *I = cu_impl(be);
  const size_t es = grpo_dtype_size(be->act_dtype);
  if (!s->rows) {
    *ld = s->ldh;
    return cu_off(s->h, (int64_t)r0 * s->ldh, es);
  }
  int64_t tot = (int64_t)nr * s->hidden;
  CU_ACT_DISPATCH(be->act_dtype, AT,
                  gather_rows_k<AT><<<cu_blocks(tot, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                      (AT *)hbuf, (const AT *)s->h, s->ldh, s->rows + r0, nr, s->hidden,
                      I->dflag));
  CU_LAUNCHED(I, "classifier gather");
  *ld = s->hidden;
  return hbuf;
}

void cu_classifier_fwd(grpo_backend *be, const grpo_classifier_shape *s, float *logprob,
                       float *entropy, float *lse, void *ws, size_t ws_bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || s->n <= 0) return;
  assert(s->temperature > 0.0f && s->vocab > 0 && s->hidden > 0);
  size_t need = ws_layout(be, s, ws, NULL, NULL);
  if (ws_bytes < need) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__, "classifier: workspace of %zu bytes < %zu needed",
            ws_bytes, need);
    return;
  }
  cls_ws w;
  ws_layout(be, s, ws, &w, NULL);
  int rc, vc;
  chunks(s, &rc, &vc);
  const int H = s->hidden, V = s->vocab;
  const grpo_dtype at = be->act_dtype;
  const size_t es = grpo_dtype_size(at);
  const float inv_t = 1.0f / s->temperature;
  for (int r0 = 0; r0 < s->n; r0 += rc) {
    int nr = s->n - r0 < rc ? s->n - r0 : rc;
    int64_t ldh;
    const void *hp = chunk_rows(be, s, r0, nr, w.hbuf, &ldh);
    init_state_k<<<cu_blocks(nr, CU_THREADS), CU_THREADS, 0, I->stream>>>(w.m, w.sum, w.sz, w.zt, nr);
    CU_LAUNCHED(I, "classifier init");
    for (int v0 = 0; v0 < V; v0 += vc) {
      int nv = V - v0 < vc ? V - v0 : vc;
      cu_gemm_x(I, at, GRPO_F32, 0, 1, nr, nv, H, inv_t, hp, ldh, 0, cu_off(s->w, (int64_t)v0 * H, es),
                H, 0, 1, 0.0f, w.z, nv, 0, 1);
      stats_k<<<(unsigned)nr, CU_THREADS, 0, I->stream>>>(w.z, nv, v0, w.m, w.sum, w.sz, w.zt,
                                                          s->targets + r0);
      CU_LAUNCHED(I, "classifier stats");
    }
    finalize_k<<<cu_blocks(nr, CU_THREADS), CU_THREADS, 0, I->stream>>>(
        w.m, w.sum, w.sz, w.zt, s->targets + r0, V, nr, logprob + r0, entropy ? entropy + r0 : NULL,
        lse + r0, I->dflag);
    CU_LAUNCHED(I, "classifier finalize");
  }
}

void cu_classifier_bwd(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                       const float *entropy, const float *dlogprob, const float *dentropy, void *dh,
                       int64_t lddh, float *dw, void *ws, size_t ws_bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || s->n <= 0) return;
  assert(s->temperature > 0.0f && s->vocab > 0 && s->hidden > 0);
  assert(!dentropy || entropy);
  size_t need = ws_layout(be, s, ws, NULL, NULL);
  if (ws_bytes < need) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__, "classifier: workspace of %zu bytes < %zu needed",
            ws_bytes, need);
    return;
  }
  cls_ws w;
  void *zb;
  ws_layout(be, s, ws, &w, &zb);
  int rc, vc;
  chunks(s, &rc, &vc);
  const int H = s->hidden, V = s->vocab;
  const grpo_dtype at = be->act_dtype;
  const int bf = at == GRPO_BF16;
  const size_t es = grpo_dtype_size(at);
  void *dz = bf ? zb : (void *)w.z; /* dlogits as the gradient products' operand */
  const float inv_t = 1.0f / s->temperature;
  for (int r0 = 0; r0 < s->n; r0 += rc) {
    int nr = s->n - r0 < rc ? s->n - r0 : rc;
    int64_t ldh;
    const void *hp = chunk_rows(be, s, r0, nr, w.hbuf, &ldh);
    /* f32 without a row map: the chunk's dh rows are distinct, accumulate in
     * place; otherwise sum the vocab chunks in the f32 row buffer */
    int direct = !bf && !s->rows;
    float *dhp = direct ? (float *)dh + (int64_t)r0 * lddh : w.dhbuf;
    int64_t lddhp = direct ? lddh : H;
    if (!direct)
      CU_CHECK(I, cudaMemsetAsync(w.dhbuf, 0, sizeof(float) * (size_t)nr * H, I->stream));
    for (int v0 = 0; v0 < V; v0 += vc) {
      int nv = V - v0 < vc ? V - v0 : vc;
      const void *Wv = cu_off(s->w, (int64_t)v0 * H, es);
      cu_gemm_x(I, at, GRPO_F32, 0, 1, nr, nv, H, inv_t, hp, ldh, 0, Wv, H, 0, 1, 0.0f, w.z, nv, 0,
                1);
      CU_ACT_DISPATCH(at, AT,
                      grad_k<AT><<<cu_blocks((int64_t)nr * nv, CU_THREADS), CU_THREADS, 0,
                                   I->stream>>>(w.z, (AT *)dz, nr, nv, v0, lse + r0,
                                                entropy ? entropy + r0 : NULL, dlogprob + r0,
                                                dentropy ? dentropy + r0 : NULL, s->targets + r0,
                                                inv_t));
      CU_LAUNCHED(I, "classifier grad");
      cu_gemm_x(I, at, GRPO_F32, 0, 0, nr, H, nv, 1.0f, dz, nv, 0, Wv, H, 0, 1, 1.0f, dhp, lddhp, 0,
                1);
      cu_gemm_x(I, at, GRPO_F32, 1, 0, nv, H, nr, 1.0f, dz, nv, 0, hp, ldh, 0, 1, 1.0f,
                dw + (int64_t)v0 * H, H, 0, 1);
    }
    if (s->rows) { /* a row may repeat: deterministic scatter-add */
      cu_scatter_add_rows_x(I, dh, at, lddh, w.dhbuf, GRPO_F32, H, s->rows + r0, nr, H,
                            CU_FLAG_ROWS);
    } else if (!direct) {
      int64_t tot = (int64_t)nr * H;
      CU_ACT_DISPATCH(at, AT,
                      add_rows_k<AT><<<cu_blocks(tot, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                          (AT *)cu_off(dh, (int64_t)r0 * lddh, es), lddh, w.dhbuf, H, nr, H));
      CU_LAUNCHED(I, "classifier dh add");
    }
  }
}
