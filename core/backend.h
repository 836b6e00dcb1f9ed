/* Compute backend: a table of ops, one table per device.
 *
 * The model calls these ops and never calls BLAS or CUDA itself. The CPU
 * backend (grpo_backend_cpu) is the reference; the CUDA backend implements the
 * same table and is tested op by op against it.
 *
 * Conventions (every op):
 *  - Device pointers are opaque: only the backend dereferences them. Memory
 *    comes from be->alloc; host data moves in and out with the copy ops.
 *  - Tensor data pointers are `void *` and hold be->act_dtype elements
 *    (f32 on CPU; bf16 activations on CUDA). `float *` marks buffers that are
 *    f32 on every backend (statistics, log-sum-exp, optimizer state, inv_freq).
 *    Index arrays (ids, positions, tin/tout, targets) are int32 device buffers.
 *  - Matrices are row-major. A "row stride" ld is the distance in elements
 *    between consecutive rows, so an op can read a slice of a fused buffer
 *    (e.g. q, k, v inside one [T, (nh+2*nkv)*hd] QKV buffer) in place.
 *  - Sizes and strides are explicit; ops never allocate. Ops that need scratch
 *    take a caller-provided workspace of at least the size the matching
 *    *_workspace op returns for the same shape (allocate once, at the max).
 *  - Gradient outputs say whether they are written (=) or accumulated (+=).
 *    Parameter gradients are always accumulated.
 *  - Compute ops return nothing: invalid shapes are programming errors
 *    (asserted), validated earlier from user input. CUDA ops may run
 *    asynchronously; be->sync reports deferred errors.
 *
 * Threading (CPU): one pool. OpenBLAS is kept at one thread (set when the
 * backend loads); the backend splits a large product into row or column
 * bands, one per OpenMP thread, each a serial OpenBLAS call (bit-identical
 * to the unsplit product), and parallelises everything else with OpenMP, so
 * two thread pools never compete for the cores. Set OMP_NUM_THREADS.
 * Per-thread workspaces are sized by omp_get_max_threads() when *_workspace
 * is called. Call one backend's ops from one host thread at a time.
 * The CPU softmax, SwiGLU and few-row (decode) product loops run AVX-512,
 * AVX2 or baseline code chosen at load time from the running CPU
 * (core/backend_cpu_simd.c). */
#ifndef GRPO_CORE_BACKEND_H
#define GRPO_CORE_BACKEND_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/hd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct grpo_backend grpo_backend;

typedef enum grpo_device_kind { GRPO_DEVICE_CPU = 0, GRPO_DEVICE_CUDA = 1 } grpo_device_kind;

/* Packed-sequence attention shapes and inputs (all device pointers).
 * q: [T, nh, hd] rows of stride ldq; k, v: [T, nkv, hd] rows of stride ldk, ldv.
 * Token i attends to token j iff tin[j] <= tin[i] <= tout[j]. Query head h
 * reads kv head h / (nh / nkv). Scores are scaled by `scale` (hd^-0.5). */
typedef struct grpo_attn_shape {
  int T, nh, nkv, hd;
  float scale;
  const void *q;
  int64_t ldq;
  const void *k;
  int64_t ldk;
  const void *v;
  int64_t ldv;
  const int32_t *tin, *tout;
  /* Optional: the pack is plain causal segments (token i of segment s
   * attends to the tokens of s at or before i; tin[i] = i, tout[i] = the
   * segment's last token). seg_start [n_seg + 1] (device) holds each
   * segment's first token and then T; max_seg is the longest segment. A
   * backend may then use a fused kernel (cuDNN SDPA on CUDA); tin / tout
   * stay valid and the reference ignores these. n_seg = 0: not known. */
  int n_seg, max_seg;
  const int32_t *seg_start;
} grpo_attn_shape;

/* Fused classifier over n prediction rows. Row k is hidden row rows[k] (or k
 * when rows is NULL) of h [*, hidden] with row stride ldh; w is [vocab, hidden]
 * (lm_head, or the embedding when tied). Logits z = (h_row . w_v) / temperature.
 * The op works in chunks of row_chunk rows x vocab_chunk vocab entries (0 =
 * backend default) and never holds more than one chunk of logits. */
