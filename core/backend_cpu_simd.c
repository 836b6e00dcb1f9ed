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

#define TABLE(SUFFIX) \
  {rowmax_##SUFFIX, expsum_##SUFFIX, expsub_##SUFFIX, expsubv_##SUFFIX, expstats_##SUFFIX, clsgrad_##SUFFIX, #SUFFIX}

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
  return level;
}

/* Picked before main, so no op ever races on the choice. */
__attribute__((constructor)) static void cpu_simd_init(void) { cpu_simd_select(-1); }
