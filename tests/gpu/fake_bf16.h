/* A bf16 stand-in device for tests without a GPU.
 *
 * It reports kind GRPO_DEVICE_CUDA and act_dtype GRPO_BF16 and keeps
 * activations, working weights and the KV cache as real bf16 in its own
 * (host) memory, so every byte offset, element size, dtype conversion and
 * host/device sync point of the model's bf16 path is exercised. Each compute
 * op widens its bf16 operands to f32 shadows, runs the CPU reference op on
 * them, and rounds its bf16 outputs back (round to nearest even): the
 * numerics of a bf16 device whose kernels compute in f32, as the CUDA
 * backend's do. f32 buffers (statistics, gradients, optimizer state) are
 * used as they are. Slow (whole spans convert per op): for tiny models. */
#ifndef GRPO_TESTS_FAKE_BF16_H
#define GRPO_TESTS_FAKE_BF16_H

#include "core/backend.h"

/* The singleton stand-in (created on first call). */
grpo_backend *fake_bf16_backend(void);

/* Device allocations currently live (leak checks). */
int fake_bf16_live_allocations(void);

#endif
