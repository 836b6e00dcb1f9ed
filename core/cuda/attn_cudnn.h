/* cuDNN SDPA (flash attention forward and backward) for plain causal packs in
 * bf16, through the cuDNN backend API. Private to the CUDA backend: the
 * attention ops of backend_cuda_attn.cu try it first and fall back to their
 * cuBLAS + masked-softmax path when it declines.
 *
 * It serves a shape when the build has cuDNN (GRPO_HAVE_CUDNN), the runtime
 * cuDNN is 9.6 or later (not 9.10.0/9.10.1), the device is sm_90 (Hopper),
 * activations are bf16, s->n_seg > 0 (plain causal segments, core/backend.h,
 * with max_seg the true longest segment), the head dim is a multiple of 8 and
 * <= 256, nh % nkv == 0, every row stride is a multiple of 8 elements and
 * every pointer (q, k, v, out, dout, dq, dk, dv, ws) is 16-byte aligned, and
 * the workspace holds what the plan needs (cu_cudnn_attn_workspace bounds
 * it). Plans are built once per (forward/backward, segment count and longest
 * segment rounded up to a bucket, heads, hd, strides) and cached; a plan that
 * cannot be built or run is reported once on the log (core/log.h, WARN), the
 * shape is remembered as unsupported and the op falls back; a decline leaves
 * no deferred error and writes no output (only when cudnnBackendExecute itself
 * fails may it have written part of them; the fallback then rewrites all).
 * Errors of launched work go through cu_fail like every op.
 * Outputs are exactly those of the fallback: out [T, nh, hd] (row stride ldo)
 * and lse [nh, T] f32 (natural log of the scaled scores' sum-exp), so a
 * forward by one path and a backward by the other agree. The backward is
 * deterministic (engines with cuDNN's NONDETERMINISTIC note are skipped);
 * dq, dk, dv are written (=).
 *
 * GRPO_CUDNN_ATTN (environment, read once per backend): "0" or "off" turns
 * the path off; "nondet" lets the backward use cuDNN's non-deterministic
 * form (an f32 dQ accumulator), which needs less workspace on long packs. */
#ifndef GRPO_CORE_CUDA_ATTN_CUDNN_H
#define GRPO_CORE_CUDA_ATTN_CUDNN_H

#include "core/cuda/cuda_internal.cuh"

/* Workspace bytes the cuDNN path may ask of attn_workspace (0 when it never
 * serves this shape): its own buffers for T tokens, plus cuDNN's workspace
 * for the deterministic backward of one segment of length T (nh * T'^2 * 2
 * bytes, T' = T rounded up to its bucket and to 64), at most 256 MiB. A backward whose
 * pack needs more runs in chunks of segments; a call where not even one
 * segment fits is declined. */
size_t cu_cudnn_attn_workspace(cuda_impl *I, int T, int nh, int nkv, int hd);

/* 1: ran (outputs written, stream-ordered); 0: declined, nothing written. */
int cu_cudnn_attn_fwd(cuda_impl *I, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse, void *ws,
                      size_t ws_bytes);
int cu_cudnn_attn_bwd(cuda_impl *I, const grpo_attn_shape *s, const void *out, int64_t ldo, const float *lse,
                      const void *dout, int64_t lddo, void *dq, void *dk, void *dv, void *ws,
                      size_t ws_bytes);

/* Frees the handle and cached plans (backend destroy). */
void cu_cudnn_release(cuda_impl *I);

/* For tests (tests/gpu/test_gpu_cudnn_attn.c declares them again, as C): the
 * hooks above on a CUDA backend, and what the path did. available: 1 when
 * this backend would serve shapes (cuDNN build, runtime and device as above,
 * bf16 activations); version: cudnnGetVersion() (0 without cuDNN). stats:
 * plans built, and forward / backward calls served so far. */
extern "C" {
int grpo_cuda_cudnn_attn_available(grpo_backend *be, int *version);
size_t grpo_cuda_cudnn_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd);
int grpo_cuda_cudnn_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                             void *ws, size_t ws_bytes);
int grpo_cuda_cudnn_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                             const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                             void *ws, size_t ws_bytes);
void grpo_cuda_cudnn_attn_stats(grpo_backend *be, long *plans_built, long *served_fwd, long *served_bwd);
}

#endif
