/* CPU backend: f32, OpenBLAS for matmuls, OpenMP for everything else.
 * Attention lives in backend_cpu_attn.c, the classifier in
 * backend_cpu_classifier.c. */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/backend_cpu_internal.h"
#include "core/ops_math.h"

/* ---- BLAS ---------------------------------------------------------------- */

/* m n k of a product worth splitting over the OpenMP threads */
#define CPU_SGEMM_SPLIT_MIN (1 << 19)

void cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    /* BLAS would still scale C by beta; keep that contract */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) C[(int64_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(int64_t)i * ldc + j];
    return;
  }
  /* One thread pool: OpenBLAS runs single-threaded (cpu_blas_init) and a
   * large product is split over the OpenMP threads, each owning a band of C
   * (rows when m >= n, else columns; bands are multiples of 16). OpenBLAS's
   * pthreads and libgomp's spinning workers would otherwise fight for the
   * cores after every region. The k sum of each element is the same serial
   * OpenBLAS loop whatever the split. */
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (!ta && tb && m <= CPU_GEMM_SMALL_M && cpu_simd.gemm_nt_small) {
    /* a few rows against a weight matrix (decode): stream the weights once */
    if ((double)m * n * k < CPU_SGEMM_SPLIT_MIN || n < 64) nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      int t = omp_get_thread_num(), nth = omp_get_num_threads();
      int j0 = (int)((int64_t)n * t / nth), j1 = (int)((int64_t)n * (t + 1) / nth);
      if (j1 > j0) cpu_simd.gemm_nt_small(m, j0, j1, k, alpha, A, lda, B, ldb, beta, C, ldc);
    }
    return;
  }
  if (nt > 1 && (double)m * n * k >= CPU_SGEMM_SPLIT_MIN && (m >= 32 || n >= 32)) {
    int split_m = m >= n;
    int len = split_m ? m : n, parts = (len + 15) / 16;
    if (parts < nt) nt = parts;
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), nth = omp_get_num_threads();
      int b0 = (int)((int64_t)parts * t / nth) * 16, b1 = (int)((int64_t)parts * (t + 1) / nth) * 16;
      if (b1 > len) b1 = len;
      if (b1 > b0) {
        if (split_m)
          cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                      b1 - b0, n, k, alpha, ta ? A + b0 : A + (int64_t)b0 * lda, (blasint)lda, B,
                      (blasint)ldb, beta, C + (int64_t)b0 * ldc, (blasint)ldc);
        else
          cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                      m, b1 - b0, k, alpha, A, (blasint)lda, tb ? B + (int64_t)b0 * ldb : B + b0,
                      (blasint)ldb, beta, C + b0, (blasint)ldc);
      }
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* OpenBLAS's own threads stay unused (see cpu_sgemm); set before main. */
__attribute__((constructor)) static void cpu_blas_init(void) { openblas_set_num_threads(1); }

void grpo_backend_cpu_describe(char *buf, size_t cap) {
  snprintf(buf, cap, "%s (core %s), %s loops, %d OpenMP threads", openblas_get_config(),
           openblas_get_corename(), cpu_simd.name, omp_get_max_threads());
}

int cpu_blas_serial_begin(void) {
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  return saved;
}

void cpu_blas_serial_end(int saved) {
  if (saved != 1) openblas_set_num_threads(saved);
}

/* ---- memory --------------------------------------------------------------- */

static int cpu_alloc(grpo_backend *be, size_t bytes, void **out, grpo_error *err) {
  (void)be;
  *out = NULL;
  if (bytes == 0) return GRPO_OK;
  size_t rounded = (bytes + 63) & ~(size_t)63;
  if (rounded < bytes) return GRPO_FAIL(err, GRPO_ENOMEM, "cpu backend: allocation of %zu bytes overflows", bytes);
  void *p = aligned_alloc(64, rounded);
  if (!p) return GRPO_FAIL(err, GRPO_ENOMEM, "cpu backend: cannot allocate %zu bytes", bytes);
  *out = p;
  return GRPO_OK;
}

static void cpu_free(grpo_backend *be, void *p) {
  (void)be;
  free(p);
}

static int cpu_copy(grpo_backend *be, void *dst, const void *src, size_t bytes, grpo_error *err) {
  (void)be;
  (void)err;
  if (bytes) memmove(dst, src, bytes);
  return GRPO_OK;
}

