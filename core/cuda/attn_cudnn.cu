/* cuDNN SDPA (flash attention) for plain causal packs in bf16; see
 * attn_cudnn.h for the contract.
 *
 * How the graph is built. cuDNN 9.19's native SDPA operations
 * (CUDNN_BACKEND_OPERATION_SDPA_FWD/BWD_DESCRIPTOR) have no causal mask: in
 * 9.19 the masks of the native forward come from a score subgraph
 * (CUDNN_ATTR_OPERATION_SDPA_FWD_SUBGRAPH) that only 9.21 has, and nothing
 * drives the native backward yet. So this file builds the composite graphs
 * that cuDNN's pattern matcher fuses into its flash-attention engines,
 * operation for operation as NVIDIA's cudnn-frontend (v1.19, the release that
 * goes with cuDNN 9.19: CompositeSDPANode / CompositeSDPABackwardNode,
 * attn::score_modifiers::padding_mask, the composite diagonal band mask for
 * the causal mask, CompositeSoftmaxNode) lowers sdpa() / sdpa_backward() with
 * padding mask, causal mask (right bound 0, top-left diagonal), a by-value
 * attention scale, bf16 I/O and fp32 intermediates and compute:
 *
 *   forward:  S = Q K^T (m, n overridden by the sequence lengths); S *= scale;
 *             padding mask (row < len_q and col < len_kv, else -inf);
 *             causal mask (row >= col, else -inf; the lowest float before
 *             9.10, as the frontend); M = max_j S; E = exp(S - M);
 *             L = sum_j E; Stats = M + log L; P = E / L (bf16); O = P V.
 *   backward: Dsum = sum_d (dO * O) * 1 (an f32 buffer); S = scale Q K^T,
 *             padding mask, S - Stats (before 9.10: the padding mask again),
 *             causal mask, P = exp (bf16 P^T view);
 *             dV = P^T dO; dP = dO V^T; dS = (dP - Dsum) * P * scale;
 *             dK = dS^T Q; dQ = dS K.
 *   GQA (nh != nkv): dK and dV are first computed per query head
 *             ("full-head" bf16 buffers) and then summed over each group by a
 *             reduction, as the frontend does.
 *   Deterministic backward: dQ is the output of the dS K product itself (the
 *             frontend's "dP workspace" form, what set_deterministic_algorithm
 *             builds on Hopper), and engines carrying the NONDETERMINISTIC
 *             numerical note are skipped. GRPO_CUDNN_ATTN=nondet builds the
 *             other form (an f32 dQ accumulator, then an identity to dQ).
 *
 * Packed ("THD") layout: tensors are [b, h, s, d] with b = segments and s =
 * the longest segment, both rounded up to a bucket (below) so that a few
 * plans serve every pack; the batch stride is replaced by ragged offsets (in
 * elements, int64: first token of the segment times the row stride), and the
 * per-segment lengths (int32) drive the padding mask and the m/n/k overrides
 * of the products. Segments past n_seg have length 0. Q, K, V are read in
 * place from the fused QKV buffer (head stride hd, token stride ldq/ldk/ldv);
 * dQ (and dK/dV for MHA) are written in place the same way. With GQA, dK and
 * dV are written to dense staging buffers [T, nkv*hd] (the full-head buffers'
 * strides are the staged ones times the group size, sharing their ragged
 * offsets, as the frontend requires) and copied into the strided outputs.
 * Stats are ragged too ([T, nh] f32, token-major); a small kernel transposes
 * them to and from the backend's lse [nh, T]. cuDNN's Stats are max + log(sum
 * of exp) of the scaled scores, natural log (EXP and LOG pointwise modes):
 * exactly the lse of the cuBLAS path, so forward and backward may come from
 * different paths.
 *
 * Plans: built once per key (forward/backward, bucketed segments and
 * length, heads, head dim, row strides, backward form) through the engine
 * heuristics (mode A, then FALLBACK), the first engine config that finalizes
 * wins; kept with every descriptor they were built from until the backend is
 * destroyed. A key that fails is remembered and declined (one warning). The
 * handle is created on first use and bound to the backend's stream.
 *
 * Memory: segment lengths and ragged offsets live in a small device buffer of
 * this file, grown when a pack has more segments than any before. Everything
 * else (cuDNN's workspace, the Stats/Dsum buffers, full-head and staging
 * buffers) comes from the caller's attention workspace. The deterministic
 * backward's cuDNN workspace is the bf16 dP of every (segment, head) pair at
 * the bucketed length, b * nh * s^2 * 2 bytes (cuDNN 9.19, sm_90): when a pack
 * does not fit, the backward runs in chunks of segments (one plan for bc
 * segments, executed over consecutive groups; every segment is computed alone,
 * so the result does not depend on the chunking); when not even one segment
 * fits, or a forward's workspace does not, the call is declined. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/attn_cudnn.h"
extern "C" {
#include "core/log.h" /* no C++ guard of its own */
}

#define CD_WS_CAP ((size_t)256 << 20) /* most workspace cu_cudnn_attn_workspace asks for */

#ifdef GRPO_HAVE_CUDNN
#include <cudnn_graph.h>

/* ---- state ------------------------------------------------------------------------ */

typedef struct cd_key {
  int bwd, b, s, nh, nkv, hd;
  int nondet; /* backward with an f32 dQ accumulator (GRPO_CUDNN_ATTN=nondet) */
  int pad_;
  int64_t ldq, ldk, ldv, ldo, lddo;
} cd_key;

typedef struct cd_plan {
  cd_key key;
  int state;     /* 1: ready; -1: cannot be built or run (declined from now on) */
  int warned_ws; /* "workspace too small" already logged */
  cudnnBackendDescriptor_t plan;
  cudnnBackendDescriptor_t *descs; /* every descriptor the plan was built from */
  int ndesc;
  int64_t ws; /* cuDNN workspace bytes */
} cd_plan;

/* Ragged offsets kept per call: one int64 array of b+1 entries each. */
enum { OFF_Q, OFF_K, OFF_V, OFF_O, OFF_DO, OFF_STATS, OFF_DK, OFF_DV, OFF_N };

typedef struct cd_state {
  int usable;  /* 0: every call declines */
  int version; /* cudnnGetVersion() */
  int nondet;
  cudnnHandle_t h;
  cd_plan *plans;
  int nplans, cap;
  void *dbuf; /* per chunk: int32 lengths [bc], then OFF_N int64 offset arrays [bc + 1] */
  size_t dbuf_bytes;
  long plans_built, served_fwd, served_bwd;
  int warned_plans_full, warned_dbuf, warned_long;
} cd_state;

#define CD_MAX_PLANS 128

/* Tensor unique ids of the graphs (virtual tensors count up from UID_VIRTUAL). */
// clang-format off
enum {
  UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_DO, UID_DQ, UID_DK, UID_DV,
  UID_SEQ_Q, UID_SEQ_KV, UID_SCALE, UID_NEG_INF_PAD, UID_NEG_INF_CAUSAL, UID_ONE,
  UID_DSUM, UID_DK_FULL, UID_DV_FULL, UID_DQ_ACC, UID_NEG_INF_PAD2,
  UID_OFF = 40, /* + OFF_* */
  UID_VIRTUAL = 100
};
// clang-format on

/* Per cuDNN version, as the frontend builds the masks
 * (attn::score_modifiers::get_negative_inf_value, sdpa_backward): before 9.10
 * the fill value of masked scores is the lowest float (-inf from 9.10 on),
 * and the backward puts the padding value again after subtracting Stats. */
static float cd_mask_fill(int version) { return version < 91000 ? -FLT_MAX : -INFINITY; }
static int cd_second_padding(int version) { return version < 91000; }

/* ---- small kernels ----------------------------------------------------------------------- */

typedef struct cd_mults {
  int64_t m[OFF_N];
} cd_mults;

/* The segments in chunks of bc: chunk j (block of blk bytes at buf + j*blk)
 * holds lens[i] = length of segment j*bc + i (0 past n_seg), then OFF_N
 * arrays (stride ostr elements) off[k][i] = first token of that segment (T
 * past n_seg) times m[k], i <= bc. */
