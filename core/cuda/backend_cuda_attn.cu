/* CUDA attention over packed sequences with the ancestor-interval mask, GQA,
 * through cuBLAS + masked-softmax kernels (the llm.c route; see
 * ../shared/reference/model-and-io.md 6.2), plus single-query decode.
 * Plain causal packs in bf16 (s->n_seg > 0) go to cuDNN SDPA first
 * (attn_cudnn.h); this path serves whatever it declines.
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
 * deterministic. Fully masked keys cost compute (no block skipping yet).
 *
 * bf16 activations: the score products take bf16 Q, K (dO, V) and write f32
 * S (dP); softmax, lse, D and dS are f32; P and dS are cast to bf16 only as
 * operands of the next products (HF's eager path casts P before P V). The
 * tiles then hold f32 S, dP plus bf16 P, dS, and dK, dV accumulate over
 * query tiles and the heads of a group in f32 buffers in the workspace,
 * cast to bf16 once at the end. */
#include <assert.h>
#include <limits.h>
#include <math.h>

#include "core/cuda/attn_cudnn.h"
#include "core/cuda/cuda_internal.cuh"
#include "core/ops_math.h"

/* Bytes per score element over all tile buffers, and the buffer count. */
#define FWD_ELEM_BYTES(bf) ((bf) ? 6 : 4) /* S f32 (+ P bf16) */
#define FWD_BUFS(bf) ((bf) ? 2 : 1)
#define BWD_ELEM_BYTES(bf) ((bf) ? 12 : 8) /* S, dP f32 (+ P, dS bf16) */
#define BWD_BUFS(bf) ((bf) ? 4 : 2)

/* Chunk sizes for a workspace of `avail` bytes holding nbuf score buffers of
 * elem_bytes per score in all; 0 when not even one score row fits. */
static int attn_plan(int T, int nh, int grp, size_t avail, size_t elem_bytes, int nbuf, int *hc,
                     int *tq) {
  size_t row_bytes = (size_t)T * elem_bytes;
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

/* bf16 backward: the f32 dK, dV accumulators [T, nkv*hd] (0 for f32) */
static size_t acc_bytes(int bf, int T, int nkv, int hd) {
  return bf ? cu_align256((size_t)T * nkv * hd * sizeof(float)) : 0;
}

size_t cu_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd) {
  cuda_impl *I = cu_impl(be);
  size_t own = 256;
  if (T > 0 && nh > 0) {
    int bf = be->act_dtype == GRPO_BF16;
    size_t eb = BWD_ELEM_BYTES(bf);
    size_t rows = (size_t)nh * T;
    size_t budget_rows = I->attn_budget / ((size_t)T * eb);
    if (budget_rows < 1) budget_rows = 1;
    if (rows > budget_rows) rows = budget_rows;
    /* backward: D [nh, T], (bf16: dK, dV accumulators), then the tile buffers */
    own = cu_align256((size_t)nh * T * sizeof(float)) + 512;
    if (bf)
      own += 2 * acc_bytes(bf, T, nkv, hd) + 2 * cu_align256(rows * T * sizeof(float)) +
             2 * cu_align256(rows * T * sizeof(cu_bf16)) + 512;
    else
      own += 2 * cu_align256(rows * T * sizeof(float));
  }
  size_t dnn = cu_cudnn_attn_workspace(I, T, nh, nkv, hd);
  return own > dnn ? own : dnn;
}

/* ---- kernels --------------------------------------------------------------------- */

/* One block per (query i of the tile, local head b): P row = softmax of the
 * visible scores (0 elsewhere); lse = m + log l, +inf when nothing is visible.
 * S is f32; P is S itself for f32 (in place: same thread, same j) or a bf16
 * buffer of the same shape. */
