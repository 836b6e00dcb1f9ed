/* Private to the CUDA backend (core/cuda/backend_cuda*.cu). */
#ifndef GRPO_CORE_CUDA_INTERNAL_CUH
#define GRPO_CORE_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
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

typedef struct cuda_impl {
  grpo_backend be; /* the table handed out; be.impl points back here */
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;
  void *blas_ws;
  size_t blas_ws_bytes;
  int *dflag; /* device int: CU_FLAG_* bits */
  void *scratch;
  size_t scratch_bytes;
  size_t attn_budget;
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

/* Row-major f32 C_b = alpha op(A_b) op(B_b) + beta C_b through cuBLAS, with
 * A_b = A + b*sA, B_b = B + (b / b_group)*sB, C_b = C + b*sC; fp32 compute
 * (no TF32). k <= 0 scales C by beta like BLAS. */
void cu_gemm(cuda_impl *I, int ta, int tb, int m, int n, int k, float alpha, const float *A,
             int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB, int b_group,
             float beta, float *C, int64_t ldc, int64_t sC, int batch);

/* dst[idx[r]*ldd + c] += src[r*lds + c] for r < n, c < dim; deterministic:
 * rows sharing an index are summed in ascending r order (a bitonic sort of
 * (idx, r) in the scratch buffer). idx < 0 raises `flag` and is skipped. */
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
