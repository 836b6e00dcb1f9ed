/* CUDA attention over packed sequences with the ancestor-interval mask, GQA,
 * through cuBLAS + masked-softmax kernels (the llm.c route; see
 * ../shared/reference/model-and-io.md 6.2), plus single-query decode.
 *
 * Scores are materialised one (head chunk x query chunk) tile at a time, as
 * S[b][i][j] for local head b < hc, local query i < tq and every key j < T, in
 * the caller's workspace; the chunk sizes come from the workspace size, so a
 * workspace sized for the largest T serves every smaller one. A head chunk
 * holds whole GQA groups (hc a multiple of grp) or a single head, so one
 * strided-batched call with b_group = grp reads each query head's kv head.
 *
 * Forward per tile: S = scale Q K^T (cuBLAS), a block per row turns S into P
 * = softmax over the visible keys and saves lse, O = P V (cuBLAS).
 * Backward per tile: S again, P = exp(S - lse) on visible keys, dP = dO V^T,
 * dS = P (dP - D) with D = rowsum(dO * O), dQ = scale dS K (=), then per head
 * of a group, one after the other, dV_g += P^T dO and dK_g += scale dS^T Q:
 * no two concurrent products write the same gradient rows, and the result is
 * deterministic. Fully masked keys cost compute (no block skipping yet). */
#include <assert.h>
#include <limits.h>
#include <math.h>

#include "core/cuda/cuda_internal.cuh"
#include "core/ops_math.h"

/* Chunk sizes for a workspace of `avail` bytes holding nbuf score buffers;
 * 0 when not even one score row fits. */
static int attn_plan(int T, int nh, int grp, size_t avail, int nbuf, int *hc, int *tq) {
  size_t row_bytes = (size_t)T * sizeof(float) * (size_t)nbuf;
  size_t slack = (size_t)nbuf * 256; /* per-buffer alignment */
  size_t max_rows = avail > slack ? (avail - slack) / row_bytes : 0;
  if (max_rows >= (size_t)nh * T) {
    *hc = nh;
    *tq = T;
  } else if (max_rows >= (size_t)T) {
    int h = (int)(max_rows / (size_t)T);
    *hc = h >= grp ? h - h % grp : 1;
    *tq = T;
  } else {
    *hc = 1;
    *tq = (int)max_rows;
  }
  return *tq >= 1;
}

size_t cu_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd) {
  cuda_impl *I = cu_impl(be);
  (void)nkv;
  (void)hd;
  if (T <= 0 || nh <= 0) return 256;
  size_t row_bytes = (size_t)T * sizeof(float);
  size_t rows = (size_t)nh * T;
  size_t budget_rows = I->attn_budget / (2 * row_bytes);
  if (budget_rows < 1) budget_rows = 1;
  if (rows > budget_rows) rows = budget_rows;
  /* backward: D [nh, T], then two score buffers (S/P and dP/dS) */
  return cu_align256((size_t)nh * T * sizeof(float)) + 2 * cu_align256(rows * row_bytes) + 512;
}

/* ---- kernels --------------------------------------------------------------------- */

/* One block per (query i of the tile, local head b): P row = softmax of the
 * visible scores (0 elsewhere); lse = m + log l, +inf when nothing is visible. */
static __global__ void softmax_fwd_k(float *S, float *lse, const int32_t *tin, const int32_t *tout,
                                     int T, int i0, int tcur, int h0) {
  __shared__ float sh[32];
  int i = blockIdx.x, b = blockIdx.y;
  float *row = S + ((int64_t)b * tcur + i) * T;
  int qi = i0 + i;
  int32_t ti = tin[qi];
  float m = -INFINITY;
  for (int j = threadIdx.x; j < T; j += blockDim.x)
    if (grpo_attn_visible(ti, tin[j], tout[j])) m = fmaxf(m, row[j]);
  m = cu_block_max(m, sh);
  if (m == -INFINITY) {
    /* a token that sees nothing (or only -inf scores): zero output, P = 0 in backward */
    for (int j = threadIdx.x; j < T; j += blockDim.x) row[j] = 0.0f;
    if (threadIdx.x == 0) lse[(int64_t)(h0 + b) * T + qi] = INFINITY;
    return; /* uniform across the block */
  }
  float l = 0.0f;
  for (int j = threadIdx.x; j < T; j += blockDim.x) {
    float e = grpo_attn_visible(ti, tin[j], tout[j]) ? expf(row[j] - m) : 0.0f;
    row[j] = e;
    l += e;
  }
  l = cu_block_sum(l, sh);
  float inv = 1.0f / l; /* l >= 1 unless a score is NaN, which then propagates */
  for (int j = threadIdx.x; j < T; j += blockDim.x) row[j] *= inv; /* same thread, same j */
  if (threadIdx.x == 0) lse[(int64_t)(h0 + b) * T + qi] = m + logf(l);
}

