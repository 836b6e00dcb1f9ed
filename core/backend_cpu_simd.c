/* Softmax inner loops of attention and the classifier, compiled three times
 * (AVX-512, AVX2+FMA, baseline) and picked once from the running CPU: the
 * build has no -march flag, and libm expf does not vectorise, while these
 * loops hold most of the non-sgemm time of the two ops. The baseline uses
 * libm expf (a scalar polynomial there is slower than libm). */
#include <math.h>
#include <string.h>

#include "core/backend_cpu_internal.h"

/* exp(x) in f32, written so that loops over it vectorise: Cody-Waite
 * reduction x = n ln2 + r, the Cephes degree-6 polynomial on |r| <= ln2/2,
 * 2^n through the exponent bits. Max relative error ~1.3 ulp (tested against
 * exp in double); 0 below -87.3 (including -inf); NaN stays NaN; clamped
 * at 88.3 (f32 overflows at 88.72). */
static inline float vexpf(float x) {
  float xc = x <= 88.3f ? x : 88.3f; /* NaN -> 88.3 here, restored below */
  xc = xc >= -87.3f ? xc : -87.3f;
  float t = xc * 1.44269504088896341f;
  float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest integer */
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  uint32_t e = (uint32_t)((int32_t)n + 127) << 23; /* n in [-126, 128) */
  float scale;
  memcpy(&scale, &e, sizeof scale);
  y *= scale;
  y = x < -87.3f ? 0.0f : y;
  return x == x ? y : x;
}

#define DO_PRAGMA(x) _Pragma(#x)
#define SIMD_ON(...) DO_PRAGMA(omp simd __VA_ARGS__)
#define SIMD_OFF(...) /* libm calls: clang rejects omp simd it cannot honour */

#define KERNELS(SUFFIX, ATTR, EXP, SIMD)                                                          \
  ATTR static float expsum_##SUFFIX(float *z, int n, float m) {                             \
    float s = 0.0f;                                                                         \
    SIMD(reduction(+ : s)) for (int j = 0; j < n; j++) {                      \
      float p = EXP(z[j] - m);                                                              \
      z[j] = p;                                                                             \
      s += p;                                                                               \
    }                                                                                       \
    return s;                                                                               \
  }                                                                                         \
  ATTR static float rowmax_##SUFFIX(const float *z, int n) {                                \
    /* 16 independent lanes: an elementwise max the vectoriser maps to vmaxps */            \
    float acc[16];                                                                          \
    for (int k = 0; k < 16; k++) acc[k] = -INFINITY;                                        \
    int j = 0;                                                                              \
    for (; j + 16 <= n; j += 16)                                                            \
      for (int k = 0; k < 16; k++) acc[k] = z[j + k] > acc[k] ? z[j + k] : acc[k];          \
    float mx = -INFINITY;                                                                   \
    for (; j < n; j++) mx = z[j] > mx ? z[j] : mx;                                          \
    for (int k = 0; k < 16; k++) mx = acc[k] > mx ? acc[k] : mx;                            \
    return mx;                                                                              \
  }                                                                                         \
  ATTR static void expsub_##SUFFIX(float *z, int n, float m) {                              \
    SIMD() for (int j = 0; j < n; j++) z[j] = EXP(z[j] - m);                   \
  }                                                                                         \
  ATTR static void expsubv_##SUFFIX(float *z, int n, const float *m) {                      \
    SIMD() for (int j = 0; j < n; j++) z[j] = EXP(z[j] - m[j]);                \
  }                                                                                         \
  ATTR static void expstats_##SUFFIX(const float *z, int n, float m, float *s_out,          \
                                     float *sz_out) {                                       \
    float s = 0.0f, sz = 0.0f;                                                              \
    SIMD(reduction(+ : s, sz)) for (int j = 0; j < n; j++) {                  \
      float d = z[j] - m, e = EXP(d);                                                       \
      s += e;                                                                               \
      sz += e > 0.0f ? e * d : 0.0f; /* e = 0 at d = -inf: no 0 * inf */                \
    }                                                                                       \
    *s_out = s;                                                                             \
    *sz_out = sz;                                                                           \
  }                                                                                         \
  /* the formulas of grpo_swiglu_elem / grpo_swiglu_bwd_elem (core/ops_math.h)  \
   * with this level's exp; all inputs read before the outputs are written     \
   * (dg, du may alias g, u) */                                                \
  ATTR static void swiglu_##SUFFIX(float *o, const float *g, const float *u, int n) {          \
    SIMD() for (int j = 0; j < n; j++) {                                                    \
      float sg = 1.0f / (1.0f + EXP(-g[j]));                                                \
      o[j] = g[j] * sg * u[j];                                                              \
    }                                                                                       \
  }                                                                                         \
  ATTR static void swiglu_bwd_##SUFFIX(float *dg, float *du, const float *d, const float *g, \
                                       const float *u, int n) {                             \
    SIMD() for (int j = 0; j < n; j++) {                                                    \
      float gv = g[j], uv = u[j], dv = d[j];                                                \
      float sg = 1.0f / (1.0f + EXP(-gv));                                                  \
      float silu = gv * sg;                                                                 \
      du[j] = dv * silu;                                                                    \
      dg[j] = dv * uv * sg * (1.0f + gv * (1.0f - sg));                                     \
    }                                                                                       \
  }                                                                                         \
  ATTR static void clsgrad_##SUFFIX(float *z, int n, float lse, float g, float ge, float ez) { \
    SIMD() for (int j = 0; j < n; j++) {                                       \
      float p = EXP(z[j] - lse);                                                            \
      z[j] = -g * p - ge * p * (z[j] - ez);                                                 \
    }                                                                                       \
  }

