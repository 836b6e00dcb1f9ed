/* Decoder forward / backward / decode, sequenced over the backend op table.
 *
 * Activations are in the backend's act_dtype (f32 on the CPU, bf16 or f32 on
 * CUDA): element size m->es, pointers `void *`, offsets through AT(). The
 * per-row statistics (rstd, lse, classifier outputs) and inv_freq are f32.
 * Weights are read from the working copy (model_params_weights: the f32
 * master itself, or its bf16 copy); gradients are f32 whatever the
 * activation type (gemm_wgrad and the f32 dw of every op).
 *
 * Activation plan (elements, T = max_tokens, P = max_pred, W = (nh + 2 nkv) hd):
 *   residual stream res[0..L]            (L+1) T H
 *   per layer (L sets, or 1 with recompute):
 *     x1, mid, x2 (3 T H), qkv (T W), att (T nh hd), gate, up (2 T I),
 *     rstd1, rstd2 (2 T), lse (nh T), qwen3: q/k before the norm (T (nh+nkv) hd)
 *     and their rstd (T (nh+nkv))
 *   final norm xf (T H) + rstd (T); act / dact scratch (T I)
 *   backward scratch: dres, dx (2 T H), dqkv (T W), datt (T nh hd)
 *   classifier: 5 P; decode logits: dec_rows V; op workspace (max over ops)
 *   non-f32 activations: an f32 staging buffer for what the host reads
 *   (hidden states, logits); the segment starts of a plain causal pack
 * Everything lives in one backend allocation made by create. */
#include "model/transformer.h"

#include <stdlib.h>
#include <string.h>

/* rows per decode attention / logits chunk: the CPU's cache-friendly size; a
 * device reads the lm_head once for a whole decode batch of up to 256 */
#define DEC_ROWS_CPU    64
#define DEC_ROWS_DEVICE 256

typedef struct layer_acts {
  void *x1, *qkv, *qk_pre, *att, *mid, *x2, *gate, *up;
  float *rstd1, *rstd_q, *rstd_k, *lse, *rstd2;
} layer_acts;

struct model_transformer {
  const model_params *p;
  const model_config *cfg;
  grpo_backend *be;
  model_plan_opts opts;
  int H, nh, nkv, hd, I, V, L, W, qd, kd, T, P;
  /* Adjacent weights without biases run as one wider sgemm: q/k/v (llama,
   * qwen3) and gate/up (all three families); ldgu is 2I when fused. */
  int fuse_qkv, fuse_gu, ldgu;
  float scale;
  size_t es;         /* bytes per activation element */
  int dec_rows;      /* DEC_ROWS_CPU or DEC_ROWS_DEVICE */
  const void *wts;   /* the weights compute reads (model_params_weights) */
  void *ws;
  size_t ws_bytes;
  void **res;        /* [L+1] */
  layer_acts *acts;  /* [L] or [1] with recompute */
  int n_sets;
  void *xf, *act, *dres, *dx, *dqkv, *datt, *logits;
  float *rstdf, *stage; /* stage: f32 copies for the host (non-f32 activations only) */
  float *cls_lp, *cls_ent, *cls_lse, *d_lp, *d_ent, *inv_freq;
  int32_t *ids, *pos, *tin, *tout, *prow, *ptgt, *slots, *lens, *seg;
  int32_t *h_seg;                     /* host: segment starts of a plain causal pack */
  int n_seg, max_seg;                 /* of the last training batch (0: not plain causal) */
  grpo_sampler *sampler;              /* model_decode_step_sample; NULL unless planned */
  void *opws;
  size_t opws_bytes;
  int32_t *h_pos, *h_slots, *h_lens;  /* host staging for the decode path */
  int fwd_T, fwd_P;                   /* shape of the last training forward; -1 none */
};

/* ---- plan ------------------------------------------------------------------ */

typedef struct carver {
  unsigned char *base;
  size_t off;
} carver;

static void *take(carver *c, size_t bytes) {
  size_t at = (c->off + 63) & ~(size_t)63;
  c->off = at + bytes;
  return c->base ? c->base + at : NULL;
}
#define TAKE_F(c, n) ((float *)take((c), (size_t)(n) * sizeof(float)))
#define TAKE_I(c, n) ((int32_t *)take((c), (size_t)(n) * sizeof(int32_t)))
#define TAKE_A(c, n) take((c), (size_t)(n) * m->es)

/* activation element n past p */
#define AT(p, n) ((void *)((char *)(p) + (size_t)(n) * m->es))

static size_t op_workspace(model_transformer *m) {
  grpo_backend *be = m->be;
  size_t a = be->attn_workspace(be, m->T, m->nh, m->nkv, m->hd);
  int tmax = m->opts.max_cache_len;
  size_t d = be->attn_decode_workspace(be, m->dec_rows, m->nh, tmax);
  grpo_classifier_shape s = {.n = m->P, .hidden = m->H, .vocab = m->V, .ldh = m->H,
                             .temperature = 1.0f, .row_chunk = m->opts.row_chunk};
  size_t c = be->classifier_workspace(be, &s);
  size_t w = a > d ? a : d;
  return w > c ? w : c;
}

