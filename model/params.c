#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"

static size_t align_up(size_t n) {
  return (n + MODEL_PARAM_ALIGN - 1) / MODEL_PARAM_ALIGN * MODEL_PARAM_ALIGN;
}

/* Appends one tensor to the table and returns its offset. */
static size_t add(model_params *p, int layer, model_param_role role, const char *suffix, int ndim,
                  int64_t d0, int64_t d1) {
  model_param_info *e = &p->info[p->n++];
  memset(e, 0, sizeof *e);
  if (layer >= 0)
    snprintf(e->name, sizeof e->name, "model.layers.%d.%s", layer, suffix);
  else
    snprintf(e->name, sizeof e->name, "%s", suffix);
  e->ndim = ndim;
  e->shape[0] = d0;
  e->shape[1] = ndim == 2 ? d1 : 0;
  e->numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
  e->offset = p->total;
  e->layer = layer;
  e->role = role;
  p->total += align_up(e->numel);
  return e->offset;
}

int model_params_layout(model_params *p, const model_config *cfg, grpo_error *err) {
  memset(p, 0, sizeof *p);
  int rc = model_config_validate(cfg, "model config", err);
  if (rc) return rc;
  p->cfg = *cfg;
  const int L = cfg->n_layers;
  const int64_t H = cfg->hidden, hd = cfg->head_dim, I = cfg->ffn, V = cfg->vocab;
  const int64_t q = (int64_t)cfg->n_heads * hd, kv = (int64_t)cfg->n_kv_heads * hd;
  p->info = calloc((size_t)L * 18 + 3, sizeof *p->info);
  p->layers = calloc((size_t)L, sizeof *p->layers);
  if (!p->info || !p->layers) {
    model_params_free(p);
    return GRPO_FAIL(err, GRPO_ENOMEM, "parameter table: out of memory");
  }
  p->embed = add(p, -1, MODEL_P_EMBED, "model.embed_tokens.weight", 2, V, H);
  for (int l = 0; l < L; l++) {
    model_layer_offsets *o = &p->layers[l];
    o->q_b = o->k_b = o->v_b = o->o_b = o->q_norm = o->k_norm = MODEL_NO_PARAM;
    o->gate_b = o->up_b = o->down_b = MODEL_NO_PARAM;
    /* HF state-dict order within a layer (named_parameters of the decoder layer) */
    o->q_w = add(p, l, MODEL_P_Q_W, "self_attn.q_proj.weight", 2, q, H);
    if (cfg->qkv_bias) o->q_b = add(p, l, MODEL_P_Q_B, "self_attn.q_proj.bias", 1, q, 0);
    o->k_w = add(p, l, MODEL_P_K_W, "self_attn.k_proj.weight", 2, kv, H);
    if (cfg->qkv_bias) o->k_b = add(p, l, MODEL_P_K_B, "self_attn.k_proj.bias", 1, kv, 0);
    o->v_w = add(p, l, MODEL_P_V_W, "self_attn.v_proj.weight", 2, kv, H);
    if (cfg->qkv_bias) o->v_b = add(p, l, MODEL_P_V_B, "self_attn.v_proj.bias", 1, kv, 0);
    o->o_w = add(p, l, MODEL_P_O_W, "self_attn.o_proj.weight", 2, H, q);
    if (cfg->o_bias) o->o_b = add(p, l, MODEL_P_O_B, "self_attn.o_proj.bias", 1, H, 0);
    if (cfg->qk_norm) {
      o->q_norm = add(p, l, MODEL_P_Q_NORM, "self_attn.q_norm.weight", 1, hd, 0);
      o->k_norm = add(p, l, MODEL_P_K_NORM, "self_attn.k_norm.weight", 1, hd, 0);
    }
    o->gate_w = add(p, l, MODEL_P_GATE_W, "mlp.gate_proj.weight", 2, I, H);
    if (cfg->mlp_bias) o->gate_b = add(p, l, MODEL_P_GATE_B, "mlp.gate_proj.bias", 1, I, 0);
    o->up_w = add(p, l, MODEL_P_UP_W, "mlp.up_proj.weight", 2, I, H);
    if (cfg->mlp_bias) o->up_b = add(p, l, MODEL_P_UP_B, "mlp.up_proj.bias", 1, I, 0);
    o->down_w = add(p, l, MODEL_P_DOWN_W, "mlp.down_proj.weight", 2, H, I);
    if (cfg->mlp_bias) o->down_b = add(p, l, MODEL_P_DOWN_B, "mlp.down_proj.bias", 1, H, 0);
    o->input_norm = add(p, l, MODEL_P_INPUT_NORM, "input_layernorm.weight", 1, H, 0);
    o->post_norm = add(p, l, MODEL_P_POST_NORM, "post_attention_layernorm.weight", 1, H, 0);
  }
  p->final_norm = add(p, -1, MODEL_P_FINAL_NORM, "model.norm.weight", 1, H, 0);
  if (cfg->tie_embeddings)
    p->lm_head = p->embed;
  else
    p->lm_head = add(p, -1, MODEL_P_LM_HEAD, "lm_head.weight", 2, V, H);
  return GRPO_OK;
}

