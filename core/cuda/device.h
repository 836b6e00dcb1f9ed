/* CUDA device discovery. Compiled only when the build has CUDA; callers test
 * GRPO_HAVE_CUDA. The full CUDA backend (issue: CUDA backend) grows here. */
#ifndef GRPO_CORE_CUDA_DEVICE_H
#define GRPO_CORE_CUDA_DEVICE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of visible CUDA devices; 0 when there is no device or driver. */
int grpo_cuda_device_count(void);

/* Runs a tiny kernel (y = a*x + y on n floats) and returns the max abs error
 * against the host result, or a negative value when no device is usable. */
double grpo_cuda_selftest(int n);

#ifdef __cplusplus
}
#endif
#endif