/* P = exp(S - lse) on visible keys, 0 elsewhere; S is [hcur][tcur][T]. */
static __global__ void probs_k(float *S, const float *lse, const int32_t *tin, const int32_t *tout,
                               int T, int i0, int tcur, int h0, int hcur) {
  CU_GRID_LOOP(x, (int64_t)hcur * tcur * T) {
    int64_t j = x % T, bi = x / T;
    int i = (int)(bi % tcur), b = (int)(bi / tcur);
    int qi = i0 + i;
    float L = lse[(int64_t)(h0 + b) * T + qi];
    S[x] = grpo_attn_visible(tin[qi], tin[j], tout[j]) ? expf(S[x] - L) : 0.0f;
  }
}

/* dP = P (dP - D[h, q]) (= dS / scale) */
static __global__ void dscores_k(float *dP, const float *P, const float *D, int T, int i0, int tcur,
                                 int h0, int hcur) {
  CU_GRID_LOOP(x, (int64_t)hcur * tcur * T) {
    int64_t bi = x / T;
    int i = (int)(bi % tcur), b = (int)(bi / tcur);
    dP[x] = P[x] * (dP[x] - D[(int64_t)(h0 + b) * T + i0 + i]);
  }
}

/* D[h, i] = dO[i, h, :] . O[i, h, :]; one warp per (h, i). */
static __global__ void rowdot_k(float *D, const float *O, int64_t ldo, const float *dO, int64_t lddo,
                                int T, int nh, int hd) {
  int64_t w = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (w >= (int64_t)nh * T) return;
  int h = (int)(w / T), i = (int)(w % T);
  const float *o = O + (int64_t)i * ldo + (int64_t)h * hd, *d = dO + (int64_t)i * lddo + (int64_t)h * hd;
  float acc = 0.0f;
  for (int c = lane; c < hd; c += 32) acc += o[c] * d[c];
  acc = cu_warp_sum(acc);
  if (lane == 0) D[w] = acc;
}

/* ---- forward ------------------------------------------------------------------------ */

static void check_shape(const grpo_attn_shape *s) {
  assert(s->nh > 0 && s->nkv > 0 && s->nh % s->nkv == 0 && s->hd > 0);
  assert(s->ldq >= (int64_t)s->nh * s->hd && s->ldk >= (int64_t)s->nkv * s->hd &&
         s->ldv >= (int64_t)s->nkv * s->hd);
  (void)s;
}

void cu_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                 void *ws, size_t ws_bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || s->T <= 0) return;
  check_shape(s);
  const int T = s->T, nh = s->nh, hd = s->hd, grp = s->nh / s->nkv;
  int hc, tq;
  if (!attn_plan(T, nh, grp, ws_bytes, 1, &hc, &tq)) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__, "attn_fwd: workspace of %zu bytes too small for T=%d",
            ws_bytes, T);
    return;
  }
  float *S = (float *)ws;
  const float *Q = (const float *)s->q, *K = (const float *)s->k, *V = (const float *)s->v;
  float *O = (float *)out;
  for (int h0 = 0; h0 < nh; h0 += hc) {
    int hcur = nh - h0 < hc ? nh - h0 : hc;
    assert(hcur == 1 || (h0 % grp == 0 && hcur % grp == 0));
    int bg = hcur >= grp ? grp : 1, g0 = h0 / grp;
    for (int i0 = 0; i0 < T; i0 += tq) {
      int tcur = T - i0 < tq ? T - i0 : tq;
      int64_t sS = (int64_t)tcur * T;
      cu_gemm(I, 0, 1, tcur, T, hd, s->scale, Q + (int64_t)i0 * s->ldq + (int64_t)h0 * hd, s->ldq, hd,
              K + (int64_t)g0 * hd, s->ldk, hd, bg, 0.0f, S, T, sS, hcur);
      dim3 grid((unsigned)tcur, (unsigned)hcur);
      softmax_fwd_k<<<grid, CU_THREADS, 0, I->stream>>>(S, lse, s->tin, s->tout, T, i0, tcur, h0);
      CU_LAUNCHED(I, "attn softmax");
      cu_gemm(I, 0, 0, tcur, hd, T, 1.0f, S, T, sS, V + (int64_t)g0 * hd, s->ldv, hd, bg, 0.0f,
              O + (int64_t)i0 * ldo + (int64_t)h0 * hd, ldo, hd, hcur);
    }
  }
}