static __global__ void cd_prep_k(const int32_t *seg_start, int n_seg, int bc, int nchunk, char *buf,
                                 size_t blk, size_t lbytes, int64_t ostr, cd_mults mul) {
  CU_GRID_LOOP(x, (int64_t)nchunk * (bc + 1)) {
    int64_t j = x / (bc + 1), i = x % (bc + 1), seg = j * bc + i;
    int32_t *lens = (int32_t *)(buf + j * blk);
    int64_t *off = (int64_t *)(buf + j * blk + lbytes);
    int64_t st = seg_start[seg <= n_seg ? seg : n_seg];
    for (int k = 0; k < OFF_N; k++) off[k * ostr + i] = st * mul.m[k];
    if (i < bc) lens[i] = seg < n_seg ? seg_start[seg + 1] - seg_start[seg] : 0;
  }
}

/* lse[h*T + t] = stats[t*nh + h] */
static __global__ void cd_stats_to_lse_k(float *lse, const float *stats, int T, int nh) {
  CU_GRID_LOOP(x, (int64_t)nh * T) {
    int64_t h = x / T, t = x % T;
    lse[x] = stats[t * nh + h];
  }
}

/* stats[t*nh + h] = lse[h*T + t] */
static __global__ void cd_lse_to_stats_k(float *stats, const float *lse, int T, int nh) {
  CU_GRID_LOOP(x, (int64_t)nh * T) {
    int64_t t = x / nh, h = x % nh;
    stats[x] = lse[h * T + t];
  }
}

/* ---- graph building ------------------------------------------------------------------------ */

/* Every descriptor made for one plan, and the first failure. */
typedef struct gb {
  cudnnBackendDescriptor_t *d;
  int n, cap;
  cudnnBackendDescriptor_t ops[64];
  int nops;
  int64_t next_uid;
  cudnnStatus_t st;
  char what[160];
  int version;
} gb;

/* snprintf that may cut the message (log text) */
static void __attribute__((format(printf, 3, 4))) cd_fmt(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
}

static void gb_failed(gb *g, cudnnStatus_t s, const char *what, int line) {
  if (g->st != CUDNN_STATUS_SUCCESS) return;
  g->st = s;
  char detail[96] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  cd_fmt(g->what, sizeof g->what, "%s (line %d): %s%s%s", what, line, cudnnGetErrorString(s),
         detail[0] ? ": " : "", detail);
}

#define GB_OK(g) ((g)->st == CUDNN_STATUS_SUCCESS)
#define GB_CALL(g, call, what)                                              \
  do {                                                                      \
    if (GB_OK(g)) {                                                         \
      cudnnStatus_t s_ = (call);                                            \
      if (s_ != CUDNN_STATUS_SUCCESS) gb_failed((g), s_, (what), __LINE__); \
    }                                                                       \
  } while (0)

static cudnnBackendDescriptor_t gb_new(gb *g, cudnnBackendDescriptorType_t type) {
  if (!GB_OK(g)) return NULL;
  if (g->n == g->cap) {
    int nc = g->cap ? 2 * g->cap : 128;
    cudnnBackendDescriptor_t *nd = (cudnnBackendDescriptor_t *)realloc(g->d, (size_t)nc * sizeof *nd);
    if (!nd) {
      gb_failed(g, CUDNN_STATUS_ALLOC_FAILED, "host allocation", __LINE__);
      return NULL;
    }
    g->d = nd, g->cap = nc;
  }
  cudnnBackendDescriptor_t d = NULL;
  cudnnStatus_t s = cudnnBackendCreateDescriptor(type, &d);
  if (s != CUDNN_STATUS_SUCCESS) {
    gb_failed(g, s, "cudnnBackendCreateDescriptor", __LINE__);
    return NULL;
  }
  g->d[g->n++] = d;
  return d;
}

static void gb_set(gb *g, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                   cudnnBackendAttributeType_t t, int64_t n, const void *v, const char *what) {
  GB_CALL(g, cudnnBackendSetAttribute(d, a, t, n, v), what);
}

static void gb_fin(gb *g, cudnnBackendDescriptor_t d, const char *what) {
  GB_CALL(g, cudnnBackendFinalize(d), what);
}

static void gb_free(gb *g) {
  for (int i = g->n - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(g->d[i]);
  free(g->d);
  g->d = NULL, g->n = g->cap = 0;
}

/* A tensor descriptor: 4-d, 16-byte alignment (as the frontend sets). uid < 0
 * takes the next virtual id. */
static cudnnBackendDescriptor_t gb_tensor(gb *g, int64_t uid, cudnnDataType_t dt, const int64_t dim[4],
                                          const int64_t str[4], bool is_virtual, bool by_value,
                                          cudnnBackendDescriptor_t ragged) {
  cudnnBackendDescriptor_t d = gb_new(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  if (uid < 0) uid = g->next_uid++;
  int64_t align = 16;
  gb_set(g, d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type");
  gb_set(g, d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim, "tensor dims");
  gb_set(g, d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str, "tensor strides");
  gb_set(g, d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
  gb_set(g, d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
  if (is_virtual)
    gb_set(g, d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
  if (by_value)
    gb_set(g, d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
  if (ragged)
    gb_set(g, d, CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ragged,
           "tensor ragged offset");
  gb_fin(g, d, "tensor finalize");
  return d;
}

static void gb_op(gb *g, cudnnBackendDescriptor_t op) {
  if (!GB_OK(g)) return;
  if (g->nops == (int)(sizeof g->ops / sizeof *g->ops)) {
    gb_failed(g, CUDNN_STATUS_BAD_PARAM, "too many operations", __LINE__);
    return;
  }
  g->ops[g->nops++] = op;
}

/* Pointwise y = mode(x[, b[, t]]); axis >= 0 for GEN_INDEX. */
static void gb_pw(gb *g, cudnnPointwiseMode_t mode, cudnnDataType_t prec, int64_t axis,
                  cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t,
                  cudnnBackendDescriptor_t y) {
  cudnnBackendDescriptor_t pw = gb_new(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  gb_set(g, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
  gb_set(g, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
  if (axis >= 0) gb_set(g, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
  gb_fin(g, pw, "pointwise finalize");
  cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw,
         "pointwise op desc");
  gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "pointwise x");
  if (b)
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "pointwise b");
  if (t)
    gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t, "pointwise t");
  gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "pointwise y");
  float one = 1.0f;
  gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha1");
  gb_set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha2");
  gb_fin(g, op, "pointwise op finalize");
  gb_op(g, op);
}

static void gb_reduce(gb *g, cudnnReduceTensorOp_t red, cudnnBackendDescriptor_t x,
                      cudnnBackendDescriptor_t y) {
  cudnnBackendDescriptor_t rd = gb_new(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
  cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  gb_set(g, rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "reduction precision");
  gb_set(g, rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &red,
         "reduction operator");
  if (g->version >= 91100) {
    bool det = false; /* the frontend's default; the SDPA engines own their reductions */
    gb_set(g, rd, CUDNN_ATTR_REDUCTION_IS_DETERMINISTIC, CUDNN_TYPE_BOOLEAN, 1, &det,
           "reduction deterministic");
  }
  gb_fin(g, rd, "reduction finalize");
  cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
  gb_set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd,
         "reduction op desc");
  gb_set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "reduction x");
  gb_set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "reduction y");
  gb_fin(g, op, "reduction op finalize");
  gb_op(g, op);
}

/* C = A B (batched over the first two dims, broadcasting kv heads); the
 * optional overrides are the per-batch m, n, k (sequence lengths). */
static void gb_matmul(gb *g, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
                      cudnnBackendDescriptor_t c, cudnnBackendDescriptor_t m_ovr,
                      cudnnBackendDescriptor_t n_ovr, cudnnBackendDescriptor_t k_ovr) {
  cudnnBackendDescriptor_t md = gb_new(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
  cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  gb_set(g, md, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, "matmul precision");
  gb_fin(g, md, "matmul finalize");
  cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
  gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a, "matmul a");
  gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, "matmul b");
  gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c, "matmul c");
  gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &md, "matmul op desc");
  if (m_ovr)
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &m_ovr,
           "matmul m override");
  if (n_ovr)
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n_ovr,
           "matmul n override");
  if (k_ovr)
    gb_set(g, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &k_ovr,
           "matmul k override");
  gb_fin(g, op, "matmul op finalize");
  gb_op(g, op);
}