template <typename TP>
static __global__ void softmax_fwd_k(float *S, TP *P, float *lse, const int32_t *tin,
                                     const int32_t *tout, int T, int i0, int tcur, int h0) {
  __shared__ float sh[32];
  int i = blockIdx.x, b = blockIdx.y;
  int64_t off = ((int64_t)b * tcur + i) * T;
  float *row = S + off;
  TP *prow = P + off;
  int qi = i0 + i;
  int32_t ti = tin[qi];
  float m = -INFINITY;
  for (int j = threadIdx.x; j < T; j += blockDim.x)
    if (grpo_attn_visible(ti, tin[j], tout[j])) m = fmaxf(m, row[j]);
  m = cu_block_max(m, sh);
  if (m == -INFINITY) {
    /* a token that sees nothing (or only -inf scores): zero output, P = 0 in backward */
    for (int j = threadIdx.x; j < T; j += blockDim.x) cu_st(prow + j, 0.0f);
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
  for (int j = threadIdx.x; j < T; j += blockDim.x) cu_st(prow + j, row[j] * inv); /* same thread, same j */
  if (threadIdx.x == 0) lse[(int64_t)(h0 + b) * T + qi] = m + logf(l);
}

/* P = exp(S - lse) on visible keys, 0 elsewhere, in S (f32) and, for bf16,
 * also in P; S is [hcur][tcur][T]. */
template <typename TP>
static __global__ void probs_k(float *S, TP *P, const float *lse, const int32_t *tin,
                               const int32_t *tout, int T, int i0, int tcur, int h0, int hcur) {
  CU_GRID_LOOP(x, (int64_t)hcur * tcur * T) {
    int64_t j = x % T, bi = x / T;
    int i = (int)(bi % tcur), b = (int)(bi / tcur);
    int qi = i0 + i;
    float L = lse[(int64_t)(h0 + b) * T + qi];
    float p = grpo_attn_visible(tin[qi], tin[j], tout[j]) ? expf(S[x] - L) : 0.0f;
    S[x] = p;
    if (cu_elem<TP>::narrow) cu_st(P + x, p);
  }
}

/* dS = P (dP - D[h, q]) (= dS / scale), into dP itself (f32) or the bf16 dS */
template <typename TP>
static __global__ void dscores_k(float *dP, const float *P, TP *dS, const float *D, int T, int i0,
                                 int tcur, int h0, int hcur) {
  CU_GRID_LOOP(x, (int64_t)hcur * tcur * T) {
    int64_t bi = x / T;
    int i = (int)(bi % tcur), b = (int)(bi / tcur);
    cu_st(dS + x, P[x] * (dP[x] - D[(int64_t)(h0 + b) * T + i0 + i]));
  }
}

/* D[h, i] = dO[i, h, :] . O[i, h, :]; one warp per (h, i). */
template <typename AT>
static __global__ void rowdot_k(float *D, const AT *O, int64_t ldo, const AT *dO, int64_t lddo, int T,
                                int nh, int hd) {
  int64_t w = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (w >= (int64_t)nh * T) return;
  int h = (int)(w / T), i = (int)(w % T);
  const AT *o = O + (int64_t)i * ldo + (int64_t)h * hd, *d = dO + (int64_t)i * lddo + (int64_t)h * hd;
  float acc = 0.0f;
  for (int c = lane; c < hd; c += 32) acc += cu_ld(o + c) * cu_ld(d + c);
  acc = cu_warp_sum(acc);
  if (lane == 0) D[w] = acc;
}

/* dst[r, c] (row stride ldd) = src[r, c] (contiguous f32), rounded once */
template <typename AT>
static __global__ void store_rows_k(AT *dst, int64_t ldd, const float *src, int rows, int cols) {
  CU_GRID_LOOP(x, (int64_t)rows * cols) {
    int64_t r = x / cols, c = x % cols;
    cu_st(dst + r * ldd + c, src[x]);
  }
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
  const grpo_dtype at = be->act_dtype;
  const int bf = at == GRPO_BF16;
  if (s->n_seg > 0 && bf && cu_cudnn_attn_fwd(I, s, out, ldo, lse, ws, ws_bytes)) return;
  check_shape(s);
  const int T = s->T, nh = s->nh, hd = s->hd, grp = s->nh / s->nkv;
  const size_t es = grpo_dtype_size(at);
  int hc, tq;
  if (!attn_plan(T, nh, grp, ws_bytes, FWD_ELEM_BYTES(bf), FWD_BUFS(bf), &hc, &tq)) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__, "attn_fwd: workspace of %zu bytes too small for T=%d",
            ws_bytes, T);
    return;
  }
  float *S = (float *)ws;
  void *P = bf ? (char *)ws + cu_align256((size_t)hc * tq * T * sizeof(float)) : ws;
  for (int h0 = 0; h0 < nh; h0 += hc) {
    int hcur = nh - h0 < hc ? nh - h0 : hc;
    assert(hcur == 1 || (h0 % grp == 0 && hcur % grp == 0));
    int bg = hcur >= grp ? grp : 1, g0 = h0 / grp;
    for (int i0 = 0; i0 < T; i0 += tq) {
      int tcur = T - i0 < tq ? T - i0 : tq;
      int64_t sS = (int64_t)tcur * T;
      cu_gemm_x(I, at, GRPO_F32, 0, 1, tcur, T, hd, s->scale,
                cu_off(s->q, (int64_t)i0 * s->ldq + (int64_t)h0 * hd, es), s->ldq, hd,
                cu_off(s->k, (int64_t)g0 * hd, es), s->ldk, hd, bg, 0.0f, S, T, sS, hcur);
      dim3 grid((unsigned)tcur, (unsigned)hcur);
      CU_ACT_DISPATCH(at, AT,
                      softmax_fwd_k<AT><<<grid, CU_THREADS, 0, I->stream>>>(
                          S, (AT *)P, lse, s->tin, s->tout, T, i0, tcur, h0));
      CU_LAUNCHED(I, "attn softmax");
      cu_gemm_x(I, at, at, 0, 0, tcur, hd, T, 1.0f, P, T, sS, cu_off(s->v, (int64_t)g0 * hd, es),
                s->ldv, hd, bg, 0.0f, cu_off(out, (int64_t)i0 * ldo + (int64_t)h0 * hd, es), ldo, hd,
                hcur);
    }
  }
}

