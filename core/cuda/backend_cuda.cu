/* CUDA backend: the table, memory, errors, cuBLAS matmuls and the small
 * kernels (RMSNorm, RoPE, SwiGLU, embedding, bias, elementwise, AdamW, KV
 * cache). Attention lives in backend_cuda_attn.cu, the classifier in
 * backend_cuda_classifier.cu. f32 activations. */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/cuda_internal.cuh"
#include "core/cuda/device.h"
#include "core/ops_math.h"

/* ---- errors ------------------------------------------------------------------- */

void cu_fail(cuda_impl *I, int code, const char *file, int line, const char *fmt, ...) {
  if (I->err_code) return;
  I->err_code = code ? code : GRPO_EIO;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(I->err_msg, sizeof I->err_msg, fmt, ap);
  va_end(ap);
  I->err_file = file;
  I->err_line = line;
}

/* Copies the deferred error into err; returns its code. */
static int cu_report(cuda_impl *I, grpo_error *err) {
  if (!I->err_code) return GRPO_OK;
  return grpo_error_set(err, I->err_code, I->err_file, I->err_line, "cuda backend (device %d): %s", I->device,
                        I->err_msg);
}

/* ---- scratch --------------------------------------------------------------------- */

void *cu_scratch(cuda_impl *I, size_t bytes) {
  if (I->err_code) return NULL;
  if (bytes <= I->scratch_bytes) return I->scratch;
  size_t nb = cu_align256(bytes + bytes / 4);
  nb = (nb + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
  /* cudaFree waits for the device, so no queued kernel still uses the old buffer */
  CU_CHECK(I, cudaFree(I->scratch));
  I->scratch = NULL;
  I->scratch_bytes = 0;
  cudaError_t e = cudaMalloc(&I->scratch, nb);
  if (e != cudaSuccess) {
    cudaGetLastError();
    I->scratch = NULL;
    cu_fail(I, GRPO_ENOMEM, __FILE__, __LINE__, "internal scratch of %zu bytes: %s", nb,
            cudaGetErrorString(e));
    return NULL;
  }
  I->scratch_bytes = nb;
  return I->scratch;
}

/* ---- memory ----------------------------------------------------------------------- */

static int cu_alloc(grpo_backend *be, size_t bytes, void **out, grpo_error *err) {
  cuda_impl *I = cu_impl(be);
  *out = NULL;
  if (I->err_code) return cu_report(I, err);
  if (bytes == 0) return GRPO_OK;
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError(); /* an out-of-memory error is not sticky */
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    cudaGetLastError();
    return GRPO_FAIL(err, GRPO_ENOMEM,
                     "cuda backend (device %d): cannot allocate %zu bytes (%s; %zu of %zu bytes free)",
                     I->device, bytes, cudaGetErrorString(e), fr, tot);
  }
  *out = p;
  return GRPO_OK;
}

static void cu_free(grpo_backend *be, void *p) {
  if (!p) return;
  cuda_impl *I = cu_impl(be);
  CU_CHECK(I, cudaFree(p));
}

static int cu_copy_h2d(grpo_backend *be, void *dst, const void *src, size_t bytes, grpo_error *err) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code) return cu_report(I, err);
  if (!bytes) return GRPO_OK;
  /* synchronous for the caller: the host buffer may be reused on return */
  CU_CHECK(I, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, I->stream));
  CU_CHECK(I, cudaStreamSynchronize(I->stream));
  return cu_report(I, err);
}

static int cu_copy_d2h(grpo_backend *be, void *dst, const void *src, size_t bytes, grpo_error *err) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code) return cu_report(I, err);
  if (!bytes) return GRPO_OK;
  CU_CHECK(I, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, I->stream));
  CU_CHECK(I, cudaStreamSynchronize(I->stream));
  return cu_report(I, err);
}

static int cu_copy_d2d(grpo_backend *be, void *dst, const void *src, size_t bytes, grpo_error *err) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code) return cu_report(I, err);
  if (!bytes || dst == src) return GRPO_OK;
  CU_CHECK(I, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, I->stream));
  return cu_report(I, err);
}

static void cu_memset(grpo_backend *be, void *dst, int byte, size_t bytes) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || !bytes) return;
  CU_CHECK(I, cudaMemsetAsync(dst, byte, bytes, I->stream));
}

static int cu_sync(grpo_backend *be, grpo_error *err) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code) return cu_report(I, err);
  CU_CHECK(I, cudaStreamSynchronize(I->stream));
  if (!I->err_code) {
    int flag = 0;
    CU_CHECK(I, cudaMemcpy(&flag, I->dflag, sizeof flag, cudaMemcpyDeviceToHost));
    if (!I->err_code && flag) {
      char what[256] = "";
      if (flag & CU_FLAG_EMBED_ID) strcat(what, " embedding id < 0;");
      if (flag & CU_FLAG_TARGET) strcat(what, " classifier target outside [0, vocab);");
      if (flag & CU_FLAG_ROWS) strcat(what, " classifier row index < 0;");
      if (flag & CU_FLAG_CACHE) strcat(what, " kv_write slot < 0 or position outside [0, tmax);");
      if (flag & CU_FLAG_DECODE_LEN) strcat(what, " attn_decode slot < 0 or length outside [0, tmax];");
      cu_fail(I, GRPO_EINVAL, __FILE__, __LINE__,
              "index out of range in a kernel (the offending rows were skipped):%s", what);
    }
  }
  return cu_report(I, err);
}

