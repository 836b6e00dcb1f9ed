/* Element types of tensors and the scalar conversions between them.
 *
 * CPU computes in f32; bf16/f16 exist for loading and saving checkpoints (and
 * for CUDA activations). Conversions to the narrow types round to nearest,
 * ties to even, like torch's .to(bfloat16); NaN stays NaN. */
#ifndef GRPO_CORE_DTYPE_H
#define GRPO_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/hd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum grpo_dtype {
  GRPO_F32 = 0,
  GRPO_BF16 = 1,
  GRPO_F16 = 2,
  GRPO_I32 = 3,
} grpo_dtype;

/* Bytes per element (0 for an unknown value). */
size_t grpo_dtype_size(grpo_dtype t);
/* "F32", "BF16", "F16", "I32" (the safetensors spellings); "?" otherwise. */
const char *grpo_dtype_name(grpo_dtype t);
/* Parses a safetensors dtype string; returns -1 when unknown. */
int grpo_dtype_parse(const char *name);

static inline GRPO_HD uint32_t grpo_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline GRPO_HD float grpo_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline GRPO_HD float grpo_bf16_to_f32(uint16_t h) { return grpo_bits_f32((uint32_t)h << 16); }

static inline GRPO_HD uint16_t grpo_f32_to_bf16(float f) {
  uint32_t u = grpo_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even; overflow carries to Inf */
  return (uint16_t)(u >> 16);
}

static inline GRPO_HD float grpo_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return grpo_bits_f32(sign | 0x7f800000u | (man << 13)); /* Inf/NaN */
  if (exp == 0) {
    /* subnormal (or zero): man * 2^-24, exact in f32 */
    float v = (float)man * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return grpo_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline GRPO_HD uint16_t grpo_f32_to_f16(float f) {
  uint32_t u = grpo_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* NaN */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65536: Inf */
  if (a < 0x38800000u) {
    /* f16 subnormal range (|f| < 2^-14): round a * 2^24 to an integer, RNE */
    if (a < 0x33000000u) return sign; /* < 2^-25 rounds to zero */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* value = m * 2^(e-150); want m * 2^(e-150+24) */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  /* normal: rebias exponent, round 13 dropped bits to nearest even */
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  r -= 0x38000000u; /* exponent 127 -> 15 */
  return (uint16_t)(sign | (r >> 13));
}

/* Bulk conversions between host buffers of n elements (OpenMP-parallel). */
void grpo_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);
void grpo_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n);
void grpo_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);
void grpo_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);

#ifdef __cplusplus
}
#endif
#endif