/* ---- backward ----------------------------------------------------------------------- */

void cu_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                 const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                 void *ws, size_t ws_bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || s->T <= 0) return;
  const grpo_dtype at = be->act_dtype;
  const int bf = at == GRPO_BF16;
  if (s->n_seg > 0 && bf &&
      cu_cudnn_attn_bwd(I, s, out, ldo, lse, dout, lddo, dq, dk, dv, ws, ws_bytes))
    return;
  check_shape(s);
  const int T = s->T, nh = s->nh, nkv = s->nkv, hd = s->hd, grp = s->nh / s->nkv;
  const size_t es = grpo_dtype_size(at);
  const int kvw = nkv * hd;
  size_t dbytes = cu_align256((size_t)nh * T * sizeof(float)), accb = acc_bytes(bf, T, nkv, hd);
  size_t fixed = dbytes + 2 * accb;
  int hc, tq;
  if (ws_bytes <= fixed ||
      !attn_plan(T, nh, grp, ws_bytes - fixed, BWD_ELEM_BYTES(bf), BWD_BUFS(bf), &hc, &tq)) {
    cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__,
            "attn_bwd: workspace of %zu bytes too small for T=%d, %d heads (attn_workspace: %zu)",
            ws_bytes, T, nh, cu_attn_workspace(be, T, nh, nkv, hd));
    return;
  }
  char *wp = (char *)ws;
  float *D = (float *)wp;
  float *dKa = (float *)(wp + dbytes), *dVa = (float *)(wp + dbytes + accb); /* bf16 only */
  char *tiles = wp + fixed;
  size_t s4 = cu_align256((size_t)hc * tq * T * sizeof(float));
  size_t s2 = cu_align256((size_t)hc * tq * T * sizeof(cu_bf16));
  float *S = (float *)tiles, *dP = (float *)(tiles + s4);
  void *Pm = bf ? (void *)(tiles + 2 * s4) : (void *)S;       /* P as a product operand */
  void *dSm = bf ? (void *)(tiles + 2 * s4 + s2) : (void *)dP; /* dS / scale, likewise */
  /* dK, dV products: straight into dk, dv (f32) or into the f32 accumulators */
  const grpo_dtype kvt = bf ? GRPO_F32 : at;
  const size_t kvs = grpo_dtype_size(kvt);
  void *DKc = bf ? (void *)dKa : dk, *DVc = bf ? (void *)dVa : dv;
  const int64_t ldkc = bf ? kvw : s->ldk, ldvc = bf ? kvw : s->ldv;

  int64_t nw = (int64_t)nh * T, nwb = (nw + 7) / 8; /* 8 warps per block, no grid stride */
  assert(nwb <= INT_MAX);
  CU_ACT_DISPATCH(at, AT,
                  rowdot_k<AT><<<(unsigned)nwb, 256, 0, I->stream>>>(
                      D, (const AT *)out, ldo, (const AT *)dout, lddo, T, nh, hd));
  CU_LAUNCHED(I, "attn rowdot");
  /* dK, dV (=): zero the [T, nkv*hd] slices (or accumulators), then accumulate */
  CU_CHECK(I, cudaMemset2DAsync(DKc, (size_t)ldkc * kvs, 0, (size_t)kvw * kvs, (size_t)T, I->stream));
  CU_CHECK(I, cudaMemset2DAsync(DVc, (size_t)ldvc * kvs, 0, (size_t)kvw * kvs, (size_t)T, I->stream));

  for (int h0 = 0; h0 < nh; h0 += hc) {
    int hcur = nh - h0 < hc ? nh - h0 : hc;
    assert(hcur == 1 || (h0 % grp == 0 && hcur % grp == 0));
    int bg = hcur >= grp ? grp : 1, g0 = h0 / grp;
    int hpg = hcur >= grp ? grp : 1, ng = hcur / hpg; /* heads per group in the chunk, groups */
    const void *Kg = cu_off(s->k, (int64_t)g0 * hd, es), *Vg = cu_off(s->v, (int64_t)g0 * hd, es);
    for (int i0 = 0; i0 < T; i0 += tq) {
      int tcur = T - i0 < tq ? T - i0 : tq;
      int64_t sS = (int64_t)tcur * T, tile = sS * hcur;
      const void *Qt = cu_off(s->q, (int64_t)i0 * s->ldq, es);
      const void *dOt = cu_off(dout, (int64_t)i0 * lddo, es);
      /* P */
      cu_gemm_x(I, at, GRPO_F32, 0, 1, tcur, T, hd, s->scale, cu_off(Qt, (int64_t)h0 * hd, es),
                s->ldq, hd, Kg, s->ldk, hd, bg, 0.0f, S, T, sS, hcur);
      CU_ACT_DISPATCH(at, AT,
                      probs_k<AT><<<cu_blocks(tile, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                          S, (AT *)Pm, lse, s->tin, s->tout, T, i0, tcur, h0, hcur));
      CU_LAUNCHED(I, "attn probs");
      /* dS / scale */
      cu_gemm_x(I, at, GRPO_F32, 0, 1, tcur, T, hd, 1.0f, cu_off(dOt, (int64_t)h0 * hd, es), lddo,
                hd, Vg, s->ldv, hd, bg, 0.0f, dP, T, sS, hcur);
      CU_ACT_DISPATCH(at, AT,
                      dscores_k<AT><<<cu_blocks(tile, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                          dP, S, (AT *)dSm, D, T, i0, tcur, h0, hcur));
      CU_LAUNCHED(I, "attn dscores");
      /* dQ (=) rows of this tile */
      cu_gemm_x(I, at, at, 0, 0, tcur, hd, T, s->scale, dSm, T, sS, Kg, s->ldk, hd, bg, 0.0f,
                cu_off(dq, (int64_t)i0 * s->ldq + (int64_t)h0 * hd, es), s->ldq, hd, hcur);
      /* dV, dK (+=): batched over the groups of the chunk, one head of each group at a time */
      for (int hh = 0; hh < hpg; hh++) {
        cu_gemm_x(I, at, kvt, 1, 0, T, hd, tcur, 1.0f, cu_off(Pm, hh * sS, es), T, hpg * sS,
                  cu_off(dOt, (int64_t)(h0 + hh) * hd, es), lddo, (int64_t)hpg * hd, 1, 1.0f,
                  cu_off(DVc, (int64_t)g0 * hd, kvs), ldvc, hd, ng);
        cu_gemm_x(I, at, kvt, 1, 0, T, hd, tcur, s->scale, cu_off(dSm, hh * sS, es), T, hpg * sS,
                  cu_off(Qt, (int64_t)(h0 + hh) * hd, es), s->ldq, (int64_t)hpg * hd, 1, 1.0f,
                  cu_off(DKc, (int64_t)g0 * hd, kvs), ldkc, hd, ng);
      }
    }
  }
  if (bf) { /* one rounding of the f32 sums */
    int64_t n = (int64_t)T * kvw;
    store_rows_k<cu_bf16><<<cu_blocks(n, CU_THREADS), CU_THREADS, 0, I->stream>>>(
        (cu_bf16 *)dk, s->ldk, dKa, T, kvw);
    CU_LAUNCHED(I, "attn dk store");
    store_rows_k<cu_bf16><<<cu_blocks(n, CU_THREADS), CU_THREADS, 0, I->stream>>>(
        (cu_bf16 *)dv, s->ldv, dVa, T, kvw);
    CU_LAUNCHED(I, "attn dv store");
  }
}