static void cpu_memset(grpo_backend *be, void *dst, int byte, size_t bytes) {
  (void)be;
  if (bytes) memset(dst, byte, bytes);
}

static int cpu_sync(grpo_backend *be, grpo_error *err) {
  (void)be;
  (void)err;
  return GRPO_OK;
}

static void cpu_copy2d(grpo_backend *be, void *dst, int64_t ldd, const void *src, int64_t lds,
                       int rows, int cols) {
  (void)be;
  float *d = dst;
  const float *s = src;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols > 65536)
  for (int r = 0; r < rows; r++) memmove(d + r * ldd, s + r * lds, (size_t)cols * sizeof(float));
}

static void cpu_convert(grpo_backend *be, void *dst, grpo_dtype dst_t, const void *src,
                        grpo_dtype src_t, size_t n) {
  (void)be;
  if (dst_t == src_t) {
    memmove(dst, src, n * grpo_dtype_size(src_t));
  } else if (src_t == GRPO_F32 && dst_t == GRPO_BF16) {
    grpo_f32_to_bf16_n(dst, src, n);
  } else if (src_t == GRPO_BF16 && dst_t == GRPO_F32) {
    grpo_bf16_to_f32_n(dst, src, n);
  } else if (src_t == GRPO_F32 && dst_t == GRPO_F16) {
    grpo_f32_to_f16_n(dst, src, n);
  } else if (src_t == GRPO_F16 && dst_t == GRPO_F32) {
    grpo_f16_to_f32_n(dst, src, n);
  } else {
    assert(!"cpu convert: unsupported dtype pair");
  }
}

/* ---- matmul ---------------------------------------------------------------- */

static void cpu_sgemm_op(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                         const void *A, int64_t lda, const void *B, int64_t ldb, float beta,
                         void *C, int64_t ldc) {
  (void)be;
  cpu_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_gemm_wgrad(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                           const void *A, int64_t lda, const void *B, int64_t ldb, float *C,
                           int64_t ldc) {
  (void)be;
  cpu_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, 1.0f, C, ldc);
}

static void cpu_sgemm_batched(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                              const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                              int64_t sB, int b_group, float beta, void *C, int64_t ldc,
                              int64_t sC, int batch) {
  (void)be;
  assert(b_group >= 1);
  const float *a = A, *b = B;
  float *c = C;
  /* Many small products: one per thread with serial BLAS; few large ones:
   * threaded BLAS one after the other. */
  double work = (double)m * n * k;
  if (batch >= 2 && work < 4.0e6) {
    int saved = cpu_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < batch; i++)
      cpu_sgemm(ta, tb, m, n, k, alpha, a + i * sA, lda, b + (i / b_group) * sB, ldb, beta,
                c + i * sC, ldc);
    cpu_blas_serial_end(saved);
  } else {
    for (int i = 0; i < batch; i++)
      cpu_sgemm(ta, tb, m, n, k, alpha, a + i * sA, lda, b + (i / b_group) * sB, ldb, beta,
                c + i * sC, ldc);
  }
}

/* ---- RMSNorm --------------------------------------------------------------- */

static void cpu_rmsnorm_fwd(grpo_backend *be, void *y, int64_t ldy, float *rstd, const void *x,
                            int64_t ldx, const void *w, int rows, int heads, int dim, float eps) {
  (void)be;
  float *Y = y;
  const float *X = x, *W = w;
  int64_t nv = (int64_t)rows * heads;
#pragma omp parallel for schedule(static) if (nv * dim > 16384)
  for (int64_t v = 0; v < nv; v++) {
    int64_t r = v / heads, h = v % heads;
    const float *xv = X + r * ldx + h * dim;
    float *yv = Y + r * ldy + h * dim;
    double ss = 0.0;
    for (int c = 0; c < dim; c++) ss += (double)xv[c] * xv[c];
    float rs = (float)(1.0 / sqrt(ss / dim + (double)eps));
    rstd[v] = rs;
    for (int c = 0; c < dim; c++) yv[c] = grpo_rmsnorm_elem(xv[c], rs, W[c]);
  }
}

