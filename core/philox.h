/* Philox4x32-10 counter-based RNG (Salmon et al., SC'11; Random123).
 *
 * A draw is a pure function of (key, counter), so the same seed gives the same
 * samples whatever the batch layout, slot count or number of MPI ranks. grpo
 * keys every draw by (seed, purpose) and counts by (step, a, b, c), e.g.
 * sampling uses (step, prompt index, sample index, token index). */
#ifndef GRPO_CORE_PHILOX_H
#define GRPO_CORE_PHILOX_H

#include <stdint.h>

#include "core/hd.h"

/* Streams that must never share draws. */
enum grpo_rng_purpose {
  GRPO_RNG_SAMPLING = 1,
  GRPO_RNG_DATA = 2,     /* dataset shuffling */
  GRPO_RNG_INIT = 3,     /* weight initialisation */
  GRPO_RNG_VERIFY = 4,   /* random evaluation points in the verifier */
  GRPO_RNG_TASK = 5,     /* synthetic task generators */
  GRPO_RNG_TEST = 15,
};

static inline GRPO_HD void grpo_philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2],
                                              uint32_t out[4]) {
  uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
  uint32_t k0 = key_in[0], k1 = key_in[1];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* Four independent 32-bit words for draw (seed, purpose; step, a, b, c). */
static inline GRPO_HD void grpo_rng_u32x4(uint64_t seed, uint32_t purpose, uint32_t step,
                                          uint32_t a, uint32_t b, uint32_t c, uint32_t out[4]) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ (purpose * 0x85EBCA6Bu)};
  const uint32_t ctr[4] = {c, b, a, step};
  grpo_philox4x32_10(ctr, key, out);
}

/* 32-bit word -> float in [0, 1), 24 bits of mantissa, never 1.0f. */
static inline GRPO_HD float grpo_rng_u32_to_unit(uint32_t x) {
  return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* 2 x 32-bit words -> double in [0, 1), 53 bits. */
static inline GRPO_HD double grpo_rng_u64_to_unit(uint32_t hi, uint32_t lo) {
  uint64_t v = ((uint64_t)hi << 32 | lo) >> 11;
  return (double)v * (1.0 / 9007199254740992.0);
}

static inline GRPO_HD float grpo_rng_uniform(uint64_t seed, uint32_t purpose, uint32_t step,
                                             uint32_t a, uint32_t b, uint32_t c) {
  uint32_t w[4];
  grpo_rng_u32x4(seed, purpose, step, a, b, c, w);
  return grpo_rng_u32_to_unit(w[0]);
}

/* A sequential stream over one (seed, purpose, a, b) for host code that needs
 * many draws (shuffles, initialisation): the counter's last word advances. */
typedef struct grpo_rng_stream {
  uint64_t seed;
  uint32_t purpose, a, b;
  uint32_t counter;   /* next block */
  uint32_t buf[4];
  int used;           /* words of buf consumed; 4 = empty */
} grpo_rng_stream;

static inline void grpo_rng_stream_init(grpo_rng_stream *s, uint64_t seed, uint32_t purpose,
                                        uint32_t a, uint32_t b) {
  s->seed = seed;
  s->purpose = purpose;
  s->a = a;
  s->b = b;
  s->counter = 0;
  s->used = 4;
}

static inline uint32_t grpo_rng_stream_u32(grpo_rng_stream *s) {
  if (s->used == 4) {
    grpo_rng_u32x4(s->seed, s->purpose, 0xFFFFFFFFu, s->a, s->b, s->counter++, s->buf);
    s->used = 0;
  }
  return s->buf[s->used++];
}

static inline double grpo_rng_stream_unit(grpo_rng_stream *s) {
  uint32_t hi = grpo_rng_stream_u32(s);
  return grpo_rng_u64_to_unit(hi, grpo_rng_stream_u32(s));
}

/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
static inline uint32_t grpo_rng_stream_below(grpo_rng_stream *s, uint32_t n) {
  uint32_t limit = (uint32_t)(-n) % n; /* 2^32 mod n */
  for (;;) {
    uint32_t x = grpo_rng_stream_u32(s);
    if (x >= limit) return x % n;
  }
}

/* Standard normal by Box-Muller (for weight initialisation). */
double grpo_rng_stream_normal(grpo_rng_stream *s);

#endif