/* ---- copy2d, convert ----------------------------------------------------------------- */

static __global__ void copy2d_k(float *dst, int64_t ldd, const float *src, int64_t lds, int rows,
                                int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    dst[r * ldd + c] = src[r * lds + c];
  }
}

static void cu_copy2d(grpo_backend *be, void *dst, int64_t ldd, const void *src, int64_t lds,
                      int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  int64_t n = (int64_t)rows * cols;
  copy2d_k<<<cu_blocks(n, CU_THREADS), CU_THREADS, 0, I->stream>>>((float *)dst, ldd,
                                                                  (const float *)src, lds, rows, cols);
  CU_LAUNCHED(I, "copy2d");
}

/* the dtype.h conversions (GRPO_HD): the same bits as the CPU backend */
static __global__ void cvt_f32_bf16_k(uint16_t *d, const float *s, size_t n) {
  CU_GRID_LOOP(i, n) d[i] = grpo_f32_to_bf16(s[i]);
}
static __global__ void cvt_bf16_f32_k(float *d, const uint16_t *s, size_t n) {
  CU_GRID_LOOP(i, n) d[i] = grpo_bf16_to_f32(s[i]);
}
static __global__ void cvt_f32_f16_k(uint16_t *d, const float *s, size_t n) {
  CU_GRID_LOOP(i, n) d[i] = grpo_f32_to_f16(s[i]);
}
static __global__ void cvt_f16_f32_k(float *d, const uint16_t *s, size_t n) {
  CU_GRID_LOOP(i, n) d[i] = grpo_f16_to_f32(s[i]);
}

static void cu_convert(grpo_backend *be, void *dst, grpo_dtype dst_t, const void *src,
                       grpo_dtype src_t, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  unsigned nb = cu_blocks((int64_t)n, CU_THREADS);
  if (dst_t == src_t) {
    if (dst != src)
      CU_CHECK(I, cudaMemcpyAsync(dst, src, n * grpo_dtype_size(src_t), cudaMemcpyDeviceToDevice,
                                  I->stream));
    return;
  } else if (src_t == GRPO_F32 && dst_t == GRPO_BF16) {
    cvt_f32_bf16_k<<<nb, CU_THREADS, 0, I->stream>>>((uint16_t *)dst, (const float *)src, n);
  } else if (src_t == GRPO_BF16 && dst_t == GRPO_F32) {
    cvt_bf16_f32_k<<<nb, CU_THREADS, 0, I->stream>>>((float *)dst, (const uint16_t *)src, n);
  } else if (src_t == GRPO_F32 && dst_t == GRPO_F16) {
    cvt_f32_f16_k<<<nb, CU_THREADS, 0, I->stream>>>((uint16_t *)dst, (const float *)src, n);
  } else if (src_t == GRPO_F16 && dst_t == GRPO_F32) {
    cvt_f16_f32_k<<<nb, CU_THREADS, 0, I->stream>>>((float *)dst, (const uint16_t *)src, n);
  } else {
    assert(!"cuda convert: unsupported dtype pair");
    return;
  }
  CU_LAUNCHED(I, "convert");
}

/* ---- matmul ---------------------------------------------------------------------------- */

