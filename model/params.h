/* The parameter table: every weight of the decoder under its Hugging Face
 * name, with its shape and its offset (in floats) into ONE contiguous f32
 * buffer. Gradients (and optimizer moments) use the same layout, so a whole
 * model is one pointer plus this table, on the host or on a device.
 *
 * Order (HF named_parameters order): model.embed_tokens.weight, then per layer
 * q/k/v/o proj (each weight then its bias), q_norm/k_norm, gate/up/down proj
 * (+biases), input_layernorm, post_attention_layernorm; then model.norm.weight,
 * then lm_head.weight
 * (absent from the table when tied: lookups of "lm_head.weight" then return
 * the embed_tokens entry, so tied gradients accumulate into one tensor).
 * Every offset is a multiple of MODEL_PARAM_ALIGN floats; the padding between
 * tensors is zero and stays zero. */
#ifndef GRPO_MODEL_PARAMS_H
#define GRPO_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "model/model_config.h"

#define MODEL_PARAM_ALIGN    16           /* floats (64 bytes) */
#define MODEL_NO_PARAM       ((size_t)-1) /* offset of a tensor the config lacks */
#define MODEL_PARAM_NAME_MAX 96

typedef enum model_param_role {
  MODEL_P_EMBED = 0,
  MODEL_P_FINAL_NORM,
  MODEL_P_LM_HEAD,
  MODEL_P_INPUT_NORM,
  MODEL_P_Q_W,
  MODEL_P_Q_B,
  MODEL_P_K_W,
  MODEL_P_K_B,
  MODEL_P_V_W,
  MODEL_P_V_B,
  MODEL_P_O_W,
  MODEL_P_O_B,
  MODEL_P_Q_NORM,
  MODEL_P_K_NORM,
  MODEL_P_POST_NORM,
  MODEL_P_GATE_W,
  MODEL_P_GATE_B,
  MODEL_P_UP_W,
  MODEL_P_UP_B,
  MODEL_P_DOWN_W,
  MODEL_P_DOWN_B,
} model_param_role;

typedef struct model_param_info {
  char name[MODEL_PARAM_NAME_MAX]; /* HF name, e.g. "model.layers.0.self_attn.q_proj.weight" */
  int ndim;                        /* 1 or 2 */
  int64_t shape[2];                /* nn.Linear weight = [out, in], row-major */
  size_t numel;
  size_t offset; /* in floats from the start of the buffer */
  int layer;     /* -1 for embed / final norm / lm_head */
  model_param_role role;
} model_param_info;

/* Offsets (floats) of one layer's tensors; MODEL_NO_PARAM when absent. */
typedef struct model_layer_offsets {
  size_t input_norm, post_norm;
  size_t q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
  size_t q_norm, k_norm;
  size_t gate_w, gate_b, up_w, up_b, down_w, down_b;
} model_layer_offsets;

typedef struct model_params {
  model_config cfg;
  int n; /* entries in info (lm_head excluded when tied) */
  model_param_info *info;
  size_t total;                      /* floats in the buffer, padding included */
  size_t embed, final_norm, lm_head; /* lm_head == embed when tied */
  model_layer_offsets *layers;       /* cfg.n_layers entries */
  float *data;                       /* total floats, 64-byte aligned, zero-filled; owned */
  float *grad;                       /* same layout; NULL until model_params_alloc_grad */
} model_params;

/* Builds the table for cfg and allocates a zeroed parameter buffer. */
int model_params_init(model_params *p, const model_config *cfg, grpo_error *err);

/* Builds the table only (data and grad stay NULL): for device buffers. */
int model_params_layout(model_params *p, const model_config *cfg, grpo_error *err);

void model_params_free(model_params *p);

/* Allocates (zeroed) the gradient buffer if absent. */
int model_params_alloc_grad(model_params *p, grpo_error *err);
void model_params_zero_grad(model_params *p);

/* Deterministic random init for built-in models, HF-style: matrices and the
 * embedding ~ N(0, std^2) (std = initializer_range, 0.02 in HF), biases 0,
 * norm weights 1. Each tensor draws from its own Philox stream keyed by
 * (seed, GRPO_RNG_INIT, tensor index), so the result is independent of
 * threads and of the other tensors. */
void model_params_init_random(model_params *p, uint64_t seed, float std);

/* Table entry by HF name; "lm_head.weight" maps to the embedding when tied.
 * NULL when the model has no such tensor. */
const model_param_info *model_params_find(const model_params *p, const char *name);

/* Pointer into data / grad for name (NULL when absent or not allocated). */
float *model_params_tensor(const model_params *p, const char *name);
float *model_params_grad_tensor(const model_params *p, const char *name);

/* Copies the parameters (data only) from src; the layouts must match. */
int model_params_copy(model_params *dst, const model_params *src, grpo_error *err);

#endif
