/* Token sampling from logits rows, with Hugging Face generate() filtering
 * (temperature, top-k, top-p, min-p), on the host or on a device.
 *
 * grpo_sample_row is the reference (host, one row, double precision);
 * grpo_sampler runs n rows of backend memory: on the CPU backend the
 * reference per row (OpenMP), on CUDA one kernel per call (one block per
 * row, core/cuda/sample_cuda.cu) without copying the logits to the host, on
 * any other device backend the rows copied to the host and the reference.
 * The rules live once in core/sample_math.h (GRPO_HD, shared with the
 * kernel). The kernel sums masses in another order than the reference (fixed
 * point, deterministic), so for the same logits and draws it gives the same
 * tokens except where the draw or a top-p cut lies within ~1e-8 of a step of
 * the cumulative mass (or z within an ulp of the min-p threshold); logprobs
 * and entropy agree to float rounding. bf16 rows are sampled as the f32
 * values they widen to.
 *
 * The draw u in [0, 1) comes from the caller (rollout keys it by Philox on
 * (seed, step, prompt, sample, token), so tokens do not depend on batching).
 *
 * Repetition penalty is not part of this op: it needs the sequence history;
 * rollout/sampler.h applies it on the host (grpo_sample_row_z). */
#ifndef GRPO_CORE_SAMPLE_H
#define GRPO_CORE_SAMPLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#include "core/error.h" /* error.h has no C++ guard of its own (first, before backend.h) */
}
#else
#include "core/error.h"
#endif
#include "core/backend.h"
#include "core/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct grpo_sample_params {
  float temperature; /* 0 = greedy (lowest id among equal maxima) */
  float top_p;       /* 1 = off */
  int top_k;         /* 0 = off */
  float min_p;       /* 0 = off */
} grpo_sample_params;

typedef struct grpo_sample_result {
  int32_t token;
  float logprob;         /* log softmax(logits / T)[token], full vocabulary (T = 1 greedy) */
  float sampler_logprob; /* under the filtered distribution the token was drawn from */
  float entropy;         /* of the full softmax at the temperature */
} grpo_sample_result;

/* ---- host reference ---------------------------------------------------------
 * The rules are those of core/sample_math.h; the draw walks the kept tokens in
 * descending order of their logit, the lower id first among equals (or the
 * ids in order when no filter is on). */

/* Scratch for one row of up to `vocab` entries (one per thread). */
typedef struct grpo_sample_ws {
  int vocab;
  double *z;      /* [vocab] scaled logits */
  int32_t *order; /* [vocab] kept tokens in order */
} grpo_sample_ws;

int grpo_sample_ws_init(grpo_sample_ws *ws, int vocab, grpo_error *err);
void grpo_sample_ws_free(grpo_sample_ws *ws);

/* Samples logits[0..vocab) (host f32, vocab <= ws->vocab) with draw u. */
void grpo_sample_row(const float *logits, int vocab, const grpo_sample_params *p, double u,
                     grpo_sample_ws *ws, grpo_sample_result *out);

/* The same after the caller has changed the logits the filters see (rollout's
 * repetition penalty): ws->z[0..vocab) holds them, unscaled, as doubles
 * (initially logits[v]). logprob and entropy still come from `logits`; the
 * filters, the draw and sampler_logprob from ws->z. ws->z is clobbered. */
void grpo_sample_row_z(const float *logits, int vocab, const grpo_sample_params *p, double u,
                       grpo_sample_ws *ws, grpo_sample_result *out);

/* The filtered distribution of ws->z[0..vocab) (loaded as for
 * grpo_sample_row_z): probs[v], zeros for removed tokens; greedy puts 1 on
 * the first token of the order. ws->z is clobbered. */
void grpo_sample_distribution_z(int vocab, const grpo_sample_params *p, grpo_sample_ws *ws,
                                double *probs);

/* ---- the sampler on a backend ------------------------------------------------ */

/* A plan for up to max_rows rows of vocab logits on backend be, allocated
 * once: on CUDA the device buffers of the draws and results (the kernel needs
 * no other workspace); on the CPU one scratch per OpenMP thread; on another
 * device backend host staging for max_rows rows. */
typedef struct grpo_sampler grpo_sampler;

int grpo_sampler_create(grpo_backend *be, int max_rows, int vocab, grpo_sampler **out,
                        grpo_error *err);
void grpo_sampler_free(grpo_sampler *s);

/* Samples n <= max_rows rows: row i is logits + i*ld (backend memory, be's
 * act dtype), of which the first `vocab` entries (<= the plan's vocab) are
 * candidates (pass the tokenizer's size so padding rows of an embedding are
 * never drawn). u: host [n]; out: host [n]. Synchronises. */
int grpo_sampler_run(grpo_sampler *s, const void *logits, int64_t ld, int n, int vocab,
                     const grpo_sample_params *p, const double *u, grpo_sample_result *out,
                     grpo_error *err);

/* grpo_sampler_run for rows of an explicit element type (GRPO_F32 or
 * GRPO_BF16) instead of be's act dtype: e.g. bf16 rows on an f32 backend. */
int grpo_sampler_run_dtype(grpo_sampler *s, const void *logits, grpo_dtype dtype, int64_t ld,
                           int n, int vocab, const grpo_sample_params *p, const double *u,
                           grpo_sample_result *out, grpo_error *err);

#ifdef __cplusplus
}
#endif
#endif