static __global__ void beta_scale_k(float *C, int64_t ldc, int64_t sC, int m, int n, int batch,
                                    float beta) {
  int64_t per = (int64_t)m * n;
  CU_GRID_LOOP(i, per * batch) {
    int64_t b = i / per, r = (i % per) / n, c = i % n;
    float *p = C + b * sC + r * ldc + c;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

static void gemm_one(cuda_impl *I, int ta, int tb, int m, int n, int k, float alpha, const float *A,
                     int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB, float beta,
                     float *C, int64_t ldc, int64_t sC, int batch) {
  /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: a
   * row-major X with row stride ld is the column-major X^T with leading
   * dimension ld, so swap the operands and keep each one's transpose flag. */
  cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1) {
    CUBLAS_CHECK(I, cublasGemmEx(I->blas, opb, opa, n, m, k, &alpha, B, CUDA_R_32F, (int)ldb, A,
                                 CUDA_R_32F, (int)lda, &beta, C, CUDA_R_32F, (int)ldc,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    CUBLAS_CHECK(I, cublasGemmStridedBatchedEx(I->blas, opb, opa, n, m, k, &alpha, B, CUDA_R_32F,
                                               (int)ldb, (long long)sB, A, CUDA_R_32F, (int)lda,
                                               (long long)sA, &beta, C, CUDA_R_32F, (int)ldc,
                                               (long long)sC, batch, CUBLAS_COMPUTE_32F,
                                               CUBLAS_GEMM_DEFAULT));
  }
}

void cu_gemm(cuda_impl *I, int ta, int tb, int m, int n, int k, float alpha, const float *A,
             int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB, int b_group,
             float beta, float *C, int64_t ldc, int64_t sC, int batch) {
  assert(b_group >= 1);
  if (I->err_code || m <= 0 || n <= 0 || batch <= 0) return;
  if (k <= 0) {
    /* BLAS scales C by beta even with k = 0; cuBLAS is not relied on for it */
    int64_t tot = (int64_t)m * n * batch;
    beta_scale_k<<<cu_blocks(tot, CU_THREADS), CU_THREADS, 0, I->stream>>>(C, ldc, sC, m, n, batch,
                                                                           beta);
    CU_LAUNCHED(I, "gemm beta scale");
    return;
  }
  assert(lda > 0 && lda <= INT_MAX && ldb > 0 && ldb <= INT_MAX && ldc > 0 && ldc <= INT_MAX);
  if (b_group <= 1 || batch == 1) {
    gemm_one(I, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    return;
  }
  /* b = g*b_group + j shares B_g: one strided call per j */
  for (int j = 0; j < b_group && j < batch; j++) {
    int cnt = (batch - j + b_group - 1) / b_group;
    gemm_one(I, ta, tb, m, n, k, alpha, A + (int64_t)j * sA, lda, sA * b_group, B, ldb, sB, beta,
             C + (int64_t)j * sC, ldc, sC * b_group, cnt);
  }
}

static void cu_sgemm_op(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                        const void *A, int64_t lda, const void *B, int64_t ldb, float beta, void *C,
                        int64_t ldc) {
  cu_gemm(cu_impl(be), ta, tb, m, n, k, alpha, (const float *)A, lda, 0, (const float *)B, ldb, 0, 1,
          beta, (float *)C, ldc, 0, 1);
}

static void cu_sgemm_batched(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                             const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                             int64_t sB, int b_group, float beta, void *C, int64_t ldc, int64_t sC,
                             int batch) {
  cu_gemm(cu_impl(be), ta, tb, m, n, k, alpha, (const float *)A, lda, sA, (const float *)B, ldb, sB,
          b_group, beta, (float *)C, ldc, sC, batch);
}

/* ---- deterministic column sums --------------------------------------------------------
 * out[c] += sum over vectors v of term(v, c): stage 1 sums chunks of vectors per
 * column into part[p, c] (sequential within a chunk), stage 2 adds the chunk sums
 * in order. The chunking depends on the shape only. */

static int colsum_chunks(int64_t nv) {
  int64_t p = (nv + 31) / 32;
  if (p > 1024) p = 1024;
  if (p < 1) p = 1;
  return (int)p;
}

static __global__ void colsum_finish_k(float *out, const float *part, int P, int dim) {
  CU_GRID_LOOP(c, dim) {
    float acc = 0.0f;
    for (int p = 0; p < P; p++) acc += part[(int64_t)p * dim + c];
    out[c] += acc;
  }
}

/* term = dy * (x * rstd) (RMSNorm dw) */
static __global__ void rms_dw_part_k(float *part, const float *dy, int64_t lddy, const float *x,
                                     int64_t ldx, const float *rstd, int64_t nv, int heads, int dim,
                                     int64_t chunk) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  int p = blockIdx.y;
  if (c >= dim) return;
  int64_t v0 = (int64_t)p * chunk, v1 = v0 + chunk < nv ? v0 + chunk : nv;
  float acc = 0.0f;
  for (int64_t v = v0; v < v1; v++) {
    int64_t r = v / heads, h = v % heads;
    acc += dy[r * lddy + h * dim + c] * (x[r * ldx + h * dim + c] * rstd[v]);
  }
  part[(int64_t)p * dim + c] = acc;
}

/* term = dy[r, c] (bias grad) */
static __global__ void bias_part_k(float *part, const float *dy, int64_t lddy, int rows, int cols,
                                   int64_t chunk) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  int p = blockIdx.y;
  if (c >= cols) return;
  int64_t r0 = (int64_t)p * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; r++) acc += dy[r * lddy + c];
  part[(int64_t)p * cols + c] = acc;
}

/* ---- RMSNorm: one warp per vector ------------------------------------------------------------ */

#define WARPS_PER_BLOCK 8

static __global__ void rmsnorm_fwd_k(float *y, int64_t ldy, float *rstd, const float *x, int64_t ldx,
                                     const float *w, int64_t nv, int heads, int dim, float eps) {
  int64_t v = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (v >= nv) return; /* uniform per warp */
  int64_t r = v / heads, h = v % heads;
  const float *xv = x + r * ldx + h * dim;
  float *yv = y + r * ldy + h * dim;
  float ss = 0.0f;
  for (int c = lane; c < dim; c += 32) ss += xv[c] * xv[c];
  ss = cu_warp_sum(ss); /* every lane has read its x before any lane writes y (y may alias x) */
  float rs = 1.0f / sqrtf(ss / (float)dim + eps);
  if (lane == 0) rstd[v] = rs;
  for (int c = lane; c < dim; c += 32) yv[c] = grpo_rmsnorm_elem(xv[c], rs, w[c]);
}

static __global__ void rmsnorm_dx_k(float *dx, int64_t lddx, int accumulate, const float *dy,
                                    int64_t lddy, const float *x, int64_t ldx, const float *w,
                                    const float *rstd, int64_t nv, int heads, int dim) {
  int64_t v = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (v >= nv) return;
  int64_t r = v / heads, h = v % heads;
  const float *xv = x + r * ldx + h * dim, *dyv = dy + r * lddy + h * dim;
  float *dxv = dx + r * lddx + h * dim;
  float rs = rstd[v];
  float dot = 0.0f;
  for (int c = lane; c < dim; c += 32) dot += dyv[c] * w[c] * xv[c];
  dot = cu_warp_sum(dot); /* dx may alias dy: all reads of the dot are done */
  float k = dot * rs * rs * rs / (float)dim;
  if (accumulate) {
    for (int c = lane; c < dim; c += 32) dxv[c] += grpo_rmsnorm_dx_elem(dyv[c], xv[c], w[c], rs, k);
  } else {
    for (int c = lane; c < dim; c += 32) dxv[c] = grpo_rmsnorm_dx_elem(dyv[c], xv[c], w[c], rs, k);
  }
}

static void cu_rmsnorm_fwd(grpo_backend *be, void *y, int64_t ldy, float *rstd, const void *x,
                           int64_t ldx, const void *w, int rows, int heads, int dim, float eps) {
  cuda_impl *I = cu_impl(be);
  int64_t nv = (int64_t)rows * heads;
  if (I->err_code || nv <= 0 || dim <= 0) return;
  int64_t nb = (nv + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
  assert(nb <= INT_MAX);
  rmsnorm_fwd_k<<<(unsigned)nb, 32 * WARPS_PER_BLOCK, 0, I->stream>>>(
      (float *)y, ldy, rstd, (const float *)x, ldx, (const float *)w, nv, heads, dim, eps);
  CU_LAUNCHED(I, "rmsnorm_fwd");
}

static void cu_rmsnorm_bwd(grpo_backend *be, void *dx, int64_t lddx, int accumulate, float *dw,
                           const void *dy, int64_t lddy, const void *x, int64_t ldx, const void *w,
                           const float *rstd, int rows, int heads, int dim) {
  cuda_impl *I = cu_impl(be);
  int64_t nv = (int64_t)rows * heads;
  if (I->err_code || nv <= 0 || dim <= 0) return;
  /* dw first: dx may alias dy */
  int P = colsum_chunks(nv);
  int64_t chunk = (nv + P - 1) / P;
  float *part = (float *)cu_scratch(I, (size_t)P * dim * sizeof(float));
  if (!part) return;
  dim3 g1((unsigned)((dim + CU_THREADS - 1) / CU_THREADS), (unsigned)P);
  rms_dw_part_k<<<g1, CU_THREADS, 0, I->stream>>>(part, (const float *)dy, lddy, (const float *)x, ldx,
                                                  rstd, nv, heads, dim, chunk);
  CU_LAUNCHED(I, "rmsnorm_bwd dw");
  colsum_finish_k<<<cu_blocks(dim, CU_THREADS), CU_THREADS, 0, I->stream>>>(dw, part, P, dim);
  CU_LAUNCHED(I, "rmsnorm_bwd dw finish");
  int64_t nb = (nv + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
  assert(nb <= INT_MAX);
  rmsnorm_dx_k<<<(unsigned)nb, 32 * WARPS_PER_BLOCK, 0, I->stream>>>(
      (float *)dx, lddx, accumulate, (const float *)dy, lddy, (const float *)x, ldx,
      (const float *)w, rstd, nv, heads, dim);
  CU_LAUNCHED(I, "rmsnorm_bwd dx");
}

/* ---- RoPE: one thread per (row, pair j), looping over heads ----------------------------------- */

static __global__ void rope_k(float *x, int64_t ldx, int rows, int heads, int hd, const int32_t *pos,
                              const float *inv_freq, float sign) {
  int half = hd / 2;
  CU_GRID_LOOP(i, (int64_t)rows * half) {
    int64_t r = i / half;
    int j = (int)(i % half);
    float ang = (float)pos[r] * inv_freq[j];
    float c = cosf(ang), s = sign * sinf(ang);
    for (int h = 0; h < heads; h++) {
      float *xv = x + r * ldx + (int64_t)h * hd;
      grpo_rope_rotate(&xv[j], &xv[j + half], c, s);
    }
  }
}

static void rope_launch(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                        const int32_t *pos, const float *inv_freq, float sign) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || heads <= 0 || hd < 2) return;
  assert(hd % 2 == 0);
  int64_t n = (int64_t)rows * (hd / 2);
  rope_k<<<cu_blocks(n, CU_THREADS), CU_THREADS, 0, I->stream>>>((float *)x, ldx, rows, heads, hd, pos,
                                                                 inv_freq, sign);
  CU_LAUNCHED(I, "rope");
}

static void cu_rope_fwd(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                        const int32_t *pos, const float *inv_freq) {
  rope_launch(be, x, ldx, rows, heads, hd, pos, inv_freq, 1.0f);
}

static void cu_rope_bwd(grpo_backend *be, void *dx, int64_t lddx, int rows, int heads, int hd,
                        const int32_t *pos, const float *inv_freq) {
  rope_launch(be, dx, lddx, rows, heads, hd, pos, inv_freq, -1.0f);
}

/* ---- SwiGLU ------------------------------------------------------------------------------------ */

static __global__ void swiglu_fwd_k(float *o, int64_t ldo, const float *g, int64_t ldg, const float *u,
                                    int64_t ldu, int rows, int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    o[r * ldo + c] = grpo_swiglu_elem(g[r * ldg + c], u[r * ldu + c]);
  }
}

