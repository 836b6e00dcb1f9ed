/* Built into grpo_core when the build has no CUDA: the sampling kernel's
 * launcher exists and fails cleanly (no CUDA backend can exist then). */
#include "core/cuda/sample_cuda.h"

#ifndef GRPO_HAVE_CUDA
int grpo_sample_cuda_launch(grpo_backend *be, const void *logits, grpo_dtype dtype, int64_t ld,
                            int n, int vocab, const grpo_sample_params *p, const double *u,
                            grpo_sample_result *out, grpo_error *err) {
  (void)be, (void)logits, (void)dtype, (void)ld, (void)n, (void)vocab, (void)p, (void)u, (void)out;
  return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "sampler: this build has no CUDA backend");
}
#else
typedef int grpo_sample_cuda_stub_unused; /* keeps the unit non-empty */
#endif
