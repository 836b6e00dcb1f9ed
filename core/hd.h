/* GRPO_HD marks small inline functions compiled for both host and device, so
 * the CPU build (and every CPU CI run) exercises the same per-element math the
 * CUDA kernels use. */
#ifndef GRPO_CORE_HD_H
#define GRPO_CORE_HD_H
#ifdef __CUDACC__
#define GRPO_HD __host__ __device__
#else
#define GRPO_HD
#endif
#endif