static void cpu_rmsnorm_bwd(grpo_backend *be, void *dx, int64_t lddx, int accumulate, float *dw,
                            const void *dy, int64_t lddy, const void *x, int64_t ldx,
                            const void *w, const float *rstd, int rows, int heads, int dim) {
  (void)be;
  float *DX = dx;
  const float *DY = dy, *X = x, *W = w;
  int64_t nv = (int64_t)rows * heads;
  /* dw first: dx may alias dy. Columns are split among threads so every
   * thread owns its dw entries and the sum order is fixed. */
#pragma omp parallel if (nv * dim > 16384)
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int c0 = (int)((int64_t)dim * t / nt), c1 = (int)((int64_t)dim * (t + 1) / nt);
    for (int64_t v = 0; v < nv; v++) {
      int64_t r = v / heads, h = v % heads;
      const float *xv = X + r * ldx + h * dim, *dyv = DY + r * lddy + h * dim;
      float rs = rstd[v];
      for (int c = c0; c < c1; c++) dw[c] += dyv[c] * (xv[c] * rs);
    }
  }
#pragma omp parallel for schedule(static) if (nv * dim > 16384)
  for (int64_t v = 0; v < nv; v++) {
    int64_t r = v / heads, h = v % heads;
    const float *xv = X + r * ldx + h * dim, *dyv = DY + r * lddy + h * dim;
    float *dxv = DX + r * lddx + h * dim;
    float rs = rstd[v];
    double dot = 0.0;
    for (int c = 0; c < dim; c++) dot += (double)dyv[c] * W[c] * xv[c];
    float k = (float)(dot * rs * rs * rs / dim);
    if (accumulate) {
      for (int c = 0; c < dim; c++) dxv[c] += grpo_rmsnorm_dx_elem(dyv[c], xv[c], W[c], rs, k);
    } else {
      for (int c = 0; c < dim; c++) dxv[c] = grpo_rmsnorm_dx_elem(dyv[c], xv[c], W[c], rs, k);
    }
  }
}

/* ---- RoPE -------------------------------------------------------------------- */

static void rope_apply(float *X, int64_t ldx, int rows, int heads, int hd, const int32_t *pos,
                       const float *inv_freq, float sign) {
  int half = hd / 2;
#pragma omp parallel for schedule(static) if ((int64_t)rows * heads * hd > 16384)
  for (int r = 0; r < rows; r++) {
    float pr = (float)pos[r];
    for (int j = 0; j < half; j++) {
      float ang = pr * inv_freq[j];
      float c = cosf(ang), s = sign * sinf(ang);
      for (int h = 0; h < heads; h++) {
        float *xv = X + (int64_t)r * ldx + (int64_t)h * hd;
        grpo_rope_rotate(&xv[j], &xv[j + half], c, s);
      }
    }
  }
}

static void cpu_rope_fwd(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                         const int32_t *pos, const float *inv_freq) {
  (void)be;
  rope_apply(x, ldx, rows, heads, hd, pos, inv_freq, 1.0f);
}

static void cpu_rope_bwd(grpo_backend *be, void *dx, int64_t lddx, int rows, int heads, int hd,
                         const int32_t *pos, const float *inv_freq) {
  (void)be;
  rope_apply(dx, lddx, rows, heads, hd, pos, inv_freq, -1.0f);
}