/* Lays the workspace out from base (NULL: only measures). Returns the bytes. */
static size_t carve(model_transformer *m, void *base) {
  carver c = {base, 0};
  size_t T = (size_t)m->T, H = (size_t)m->H, I = (size_t)m->I;
  int qkn = m->cfg->qk_norm;
  for (int l = 0; l <= m->L; l++) m->res[l] = TAKE_A(&c, T * H);
  for (int s = 0; s < m->n_sets; s++) {
    layer_acts *a = &m->acts[s];
    a->x1 = TAKE_A(&c, T * H);
    a->rstd1 = TAKE_F(&c, T);
    a->qkv = TAKE_A(&c, T * m->W);
    a->qk_pre = qkn ? TAKE_A(&c, T * (m->qd + m->kd)) : NULL;
    a->rstd_q = qkn ? TAKE_F(&c, T * m->nh) : NULL;
    a->rstd_k = qkn ? TAKE_F(&c, T * m->nkv) : NULL;
    a->att = TAKE_A(&c, T * m->qd);
    a->lse = TAKE_F(&c, T * m->nh);
    a->mid = TAKE_A(&c, T * H);
    a->x2 = TAKE_A(&c, T * H);
    a->rstd2 = TAKE_F(&c, T);
    a->gate = TAKE_A(&c, T * I * (m->fuse_gu ? 2 : 1));
    a->up = m->fuse_gu ? (a->gate ? AT(a->gate, I) : NULL) : TAKE_A(&c, T * I);
  }
  m->xf = TAKE_A(&c, T * H);
  m->rstdf = TAKE_F(&c, T);
  m->act = TAKE_A(&c, T * I);
  m->dres = TAKE_A(&c, T * H);
  m->dx = TAKE_A(&c, T * H);
  m->dqkv = TAKE_A(&c, T * m->W);
  m->datt = TAKE_A(&c, T * m->qd);
  m->logits = TAKE_A(&c, (size_t)m->dec_rows * m->V);
  if (m->es != sizeof(float)) {
    size_t hv = T * H, lv = (size_t)m->dec_rows * m->V;
    m->stage = TAKE_F(&c, hv > lv ? hv : lv);
  }
  m->cls_lp = TAKE_F(&c, m->P);
  m->cls_ent = TAKE_F(&c, m->P);
  m->cls_lse = TAKE_F(&c, m->P);
  m->d_lp = TAKE_F(&c, m->P);
  m->d_ent = TAKE_F(&c, m->P);
  m->inv_freq = TAKE_F(&c, m->hd / 2);
  m->ids = TAKE_I(&c, T);
  m->pos = TAKE_I(&c, T);
  m->tin = TAKE_I(&c, T);
  m->tout = TAKE_I(&c, T);
  m->prow = TAKE_I(&c, m->P);
  m->ptgt = TAKE_I(&c, m->P);
  m->slots = TAKE_I(&c, T);
  m->lens = TAKE_I(&c, T);
  m->seg = TAKE_I(&c, T + 1);
  m->opws = take(&c, m->opws_bytes);
  return c.off;
}

