#include "trainer/allocate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A token count above this cannot be summed in int64 without care, and no
 * completion is that long: a mean this large is bad input. */
#define ALLOC_MAX_COST 1e15
/* Beyond this a prior is a fixed rate, and lgamma differences lose digits. */
#define ALLOC_MAX_PRIOR 1e6
#define ALLOC_MIN_PRIOR 0.05

typedef struct alloc_problem {
  int n;
  trainer_alloc_objective objective;
  int fresh;              /* 1: the samples form a new group (group sizes); 0: they add to n0 */
  const int *n0;
  const int *correct;
  const double *A, *B;    /* Beta posterior of each pass rate */
  const int64_t *cost;    /* tokens per sample; NULL when there is no token budget */
  int64_t samples_left;   /* < 0: unlimited */
  int64_t tokens_left;    /* < 0: unlimited */
  int min_extra, max_extra;
} alloc_problem;

/* E[p^n] for p ~ Beta(A, B). */
static double beta_moment(double A, double B, int n) {
  return exp(lgamma(A + n) - lgamma(A) + lgamma(A + B) - lgamma(A + B + n));
}

/* Expected objective gained by prompt i's (e+1)-th sample, over the Beta
 * posterior (a plug-in rate would take 0/4 for a 1-in-6 prompt and overspend
 * on it). Each is non-increasing in e, which makes the greedy optimal. */
static double alloc_gain(const alloc_problem *pb, int i, int e) {
  const double A = pb->A[i], B = pb->B[i], S = A + B;
  const int n0 = pb->n0[i], c = pb->correct[i];
  switch (pb->objective) {
    case TRAINER_ALLOC_GROUP_VARIANCE:
      if (pb->fresh) /* f(n) = 1 - E[p^n] - E[(1-p)^n]; f(n+1) - f(n) */
        return beta_moment(A, B, e) * B / (S + e) + beta_moment(B, A, e) * A / (S + e);
      /* the group already holds the n0 pilot samples: mixed ones are done,
       * all-equal ones need one sample of the other kind */
      if (c > 0 && c < n0) return 0.0;
      if (n0 == 0) { /* no pilot: fresh, but a lone sample is worth its pair's gain */
        const int k = e > 0 ? e : 1;
        return beta_moment(A, B, k) * B / (S + k) + beta_moment(B, A, k) * A / (S + k);
      }
      return c == 0 ? beta_moment(B, A, e) * A / (S + e) : beta_moment(A, B, e) * B / (S + e);
    case TRAINER_ALLOC_ESTIMATE: {
      /* expected posterior variance after e more samples is
       * m(1-m)/(S+1) * S/(S+e); the next sample removes the difference */
      const double m = A / S;
      return m * (1 - m) * S / ((S + 1) * (S + e) * (S + e + 1));
    }
    case TRAINER_ALLOC_ANY_CORRECT: /* f(e) = 1 - E[(1-p)^e] for the unsolved */
      return c > 0 ? 0.0 : beta_moment(B, A, e) * A / (S + e);
    case TRAINER_ALLOC_UNIFORM:
      return 1.0 / ((double)e + 1);
  }
  return 0.0;
}

/* Gain per unit of the scarce resource. Uniform ignores cost: it is the
 * baseline that gives everyone the same count. */
static double alloc_priority(const alloc_problem *pb, int i, int e) {
  double g = alloc_gain(pb, i, e);
  if (pb->cost && pb->objective != TRAINER_ALLOC_UNIFORM) g /= (double)pb->cost[i];
  return g;
}

/* Max-heap order: higher priority first, then the lower index. */
static int heap_before(const double *prio, int a, int b) {
  return prio[a] > prio[b] || (prio[a] == prio[b] && a < b);
}

static void heap_sift_down(int *heap, int size, const double *prio, int pos) {
  for (;;) {
    int best = pos, l = 2 * pos + 1, r = l + 1;
    if (l < size && heap_before(prio, heap[l], heap[best])) best = l;
    if (r < size && heap_before(prio, heap[r], heap[best])) best = r;
    if (best == pos) return;
    int t = heap[pos];
    heap[pos] = heap[best];
    heap[best] = t;
    pos = best;
  }
}

