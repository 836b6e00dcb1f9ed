#include "trainer/loss.h"

#include <math.h>
#include <stdlib.h>

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* KL value and d KL / d logp for delta = ref - logp. */
static void kl_term(trainer_kl kind, double logp, double ref, double *value, double *grad) {
  double d = ref - logp;
  switch (kind) {
    case TRAINER_KL_K1: *value = -d; *grad = 1.0; break;
    case TRAINER_KL_K2: *value = 0.5 * d * d; *grad = -d; break;
    case TRAINER_KL_K3: *value = exp(d) - d - 1.0; *grad = -exp(d) + 1.0; break;
    case TRAINER_KL_K3_PLUS: *value = exp(d) - d - 1.0; *grad = -d; break;
  }
}

double trainer_grpo_loss(const trainer_loss_options *opt, const trainer_loss_norm *norm,
                         const trainer_loss_batch *b, float *dlogp, float *dentropy,
                         trainer_loss_stats *stats) {
  /* bnpo's normaliser is this micro-batch's token count. */
  double local_tokens = 0;
  for (int i = 0; i < b->n_seq; i++)
    for (int t = b->seq_start[i]; t < b->seq_start[i + 1]; t++)
      local_tokens += b->mask ? b->mask[t] : 1.0;
  const double tok_norm = norm->n_tokens > 1.0 ? norm->n_tokens : 1.0;

  double total = 0;
  for (int i = 0; i < b->n_seq; i++) {
    const int t0 = b->seq_start[i], t1 = b->seq_start[i + 1];
    const double A = b->advantage[i];
    double seq_tokens = 0, seq_logdiff = 0;
    for (int t = t0; t < t1; t++) {
      double m = b->mask ? b->mask[t] : 1.0;
      seq_tokens += m;
      if (b->old_logp) seq_logdiff += m * ((double)b->logp[t] - b->old_logp[t]);
    }
    /* Weight of a token's loss term in the aggregate. */
    double agg;
    switch (opt->loss_type) {
      case TRAINER_LOSS_GRPO:
        agg = 1.0 / ((seq_tokens > 1.0 ? seq_tokens : 1.0) * (norm->n_seq > 1.0 ? norm->n_seq : 1.0));
        break;
      case TRAINER_LOSS_BNPO: agg = 1.0 / (local_tokens > 1.0 ? local_tokens : 1.0); break;
      case TRAINER_LOSS_DR_GRPO:
        agg = 1.0 / ((norm->n_seq > 1.0 ? norm->n_seq : 1.0) * opt->max_completion_length);
        break;
      default: agg = 1.0 / tok_norm; break;
    }
    /* Sequence-level ratio (GSPO): one w for all tokens, d w / d logp_t = w / |o|. */
    double seq_w = 0, seq_n = seq_tokens > 1.0 ? seq_tokens : 1.0;
    if (opt->sequence_level_is) seq_w = exp(seq_logdiff / seq_n);
    double dseq = 0; /* accumulated d loss / d log w_seq */

    for (int t = t0; t < t1; t++) {
      double m = b->mask ? b->mask[t] : 1.0;
      dlogp[t] = 0.0f;
      if (dentropy) dentropy[t] = 0.0f;
      if (m == 0.0) continue;
      double logp = b->logp[t];
      double old = b->old_logp ? b->old_logp[t] : logp;
      double w = opt->sequence_level_is ? seq_w : exp(logp - old);
      /* d l / d log w, via the branch that is active */
      double wc = w;
      int capped = 0;
      if (opt->delta > 0 && wc > opt->delta) wc = opt->delta, capped = 1;
      double l1 = -wc * A;
      double w2 = clampd(w, 1.0 - opt->epsilon_low, 1.0 + opt->epsilon_high);
      double l2 = -w2 * A;
      double l, dl_dlogw;
      if (l1 >= l2) { /* -min(a, b) = max(-a, -b) */
        l = l1;
        dl_dlogw = capped ? 0.0 : -w * A;
      } else {
        l = l2;
        dl_dlogw = (w2 == w) ? -w * A : 0.0;
      }
      if (opt->dual_clip_c > 1.0f && A < 0) {
        double l3 = -A * opt->dual_clip_c;
        if (l3 < l) {
          l = l3;
          dl_dlogw = 0.0;
        }
      }
      double isw = b->is_weight ? b->is_weight[t] : 1.0;
      if (b->term_mask) isw *= b->term_mask[t];
      l *= isw;
      dl_dlogw *= isw;
      double dl_dlogp_direct = 0.0;
      double kl_v = 0, kl_g = 0;
      if (opt->beta != 0.0f) {
        kl_term(opt->kl, logp, b->ref_logp[t], &kl_v, &kl_g);
        double kl_scale = opt->kl_bias_correction ? w : 1.0;
        l += opt->beta * kl_v * kl_scale;
        dl_dlogp_direct += opt->beta * kl_g * kl_scale;
        if (opt->kl_bias_correction) dl_dlogw += opt->beta * kl_v * w;
        stats->kl_sum += m * kl_v * kl_scale;
      }
      double g;
      if (opt->sequence_level_is) {
        dseq += m * agg * dl_dlogw;
        g = dl_dlogp_direct;
      } else {
        g = dl_dlogw + dl_dlogp_direct;
      }
      total += m * agg * l;
      dlogp[t] = (float)(m * agg * g);
      stats->policy_loss += m * agg * (l - opt->beta * kl_v * (opt->kl_bias_correction ? w : 1.0));
      stats->tokens += m;
      stats->ratio_sum += m * w;
      if (!opt->sequence_level_is) {
        int low = w < 1.0 - opt->epsilon_low && A < 0, high = w > 1.0 + opt->epsilon_high && A > 0;
        stats->clip_low += m * low;
        stats->clip_high += m * high;
        stats->clip_region += m * (low || high);
        stats->clip_count += m;
      }
      if (b->entropy) {
        stats->entropy_sum += m * b->entropy[t];
        if (opt->entropy_coef != 0.0f) {
          total -= opt->entropy_coef * m * b->entropy[t] / tok_norm;
          if (dentropy) dentropy[t] = (float)(-opt->entropy_coef * m / tok_norm);
        }
      }
    }
    if (opt->sequence_level_is && seq_tokens > 0) { /* one ratio, counted once per sequence */
      int low = seq_w < 1.0 - opt->epsilon_low && A < 0, high = seq_w > 1.0 + opt->epsilon_high && A > 0;
      stats->clip_low += low;
      stats->clip_high += high;
      stats->clip_region += low || high;
      stats->clip_count += 1;
    }
    if (opt->sequence_level_is && dseq != 0.0)
      for (int t = t0; t < t1; t++) {
        double m = b->mask ? b->mask[t] : 1.0;
        dlogp[t] += (float)(dseq * m / seq_n);
      }
  }
  return total;
}

