/* The decoder (qwen2 / qwen3 / llama, HF semantics) over a packed batch:
 * forward to per-prediction logprob and entropy, backward into the gradient
 * buffer, and the decode path (prefill / one token per slot) on a KV cache.
 *
 * Every op goes through the backend table (core/backend.h); this file only
 * sequences them and owns the activation memory. The memory is planned once
 * (model_plan_opts.max_tokens / max_pred): model_transformer_create allocates
 * one workspace and no call allocates afterwards.
 *
 * Packed batch (DESIGN.md, "Packed sequences"): token i attends to token j
 * iff tin[j] <= tin[i] <= tout[j]; pos[i] is its RoPE position. Prediction k
 * is the logprob of pred_target[k] given the final hidden state of row
 * pred_row[k], with logits scaled by 1/temperature. */
#ifndef GRPO_MODEL_TRANSFORMER_H
#define GRPO_MODEL_TRANSFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/error.h"
#include "core/sample.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/params.h"

typedef struct model_batch {
  int n_tokens;               /* T <= plan max_tokens */
  const int32_t *ids;         /* [T] input token ids */
  const int32_t *pos;         /* [T] position ids */
  const int32_t *tin, *tout;  /* [T] ancestor interval */
  int n_pred;                 /* <= plan max_pred */
  const int32_t *pred_row;    /* [n_pred] row whose hidden state predicts */
  const int32_t *pred_target; /* [n_pred] token id predicted */
  float temperature;          /* <= 0 means 1 */
} model_batch;

typedef struct model_plan_opts {
  int max_tokens;   /* largest T of a forward/backward or a prefill */
  int max_pred;     /* largest n_pred; 0 means max_tokens */
  int row_chunk;    /* classifier rows per chunk; 0 lets the backend pick */
  int recompute;    /* 1: keep only each layer's input, recompute it in backward */
  int max_cache_len;/* longest KV cache slot the decode path will read; 0 = max_tokens */
  int no_fuse;      /* 1: one sgemm per weight even where q/k/v or gate/up are adjacent */
  int sample_rows;  /* > 0: plan the backend sampler (model_decode_step_sample) for
                       this many rows per step (<= max_tokens) */
} model_plan_opts;

typedef struct model_transformer model_transformer;

/* Plans and allocates the workspace for opts. The model keeps pointers to
 * params (weights in params->data, gradients in params->grad) and be, which
 * must outlive it. params->data/grad and the KV cache are used in place as
 * backend memory: pass model_params_device(p) (model/params.h), which is p
 * itself on the CPU backend and the device mirror on CUDA. Activations f32
 * or bf16 (be->act_dtype; bf16 reads the view's working weights). */
int model_transformer_create(model_transformer **out, const model_params *params,
                             grpo_backend *be, const model_plan_opts *opts,
                             grpo_error *err);
void model_transformer_free(model_transformer *m);

/* The plan's sample_rows (0: model_decode_step_sample is not planned). */
int model_transformer_sample_rows(const model_transformer *m);

/* Bytes of the workspace the plan allocated (activations, scratch, op workspaces). */
size_t model_transformer_workspace_bytes(const model_transformer *m);

/* Forward. logprob, entropy: [n_pred] (entropy may be NULL). hidden: NULL or
 * [T, H] final hidden states after model.norm. Keeps what backward needs;
 * a following backward must get the same batch. */
int model_forward(model_transformer *m, const model_batch *b, float *logprob, float *entropy,
                  float *hidden, grpo_error *err);

/* Backward of the last forward: dlogprob [n_pred] = dL/dlogprob, dentropy
 * [n_pred] or NULL. Accumulates (+=) into params->grad (must be allocated). */
int model_backward(model_transformer *m, const model_batch *b, const float *dlogprob,
                   const float *dentropy, grpo_error *err);

/* Decode path. Appends n tokens (positions cache->len[slot] ...) to one slot
 * and writes the logits of the last one to logits [V] (NULL: none). Prefill
 * is this on an empty slot; n <= plan max_tokens. Clobbers the activations
 * kept for backward. */
int model_prefill(model_transformer *m, model_kv_cache *cache, int slot, const int32_t *ids,
                  int n, float *logits, grpo_error *err);

/* One new token for each of n slots (distinct; n <= plan max_tokens): appends
 * ids[i] to slots[i] at position cache->len[slots[i]] and writes that
 * position's raw logits to logits [n, V] (row i for slots[i]). */
int model_decode_step(model_transformer *m, model_kv_cache *cache, int n, const int *slots,
                      const int32_t *ids, float *logits, grpo_error *err);

/* model_decode_step that samples where the logits are (core/sample.h)
 * instead of returning them: on a device the [n, V] logits never reach the
 * host. Row i draws with u[i] among the first `vocab` (<= V) entries; out[i]
 * gets the token, its full-softmax logprob at the temperature, the filtered
 * logprob and the entropy. Needs a plan with sample_rows >= n. */
int model_decode_step_sample(model_transformer *m, model_kv_cache *cache, int n, const int *slots,
                             const int32_t *ids, int vocab, const grpo_sample_params *p,
                             const double *u, grpo_sample_result *out, grpo_error *err);

#endif
