/* Private to the CUDA backend (core/cuda/backend_cuda*.cu). */
#ifndef GRPO_CORE_CUDA_INTERNAL_CUH
#define GRPO_CORE_CUDA_INTERNAL_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/error.h" /* error.h has no C++ guard of its own */
}
#include "core/backend.h"
#include "core/cuda/backend_cuda.h"

/* In-kernel bounds violations, or-ed into the device flag; be->sync reports them. */
enum {
  CU_FLAG_EMBED_ID = 1,   /* embed_fwd / embed_bwd id < 0 */
  CU_FLAG_TARGET = 2,     /* classifier target outside [0, vocab) */
  CU_FLAG_ROWS = 4,       /* classifier rows[k] < 0 */
  CU_FLAG_CACHE = 8,      /* kv_write pos outside [0, tmax) or slot < 0 */
  CU_FLAG_DECODE_LEN = 16 /* attn_decode len outside [0, tmax] or slot < 0 */
};

/* One cached cuBLASLt matmul (bf16 operands): everything cublasLtMatmul
 * needs besides the pointers and scalars, keyed by the shape. Built on the
 * first call with a key; later calls allocate nothing. */
typedef struct cu_lt_key {
  int64_t ta, tb, m, n, k, lda, ldb, ldc, sA, sB, sC, batch;
  int32_t ab_type, c_type;          /* grpo_dtype of A/B and of C/D */
  int32_t align_a, align_b, align_c; /* pointer (and batch stride) alignment, bytes, <= 256 */
  int32_t pad_;
} cu_lt_key;

typedef struct cu_lt_plan {
  cu_lt_key key;
  int valid;    /* the descriptors below exist */
  int has_algo; /* 0: the heuristic offered none: cublasGemmEx serves the key */
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc; /* cuBLASLt's A (our B), B (our A), C = D */
  cublasLtMatmulAlgo_t algo;
} cu_lt_plan;

#define CU_LT_SLOTS 256 /* a power of two; a training step uses a few dozen keys */
#define CU_LT_PROBES 16 /* open addressing; past this the home slot is rebuilt */

typedef struct cuda_impl {
  grpo_backend be; /* the table handed out; be.impl points back here */
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;
  void *blas_ws;
  size_t blas_ws_bytes; /* shared by cuBLAS and cuBLASLt (one stream: never concurrent) */
  cublasLtHandle_t lt;
  cu_lt_plan *lt_plans; /* [CU_LT_SLOTS] */
  int *dflag; /* device int: CU_FLAG_* bits */
  void *scratch;
  size_t scratch_bytes;
  size_t attn_budget;
  void *cudnn; /* attn_cudnn.cu state (handle, cached plans); NULL until first use */
  /* the first deferred error (sticky: results after it are garbage) */
  int err_code;
  char err_msg[768];
  const char *err_file; /* __FILE__ of the check that failed */
  int err_line;
} cuda_impl;

static inline cuda_impl *cu_impl(grpo_backend *be) { return (cuda_impl *)be->impl; }

/* Records the first failure (later ones are dropped). */
void cu_fail(cuda_impl *I, int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define CU_CHECK(I, call)                                                                 \
  do {                                                                                    \
    cudaError_t e_ = (call);                                                              \
    if (e_ != cudaSuccess)                                                                \
      cu_fail((I), e_ == cudaErrorMemoryAllocation ? GRPO_ENOMEM : GRPO_EIO, __FILE__,    \
              __LINE__, "%s: %s", #call, cudaGetErrorString(e_));                         \
  } while (0)

/* After a kernel launch: launch-configuration errors surface here, faults
 * during execution at the next sync. */
#define CU_LAUNCHED(I, what)                                                              \
  do {                                                                                    \
    cudaError_t e_ = cudaGetLastError();                                                  \
    if (e_ != cudaSuccess)                                                                \
      cu_fail((I), GRPO_EIO, __FILE__, __LINE__, "kernel %s: %s", (what),                 \
              cudaGetErrorString(e_));                                                    \
  } while (0)

#define CUBLAS_CHECK(I, call)                                                             \
  do {                                                                                    \
    cublasStatus_t s_ = (call);                                                           \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                      \
      cu_fail((I), s_ == CUBLAS_STATUS_ALLOC_FAILED ? GRPO_ENOMEM : GRPO_EIO, __FILE__,   \
              __LINE__, "%s: %s", #call, cublasGetStatusString(s_));                      \
  } while (0)

/* The internal scratch buffer, grown to at least `bytes` (NULL after a
 * recorded failure). One op may hold it at a time; stream order keeps reuse
 * by the next op safe. */
void *cu_scratch(cuda_impl *I, size_t bytes);

/* Row-major C_b = alpha op(A_b) op(B_b) + beta C_b with A_b = A + b*sA,
 * B_b = B + (b / b_group)*sB, C_b = C + b*sC (elements), fp32 compute and
 * scalars. ab: type of A and B, c: type of C (= D).
 *  - F32 / F32: cublasGemmEx, no TF32 (the reference-matching path).
 *  - BF16 / BF16 or BF16 / F32: cublasLtMatmul with the plan cached per
 *    shape (cuda_impl.lt_plans) and the backend's workspace; a shape the
 *    heuristic has no algorithm for goes to cublasGemmEx (same types).
 * k <= 0 scales C by beta like BLAS. */
void cu_gemm_x(cuda_impl *I, grpo_dtype ab, grpo_dtype c, int ta, int tb, int m, int n, int k,
               float alpha, const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
               int64_t sB, int b_group, float beta, void *C, int64_t ldc, int64_t sC, int batch);

/* cu_gemm_x on f32 A, B, C. */
void cu_gemm(cuda_impl *I, int ta, int tb, int m, int n, int k, float alpha, const float *A,
             int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB, int b_group,
             float beta, float *C, int64_t ldc, int64_t sC, int batch);

/* dst[idx[r]*ldd + c] += src[r*lds + c] for r < n, c < dim, summed in f32 and
 * stored once in dst's type (dst_t, src_t: F32 or BF16); deterministic: rows
 * sharing an index are summed in ascending r order (a bitonic sort of
 * (idx, r) in the scratch buffer). idx < 0 raises `flag` and is skipped. */
void cu_scatter_add_rows_x(cuda_impl *I, void *dst, grpo_dtype dst_t, int64_t ldd, const void *src,
                           grpo_dtype src_t, int64_t lds, const int32_t *idx, int n, int dim,
                           int flag);
/* cu_scatter_add_rows_x on f32 dst and src. */
void cu_scatter_add_rows(cuda_impl *I, float *dst, int64_t ldd, const float *src, int64_t lds,
                         const int32_t *idx, int n, int dim, int flag);

/* ---- ops in the other translation units ----------------------------------- */
size_t cu_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd);
void cu_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                 void *ws, size_t ws_bytes);
void cu_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                 const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                 void *ws, size_t ws_bytes);
size_t cu_attn_decode_workspace(grpo_backend *be, int n, int nh, int tmax);
void cu_attn_decode(grpo_backend *be, void *out, const void *q, const void *kcache,
                    const void *vcache, const int32_t *slots, const int32_t *lens, int n, int nh,
                    int nkv, int hd, int tmax, float scale, void *ws, size_t ws_bytes);