/* ---- decode ---------------------------------------------------------------------------- */

size_t cu_attn_decode_workspace(grpo_backend *be, int n, int nh, int tmax) {
  (void)be;
  return (size_t)(n > 0 ? n : 0) * (size_t)(nh > 0 ? nh : 0) * (size_t)(tmax > 0 ? tmax : 0) *
         sizeof(float);
}

#define DECODE_THREADS 128

/* One block per (query i, head h); f32 scores in the workspace row of the
 * task, f32 softmax and output sums, one rounding of the output. */
template <typename AT>
static __global__ void decode_k(AT *out, const AT *q, const AT *kc, const AT *vc,
                                const int32_t *slots, const int32_t *lens, int nh, int nkv, int hd,
                                int tmax, float scale, float *ws, int *flag) {
  extern __shared__ float qs[]; /* [hd] */
  __shared__ float sh[32];
  int64_t task = blockIdx.x;
  int i = (int)(task / nh), h = (int)(task % nh), g = h / (nh / nkv);
  int64_t slot = slots ? slots[i] : i;
  int len = lens[i];
  AT *o = out + task * hd;
  if (slot < 0 || len < 0 || len > tmax) {
    for (int c = threadIdx.x; c < hd; c += blockDim.x) cu_st(o + c, 0.0f);
    if (threadIdx.x == 0) atomicOr(flag, CU_FLAG_DECODE_LEN);
    return; /* uniform across the block */
  }
  const AT *qv = q + task * hd;
  for (int c = threadIdx.x; c < hd; c += blockDim.x) qs[c] = cu_ld(qv + c);
  __syncthreads();
  float *sc = ws + task * tmax;
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
  const int64_t row = (int64_t)nkv * hd; /* cache row stride per position */
  const AT *kbase = kc + slot * tmax * row + (int64_t)g * hd;
  const AT *vbase = vc + slot * tmax * row + (int64_t)g * hd;
  float mx = -INFINITY;
  for (int t = wid; t < len; t += nwarp) {
    const AT *kv = kbase + (int64_t)t * row;
    float acc = 0.0f;
    for (int c = lane; c < hd; c += 32) acc += qs[c] * cu_ld(kv + c);
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
    for (int t = 0; t < len; t++) acc += (sc[t] * inv) * cu_ld(vbase + (int64_t)t * row + c);
    cu_st(o + c, acc);
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
  CU_ACT_DISPATCH(be->act_dtype, AT,
                  decode_k<AT><<<(unsigned)tasks, DECODE_THREADS, (size_t)hd * sizeof(float),
                                 I->stream>>>((AT *)out, (const AT *)q, (const AT *)kcache,
                                              (const AT *)vcache, slots, lens, nh, nkv, hd, tmax,
                                              scale, (float *)ws, I->dflag));
  CU_LAUNCHED(I, "attn_decode");
}
