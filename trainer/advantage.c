#include "trainer/advantage.h"

#include <math.h>
#include <string.h>

/* Mean and std over the non-NaN entries of x[0..n) with stride. */
static void nan_moments(const double *x, int n, int stride, trainer_std kind, double *mean,
                        double *std, int *count) {
  double s = 0;
  int c = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(x[i * stride])) {
      s += x[i * stride];
      c++;
    }
  *count = c;
  *mean = c ? s / c : NAN;
  double ss = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(x[i * stride])) {
      double d = x[i * stride] - *mean;
      ss += d * d;
    }
  int dof = kind == TRAINER_STD_UNBIASED ? c - 1 : c;
  *std = dof > 0 ? sqrt(ss / dof) : (c > 0 ? 0.0 : NAN);
}

/* x / d, with 0 when d is 0 (eps = 0 and equal rewards: no signal, not NaN). */
static double safe_div(double x, double d) { return d > 0 ? x / d : 0.0; }

int trainer_group_is_degenerate(const float *r, int G) {
  int seen = 0;
  float first = 0;
  for (int i = 0; i < G; i++) {
    if (isnan(r[i])) continue;
    if (!seen) {
      first = r[i];
      seen = 1;
    } else if (r[i] != first) {
      return 0;
    }
  }
  return 1;
}

double trainer_total_reward(const float *rewards, const float *weights, int n_funcs) {
  int any = 0;
  double s = 0;
  for (int k = 0; k < n_funcs; k++)
    if (!isnan(rewards[k])) {
      s += (double)weights[k] * rewards[k];
      any = 1;
    }
  return any ? s : NAN;
}

void trainer_advantages(const float *rewards, int n_groups, int G, int n_funcs,
                        const float *weights, const trainer_adv_options *opt, float *total,
                        float *adv, double *scratch, trainer_adv_stats *stats) {
  const int n = n_groups * G;
  double *r = scratch;           /* [n] aggregated reward */
  double *norm = scratch + n;    /* [n, n_funcs] per-function normalised (normalize_then_sum) */
  memset(stats, 0, sizeof *stats);
  for (int i = 0; i < n; i++) {
    r[i] = trainer_total_reward(rewards + (size_t)i * n_funcs, weights, n_funcs);
    if (isnan(r[i])) stats->n_unscorable++;
  }
  if (opt->aggregation == TRAINER_NORMALIZE_THEN_SUM) {
    /* Each function normalised within its group first (GDPO). */
    for (int g = 0; g < n_groups; g++)
      for (int k = 0; k < n_funcs; k++) {
        double *col = norm + (size_t)g * G * n_funcs + k;
        for (int i = 0; i < G; i++) col[(size_t)i * n_funcs] = rewards[(size_t)(g * G + i) * n_funcs + k];
        double mean, std;
        int c;
        nan_moments(col, G, n_funcs, opt->std_kind, &mean, &std, &c);
        if (!(std >= 0)) std = 0;
        for (int i = 0; i < G; i++)
          col[(size_t)i * n_funcs] = safe_div(col[(size_t)i * n_funcs] - mean, std + opt->eps);
      }
    for (int i = 0; i < n; i++) {
      if (isnan(r[i])) continue;
      double s = 0;
      for (int k = 0; k < n_funcs; k++) {
        double v = norm[(size_t)i * n_funcs + k];
        if (!isnan(v)) s += (double)weights[k] * v;
      }
      r[i] = s;
    }
  }

  /* Batch statistics (also the reward / reward_std metrics). */
  double bmean, bstd;
  int bcount;
  nan_moments(r, n, 1, opt->std_kind, &bmean, &bstd, &bcount);
  stats->reward_mean = bcount ? bmean : 0.0;
  stats->reward_std = bcount > 1 ? bstd : 0.0;

  int zero_std_groups = 0;
  for (int g = 0; g < n_groups; g++) {
    double gmean, gstd;
    int gcount;
    nan_moments(r + g * G, G, 1, opt->std_kind, &gmean, &gstd, &gcount);
    if (gcount < 2 || !(gstd > 1e-8)) zero_std_groups++; /* TRL: isclose(std, 0) */
    for (int i = 0; i < G; i++) {
      int s = g * G + i;
      if (total) total[s] = (float)r[s];
      if (isnan(r[s])) {
        adv[s] = 0.0f;
        continue;
      }
      double a;
      if (opt->aggregation == TRAINER_NORMALIZE_THEN_SUM) {
        a = safe_div(r[s] - bmean, (bcount > 1 ? bstd : 0.0) + opt->eps);
      } else {
        a = r[s] - gmean;
        if (opt->scale == TRAINER_SCALE_GROUP) a = safe_div(a, (gcount > 1 ? gstd : 0.0) + opt->eps);
        if (opt->scale == TRAINER_SCALE_BATCH) a = safe_div(a, (bcount > 1 ? bstd : 0.0) + opt->eps);
      }
      adv[s] = (float)a;
    }
  }
  stats->frac_reward_zero_std = n_groups ? (double)zero_std_groups / n_groups : 0.0;
}
