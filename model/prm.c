#include "model/prm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/transformer.h"

const char *const MODEL_PRM_HEAD_NAMES[MODEL_PRM_N_HEAD] = {
    "score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias"};

struct model_prm {
  model_params params;
  model_prm_head head;
  model_transformer *tf;
  int max_tokens;
  int32_t *pos, *tin, *tout; /* [max_tokens], a single causal sequence */
  float *hidden;             /* [max_tokens, H] */
  float *z;                  /* [H] head activations */
};

int model_prm_head_alloc(model_prm_head *h, int hidden, int n_labels, grpo_error *err) {
  memset(h, 0, sizeof *h);
  if (hidden <= 0 || n_labels <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM head: hidden %d and n_labels %d must be positive",
                     hidden, n_labels);
  size_t H = (size_t)hidden, L = (size_t)n_labels;
  h->mem = calloc(H * H + H + L * H + L, sizeof(float));
  if (!h->mem) return GRPO_FAIL(err, GRPO_ENOMEM, "PRM head: out of memory");
  h->hidden = hidden;
  h->n_labels = n_labels;
  h->w0 = h->mem;
  h->b0 = h->w0 + H * H;
  h->w2 = h->b0 + H;
  h->b2 = h->w2 + L * H;
  return GRPO_OK;
}

void model_prm_head_free(model_prm_head *h) {
  free(h->mem);
  memset(h, 0, sizeof *h);
}

float *model_prm_head_tensor(const model_prm_head *h, int i, int *ndim, int64_t shape[2]) {
  float *const ptr[MODEL_PRM_N_HEAD] = {h->w0, h->b0, h->w2, h->b2};
  const int64_t rows[MODEL_PRM_N_HEAD] = {h->hidden, h->hidden, h->n_labels, h->n_labels};
  if (i < 0 || i >= MODEL_PRM_N_HEAD) return NULL;
  *ndim = (i % 2 == 0) ? 2 : 1;
  shape[0] = rows[i];
  shape[1] = (i % 2 == 0) ? h->hidden : 0;
  return ptr[i];
}