static __global__ void swiglu_bwd_k(float *dg, int64_t lddg, float *du, int64_t lddu, const float *d,
                                    int64_t lddo, const float *g, int64_t ldg, const float *u,
                                    int64_t ldu, int rows, int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    float dgv, duv; /* inputs read first: dg, du may alias g, u */
    grpo_swiglu_bwd_elem(d[r * lddo + c], g[r * ldg + c], u[r * ldu + c], &dgv, &duv);
    du[r * lddu + c] = duv;
    dg[r * lddg + c] = dgv;
  }
}

static void cu_swiglu_fwd(grpo_backend *be, void *out, int64_t ldo, const void *gate, int64_t ldg,
                          const void *up, int64_t ldu, int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  swiglu_fwd_k<<<cu_blocks((int64_t)rows * cols, CU_THREADS), CU_THREADS, 0, I->stream>>>(
      (float *)out, ldo, (const float *)gate, ldg, (const float *)up, ldu, rows, cols);
  CU_LAUNCHED(I, "swiglu_fwd");
}

static void cu_swiglu_bwd(grpo_backend *be, void *dgate, int64_t lddg, void *dup, int64_t lddu,
                          const void *dout, int64_t lddo, const void *gate, int64_t ldg,
                          const void *up, int64_t ldu, int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  swiglu_bwd_k<<<cu_blocks((int64_t)rows * cols, CU_THREADS), CU_THREADS, 0, I->stream>>>(
      (float *)dgate, lddg, (float *)dup, lddu, (const float *)dout, lddo, (const float *)gate, ldg,
      (const float *)up, ldu, rows, cols);
  CU_LAUNCHED(I, "swiglu_bwd");
}