static void gb_reshape(gb *g, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
  cudnnBackendDescriptor_t op = gb_new(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
  gb_set(g, op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, "reshape x");
  gb_set(g, op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, "reshape y");
  gb_fin(g, op, "reshape finalize");
  gb_op(g, op);
}

/* The tensors both graphs share. */
typedef struct gb_io {
  int64_t b, s, hq, hk, d;
  cudnnBackendDescriptor_t seq_q, seq_kv, scale, off[OFF_N];
  int64_t sdim[4], sstr[4]; /* [b, hq, s, s] scores */
  int64_t rdim[4], rstr[4]; /* [b, hq, s, 1] row reductions (virtual) */
  int64_t tdim[4], tstr[4]; /* [b, hq, s, 1] ragged token-major f32 (Stats, Dsum) */
} gb_io;

static cudnnBackendDescriptor_t gb_virt(gb *g, cudnnDataType_t dt, const int64_t dim[4],
                                        const int64_t str[4]) {
  return gb_tensor(g, -1, dt, dim, str, true, false, NULL);
}

static cudnnBackendDescriptor_t gb_scalar(gb *g, int64_t uid) {
  static const int64_t one[4] = {1, 1, 1, 1};
  return gb_tensor(g, uid, CUDNN_DATA_FLOAT, one, one, false, true, NULL);
}

static void gb_common(gb *g, const cd_key *k, gb_io *io) {
  io->b = k->b, io->s = k->s, io->hq = k->nh, io->hk = k->nkv, io->d = k->hd;
  const int64_t b = io->b, s = io->s, hq = io->hq;
  const int64_t ldim[4] = {b, 1, 1, 1}, odim[4] = {b + 1, 1, 1, 1}, one[4] = {1, 1, 1, 1};
  io->seq_q = gb_tensor(g, UID_SEQ_Q, CUDNN_DATA_INT32, ldim, one, false, false, NULL);
  io->seq_kv = gb_tensor(g, UID_SEQ_KV, CUDNN_DATA_INT32, ldim, one, false, false, NULL);
  for (int i = 0; i < OFF_N; i++) io->off[i] = NULL;
  int need[OFF_N] = {1, 1, 1, 1, k->bwd, 1, 0, 0};
  if (k->bwd && k->nh != k->nkv) need[OFF_DK] = need[OFF_DV] = 1;
  for (int i = 0; i < OFF_N; i++)
    if (need[i]) io->off[i] = gb_tensor(g, UID_OFF + i, CUDNN_DATA_INT64, odim, one, false, false, NULL);
  io->scale = gb_scalar(g, UID_SCALE);
  const int64_t sd[4] = {b, hq, s, s}, ss[4] = {hq * s * s, s * s, s, 1};
  const int64_t rd[4] = {b, hq, s, 1}, rs[4] = {hq * s, s, 1, 1}, ts[4] = {hq * s, 1, hq, 1};
  memcpy(io->sdim, sd, sizeof sd), memcpy(io->sstr, ss, sizeof ss);
  memcpy(io->rdim, rd, sizeof rd), memcpy(io->rstr, rs, sizeof rs);
  memcpy(io->tdim, rd, sizeof rd), memcpy(io->tstr, ts, sizeof ts);
}

/* [b, h, s, d] view of a token-major matrix with row stride ld (head stride
 * d); transposed: [b, h, d, s]. */
static void thd(const gb_io *io, int64_t h, int64_t ld, int transposed, int64_t dim[4], int64_t str[4]) {
  dim[0] = io->b, dim[1] = h, str[0] = io->s * ld, str[1] = io->d;
  if (transposed)
    dim[2] = io->d, dim[3] = io->s, str[2] = 1, str[3] = ld;
  else
    dim[2] = io->s, dim[3] = io->d, str[2] = ld, str[3] = 1;
}

/* attn::score_modifiers::padding_mask: keep row < len_q && col < len_kv.
 * ninf_uid: the uid of its fill value (a graph may hold two such masks). */
static cudnnBackendDescriptor_t gb_padding_mask(gb *g, const gb_io *io, cudnnBackendDescriptor_t x,
                                                int64_t ninf_uid) {
  cudnnBackendDescriptor_t row = gb_virt(g, CUDNN_DATA_INT32, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, 2, x, NULL, NULL, row);
  cudnnBackendDescriptor_t col = gb_virt(g, CUDNN_DATA_INT32, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, 3, x, NULL, NULL, col);
  cudnnBackendDescriptor_t rm = gb_virt(g, CUDNN_DATA_BOOLEAN, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, -1, row, io->seq_q, NULL, rm);
  cudnnBackendDescriptor_t cm = gb_virt(g, CUDNN_DATA_BOOLEAN, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, -1, col, io->seq_kv, NULL, cm);
  cudnnBackendDescriptor_t m = gb_virt(g, CUDNN_DATA_BOOLEAN, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, -1, rm, cm, NULL, m);
  cudnnBackendDescriptor_t ninf = gb_scalar(g, ninf_uid);
  cudnnBackendDescriptor_t y = gb_virt(g, CUDNN_DATA_FLOAT, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, -1, x, ninf, m, y);
  return y;
}

/* The composite diagonal band mask with right bound 0, top-left: keep
 * row >= col. */
static cudnnBackendDescriptor_t gb_causal_mask(gb *g, const gb_io *io, cudnnBackendDescriptor_t x) {
  cudnnBackendDescriptor_t row = gb_virt(g, CUDNN_DATA_INT32, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, 2, x, NULL, NULL, row);
  cudnnBackendDescriptor_t col = gb_virt(g, CUDNN_DATA_INT32, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, 3, x, NULL, NULL, col);
  cudnnBackendDescriptor_t m = gb_virt(g, CUDNN_DATA_BOOLEAN, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, -1, row, col, NULL, m);
  cudnnBackendDescriptor_t ninf = gb_scalar(g, UID_NEG_INF_CAUSAL);
  cudnnBackendDescriptor_t y = gb_virt(g, CUDNN_DATA_FLOAT, io->sdim, io->sstr);
  gb_pw(g, CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, -1, x, ninf, m, y);
  return y;
}

static void gb_forward(gb *g, const cd_key *k) {
  gb_io io;
  gb_common(g, k, &io);
  int64_t dim[4], str[4];
  thd(&io, io.hq, k->ldq, 0, dim, str);
  cudnnBackendDescriptor_t q =
      gb_tensor(g, UID_Q, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_Q]);
  thd(&io, io.hk, k->ldk, 1, dim, str);
  cudnnBackendDescriptor_t kt =
      gb_tensor(g, UID_K, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_K]);
  thd(&io, io.hk, k->ldv, 0, dim, str);
  cudnnBackendDescriptor_t v =
      gb_tensor(g, UID_V, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_V]);
  thd(&io, io.hq, k->ldo, 0, dim, str);
  cudnnBackendDescriptor_t o =
      gb_tensor(g, UID_O, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_O]);
  cudnnBackendDescriptor_t stats =
      gb_tensor(g, UID_STATS, CUDNN_DATA_FLOAT, io.tdim, io.tstr, false, false, io.off[OFF_STATS]);

  cudnnBackendDescriptor_t s0 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_matmul(g, q, kt, s0, io.seq_q, io.seq_kv, NULL);
  cudnnBackendDescriptor_t s1 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, -1, s0, io.scale, NULL, s1);
  cudnnBackendDescriptor_t s2 = gb_padding_mask(g, &io, s1, UID_NEG_INF_PAD);
  cudnnBackendDescriptor_t s3 = gb_causal_mask(g, &io, s2);
  /* CompositeSoftmaxNode with Stats */
  cudnnBackendDescriptor_t mx = gb_virt(g, CUDNN_DATA_FLOAT, io.rdim, io.rstr);
  gb_reduce(g, CUDNN_REDUCE_TENSOR_MAX, s3, mx);
  cudnnBackendDescriptor_t sub = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, -1, s3, mx, NULL, sub);
  cudnnBackendDescriptor_t ex = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, -1, sub, NULL, NULL, ex);
  cudnnBackendDescriptor_t sum = gb_virt(g, CUDNN_DATA_FLOAT, io.rdim, io.rstr);
  gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, ex, sum);
  cudnnBackendDescriptor_t lg = gb_virt(g, CUDNN_DATA_FLOAT, io.rdim, io.rstr);
  gb_pw(g, CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, -1, sum, NULL, NULL, lg);
  gb_pw(g, CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, -1, mx, lg, NULL, stats);
  cudnnBackendDescriptor_t p = gb_virt(g, CUDNN_DATA_BFLOAT16, io.sdim, io.sstr); /* bmm2 aType = I/O type */
  gb_pw(g, CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, -1, ex, sum, NULL, p);
  gb_matmul(g, p, v, o, io.seq_q, NULL, io.seq_kv);
}