typedef struct grpo_classifier_shape {
  int n, hidden, vocab;
  const void *h;
  int64_t ldh;
  const int32_t *rows;    /* [n] or NULL */
  const void *w;          /* [vocab, hidden], contiguous */
  const int32_t *targets; /* [n], each in [0, vocab) */
  float temperature;      /* > 0 */
  int row_chunk, vocab_chunk;
} grpo_classifier_shape;

/* AdamW hyper-parameters for one step (PyTorch torch.optim.AdamW semantics:
 * decoupled weight decay p -= lr*wd*p, then the Adam update with bias
 * correction). Use grpo_adamw_prepare to fill the derived fields. */
typedef struct grpo_adamw_hparams {
  double lr, beta1, beta2, eps, weight_decay;
  float grad_scale; /* multiplies every gradient first (e.g. clip factor); 1 = none */
  /* derived for step t (1-based) by grpo_adamw_prepare; what the kernels read */
  float beta2_f, one_minus_beta1, one_minus_beta2, eps_f;
  float step_size; /* lr / (1 - beta1^t) */
  float sqrt_bc2;  /* sqrt(1 - beta2^t) */
  float decay;     /* 1 - lr * weight_decay */
} grpo_adamw_hparams;

struct grpo_backend {
  const char *name;         /* "cpu", "cuda" */
  grpo_device_kind kind;
  grpo_dtype act_dtype;     /* element type of `void *` tensor data */
  void *impl;               /* backend private state */

  /* ---- memory ---------------------------------------------------------- */
  /* Allocates bytes (aligned to 64 bytes on CPU, 256 on CUDA); *out = NULL
   * for bytes == 0. */
  int (*alloc)(grpo_backend *be, size_t bytes, void **out, grpo_error *err);
  void (*free)(grpo_backend *be, void *p);
  int (*copy_h2d)(grpo_backend *be, void *dst, const void *src_host, size_t bytes, grpo_error *err);
  int (*copy_d2h)(grpo_backend *be, void *dst_host, const void *src, size_t bytes, grpo_error *err);
  int (*copy_d2d)(grpo_backend *be, void *dst, const void *src, size_t bytes, grpo_error *err);
  void (*memset)(grpo_backend *be, void *dst, int byte, size_t bytes);
  /* Waits for queued work; returns the first deferred error. */
  int (*sync)(grpo_backend *be, grpo_error *err);

  /* 2-D strided copy of `rows` rows of `cols` elements (act dtype):
   * dst[r*ldd + c] = src[r*lds + c]. */
  void (*copy2d)(grpo_backend *be, void *dst, int64_t ldd, const void *src, int64_t lds, int rows,
                 int cols);
  /* Element type conversion of n elements (e.g. f32 master weights to bf16). */
  void (*convert)(grpo_backend *be, void *dst, grpo_dtype dst_t, const void *src, grpo_dtype src_t,
                  size_t n);

  /* ---- matmul ---------------------------------------------------------- */
  /* C[m,n] = alpha * op(A) op(B) + beta * C, row-major; op(X) = X or X^T as
   * ta/tb say (0 or 1). op(A) is [m,k], op(B) is [k,n]. */
  void (*sgemm)(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha, const void *A,
                int64_t lda, const void *B, int64_t ldb, float beta, void *C, int64_t ldc);
  /* Strided batched: for b in [0, batch): C_b = alpha op(A_b) op(B_b) + beta C_b
   * with A_b = A + b*sA, B_b = B + (b / b_group)*sB, C_b = C + b*sC (elements).
   * b_group >= 1 lets b_group consecutive batches share one B (GQA). */
  void (*sgemm_batched)(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                        const void *A, int64_t lda, int64_t sA, const void *B, int64_t ldb,
                        int64_t sB, int b_group, float beta, void *C, int64_t ldc, int64_t sC,
                        int batch);
  /* Parameter gradients: C[m,n] += alpha * op(A) op(B) with A, B in the
   * activation type and C f32 (gradients accumulate in f32 whatever the
   * activation type: bf16 inputs, fp32 accumulation and output on CUDA). */
  void (*gemm_wgrad)(grpo_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                     const void *A, int64_t lda, const void *B, int64_t ldb, float *C,
                     int64_t ldc);

