#include "rollout/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"

void rollout_sampling_defaults(rollout_sampling *s) {
  s->temperature = 1.0f;
  s->top_p = 1.0f;
  s->top_k = 0;
  s->min_p = 0.0f;
  s->repetition_penalty = 1.0f;
}

int rollout_sampling_validate(const rollout_sampling *s, grpo_error *err) {
  if (!(s->temperature >= 0.0f) || !isfinite(s->temperature))
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.temperature must be >= 0, got %g", s->temperature);
  if (!(s->top_p > 0.0f && s->top_p <= 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.top_p must be in (0, 1], got %g", s->top_p);
  if (s->top_k < 0) return GRPO_FAIL(err, GRPO_EINVAL, "rollout.top_k must be >= 0, got %d", s->top_k);
  if (!(s->min_p >= 0.0f && s->min_p <= 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.min_p must be in [0, 1], got %g", s->min_p);
  if (!(s->repetition_penalty > 0.0f) || !isfinite(s->repetition_penalty))
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.repetition_penalty must be > 0, got %g",
                     s->repetition_penalty);
  return GRPO_OK;
}

int rollout_sampler_ws_init(rollout_sampler_ws *ws, int vocab, grpo_error *err) {
  memset(ws, 0, sizeof *ws);
  ws->vocab = vocab;
  ws->z = malloc(sizeof *ws->z * (size_t)vocab);
  ws->heap = malloc(sizeof *ws->heap * (size_t)vocab);
  ws->seen = calloc((size_t)vocab, 1);
  if (!ws->z || !ws->heap || !ws->seen) {
    rollout_sampler_ws_free(ws);
    return GRPO_FAIL(err, GRPO_ENOMEM, "sampler: out of memory for a vocabulary of %d", vocab);
  }
  return GRPO_OK;
}

void rollout_sampler_ws_free(rollout_sampler_ws *ws) {
  free(ws->z);
  free(ws->heap);
  free(ws->seen);
  memset(ws, 0, sizeof *ws);
}

double rollout_sampler_uniform(uint64_t seed, uint32_t step, uint32_t prompt, uint32_t sample,
                               uint32_t token) {
  uint32_t w[4];
  grpo_rng_u32x4(seed, GRPO_RNG_SAMPLING, step, prompt, sample, token, w);
  return grpo_rng_u64_to_unit(w[0], w[1]);
}

/* Max-heap of token ids keyed by z (larger first; lower id first on ties, so
 * the order is total and the result deterministic). */
static int heap_before(const double *z, int32_t a, int32_t b) {
  return z[a] > z[b] || (z[a] == z[b] && a < b);
}

static void sift_down(int32_t *h, int n, int i, const double *z) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, best = i;
    if (l < n && heap_before(z, h[l], h[best])) best = l;
    if (r < n && heap_before(z, h[r], h[best])) best = r;
    if (best == i) return;
    int32_t t = h[i];
    h[i] = h[best];
    h[best] = t;
    i = best;
  }
}

/* Applies penalty and temperature into ws->z; returns the max. */
static double prepare(const float *logits, int vocab, const rollout_sampling *s,
                      const int32_t *history, int n_history, rollout_sampler_ws *ws) {
  double *z = ws->z;
  for (int v = 0; v < vocab; v++) z[v] = logits[v];
  if (s->repetition_penalty != 1.0f && history) {
    for (int i = 0; i < n_history; i++) {
      int32_t t = history[i];
      if (t < 0 || t >= vocab || ws->seen[t]) continue;
      ws->seen[t] = 1;
      z[t] = z[t] < 0 ? z[t] * s->repetition_penalty : z[t] / s->repetition_penalty;
    }
    for (int i = 0; i < n_history; i++)
      if (history[i] >= 0 && history[i] < vocab) ws->seen[history[i]] = 0;
  }
  double inv_t = s->temperature > 0 ? 1.0 / s->temperature : 1.0;
  double zmax = -INFINITY;
  for (int v = 0; v < vocab; v++) {
    z[v] *= inv_t;
    if (z[v] > zmax) zmax = z[v];
  }
  return zmax;
}

/* Fills ws->heap[0..n_kept) with the kept tokens in descending order and
 * returns n_kept, or 0 when no filter is active (every token kept). */
static int filter(int vocab, const rollout_sampling *s, double zmax, rollout_sampler_ws *ws) {
  const double *z = ws->z;
  int use_k = s->top_k > 0 && s->top_k < vocab;
  int use_p = s->top_p < 1.0f;
  int use_min = s->min_p > 0.0f;
  if (!use_k && !use_p && !use_min) return 0;
  int32_t *h = ws->heap;
  for (int v = 0; v < vocab; v++) h[v] = v;
  for (int i = vocab / 2 - 1; i >= 0; i--) sift_down(h, vocab, i, z);
  /* Pop in descending order; popped tokens collect at the end of the array,
   * then are moved to the front. */
  double total = 0;
  if (use_p && !use_k)
    for (int v = 0; v < vocab; v++) total += exp(z[v] - zmax);
  int n = vocab, kept = 0;
  double kth = 0, prefix = 0;
  const double log_min_p = use_min ? log((double)s->min_p) : -INFINITY;
  /* Stage 1: top-k (with ties), or top-p / min-p over the whole vocabulary. */
  while (n > 0) {
    int32_t top = h[0];
    if (use_k && kept >= s->top_k && z[top] < kth) break;
    if (!use_k) {
      /* top-p over the whole vocabulary: stop once the exclusive prefix
       * reaches top_p; min-p: stop below the threshold. */
      if (use_p && kept > 0 && prefix / total >= s->top_p) break;
      if (use_min && kept > 0 && z[top] < zmax + log_min_p) break;
    }
    h[0] = h[--n];
    sift_down(h, n, 0, z);
    h[n] = top;
    if (use_k && kept == s->top_k - 1) kth = z[top];
    if (!use_k) prefix += exp(z[top] - zmax);
    kept++;
  }
  /* Move the popped tokens (at h[n..vocab), last popped first) to the front
   * in descending order. */
  for (int i = 0; i < kept; i++) {
    int32_t t = h[vocab - 1 - i];
    h[vocab - 1 - i] = h[i];
    h[i] = t;
  }
  if (use_k) {
    /* Stage 2 on the top-k set: top-p with its renormalised mass, then min-p. */
    if (use_p) {
      double tot = 0;
      for (int i = 0; i < kept; i++) tot += exp(z[h[i]] - zmax);
      double pre = 0;
      int keep_p = 0;
      for (int i = 0; i < kept; i++) {
        if (i > 0 && pre / tot >= s->top_p) break;
        pre += exp(z[h[i]] - zmax);
        keep_p++;
      }
      kept = keep_p;
    }
    if (use_min) {
      int keep_m = 0;
      for (int i = 0; i < kept; i++) {
        if (i > 0 && z[h[i]] < zmax + log_min_p) break;
        keep_m++;
      }
      kept = keep_m;
    }
  }
  /* Without top-k, top-p and min-p are both prefix rules in descending order,
   * so applying them one after the other (as transformers does) keeps the
   * shorter prefix: the scan above stopped at whichever came first. */
  return kept;
}

void rollout_sampler_distribution(const float *logits, int vocab, const rollout_sampling *s,
                                  const int32_t *history, int n_history, rollout_sampler_ws *ws,
                                  double *probs) {
  memset(probs, 0, sizeof *probs * (size_t)vocab);
  double zmax = prepare(logits, vocab, s, history, n_history, ws);
  const double *z = ws->z;
  if (s->temperature == 0.0f) {
    int best = 0;
    for (int v = 1; v < vocab; v++)
      if (z[v] > z[best]) best = v;
    probs[best] = 1.0;
    return;
  }
  int kept = filter(vocab, s, zmax, ws);
  double total = 0;
  if (kept == 0) {
    for (int v = 0; v < vocab; v++) total += (probs[v] = exp(z[v] - zmax));
  } else {
    for (int i = 0; i < kept; i++) total += (probs[ws->heap[i]] = exp(z[ws->heap[i]] - zmax));
  }
  for (int v = 0; v < vocab; v++) probs[v] /= total;
}

void rollout_sample(const float *logits, int vocab, const rollout_sampling *s,
                    const int32_t *history, int n_history, double u, rollout_sampler_ws *ws,
                    rollout_sample_result *out) {
  /* Full-softmax statistics of the raw logits at the temperature. */
  double inv_t = s->temperature > 0 ? 1.0 / s->temperature : 1.0;
  double rmax = -INFINITY;
  for (int v = 0; v < vocab; v++)
    if (logits[v] * inv_t > rmax) rmax = logits[v] * inv_t;
  double rsum = 0, rdot = 0;
  for (int v = 0; v < vocab; v++) {
    double zv = logits[v] * inv_t - rmax, e = exp(zv);
    rsum += e;
    rdot += e * zv;
  }
  double rlse = rmax + log(rsum);

  double zmax = prepare(logits, vocab, s, history, n_history, ws);
  const double *z = ws->z;
  int32_t tok = 0;
  double slp = 0;
  if (s->temperature == 0.0f) {
    for (int v = 1; v < vocab; v++)
      if (z[v] > z[tok]) tok = v;
  } else {
    int kept = filter(vocab, s, zmax, ws);
    double total = 0;
    if (kept == 0) {
      for (int v = 0; v < vocab; v++) total += exp(z[v] - zmax);
      double target = u * total, acc = 0;
      tok = vocab - 1;
      for (int v = 0; v < vocab; v++) {
        acc += exp(z[v] - zmax);
        if (acc > target) {
          tok = v;
          break;
        }
      }
    } else {
      for (int i = 0; i < kept; i++) total += exp(z[ws->heap[i]] - zmax);
      double target = u * total, acc = 0;
      tok = ws->heap[kept - 1];
      for (int i = 0; i < kept; i++) {
        acc += exp(z[ws->heap[i]] - zmax);
        if (acc > target) {
          tok = ws->heap[i];
          break;
        }
      }
    }
    slp = (z[tok] - zmax) - log(total);
  }
  out->token = tok;
  out->logprob = (float)(logits[tok] * inv_t - rlse);
  out->sampler_logprob = (float)slp;
  out->entropy = (float)(log(rsum) - rdot / rsum);
}