static void gb_backward(gb *g, const cd_key *k) {
  gb_io io;
  gb_common(g, k, &io);
  const int gqa = k->nh != k->nkv;
  const int64_t grp = k->nh / k->nkv, dkv_ld = (int64_t)k->nkv * k->hd; /* staged dK/dV rows */
  int64_t dim[4], str[4];
  thd(&io, io.hq, k->ldq, 0, dim, str);
  cudnnBackendDescriptor_t q =
      gb_tensor(g, UID_Q, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_Q]);
  cudnnBackendDescriptor_t dq =
      gb_tensor(g, UID_DQ, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_Q]);
  int64_t dqdim[4], dqstr[4];
  memcpy(dqdim, dim, sizeof dim), memcpy(dqstr, str, sizeof str);
  thd(&io, io.hk, k->ldk, 1, dim, str);
  cudnnBackendDescriptor_t kt =
      gb_tensor(g, UID_K, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_K]);
  thd(&io, io.hk, k->ldv, 1, dim, str);
  cudnnBackendDescriptor_t vt =
      gb_tensor(g, UID_V, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_V]);
  thd(&io, io.hq, k->ldo, 0, dim, str);
  cudnnBackendDescriptor_t o =
      gb_tensor(g, UID_O, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_O]);
  thd(&io, io.hq, k->lddo, 0, dim, str);
  cudnnBackendDescriptor_t dout =
      gb_tensor(g, UID_DO, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_DO]);
  cudnnBackendDescriptor_t stats =
      gb_tensor(g, UID_STATS, CUDNN_DATA_FLOAT, io.tdim, io.tstr, false, false, io.off[OFF_STATS]);
  cudnnBackendDescriptor_t dk, dv;
  if (gqa) {
    thd(&io, io.hk, dkv_ld, 0, dim, str);
    dk = gb_tensor(g, UID_DK, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_DK]);
    dv = gb_tensor(g, UID_DV, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_DV]);
  } else {
    thd(&io, io.hk, k->ldk, 0, dim, str);
    dk = gb_tensor(g, UID_DK, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_K]);
    thd(&io, io.hk, k->ldv, 0, dim, str);
    dv = gb_tensor(g, UID_DV, CUDNN_DATA_BFLOAT16, dim, str, false, false, io.off[OFF_V]);
  }

  /* Dsum = reduce(dO * O) * 1 (non-virtual f32, ragged like Stats) */
  const int64_t b = io.b, s = io.s, hq = io.hq, d = io.d;
  const int64_t pdim[4] = {b, hq, s, d}, pstr[4] = {hq * s * d, s * d, hq * d, 1};
  cudnnBackendDescriptor_t t0 = gb_virt(g, CUDNN_DATA_FLOAT, pdim, pstr);
  gb_pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, -1, dout, o, NULL, t0);
  cudnnBackendDescriptor_t t1 = gb_virt(g, CUDNN_DATA_FLOAT, io.rdim, io.rstr);
  gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, t0, t1);
  cudnnBackendDescriptor_t one = gb_scalar(g, UID_ONE);
  cudnnBackendDescriptor_t dsum =
      gb_tensor(g, UID_DSUM, CUDNN_DATA_FLOAT, io.tdim, io.tstr, false, false, io.off[OFF_STATS]);
  gb_pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, -1, t1, one, NULL, dsum);

  /* P = exp(mask(scale Q K^T) - Stats) */
  cudnnBackendDescriptor_t s0 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_matmul(g, q, kt, s0, io.seq_q, io.seq_kv, NULL);
  cudnnBackendDescriptor_t s1 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, -1, s0, io.scale, NULL, s1);
  cudnnBackendDescriptor_t s2 = gb_padding_mask(g, &io, s1, UID_NEG_INF_PAD);
  cudnnBackendDescriptor_t s3 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, -1, s2, stats, NULL, s3);
  /* before 9.10 the padding value is put again after the Stats are loaded */
  if (cd_second_padding(g->version)) s3 = gb_padding_mask(g, &io, s3, UID_NEG_INF_PAD2);
  cudnnBackendDescriptor_t s4 = gb_causal_mask(g, &io, s3);
  cudnnBackendDescriptor_t pe = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, -1, s4, NULL, NULL, pe);

  /* dV = P^T dO (per query head, then summed over the group with GQA) */
  const int64_t tdim_[4] = {b, hq, s, s}, tstr_[4] = {hq * s * s, s * s, 1, s};
  cudnnBackendDescriptor_t pt = gb_virt(g, CUDNN_DATA_BFLOAT16, tdim_, tstr_);
  gb_reshape(g, pe, pt);
  const int64_t fdim[4] = {b, hq, s, d}, fstr[4] = {s * dkv_ld * grp, d, dkv_ld * grp, 1};
  if (gqa) {
    cudnnBackendDescriptor_t dvf =
        gb_tensor(g, UID_DV_FULL, CUDNN_DATA_BFLOAT16, fdim, fstr, false, false, io.off[OFF_DV]);
    gb_matmul(g, pt, dout, dvf, io.seq_kv, NULL, io.seq_q);
    gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, dvf, dv);
  } else {
    gb_matmul(g, pt, dout, dv, io.seq_kv, NULL, io.seq_q);
  }

  /* dS = (dO V^T - Dsum) * P * scale */
  cudnnBackendDescriptor_t dp = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_matmul(g, dout, vt, dp, io.seq_q, io.seq_kv, NULL);
  cudnnBackendDescriptor_t u0 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, -1, dp, dsum, NULL, u0);
  cudnnBackendDescriptor_t u1 = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, -1, u0, pe, NULL, u1);
  cudnnBackendDescriptor_t ds = gb_virt(g, CUDNN_DATA_FLOAT, io.sdim, io.sstr);
  gb_pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, -1, u1, io.scale, NULL, ds);

  /* dK = dS^T Q */
  cudnnBackendDescriptor_t dst = gb_virt(g, CUDNN_DATA_BFLOAT16, tdim_, tstr_);
  gb_reshape(g, ds, dst);
  if (gqa) {
    cudnnBackendDescriptor_t dkf =
        gb_tensor(g, UID_DK_FULL, CUDNN_DATA_BFLOAT16, fdim, fstr, false, false, io.off[OFF_DK]);
    gb_matmul(g, dst, q, dkf, io.seq_kv, NULL, io.seq_q);
    gb_reduce(g, CUDNN_REDUCE_TENSOR_ADD, dkf, dk);
  } else {
    gb_matmul(g, dst, q, dk, io.seq_kv, NULL, io.seq_q);
  }

  /* dQ = dS K (K viewed back as [b, hk, s, d]) */
  thd(&io, io.hk, k->ldk, 0, dim, str);
  cudnnBackendDescriptor_t kk = gb_tensor(g, -1, CUDNN_DATA_FLOAT, dim, str, true, false, io.off[OFF_K]);
  gb_reshape(g, kt, kk);
  if (k->nondet) {
    cudnnBackendDescriptor_t acc =
        gb_tensor(g, UID_DQ_ACC, CUDNN_DATA_FLOAT, dqdim, dqstr, false, false, io.off[OFF_Q]);
    gb_matmul(g, ds, kk, acc, io.seq_q, NULL, io.seq_kv);
    gb_pw(g, CUDNN_POINTWISE_IDENTITY, CUDNN_DATA_FLOAT, -1, acc, NULL, NULL, dq);
  } else {
    gb_matmul(g, ds, kk, dq, io.seq_q, NULL, io.seq_kv);
  }
}

