/* The GRPO-family policy loss over completion tokens, and its gradient with
 * respect to each token's log-probability (what the model's backward takes).
 *
 * Per token (TRL GRPOTrainer._compute_loss, verl compute_policy_loss):
 *   w      = exp(logp - old_logp)                 (token level), or
 *            exp(mean_t(logp - old_logp))          (sequence level, GSPO)
 *   l      = -min(w A, clip(w, 1-eps_low, 1+eps_high) A)     (w capped at delta first when set)
 *   l      = min(l, -A c)  when A < 0 and dual_clip_c > 1     (dual clip)
 *   l     *= is_weight                              (rollout/trainer mismatch correction)
 *   l     += beta * KL(logp, ref_logp)              (k1 | k2 | k3 | k3+; times w when kl_bias_correction)
 * Aggregation (loss_type), with normalisers that are GLOBAL over every rank
 * and micro-batch so the gradient does not depend on how the batch is split:
 *   grpo     sum_i (1/|o_i|) sum_t l / N_seq
 *   bnpo     sum l / (tokens of this micro-batch)        (by definition local)
 *   dr_grpo  sum l / (N_seq * max_completion_length)
 *   dapo     sum l / N_tokens
 * Entropy bonus: loss -= entropy_coef * sum_t H / N_tokens.
 *
 * Each call handles one micro-batch and returns its share of the global loss
 * (shares add up across ranks and micro-batches). */
#ifndef GRPO_TRAINER_LOSS_H
#define GRPO_TRAINER_LOSS_H

#include <stddef.h>

typedef enum trainer_loss_type {
  TRAINER_LOSS_GRPO = 0,
  TRAINER_LOSS_BNPO = 1,
  TRAINER_LOSS_DR_GRPO = 2,
  TRAINER_LOSS_DAPO = 3,
} trainer_loss_type;

typedef enum trainer_kl {
  TRAINER_KL_K1 = 0,
  TRAINER_KL_K2 = 1,
  TRAINER_KL_K3 = 2,
  TRAINER_KL_K3_PLUS = 3, /* k3 value, k2 gradient (straight-through) */
} trainer_kl;

typedef enum trainer_is_mode {
  TRAINER_IS_TOKEN_TRUNCATE = 0,
  TRAINER_IS_TOKEN_MASK = 1,
  TRAINER_IS_SEQUENCE_TRUNCATE = 2,
  TRAINER_IS_SEQUENCE_MASK = 3,
} trainer_is_mode;

typedef struct trainer_loss_options {
  trainer_loss_type loss_type;
  float epsilon_low, epsilon_high;
  float delta;           /* > 0: cap the ratio at delta before clipping (TRL two-sided clip) */
  float dual_clip_c;     /* > 1: dual clip (verl clip_ratio_c) */
  int sequence_level_is; /* importance_sampling_level: 0 token, 1 sequence */
  float beta;            /* KL coefficient; 0 skips KL (no reference needed) */
  trainer_kl kl;
  int kl_bias_correction;/* multiply the KL by the ratio (TRL use_bias_correction_kl) */
  float entropy_coef;
  int max_completion_length; /* dr_grpo normaliser */
} trainer_loss_options;

/* Global counts, all-reduced over ranks and micro-batches before any call. */
typedef struct trainer_loss_norm {
  double n_seq;      /* completions in the optimizer step */
  double n_tokens;   /* active (mask > 0) completion tokens in the step */
} trainer_loss_norm;

/* One micro-batch: n_seq completions, sequence i owning tokens
 * [seq_start[i], seq_start[i+1]) of the flat per-token arrays. */
typedef struct trainer_loss_batch {
  int n_seq;
  const int *seq_start;      /* [n_seq + 1] */
  const float *advantage;    /* [n_seq] */
  const float *logp;         /* current policy */
  const float *old_logp;     /* policy that sampled (NULL: on-policy, = logp) */
  const float *ref_logp;     /* reference policy (needed when beta > 0) */
  const float *is_weight;    /* rollout correction weight per token (NULL: 1) */
  const float *entropy;      /* per token (NULL: no entropy bonus or metric) */
  const float *mask;         /* per token, 0 or 1 (NULL: all 1) */
  /* per token: 0 drops the token's policy term (not its KL term) but keeps
   * it in every normaliser, as TRL's top_entropy_quantile mask does; NULL: all 1 */
  const float *term_mask;
} trainer_loss_batch;

/* trainer.top_entropy_quantile: the entropy a token needs to keep its
 * policy term, the (1 - top) quantile of values[0..n) interpolated linearly
 * as torch.quantile does (TRL's get_high_entropy_mask). Sorts values in
 * place; -inf when n is 0. */
float trainer_entropy_threshold(float *values, size_t n, double top);

/* Sums for the step's metrics (add across micro-batches and ranks, then
 * divide by the token count). */
typedef struct trainer_loss_stats {
  double tokens;           /* active tokens */
  double kl_sum;           /* sum of per-token KL (beta > 0; times the ratio with kl_bias_correction) */
  double entropy_sum;
  double clip_low, clip_high, clip_region; /* TRL clip_ratio/{low,high,region}_mean numerators */
  double clip_count;       /* their denominator: tokens, or sequences at sequence level */
  double ratio_sum;
  double policy_loss;      /* loss without KL and entropy terms */
} trainer_loss_stats;

/* Returns this micro-batch's share of the loss; writes dlogp[t] = d loss /
 * d logp[t] for every token (0 where masked) and, when entropy_coef != 0,
 * dentropy[t] (may be NULL otherwise). stats are accumulated (+=). */
double trainer_grpo_loss(const trainer_loss_options *opt, const trainer_loss_norm *norm,
                         const trainer_loss_batch *b, float *dlogp, float *dentropy,
                         trainer_loss_stats *stats);

/* Rollout importance-sampling weights (TRL vllm_importance_sampling_*):
 * delta_t = old_logp - sampler_logp on active tokens; token modes use
 * exp(delta_t), sequence modes exp(sum_t delta_t) for every token of the
 * sequence; *_truncate clamps to [clip_min, clip_max], *_mask zeroes weights
 * outside it. NaN sampler log-probs count as delta 0. */
void trainer_is_weights(trainer_is_mode mode, float clip_min, float clip_max, int n_seq,
                        const int *seq_start, const float *old_logp, const float *sampler_logp,
                        const float *mask, float *weight);

#endif