/* ---- backward ----------------------------------------------------------------------- */

void cu_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                 const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                 void *ws, size_t ws_bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || s->T <= 0) return;
  check_shape(s);
  const int T = s->T, nh = s->nh, nkv = s->nkv, hd = s->hd, grp = s->nh / s->nkv;
  size_t dbytes = cu_align256((size_t)nh * T * sizeof(float));
  float *D = (float *)ws;
  int hc, tq;
  if (ws_bytes <= dbytes || !attn_plan(T, nh, grp, ws_bytes - dbytes, 2, &hc, &tq)) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__,
            "attn_bwd: workspace of %zu bytes too small for T=%d, %d heads (attn_workspace: %zu)",
            ws_bytes, T, nh, cu_attn_workspace(be, T, nh, nkv, hd));
    return;
  }
  float *S = (float *)((char *)ws + dbytes);
  float *dP = (float *)((char *)S + cu_align256((size_t)hc * tq * T * sizeof(float)));
  const float *Q = (const float *)s->q, *K = (const float *)s->k, *V = (const float *)s->v;
  const float *dO = (const float *)dout;
  float *DQ = (float *)dq, *DK = (float *)dk, *DV = (float *)dv;

  int64_t nw = (int64_t)nh * T, nwb = (nw + 7) / 8; /* 8 warps per block, no grid stride */
  assert(nwb <= INT_MAX);
  rowdot_k<<<(unsigned)nwb, 256, 0, I->stream>>>(D, (const float *)out, ldo, dO, lddo, T, nh, hd);
  CU_LAUNCHED(I, "attn rowdot");
  /* dK, dV (=): zero the [T, nkv*hd] slices, then accumulate */
  CU_CHECK(I, cudaMemset2DAsync(DK, (size_t)s->ldk * sizeof(float), 0,
                                (size_t)nkv * hd * sizeof(float), (size_t)T, I->stream));
  CU_CHECK(I, cudaMemset2DAsync(DV, (size_t)s->ldv * sizeof(float), 0,
                                (size_t)nkv * hd * sizeof(float), (size_t)T, I->stream));

  for (int h0 = 0; h0 < nh; h0 += hc) {
    int hcur = nh - h0 < hc ? nh - h0 : hc;
    assert(hcur == 1 || (h0 % grp == 0 && hcur % grp == 0));
    int bg = hcur >= grp ? grp : 1, g0 = h0 / grp;
    int hpg = hcur >= grp ? grp : 1, ng = hcur / hpg; /* heads per group in the chunk, groups */
    for (int i0 = 0; i0 < T; i0 += tq) {
      int tcur = T - i0 < tq ? T - i0 : tq;
      int64_t sS = (int64_t)tcur * T, tile = sS * hcur;
      const float *Qt = Q + (int64_t)i0 * s->ldq, *dOt = dO + (int64_t)i0 * lddo;
      /* P */
      cu_gemm(I, 0, 1, tcur, T, hd, s->scale, Qt + (int64_t)h0 * hd, s->ldq, hd, K + (int64_t)g0 * hd,
              s->ldk, hd, bg, 0.0f, S, T, sS, hcur);
      probs_k<<<cu_blocks(tile, CU_THREADS), CU_THREADS, 0, I->stream>>>(S, lse, s->tin, s->tout, T,
                                                                         i0, tcur, h0, hcur);
      CU_LAUNCHED(I, "attn probs");
      /* dS / scale */
      cu_gemm(I, 0, 1, tcur, T, hd, 1.0f, dOt + (int64_t)h0 * hd, lddo, hd, V + (int64_t)g0 * hd,
              s->ldv, hd, bg, 0.0f, dP, T, sS, hcur);
      dscores_k<<<cu_blocks(tile, CU_THREADS), CU_THREADS, 0, I->stream>>>(dP, S, D, T, i0, tcur, h0,
                                                                           hcur);
      CU_LAUNCHED(I, "attn dscores");
      /* dQ (=) rows of this tile */
      cu_gemm(I, 0, 0, tcur, hd, T, s->scale, dP, T, sS, K + (int64_t)g0 * hd, s->ldk, hd, bg, 0.0f,
              DQ + (int64_t)i0 * s->ldq + (int64_t)h0 * hd, s->ldq, hd, hcur);
      /* dV, dK (+=): batched over the groups of the chunk, one head of each group at a time */
      for (int hh = 0; hh < hpg; hh++) {
        cu_gemm(I, 1, 0, T, hd, tcur, 1.0f, S + hh * sS, T, hpg * sS, dOt + (int64_t)(h0 + hh) * hd,
                lddo, (int64_t)hpg * hd, 1, 1.0f, DV + (int64_t)g0 * hd, s->ldv, hd, ng);
        cu_gemm(I, 1, 0, T, hd, tcur, s->scale, dP + hh * sS, T, hpg * sS,
                Qt + (int64_t)(h0 + hh) * hd, s->ldq, (int64_t)hpg * hd, 1, 1.0f,
                DK + (int64_t)g0 * hd, s->ldk, hd, ng);
      }
    }
  }
}