int grpo_rope_inv_freq(float *inv_freq, int hd, double theta, const grpo_rope_scaling *sc,
                       grpo_error *err) {
  if (hd <= 0 || hd % 2) return GRPO_FAIL(err, GRPO_EINVAL, "rope: head_dim %d must be even and > 0", hd);
  if (!(theta > 0.0)) return GRPO_FAIL(err, GRPO_EINVAL, "rope: rope_theta %g must be > 0", theta);
  int half = hd / 2;
  /* HF: 1.0 / (base ** (arange(0, d, 2).float() / d)), all in f32 */
  for (int j = 0; j < half; j++) {
    float e = (float)(2 * j) / (float)hd;
    inv_freq[j] = 1.0f / powf((float)theta, e);
  }
  if (!sc || !sc->rope_type || strcmp(sc->rope_type, "default") == 0) return GRPO_OK;
  if (strcmp(sc->rope_type, "llama3") != 0)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "rope_scaling.rope_type \"%s\" is not supported (default, llama3)",
                     sc->rope_type);
  if (!(sc->factor > 0) || !(sc->low_freq_factor > 0) || !(sc->high_freq_factor > sc->low_freq_factor) ||
      !(sc->original_max_position_embeddings > 0))
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "rope_scaling (llama3): need factor > 0, 0 < low_freq_factor < high_freq_factor, "
                     "original_max_position_embeddings > 0 (got %g, %g, %g, %g)",
                     sc->factor, sc->low_freq_factor, sc->high_freq_factor,
                     sc->original_max_position_embeddings);
  /* HF _compute_llama3_parameters, on f32 tensors with python-float scalars */
  double old_ctx = sc->original_max_position_embeddings;
  double low_wl = old_ctx / sc->low_freq_factor, high_wl = old_ctx / sc->high_freq_factor;
  float factor = (float)sc->factor;
  for (int j = 0; j < half; j++) {
    float f = inv_freq[j];
    float wavelen = (float)(2.0 * 3.14159265358979323846) / f;
    float scaled = wavelen > (float)low_wl ? f / factor : f;
    if (!(wavelen < (float)high_wl) && !(wavelen > (float)low_wl)) {
      float smooth = ((float)old_ctx / wavelen - (float)sc->low_freq_factor) /
                     (float)(sc->high_freq_factor - sc->low_freq_factor);
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    inv_freq[j] = scaled;
  }
  return GRPO_OK;
}

/* ---- SwiGLU ------------------------------------------------------------------- */

static void cpu_swiglu_fwd(grpo_backend *be, void *out, int64_t ldo, const void *gate, int64_t ldg,
                           const void *up, int64_t ldu, int rows, int cols) {
  (void)be;
  float *O = out;
  const float *G = gate, *U = up;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols > 16384)
  for (int r = 0; r < rows; r++) {
    const float *g = G + r * ldg, *u = U + r * ldu;
    float *o = O + r * ldo;
    if (cpu_simd.swiglu) { /* the same formula, vectorised exp */
      cpu_simd.swiglu(o, g, u, cols);
      continue;
    }
    for (int c = 0; c < cols; c++) o[c] = grpo_swiglu_elem(g[c], u[c]);
  }
}

static void cpu_swiglu_bwd(grpo_backend *be, void *dgate, int64_t lddg, void *dup, int64_t lddu,
                           const void *dout, int64_t lddo, const void *gate, int64_t ldg,
                           const void *up, int64_t ldu, int rows, int cols) {
  (void)be;
  float *DG = dgate, *DU = dup;
  const float *DO = dout, *G = gate, *U = up;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols > 16384)
  for (int r = 0; r < rows; r++) {
    const float *g = G + r * ldg, *u = U + r * ldu, *d = DO + r * lddo;
    float *dg = DG + r * lddg, *du = DU + r * lddu;
    if (cpu_simd.swiglu_bwd) {
      cpu_simd.swiglu_bwd(dg, du, d, g, u, cols);
      continue;
    }
    for (int c = 0; c < cols; c++) {
      float dgv, duv; /* all inputs read before writing: dg, du may alias g, u */
      grpo_swiglu_bwd_elem(d[c], g[c], u[c], &dgv, &duv);
      du[c] = duv;
      dg[c] = dgv;
    }
  }
}

/* ---- embedding ----------------------------------------------------------------- */

static void cpu_embed_fwd(grpo_backend *be, void *out, int64_t ldo, const void *table,
                          const int32_t *ids, int rows, int dim) {
  (void)be;
  float *O = out;
  const float *E = table;
#pragma omp parallel for schedule(static) if ((int64_t)rows * dim > 65536)
  for (int r = 0; r < rows; r++)
    memcpy(O + r * ldo, E + (int64_t)ids[r] * dim, (size_t)dim * sizeof(float));
}

static void cpu_embed_bwd(grpo_backend *be, float *dtable, const void *dout, int64_t lddo,
                          const int32_t *ids, int rows, int dim) {
  (void)be;
  const float *D = dout;
  /* columns split among threads: repeated ids never race, order is fixed */
#pragma omp parallel if ((int64_t)rows * dim > 65536)
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int c0 = (int)((int64_t)dim * t / nt), c1 = (int)((int64_t)dim * (t + 1) / nt);
    for (int r = 0; r < rows; r++) {
      float *dst = dtable + (int64_t)ids[r] * dim;
      const float *src = D + r * lddo;
      for (int c = c0; c < c1; c++) dst[c] += src[c];
    }
  }
}

