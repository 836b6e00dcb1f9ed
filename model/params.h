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
 * tensors is zero and stays zero.
 *
 * Where the numbers live. `data` / `grad` are always host memory: the master
 * copy that loaders, init, checkpoints and the weight broadcast read and
 * write. model_params_bind attaches a backend; the backend's copies are
 * `dev_data` / `dev_grad`, and model_params_device() is the view of the table
 * the transformer takes (its data / grad are the backend pointers).
 *  - CPU backend (host memory): dev_data == data and dev_grad == grad, the
 *    view is the params itself: no second buffer, no copy, every sync point
 *    below is a no-op.
 *  - A device (CUDA): dev_data / dev_grad are device buffers. Training updates
 *    dev_data (AdamW) and accumulates into dev_grad; the host copies are only
 *    current after the explicit sync points:
 *      model_params_to_device       host data -> device (after load / init /
 *                                   edits of `data`; model_params_copy into
 *                                   a bound dst calls it)
 *      model_params_to_host         device -> host data (before checkpoints,
 *                                   the weight broadcast, export)
 *      model_params_grads_to_host   device grad -> host grad (inspection)
 *    model_params_zero_grad clears the device gradient (be->memset).
 *  - bf16 activations (a device whose act_dtype is not f32): dev_data and
 *    dev_grad stay f32 (master weights, f32 gradients and AdamW state) and
 *    `dev_work` holds the working weights in the activation type, the ones
 *    the forward, backward and decode read (model_params_weights of the
 *    view). It is refreshed from dev_data by bind, model_params_to_device
 *    and model_params_sync_work, which must follow every in-place update of
 *    dev_data (the optimizer step). */
#ifndef GRPO_MODEL_PARAMS_H
#define GRPO_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
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
  /* backend residency (model_params_bind); all NULL when unbound */
  grpo_backend *be;                  /* the backend dev_data / dev_grad belong to */
  float *dev_data, *dev_grad;        /* == data / grad on a host-memory backend */
  void *dev_work;                    /* working weights in be->act_dtype when it is not
                                        f32 (else NULL); the view's `work` */
  void *work;                        /* device view only: dev_work (NULL: read data) */
  struct model_params *dev_view;     /* device backends only: the table with data /
                                        grad = dev_data / dev_grad (owned) */
} model_params;

/* Builds the table for cfg and allocates a zeroed parameter buffer. */
int model_params_init(model_params *p, const model_config *cfg, grpo_error *err);

/* Builds the table only (data and grad stay NULL): for device buffers. */
int model_params_layout(model_params *p, const model_config *cfg, grpo_error *err);

/* Frees the host buffers, the table and the device mirror (if bound). */
void model_params_free(model_params *p);

/* Attaches backend be: on a host-memory backend (kind GRPO_DEVICE_CPU)
 * dev_data / dev_grad alias data / grad and nothing is allocated or copied;
 * on a device it allocates dev_data (and dev_grad when grad exists), copies
 * data there and zeroes dev_grad. data must be allocated. Binding twice to
 * the same backend is a no-op; to another one is an error. */
int model_params_bind(model_params *p, grpo_backend *be, grpo_error *err);

/* Frees the device mirror and detaches the backend (the host buffers stay). */
void model_params_unbind(model_params *p);

/* What the transformer (and any backend op) takes: p itself when unbound or
 * on a host-memory backend, else the device view (same table, device
 * pointers). Valid as long as p is bound; it moves with p (the view is a
 * separate allocation, so copying the model_params struct keeps it). */
const model_params *model_params_device(const model_params *p);

/* The weights compute reads, in the backend's activation type: the working
 * copy when there is one, else data. */
static inline const void *model_params_weights(const model_params *p) {
  return p->work ? p->work : (const void *)p->data;
}

/* Refreshes the working copy from dev_data after the master weights changed
 * on the device (the optimizer step); a no-op without one. Queued on the
 * backend (errors surface at its next sync). */
void model_params_sync_work(model_params *p);

/* Sync points (no-ops when unbound or on a host-memory backend). */
int model_params_to_device(model_params *p, grpo_error *err);
int model_params_to_host(model_params *p, grpo_error *err);
int model_params_grads_to_host(model_params *p, grpo_error *err);

/* Allocates (zeroed) the gradient buffer if absent, and its device copy
 * when bound to a device. */
int model_params_alloc_grad(model_params *p, grpo_error *err);
/* Zeroes the gradient where it accumulates: grad (host) or, bound to a
 * device, dev_grad (be->memset; the host grad is left as it is). */
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

/* Copies the parameters (host data only) from src; the layouts must match.
 * When dst is bound to a device its device copy is updated too
 * (model_params_to_device). src's host data must be current. */
int model_params_copy(model_params *dst, const model_params *src, grpo_error *err);

#endif
