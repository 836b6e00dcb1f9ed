/* The sampling rules of core/sample.h, written once for the host reference
 * (core/sample.c, and rollout/sampler.c through it) and the CUDA kernel
 * (core/cuda/sample_cuda.cu). Each keeps the exact operations of the
 * reference (double precision throughout), so the CPU build pins the
 * formulas the GPU runs.
 *
 * Vocabulary order: tokens sorted by scaled logit z, larger first, the lower
 * id first among equal values (grpo_sample_before). Every filter keeps a
 * prefix of that order:
 *   top-k  the first k tokens and every token equal to the k-th (ties kept);
 *   top-p  the smallest prefix whose mass reaches top_p: a token is dropped
 *          once the mass before it, over the total, is >= top_p (the first
 *          token always stays; the cut may fall inside a run of equal
 *          values: then the lower ids stay);
 *   min-p  tokens with z < zmax + log(min_p) dropped (the first stays).
 * With top-k, top-p and min-p apply to the top-k set (top-p renormalised
 * over it); without, all three are prefixes of the same order, so the
 * shortest wins. A draw u in [0, 1) then picks the first token whose
 * inclusive prefix mass exceeds u * total, walking the kept tokens in that
 * order; when no filter is active, walking the ids in ascending order
 * instead (the reference never sorts then). Greedy (T = 0): the first token
 * of the order, i.e. the lowest id among the maxima. */
#ifndef GRPO_CORE_SAMPLE_MATH_H
#define GRPO_CORE_SAMPLE_MATH_H

#include <math.h>
#include <stdint.h>

#include "core/hd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1/T, or 1 for greedy (T = 0: logprobs at T = 1). */
static inline GRPO_HD double grpo_sample_inv_t(float temperature) {
  return temperature > 0 ? 1.0 / temperature : 1.0;
}

/* The scaled logit z = logit / T (in double: distinct floats stay distinct
 * and keep their order, so the order of z is the order of the logits). */
static inline GRPO_HD double grpo_sample_scale(float logit, double inv_t) { return logit * inv_t; }

/* Unnormalised probability of a token: exp(z - zmax), in (0, 1]. */
static inline GRPO_HD double grpo_sample_weight(double z, double zmax) { return exp(z - zmax); }

/* Full-softmax statistics: adds one token to sum = sum exp(z - zmax) and
 * dot = sum exp(z - zmax) (z - zmax). A token of weight 0 (a masked -inf
 * logit) adds nothing to dot (the limit of e * d, not 0 * -inf = NaN). */
static inline GRPO_HD void grpo_sample_stats_add(double z, double zmax, double *sum, double *dot) {
  double d = z - zmax, e = exp(d);
  *sum += e;
  if (e > 0) *dot += e * d;
}

/* log softmax(z)[tok] from the statistics above. */
static inline GRPO_HD float grpo_sample_logprob(double z_tok, double zmax, double sum) {
  return (float)(z_tok - (zmax + log(sum)));
}

/* Entropy of the full softmax: log(sum) - dot / sum. */
static inline GRPO_HD float grpo_sample_entropy(double sum, double dot) {
  return (float)(log(sum) - dot / sum);
}

/* log-probability of tok under the filtered distribution of mass `total`
 * (in units of exp(z - zmax)). */
static inline GRPO_HD float grpo_sample_filtered_logprob(double z_tok, double zmax, double total) {
  return (float)((z_tok - zmax) - log(total));
}

/* The vocabulary order: token a (value za) comes before token b. */
static inline GRPO_HD int grpo_sample_before(double za, int32_t a, double zb, int32_t b) {
  return za > zb || (za == zb && a < b);
}

/* Which filters are on (a top-k of the whole vocabulary is off). */
static inline GRPO_HD int grpo_sample_use_topk(int top_k, int vocab) {
  return top_k > 0 && top_k < vocab;
}
static inline GRPO_HD int grpo_sample_use_topp(float top_p) { return top_p < 1.0f; }
static inline GRPO_HD int grpo_sample_use_minp(float min_p) { return min_p > 0.0f; }

/* top-k: the token at `rank` (0-based, in order) is dropped when rank >= k
 * and z is below kth, the value of rank k - 1. */
static inline GRPO_HD int grpo_sample_topk_drops(int64_t rank, int top_k, double z, double kth) {
  return rank >= top_k && z < kth;
}

/* top-p: the token at `rank` is dropped when the mass before it (prefix)
 * over total reaches top_p. Monotone in prefix. */
static inline GRPO_HD int grpo_sample_topp_drops(int64_t rank, double prefix, double total,
                                                 float top_p) {
  return rank > 0 && prefix / total >= top_p;
}

/* min-p: z below the threshold zmax + log(min_p) is dropped (rank > 0). */
static inline GRPO_HD double grpo_sample_minp_threshold(double zmax, float min_p) {
  return zmax + log((double)min_p);
}
static inline GRPO_HD int grpo_sample_minp_drops(int64_t rank, double z, double threshold) {
  return rank > 0 && z < threshold;
}

/* Inverse CDF: the drawn token is the first whose inclusive prefix mass acc
 * exceeds target = u * total; when rounding leaves none, the last kept one. */
static inline GRPO_HD double grpo_sample_cdf_target(double u, double total) { return u * total; }
static inline GRPO_HD int grpo_sample_cdf_hit(double acc, double target) { return acc > target; }

#ifdef __cplusplus
}
#endif
#endif