KERNELS(base, , expf, SIMD_OFF)
#if (defined(__x86_64__) || defined(__i386__)) && !defined(GRPO_NO_X86_SIMD)
#define GRPO_SIMD_X86 1
KERNELS(avx2, __attribute__((target("avx2,fma"))), vexpf, SIMD_ON)
KERNELS(avx512, __attribute__((target("avx512f,avx512dq,avx2,fma"))), vexpf, SIMD_ON)
#else
/* other ISAs: the compiler's default vector width for the polynomial exp */
KERNELS(vec, , vexpf, SIMD_ON)
#endif

/* ---- few-row products C = alpha A B^T + beta C (decode) -------------------
 * A [m, k] holds a few activation rows (m <= 16), B [n, k] the weight rows.
 * OpenBLAS spends most of such a call packing B; here every weight row is
 * streamed once per 8 rows of A, against 8 (or fewer) rows of A kept in L1,
 * two weight rows at a time: each accumulator holds 16 lanes of partial sums
 * over k, added up at the end. Columns [j0, j1) of C only, so callers can
 * split n over threads. */
#ifdef GRPO_SIMD_X86
#include <immintrin.h>

/* 8 rows of A (rows past m repeat row 0 and are not stored) x 2 weight rows;
 * named accumulators, so they stay in registers */