/* ---- decode ---------------------------------------------------------------------------- */

size_t cu_attn_decode_workspace(grpo_backend *be, int n, int nh, int tmax) {
  (void)be;
  return (size_t)(n > 0 ? n : 0) * (size_t)(nh > 0 ? nh : 0) * (size_t)(tmax > 0 ? tmax : 0) *
         sizeof(float);
}

#define DECODE_THREADS 128

/* One block per (query i, head h); scores in the workspace row of the task. */
static __global__ void decode_k(float *out, const float *q, const float *kc, const float *vc,
                                const int32_t *slots, const int32_t *lens, int nh, int nkv, int hd,
                                int tmax, float scale, float *ws, int *flag) {
  extern __shared__ float qs[]; /* [hd] */
  __shared__ float sh[32];
  int64_t task = blockIdx.x;
  int i = (int)(task / nh), h = (int)(task % nh), g = h / (nh / nkv);
  int64_t slot = slots ? slots[i] : i;
  int len = lens[i];
  float *o = out + task * hd;
  if (slot < 0 || len < 0 || len > tmax) {
    for (int c = threadIdx.x; c < hd; c += blockDim.x) o[c] = 0.0f;
    if (threadIdx.x == 0) atomicOr(flag, CU_FLAG_DECODE_LEN);
    return; /* uniform across the block */
  }
  const float *qv = q + task * hd;
  for (int c = threadIdx.x; c < hd; c += blockDim.x) qs[c] = qv[c];
  __syncthreads();
  float *sc = ws + task * tmax;
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
  const int64_t row = (int64_t)nkv * hd; /* cache row stride per position */
  const float *kbase = kc + slot * tmax * row + (int64_t)g * hd;
  const float *vbase = vc + slot * tmax * row + (int64_t)g * hd;
  float mx = -INFINITY;
  for (int t = wid; t < len; t += nwarp) {
    const float *kv = kbase + (int64_t)t * row;
    float acc = 0.0f;
    for (int c = lane; c < hd; c += 32) acc += qs[c] * kv[c];
    acc = cu_warp_sum(acc) * scale;
    if (lane == 0) sc[t] = acc;
    mx = fmaxf(mx, acc);
  }
  mx = cu_block_max(mx, sh); /* its barriers also publish sc */
  float sum = 0.0f;
  for (int t = threadIdx.x; t < len; t += blockDim.x) {
    float e = expf(sc[t] - mx);
    sc[t] = e;
    sum += e;
  }
  sum = cu_block_sum(sum, sh);
  float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int c = threadIdx.x; c < hd; c += blockDim.x) {
    float acc = 0.0f;
    for (int t = 0; t < len; t++) acc += (sc[t] * inv) * vbase[(int64_t)t * row + c];
    o[c] = acc;
  }
}

void cu_attn_decode(grpo_backend *be, void *out, const void *q, const void *kcache,
                    const void *vcache, const int32_t *slots, const int32_t *lens, int n, int nh,
                    int nkv, int hd, int tmax, float scale, void *ws, size_t ws_bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n <= 0 || nh <= 0 || hd <= 0) return;
  assert(nkv > 0 && nh % nkv == 0 && tmax > 0);
  if (ws_bytes < cu_attn_decode_workspace(be, n, nh, tmax)) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__, "attn_decode: workspace of %zu bytes too small",
            ws_bytes);
    return;
  }
  int64_t tasks = (int64_t)n * nh;
  assert(tasks <= INT_MAX);
  decode_k<<<(unsigned)tasks, DECODE_THREADS, (size_t)hd * sizeof(float), I->stream>>>(
      (float *)out, (const float *)q, (const float *)kcache, (const float *)vcache, slots, lens, nh,
      nkv, hd, tmax, scale, (float *)ws, I->dflag);
  CU_LAUNCHED(I, "attn_decode");
}