static int has_note(cudnnBackendDescriptor_t cfg, cudnnBackendNumericalNote_t note, int64_t *engine_id) {
  cudnnBackendDescriptor_t eng = NULL;
  int found = 0;
  *engine_id = -1;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) != CUDNN_STATUS_SUCCESS) return 0;
  int64_t n = 0;
  if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                               &eng) == CUDNN_STATUS_SUCCESS) {
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int64_t nn = 0;
    if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &nn, notes) == CUDNN_STATUS_SUCCESS)
      for (int64_t i = 0; i < nn && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) found |= notes[i] == note;
    int64_t id = -1;
    if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &id) ==
        CUDNN_STATUS_SUCCESS)
      *engine_id = id;
  }
  cudnnBackendDestroyDescriptor(eng);
  return found;
}

/* Operation graph -> heuristics (A, then FALLBACK) -> the first engine config
 * whose plan finalizes. Returns the plan or NULL (g->what says why). devprop
 * (a CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR) is for building without the device
 * (an offline check); NULL here, where the handle's device is used. */
static cudnnBackendDescriptor_t gb_plan(gb *g, cudnnHandle_t h, cudnnBackendDescriptor_t devprop,
                                        int deterministic, int64_t *engine_id, int64_t *ws) {
  cudnnBackendDescriptor_t graph = gb_new(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  gb_set(g, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->nops, g->ops,
         "operation graph ops");
  if (h)
    gb_set(g, graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h, "operation graph handle");
  gb_fin(g, graph, "operation graph finalize (the graph is not supported)");
  if (!GB_OK(g)) return NULL;
  const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
  int tried = 0, skipped = 0;
  char last[160] = "";
  for (int mi = 0; mi < 2; mi++) {
    cudnnBackendDescriptor_t heur = gb_new(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    gb_set(g, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph,
           "heuristics graph");
    gb_set(g, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[mi], "heuristics mode");
    if (devprop)
      gb_set(g, heur, CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &devprop,
             "heuristics device");
    if (!GB_OK(g)) return NULL;
    if (cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS) continue;
    int64_t count = 0;
    if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                 &count, NULL) != CUDNN_STATUS_SUCCESS ||
        count <= 0)
      continue;
    if (count > 32) count = 32;
    cudnnBackendDescriptor_t cfgs[32];
    for (int64_t i = 0; i < count; i++) cfgs[i] = gb_new(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    if (!GB_OK(g)) return NULL;
    int64_t got = 0;
    if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                 &got, cfgs) != CUDNN_STATUS_SUCCESS)
      continue;
    for (int64_t i = 0; i < got && i < count; i++) {
      int64_t id = -1;
      if (has_note(cfgs[i], CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC, &id) && deterministic) {
        skipped++;
        continue;
      }
      tried++;
      cudnnBackendDescriptor_t plan = gb_new(g, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      if (!GB_OK(g)) return NULL;
      cudnnStatus_t s = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]);
      /* not needed since 9.x outside deserialization; accepted when given */
      if (s == CUDNN_STATUS_SUCCESS && h)
        (void)cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
      if (s == CUDNN_STATUS_SUCCESS && devprop)
        s = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &devprop);
      if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(plan);
      if (s != CUDNN_STATUS_SUCCESS) {
        char detail[96] = "";
        cudnnGetLastErrorString(detail, sizeof detail);
        cd_fmt(last, sizeof last, "engine %lld: %s%s%s", (long long)id, cudnnGetErrorString(s),
               detail[0] ? ": " : "", detail);
        continue;
      }
      int64_t n = 0, w = 0;
      if (cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                   &w) != CUDNN_STATUS_SUCCESS ||
          w < 0) {
        cd_fmt(last, sizeof last, "engine %lld: workspace size unknown", (long long)id);
        continue;
      }
      *engine_id = id, *ws = w;
      return plan;
    }
  }
  if (GB_OK(g)) {
    char why[160];
    cd_fmt(why, sizeof why, "no engine config built (%d tried, %d nondeterministic skipped%s%s)", tried,
           skipped, last[0] ? "; last: " : "", last);
    gb_failed(g, CUDNN_STATUS_NOT_SUPPORTED, why, __LINE__);
  }
  return NULL;
}

/* ---- plans and state ------------------------------------------------------------------------ */

static const char *key_str(const cd_key *k, char *buf, size_t n) {
  int w = snprintf(buf, n, "%s b=%d s=%d nh=%d nkv=%d hd=%d ldq=%lld ldk=%lld ldv=%lld ldo=%lld",
                   k->bwd ? (k->nondet ? "backward (nondeterministic)" : "backward") : "forward", k->b, k->s,
                   k->nh, k->nkv, k->hd, (long long)k->ldq, (long long)k->ldk, (long long)k->ldv,
                   (long long)k->ldo);
  if (k->bwd && w > 0 && (size_t)w < n) cd_fmt(buf + w, n - (size_t)w, " lddo=%lld", (long long)k->lddo);
  return buf;
}

static void plan_free(cd_plan *p) {
  if (p->descs) {
    for (int i = p->ndesc - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(p->descs[i]);
    free(p->descs);
  }
  p->descs = NULL, p->ndesc = 0, p->plan = NULL;
}

static cd_state *cd_get(cuda_impl *I) {
  if (I->cudnn) return (cd_state *)I->cudnn;
  cd_state *st = (cd_state *)calloc(1, sizeof *st);
  if (!st) return NULL;
  I->cudnn = st;
  const char *env = getenv("GRPO_CUDNN_ATTN");
  if (env && (!strcmp(env, "0") || !strcmp(env, "off"))) {
    GRPO_INFO("cuDNN attention disabled (GRPO_CUDNN_ATTN=%s)", env);
    return st;
  }
  st->nondet = env && !strcmp(env, "nondet");
  st->version = (int)cudnnGetVersion();
  if (st->version < 90600 || st->version == 91000 || st->version == 91001 || st->version >= 100000) {
    GRPO_WARN(
        "cuDNN %d.%d.%d: the SDPA attention path needs 9.6 or later (not 9.10.0/9.10.1); using the "
        "cuBLAS attention",
        st->version / 10000, st->version / 100 % 100, st->version % 100);
    return st;
  }
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, I->device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, I->device);
  cudaGetLastError();
  if (major != 9) {
    /* ragged (THD) SDPA and the deterministic backward as built here are Hopper's */
    GRPO_INFO(
        "cuDNN SDPA attention serves sm_90 (Hopper) only; device %d is sm_%d%d: using the cuBLAS "
        "attention",
        I->device, major, minor);
    return st;
  }
  cudnnStatus_t s = cudnnCreate(&st->h);
  if (s == CUDNN_STATUS_SUCCESS) {
    s = cudnnSetStream(st->h, I->stream);
    if (s != CUDNN_STATUS_SUCCESS) cudnnDestroy(st->h);
  }
  if (s != CUDNN_STATUS_SUCCESS) {
    st->h = NULL;
    cudaGetLastError();
    GRPO_WARN("cuDNN handle: %s; using the cuBLAS attention", cudnnGetErrorString(s));
    return st;
  }
  st->usable = 1;
  return st;
}

