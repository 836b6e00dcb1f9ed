#include "core/dtype.h"

#include <string.h>

size_t grpo_dtype_size(grpo_dtype t) {
  switch (t) {
    case GRPO_F32: return 4;
    case GRPO_BF16: return 2;
    case GRPO_F16: return 2;
    case GRPO_I32: return 4;
  }
  return 0;
}

static const char *const dtype_names[] = {"F32", "BF16", "F16", "I32"};

const char *grpo_dtype_name(grpo_dtype t) {
  if ((unsigned)t < sizeof dtype_names / sizeof dtype_names[0]) return dtype_names[t];
  return "?";
}

int grpo_dtype_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < (int)(sizeof dtype_names / sizeof dtype_names[0]); i++)
    if (strcmp(name, dtype_names[i]) == 0) return i;
  return -1;
}

void grpo_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) dst[i] = grpo_bf16_to_f32(src[i]);
}

void grpo_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) dst[i] = grpo_f32_to_bf16(src[i]);
}

void grpo_f16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) dst[i] = grpo_f16_to_f32(src[i]);
}

void grpo_f32_to_f16_n(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) dst[i] = grpo_f32_to_f16(src[i]);
}