static int alloc_fits(const alloc_problem *pb, int i) {
  if (pb->samples_left == 0) return 0;
  return !pb->cost || pb->tokens_left < 0 || pb->cost[i] <= pb->tokens_left;
}

static void alloc_take(alloc_problem *pb, int i) {
  if (pb->samples_left > 0) pb->samples_left--;
  if (pb->cost && pb->tokens_left >= 0) pb->tokens_left -= pb->cost[i];
}

/* Greedy over a heap: O(total extra * log n). A prompt whose next sample no
 * longer fits, or gains nothing, leaves the heap for good: budgets only
 * shrink and gains never grow. prio and heap are [n] scratch. */
static void alloc_greedy(alloc_problem *pb, int *extra, double *prio, int *heap) {
  int size = 0;
  for (int i = 0; i < pb->n; i++) {
    if (pb->max_extra >= 0 && extra[i] >= pb->max_extra) continue;
    prio[i] = alloc_priority(pb, i, extra[i]);
    heap[size++] = i;
  }
  for (int pos = size / 2 - 1; pos >= 0; pos--) heap_sift_down(heap, size, prio, pos);
  while (size > 0 && pb->samples_left != 0) {
    int i = heap[0];
    if (!(prio[i] > 0) || !alloc_fits(pb, i)) {
      heap[0] = heap[--size];
      heap_sift_down(heap, size, prio, 0);
      continue;
    }
    alloc_take(pb, i);
    extra[i]++;
    if (pb->max_extra >= 0 && extra[i] >= pb->max_extra) {
      heap[0] = heap[--size];
    } else {
      prio[i] = alloc_priority(pb, i, extra[i]);
    }
    heap_sift_down(heap, size, prio, 0);
  }
}

static int check_first_round(const int *n0, const int *correct, int n_prompts, grpo_error *err) {
  if (n_prompts < 0) return GRPO_FAIL(err, GRPO_EINVAL, "allocate: n_prompts must be >= 0, got %d", n_prompts);
  if (n_prompts > 0 && (!n0 || !correct))
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: n0 and correct are required");
  for (int i = 0; i < n_prompts; i++) {
    if (n0[i] < 0) return GRPO_FAIL(err, GRPO_EINVAL, "allocate: n0[%d] = %d must be >= 0", i, n0[i]);
    if (correct[i] < 0 || correct[i] > n0[i])
      return GRPO_FAIL(err, GRPO_EINVAL, "allocate: correct[%d] = %d must be in [0, n0[%d] = %d]", i,
                       correct[i], i, n0[i]);
  }
  return GRPO_OK;
}

/* Scratch for one call: A, B, prio [n] doubles; heap [n] ints; cost [n]. */
typedef struct alloc_work {
  double *A, *B, *prio;
  int *heap;
  int64_t *cost;
} alloc_work;

static int alloc_work_init(alloc_work *w, int n, grpo_error *err) {
  size_t m = n > 0 ? (size_t)n : 1;
  w->A = malloc(m * sizeof *w->A);
  w->B = malloc(m * sizeof *w->B);
  w->prio = malloc(m * sizeof *w->prio);
  w->heap = malloc(m * sizeof *w->heap);
  w->cost = malloc(m * sizeof *w->cost);
  if (!w->A || !w->B || !w->prio || !w->heap || !w->cost) {
    free(w->A);
    free(w->B);
    free(w->prio);
    free(w->heap);
    free(w->cost);
    return GRPO_FAIL(err, GRPO_ENOMEM, "allocate: out of memory for %d prompts", n);
  }
  return GRPO_OK;
}

static void alloc_work_free(alloc_work *w) {
  free(w->A);
  free(w->B);
  free(w->prio);
  free(w->heap);
  free(w->cost);
}

/* Beta(a + c, b + n0 - c); a prior with a or b <= 0 means Beta(1, 1)
 * (Laplace: 0/n0 and n0/n0 stay uncertain). */
static void posteriors(const int *n0, const int *correct, int n, const trainer_alloc_prior *prior,
                       double *A, double *B) {
  const int laplace = !prior || !(prior->a > 0) || !(prior->b > 0);
  const double a = laplace ? 1.0 : prior->a, b = laplace ? 1.0 : prior->b;
  for (int i = 0; i < n; i++) {
    A[i] = a + correct[i];
    B[i] = b + (n0[i] - correct[i]);
  }
}