/* ---- bias, residual, elementwise ----------------------------------------------- */

static void cpu_bias_add(grpo_backend *be, void *y, int64_t ldy, const void *b, int rows, int cols) {
  (void)be;
  float *Y = y;
  const float *B = b;
#pragma omp parallel for schedule(static) if ((int64_t)rows * cols > 65536)
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) Y[r * ldy + c] += B[c];
}

static void cpu_bias_grad(grpo_backend *be, float *db, const void *dy, int64_t lddy, int rows,
                          int cols) {
  (void)be;
  const float *D = dy;
#pragma omp parallel if ((int64_t)rows * cols > 65536)
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int c0 = (int)((int64_t)cols * t / nt), c1 = (int)((int64_t)cols * (t + 1) / nt);
    for (int r = 0; r < rows; r++)
      for (int c = c0; c < c1; c++) db[c] += D[r * lddy + c];
  }
}

static void cpu_add(grpo_backend *be, void *y, const void *a, const void *b, size_t n) {
  (void)be;
  float *Y = y;
  const float *A = a, *B = b;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) Y[i] = A[i] + B[i];
}

static void cpu_axpy(grpo_backend *be, void *y, float alpha, const void *x, size_t n) {
  (void)be;
  float *Y = y;
  const float *X = x;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) Y[i] += alpha * X[i];
}

static void cpu_scale(grpo_backend *be, float *x, float alpha, size_t n) {
  (void)be;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

static double cpu_sumsq(grpo_backend *be, const float *x, size_t n) {
  (void)be;
  double s = 0.0;
  /* fixed static partition: the same thread count gives the same sum */
#pragma omp parallel for schedule(static) reduction(+ : s) if (n > 65536)
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

/* ---- AdamW --------------------------------------------------------------------- */

void grpo_adamw_prepare(grpo_adamw_hparams *hp, long t) {
  double bc1 = 1.0 - pow(hp->beta1, (double)t);
  double bc2 = 1.0 - pow(hp->beta2, (double)t);
  hp->beta2_f = (float)hp->beta2;
  hp->one_minus_beta1 = (float)(1.0 - hp->beta1);
  hp->one_minus_beta2 = (float)(1.0 - hp->beta2);
  hp->eps_f = (float)hp->eps;
  hp->step_size = (float)(hp->lr / bc1);
  hp->sqrt_bc2 = (float)sqrt(bc2);
  hp->decay = (float)(1.0 - hp->lr * hp->weight_decay);
}

static void cpu_adamw(grpo_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                      const grpo_adamw_hparams *hp) {
  (void)be;
  grpo_adamw_hparams h = *hp;
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; i++) grpo_adamw_elem(&p[i], g[i], &m[i], &v[i], &h);
}

/* ---- the table ------------------------------------------------------------------ */

static grpo_backend cpu_backend = {
    .name = "cpu",
    .kind = GRPO_DEVICE_CPU,
    .act_dtype = GRPO_F32,
    .impl = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .memset = cpu_memset,
    .sync = cpu_sync,
    .copy2d = cpu_copy2d,
    .convert = cpu_convert,
    .sgemm = cpu_sgemm_op,
    .sgemm_batched = cpu_sgemm_batched,
    .gemm_wgrad = cpu_gemm_wgrad,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .rope_fwd = cpu_rope_fwd,
    .rope_bwd = cpu_rope_bwd,
    .attn_workspace = cpu_attn_workspace,
    .attn_fwd = cpu_attn_fwd,
    .attn_bwd = cpu_attn_bwd,
    .attn_decode_workspace = cpu_attn_decode_workspace,
    .attn_decode = cpu_attn_decode,
    .kv_write = cpu_kv_write,
    .swiglu_fwd = cpu_swiglu_fwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .embed_fwd = cpu_embed_fwd,
    .embed_bwd = cpu_embed_bwd,
    .bias_add = cpu_bias_add,
    .bias_grad = cpu_bias_grad,
    .add = cpu_add,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .sumsq = cpu_sumsq,
    .classifier_workspace = cpu_classifier_workspace,
    .classifier_fwd = cpu_classifier_fwd,
    .classifier_bwd = cpu_classifier_bwd,
    .adamw = cpu_adamw,
};

grpo_backend *grpo_backend_cpu(void) { return &cpu_backend; }