/* ---- embedding ----------------------------------------------------------------------------------- */

static __global__ void embed_fwd_k(float *o, int64_t ldo, const float *table, const int32_t *ids,
                                   int rows, int dim, int *flag) {
  CU_GRID_LOOP(i, (int64_t)rows * dim) {
    int64_t r = i / dim, c = i % dim;
    int32_t id = ids[r];
    if (id < 0) {
      o[r * ldo + c] = 0.0f;
      if (c == 0) atomicOr(flag, CU_FLAG_EMBED_ID);
    } else {
      o[r * ldo + c] = table[(int64_t)id * dim + c];
    }
  }
}

static void cu_embed_fwd(grpo_backend *be, void *out, int64_t ldo, const void *table,
                         const int32_t *ids, int rows, int dim) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || dim <= 0) return;
  embed_fwd_k<<<cu_blocks((int64_t)rows * dim, CU_THREADS), CU_THREADS, 0, I->stream>>>(
      (float *)out, ldo, (const float *)table, ids, rows, dim, I->dflag);
  CU_LAUNCHED(I, "embed_fwd");
}

static void cu_embed_bwd(grpo_backend *be, float *dtable, const void *dout, int64_t lddo,
                         const int32_t *ids, int rows, int dim) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || dim <= 0) return;
  cu_scatter_add_rows(I, dtable, dim, (const float *)dout, lddo, ids, rows, dim, CU_FLAG_EMBED_ID);
}

/* ---- deterministic row scatter-add (embedding backward, classifier rows) ------------------------- */

#define SORT_SENTINEL 0xffffffffffffffffull

static __global__ void sort_keys_k(unsigned long long *keys, const int32_t *idx, int n, int64_t N,
                                   int *flag, int flag_bit) {
  CU_GRID_LOOP(i, N) {
    unsigned long long key = SORT_SENTINEL;
    if (i < n) {
      int32_t id = idx[i];
      if (id >= 0)
        key = ((unsigned long long)(uint32_t)id << 32) | (unsigned long long)(uint32_t)i;
      else
        atomicOr(flag, flag_bit);
    }
    keys[i] = key;
  }
}