static int check_prior(const trainer_alloc_prior *prior, grpo_error *err) {
  if (!prior || (prior->a == 0 && prior->b == 0)) return GRPO_OK;
  if (!(prior->a > 0 && prior->a <= ALLOC_MAX_PRIOR) || !(prior->b > 0 && prior->b <= ALLOC_MAX_PRIOR))
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: prior a = %g, b = %g must both be in (0, %g] (or both 0)",
                     prior->a, prior->b, ALLOC_MAX_PRIOR);
  return GRPO_OK;
}

int trainer_alloc_eval(const int *n0, const int *correct, const double *mean_tokens,
                       int n_prompts, const trainer_alloc_options *opt, int *extra,
                       trainer_alloc_usage *usage, grpo_error *err) {
  int rc = check_first_round(n0, correct, n_prompts, err);
  if (rc) return rc;
  if ((rc = check_prior(&opt->prior, err))) return rc;
  if (opt->objective < TRAINER_ALLOC_GROUP_VARIANCE || opt->objective > TRAINER_ALLOC_UNIFORM)
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: objective %d is not a trainer_alloc_objective",
                     (int)opt->objective);
  if (opt->min_extra < 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: min_extra = %d must be >= 0", opt->min_extra);
  if (opt->max_extra >= 0 && opt->min_extra > opt->max_extra)
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: min_extra = %d exceeds max_extra = %d",
                     opt->min_extra, opt->max_extra);
  if (opt->budget_samples < 0 && opt->budget_tokens < 0 && opt->max_extra < 0)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "allocate: budget_samples, budget_tokens and max_extra are all unlimited");
  const int use_tokens = opt->budget_tokens >= 0;
  if (use_tokens && opt->max_tokens <= 0) {
    /* only needed when some prompt has no mean */
    for (int i = 0; i < n_prompts; i++)
      if (!mean_tokens || !(mean_tokens[i] > 0))
        return GRPO_FAIL(err, GRPO_EINVAL,
                         "allocate: prompt %d has no mean_tokens and max_tokens = %d is not > 0", i,
                         opt->max_tokens);
  }
  for (int i = 0; use_tokens && mean_tokens && i < n_prompts; i++)
    if (mean_tokens[i] > ALLOC_MAX_COST)
      return GRPO_FAIL(err, GRPO_EINVAL, "allocate: mean_tokens[%d] = %g is too large", i,
                       mean_tokens[i]);

  alloc_work w;
  if ((rc = alloc_work_init(&w, n_prompts, err))) return rc;
  posteriors(n0, correct, n_prompts, &opt->prior, w.A, w.B);
  for (int i = 0; i < n_prompts; i++) {
    const double m = mean_tokens ? mean_tokens[i] : NAN;
    /* round up: the budget is a bound, so never under-count a sample */
    w.cost[i] = m > 0 ? (int64_t)ceil(m) : (int64_t)opt->max_tokens;
  }

  alloc_problem pb = {
      .n = n_prompts,
      .objective = opt->objective,
      .fresh = 0,
      .n0 = n0,
      .correct = correct,
      .A = w.A,
      .B = w.B,
      .cost = use_tokens ? w.cost : NULL,
      .samples_left = opt->budget_samples,
      .tokens_left = opt->budget_tokens,
      .min_extra = opt->min_extra,
      .max_extra = opt->max_extra,
  };
  /* the minimum first; checked whole before extra is written */
  if (opt->min_extra > 0 && n_prompts > 0) {
    if (pb.samples_left >= 0 && (int64_t)n_prompts * opt->min_extra > pb.samples_left) {
      rc = GRPO_FAIL(err, GRPO_EBUDGET,
                     "allocate: min_extra = %d for %d prompts needs %lld samples, budget_samples = %lld",
                     opt->min_extra, n_prompts, (long long)n_prompts * opt->min_extra,
                     (long long)pb.samples_left);
      goto done;
    }
    if (use_tokens) {
      int64_t need = 0;
      for (int i = 0; i < n_prompts; i++) {
        if (w.cost[i] > (pb.tokens_left - need) / opt->min_extra) {
          rc = GRPO_FAIL(err, GRPO_EBUDGET,
                         "allocate: min_extra = %d does not fit budget_tokens = %lld (prompt %d)",
                         opt->min_extra, (long long)pb.tokens_left, i);
          goto done;
        }
        need += w.cost[i] * opt->min_extra;
      }
      pb.tokens_left -= need;
    }
    if (pb.samples_left >= 0) pb.samples_left -= (int64_t)n_prompts * opt->min_extra;
  }
  for (int i = 0; i < n_prompts; i++) extra[i] = opt->min_extra;
  alloc_greedy(&pb, extra, w.prio, w.heap);
  if (usage) {
    memset(usage, 0, sizeof *usage);
    for (int i = 0; i < n_prompts; i++) {
      usage->samples += extra[i];
      if (use_tokens) usage->tokens += (int64_t)extra[i] * w.cost[i];
    }
  }