int model_transformer_create(model_transformer **out, const model_params *params,
                             grpo_backend *be, const model_plan_opts *opts, grpo_error *err) {
  *out = NULL;
  if (be->act_dtype != GRPO_F32 && be->act_dtype != GRPO_BF16)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "transformer: backend %s activations are %s "
                     "(f32 or bf16 only)", be->name, grpo_dtype_name(be->act_dtype));
  if (be->act_dtype != GRPO_F32 && !params->work)
    return GRPO_FAIL(err, GRPO_EINVAL, "transformer: %s activations need the parameters bound "
                     "to the backend (model_params_bind, then model_params_device)",
                     grpo_dtype_name(be->act_dtype));
  if (!opts || opts->max_tokens <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "transformer: plan max_tokens must be > 0");
  if (opts->max_pred < 0 || opts->row_chunk < 0 || opts->max_cache_len < 0 ||
      opts->sample_rows < 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "transformer: plan sizes must be >= 0");
  const model_config *cfg = &params->cfg;
  model_transformer *m = calloc(1, sizeof *m);
  if (!m) return GRPO_FAIL(err, GRPO_ENOMEM, "transformer: out of memory");
  m->p = params;
  m->cfg = cfg;
  m->be = be;
  m->opts = *opts;
  m->es = grpo_dtype_size(be->act_dtype);
  m->dec_rows = be->kind == GRPO_DEVICE_CPU ? DEC_ROWS_CPU : DEC_ROWS_DEVICE;
  m->wts = model_params_weights(params);
  if (m->opts.max_pred == 0) m->opts.max_pred = opts->max_tokens;
  if (m->opts.max_cache_len == 0) m->opts.max_cache_len = opts->max_tokens;
  m->H = cfg->hidden;
  m->nh = cfg->n_heads;
  m->nkv = cfg->n_kv_heads;
  m->hd = cfg->head_dim;
  m->I = cfg->ffn;
  m->V = cfg->vocab;
  m->L = cfg->n_layers;
  m->qd = m->nh * m->hd;
  m->kd = m->nkv * m->hd;
  m->W = m->qd + 2 * m->kd;
  m->T = opts->max_tokens;
  m->P = m->opts.max_pred;
  m->scale = 1.0f / sqrtf((float)m->hd);
  m->n_sets = opts->recompute ? 1 : m->L;
  m->fwd_T = -1;
  m->fuse_qkv = m->fuse_gu = !opts->no_fuse;
  for (int l = 0; l < m->L; l++) {
    const model_layer_offsets *o = &params->layers[l];
    size_t H = (size_t)m->H;
    if (o->q_b != MODEL_NO_PARAM || o->k_b != MODEL_NO_PARAM || o->v_b != MODEL_NO_PARAM ||
        o->k_w != o->q_w + (size_t)m->qd * H || o->v_w != o->k_w + (size_t)m->kd * H)
      m->fuse_qkv = 0;
    if (o->gate_b != MODEL_NO_PARAM || o->up_b != MODEL_NO_PARAM ||
        o->up_w != o->gate_w + (size_t)m->I * H)
      m->fuse_gu = 0;
  }
  m->ldgu = m->fuse_gu ? 2 * m->I : m->I;
  m->res = calloc((size_t)m->L + 1, sizeof *m->res);
  m->acts = calloc((size_t)m->n_sets, sizeof *m->acts);
  m->h_pos = malloc((size_t)m->T * sizeof(int32_t));
  m->h_slots = malloc((size_t)m->T * sizeof(int32_t));
  m->h_lens = malloc((size_t)m->T * sizeof(int32_t));
  m->h_seg = malloc(((size_t)m->T + 1) * sizeof(int32_t));
  if (!m->res || !m->acts || !m->h_pos || !m->h_slots || !m->h_lens || !m->h_seg) {
    model_transformer_free(m);
    return GRPO_FAIL(err, GRPO_ENOMEM, "transformer: out of memory");
  }
  m->opws_bytes = op_workspace(m);
  m->ws_bytes = carve(m, NULL);
  int rc = be->alloc(be, m->ws_bytes, &m->ws, err);
  if (rc) {
    int T = m->T;
    model_transformer_free(m);
    grpo_error_prefix(err, "transformer workspace (%d tokens)", T);
    return rc;
  }
  carve(m, m->ws);
  float *inv = malloc(sizeof(float) * (size_t)(m->hd / 2));
  if (!inv) {
    model_transformer_free(m);
    return GRPO_FAIL(err, GRPO_ENOMEM, "transformer: out of memory");
  }
  model_config_rope_inv_freq(cfg, inv);
  rc = be->copy_h2d(be, m->inv_freq, inv, sizeof(float) * (size_t)(m->hd / 2), err);
  free(inv);
  if (!rc && opts->sample_rows > 0) {
    int rows = opts->sample_rows < m->dec_rows ? opts->sample_rows : m->dec_rows;
    rc = grpo_sampler_create(be, rows, m->V, &m->sampler, err);
  }
  if (rc) {
    model_transformer_free(m);
    return rc;
  }
  *out = m;
  return GRPO_OK;
}

void model_transformer_free(model_transformer *m) {
  if (!m) return;
  grpo_sampler_free(m->sampler);
  if (m->ws) m->be->free(m->be, m->ws);
  free(m->h_seg);
  free(m->res);
  free(m->acts);
  free(m->h_pos);
  free(m->h_slots);
  free(m->h_lens);
  free(m);
}

size_t model_transformer_workspace_bytes(const model_transformer *m) { return m->ws_bytes; }

int model_transformer_sample_rows(const model_transformer *m) {
  return m->sampler ? m->opts.sample_rows : 0;
}

/* ---- parameters ------------------------------------------------------------ */

static const void *W(const model_transformer *m, size_t off) {
  return off == MODEL_NO_PARAM ? NULL : (const char *)m->wts + off * m->es;
}
static float *G(const model_transformer *m, size_t off) {
  return off == MODEL_NO_PARAM ? NULL : m->p->grad + off;
}

/* ---- one layer ------------------------------------------------------------- */

/* y[T, n] = x[T, k] . w[n, k]^T (+ b), beta 0 or 1 (accumulate into y) */
static void linear(model_transformer *m, void *y, int64_t ldy, const void *x, int64_t ldx,
                   const void *w, const void *b, int T, int n, int k, float beta) {
  m->be->sgemm(m->be, 0, 1, T, n, k, 1.0f, x, ldx, w, k, beta, y, ldy);
  if (b) m->be->bias_add(m->be, y, ldy, b, T, n);
}

/* dx[T, k] (=, or += when beta 1) = dy[T, n] . w[n, k]; dw[n, k] += dy^T x; db += colsum dy */
static void linear_bwd(model_transformer *m, void *dx, int64_t lddx, float beta, const void *dy,
                       int64_t lddy, const void *x, int64_t ldx, const void *w, float *dw,
                       float *db, int T, int n, int k) {
  grpo_backend *be = m->be;
  if (db) be->bias_grad(be, db, dy, lddy, T, n);
  be->gemm_wgrad(be, 1, 0, n, k, T, 1.0f, dy, lddy, x, ldx, dw, k);
  if (dx) be->sgemm(be, 0, 0, T, k, n, 1.0f, dy, lddy, w, k, beta, dx, lddx);
}