/* The plan for key, built on first use; NULL when it cannot be (declined). */
static cd_plan *cd_plan_for(cd_state *st, const cd_key *key) {
  for (int i = 0; i < st->nplans; i++)
    if (!memcmp(&st->plans[i].key, key, sizeof *key)) return st->plans[i].state > 0 ? &st->plans[i] : NULL;
  char kb[200];
  if (st->nplans >= CD_MAX_PLANS) {
    if (!st->warned_plans_full)
      GRPO_WARN("cuDNN SDPA: %d plans cached, no more are built (%s declined)", st->nplans,
                key_str(key, kb, sizeof kb));
    st->warned_plans_full = 1;
    return NULL;
  }
  if (st->nplans == st->cap) {
    int nc = st->cap ? 2 * st->cap : 16;
    cd_plan *np = (cd_plan *)realloc(st->plans, (size_t)nc * sizeof *np);
    if (!np) return NULL;
    st->plans = np, st->cap = nc;
  }
  cd_plan *p = &st->plans[st->nplans++];
  memset(p, 0, sizeof *p);
  p->key = *key;
  gb g;
  memset(&g, 0, sizeof g);
  g.st = CUDNN_STATUS_SUCCESS;
  g.next_uid = UID_VIRTUAL;
  g.version = st->version;
  if (key->bwd)
    gb_backward(&g, key);
  else
    gb_forward(&g, key);
  int64_t engine = -1, ws = 0;
  cudnnBackendDescriptor_t plan =
      GB_OK(&g) ? gb_plan(&g, st->h, NULL, key->bwd && !key->nondet, &engine, &ws) : NULL;
  cudaGetLastError(); /* building must leave no CUDA error behind */
  if (!plan) {
    GRPO_WARN("cuDNN SDPA %s: cannot build a plan: %s; this shape uses the cuBLAS attention",
              key_str(key, kb, sizeof kb), g.what);
    gb_free(&g);
    p->state = -1;
    return NULL;
  }
  p->plan = plan, p->descs = g.d, p->ndesc = g.n, p->ws = ws, p->state = 1;
  st->plans_built++;
  GRPO_INFO("cuDNN SDPA %s: plan built (engine %lld, workspace %.1f MiB)", key_str(key, kb, sizeof kb),
            (long long)engine, (double)ws / 1048576.0);
  return p;
}

static void cd_plan_failed(cd_plan *p, cudnnStatus_t s, const char *what) {
  char kb[200], detail[96] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  cudaGetLastError();
  GRPO_WARN("cuDNN SDPA %s: %s: %s%s%s; this shape uses the cuBLAS attention from now on",
            key_str(&p->key, kb, sizeof kb), what, cudnnGetErrorString(s), detail[0] ? ": " : "", detail);
  p->state = -1;
}

/* Buckets: 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two and 1.5 times
 * them), so a plan serves packs up to ~1.5x smaller. */
static int bucket(int n) {
  if (n <= 4) return n < 1 ? 1 : n;
  int p = 4;
  while (p < n) {
    if (p + p / 2 >= n) return p + p / 2;
    p *= 2;
  }
  return p;
}

/* The largest bucket value <= n (n >= 1). */
static int bucket_floor(int n) {
  int v = 1;
  while (bucket(v + 1) <= n) v = bucket(v + 1);
  return v;
}

static size_t al(size_t x) { return cu_align256(x); }

/* cuDNN's workspace for the deterministic backward: the bf16 dP of every
 * (segment, head) pair at the bucketed length padded to 64 (the frontend's
 * b * h * s_q_pad * s_kv_pad * 2 bytes; the bucket 96 is not a multiple of
 * 64), plus slack. */
static size_t det_ws(int b, int s, int nh) {
  size_t sp = ((size_t)s + 63) & ~(size_t)63;
  return (size_t)b * nh * sp * sp * 2 + ((size_t)1 << 20);
}

/* Rows of the token-major f32 buffers: T rounded up, plus a tile of slack
 * (the frontend sizes them by the token count rounded to 64). */
static size_t rows_pad(int T) { return (((size_t)T + 63) & ~(size_t)63) + 128; }

/* Workspace past cuDNN's own for a call (see the layout in fwd / bwd). */
static size_t extras_fwd(int T, int nh) { return al(rows_pad(T) * nh * sizeof(float)); }
static size_t extras_bwd(int T, int nh, int nkv, int hd, int64_t ldq, int nondet) {
  size_t r = rows_pad(T), x = 2 * al(r * nh * sizeof(float)); /* Stats, Dsum */
  if (nh != nkv) {
    x += 2 * al(r * nh * hd * sizeof(float));             /* full-head dK, dV (sized as the frontend) */
    x += 2 * al((size_t)T * nkv * hd * sizeof(uint16_t)); /* staged dK, dV */
  }
  if (nondet) x += al(r * (size_t)ldq * sizeof(float)); /* dQ accumulator */
  return x;
}

/* What every call checks before looking for a plan. */
static cd_state *cd_usable(cuda_impl *I, const grpo_attn_shape *s) {
  if (I->err_code || I->be.act_dtype != GRPO_BF16) return NULL;
  if (s->T <= 0 || s->n_seg <= 0 || !s->seg_start || s->max_seg <= 0 || s->max_seg > s->T || s->n_seg > s->T)
    return NULL;
  if (s->hd % 8 || s->hd > 256 || s->nh <= 0 || s->nkv <= 0 || s->nh % s->nkv) return NULL;
  cd_state *st = cd_get(I);
  return st && st->usable ? st : NULL;
}

static int al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Segment lengths and ragged offsets, nchunk chunks of bc segments, in the
 * device buffer of the state (chunk_lens / chunk_off address them). */
typedef struct cd_chunks {
  char *buf;
  size_t blk, lbytes; /* bytes per chunk; bytes of its lengths */
  int64_t ostr;       /* elements between its offset arrays */
  int bc, n;
} cd_chunks;

static int cd_prep(cuda_impl *I, cd_state *st, const grpo_attn_shape *s, int bc, int nchunk,
                   const cd_mults *m, cd_chunks *c) {
  c->bc = bc, c->n = nchunk;
  c->lbytes = al((size_t)bc * sizeof(int32_t));
  size_t ob = al(((size_t)bc + 1) * sizeof(int64_t));
  c->ostr = (int64_t)(ob / sizeof(int64_t));
  c->blk = c->lbytes + OFF_N * ob;
  size_t bytes = c->blk * (size_t)nchunk;
  if (bytes > st->dbuf_bytes) {
    size_t nb = bytes > 2 * st->dbuf_bytes ? bytes : 2 * st->dbuf_bytes;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, nb);
    if (e != cudaSuccess) {
      cudaGetLastError();
      if (!st->warned_dbuf)
        GRPO_WARN("cuDNN SDPA: %zu bytes for segment offsets: %s", nb, cudaGetErrorString(e));
      st->warned_dbuf = 1;
      return 0;
    }
    if (st->dbuf) cudaFree(st->dbuf); /* waits for the device: no queued call still reads it */
    st->dbuf = p, st->dbuf_bytes = nb;
  }
  c->buf = (char *)st->dbuf;
  int64_t items = (int64_t)nchunk * (bc + 1);
  cd_prep_k<<<cu_blocks(items, CU_THREADS), CU_THREADS, 0, I->stream>>>(
      s->seg_start, s->n_seg, bc, nchunk, c->buf, c->blk, c->lbytes, c->ostr, *m);
  CU_LAUNCHED(I, "cudnn sdpa offsets");
  return !I->err_code;
}

static int32_t *chunk_lens(const cd_chunks *c, int j) { return (int32_t *)(c->buf + (size_t)j * c->blk); }
static int64_t *chunk_off(const cd_chunks *c, int j, int k) {
  return (int64_t *)(c->buf + (size_t)j * c->blk + c->lbytes) + (int64_t)k * c->ostr;
}

static cudnnStatus_t cd_execute(cd_state *st, cd_plan *p, int n, const int64_t *uids, void *const *ptrs,
                                void *ws) {
  cudnnBackendDescriptor_t vp = NULL;
  cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(vp);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(st->h, p->plan, vp);
  cudnnBackendDestroyDescriptor(vp);
  return s;
}

