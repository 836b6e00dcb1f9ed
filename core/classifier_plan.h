/* The fused classifier's plan, the same on every backend: rows and vocab
 * entries per chunk, and how the caller's workspace is cut into the chunk
 * buffers (only the default chunk sizes and the alignment differ). Private
 * to the backends; C and CUDA C++. */
#ifndef GRPO_CORE_CLASSIFIER_PLAN_H
#define GRPO_CORE_CLASSIFIER_PLAN_H

#include <stddef.h>

#include "core/backend.h"

typedef struct grpo_cls_ws {
  float *hbuf, *dhbuf, *z;   /* chunk rows of hidden, their gradient, logits */
  double *m, *sum, *sz;      /* online max, sum of exp, sum of z exp per row */
  float *zt;                 /* the target's logit per row */
} grpo_cls_ws;

static inline void grpo_cls_chunks(const grpo_classifier_shape *s, int def_rows, int def_vocab, int *rc, int *vc) {
  int r = s->row_chunk > 0 ? s->row_chunk : def_rows;
  int v = s->vocab_chunk > 0 ? s->vocab_chunk : def_vocab;
  *rc = r < s->n ? r : (s->n > 0 ? s->n : 1);
  *vc = v < s->vocab ? v : s->vocab;
}

/* Bytes the plan needs; with w, also points its buffers into ws. align is
 * a power of two. */
static inline size_t grpo_cls_layout(const grpo_classifier_shape *s, int def_rows, int def_vocab, size_t align,
                                     void *ws, grpo_cls_ws *w) {
  int rc, vc;
  grpo_cls_chunks(s, def_rows, def_vocab, &rc, &vc);
  char *p = (char *)ws;
  size_t off = 0;
#define GRPO_CLS_TAKE(field, type, count)                  \
  do {                                                     \
    if (w) w->field = (type *)(p + off);                   \
    off += (sizeof(type) * (size_t)(count) + align - 1) & ~(align - 1); \
  } while (0)
  GRPO_CLS_TAKE(hbuf, float, (size_t)rc * s->hidden);
  GRPO_CLS_TAKE(dhbuf, float, (size_t)rc * s->hidden);
  GRPO_CLS_TAKE(z, float, (size_t)rc * (vc > 0 ? vc : 1));
  GRPO_CLS_TAKE(m, double, rc);
  GRPO_CLS_TAKE(sum, double, rc);
  GRPO_CLS_TAKE(sz, double, rc);
  GRPO_CLS_TAKE(zt, float, rc);
#undef GRPO_CLS_TAKE
  return off;
}

#endif