  /* ---- RMSNorm (HF: f32 normalisation, then * weight) -------------------- */
  /* Normalises rows*heads vectors of length dim: vector (r, h) starts at
   * x + r*ldx + h*dim. heads = 1 for the hidden-state norm; heads = nh with
   * dim = hd for Qwen3 q_norm/k_norm (one weight [dim] for all heads).
   * y = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps), saved per vector
   * in rstd[r*heads + h]. y may alias x. */
  void (*rmsnorm_fwd)(grpo_backend *be, void *y, int64_t ldy, float *rstd, const void *x,
                      int64_t ldx, const void *w, int rows, int heads, int dim, float eps);
  /* dx (= or += when accumulate) and dw (+=) from dy, x, w, rstd. dx may
   * alias dy when !accumulate. */
  void (*rmsnorm_bwd)(grpo_backend *be, void *dx, int64_t lddx, int accumulate, float *dw,
                      const void *dy, int64_t lddy, const void *x, int64_t ldx, const void *w,
                      const float *rstd, int rows, int heads, int dim);

  /* ---- RoPE, rotate_half (NeoX) layout, in place -------------------------- */
  /* x: rows x heads vectors of hd (vector (r,h) at x + r*ldx + h*hd); angle
   * pos[r] * inv_freq[j] (f32 product), j < hd/2; element j pairs with
   * j + hd/2. rope_bwd applies the inverse rotation to a gradient. */
  void (*rope_fwd)(grpo_backend *be, void *x, int64_t ldx, int rows, int heads, int hd,
                   const int32_t *pos, const float *inv_freq);
  void (*rope_bwd)(grpo_backend *be, void *dx, int64_t lddx, int rows, int heads, int hd,
                   const int32_t *pos, const float *inv_freq);

  /* ---- attention over packed sequences ----------------------------------- */
  size_t (*attn_workspace)(grpo_backend *be, int T, int nh, int nkv, int hd);
  /* out: [T, nh, hd] row stride ldo (=); lse: [nh, T] f32, the log-sum-exp of
   * the scaled scores of each (head, query) row, saved for the backward. */
  void (*attn_fwd)(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                   void *ws, size_t ws_bytes);
  /* dq, dk, dv (=) with the layouts and strides of q, k, v (ldq.. of s apply to
   * dq, dk, dv too). Needs out and lse from the forward. */
  void (*attn_bwd)(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                   const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                   void *ws, size_t ws_bytes);
  /* Decode: one query per slot. q, out: [n, nh, hd] contiguous. Query i reads
   * cache slot slots[i] (i when NULL) rows t < lens[i] of kcache/vcache laid
   * out [n_slots_total, tmax, nkv, hd]. */
  size_t (*attn_decode_workspace)(grpo_backend *be, int n, int nh, int tmax);
  void (*attn_decode)(grpo_backend *be, void *out, const void *q, const void *kcache,
                      const void *vcache, const int32_t *slots, const int32_t *lens, int n, int nh,
                      int nkv, int hd, int tmax, float scale, void *ws, size_t ws_bytes);
  /* Writes n rows into a KV cache: cache[slots[i], pos[i], :] = src row i
   * (width elements, row stride lds). Caches are [*, tmax, width]. */
  void (*kv_write)(grpo_backend *be, void *cache, const void *src, int64_t lds,
                   const int32_t *slots, const int32_t *pos, int n, int width, int tmax);

  /* ---- MLP --------------------------------------------------------------- */
  /* out[r,c] = silu(gate[r,c]) * up[r,c], c < cols. */
  void (*swiglu_fwd)(grpo_backend *be, void *out, int64_t ldo, const void *gate, int64_t ldg,
                     const void *up, int64_t ldu, int rows, int cols);
  /* dgate, dup (=); they may alias gate, up (overwritten in place). */
  void (*swiglu_bwd)(grpo_backend *be, void *dgate, int64_t lddg, void *dup, int64_t lddu,
                     const void *dout, int64_t lddo, const void *gate, int64_t ldg, const void *up,
                     int64_t ldu, int rows, int cols);

  /* ---- embedding --------------------------------------------------------- */
  /* out[r,:] = table[ids[r], :] (dim elements, table contiguous [*, dim]). */
  void (*embed_fwd)(grpo_backend *be, void *out, int64_t ldo, const void *table,
                    const int32_t *ids, int rows, int dim);
  /* dtable[ids[r], :] += dout[r, :] (deterministic). */
  void (*embed_bwd)(grpo_backend *be, float *dtable, const void *dout, int64_t lddo,
                    const int32_t *ids, int rows, int dim);