/* Input norm, q/k/v projections, q/k norm and RoPE for T rows of `in`. */
static void attn_inputs(model_transformer *m, const model_layer_offsets *o, layer_acts *a,
                        const void *in, int T) {
  grpo_backend *be = m->be;
  const float eps = m->cfg->rms_eps;
  be->rmsnorm_fwd(be, a->x1, m->H, a->rstd1, in, m->H, W(m, o->input_norm), T, 1, m->H, eps);
  if (m->fuse_qkv) {
    linear(m, a->qkv, m->W, a->x1, m->H, W(m, o->q_w), NULL, T, m->W, m->H, 0.0f);
  } else {
    linear(m, a->qkv, m->W, a->x1, m->H, W(m, o->q_w), W(m, o->q_b), T, m->qd, m->H, 0.0f);
    linear(m, AT(a->qkv, m->qd), m->W, a->x1, m->H, W(m, o->k_w), W(m, o->k_b), T, m->kd, m->H,
           0.0f);
    linear(m, AT(a->qkv, m->qd + m->kd), m->W, a->x1, m->H, W(m, o->v_w), W(m, o->v_b), T, m->kd,
           m->H, 0.0f);
  }
  if (m->cfg->qk_norm) {
    int qk = m->qd + m->kd;
    be->copy2d(be, a->qk_pre, qk, a->qkv, m->W, T, qk);
    be->rmsnorm_fwd(be, a->qkv, m->W, a->rstd_q, a->qk_pre, qk, W(m, o->q_norm), T, m->nh, m->hd,
                    eps);
    be->rmsnorm_fwd(be, AT(a->qkv, m->qd), m->W, a->rstd_k, AT(a->qk_pre, m->qd), qk,
                    W(m, o->k_norm), T, m->nkv, m->hd, eps);
  }
  be->rope_fwd(be, a->qkv, m->W, T, m->nh, m->hd, m->pos, m->inv_freq);
  be->rope_fwd(be, AT(a->qkv, m->qd), m->W, T, m->nkv, m->hd, m->pos, m->inv_freq);
}

/* h (the residual, [T, H]) += MLP(norm(h)); a->x2, gate, up, rstd2 are kept. */
static void mlp_fwd(model_transformer *m, const model_layer_offsets *o, layer_acts *a, void *h,
                    int T) {
  grpo_backend *be = m->be;
  be->rmsnorm_fwd(be, a->x2, m->H, a->rstd2, h, m->H, W(m, o->post_norm), T, 1, m->H,
                  m->cfg->rms_eps);
  const int ld = m->ldgu;
  if (m->fuse_gu) {
    linear(m, a->gate, ld, a->x2, m->H, W(m, o->gate_w), NULL, T, 2 * m->I, m->H, 0.0f);
  } else {
    linear(m, a->gate, ld, a->x2, m->H, W(m, o->gate_w), W(m, o->gate_b), T, m->I, m->H, 0.0f);
    linear(m, a->up, ld, a->x2, m->H, W(m, o->up_w), W(m, o->up_b), T, m->I, m->H, 0.0f);
  }
  be->swiglu_fwd(be, m->act, m->I, a->gate, ld, a->up, ld, T, m->I);
  linear(m, h, m->H, m->act, m->I, W(m, o->down_w), W(m, o->down_b), T, m->H, m->I, 1.0f);
}

static grpo_attn_shape attn_shape(const model_transformer *m, const void *qkv, int T) {
  grpo_attn_shape s = {.T = T, .nh = m->nh, .nkv = m->nkv, .hd = m->hd, .scale = m->scale,
                       .q = qkv, .ldq = m->W, .k = AT(qkv, m->qd), .ldk = m->W,
                       .v = AT(qkv, m->qd + m->kd), .ldv = m->W, .tin = m->tin, .tout = m->tout,
                       .n_seg = m->n_seg, .max_seg = m->max_seg, .seg_start = m->seg};
  return s;
}

/* Training layer forward: in -> out (out NULL: stop before the MLP's residual
 * output, as the recompute in backward needs only the saved activations). */
static void layer_fwd(model_transformer *m, int l, layer_acts *a, const void *in, void *out,
                      int T) {
  grpo_backend *be = m->be;
  const model_layer_offsets *o = &m->p->layers[l];
  attn_inputs(m, o, a, in, T);
  grpo_attn_shape s = attn_shape(m, a->qkv, T);
  be->attn_fwd(be, &s, a->att, m->qd, a->lse, m->opws, m->opws_bytes);
  be->copy_d2d(be, a->mid, in, m->es * (size_t)T * m->H, NULL);
  linear(m, a->mid, m->H, a->att, m->qd, W(m, o->o_w), W(m, o->o_b), T, m->H, m->qd, 1.0f);
  if (out) {
    be->copy_d2d(be, out, a->mid, m->es * (size_t)T * m->H, NULL);
    mlp_fwd(m, o, a, out, T);
  } else {
    void *scratch = m->dx;  /* the residual output is not needed: write it to scratch */
    be->copy_d2d(be, scratch, a->mid, m->es * (size_t)T * m->H, NULL);
    mlp_fwd(m, o, a, scratch, T);
  }
}

