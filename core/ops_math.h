/* Per-element math shared by the CPU backend (core/backend_cpu*.c) and the
 * CUDA kernels (core/cuda/), so every CPU CI run exercises the formulas the
 * GPU runs. Each function keeps the exact operation order of the CPU
 * reference; the CPU build (-std=c11, no FMA contraction) gives the same bits
 * as before these were factored out. Device code may fuse a*b+c into FMA.
 * (The AdamW update, grpo_adamw_elem, lives in core/backend.h.) */
#ifndef GRPO_CORE_OPS_MATH_H
#define GRPO_CORE_OPS_MATH_H

#include <math.h>

#include "core/hd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- RMSNorm (HF: y = (x * rstd) * w) -------------------------------------- */
static inline GRPO_HD float grpo_rmsnorm_elem(float x, float rstd, float w) { return (x * rstd) * w; }

/* dx element with k = (sum_c dy_c w_c x_c) * rstd^3 / dim. */
static inline GRPO_HD float grpo_rmsnorm_dx_elem(float dy, float x, float w, float rstd, float k) {
  return rstd * w * dy - x * k;
}

/* ---- RoPE, rotate_half: (a, b) = (x[j], x[j + hd/2]); s carries the sign
 * (+sin forward, -sin for the backward's inverse rotation) ------------------- */
static inline GRPO_HD void grpo_rope_rotate(float *a, float *b, float c, float s) {
  float x = *a, y = *b;
  *a = x * c - y * s;
  *b = y * c + x * s;
}

/* ---- SwiGLU: out = silu(g) * u ------------------------------------------------ */
static inline GRPO_HD float grpo_sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

static inline GRPO_HD float grpo_swiglu_elem(float g, float u) {
  float sg = grpo_sigmoid(g);
  return g * sg * u;
}

/* d(out)/d(gate) and d(out)/d(up) times dout. */
static inline GRPO_HD void grpo_swiglu_bwd_elem(float dout, float g, float u, float *dgate,
                                                float *dup) {
  float sg = grpo_sigmoid(g);
  float silu = g * sg;
  *dup = dout * silu;
  *dgate = dout * u * sg * (1.0f + g * (1.0f - sg));
}

/* ---- attention mask: key j is visible to query i ------------------------------ */
static inline GRPO_HD int grpo_attn_visible(int tin_q, int tin_k, int tout_k) {
  return tin_k <= tin_q && tin_q <= tout_k;
}

/* ---- fused classifier: dlogit of one vocab entry (target term added apart) --
 * p = exp(z - lse); g = dlogprob/T, ge = dentropy/T, ez = lse - H. */
static inline GRPO_HD float grpo_cls_dlogit(float z, float lse, float g, float ge, float ez) {
  float p = expf(z - lse);
  return -g * p - ge * p * (z - ez);
}

#ifdef __cplusplus
}
#endif
#endif
