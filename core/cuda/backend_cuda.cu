/* CUDA backend: the table, memory, errors, matmuls (cuBLAS for f32, cached
 * cuBLASLt plans for bf16) and the small kernels (RMSNorm, RoPE, SwiGLU,
 * embedding, bias, elementwise, AdamW, KV cache), each a template over the
 * activation storage type (float or __nv_bfloat16). Attention lives in
 * backend_cuda_attn.cu, the classifier in backend_cuda_classifier.cu. */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/attn_cudnn.h"
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

template <typename T>
static __global__ void copy2d_k(T *dst, int64_t ldd, const T *src, int64_t lds, int rows, int cols) {
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
  CU_ACT_DISPATCH(be->act_dtype, T,
                  copy2d_k<T><<<cu_blocks(n, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                      (T *)dst, ldd, (const T *)src, lds, rows, cols));
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

template <typename T>
static __global__ void beta_scale_k(T *C, int64_t ldc, int64_t sC, int m, int n, int batch,
                                    float beta) {
  int64_t per = (int64_t)m * n;
  CU_GRID_LOOP(i, per * batch) {
    int64_t b = i / per, r = (i % per) / n, c = i % n;
    T *p = C + b * sC + r * ldc + c;
    cu_st(p, beta == 0.0f ? 0.0f : beta * cu_ld(p));
  }
}

static cudaDataType_t cu_cuda_type(grpo_dtype t) {
  return t == GRPO_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* cublasGemmEx / cublasGemmStridedBatchedEx, fp32 compute. */
static void gemm_ex(cuda_impl *I, grpo_dtype ab, grpo_dtype c, int ta, int tb, int m, int n, int k,
                    float alpha, const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                    int64_t sB, float beta, void *C, int64_t ldc, int64_t sC, int batch) {
  /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: a
   * row-major X with row stride ld is the column-major X^T with leading
   * dimension ld, so swap the operands and keep each one's transpose flag. */
  cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  cudaDataType_t tab = cu_cuda_type(ab), tc = cu_cuda_type(c);
  if (batch == 1) {
    CUBLAS_CHECK(I, cublasGemmEx(I->blas, opb, opa, n, m, k, &alpha, B, tab, (int)ldb, A, tab,
                                 (int)lda, &beta, C, tc, (int)ldc, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
  } else {
    CUBLAS_CHECK(I, cublasGemmStridedBatchedEx(I->blas, opb, opa, n, m, k, &alpha, B, tab, (int)ldb,
                                               (long long)sB, A, tab, (int)lda, (long long)sA,
                                               &beta, C, tc, (int)ldc, (long long)sC, batch,
                                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}

/* ---- cuBLASLt plans (bf16 operands) ---------------------------------------------------------
 * A plan is the matmul descriptor, the three layouts and the heuristic's
 * algorithm for one key; the table is open-addressed with short probes, and
 * a key that finds no free slot rebuilds its home slot (descriptors are host
 * objects: work already queued with them is unaffected). */

/* the largest power of two dividing x, at most 256 (x = 0: 256) */
static int32_t lt_align(uint64_t x) {
  uint64_t a = x & (~x + 1);
  return a == 0 || a > 256 ? 256 : (int32_t)a;
}

static uint64_t lt_hash(const cu_lt_key *k) {
  const unsigned char *p = (const unsigned char *)k;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static void lt_plan_release(cu_lt_plan *e) {
  if (e->la) cublasLtMatrixLayoutDestroy(e->la);
  if (e->lb) cublasLtMatrixLayoutDestroy(e->lb);
  if (e->lc) cublasLtMatrixLayoutDestroy(e->lc);
  if (e->op) cublasLtMatmulDescDestroy(e->op);
  memset(e, 0, sizeof *e);
}

static void lt_layout(cuda_impl *I, cublasLtMatrixLayout_t *l, grpo_dtype t, int64_t rows,
                      int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t x = NULL;
  CUBLAS_CHECK(I, cublasLtMatrixLayoutCreate(&x, cu_cuda_type(t), (uint64_t)rows, (uint64_t)cols, ld));
  if (I->err_code) return;
  *l = x;
  if (batch > 1) {
    int32_t bc = (int32_t)batch;
    CUBLAS_CHECK(I, cublasLtMatrixLayoutSetAttribute(x, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc,
                                                     sizeof bc));
    CUBLAS_CHECK(I, cublasLtMatrixLayoutSetAttribute(x, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                     &stride, sizeof stride));
  }
}

static void lt_pref_u32(cuda_impl *I, cublasLtMatmulPreference_t p,
                        cublasLtMatmulPreferenceAttributes_t a, int32_t v) {
  uint32_t u = (uint32_t)v;
  CUBLAS_CHECK(I, cublasLtMatmulPreferenceSetAttribute(p, a, &u, sizeof u));
}

/* Builds e for key k; 0 after a recorded failure (e left empty). */
static int lt_build(cuda_impl *I, cu_lt_plan *e, const cu_lt_key *k) {
  memset(e, 0, sizeof *e);
  e->key = *k;
  CUBLAS_CHECK(I, cublasLtMatmulDescCreate(&e->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  if (I->err_code) {
    e->op = NULL;
    return 0;
  }
  /* column-major view (see gemm_ex): cuBLASLt's A is our B, its B our A */
  cublasOperation_t opa = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(I, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  CUBLAS_CHECK(I, cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  grpo_dtype ab = (grpo_dtype)k->ab_type, c = (grpo_dtype)k->c_type;
  lt_layout(I, &e->la, ab, k->tb ? k->k : k->n, k->tb ? k->n : k->k, k->ldb, k->batch, k->sB);
  lt_layout(I, &e->lb, ab, k->ta ? k->m : k->k, k->ta ? k->k : k->m, k->lda, k->batch, k->sA);
  lt_layout(I, &e->lc, c, k->n, k->m, k->ldc, k->batch, k->sC);
  cublasLtMatmulPreference_t pref = NULL;
  if (!I->err_code) CUBLAS_CHECK(I, cublasLtMatmulPreferenceCreate(&pref));
  if (I->err_code) {
    lt_plan_release(e);
    return 0;
  }
  uint64_t wsb = I->blas_ws_bytes;
  CUBLAS_CHECK(I, cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &wsb, sizeof wsb));
  /* the real alignments: the default (256) would admit kernels that fault on
   * slices such as one head of a fused QKV row */
  lt_pref_u32(I, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, k->align_b);
  lt_pref_u32(I, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, k->align_a);
  lt_pref_u32(I, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k->align_c);
  lt_pref_u32(I, pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k->align_c);
  if (!I->err_code) {
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof res);
    int nres = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(I->lt, e->op, e->la, e->lb, e->lc, e->lc,
                                                       pref, 1, &res, &nres);
    /* none (CUBLAS_STATUS_NOT_SUPPORTED): cublasGemmEx serves the key */
    if (st == CUBLAS_STATUS_SUCCESS && nres > 0 && res.state == CUBLAS_STATUS_SUCCESS) {
      e->algo = res.algo;
      e->has_algo = 1;
    }
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (I->err_code) {
    lt_plan_release(e);
    return 0;
  }
  e->valid = 1;
  return 1;
}

static cu_lt_plan *lt_plan(cuda_impl *I, const cu_lt_key *k) {
  unsigned home = (unsigned)(lt_hash(k) & (CU_LT_SLOTS - 1));
  for (int p = 0; p < CU_LT_PROBES; p++) {
    cu_lt_plan *e = &I->lt_plans[(home + p) & (CU_LT_SLOTS - 1)];
    if (!e->valid) return lt_build(I, e, k) ? e : NULL;
    if (memcmp(&e->key, k, sizeof *k) == 0) return e;
  }
  cu_lt_plan *e = &I->lt_plans[home];
  lt_plan_release(e);
  return lt_build(I, e, k) ? e : NULL;
}

static void gemm_lt(cuda_impl *I, grpo_dtype ab, grpo_dtype c, int ta, int tb, int m, int n, int k,
                    float alpha, const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                    int64_t sB, float beta, void *C, int64_t ldc, int64_t sC, int batch) {
  cu_lt_key key;
  memset(&key, 0, sizeof key); /* padding included: keys are compared and hashed as bytes */
  uint64_t es = grpo_dtype_size(ab), cs = grpo_dtype_size(c);
  key.ta = ta, key.tb = tb, key.m = m, key.n = n, key.k = k;
  key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.batch = batch;
  key.ab_type = ab, key.c_type = c;
  uint64_t xa = (uintptr_t)A, xb = (uintptr_t)B, xc = (uintptr_t)C;
  if (batch > 1) { /* every batch's pointer must meet the alignment */
    key.sA = sA, key.sB = sB, key.sC = sC;
    xa |= (uint64_t)sA * es, xb |= (uint64_t)sB * es, xc |= (uint64_t)sC * cs;
  }
  key.align_a = lt_align(xa), key.align_b = lt_align(xb), key.align_c = lt_align(xc);
  cu_lt_plan *e = lt_plan(I, &key);
  if (!e) return;
  if (!e->has_algo) {
    gemm_ex(I, ab, c, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    return;
  }
  CUBLAS_CHECK(I, cublasLtMatmul(I->lt, e->op, &alpha, B, e->la, A, e->lb, &beta, C, e->lc, C, e->lc,
                                 &e->algo, I->blas_ws, I->blas_ws_bytes, I->stream));
}

static void gemm_one(cuda_impl *I, grpo_dtype ab, grpo_dtype c, int ta, int tb, int m, int n, int k,
                     float alpha, const void *A, int64_t lda, int64_t sA, const void *B,
                     int64_t ldb, int64_t sB, float beta, void *C, int64_t ldc, int64_t sC,
                     int batch) {
  if (ab == GRPO_F32)
    gemm_ex(I, ab, c, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
  else
    gemm_lt(I, ab, c, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
}

void cu_gemm_x(cuda_impl *I, grpo_dtype ab, grpo_dtype c, int ta, int tb, int m, int n, int k,
               float alpha, const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
               int64_t sB, int b_group, float beta, void *C, int64_t ldc, int64_t sC, int batch) {
  assert(b_group >= 1);
  assert(ab == GRPO_F32 ? c == GRPO_F32 : (ab == GRPO_BF16 && (c == GRPO_BF16 || c == GRPO_F32)));
  if (I->err_code || m <= 0 || n <= 0 || batch <= 0) return;
  if (k <= 0) {
    /* BLAS scales C by beta even with k = 0; cuBLAS is not relied on for it */
    int64_t tot = (int64_t)m * n * batch;
    CU_ACT_DISPATCH(c, T,
                    beta_scale_k<T><<<cu_blocks(tot, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                        (T *)C, ldc, sC, m, n, batch, beta));
    CU_LAUNCHED(I, "gemm beta scale");
    return;
  }
  assert(lda > 0 && lda <= INT_MAX && ldb > 0 && ldb <= INT_MAX && ldc > 0 && ldc <= INT_MAX);
  if (b_group <= 1 || batch == 1) {
    gemm_one(I, ab, c, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
    return;
  }
  /* b = g*b_group + j shares B_g: one strided call per j */
  size_t es = grpo_dtype_size(ab), cs = grpo_dtype_size(c);
  for (int j = 0; j < b_group && j < batch; j++) {
    int cnt = (batch - j + b_group - 1) / b_group;
    gemm_one(I, ab, c, ta, tb, m, n, k, alpha, cu_off(A, (int64_t)j * sA, es), lda, sA * b_group, B,
             ldb, sB, beta, cu_off(C, (int64_t)j * sC, cs), ldc, sC * b_group, cnt);
  }
}

void cu_gemm(cuda_impl *I, int ta, int tb, int m, int n, int k, float alpha, const float *A,
             int64_t lda, int64_t sA, const float *B, int64_t ldb, int64_t sB, int b_group,
             float beta, float *C, int64_t ldc, int64_t sC, int batch) {
  cu_gemm_x(I, GRPO_F32, GRPO_F32, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, b_group, beta, C,
            ldc, sC, batch);
}

static void cu_sgemm_op(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                        const void *A, int64_t lda, const void *B, int64_t ldb, float beta, void *C,
                        int64_t ldc) {
  grpo_dtype t = be->act_dtype;
  cu_gemm_x(cu_impl(be), t, t, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, 1, beta, C, ldc, 0, 1);
}

static void cu_sgemm_batched(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                             const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                             int64_t sB, int b_group, float beta, void *C, int64_t ldc, int64_t sC,
                             int batch) {
  grpo_dtype t = be->act_dtype;
  cu_gemm_x(cu_impl(be), t, t, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, b_group, beta, C, ldc,
            sC, batch);
}

/* f32 C += alpha op(A) op(B): A, B in the act type, fp32 accumulation and output */
static void cu_gemm_wgrad(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                          const void *A, int64_t lda, const void *B, int64_t ldb, float *C,
                          int64_t ldc) {
  cu_gemm_x(cu_impl(be), be->act_dtype, GRPO_F32, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, 1,
            1.0f, C, ldc, 0, 1);
}

/* ---- deterministic column sums --------------------------------------------------------
 * out[c] += sum over vectors v of term(v, c): stage 1 sums chunks of vectors per
 * column into part[p, c] (sequential within a chunk, f32), stage 2 adds the
 * chunk sums in order. The chunking depends on the shape only. */

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
template <typename T>
static __global__ void rms_dw_part_k(float *part, const T *dy, int64_t lddy, const T *x, int64_t ldx,
                                     const float *rstd, int64_t nv, int heads, int dim,
                                     int64_t chunk) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  int p = blockIdx.y;
  if (c >= dim) return;
  int64_t v0 = (int64_t)p * chunk, v1 = v0 + chunk < nv ? v0 + chunk : nv;
  float acc = 0.0f;
  for (int64_t v = v0; v < v1; v++) {
    int64_t r = v / heads, h = v % heads;
    acc += cu_ld(dy + r * lddy + h * dim + c) * (cu_ld(x + r * ldx + h * dim + c) * rstd[v]);
  }
  part[(int64_t)p * dim + c] = acc;
}

/* term = dy[r, c] (bias grad) */
template <typename T>
static __global__ void bias_part_k(float *part, const T *dy, int64_t lddy, int rows, int cols,
                                   int64_t chunk) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  int p = blockIdx.y;
  if (c >= cols) return;
  int64_t r0 = (int64_t)p * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; r++) acc += cu_ld(dy + r * lddy + c);
  part[(int64_t)p * cols + c] = acc;
}

/* ---- RMSNorm: one warp per vector ------------------------------------------------------------ */

#define WARPS_PER_BLOCK 8

/* y element. bf16 keeps HF's cast point: the normalised x is rounded to bf16
 * before the weight multiplies it (the product is rounded by the store). */
static __device__ __forceinline__ float rms_y(float x, float rs, float w, const float *) {
  return grpo_rmsnorm_elem(x, rs, w);
}
static __device__ __forceinline__ float rms_y(float x, float rs, float w, const cu_bf16 *) {
  return cu_elem<cu_bf16>::rt(x * rs) * w;
}

template <typename T>
static __global__ void rmsnorm_fwd_k(T *y, int64_t ldy, float *rstd, const T *x, int64_t ldx,
                                     const T *w, int64_t nv, int heads, int dim, float eps) {
  int64_t v = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (v >= nv) return; /* uniform per warp */
  int64_t r = v / heads, h = v % heads;
  const T *xv = x + r * ldx + h * dim;
  T *yv = y + r * ldy + h * dim;
  float ss = 0.0f;
  for (int c = lane; c < dim; c += 32) {
    float xc = cu_ld(xv + c);
    ss += xc * xc;
  }
  ss = cu_warp_sum(ss); /* every lane has read its x before any lane writes y (y may alias x) */
  float rs = 1.0f / sqrtf(ss / (float)dim + eps);
  if (lane == 0) rstd[v] = rs;
  for (int c = lane; c < dim; c += 32)
    cu_st(yv + c, rms_y(cu_ld(xv + c), rs, cu_ld(w + c), (const T *)NULL));
}

template <typename T>
static __global__ void rmsnorm_dx_k(T *dx, int64_t lddx, int accumulate, const T *dy, int64_t lddy,
                                    const T *x, int64_t ldx, const T *w, const float *rstd,
                                    int64_t nv, int heads, int dim) {
  int64_t v = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (v >= nv) return;
  int64_t r = v / heads, h = v % heads;
  const T *xv = x + r * ldx + h * dim, *dyv = dy + r * lddy + h * dim;
  T *dxv = dx + r * lddx + h * dim;
  float rs = rstd[v];
  float dot = 0.0f;
  for (int c = lane; c < dim; c += 32) dot += cu_ld(dyv + c) * cu_ld(w + c) * cu_ld(xv + c);
  dot = cu_warp_sum(dot); /* dx may alias dy: all reads of the dot are done */
  float k = dot * rs * rs * rs / (float)dim;
  if (accumulate) {
    for (int c = lane; c < dim; c += 32)
      cu_st(dxv + c, cu_ld(dxv + c) + grpo_rmsnorm_dx_elem(cu_ld(dyv + c), cu_ld(xv + c),
                                                             cu_ld(w + c), rs, k));
  } else {
    for (int c = lane; c < dim; c += 32)
      cu_st(dxv + c, grpo_rmsnorm_dx_elem(cu_ld(dyv + c), cu_ld(xv + c), cu_ld(w + c), rs, k));
  }
}

static void cu_rmsnorm_fwd(grpo_backend *be, void *y, int64_t ldy, float *rstd, const void *x,
                           int64_t ldx, const void *w, int rows, int heads, int dim, float eps) {
  cuda_impl *I = cu_impl(be);
  int64_t nv = (int64_t)rows * heads;
  if (I->err_code || nv <= 0 || dim <= 0) return;
  int64_t nb = (nv + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
  assert(nb <= INT_MAX);
  CU_ACT_DISPATCH(be->act_dtype, T,
                  rmsnorm_fwd_k<T><<<(unsigned)nb, 32 * WARPS_PER_BLOCK, 0, I->stream>>>(
                      (T *)y, ldy, rstd, (const T *)x, ldx, (const T *)w, nv, heads, dim, eps));
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
  CU_ACT_DISPATCH(be->act_dtype, T,
                  rms_dw_part_k<T><<<g1, CU_THREADS, 0, I->stream>>>(
                      part, (const T *)dy, lddy, (const T *)x, ldx, rstd, nv, heads, dim, chunk));
  CU_LAUNCHED(I, "rmsnorm_bwd dw");
  colsum_finish_k<<<cu_blocks(dim, CU_THREADS), CU_THREADS, 0, I->stream>>>(dw, part, P, dim);
  CU_LAUNCHED(I, "rmsnorm_bwd dw finish");
  int64_t nb = (nv + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
  assert(nb <= INT_MAX);
  CU_ACT_DISPATCH(be->act_dtype, T,
                  rmsnorm_dx_k<T><<<(unsigned)nb, 32 * WARPS_PER_BLOCK, 0, I->stream>>>(
                      (T *)dx, lddx, accumulate, (const T *)dy, lddy, (const T *)x, ldx,
                      (const T *)w, rstd, nv, heads, dim));
  CU_LAUNCHED(I, "rmsnorm_bwd dx");
}

/* ---- RoPE: one thread per (row, pair j), looping over heads ----------------------------------- */

static __device__ __forceinline__ void rope_pair(float *a, float *b, float c, float s,
                                                 const float *) {
  grpo_rope_rotate(a, b, c, s);
}
/* bf16 as HF: q * cos + rotate_half(q) * sin with each product rounded to
 * bf16 (the sum is rounded by the store); the backward's inverse rotation is
 * autograd's, the same with -sin. */
static __device__ __forceinline__ void rope_pair(float *a, float *b, float c, float s,
                                                 const cu_bf16 *) {
  typedef cu_elem<cu_bf16> E;
  float x = *a, y = *b;
  *a = E::rt(x * c) - E::rt(y * s);
  *b = E::rt(y * c) + E::rt(x * s);
}

template <typename T>
static __global__ void rope_k(T *x, int64_t ldx, int rows, int heads, int hd, const int32_t *pos,
                              const float *inv_freq, float sign) {
  int half = hd / 2;
  CU_GRID_LOOP(i, (int64_t)rows * half) {
    int64_t r = i / half;
    int j = (int)(i % half);
    float ang = (float)pos[r] * inv_freq[j];
    /* angles in f32; cos and sin cast to the activation type (HF) */
    float c = cu_elem<T>::rt(cosf(ang)), s = sign * cu_elem<T>::rt(sinf(ang));
    for (int h = 0; h < heads; h++) {
      T *xv = x + r * ldx + (int64_t)h * hd;
      float a = cu_ld(xv + j), b = cu_ld(xv + j + half);
      rope_pair(&a, &b, c, s, (const T *)NULL);
      cu_st(xv + j, a);
      cu_st(xv + j + half, b);
    }
  }
}

static void rope_launch(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                        const int32_t *pos, const float *inv_freq, float sign) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || heads <= 0 || hd < 2) return;
  assert(hd % 2 == 0);
  int64_t n = (int64_t)rows * (hd / 2);
  CU_ACT_DISPATCH(be->act_dtype, T,
                  rope_k<T><<<cu_blocks(n, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                      (T *)x, ldx, rows, heads, hd, pos, inv_freq, sign));
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

static __device__ __forceinline__ float swiglu_y(float g, float u, const float *) {
  return grpo_swiglu_elem(g, u);
}
/* bf16 as HF: act_fn(gate) is a bf16 tensor before the product with up */
static __device__ __forceinline__ float swiglu_y(float g, float u, const cu_bf16 *) {
  return cu_elem<cu_bf16>::rt(g * grpo_sigmoid(g)) * u;
}

template <typename T>
static __global__ void swiglu_fwd_k(T *o, int64_t ldo, const T *g, int64_t ldg, const T *u,
                                    int64_t ldu, int rows, int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    cu_st(o + r * ldo + c, swiglu_y(cu_ld(g + r * ldg + c), cu_ld(u + r * ldu + c), (const T *)NULL));
  }
}

template <typename T>
static __global__ void swiglu_bwd_k(T *dg, int64_t lddg, T *du, int64_t lddu, const T *d,
                                    int64_t lddo, const T *g, int64_t ldg, const T *u, int64_t ldu,
                                    int rows, int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    float dgv, duv; /* inputs read first: dg, du may alias g, u */
    grpo_swiglu_bwd_elem(cu_ld(d + r * lddo + c), cu_ld(g + r * ldg + c), cu_ld(u + r * ldu + c),
                         &dgv, &duv);
    cu_st(du + r * lddu + c, duv);
    cu_st(dg + r * lddg + c, dgv);
  }
}

static void cu_swiglu_fwd(grpo_backend *be, void *out, int64_t ldo, const void *gate, int64_t ldg,
                          const void *up, int64_t ldu, int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  CU_ACT_DISPATCH(be->act_dtype, T,
                  swiglu_fwd_k<T><<<cu_blocks((int64_t)rows * cols, CU_THREADS), CU_THREADS, 0,
                                    I->stream>>>((T *)out, ldo, (const T *)gate, ldg,
                                                 (const T *)up, ldu, rows, cols));
  CU_LAUNCHED(I, "swiglu_fwd");
}

static void cu_swiglu_bwd(grpo_backend *be, void *dgate, int64_t lddg, void *dup, int64_t lddu,
                          const void *dout, int64_t lddo, const void *gate, int64_t ldg,
                          const void *up, int64_t ldu, int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  CU_ACT_DISPATCH(be->act_dtype, T,
                  swiglu_bwd_k<T><<<cu_blocks((int64_t)rows * cols, CU_THREADS), CU_THREADS, 0,
                                    I->stream>>>((T *)dgate, lddg, (T *)dup, lddu,
                                                 (const T *)dout, lddo, (const T *)gate, ldg,
                                                 (const T *)up, ldu, rows, cols));
  CU_LAUNCHED(I, "swiglu_bwd");
}

/* ---- embedding ----------------------------------------------------------------------------------- */

template <typename T>
static __global__ void embed_fwd_k(T *o, int64_t ldo, const T *table, const int32_t *ids, int rows,
                                   int dim, int *flag) {
  CU_GRID_LOOP(i, (int64_t)rows * dim) {
    int64_t r = i / dim, c = i % dim;
    int32_t id = ids[r];
    if (id < 0) {
      cu_st(o + r * ldo + c, 0.0f);
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
  CU_ACT_DISPATCH(be->act_dtype, T,
                  embed_fwd_k<T><<<cu_blocks((int64_t)rows * dim, CU_THREADS), CU_THREADS, 0,
                                   I->stream>>>((T *)out, ldo, (const T *)table, ids, rows, dim,
                                                I->dflag));
  CU_LAUNCHED(I, "embed_fwd");
}

static void cu_embed_bwd(grpo_backend *be, float *dtable, const void *dout, int64_t lddo,
                         const int32_t *ids, int rows, int dim) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || dim <= 0) return;
  cu_scatter_add_rows_x(I, dtable, GRPO_F32, dim, dout, be->act_dtype, lddo, ids, rows, dim,
                        CU_FLAG_EMBED_ID);
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

/* Block p handles the run of equal indices starting at sorted position p;
 * the sum is f32 and dst is stored once. */
template <typename TD, typename TS>
static __global__ void seg_add_k(TD *dst, int64_t ldd, const TS *src, int64_t lds,
                                 const unsigned long long *keys, int n, int dim) {
  int64_t p = blockIdx.x;
  unsigned long long key = keys[p];
  if (key == SORT_SENTINEL) return;
  uint32_t id = (uint32_t)(key >> 32);
  if (p > 0 && (uint32_t)(keys[p - 1] >> 32) == id) return; /* not the first of its run */
  for (int64_t c = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; c < dim;
       c += (int64_t)gridDim.y * blockDim.x) {
    TD *d = dst + (int64_t)id * ldd + c;
    float acc = cu_ld(d);
    /* the sentinel's high word (0xffffffff) never equals a valid id (< 2^31) */
    for (int64_t q = p; q < n && (uint32_t)(keys[q] >> 32) == id; q++)
      acc += cu_ld(src + (int64_t)(uint32_t)(keys[q] & 0xffffffffu) * lds + c);
    cu_st(d, acc);
  }
}

void cu_scatter_add_rows_x(cuda_impl *I, void *dst, grpo_dtype dst_t, int64_t ldd, const void *src,
                           grpo_dtype src_t, int64_t lds, const int32_t *idx, int n, int dim,
                           int flag) {
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
  CU_ACT_DISPATCH(dst_t, TD,
                  CU_ACT_DISPATCH(src_t, TS,
                                  seg_add_k<TD, TS><<<grid, CU_THREADS, 0, I->stream>>>(
                                      (TD *)dst, ldd, (const TS *)src, lds, keys, n, dim)));
  CU_LAUNCHED(I, "scatter add");
}

void cu_scatter_add_rows(cuda_impl *I, float *dst, int64_t ldd, const float *src, int64_t lds,
                         const int32_t *idx, int n, int dim, int flag) {
  cu_scatter_add_rows_x(I, dst, GRPO_F32, ldd, src, GRPO_F32, lds, idx, n, dim, flag);
}

/* ---- bias, residual, elementwise ------------------------------------------------------------------ */

template <typename T>
static __global__ void bias_add_k(T *y, int64_t ldy, const T *b, int rows, int cols) {
  CU_GRID_LOOP(i, (int64_t)rows * cols) {
    int64_t r = i / cols, c = i % cols;
    T *p = y + r * ldy + c;
    cu_st(p, cu_ld(p) + cu_ld(b + c));
  }
}

static void cu_bias_add(grpo_backend *be, void *y, int64_t ldy, const void *b, int rows, int cols) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || rows <= 0 || cols <= 0) return;
  CU_ACT_DISPATCH(be->act_dtype, T,
                  bias_add_k<T><<<cu_blocks((int64_t)rows * cols, CU_THREADS), CU_THREADS, 0,
                                  I->stream>>>((T *)y, ldy, (const T *)b, rows, cols));
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
  CU_ACT_DISPATCH(be->act_dtype, T,
                  bias_part_k<T><<<g1, CU_THREADS, 0, I->stream>>>(part, (const T *)dy, lddy, rows,
                                                                   cols, chunk));
  CU_LAUNCHED(I, "bias_grad");
  colsum_finish_k<<<cu_blocks(cols, CU_THREADS), CU_THREADS, 0, I->stream>>>(db, part, P, cols);
  CU_LAUNCHED(I, "bias_grad finish");
}

template <typename T>
static __global__ void add_k(T *y, const T *a, const T *b, size_t n) {
  CU_GRID_LOOP(i, n) cu_st(y + i, cu_ld(a + i) + cu_ld(b + i));
}
template <typename T>
static __global__ void axpy_k(T *y, float alpha, const T *x, size_t n) {
  CU_GRID_LOOP(i, n) cu_st(y + i, cu_ld(y + i) + alpha * cu_ld(x + i));
}
static __global__ void scale_k(float *x, float alpha, size_t n) {
  CU_GRID_LOOP(i, n) x[i] *= alpha;
}

static void cu_add(grpo_backend *be, void *y, const void *a, const void *b, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  CU_ACT_DISPATCH(be->act_dtype, T,
                  add_k<T><<<cu_blocks((int64_t)n, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                      (T *)y, (const T *)a, (const T *)b, n));
  CU_LAUNCHED(I, "add");
}

static void cu_axpy(grpo_backend *be, void *y, float alpha, const void *x, size_t n) {
  cuda_impl *I = cu_impl(be);
  if (I->err_code || n == 0) return;
  CU_ACT_DISPATCH(be->act_dtype, T,
                  axpy_k<T><<<cu_blocks((int64_t)n, CU_THREADS), CU_THREADS, 0, I->stream>>>(
                      (T *)y, alpha, (const T *)x, n));
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

template <typename T>
static __global__ void kv_write_k(T *cache, const T *src, int64_t lds, const int32_t *slots,
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
  CU_ACT_DISPATCH(be->act_dtype, T,
                  kv_write_k<T><<<cu_blocks((int64_t)n * width, CU_THREADS), CU_THREADS, 0,
                                  I->stream>>>((T *)cache, (const T *)src, lds, slots, pos, n,
                                               width, tmax, I->dflag));
  CU_LAUNCHED(I, "kv_write");
}

/* ---- the table ------------------------------------------------------------------------------------------ */

extern "C" int grpo_backend_cuda_device_count(void) { return grpo_cuda_device_count(); }

extern "C" void *grpo_backend_cuda_stream(grpo_backend *be) {
  /* the name too: test stand-ins report kind CUDA over another impl */
  if (!be || be->kind != GRPO_DEVICE_CUDA || !be->impl || strcmp(be->name, "cuda") != 0) return NULL;
  return (void *)cu_impl(be)->stream;
}

extern "C" void grpo_backend_cuda_destroy(grpo_backend *be) {
  if (!be) return;
  cuda_impl *I = cu_impl(be);
  int prev = 0;
  if (cudaGetDevice(&prev) == cudaSuccess && prev != I->device) cudaSetDevice(I->device);
  if (I->stream) cudaStreamSynchronize(I->stream);
  cu_cudnn_release(I); /* may free device memory and handles bound to the stream */
  if (I->lt_plans) {
    for (int i = 0; i < CU_LT_SLOTS; i++) lt_plan_release(&I->lt_plans[i]);
    free(I->lt_plans);
  }
  if (I->lt) cublasLtDestroy(I->lt);
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
  if (o.act_dtype != GRPO_F32 && o.act_dtype != GRPO_BF16)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "cuda backend: act_dtype %s is not supported (F32 or BF16)",
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
  if (!I->err_code) CUBLAS_CHECK(I, cublasLtCreate(&I->lt));
  if (!I->err_code) {
    I->lt_plans = (cu_lt_plan *)calloc(CU_LT_SLOTS, sizeof *I->lt_plans);
    if (!I->lt_plans) cu_fail(I, GRPO_ENOMEM, __FILE__, __LINE__, "out of host memory");
  }
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
  be->act_dtype = o.act_dtype;
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
  be->gemm_wgrad = cu_gemm_wgrad;
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