/* One compare-exchange step of the bitonic network (N a power of two). */
static __global__ void bitonic_step_k(unsigned long long *a, int64_t N, int64_t j, int64_t k) {
  CU_GRID_LOOP(i, N) {
    int64_t l = i ^ j;
    if (l > i) {
      unsigned long long x = a[i], y = a[l];
      bool up = (i & k) == 0;
      if ((x > y) == up) {
        a[i] = y;
        a[l] = x;
      }
    }
  }
}

/* Block p handles the run of equal indices starting at sorted position p. */
static __global__ void seg_add_k(float *dst, int64_t ldd, const float *src, int64_t lds,
                                 const unsigned long long *keys, int n, int dim) {
  int64_t p = blockIdx.x;
  unsigned long long key = keys[p];
  if (key == SORT_SENTINEL) return;
  uint32_t id = (uint32_t)(key >> 32);
  if (p > 0 && (uint32_t)(keys[p - 1] >> 32) == id) return; /* not the first of its run */
  for (int64_t c = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; c < dim;
       c += (int64_t)gridDim.y * blockDim.x) {
    float *d = dst + (int64_t)id * ldd + c;
    float acc = *d;
    /* the sentinel's high word (0xffffffff) never equals a valid id (< 2^31) */
    for (int64_t q = p; q < n && (uint32_t)(keys[q] >> 32) == id; q++)
      acc += src[(int64_t)(uint32_t)(keys[q] & 0xffffffffu) * lds + c];
    *d = acc;
  }
}

void cu_scatter_add_rows(cuda_impl *I, float *dst, int64_t ldd, const float *src, int64_t lds,
                         const int32_t *idx, int n, int dim, int flag) {
  if (I->err_code || n <= 0 || dim <= 0) return;
  int64_t N = 1;
  while (N < n) N <<= 1;
  unsigned long long *keys = (unsigned long long *)cu_scratch(I, (size_t)N * sizeof(*keys));
  if (!keys) return;
  unsigned nb = cu_blocks(N, CU_THREADS);
  sort_keys_k<<<nb, CU_THREADS, 0, I->stream>>>(keys, idx, n, N, I->dflag, flag);
  CU_LAUNCHED(I, "scatter sort keys");
  for (int64_t k = 2; k <= N; k <<= 1)
    for (int64_t j = k >> 1; j > 0; j >>= 1) {
      bitonic_step_k<<<nb, CU_THREADS, 0, I->stream>>>(keys, N, j, k);
      CU_LAUNCHED(I, "scatter bitonic step");
    }
  int ty = (dim + CU_THREADS - 1) / CU_THREADS;
  if (ty > 65535) ty = 65535;
  dim3 grid((unsigned)n, (unsigned)ty);
  seg_add_k<<<grid, CU_THREADS, 0, I->stream>>>(dst, ldd, src, lds, keys, n, dim);
  CU_LAUNCHED(I, "scatter add");
}

/* ---- bias, residual, elementwise ------------------------------------------------------------------ */

static __global__ void bias_add_k(float *y, int64_t ldy, const float *b, int rows, int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    y[r * ldy + c] += b[c];
  }
}

static void cu_bias_add(grpo_backend *be, void *y, int64_t ldy, const void *b, int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  bias_add_k<<<cu_blocks((int64_t)rows * cols, CU_THREADS), CU_THREADS, 0, I->stream>>>(
      (float *)y, ldy, (const float *)b, rows, cols);
  CU_LAUNCHED(I, "bias_add");
}

static void cu_bias_grad(grpo_backend *be, float *db, const void *dy, int64_t lddy, int rows,
                         int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  int P = colsum_chunks(rows);
  int64_t chunk = (rows + P - 1) / P;
  float *part = (float *)cu_scratch(I, (size_t)P * cols * sizeof(float));
  if (!part) return;
  dim3 g1((unsigned)((cols + CU_THREADS - 1) / CU_THREADS), (unsigned)P);
  bias_part_k<<<g1, CU_THREADS, 0, I->stream>>>(part, (const float *)dy, lddy, rows, cols, chunk);
  CU_LAUNCHED(I, "bias_grad");
  colsum_finish_k<<<cu_blocks(cols, CU_THREADS), CU_THREADS, 0, I->stream>>>(db, part, P, cols);
  CU_LAUNCHED(I, "bias_grad finish");
}

static __global__ void add_k(float *y, const float *a, const float *b, size_t n) {
  CU_GRID_LOOP(i, n) y[i] = a[i] + b[i];
}
static __global__ void axpy_k(float *y, float alpha, const float *x, size_t n) {
  CU_GRID_LOOP(i, n) y[i] += alpha * x[i];
}
static __global__ void scale_k(float *x, float alpha, size_t n) {
  CU_GRID_LOOP(i, n) x[i] *= alpha;
}

