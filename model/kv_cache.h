/* KV cache for decode: a static slab per tensor,
 *   K, V: [n_layers, n_slots, max_len, n_kv_heads, head_dim]
 * in the backend's activation type (f32 on the host, bf16 on a bf16 device),
 * holding post-RoPE keys (after k_norm for qwen3) and values, with the
 * number of tokens each slot holds. Memory, exactly what init allocates:
 *   model_kv_cache_bytes = 2 * L * slots * max_len * nkv * hd * elem
 *                          + slots * sizeof(int)     (elem 4 for f32, 2 for bf16)
 * e.g. the bench model (L 8, nkv 2, hd 64): 8 KiB per token per slot.
 * Prefill and decode steps live in model/transformer.h; prefix sharing (a group
 * of G samples prefills its prompt once) is model_kv_cache_copy_prefix.
 *
 * K and V are backend memory (the transformer's kv_write / attn_decode read
 * them): host memory (malloc, as before) for model_kv_cache_init and for a
 * host-memory backend, be->alloc on a device (model_kv_cache_init_on). The
 * per-slot lengths stay on the host either way: the decode path validates
 * and advances them there. */
#ifndef GRPO_MODEL_KV_CACHE_H
#define GRPO_MODEL_KV_CACHE_H

#include <stddef.h>

#include "core/backend.h"
#include "core/error.h"
#include "model/model_config.h"

typedef struct model_kv_cache {
  int n_layers, n_slots, max_len, n_kv_heads, head_dim;
  void *k, *v;    /* [L, slots, max_len, nkv, hd] each; backend memory */
  size_t elem;    /* bytes per element: the backend's activation type */
  int *len;       /* [slots] tokens held by each slot; host memory */
  grpo_backend *be; /* device backend owning k / v; NULL: host memory */
} model_kv_cache;

/* Bytes of an f32 (host) cache; model_kv_cache_bytes_on for be's activation type. */
size_t model_kv_cache_bytes(const model_config *cfg, int n_slots, int max_len);
size_t model_kv_cache_bytes_on(const model_config *cfg, const grpo_backend *be, int n_slots,
                               int max_len);

/* A cache in host memory (the CPU backend's memory). */
int model_kv_cache_init(model_kv_cache *c, const model_config *cfg, int n_slots, int max_len,
                        grpo_error *err);
/* A cache in be's memory: host memory (exactly model_kv_cache_init) when be is
 * NULL or a host-memory backend, be->alloc on a device (not zeroed: rows are
 * written before they are read). */
int model_kv_cache_init_on(model_kv_cache *c, const model_config *cfg, grpo_backend *be,
                           int n_slots, int max_len, grpo_error *err);
void model_kv_cache_free(model_kv_cache *c);

/* Empties one slot (its memory is reused by the next prefill). */
int model_kv_cache_reset(model_kv_cache *c, int slot, grpo_error *err);

/* Copies the first n_tokens of src into each dst slot (which then hold exactly
 * n_tokens): the prompt prefilled once serves every sample of its group. */
int model_kv_cache_copy_prefix(model_kv_cache *c, int src, const int *dst, int n_dst,
                               int n_tokens, grpo_error *err);

/* Row of layer l, slot s, position t (nkv * hd elements): a backend pointer
 * (dereference it only for a host cache). */
static inline void *model_kv_cache_k(const model_kv_cache *c, int l, int s, int t) {
  return (char *)c->k + (((size_t)l * c->n_slots + s) * c->max_len + t) *
                            (size_t)c->n_kv_heads * c->head_dim * c->elem;
}
static inline void *model_kv_cache_v(const model_kv_cache *c, int l, int s, int t) {
  return (char *)c->v + (((size_t)l * c->n_slots + s) * c->max_len + t) *
                            (size_t)c->n_kv_heads * c->head_dim * c->elem;
}

#endif