done:
  alloc_work_free(&w);
  return rc;
}

int trainer_alloc_group_sizes(const int *n0, const int *correct, int n_prompts,
                              const trainer_alloc_prior *prior, int64_t budget, int g_min, int g_max,
                              int *group_size, grpo_error *err) {
  int rc = check_first_round(n0, correct, n_prompts, err);
  if (rc) return rc;
  if ((rc = check_prior(prior, err))) return rc;
  if (g_min < 1) return GRPO_FAIL(err, GRPO_EINVAL, "allocate: g_min = %d must be >= 1", g_min);
  if (g_max < g_min)
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: g_max = %d must be >= g_min = %d", g_max, g_min);
  if (budget < 0) return GRPO_FAIL(err, GRPO_EINVAL, "allocate: budget = %lld must be >= 0", (long long)budget);
  if ((int64_t)n_prompts * g_min > budget)
    return GRPO_FAIL(err, GRPO_EBUDGET,
                     "allocate: %d prompts x g_min = %d needs %lld samples, budget = %lld",
                     n_prompts, g_min, (long long)n_prompts * g_min, (long long)budget);
  alloc_work w;
  if ((rc = alloc_work_init(&w, n_prompts, err))) return rc;
  posteriors(n0, correct, n_prompts, prior, w.A, w.B);
  /* the group is fresh samples: the pilot only estimates p */
  alloc_problem pb = {
      .n = n_prompts,
      .objective = TRAINER_ALLOC_GROUP_VARIANCE,
      .fresh = 1,
      .n0 = n0,
      .correct = correct,
      .A = w.A,
      .B = w.B,
      .cost = NULL,
      .samples_left = budget - (int64_t)n_prompts * g_min,
      .tokens_left = -1,
      .min_extra = g_min,
      .max_extra = g_max,
  };
  for (int i = 0; i < n_prompts; i++) group_size[i] = g_min;
  alloc_greedy(&pb, group_size, w.prio, w.heap);
  alloc_work_free(&w);
  return GRPO_OK;
}

/* P(2(c + X) > m) + P(2(c + X) = m)/2 for X ~ Binomial(e, p), 0 < p < 1,
 * m = n0 + e votes; pmf in log space so large e neither overflows nor
 * underflows early. */
static double majority_success(double p, int n0, int c, int e) {
  const double lp = log(p), lq = log1p(-p), lge = lgamma((double)e + 1);
  const int64_t m = (int64_t)n0 + e;
  double s = 0;
  for (int k = 0; k <= e; k++) {
    const int64_t twice = 2 * ((int64_t)c + k);
    if (twice < m) continue;
    double pmf = exp(lge - lgamma((double)k + 1) - lgamma((double)(e - k) + 1) + k * lp + (e - k) * lq);
    s += twice == m ? 0.5 * pmf : pmf;
  }
  return s > 1 ? 1 : s;
}