/* m->dres holds dL/d(out); on return it holds dL/d(in). */
static void layer_bwd(model_transformer *m, int l, layer_acts *a, const void *in, int T) {
  grpo_backend *be = m->be;
  const model_layer_offsets *o = &m->p->layers[l];
  const int H = m->H, I = m->I, qd = m->qd, kd = m->kd, Wd = m->W, ld = m->ldgu;
  /* MLP: act is recomputed (it was scratch), then reused for dact */
  be->swiglu_fwd(be, m->act, I, a->gate, ld, a->up, ld, T, I);
  linear_bwd(m, NULL, 0, 0.0f, m->dres, H, m->act, I, W(m, o->down_w), G(m, o->down_w),
             G(m, o->down_b), T, H, I);
  be->sgemm(be, 0, 0, T, I, H, 1.0f, m->dres, H, W(m, o->down_w), I, 0.0f, m->act, I);
  be->swiglu_bwd(be, a->gate, ld, a->up, ld, m->act, I, a->gate, ld, a->up, ld, T, I);
  if (m->fuse_gu) {
    linear_bwd(m, m->dx, H, 0.0f, a->gate, ld, a->x2, H, W(m, o->gate_w), G(m, o->gate_w), NULL,
               T, 2 * I, H);
  } else {
    linear_bwd(m, m->dx, H, 0.0f, a->gate, ld, a->x2, H, W(m, o->gate_w), G(m, o->gate_w),
               G(m, o->gate_b), T, I, H);
    linear_bwd(m, m->dx, H, 1.0f, a->up, ld, a->x2, H, W(m, o->up_w), G(m, o->up_w),
               G(m, o->up_b), T, I, H);
  }
  be->rmsnorm_bwd(be, m->dres, H, 1, G(m, o->post_norm), m->dx, H, a->mid, H, W(m, o->post_norm),
                  a->rstd2, T, 1, H);
  /* attention */
  linear_bwd(m, m->datt, qd, 0.0f, m->dres, H, a->att, qd, W(m, o->o_w), G(m, o->o_w),
             G(m, o->o_b), T, H, qd);
  grpo_attn_shape s = attn_shape(m, a->qkv, T);
  be->attn_bwd(be, &s, a->att, qd, a->lse, m->datt, qd, m->dqkv, AT(m->dqkv, qd),
               AT(m->dqkv, qd + kd), m->opws, m->opws_bytes);
  be->rope_bwd(be, m->dqkv, Wd, T, m->nh, m->hd, m->pos, m->inv_freq);
  be->rope_bwd(be, AT(m->dqkv, qd), Wd, T, m->nkv, m->hd, m->pos, m->inv_freq);
  if (m->cfg->qk_norm) {
    int qk = qd + kd;
    be->rmsnorm_bwd(be, m->dqkv, Wd, 0, G(m, o->q_norm), m->dqkv, Wd, a->qk_pre, qk,
                    W(m, o->q_norm), a->rstd_q, T, m->nh, m->hd);
    be->rmsnorm_bwd(be, AT(m->dqkv, qd), Wd, 0, G(m, o->k_norm), AT(m->dqkv, qd), Wd,
                    AT(a->qk_pre, qd), qk, W(m, o->k_norm), a->rstd_k, T, m->nkv, m->hd);
  }
  if (m->fuse_qkv) {
    linear_bwd(m, m->dx, H, 0.0f, m->dqkv, Wd, a->x1, H, W(m, o->q_w), G(m, o->q_w), NULL, T, Wd,
               H);
  } else {
    linear_bwd(m, m->dx, H, 0.0f, m->dqkv, Wd, a->x1, H, W(m, o->q_w), G(m, o->q_w),
               G(m, o->q_b), T, qd, H);
    linear_bwd(m, m->dx, H, 1.0f, AT(m->dqkv, qd), Wd, a->x1, H, W(m, o->k_w), G(m, o->k_w),
               G(m, o->k_b), T, kd, H);
    linear_bwd(m, m->dx, H, 1.0f, AT(m->dqkv, qd + kd), Wd, a->x1, H, W(m, o->v_w), G(m, o->v_w),
               G(m, o->v_b), T, kd, H);
  }
  be->rmsnorm_bwd(be, m->dres, H, 1, G(m, o->input_norm), m->dx, H, in, H, W(m, o->input_norm),
                  a->rstd1, T, 1, H);
}

/* ---- training forward / backward ------------------------------------------- */

static int check_batch(const model_transformer *m, const model_batch *b, grpo_error *err) {
  int T = b->n_tokens, P = b->n_pred;
  if (T <= 0 || T > m->T)
    return GRPO_FAIL(err, GRPO_EINVAL, "batch: n_tokens %d outside [1, %d] (the plan's max_tokens)",
                     T, m->T);
  if (P < 0 || P > m->P)
    return GRPO_FAIL(err, GRPO_EINVAL, "batch: n_pred %d outside [0, %d] (the plan's max_pred)", P,
                     m->P);
  for (int i = 0; i < T; i++) {
    if (b->ids[i] < 0 || b->ids[i] >= m->V)
      return GRPO_FAIL(err, GRPO_EINVAL, "batch: ids[%d] = %d outside the vocabulary [0, %d)", i,
                       b->ids[i], m->V);
    if (b->pos[i] < 0)
      return GRPO_FAIL(err, GRPO_EINVAL, "batch: pos[%d] = %d is negative", i, b->pos[i]);
    if (b->tin[i] < 0 || b->tin[i] >= T || b->tout[i] < b->tin[i] || b->tout[i] >= T)
      return GRPO_FAIL(err, GRPO_EINVAL, "batch: token %d has interval [%d, %d] outside [0, %d)", i,
                       b->tin[i], b->tout[i], T);
  }
  for (int k = 0; k < P; k++) {
    if (b->pred_row[k] < 0 || b->pred_row[k] >= T)
      return GRPO_FAIL(err, GRPO_EINVAL, "batch: pred_row[%d] = %d outside [0, %d)", k,
                       b->pred_row[k], T);
    if (b->pred_target[k] < 0 || b->pred_target[k] >= m->V)
      return GRPO_FAIL(err, GRPO_EINVAL, "batch: pred_target[%d] = %d outside the vocabulary [0, %d)",
                       k, b->pred_target[k], m->V);
  }
  return GRPO_OK;
}

