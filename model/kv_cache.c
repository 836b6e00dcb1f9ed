/* KV cache slab: allocation, slot reset and prefix copy. */
#include "model/kv_cache.h"

#include <stdlib.h>
#include <string.h>

/* bytes per element of a cache on be (host memory: f32) */
static size_t kv_elem(const grpo_backend *be) {
  return be && be->kind != GRPO_DEVICE_CPU ? grpo_dtype_size(be->act_dtype) : sizeof(float);
}

size_t model_kv_cache_bytes_on(const model_config *cfg, const grpo_backend *be, int n_slots,
                               int max_len) {
  return 2 * (size_t)cfg->n_layers * (size_t)n_slots * (size_t)max_len *
             (size_t)cfg->n_kv_heads * (size_t)cfg->head_dim * kv_elem(be) +
         (size_t)n_slots * sizeof(int);
}

size_t model_kv_cache_bytes(const model_config *cfg, int n_slots, int max_len) {
  return model_kv_cache_bytes_on(cfg, NULL, n_slots, max_len);
}

int model_kv_cache_init(model_kv_cache *c, const model_config *cfg, int n_slots, int max_len,
                        grpo_error *err) {
  return model_kv_cache_init_on(c, cfg, NULL, n_slots, max_len, err);
}

int model_kv_cache_init_on(model_kv_cache *c, const model_config *cfg, grpo_backend *be,
                           int n_slots, int max_len, grpo_error *err) {
  memset(c, 0, sizeof *c);
  if (be && be->kind == GRPO_DEVICE_CPU) be = NULL; /* host memory: malloc, as ever */
  if (n_slots <= 0 || max_len <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: n_slots (%d) and max_len (%d) must be > 0",
                     n_slots, max_len);
  size_t one = (size_t)cfg->n_layers * n_slots * max_len * cfg->n_kv_heads * cfg->head_dim;
  c->n_layers = cfg->n_layers;
  c->n_slots = n_slots;
  c->max_len = max_len;
  c->n_kv_heads = cfg->n_kv_heads;
  c->head_dim = cfg->head_dim;
  c->elem = kv_elem(be);
  c->len = calloc((size_t)n_slots, sizeof(int));
  if (be) {
    /* one device allocation for K and V */
    void *kv = NULL;
    int rc = c->len ? be->alloc(be, 2 * one * c->elem, &kv, err)
                    : GRPO_FAIL(err, GRPO_ENOMEM, "kv cache: out of memory");
    if (rc) {
      free(c->len);
      memset(c, 0, sizeof *c);
      grpo_error_prefix(err, "kv cache (%d slots x %d tokens) on %s", n_slots, max_len, be->name);
      return rc;
    }
    c->be = be;
    c->k = kv;
    c->v = (char *)kv + one * c->elem;
    return GRPO_OK;
  }
  /* One allocation for K and V; untouched pages are never faulted in. */
  c->k = malloc(2 * one * sizeof(float));
  if (!c->k || !c->len) {
    free(c->k);
    free(c->len);
    memset(c, 0, sizeof *c);
    return GRPO_FAIL(err, GRPO_ENOMEM, "kv cache: cannot allocate %zu bytes (%d slots x %d tokens)",
                     model_kv_cache_bytes(cfg, n_slots, max_len), n_slots, max_len);
  }
  c->v = (float *)c->k + one;
  return GRPO_OK;
}

void model_kv_cache_free(model_kv_cache *c) {
  if (!c) return;
  if (c->be)
    c->be->free(c->be, c->k);
  else
    free(c->k);
  free(c->len);
  memset(c, 0, sizeof *c);
}

int model_kv_cache_reset(model_kv_cache *c, int slot, grpo_error *err) {
  if (slot < 0 || slot >= c->n_slots)
    return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: slot %d out of range [0, %d)", slot, c->n_slots);
  c->len[slot] = 0;
  return GRPO_OK;
}

int model_kv_cache_copy_prefix(model_kv_cache *c, int src, const int *dst, int n_dst,
                               int n_tokens, grpo_error *err) {
  if (src < 0 || src >= c->n_slots)
    return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: source slot %d out of range [0, %d)", src,
                     c->n_slots);
  if (n_tokens < 0 || n_tokens > c->len[src])
    return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: copy of %d tokens but slot %d holds %d",
                     n_tokens, src, c->len[src]);
  for (int i = 0; i < n_dst; i++)
    if (dst[i] < 0 || dst[i] >= c->n_slots)
      return GRPO_FAIL(err, GRPO_EINVAL, "kv cache: destination slot %d (index %d) out of range",
                       dst[i], i);
  size_t row = (size_t)c->n_kv_heads * c->head_dim * c->elem;
  grpo_backend *be = c->be;
  for (int i = 0; i < n_dst; i++) {
    if (dst[i] == src) continue;
    for (int l = 0; l < c->n_layers; l++) {
      if (be) {
        /* queued on the backend's stream, in order with the decode that reads it */
        int rc = be->copy_d2d(be, model_kv_cache_k(c, l, dst[i], 0), model_kv_cache_k(c, l, src, 0),
                              row * n_tokens, err);
        if (!rc)
          rc = be->copy_d2d(be, model_kv_cache_v(c, l, dst[i], 0), model_kv_cache_v(c, l, src, 0),
                            row * n_tokens, err);
        if (rc) return rc;
      } else {
        memcpy(model_kv_cache_k(c, l, dst[i], 0), model_kv_cache_k(c, l, src, 0), row * n_tokens);
        memcpy(model_kv_cache_v(c, l, dst[i], 0), model_kv_cache_v(c, l, src, 0), row * n_tokens);
      }
    }
    c->len[dst[i]] = n_tokens;
  }
  return GRPO_OK;
}
