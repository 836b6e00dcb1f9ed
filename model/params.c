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

/* Device memory of a bound params (nothing on a host-memory backend). */
static int on_device(const model_params *p) { return p->be && p->be->kind != GRPO_DEVICE_CPU; }

void model_params_free(model_params *p) {
  model_params_unbind(p);
  free(p->info);
  free(p->layers);
  free(p->data);
  free(p->grad);
  memset(p, 0, sizeof *p);
}

/* Allocates and zeroes dev_grad on a device and points the view at it. */
static int alloc_dev_grad(model_params *p, grpo_error *err) {
  if (p->dev_grad) return GRPO_OK;
  size_t bytes = p->total * sizeof(float);
  void *g = NULL;
  int rc = p->be->alloc(p->be, bytes, &g, err);
  if (rc) {
    grpo_error_prefix(err, "gradients on %s (%zu floats)", p->be->name, p->total);
    return rc;
  }
  p->be->memset(p->be, g, 0, bytes);
  p->dev_grad = g;
  p->dev_view->grad = g;
  return GRPO_OK;
}

int model_params_alloc_grad(model_params *p, grpo_error *err) {
  if (!p->grad) {
    p->grad = alloc_floats(p->total);
    if (!p->grad)
      return GRPO_FAIL(err, GRPO_ENOMEM, "gradients: cannot allocate %zu floats", p->total);
  }
  if (!p->be) return GRPO_OK;
  if (!on_device(p)) {
    p->dev_grad = p->grad;
    return GRPO_OK;
  }
  return alloc_dev_grad(p, err);
}

void model_params_zero_grad(model_params *p) {
  if (on_device(p)) {
    if (p->dev_grad) p->be->memset(p->be, p->dev_grad, 0, p->total * sizeof(float));
    return;
  }
  if (p->grad) memset(p->grad, 0, p->total * sizeof(float));
}

int model_params_bind(model_params *p, grpo_backend *be, grpo_error *err) {
  if (p->be == be) return GRPO_OK;
  if (p->be)
    return GRPO_FAIL(err, GRPO_EINVAL, "parameters: already on backend %s, cannot bind to %s",
                     p->be->name, be->name);
  if (!p->data) return GRPO_FAIL(err, GRPO_EINVAL, "parameters: bind before the weights exist");
  if (be->kind == GRPO_DEVICE_CPU) {
    /* host memory: the backend works on the master copy in place */
    p->be = be;
    p->dev_data = p->data;
    p->dev_grad = p->grad;
    return GRPO_OK;
  }
  model_params *v = malloc(sizeof *v);
  if (!v) return GRPO_FAIL(err, GRPO_ENOMEM, "parameters: out of memory");
  size_t bytes = p->total * sizeof(float);
  void *d = NULL;
  int rc = be->alloc(be, bytes, &d, err);
  if (rc) {
    free(v);
    grpo_error_prefix(err, "parameters on %s (%zu floats)", be->name, p->total);
    return rc;
  }
  /* the view shares the table (info, layers); only the buffers differ */
  *v = *p;
  v->data = d;
  v->grad = NULL;
  v->be = be;
  v->dev_data = d;
  v->dev_grad = NULL;
  v->dev_view = NULL;
  v->dev_work = v->work = NULL;
  p->be = be;
  p->dev_data = d;
  p->dev_view = v;
  if (be->act_dtype != GRPO_F32) {
    /* compute reads a copy in the activation type; the f32 master stays */
    rc = be->alloc(be, p->total * grpo_dtype_size(be->act_dtype), &p->dev_work, err);
    if (rc) grpo_error_prefix(err, "working weights on %s (%zu %s)", be->name, p->total,
                              grpo_dtype_name(be->act_dtype));
    v->work = p->dev_work;
  }
  if (!rc) rc = model_params_to_device(p, err);
  if (!rc && p->grad) rc = alloc_dev_grad(p, err);
  if (rc) {
    be->free(be, p->dev_data);
    be->free(be, p->dev_grad);
    be->free(be, p->dev_work);
    free(v);
    p->be = NULL;
    p->dev_data = p->dev_grad = NULL;
    p->dev_work = NULL;
    p->dev_view = NULL;
  }
  return rc;
}

void model_params_unbind(model_params *p) {
  if (on_device(p)) {
    p->be->free(p->be, p->dev_data);
    p->be->free(p->be, p->dev_grad);
    p->be->free(p->be, p->dev_work);
    free(p->dev_view);
  }
  p->be = NULL;
  p->dev_data = p->dev_grad = NULL;
  p->dev_work = NULL;
  p->dev_view = NULL;
}

const model_params *model_params_device(const model_params *p) {
  return p->dev_view ? p->dev_view : p;
}

void model_params_sync_work(model_params *p) {
  if (!on_device(p) || !p->dev_work) return;
  p->be->convert(p->be, p->dev_work, p->be->act_dtype, p->dev_data, GRPO_F32, p->total);
}

int model_params_to_device(model_params *p, grpo_error *err) {
  if (!on_device(p)) return GRPO_OK;
  int rc = p->be->copy_h2d(p->be, p->dev_data, p->data, p->total * sizeof(float), err);
  if (!rc) model_params_sync_work(p);
  return rc;
}

int model_params_to_host(model_params *p, grpo_error *err) {
  if (!on_device(p)) return GRPO_OK;
  return p->be->copy_d2h(p->be, p->data, p->dev_data, p->total * sizeof(float), err);
}

int model_params_grads_to_host(model_params *p, grpo_error *err) {
  if (!on_device(p) || !p->dev_grad) return GRPO_OK;
  if (!p->grad)
    return GRPO_FAIL(err, GRPO_EINVAL, "gradients: no host buffer (model_params_alloc_grad)");
  return p->be->copy_d2h(p->be, p->grad, p->dev_grad, p->total * sizeof(float), err);
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
  return model_params_to_device(dst, err);
}