/* A plain causal pack (tin[i] = i, tout[i] = the last token of i's segment)
 * is described to the backend by its segment starts, so it may run a fused
 * causal kernel; any other pack (a trie) gets n_seg = 0. */
static int find_segments(model_transformer *m, const model_batch *b, grpo_error *err) {
  const int T = b->n_tokens;
  int n = 0, longest = 0;
  m->n_seg = m->max_seg = 0;
  for (int i = 0; i < T; i++) {
    if (b->tin[i] != i) return GRPO_OK;
    if (i == 0 || b->tout[i - 1] == i - 1)
      m->h_seg[n++] = i;
    else if (b->tout[i] != b->tout[i - 1])
      return GRPO_OK;
  }
  m->h_seg[n] = T;
  for (int k = 0; k < n; k++)
    if (m->h_seg[k + 1] - m->h_seg[k] > longest) longest = m->h_seg[k + 1] - m->h_seg[k];
  int rc = m->be->copy_h2d(m->be, m->seg, m->h_seg, sizeof(int32_t) * ((size_t)n + 1), err);
  if (rc) return rc;
  m->n_seg = n;
  m->max_seg = longest;
  return GRPO_OK;
}

/* n activation elements of backend memory src into f32 host memory dst. */
static int to_host_f32(model_transformer *m, float *dst, const void *src, size_t n,
                       grpo_error *err) {
  grpo_backend *be = m->be;
  if (m->es == sizeof(float)) return be->copy_d2h(be, dst, src, n * sizeof(float), err);
  be->convert(be, m->stage, GRPO_F32, src, be->act_dtype, n);
  return be->copy_d2h(be, dst, m->stage, n * sizeof(float), err);
}

static grpo_classifier_shape cls_shape(const model_transformer *m, const model_batch *b) {
  grpo_classifier_shape s = {.n = b->n_pred, .hidden = m->H, .vocab = m->V, .h = m->xf,
                             .ldh = m->H, .rows = m->prow, .w = W(m, m->p->lm_head),
                             .targets = m->ptgt,
                             .temperature = b->temperature > 0 ? b->temperature : 1.0f,
                             .row_chunk = m->opts.row_chunk};
  return s;
}

int model_forward(model_transformer *m, const model_batch *b, float *logprob, float *entropy,
                  float *hidden, grpo_error *err) {
  int rc = check_batch(m, b, err);
  if (rc) return rc;
  grpo_backend *be = m->be;
  const int T = b->n_tokens, P = b->n_pred, H = m->H;
  size_t ti = sizeof(int32_t) * (size_t)T, pi = sizeof(int32_t) * (size_t)P;
  if ((rc = be->copy_h2d(be, m->ids, b->ids, ti, err)) || (rc = be->copy_h2d(be, m->pos, b->pos, ti, err)) ||
      (rc = be->copy_h2d(be, m->tin, b->tin, ti, err)) ||
      (rc = be->copy_h2d(be, m->tout, b->tout, ti, err)) ||
      (rc = be->copy_h2d(be, m->prow, b->pred_row, pi, err)) ||
      (rc = be->copy_h2d(be, m->ptgt, b->pred_target, pi, err)) ||
      (rc = find_segments(m, b, err)))
    return rc;
  m->fwd_T = -1;
  be->embed_fwd(be, m->res[0], H, W(m, m->p->embed), m->ids, T, H);
  for (int l = 0; l < m->L; l++)
    layer_fwd(m, l, &m->acts[m->n_sets == 1 ? 0 : l], m->res[l], m->res[l + 1], T);
  be->rmsnorm_fwd(be, m->xf, H, m->rstdf, m->res[m->L], H, W(m, m->p->final_norm), T, 1, H,
                  m->cfg->rms_eps);
  if (P > 0) {
    grpo_classifier_shape s = cls_shape(m, b);
    be->classifier_fwd(be, &s, m->cls_lp, m->cls_ent, m->cls_lse, m->opws, m->opws_bytes);
  }
  if ((rc = be->sync(be, err))) return rc;
  if ((rc = be->copy_d2h(be, logprob, m->cls_lp, sizeof(float) * (size_t)P, err))) return rc;
  if (entropy && (rc = be->copy_d2h(be, entropy, m->cls_ent, sizeof(float) * (size_t)P, err)))
    return rc;
  if (hidden && (rc = to_host_f32(m, hidden, m->xf, (size_t)T * H, err))) return rc;
  m->fwd_T = T;
  m->fwd_P = P;
  return GRPO_OK;
}

