/* Private to core/sample.c: the CUDA sampling kernel (core/cuda/sample_cuda.cu;
 * without CUDA, sample_cuda_stub.c fails cleanly). */
#ifndef GRPO_CORE_CUDA_SAMPLE_CUDA_H
#define GRPO_CORE_CUDA_SAMPLE_CUDA_H

#include <stdint.h>

#include "core/sample.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enqueues the sampling of n rows on be's stream (be: the "cuda" backend).
 * Row i is logits + i*ld elements of dtype (GRPO_F32 or GRPO_BF16), its first
 * `vocab` entries the candidates; u: device [n] draws; out: device [n]
 * results. One block per row, no workspace beyond shared memory. Returns
 * GRPO_EIO when the launch fails; faults during the run surface at be->sync. */
int grpo_sample_cuda_launch(grpo_backend *be, const void *logits, grpo_dtype dtype, int64_t ld,
                            int n, int vocab, const grpo_sample_params *p, const double *u,
                            grpo_sample_result *out, grpo_error *err);

#ifdef __cplusplus
}
#endif
#endif
