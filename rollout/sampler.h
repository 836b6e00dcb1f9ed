/* Token sampling with Hugging Face generate() semantics, keyed by Philox.
 *
 * Order (as transformers applies its logits processors): repetition penalty
 * on the raw logits of every token id already in the sequence (prompt
 * included; logit / p when positive, logit * p otherwise), then temperature,
 * top-k (ties with the k-th value kept), top-p (the smallest set of most
 * likely tokens whose mass reaches top_p, at least one), min-p (tokens with
 * probability below min_p times the most likely one removed). temperature 0
 * is greedy decoding (the lowest id among equal maxima).
 *
 * The draw u in [0, 1) comes from Philox keyed by (seed, step, prompt index,
 * sample index, token index) (rollout_sampler_uniform), so a completion does
 * not depend on the batch layout, the slot it ran in, or the rank count.
 *
 * Two log-probabilities are reported for the sampled token:
 *   logprob          log softmax(raw logits / T)[token]: the full-vocabulary
 *                    distribution at the sampling temperature, before the
 *                    penalty and before any truncation. It is what the
 *                    trainer's forward pass computes, so old/new ratios are
 *                    consistent (T = 1 for greedy).
 *   sampler_logprob  log-probability under the filtered distribution the
 *                    token was actually drawn from (for rollout importance
 *                    correction and debugging).
 *
 * The filters and the draw are core's reference (core/sample.h, rules in
 * core/sample_math.h, shared with the CUDA sampler); this file adds the
 * repetition penalty, which needs the sequence history.
 */
#ifndef GRPO_ROLLOUT_SAMPLER_H
#define GRPO_ROLLOUT_SAMPLER_H

#include <stdint.h>

#include "core/error.h"
#include "core/sample.h"

typedef struct rollout_sampling {
  float temperature;        /* 0 = greedy */
  float top_p;              /* 1 = off */
  int top_k;                /* 0 = off */
  float min_p;              /* 0 = off */
  float repetition_penalty; /* 1 = off */
} rollout_sampling;

/* The filter settings for core/sample.h (everything but the penalty). */
void rollout_sampling_params(const rollout_sampling *s, grpo_sample_params *p);

/* Defaults of TRL / transformers: T 1, top_p 1, top_k 0, min_p 0, penalty 1. */
void rollout_sampling_defaults(rollout_sampling *s);
/* Range checks with messages that name the field. */
int rollout_sampling_validate(const rollout_sampling *s, grpo_error *err);

/* Scratch for one sampling thread, sized for a vocabulary once. */
typedef struct rollout_sampler_ws {
  int vocab;
  double *z;       /* [vocab] processed logits */
  int32_t *heap;   /* [vocab] candidate order */
  uint8_t *seen;   /* [vocab] repetition-penalty marks */
} rollout_sampler_ws;

int rollout_sampler_ws_init(rollout_sampler_ws *ws, int vocab, grpo_error *err);
void rollout_sampler_ws_free(rollout_sampler_ws *ws);

/* token, logprob (full softmax at the temperature, see above),
 * sampler_logprob (filtered), entropy (full softmax at the temperature) */
typedef grpo_sample_result rollout_sample_result;

/* Samples from logits[0..vocab) (vocab <= ws->vocab: pass the tokenizer's
 * size so padding rows of the embedding are never drawn). history: token ids
 * of the sequence so far (for the repetition penalty; may be NULL). */
void rollout_sample(const float *logits, int vocab, const rollout_sampling *s,
                    const int32_t *history, int n_history, double u, rollout_sampler_ws *ws,
                    rollout_sample_result *out);

/* The filtered distribution itself (probabilities over vocab, zeros for
 * removed tokens), for tests and diagnostics. Greedy puts 1 on the argmax. */
void rollout_sampler_distribution(const float *logits, int vocab, const rollout_sampling *s,
                                  const int32_t *history, int n_history, rollout_sampler_ws *ws,
                                  double *probs);

/* The draw for (seed, step, prompt, sample, token), 53 bits. */
double rollout_sampler_uniform(uint64_t seed, uint32_t step, uint32_t prompt, uint32_t sample,
                               uint32_t token);

#endif