#ifndef PF_ROWS
#define PF_ROWS 4
#endif
#define G8_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
__attribute__((target("avx512f"))) static void gemv_rows8(int m, int j0, int j1, int k, float alpha,
                                                          const float *A, int64_t lda,
                                                          const float *B, int64_t ldb, float beta,
                                                          float *C, int64_t ldc) {
#define G8_PTR(i) const float *a##i = A + (int64_t)((i) < m ? (i) : 0) * lda;
  G8_ROWS(G8_PTR)
#undef G8_PTR
  for (int j = j0; j < j1; j += 2) {
    const int two = j + 1 < j1;
    const float *b0p = B + (int64_t)j * ldb, *b1p = B + (int64_t)(j + two) * ldb;
#define G8_ACC(i) __m512 c0##i = _mm512_setzero_ps(), c1##i = _mm512_setzero_ps();
    G8_ROWS(G8_ACC)
#undef G8_ACC
    int kk = 0;
#define G8_FMA(i)                                  \
  {                                                \
    __m512 a = LOAD(a##i + kk);                    \
    c0##i = _mm512_fmadd_ps(a, b0, c0##i);         \
    c1##i = _mm512_fmadd_ps(a, b1, c1##i);         \
  }
#define LOAD(p) _mm512_loadu_ps(p)
    for (; kk + 16 <= k; kk += 16) {
      /* weight rows stream from memory: fetch PF_ROWS rows ahead */
      _mm_prefetch((const char *)(b0p + PF_ROWS * ldb + kk), _MM_HINT_T0);
      _mm_prefetch((const char *)(b1p + PF_ROWS * ldb + kk), _MM_HINT_T0);
      __m512 b0 = LOAD(b0p + kk), b1 = LOAD(b1p + kk);
      G8_ROWS(G8_FMA)
    }
#undef LOAD
    if (kk < k) {
      __mmask16 mk = (__mmask16)((1u << (k - kk)) - 1);
#define LOAD(p) _mm512_maskz_loadu_ps(mk, p)
      __m512 b0 = LOAD(b0p + kk), b1 = LOAD(b1p + kk);
      G8_ROWS(G8_FMA)
#undef LOAD
    }
#undef G8_FMA
#define G8_STORE(i)                                                    \
  if ((i) < m) {                                                       \
    float *c = C + (int64_t)(i) * ldc + j;                             \
    float s0 = alpha * _mm512_reduce_add_ps(c0##i);                    \
    c[0] = beta == 0.0f ? s0 : s0 + beta * c[0];                       \
    if (two) {                                                         \
      float s1 = alpha * _mm512_reduce_add_ps(c1##i);                  \
      c[1] = beta == 0.0f ? s1 : s1 + beta * c[1];                     \
    }                                                                  \
  }
    G8_ROWS(G8_STORE)
#undef G8_STORE
  }
}

/* one row of A x 4 weight rows */
__attribute__((target("avx512f"))) static void gemv_row1(int j0, int j1, int k, float alpha,
                                                         const float *A, const float *B,
                                                         int64_t ldb, float beta, float *C) {
  for (int j = j0; j < j1; j += 4) {
    int nb = j1 - j < 4 ? j1 - j : 4;
    const float *bp[4];
    for (int q = 0; q < 4; q++) bp[q] = B + (int64_t)(j + (q < nb ? q : 0)) * ldb;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    for (int kk = 0; kk < k; kk += 16) {
      __mmask16 mk = k - kk >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - kk)) - 1);
      __m512 a = _mm512_maskz_loadu_ps(mk, A + kk);
      c0 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, bp[0] + kk), c0);
      c1 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, bp[1] + kk), c1);
      c2 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, bp[2] + kk), c2);
      c3 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, bp[3] + kk), c3);
    }
    float s[4] = {_mm512_reduce_add_ps(c0), _mm512_reduce_add_ps(c1), _mm512_reduce_add_ps(c2),
                  _mm512_reduce_add_ps(c3)};
    for (int q = 0; q < nb; q++) C[j + q] = beta == 0.0f ? alpha * s[q] : alpha * s[q] + beta * C[j + q];
  }
}

static void gemm_nt_small_avx512(int m, int j0, int j1, int k, float alpha, const float *A,
                                 int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                                 int64_t ldc) {
  if (m == 1) {
    gemv_row1(j0, j1, k, alpha, A, B, ldb, beta, C);
    return;
  }
  for (int i0 = 0; i0 < m; i0 += 8) {
    int mr = m - i0 < 8 ? m - i0 : 8;
    gemv_rows8(mr, j0, j1, k, alpha, A + (int64_t)i0 * lda, lda, B, ldb, beta, C + (int64_t)i0 * ldc, ldc);
  }
}
#endif

#define TABLE(SUFFIX) \
  {rowmax_##SUFFIX, expsum_##SUFFIX, expsub_##SUFFIX, expsubv_##SUFFIX, expstats_##SUFFIX, clsgrad_##SUFFIX, swiglu_##SUFFIX, swiglu_bwd_##SUFFIX, NULL, #SUFFIX}

#ifdef GRPO_SIMD_X86
static const cpu_simd_kernels tables[3] = {TABLE(base), TABLE(avx2), TABLE(avx512)};
#else
static const cpu_simd_kernels tables[3] = {TABLE(base), TABLE(vec), TABLE(vec)};
#endif

cpu_simd_kernels cpu_simd = TABLE(base);

int cpu_simd_select(int level) {
  if (level < 0) {
#ifdef GRPO_SIMD_X86
    __builtin_cpu_init();
    level = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? 2
            : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")      ? 1
                                                                                    : 0;
#else
    level = 1;
#endif
  }
  if (level > 2) level = 2;
  cpu_simd = tables[level];
  if (level == 0) { /* baseline: the backend's loops over core/ops_math.h */
    cpu_simd.swiglu = NULL;
    cpu_simd.swiglu_bwd = NULL;
  }
#ifdef GRPO_SIMD_X86
  if (level == 2) cpu_simd.gemm_nt_small = gemm_nt_small_avx512;
#endif
  return level;
}

/* Picked before main, so no op ever races on the choice. */
__attribute__((constructor)) static void cpu_simd_init(void) { cpu_simd_select(-1); }