void trainer_is_weights(trainer_is_mode mode, float clip_min, float clip_max, int n_seq,
                        const int *seq_start, const float *old_logp, const float *sampler_logp,
                        const float *mask, float *weight) {
  const int sequence = mode == TRAINER_IS_SEQUENCE_MASK || mode == TRAINER_IS_SEQUENCE_TRUNCATE;
  const int truncate = mode == TRAINER_IS_TOKEN_TRUNCATE || mode == TRAINER_IS_SEQUENCE_TRUNCATE;
  for (int i = 0; i < n_seq; i++) {
    double seq_delta = 0;
    for (int t = seq_start[i]; t < seq_start[i + 1]; t++) {
      double m = mask ? mask[t] : 1.0;
      double d = m * ((double)old_logp[t] - sampler_logp[t]);
      if (isnan(d)) d = 0.0;
      seq_delta += d;
      weight[t] = (float)d; /* the token delta, turned into a weight below */
    }
    for (int t = seq_start[i]; t < seq_start[i + 1]; t++) {
      double w = exp(sequence ? seq_delta : (double)weight[t]);
      if (truncate)
        w = clampd(w, clip_min, clip_max);
      else if (w < clip_min || w > clip_max)
        w = 0.0;
      weight[t] = (float)w;
    }
  }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

float trainer_entropy_threshold(float *values, size_t n, double top) {
  if (n == 0) return -INFINITY;
  qsort(values, n, sizeof *values, cmp_float);
  double pos = (1.0 - top) * (double)(n - 1);
  size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
  return (float)(values[lo] + (values[hi] - values[lo]) * (pos - (double)lo));
}
