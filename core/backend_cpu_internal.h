/* Private to the CPU backend (core/backend_cpu*.c). */
#ifndef GRPO_CORE_BACKEND_CPU_INTERNAL_H
#define GRPO_CORE_BACKEND_CPU_INTERNAL_H

#include "core/backend.h"

/* Row-major sgemm on host f32 data with the current OpenBLAS thread count. */
void cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Vectorised softmax loops (backend_cpu_simd.c), chosen for the running CPU. */
typedef struct cpu_simd_kernels {
  /* max of z[0..n) (-inf for n = 0; NaN entries are skipped) */
  float (*rowmax)(const float *z, int n);
  /* z[j] = exp(z[j] - m); returns the sum */
  float (*expsum)(float *z, int n, float m);
  /* z[j] = exp(z[j] - m) */
  void (*expsub)(float *z, int n, float m);
  /* z[j] = exp(z[j] - m[j]) */
  void (*expsubv)(float *z, int n, const float *m);
  /* s = sum exp(z - m), sz = sum exp(z - m) (z - m) */
  void (*expstats)(const float *z, int n, float m, float *s, float *sz);
  /* p = exp(z - lse); z = -g p - ge p (z - ez) */
  void (*clsgrad)(float *z, int n, float lse, float g, float ge, float ez);
  /* o = silu(g) u; and its backward dg, du (may alias g, u) from d */
  void (*swiglu)(float *o, const float *g, const float *u, int n);
  void (*swiglu_bwd)(float *dg, float *du, const float *d, const float *g, const float *u, int n);
  /* columns [j0, j1) of C[m, n] = alpha A[m, k] B[n, k]^T + beta C for a few
   * rows (m <= CPU_GEMM_SMALL_M); NULL where the level has none (OpenBLAS then) */
  void (*gemm_nt_small)(int m, int j0, int j1, int k, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
  const char *name;
} cpu_simd_kernels;
extern cpu_simd_kernels cpu_simd;
#define CPU_GEMM_SMALL_M 16
/* level: 2 AVX-512, 1 AVX2 (off x86: generic vector code), 0 baseline
 * (libm expf), -1 best supported (what a
 * constructor selects at load time); returns the level used. Tests force
 * each level the CPU supports. */
int cpu_simd_select(int level);

/* Bracket an OpenMP region whose threads call cpu_sgemm: OpenBLAS runs
 * single-threaded inside, restored afterwards (no oversubscription). */
int cpu_blas_serial_begin(void);
void cpu_blas_serial_end(int saved);

size_t cpu_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd);
void cpu_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                  void *ws, size_t ws_bytes);
void cpu_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                  const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                  void *ws, size_t ws_bytes);
size_t cpu_attn_decode_workspace(grpo_backend *be, int n, int nh, int tmax);
void cpu_attn_decode(grpo_backend *be, void *out, const void *q, const void *kcache,
                     const void *vcache, const int32_t *slots, const int32_t *lens, int n, int nh,
                     int nkv, int hd, int tmax, float scale, void *ws, size_t ws_bytes);
void cpu_kv_write(grpo_backend *be, void *cache, const void *src, int64_t lds,
                  const int32_t *slots, const int32_t *pos, int n, int width, int tmax);

size_t cpu_classifier_workspace(grpo_backend *be, const grpo_classifier_shape *s);
void cpu_classifier_fwd(grpo_backend *be, const grpo_classifier_shape *s, float *logprob,
                        float *entropy, float *lse, void *ws, size_t ws_bytes);
void cpu_classifier_bwd(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                        const float *entropy, const float *dlogprob, const float *dentropy,
                        void *dh, int64_t lddh, float *dw, void *ws, size_t ws_bytes);

#endif