static int ws_fits(cd_plan *p, size_t need, size_t ws_bytes) {
  if (need <= ws_bytes) return 1;
  if (!p->warned_ws) {
    char kb[200];
    GRPO_WARN("cuDNN SDPA %s: needs %zu bytes of attention workspace, %zu given; declined (logged once)",
              key_str(&p->key, kb, sizeof kb), need, ws_bytes);
  }
  p->warned_ws = 1;
  return 0;
}

/* Appends (uid, pointer) to the variant pack being assembled in uids/ptrs/n. */
#define VP(u, ptr) (uids[n] = (u), ptrs[n] = (void *)(ptr), n++)

/* ---- the hooks ---------------------------------------------------------------------------------- */

size_t cu_cudnn_attn_workspace(cuda_impl *I, int T, int nh, int nkv, int hd) {
  if (I->be.act_dtype != GRPO_BF16 || T <= 0 || hd % 8 || hd > 256 || nh <= 0 || nkv <= 0 || nh % nkv)
    return 0;
  cd_state *st = cd_get(I);
  if (!st || !st->usable) return 0;
  int64_t ldq = (int64_t)(nh + 2 * nkv) * hd; /* the fused QKV layout */
  size_t x = extras_bwd(T, nh, nkv, hd, ldq, st->nondet), f = extras_fwd(T, nh);
  if (f > x) x = f;
  if (x >= CD_WS_CAP) return 0; /* cuDNN cannot fit in the cap at this length */
  /* cuDNN's own: the deterministic backward of one segment of length T (a
   * pack of shorter ones runs in chunks of segments within it); small else */
  size_t own = st->nondet ? ((size_t)16 << 20) : det_ws(1, bucket(T < 64 ? 64 : T), nh);
  size_t w = x + al(own);
  return w < CD_WS_CAP ? w : CD_WS_CAP;
}

/* The plan key of a call; b is filled by the caller. */
static void key_of(cd_key *k, const grpo_attn_shape *s, int bwd, int nondet, int64_t ldo, int64_t lddo) {
  memset(k, 0, sizeof *k);
  k->bwd = bwd, k->s = bucket(s->max_seg < 64 ? 64 : s->max_seg);
  k->nh = s->nh, k->nkv = s->nkv, k->hd = s->hd, k->nondet = bwd && nondet;
  k->ldq = s->ldq, k->ldk = s->ldk, k->ldv = s->ldv, k->ldo = ldo, k->lddo = bwd ? lddo : 0;
}

int cu_cudnn_attn_fwd(cuda_impl *I, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse, void *ws,
                      size_t ws_bytes) {
  cd_state *st = cd_usable(I, s);
  if (!st) return 0;
  if (!al16(s->q) || !al16(s->k) || !al16(s->v) || !al16(out) || !al16(ws) || s->ldq % 8 || s->ldk % 8 ||
      s->ldv % 8 || ldo % 8)
    return 0;
  const int T = s->T, nh = s->nh;
  cd_key key;
  key_of(&key, s, 0, 0, ldo, 0);
  key.b = bucket(s->n_seg);
  cd_plan *p = cd_plan_for(st, &key);
  if (!p) return 0;
  /* workspace: [cuDNN][Stats [T+, nh] f32] */
  size_t o_stats = al((size_t)p->ws), need = o_stats + extras_fwd(T, nh);
  if (!ws_fits(p, need, ws_bytes)) return 0;
  float *stats = (float *)((char *)ws + o_stats);
  cd_mults m;
  memset(&m, 0, sizeof m);
  m.m[OFF_Q] = s->ldq, m.m[OFF_K] = s->ldk, m.m[OFF_V] = s->ldv, m.m[OFF_O] = ldo, m.m[OFF_STATS] = nh;
  cd_chunks c;
  if (!cd_prep(I, st, s, key.b, 1, &m, &c)) return 0;
  float scale = s->scale, ninf = cd_mask_fill(st->version);
  int64_t uids[16];
  void *ptrs[16];
  int n = 0;
  VP(UID_Q, s->q), VP(UID_K, s->k), VP(UID_V, s->v), VP(UID_O, out), VP(UID_STATS, stats);
  VP(UID_SEQ_Q, chunk_lens(&c, 0)), VP(UID_SEQ_KV, chunk_lens(&c, 0));
  VP(UID_SCALE, &scale), VP(UID_NEG_INF_PAD, &ninf), VP(UID_NEG_INF_CAUSAL, &ninf);
  for (int k = OFF_Q; k <= OFF_O; k++) VP(UID_OFF + k, chunk_off(&c, 0, k));
  VP(UID_OFF + OFF_STATS, chunk_off(&c, 0, OFF_STATS));
  cudnnStatus_t r = cd_execute(st, p, n, uids, ptrs, ws);
  if (r != CUDNN_STATUS_SUCCESS) {
    cd_plan_failed(p, r, "execute");
    return 0;
  }
  CU_LAUNCHED(I, "cudnn sdpa forward");
  cd_stats_to_lse_k<<<cu_blocks((int64_t)nh * T, CU_THREADS), CU_THREADS, 0, I->stream>>>(lse, stats, T, nh);
  CU_LAUNCHED(I, "cudnn sdpa stats");
  st->served_fwd++;
  return 1;
}

