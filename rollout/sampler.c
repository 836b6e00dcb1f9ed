#include "rollout/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "core/sample.h"

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

void rollout_sampling_params(const rollout_sampling *s, grpo_sample_params *p) {
  p->temperature = s->temperature;
  p->top_p = s->top_p;
  p->top_k = s->top_k;
  p->min_p = s->min_p;
}

/* Loads the raw logits into ws->z (doubles) and applies the repetition
 * penalty of every token id in the history, once per id. */
static void load_penalised(const float *logits, int vocab, const rollout_sampling *s,
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
}

void rollout_sampler_distribution(const float *logits, int vocab, const rollout_sampling *s,
                                  const int32_t *history, int n_history, rollout_sampler_ws *ws,
                                  double *probs) {
  load_penalised(logits, vocab, s, history, n_history, ws);
  grpo_sample_params p;
  rollout_sampling_params(s, &p);
  grpo_sample_ws cw = {ws->vocab, ws->z, ws->heap};
  grpo_sample_distribution_z(vocab, &p, &cw, probs);
}

void rollout_sample(const float *logits, int vocab, const rollout_sampling *s,
                    const int32_t *history, int n_history, double u, rollout_sampler_ws *ws,
                    rollout_sample_result *out) {
  load_penalised(logits, vocab, s, history, n_history, ws);
  grpo_sample_params p;
  rollout_sampling_params(s, &p);
  grpo_sample_ws cw = {ws->vocab, ws->z, ws->heap};
  grpo_sample_row_z(logits, vocab, &p, u, &cw, out);
}