int model_prm_create(model_prm **out, model_params *backbone, model_prm_head *head,
                     grpo_backend *be, int max_tokens, grpo_error *err) {
  *out = NULL;
  if (!backbone->data)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM: the backbone parameters are not loaded");
  if (!head->mem || head->n_labels != 2)
    return GRPO_FAIL(err, GRPO_EFORMAT,
                     "PRM: the head must have 2 labels (score.2.weight [2, H]), got %d",
                     head->n_labels);
  if (head->hidden != backbone->cfg.hidden)
    return GRPO_FAIL(err, GRPO_EFORMAT, "PRM: head hidden size %d differs from the backbone's %d",
                     head->hidden, backbone->cfg.hidden);
  if (max_tokens <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM: max_tokens %d must be positive", max_tokens);
  model_prm *p = calloc(1, sizeof *p);
  if (!p) return GRPO_FAIL(err, GRPO_ENOMEM, "PRM: out of memory");
  size_t T = (size_t)max_tokens, H = (size_t)head->hidden;
  p->pos = malloc(T * sizeof *p->pos);
  p->tin = malloc(T * sizeof *p->tin);
  p->tout = malloc(T * sizeof *p->tout);
  p->hidden = malloc(T * H * sizeof *p->hidden);
  p->z = malloc(H * sizeof *p->z);
  if (!p->pos || !p->tin || !p->tout || !p->hidden || !p->z) {
    free(p->pos), free(p->tin), free(p->tout), free(p->hidden), free(p->z), free(p);
    return GRPO_FAIL(err, GRPO_ENOMEM, "PRM: cannot plan buffers for %d tokens", max_tokens);
  }
  for (int i = 0; i < max_tokens; i++) p->pos[i] = p->tin[i] = i;
  /* The params move into p before the transformer keeps a pointer to them. */
  p->params = *backbone;
  p->head = *head;
  p->max_tokens = max_tokens;
  /* Forward only: recompute keeps one activation set instead of one per layer;
   * one prediction slot keeps the classifier workspace to a single row. */
  model_plan_opts po = {.max_tokens = max_tokens, .max_pred = 1, .recompute = 1};
  /* the backbone on the backend (no copy on the CPU); the head stays on the host */
  int was_bound = p->params.be != NULL;
  int rc = model_params_bind(&p->params, be, err);
  if (!rc) rc = model_transformer_create(&p->tf, model_params_device(&p->params), be, &po, err);
  if (rc) {
    if (!was_bound) model_params_unbind(&p->params);
    memset(&p->params, 0, sizeof p->params); /* still the caller's on failure */
    memset(&p->head, 0, sizeof p->head);
    model_prm_free(p);
    return rc;
  }
  memset(backbone, 0, sizeof *backbone);
  memset(head, 0, sizeof *head);
  *out = p;
  return GRPO_OK;
}

void model_prm_free(model_prm *prm) {
  if (!prm) return;
  model_transformer_free(prm->tf);
  model_params_free(&prm->params);
  model_prm_head_free(&prm->head);
  free(prm->pos);
  free(prm->tin);
  free(prm->tout);
  free(prm->hidden);
  free(prm->z);
  free(prm);
}

int model_prm_max_tokens(const model_prm *prm) { return prm->max_tokens; }

const model_config *model_prm_config(const model_prm *prm) { return &prm->params.cfg; }

/* logits[2] of the head at hidden state h; f32 like the checkpoint's head. */
static void head_logits(const model_prm_head *hd, const float *h, float *z, float *logits) {
  const int H = hd->hidden;
  for (int o = 0; o < H; o++) {
    const float *w = hd->w0 + (size_t)o * H;
    float acc = hd->b0[o];
    for (int i = 0; i < H; i++) acc += w[i] * h[i];
    z[o] = acc > 0.0f ? acc : 0.0f;
  }
  for (int c = 0; c < hd->n_labels; c++) {
    const float *w = hd->w2 + (size_t)c * H;
    float acc = hd->b2[c];
    for (int i = 0; i < H; i++) acc += w[i] * z[i];
    logits[c] = acc;
  }
}

int model_prm_step_scores(model_prm *prm, const int32_t *ids, int n, int32_t sep_id,
                          float *scores, float *logits, int cap, int *n_scores, grpo_error *err) {
  *n_scores = 0;
  if (n <= 0 || n > prm->max_tokens)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM: sequence of %d tokens outside [1, %d] (its max_tokens)",
                     n, prm->max_tokens);
  int count = 0;
  for (int i = 0; i < n; i++) count += ids[i] == sep_id;
  if (count > cap)
    return GRPO_FAIL(err, GRPO_EINVAL, "PRM: %d step separators but room for %d scores", count, cap);
  for (int i = 0; i < n; i++) prm->tout[i] = n - 1;
  model_batch b = {.n_tokens = n, .ids = ids, .pos = prm->pos, .tin = prm->tin,
                   .tout = prm->tout, .n_pred = 0};
  float unused;
  int rc = model_forward(prm->tf, &b, &unused, NULL, prm->hidden, err);
  if (rc) {
    grpo_error_prefix(err, "PRM forward");
    return rc;
  }
  const size_t H = (size_t)prm->head.hidden;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] != sep_id) continue;
    float l[2];
    head_logits(&prm->head, prm->hidden + (size_t)i * H, prm->z, l);
    /* softmax(l)[1] for two labels, stable at either sign of the difference */
    float d = l[0] - l[1];
    scores[k] = d >= 0.0f ? expf(-d) / (1.0f + expf(-d)) : 1.0f / (1.0f + expf(d));
    if (logits) logits[2 * k] = l[0], logits[2 * k + 1] = l[1];
    k++;
  }
  *n_scores = count;
  return GRPO_OK;
}