static float *alloc_floats(size_t n) {
  size_t bytes = (n ? n : 1) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  float *f = aligned_alloc(64, bytes);
  if (f) memset(f, 0, bytes);
  return f;
}

int model_params_init(model_params *p, const model_config *cfg, grpo_error *err) {
  int rc = model_params_layout(p, cfg, err);
  if (rc) return rc;
  p->data = alloc_floats(p->total);
  if (!p->data) {
    size_t total = p->total;
    model_params_free(p);
    return GRPO_FAIL(err, GRPO_ENOMEM, "parameters: cannot allocate %zu floats", total);
  }
  return GRPO_OK;
}

void model_params_free(model_params *p) {
  free(p->info);
  free(p->layers);
  free(p->data);
  free(p->grad);
  memset(p, 0, sizeof *p);
}

int model_params_alloc_grad(model_params *p, grpo_error *err) {
  if (p->grad) return GRPO_OK;
  p->grad = alloc_floats(p->total);
  if (!p->grad)
    return GRPO_FAIL(err, GRPO_ENOMEM, "gradients: cannot allocate %zu floats", p->total);
  return GRPO_OK;
}

void model_params_zero_grad(model_params *p) {
  if (p->grad) memset(p->grad, 0, p->total * sizeof(float));
}

void model_params_init_random(model_params *p, uint64_t seed, float std) {
  for (int i = 0; i < p->n; i++) {
    const model_param_info *e = &p->info[i];
    float *w = p->data + e->offset;
    switch (e->role) {
      case MODEL_P_INPUT_NORM:
      case MODEL_P_POST_NORM:
      case MODEL_P_FINAL_NORM:
      case MODEL_P_Q_NORM:
      case MODEL_P_K_NORM:
        for (size_t j = 0; j < e->numel; j++) w[j] = 1.0f;
        break;
      case MODEL_P_Q_B:
      case MODEL_P_K_B:
      case MODEL_P_V_B:
      case MODEL_P_O_B:
      case MODEL_P_GATE_B:
      case MODEL_P_UP_B:
      case MODEL_P_DOWN_B:
        memset(w, 0, e->numel * sizeof(float));
        break;
      default: {
        grpo_rng_stream s;
        grpo_rng_stream_init(&s, seed, GRPO_RNG_INIT, (uint32_t)i, 0);
        for (size_t j = 0; j < e->numel; j++) w[j] = (float)(std * grpo_rng_stream_normal(&s));
      }
    }
  }
}

const model_param_info *model_params_find(const model_params *p, const char *name) {
  if (!name) return NULL;
  if (p->cfg.tie_embeddings && strcmp(name, "lm_head.weight") == 0)
    name = "model.embed_tokens.weight";
  /* Layer tensors: jump to the layer's block instead of scanning everything. */
  int lo = 0, hi = p->n;
  int layer;
  char rest[MODEL_PARAM_NAME_MAX];
  if (sscanf(name, "model.layers.%d.%95s", &layer, rest) == 2 && layer >= 0 &&
      layer < p->cfg.n_layers) {
    size_t first = p->layers[layer].q_w;
    for (lo = 0; lo < p->n && p->info[lo].offset != first; lo++) {
    }
  }
  for (int i = lo; i < hi; i++)
    if (strcmp(p->info[i].name, name) == 0) return &p->info[i];
  return NULL;
}

float *model_params_tensor(const model_params *p, const char *name) {
  const model_param_info *e = model_params_find(p, name);
  return (e && p->data) ? p->data + e->offset : NULL;
}

float *model_params_grad_tensor(const model_params *p, const char *name) {
  const model_param_info *e = model_params_find(p, name);
  return (e && p->grad) ? p->grad + e->offset : NULL;
}

int model_params_copy(model_params *dst, const model_params *src, grpo_error *err) {
  if (dst->total != src->total || dst->n != src->n || !dst->data || !src->data)
    return GRPO_FAIL(err, GRPO_EINVAL, "model_params_copy: layouts differ (%zu vs %zu floats)",
                     dst->total, src->total);
  memcpy(dst->data, src->data, src->total * sizeof(float));
  return GRPO_OK;
}