static void cu_add(grpo_backend *be, void *y, const void *a, const void *b, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  add_k<<<cu_blocks((int64_t)n, CU_THREADS), CU_THREADS, 0, I->stream>>>((float *)y, (const float *)a,
                                                                         (const float *)b, n);
  CU_LAUNCHED(I, "add");
}

static void cu_axpy(grpo_backend *be, void *y, float alpha, const void *x, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  axpy_k<<<cu_blocks((int64_t)n, CU_THREADS), CU_THREADS, 0, I->stream>>>((float *)y, alpha,
                                                                          (const float *)x, n);
  CU_LAUNCHED(I, "axpy");
}

static void cu_scale(grpo_backend *be, float *x, float alpha, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  scale_k<<<cu_blocks((int64_t)n, CU_THREADS), CU_THREADS, 0, I->stream>>>(x, alpha, n);
  CU_LAUNCHED(I, "scale");
}

/* sum of squares in double: fixed grid, per-block partials, one ordered final sum */
#define SUMSQ_BLOCKS 1024

static __global__ void sumsq_part_k(double *part, const float *x, size_t n) {
  __shared__ double sh[32];
  double acc = 0.0;
  CU_GRID_LOOP(i, n) acc += (double)x[i] * x[i];
  acc = cu_warp_sum_d(acc);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  if (lane == 0) sh[wid] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += sh[w];
    part[blockIdx.x] = s;
  }
}

static __global__ void sumsq_finish_k(double *part, int nparts) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double s = 0.0;
    for (int p = 0; p < nparts; p++) s += part[p];
    part[0] = s;
  }
}

static double cu_sumsq(grpo_backend *be, const float *x, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code) return NAN;
  if (n == 0) return 0.0;
  unsigned nb = cu_blocks((int64_t)n, CU_THREADS * 4);
  if (nb > SUMSQ_BLOCKS) nb = SUMSQ_BLOCKS;
  double *part = (double *)cu_scratch(I, (size_t)nb * sizeof(double));
  if (!part) return NAN;
  sumsq_part_k<<<nb, CU_THREADS, 0, I->stream>>>(part, x, n);
  CU_LAUNCHED(I, "sumsq");
  sumsq_finish_k<<<1, 32, 0, I->stream>>>(part, (int)nb);
  CU_LAUNCHED(I, "sumsq finish");
  double s = NAN;
  CU_CHECK(I, cudaMemcpyAsync(&s, part, sizeof s, cudaMemcpyDeviceToHost, I->stream));
  CU_CHECK(I, cudaStreamSynchronize(I->stream));
  return I->err_code ? NAN : s; /* NaN makes a caller's norm check fail loudly */
}

/* ---- AdamW ------------------------------------------------------------------------------------------ */

static __global__ void adamw_k(float *p, const float *g, float *m, float *v, size_t n,
                               grpo_adamw_hparams hp) {
  CU_GRID_LOOP(i, n) {
    float pi = p[i], mi = m[i], vi = v[i];
    grpo_adamw_elem(&pi, g[i], &mi, &vi, &hp);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

static void cu_adamw(grpo_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                     const grpo_adamw_hparams *hp) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  adamw_k<<<cu_blocks((int64_t)n, CU_THREADS), CU_THREADS, 0, I->stream>>>(p, g, m, v, n, *hp);
  CU_LAUNCHED(I, "adamw");
}

/* ---- KV cache write ------------------------------------------------------------------------------------ */

static __global__ void kv_write_k(float *cache, const float *src, int64_t lds, const int32_t *slots,
                                  const int32_t *pos, int n, int width, int tmax, int *flag) {
  CU_GRID_LOOP(i, (int64_t)n * width) {
    int64_t r = i / width, c = i % width;
    int32_t sl = slots[r], ps = pos[r];
    if (sl < 0 || ps < 0 || ps >= tmax) {
      if (c == 0) atomicOr(flag, CU_FLAG_CACHE);
      continue;
    }
    cache[((int64_t)sl * tmax + ps) * width + c] = src[r * lds + c];
  }
}

void cu_kv_write(grpo_backend *be, void *cache, const void *src, int64_t lds, const int32_t *slots,
                 const int32_t *pos, int n, int width, int tmax) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n <= 0 || width <= 0) return;
  kv_write_k<<<cu_blocks((int64_t)n * width, CU_THREADS), CU_THREADS, 0, I->stream>>>(
      (float *)cache, (const float *)src, lds, slots, pos, n, width, tmax, I->dflag);
  CU_LAUNCHED(I, "kv_write");
}

/* ---- the table ------------------------------------------------------------------------------------------ */

extern "C" int grpo_backend_cuda_device_count(void) { return grpo_cuda_device_count(); }

extern "C" void grpo_backend_cuda_destroy(grpo_backend *be) {
  if (!be) return;
  cuda_impl *I = cu_impl(be);
  int prev = 0;
  if (cudaGetDevice(&prev) == cudaSuccess && prev != I->device) cudaSetDevice(I->device);
  if (I->stream) cudaStreamSynchronize(I->stream);
  if (I->blas) cublasDestroy(I->blas);
  cudaFree(I->blas_ws);
  cudaFree(I->dflag);
  cudaFree(I->scratch);
  if (I->stream) cudaStreamDestroy(I->stream);
  cudaGetLastError();
  free(I);
}