int model_backward(model_transformer *m, const model_batch *b, const float *dlogprob,
                   const float *dentropy, grpo_error *err) {
  if (!m->p->grad)
    return GRPO_FAIL(err, GRPO_EINVAL, "backward: the gradient buffer is not allocated");
  if (m->fwd_T != b->n_tokens || m->fwd_P != b->n_pred)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "backward: batch (%d tokens, %d predictions) is not the last forward's",
                     b->n_tokens, b->n_pred);
  grpo_backend *be = m->be;
  const int T = b->n_tokens, P = b->n_pred, H = m->H;
  int rc;
  if ((rc = be->copy_h2d(be, m->d_lp, dlogprob, sizeof(float) * (size_t)P, err))) return rc;
  if (dentropy && (rc = be->copy_h2d(be, m->d_ent, dentropy, sizeof(float) * (size_t)P, err)))
    return rc;
  be->memset(be, m->dx, 0, m->es * (size_t)T * H);
  if (P > 0) {
    grpo_classifier_shape s = cls_shape(m, b);
    be->classifier_bwd(be, &s, m->cls_lse, m->cls_ent, m->d_lp, dentropy ? m->d_ent : NULL, m->dx,
                       H, G(m, m->p->lm_head), m->opws, m->opws_bytes);
  }
  be->rmsnorm_bwd(be, m->dres, H, 0, G(m, m->p->final_norm), m->dx, H, m->res[m->L], H,
                  W(m, m->p->final_norm), m->rstdf, T, 1, H);
  for (int l = m->L - 1; l >= 0; l--) {
    layer_acts *a = &m->acts[m->n_sets == 1 ? 0 : l];
    /* with recompute the one set still holds the last layer from the forward */
    if (m->n_sets == 1 && l != m->L - 1) layer_fwd(m, l, a, m->res[l], NULL, T);
    layer_bwd(m, l, a, m->res[l], T);
  }
  be->embed_bwd(be, G(m, m->p->embed), m->dres, H, m->ids, T, H);
  /* the recompute clobbered the saved set: a second backward needs a new forward */
  if (m->n_sets == 1) m->fwd_T = -1;
  return be->sync(be, err);
}

/* ---- decode ------------------------------------------------------------------ */

/* Runs n rows (token ids[i] into slot h_slots[i] at position h_pos[i]) through
 * the layers, writing K/V into the cache; leaves the last residual in res[0]. */
static int extend_rows(model_transformer *m, model_kv_cache *c, const int32_t *ids, int n,
                       grpo_error *err) {
  grpo_backend *be = m->be;
  const int H = m->H;
  int rc;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= m->V)
      return GRPO_FAIL(err, GRPO_EINVAL, "decode: token id %d (row %d) outside the vocabulary [0, %d)",
                       ids[i], i, m->V);
    m->h_lens[i] = m->h_pos[i] + 1;
  }
  size_t ti = sizeof(int32_t) * (size_t)n;
  if ((rc = be->copy_h2d(be, m->ids, ids, ti, err)) || (rc = be->copy_h2d(be, m->pos, m->h_pos, ti, err)) ||
      (rc = be->copy_h2d(be, m->slots, m->h_slots, ti, err)) ||
      (rc = be->copy_h2d(be, m->lens, m->h_lens, ti, err)))
    return rc;
  void *h = m->res[0];
  layer_acts *a = &m->acts[0];
  size_t layer_bytes = (size_t)c->n_slots * c->max_len * m->kd * c->elem;
  if (c->elem != m->es)
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: kv cache holds %zu-byte elements, the backend %zu "
                     "(allocate it with model_kv_cache_init_on the model's backend)", c->elem, m->es);
  be->embed_fwd(be, h, H, W(m, m->p->embed), m->ids, n, H);
  for (int l = 0; l < m->L; l++) {
    const model_layer_offsets *o = &m->p->layers[l];
    attn_inputs(m, o, a, h, n);
    void *kc = (char *)c->k + l * layer_bytes, *vc = (char *)c->v + l * layer_bytes;
    be->kv_write(be, kc, AT(a->qkv, m->qd), m->W, m->slots, m->pos, n, m->kd, c->max_len);
    be->kv_write(be, vc, AT(a->qkv, m->qd + m->kd), m->W, m->slots, m->pos, n, m->kd, c->max_len);
    be->copy2d(be, m->datt, m->qd, a->qkv, m->W, n, m->qd);  /* attn_decode wants q contiguous */
    for (int r = 0; r < n; r += m->dec_rows) {
      int nr = n - r < m->dec_rows ? n - r : m->dec_rows;
      be->attn_decode(be, AT(a->att, (size_t)r * m->qd), AT(m->datt, (size_t)r * m->qd), kc, vc,
                      m->slots + r, m->lens + r, nr, m->nh, m->nkv, m->hd, c->max_len, m->scale,
                      m->opws, m->opws_bytes);
    }
    linear(m, h, H, a->att, m->qd, W(m, o->o_w), W(m, o->o_b), n, H, m->qd, 1.0f);
    mlp_fwd(m, o, a, h, n);
  }
  return GRPO_OK;
}

/* The logits of nr (<= dec_rows) residual rows starting at h into m->logits. */
static void logits_chunk(model_transformer *m, const void *h, int nr) {
  grpo_backend *be = m->be;
  be->rmsnorm_fwd(be, m->xf, m->H, m->rstdf, h, m->H, W(m, m->p->final_norm), nr, 1, m->H,
                  m->cfg->rms_eps);
  linear(m, m->logits, m->V, m->xf, m->H, W(m, m->p->lm_head), NULL, nr, m->V, m->H, 0.0f);
}

