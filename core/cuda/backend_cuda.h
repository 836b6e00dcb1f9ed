/* The CUDA backend: the op table of core/backend.h on one NVIDIA GPU.
 *
 * Every op runs asynchronously on the backend's own stream, in call order;
 * errors of kernels, cuBLAS calls and in-kernel bounds checks (token ids,
 * targets, cache positions out of range) are deferred: the first one is kept
 * and be->sync (or the next copy/alloc) reports it. Matmuls go through cuBLAS
 * (cublasGemmEx / cublasGemmStridedBatchedEx, fp32 accumulation, no TF32), so
 * the f32 path matches the CPU reference to ~1e-5 relative.
 *
 * act_dtype: GRPO_F32 is implemented; GRPO_BF16 activations are not yet
 * (create fails with GRPO_EUNSUPPORTED).
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
  grpo_dtype act_dtype;      /* GRPO_F32 (GRPO_BF16: not yet implemented) */
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

#ifdef __cplusplus
}
#endif
#endif