extern "C" int grpo_backend_cuda_create(const grpo_cuda_options *opt, grpo_backend **out,
                                        grpo_error *err) {
  *out = NULL;
  grpo_cuda_options o;
  memset(&o, 0, sizeof o);
  o.act_dtype = GRPO_F32;
  if (opt) o = *opt;
  if (o.act_dtype != GRPO_F32)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "cuda backend: act_dtype %s is not implemented yet (F32 only)",
                     grpo_dtype_name(o.act_dtype));
  int ndev = grpo_cuda_device_count();
  if (ndev == 0) return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "cuda backend: no CUDA device is visible");
  if (o.device < 0 || o.device >= ndev)
    return GRPO_FAIL(err, GRPO_EINVAL, "cuda backend: device %d does not exist (%d visible)", o.device,
                     ndev);
  cuda_impl *I = (cuda_impl *)calloc(1, sizeof *I);
  if (!I) return GRPO_FAIL(err, GRPO_ENOMEM, "cuda backend: out of host memory");
  I->device = o.device;
  I->attn_budget = o.attn_budget_bytes ? o.attn_budget_bytes : ((size_t)1 << 30);
  I->blas_ws_bytes = (size_t)32 << 20; /* cuBLAS's recommendation for Hopper */
  I->be.impl = I;
  CU_CHECK(I, cudaSetDevice(o.device));
  if (!I->err_code) CU_CHECK(I, cudaStreamCreateWithFlags(&I->stream, cudaStreamNonBlocking));
  if (!I->err_code) CUBLAS_CHECK(I, cublasCreate(&I->blas));
  if (!I->err_code) CUBLAS_CHECK(I, cublasSetStream(I->blas, I->stream));
  /* our own workspace: deterministic results on this stream, no hidden allocation */
  if (!I->err_code) CU_CHECK(I, cudaMalloc(&I->blas_ws, I->blas_ws_bytes));
  if (!I->err_code) CUBLAS_CHECK(I, cublasSetWorkspace(I->blas, I->blas_ws, I->blas_ws_bytes));
  if (!I->err_code) CUBLAS_CHECK(I, cublasSetMathMode(I->blas, CUBLAS_DEFAULT_MATH)); /* f32: no TF32 */
  if (!I->err_code) CU_CHECK(I, cudaMalloc(&I->dflag, sizeof(int)));
  if (!I->err_code) CU_CHECK(I, cudaMemset(I->dflag, 0, sizeof(int)));
  if (!I->err_code) cu_scratch(I, (size_t)16 << 20);
  if (!I->err_code) CU_CHECK(I, cudaDeviceSynchronize());
  if (I->err_code) {
    int rc = cu_report(I, err);
    grpo_backend_cuda_destroy(&I->be);
    return rc;
  }
  grpo_backend *be = &I->be;
  be->name = "cuda";
  be->kind = GRPO_DEVICE_CUDA;
  be->act_dtype = GRPO_F32;
  be->alloc = cu_alloc;
  be->free = cu_free;
  be->copy_h2d = cu_copy_h2d;
  be->copy_d2h = cu_copy_d2h;
  be->copy_d2d = cu_copy_d2d;
  be->memset = cu_memset;
  be->sync = cu_sync;
  be->copy2d = cu_copy2d;
  be->convert = cu_convert;
  be->sgemm = cu_sgemm_op;
  be->sgemm_batched = cu_sgemm_batched;
  be->rmsnorm_fwd = cu_rmsnorm_fwd;
  be->rmsnorm_bwd = cu_rmsnorm_bwd;
  be->rope_fwd = cu_rope_fwd;
  be->rope_bwd = cu_rope_bwd;
  be->attn_workspace = cu_attn_workspace;
  be->attn_fwd = cu_attn_fwd;
  be->attn_bwd = cu_attn_bwd;
  be->attn_decode_workspace = cu_attn_decode_workspace;
  be->attn_decode = cu_attn_decode;
  be->kv_write = cu_kv_write;
  be->swiglu_fwd = cu_swiglu_fwd;
  be->swiglu_bwd = cu_swiglu_bwd;
  be->embed_fwd = cu_embed_fwd;
  be->embed_bwd = cu_embed_bwd;
  be->bias_add = cu_bias_add;
  be->bias_grad = cu_bias_grad;
  be->add = cu_add;
  be->axpy = cu_axpy;
  be->scale = cu_scale;
  be->sumsq = cu_sumsq;
  be->classifier_workspace = cu_classifier_workspace;
  be->classifier_fwd = cu_classifier_fwd;
  be->classifier_bwd = cu_classifier_bwd;
  be->adamw = cu_adamw;
  *out = be;
  return GRPO_OK;
}