/* logits [rows, V] (host, f32) of `rows` residual rows starting at h. */
static int logits_rows(model_transformer *m, const void *h, int rows, float *logits,
                       grpo_error *err) {
  for (int r = 0; r < rows; r += m->dec_rows) {
    int nr = rows - r < m->dec_rows ? rows - r : m->dec_rows;
    logits_chunk(m, AT(h, (size_t)r * m->H), nr);
    int rc = to_host_f32(m, logits + (size_t)r * m->V, m->logits, (size_t)nr * m->V, err);
    if (rc) return rc;
  }
  return GRPO_OK;
}

static int check_cache(const model_transformer *m, const model_kv_cache *c, grpo_error *err) {
  if (c->n_layers != m->L || c->n_kv_heads != m->nkv || c->head_dim != m->hd)
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: kv cache shape (L %d, nkv %d, hd %d) does not match "
                     "the model (L %d, nkv %d, hd %d)", c->n_layers, c->n_kv_heads, c->head_dim,
                     m->L, m->nkv, m->hd);
  if (c->max_len > m->opts.max_cache_len)
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: kv cache max_len %d exceeds the plan's max_cache_len %d",
                     c->max_len, m->opts.max_cache_len);
  return GRPO_OK;
}

int model_prefill(model_transformer *m, model_kv_cache *c, int slot, const int32_t *ids, int n,
                  float *logits, grpo_error *err) {
  int rc = check_cache(m, c, err);
  if (rc) return rc;
  if (slot < 0 || slot >= c->n_slots)
    return GRPO_FAIL(err, GRPO_EINVAL, "prefill: slot %d outside [0, %d)", slot, c->n_slots);
  if (n <= 0 || n > m->T)
    return GRPO_FAIL(err, GRPO_EINVAL, "prefill: %d tokens outside [1, %d] (the plan's max_tokens)",
                     n, m->T);
  int start = c->len[slot];
  if (start + n > c->max_len)
    return GRPO_FAIL(err, GRPO_EINVAL, "prefill: slot %d holds %d tokens; %d more exceed max_len %d",
                     slot, start, n, c->max_len);
  m->fwd_T = -1;
  for (int i = 0; i < n; i++) {
    m->h_slots[i] = slot;
    m->h_pos[i] = start + i;
  }
  if ((rc = extend_rows(m, c, ids, n, err))) return rc;
  c->len[slot] = start + n;
  if (logits && (rc = logits_rows(m, AT(m->res[0], (size_t)(n - 1) * m->H), 1, logits, err)))
    return rc;
  return m->be->sync(m->be, err);
}

/* Validates a decode step's rows and stages their slots and positions. */
static int decode_rows(model_transformer *m, model_kv_cache *c, int n, const int *slots,
                       grpo_error *err) {
  int rc = check_cache(m, c, err);
  if (rc) return rc;
  if (n <= 0 || n > m->T)
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: %d rows outside [1, %d] (the plan's max_tokens)", n,
                     m->T);
  for (int i = 0; i < n; i++) {
    int s = slots[i];
    if (s < 0 || s >= c->n_slots)
      return GRPO_FAIL(err, GRPO_EINVAL, "decode: slots[%d] = %d outside [0, %d)", i, s, c->n_slots);
    if (c->len[s] >= c->max_len)
      return GRPO_FAIL(err, GRPO_EINVAL, "decode: slot %d is full (%d tokens)", s, c->max_len);
    for (int j = 0; j < i; j++)
      if (slots[j] == s)
        return GRPO_FAIL(err, GRPO_EINVAL, "decode: slot %d appears twice (rows %d and %d)", s, j, i);
    m->h_slots[i] = s;
    m->h_pos[i] = c->len[s];
  }
  m->fwd_T = -1;
  return GRPO_OK;
}

int model_decode_step(model_transformer *m, model_kv_cache *c, int n, const int *slots,
                      const int32_t *ids, float *logits, grpo_error *err) {
  int rc;
  if ((rc = decode_rows(m, c, n, slots, err)) || (rc = extend_rows(m, c, ids, n, err))) return rc;
  for (int i = 0; i < n; i++) c->len[slots[i]]++;
  if (logits && (rc = logits_rows(m, m->res[0], n, logits, err))) return rc;
  return m->be->sync(m->be, err);
}

int model_decode_step_sample(model_transformer *m, model_kv_cache *c, int n, const int *slots,
                             const int32_t *ids, int vocab, const grpo_sample_params *p,
                             const double *u, grpo_sample_result *out, grpo_error *err) {
  if (!m->sampler || n > m->opts.sample_rows)
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: %d sampled rows but the plan's sample_rows is %d",
                     n, m->opts.sample_rows);
  if (vocab <= 0 || vocab > m->V)
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: sampling vocab %d outside [1, %d]", vocab, m->V);
  int rc;
  if ((rc = decode_rows(m, c, n, slots, err)) || (rc = extend_rows(m, c, ids, n, err))) return rc;
  for (int i = 0; i < n; i++) c->len[slots[i]]++;
  for (int r = 0; r < n; r += m->dec_rows) {
    int nr = n - r < m->dec_rows ? n - r : m->dec_rows;
    logits_chunk(m, AT(m->res[0], (size_t)r * m->H), nr);
    if ((rc = grpo_sampler_run(m->sampler, m->logits, m->V, nr, vocab, p, u + r, out + r, err)))
      return rc;
  }
  return m->be->sync(m->be, err);
}