  /* ---- bias, residual, elementwise --------------------------------------- */
  /* y[r, c] += b[c] */
  void (*bias_add)(grpo_backend *be, void *y, int64_t ldy, const void *b, int rows, int cols);
  /* db[c] += sum_r dy[r, c] */
  void (*bias_grad)(grpo_backend *be, float *db, const void *dy, int64_t lddy, int rows, int cols);
  /* y = a + b (n elements; y may alias a or b) */
  void (*add)(grpo_backend *be, void *y, const void *a, const void *b, size_t n);
  /* y += alpha * x */
  void (*axpy)(grpo_backend *be, void *y, float alpha, const void *x, size_t n);
  /* x *= alpha (f32 buffer, e.g. gradients) */
  void (*scale)(grpo_backend *be, float *x, float alpha, size_t n);
  /* sum of x^2 over n f32 elements, accumulated in double; synchronises. */
  double (*sumsq)(grpo_backend *be, const float *x, size_t n);

  /* ---- fused classifier (lm_head + log-softmax + gather + entropy) --------- */
  size_t (*classifier_workspace)(grpo_backend *be, const grpo_classifier_shape *s);
  /* logprob[k] = z[target] - lse[k]; entropy[k] = lse - sum_v p_v z_v (NULL to
   * skip); lse[k] saved for the backward. All f32 [n]. */
  void (*classifier_fwd)(grpo_backend *be, const grpo_classifier_shape *s, float *logprob,
                         float *entropy, float *lse, void *ws, size_t ws_bytes);
  /* dlogprob [n] and optional dentropy [n] (NULL = 0): with z the scaled
   * logits, dz_raw = (1/temperature) (g (onehot - p) - ge p (z - (lse - H))).
   * dh (row stride lddh, row rows[k] or k) += dz_raw W; dw += dz_raw^T h.
   * Needs lse (and entropy when dentropy is given) from the forward. */
  void (*classifier_bwd)(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                         const float *entropy, const float *dlogprob, const float *dentropy,
                         void *dh, int64_t lddh, float *dw, void *ws, size_t ws_bytes);

  /* ---- optimizer --------------------------------------------------------- */
  /* One AdamW step on n f32 parameters with f32 gradients and moments. */
  void (*adamw)(grpo_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                const grpo_adamw_hparams *hp);
};

/* The CPU backend (a static singleton; never fails). */
grpo_backend *grpo_backend_cpu(void);

/* One line on the CPU backend as it runs here: the OpenBLAS build and the
 * core type it picked (results differ between kernels, so runs on two
 * machines can differ from the first step), the vector level of the
 * backend's own loops, and the OpenMP threads. */
void grpo_backend_cpu_describe(char *buf, size_t cap);

/* Fills inv_freq[hd/2] (host memory) like HF: theta^(-2j/hd) in f32, then,
 * when rope_type is "llama3", the Llama 3.1 band scaling with factor,
 * low_freq_factor, high_freq_factor and original_max_position_embeddings.
 * rope_type NULL or "default" = no scaling. Fails on an unknown rope_type or
 * an invalid value, naming it. */
typedef struct grpo_rope_scaling {
  const char *rope_type; /* NULL, "default" or "llama3" */
  double factor, low_freq_factor, high_freq_factor;
  double original_max_position_embeddings;
} grpo_rope_scaling;
int grpo_rope_inv_freq(float *inv_freq, int hd, double theta, const grpo_rope_scaling *scaling,
                       grpo_error *err);

/* Derived AdamW fields for 1-based step t. */
void grpo_adamw_prepare(grpo_adamw_hparams *hp, long t);

/* Per-element AdamW update shared by the CPU and CUDA backends. */
static inline GRPO_HD void grpo_adamw_elem(float *p, float g, float *m, float *v,
                                           const grpo_adamw_hparams *hp) {
  /* the order of torch's _single_tensor_adam: lerp, mul+addcmul, addcdiv */
  g *= hp->grad_scale;
  float mi = *m + hp->one_minus_beta1 * (g - *m);
  float vi = *v * hp->beta2_f + hp->one_minus_beta2 * g * g;
  *m = mi;
  *v = vi;
  float denom = sqrtf(vi) / hp->sqrt_bc2 + hp->eps_f;
  *p = *p * hp->decay - hp->step_size * (mi / denom);
}

#ifdef __cplusplus
}
#endif
#endif