/* One prompt's success after e more samples given its first round (n0, c). */
static double prompt_success(trainer_alloc_metric metric, double p, int n0, int c, int e) {
  const double pe = pow(p, e), qe = pow(1 - p, e);
  switch (metric) {
    case TRAINER_METRIC_ANY_CORRECT:
      return c > 0 ? 1.0 : 1 - qe;
    case TRAINER_METRIC_MAJORITY:
      if (n0 + (int64_t)e == 0) return 0.0; /* no sample, no answer */
      if (e == 0 || p == 0 || p == 1) {
        const int64_t twice = 2 * ((int64_t)c + (p == 1 ? e : 0)), m = (int64_t)n0 + e;
        return twice > m ? 1.0 : twice == m ? 0.5 : 0.0;
      }
      return majority_success(p, n0, c, e);
    case TRAINER_METRIC_GROUP_VARIANCE:
      if (n0 == 0) return e == 0 ? 0.0 : 1 - pe - qe;
      if (c > 0 && c < n0) return 1.0;
      return c == 0 ? 1 - qe : 1 - pe;
  }
  return 0.0;
}

int trainer_alloc_expected_success(const double *pass_rate, const int *n0, const int *correct,
                                   const int *n_samples, int n_prompts, trainer_alloc_metric metric,
                                   double *mean, grpo_error *err) {
  if (n_prompts < 0) return GRPO_FAIL(err, GRPO_EINVAL, "allocate: n_prompts must be >= 0, got %d", n_prompts);
  if (metric < TRAINER_METRIC_ANY_CORRECT || metric > TRAINER_METRIC_GROUP_VARIANCE)
    return GRPO_FAIL(err, GRPO_EINVAL, "allocate: metric %d is not a trainer_alloc_metric", (int)metric);
  if (!n0 != !correct) return GRPO_FAIL(err, GRPO_EINVAL, "allocate: give both n0 and correct, or neither");
  if (n0) {
    int rc = check_first_round(n0, correct, n_prompts, err);
    if (rc) return rc;
  }
  for (int i = 0; i < n_prompts; i++) {
    if (!(pass_rate[i] >= 0 && pass_rate[i] <= 1))
      return GRPO_FAIL(err, GRPO_EINVAL, "allocate: pass_rate[%d] = %g must be in [0, 1]", i, pass_rate[i]);
    if (n_samples[i] < 0)
      return GRPO_FAIL(err, GRPO_EINVAL, "allocate: n_samples[%d] = %d must be >= 0", i, n_samples[i]);
  }
  double sum = 0;
  for (int i = 0; i < n_prompts; i++)
    sum += prompt_success(metric, pass_rate[i], n0 ? n0[i] : 0, n0 ? correct[i] : 0, n_samples[i]);
  *mean = n_prompts > 0 ? sum / n_prompts : 0.0;
  return GRPO_OK;
}

int trainer_alloc_fit_prior(const int *n0, const int *correct, int n_prompts, trainer_alloc_prior *prior,
                            grpo_error *err) {
  int rc = check_first_round(n0, correct, n_prompts, err);
  if (rc) return rc;
  /* c/n0 and c(c-1)/(n0(n0-1)) are unbiased for p and p^2 given p, so their
   * means over prompts estimate the prior's first two moments whatever n0 */
  double m1 = 0, m2 = 0;
  int used = 0;
  for (int i = 0; i < n_prompts; i++) {
    if (n0[i] < 2) continue;
    const double c = correct[i], n = n0[i];
    m1 += c / n;
    m2 += c * (c - 1) / (n * (n - 1));
    used++;
  }
  prior->a = prior->b = 1.0;
  if (used < 2) return GRPO_OK;
  m1 /= used;
  m2 /= used;
  const double var = m2 - m1 * m1;
  /* all-wrong or all-right batches say nothing about the spread: stay flat */
  if (!(m1 > 0 && m1 < 1)) return GRPO_OK;
  /* var = m(1-m)/(s+1); no spread beyond binomial noise means a sharp prior */
  double s = var > 0 ? m1 * (1 - m1) / var - 1 : ALLOC_MAX_PRIOR;
  if (!(s <= ALLOC_MAX_PRIOR)) s = ALLOC_MAX_PRIOR;
  double a = m1 * s, b = (1 - m1) * s;
  /* keep it proper and away from lgamma's pole */
  if (a < ALLOC_MIN_PRIOR) a = ALLOC_MIN_PRIOR;
  if (b < ALLOC_MIN_PRIOR) b = ALLOC_MIN_PRIOR;
  prior->a = a;
  prior->b = b;
  return GRPO_OK;
}
