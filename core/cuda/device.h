/* CUDA device discovery. Compiled only when the build has CUDA; callers test
 * GRPO_HAVE_CUDA. The full CUDA backend (issue: CUDA backend) grows here. */
#ifndef GRPO_CORE_CUDA_DEVICE_H
#define GRPO_CORE_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of visible CUDA devices; 0 when there is no device or driver. */
int grpo_cuda_device_count(void);

/* Runs a tiny kernel (y = a*x + y on n floats) and returns the max abs error
 * against the host result, or a negative value when no device is usable. */
double grpo_cuda_selftest(int n);

/* Visible device i: name, total memory and compute capability; nonzero when
 * it cannot be queried. */
int grpo_cuda_device_info(int i, char *name, size_t cap, size_t *total_bytes, int *cc_major,
                          int *cc_minor);

/* The CUDA libraries as loaded at run time, in their own encodings (e.g.
 * runtime 13000 = 13.0, cuDNN 91900 = 9.19.0, NCCL 22803 = 2.28.3); 0 for a
 * library the build lacks, and for the driver when there is none. */
typedef struct grpo_cuda_versions {
  int runtime, driver, cublas;
  long cudnn;
  int nccl;
} grpo_cuda_versions;
void grpo_cuda_library_versions(grpo_cuda_versions *v);

#ifdef __cplusplus
}
#endif
#endif
