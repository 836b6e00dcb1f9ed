/* Built into grpo_core when the build has no CUDA: the CUDA backend entry
 * points exist and fail cleanly, so callers need no #ifdef. */
#include "core/cuda/backend_cuda.h"

#ifndef GRPO_HAVE_CUDA
int grpo_backend_cuda_create(const grpo_cuda_options *opt, grpo_backend **out, grpo_error *err) {
  (void)opt;
  *out = NULL;
  return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                   "model.device: cuda needs a build with the CUDA backend (configure with "
                   "-DGRPO_CUDA=ON; this build has none)");
}

void grpo_backend_cuda_destroy(grpo_backend *be) { (void)be; }

int grpo_backend_cuda_device_count(void) { return 0; }

void *grpo_backend_cuda_stream(grpo_backend *be) {
  (void)be;
  return NULL;
}
#else
typedef int grpo_backend_cuda_stub_unused; /* keeps the unit non-empty */
#endif