int cu_cudnn_attn_bwd(cuda_impl *I, const grpo_attn_shape *s, const void *out, int64_t ldo, const float *lse,
                      const void *dout, int64_t lddo, void *dq, void *dk, void *dv, void *ws,
                      size_t ws_bytes) {
  cd_state *st = cd_usable(I, s);
  if (!st) return 0;
  if (!al16(s->q) || !al16(s->k) || !al16(s->v) || !al16(out) || !al16(dout) || !al16(dq) || !al16(dk) ||
      !al16(dv) || !al16(ws) || s->ldq % 8 || s->ldk % 8 || s->ldv % 8 || ldo % 8 || lddo % 8)
    return 0;
  const int T = s->T, nh = s->nh, nkv = s->nkv, hd = s->hd, gqa = nh != nkv;
  cd_key key;
  key_of(&key, s, 1, st->nondet, ldo, lddo);
  size_t extras = extras_bwd(T, nh, nkv, hd, s->ldq, key.nondet);
  /* The deterministic form's workspace grows with segments x length^2: a
   * pack that does not fit runs in chunks of bc segments (one plan, several
   * executions over disjoint segments; results do not depend on the chunk). */
  int bc = bucket(s->n_seg), nchunk = 1;
  if (!key.nondet) {
    size_t avail = ws_bytes > extras ? ws_bytes - extras : 0;
    if (det_ws(bc, key.s, nh) > avail) {
      size_t per = det_ws(1, key.s, nh);
      if (per > avail) {
        if (!st->warned_long)
          GRPO_WARN(
              "cuDNN SDPA backward: segments of up to %d tokens (%d heads) need %zu bytes of workspace, "
              "%zu given; such packs use the cuBLAS attention (logged once)",
              key.s, nh, per + extras, ws_bytes);
        st->warned_long = 1;
        return 0;
      }
      size_t fit = (avail - ((size_t)1 << 20)) / (per - ((size_t)1 << 20));
      bc = bucket_floor(fit < (size_t)s->n_seg ? (int)fit : s->n_seg);
      nchunk = (s->n_seg + bc - 1) / bc;
    }
  }
  key.b = bc;
  cd_plan *p = cd_plan_for(st, &key);
  if (!p) return 0;
  /* workspace: [cuDNN][Stats][Dsum][dK full][dV full][dK staged][dV staged][dQ acc] */
  size_t r = rows_pad(T), o = al((size_t)p->ws);
  if (!ws_fits(p, o + extras, ws_bytes)) return 0;
  char *w = (char *)ws;
  float *stats = (float *)(w + o);
  o += al(r * nh * sizeof(float));
  float *dsum = (float *)(w + o);
  o += al(r * nh * sizeof(float));
  void *dkf = NULL, *dvf = NULL, *dks = NULL, *dvs = NULL, *dqa = NULL;
  if (gqa) {
    dkf = w + o, o += al(r * nh * hd * sizeof(float));
    dvf = w + o, o += al(r * nh * hd * sizeof(float));
    dks = w + o, o += al((size_t)T * nkv * hd * sizeof(uint16_t));
    dvs = w + o, o += al((size_t)T * nkv * hd * sizeof(uint16_t));
  }
  if (key.nondet) dqa = w + o, o += al(r * (size_t)s->ldq * sizeof(float));
  cd_mults m;
  m.m[OFF_Q] = s->ldq, m.m[OFF_K] = s->ldk, m.m[OFF_V] = s->ldv, m.m[OFF_O] = ldo, m.m[OFF_DO] = lddo;
  m.m[OFF_STATS] = nh, m.m[OFF_DK] = m.m[OFF_DV] = (int64_t)nkv * hd;
  cd_chunks c;
  if (!cd_prep(I, st, s, bc, nchunk, &m, &c)) return 0;
  cd_lse_to_stats_k<<<cu_blocks((int64_t)nh * T, CU_THREADS), CU_THREADS, 0, I->stream>>>(stats, lse, T, nh);
  CU_LAUNCHED(I, "cudnn sdpa stats");
  if (dqa) CU_CHECK(I, cudaMemsetAsync(dqa, 0, r * (size_t)s->ldq * sizeof(float), I->stream));
  if (I->err_code) return 0;
  float scale = s->scale, ninf = cd_mask_fill(st->version), one = 1.0f;
  for (int j = 0; j < nchunk; j++) {
    int64_t uids[32];
    void *ptrs[32];
    int n = 0;
    VP(UID_Q, s->q), VP(UID_K, s->k), VP(UID_V, s->v), VP(UID_O, out), VP(UID_DO, dout), VP(UID_STATS, stats);
    VP(UID_DQ, dq), VP(UID_DK, gqa ? dks : dk), VP(UID_DV, gqa ? dvs : dv), VP(UID_DSUM, dsum);
    VP(UID_SEQ_Q, chunk_lens(&c, j)), VP(UID_SEQ_KV, chunk_lens(&c, j));
    VP(UID_SCALE, &scale), VP(UID_NEG_INF_PAD, &ninf), VP(UID_NEG_INF_CAUSAL, &ninf), VP(UID_ONE, &one);
    if (cd_second_padding(st->version)) VP(UID_NEG_INF_PAD2, &ninf);
    for (int k = OFF_Q; k <= OFF_STATS; k++) VP(UID_OFF + k, chunk_off(&c, j, k));
    if (gqa) {
      VP(UID_DK_FULL, dkf), VP(UID_DV_FULL, dvf);
      VP(UID_OFF + OFF_DK, chunk_off(&c, j, OFF_DK)), VP(UID_OFF + OFF_DV, chunk_off(&c, j, OFF_DV));
    }
    if (dqa) VP(UID_DQ_ACC, dqa);
    cudnnStatus_t rs = cd_execute(st, p, n, uids, ptrs, ws);
    if (rs != CUDNN_STATUS_SUCCESS) {
      cd_plan_failed(p, rs, "execute");
      return 0;
    }
    CU_LAUNCHED(I, "cudnn sdpa backward");
  }
#undef VP
  if (gqa) {
    size_t row = (size_t)nkv * hd * sizeof(uint16_t);
    CU_CHECK(I, cudaMemcpy2DAsync(dk, (size_t)s->ldk * sizeof(uint16_t), dks, row, row, (size_t)T,
                                  cudaMemcpyDeviceToDevice, I->stream));
    CU_CHECK(I, cudaMemcpy2DAsync(dv, (size_t)s->ldv * sizeof(uint16_t), dvs, row, row, (size_t)T,
                                  cudaMemcpyDeviceToDevice, I->stream));
  }
  st->served_bwd++;
  return 1;
}

void cu_cudnn_release(cuda_impl *I) {
  cd_state *st = (cd_state *)I->cudnn;
  if (!st) return;
  if (st->dbuf || st->nplans) cudaStreamSynchronize(I->stream);
  for (int i = 0; i < st->nplans; i++) plan_free(&st->plans[i]);
  free(st->plans);
  if (st->dbuf) cudaFree(st->dbuf);
  if (st->h) cudnnDestroy(st->h);
  cudaGetLastError();
  free(st);
  I->cudnn = NULL;
}

static int cd_available(cuda_impl *I, int *version) {
  cd_state *st = I->be.act_dtype == GRPO_BF16 ? cd_get(I) : NULL;
  if (version) *version = (int)cudnnGetVersion();
  return st && st->usable;
}

static void cd_stats(cuda_impl *I, long *plans, long *fwd, long *bwd) {
  cd_state *st = (cd_state *)I->cudnn;
  *plans = st ? st->plans_built : 0;
  *fwd = st ? st->served_fwd : 0;
  *bwd = st ? st->served_bwd : 0;
}

#else /* !GRPO_HAVE_CUDNN: every shape declines */

size_t cu_cudnn_attn_workspace(cuda_impl *I, int T, int nh, int nkv, int hd) {
  (void)I, (void)T, (void)nh, (void)nkv, (void)hd;
  return 0;
}
int cu_cudnn_attn_fwd(cuda_impl *I, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse, void *ws,
                      size_t ws_bytes) {
  (void)I, (void)s, (void)out, (void)ldo, (void)lse, (void)ws, (void)ws_bytes;
  return 0;
}
int cu_cudnn_attn_bwd(cuda_impl *I, const grpo_attn_shape *s, const void *out, int64_t ldo, const float *lse,
                      const void *dout, int64_t lddo, void *dq, void *dk, void *dv, void *ws,
                      size_t ws_bytes) {
  (void)I, (void)s, (void)out, (void)ldo, (void)lse, (void)dout, (void)lddo, (void)dq, (void)dk, (void)dv,
      (void)ws, (void)ws_bytes;
  return 0;
}
void cu_cudnn_release(cuda_impl *I) { (void)I; }
static int cd_available(cuda_impl *I, int *version) {
  (void)I;
  if (version) *version = 0;
  return 0;
}
static void cd_stats(cuda_impl *I, long *plans, long *fwd, long *bwd) {
  (void)I;
  *plans = *fwd = *bwd = 0;
}

#endif /* GRPO_HAVE_CUDNN */

/* ---- test entry points (declared in attn_cudnn.h) ------------------------------------------- */

static int is_cuda(grpo_backend *be) { return be && be->kind == GRPO_DEVICE_CUDA; }

extern "C" int grpo_cuda_cudnn_attn_available(grpo_backend *be, int *version) {
  if (version) *version = 0;
  if (!is_cuda(be)) return 0;
  return cd_available(cu_impl(be), version);
}

extern "C" size_t grpo_cuda_cudnn_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd) {
  if (!is_cuda(be)) return 0;
  return cu_cudnn_attn_workspace(cu_impl(be), T, nh, nkv, hd);
}

extern "C" int grpo_cuda_cudnn_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo,
                                        float *lse, void *ws, size_t ws_bytes) {
  if (!is_cuda(be)) return 0;
  return cu_cudnn_attn_fwd(cu_impl(be), s, out, ldo, lse, ws, ws_bytes);
}

extern "C" int grpo_cuda_cudnn_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out,
                                        int64_t ldo, const float *lse, const void *dout, int64_t lddo,
                                        void *dq, void *dk, void *dv, void *ws, size_t ws_bytes) {
  if (!is_cuda(be)) return 0;
  return cu_cudnn_attn_bwd(cu_impl(be), s, out, ldo, lse, dout, lddo, dq, dk, dv, ws, ws_bytes);
}

extern "C" void grpo_cuda_cudnn_attn_stats(grpo_backend *be, long *plans_built, long *served_fwd,
                                           long *served_bwd) {
  if (!is_cuda(be)) {
    *plans_built = *served_fwd = *served_bwd = 0;
    return;
  }
  cd_stats(cu_impl(be), plans_built, served_fwd, served_bwd);
}