void cu_kv_write(grpo_backend *be, void *cache, const void *src, int64_t lds,
                 const int32_t *slots, const int32_t *pos, int n, int width, int tmax);
size_t cu_classifier_workspace(grpo_backend *be, const grpo_classifier_shape *s);
void cu_classifier_fwd(grpo_backend *be, const grpo_classifier_shape *s, float *logprob,
                       float *entropy, float *lse, void *ws, size_t ws_bytes);
void cu_classifier_bwd(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                       const float *entropy, const float *dlogprob, const float *dentropy,
                       void *dh, int64_t lddh, float *dw, void *ws, size_t ws_bytes);

/* ---- element types ------------------------------------------------------------
 * Kernels are templates over the storage type T (float or __nv_bfloat16):
 * load to f32, compute in f32, store with round to nearest even (the
 * hardware cvt.rn, the same bits as grpo_f32_to_bf16 for every non-NaN). */
typedef __nv_bfloat16 cu_bf16;

static __device__ __forceinline__ float cu_ld(const float *p) { return *p; }
static __device__ __forceinline__ float cu_ld(const cu_bf16 *p) { return __bfloat162float(*p); }
static __device__ __forceinline__ void cu_st(float *p, float v) { *p = v; }
static __device__ __forceinline__ void cu_st(cu_bf16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* v rounded to T and back: what a store then a load gives */
template <typename T> struct cu_elem;
template <> struct cu_elem<float> {
  enum { narrow = 0 };
  static __device__ __forceinline__ float rt(float v) { return v; }
};
template <> struct cu_elem<cu_bf16> {
  enum { narrow = 1 };
  static __device__ __forceinline__ float rt(float v) {
    return __bfloat162float(__float2bfloat16_rn(v));
  }
};

/* Runs `...` with T the storage type of act dtype dt (F32 or BF16). */
#define CU_ACT_DISPATCH(dt, T, ...)                                                         \
  do {                                                                                    \
    if ((dt) == GRPO_BF16) {                                                              \
      typedef cu_bf16 T;                                                                  \
      __VA_ARGS__;                                                                        \
    } else {                                                                              \
      typedef float T;                                                                    \
      __VA_ARGS__;                                                                        \
    }                                                                                     \
  } while (0)

/* p advanced by n elements of es bytes */
static inline void *cu_off(const void *p, int64_t n, size_t es) {
  return (void *)((const char *)p + n * (int64_t)es);
}

/* ---- launch and reduction helpers ------------------------------------------ */
#define CU_THREADS 256

/* Blocks for a grid-stride loop over n items (at least 1, at most 2^20). */
static inline unsigned cu_blocks(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (1 << 20)) b = 1 << 20;
  return (unsigned)b;
}

static inline size_t cu_align256(size_t x) { return (x + 255) & ~(size_t)255; }

#define CU_GRID_LOOP(i, n)                                                                 \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);        \
       i += (int64_t)gridDim.x * blockDim.x)

static __device__ __forceinline__ float cu_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
static __device__ __forceinline__ double cu_warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
static __device__ __forceinline__ float cu_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Block-wide reductions (blockDim.x a multiple of 32, <= 1024; every thread
 * calls; sh holds 32 floats). Fixed order: deterministic. All threads get the
 * result. */
static __device__ __forceinline__ float cu_block_sum(float v, float *sh) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = cu_warp_sum(v);
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = (int)threadIdx.x < nw ? sh[threadIdx.x] : 0.0f;
  if (wid == 0) v = cu_warp_sum(v);
  if (threadIdx.x == 0) sh[0] = v;
  __syncthreads();
  v = sh[0];
  __syncthreads(); /* sh may be reused right after */
  return v;
}
static __device__ __forceinline__ float cu_block_max(float v, float *sh) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = cu_warp_max(v);
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = (int)threadIdx.x < nw ? sh[threadIdx.x] : -INFINITY;
  if (wid == 0) v = cu_warp_max(v);
  if (threadIdx.x == 0) sh[0] = v;
  __syncthreads();
  v = sh[0];
  __syncthreads();
  return v;
}

#endif
