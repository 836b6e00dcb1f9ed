/* The CUDA backend: the op table of core/backend.h on one NVIDIA GPU.
 *
 * Every op runs asynchronously on the backend's own stream, in call order;
 * errors of kernels, cuBLAS calls and in-kernel bounds checks (token ids,
 * targets, cache positions out of range) are deferred: the first one is kept
 * and be->sync (or the next copy/alloc) reports it.
 *
 * act_dtype (the type of `void *` tensor data): GRPO_F32 or GRPO_BF16.
 *  - F32: matmuls through cuBLAS (cublasGemmEx / cublasGemmStridedBatchedEx,
 *    fp32 accumulation, no TF32), so the f32 path matches the CPU reference
 *    to ~1e-5 relative.
 *  - BF16: every kernel loads bf16, computes in f32 and stores with round to
 *    nearest even. Matmuls go through cuBLASLt: bf16 operands, fp32
 *    accumulation and scalars, bf16 output for sgemm / sgemm_batched, f32
 *    output (+=) for gemm_wgrad; descriptors, layouts and the heuristic's
 *    algorithm are cached per shape, so a repeated step allocates nothing.
 *    RMSNorm, RoPE and SwiGLU forwards round where HF transformers casts
 *    (normalised x before the weight; cos/sin and each RoPE product; silu
 *    before the gate product). Reductions are f32: RMSNorm and softmax
 *    statistics, rstd, attention scores, softmax and lse, the classifier's
 *    logits tile, logprob / entropy / lse, and the parameter gradients of
 *    embed_bwd, rmsnorm_bwd, bias_grad and the classifier's dW. Attention
 *    casts P (and dS) to bf16 only as product operands and accumulates dK,
 *    dV in f32; plain causal packs try cuDNN SDPA first (attn_cudnn.h). The
 *    KV cache holds bf16. scale, sumsq and adamw work on f32 buffers in
 *    both modes.
 * Reductions are deterministic in both modes (fixed-order sums, one cached
 * algorithm per matmul shape, no atomics in sums).
 *
 * Call one backend's ops from one host thread at a time, the thread that
 * created it (or one that has made its device current).
 *
 * Scratch: ops that the table gives no workspace (the deterministic column
 * reductions of rmsnorm_bwd / bias_grad / sumsq, the sort behind embed_bwd and
 * the classifier's row scatter) use one internal buffer that grows to the
 * largest shape seen and then stays. Attention and the classifier use the
 * caller's workspace.
 *
 * Built only with GRPO_HAVE_CUDA; without it grpo_backend_cuda_create fails
 * with GRPO_EUNSUPPORTED (core/cuda/backend_cuda_stub.c). */
#ifndef GRPO_CORE_CUDA_BACKEND_CUDA_H
#define GRPO_CORE_CUDA_BACKEND_CUDA_H

#include <stddef.h>

#include "core/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct grpo_cuda_options {
  int device;                /* CUDA device ordinal (0 = first visible) */
  grpo_dtype act_dtype;      /* GRPO_F32 or GRPO_BF16 (others: GRPO_EUNSUPPORTED) */
  size_t attn_budget_bytes;  /* most bytes attn_workspace asks for (the
                                materialised score tiles); 0 = 1 GiB */
} grpo_cuda_options;

/* Creates a CUDA backend on opt->device (opt NULL = device 0, f32). Fails with
 * a message when there is no device, the dtype is unsupported, or CUDA /
 * cuBLAS cannot initialise. */
int grpo_backend_cuda_create(const grpo_cuda_options *opt, grpo_backend **out, grpo_error *err);

/* Waits for queued work and frees the backend (not the buffers it allocated:
 * free those first). NULL is a no-op. */
void grpo_backend_cuda_destroy(grpo_backend *be);

/* Number of visible CUDA devices; 0 without a device or driver (also in the
 * stub build). Same as grpo_cuda_device_count in core/cuda/device.h. */
int grpo_backend_cuda_device_count(void);

/* The backend's CUDA stream (a cudaStream_t) for libraries that enqueue
 * work in its order (NCCL); NULL for a non-CUDA backend or in the stub build. */
void *grpo_backend_cuda_stream(grpo_backend *be);

#ifdef __cplusplus
}
#endif
#endif
