/* Token sampling: the host reference (one row) and grpo_sampler on a backend
 * (the reference per row on the CPU, the kernel of core/cuda/sample_cuda.cu
 * on CUDA, host staging on any other device backend). */
#include "core/sample.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/sample_cuda.h"
#include "core/sample_math.h"

/* ---- host reference ------------------------------------------------------- */

int grpo_sample_ws_init(grpo_sample_ws *ws, int vocab, grpo_error *err) {
  memset(ws, 0, sizeof *ws);
  if (vocab <= 0) return GRPO_FAIL(err, GRPO_EINVAL, "sampler: vocabulary of %d entries", vocab);
  ws->vocab = vocab;
  ws->z = malloc(sizeof *ws->z * (size_t)vocab);
  ws->order = malloc(sizeof *ws->order * (size_t)vocab);
  if (!ws->z || !ws->order) {
    grpo_sample_ws_free(ws);
    return GRPO_FAIL(err, GRPO_ENOMEM, "sampler: out of memory for a vocabulary of %d", vocab);
  }
  return GRPO_OK;
}

void grpo_sample_ws_free(grpo_sample_ws *ws) {
  free(ws->z);
  free(ws->order);
  memset(ws, 0, sizeof *ws);
}

/* Max-heap of token ids in the vocabulary order (larger z first; lower id
 * first on ties, so the order is total and the result deterministic). */
static int heap_before(const double *z, int32_t a, int32_t b) {
  return grpo_sample_before(z[a], a, z[b], b);
}

static void sift_down(int32_t *h, int n, int i, const double *z) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, best = i;
    if (l < n && heap_before(z, h[l], h[best])) best = l;
    if (r < n && heap_before(z, h[r], h[best])) best = r;
    if (best == i) return;
    int32_t t = h[i];
    h[i] = h[best];
    h[best] = t;
    i = best;
  }
}

/* Scales ws->z by 1/T in place; returns the max. */
static double scale_z(int vocab, const grpo_sample_params *p, grpo_sample_ws *ws) {
  double *z = ws->z;
  double inv_t = grpo_sample_inv_t(p->temperature);
  double zmax = -INFINITY;
  for (int v = 0; v < vocab; v++) {
    z[v] *= inv_t;
    if (z[v] > zmax) zmax = z[v];
  }
  return zmax;
}

/* Fills ws->order[0..n_kept) with the kept tokens in order and returns
 * n_kept, or 0 when no filter is active (every token kept). */
static int filter(int vocab, const grpo_sample_params *p, double zmax, grpo_sample_ws *ws) {
  const double *z = ws->z;
  int use_k = grpo_sample_use_topk(p->top_k, vocab);
  int use_p = grpo_sample_use_topp(p->top_p);
  int use_min = grpo_sample_use_minp(p->min_p);
  if (!use_k && !use_p && !use_min) return 0;
  int32_t *h = ws->order;
  for (int v = 0; v < vocab; v++) h[v] = v;
  for (int i = vocab / 2 - 1; i >= 0; i--) sift_down(h, vocab, i, z);
  /* Pop in order; popped tokens collect at the end of the array, then are
   * moved to the front. */
  double total = 0;
  if (use_p && !use_k)
    for (int v = 0; v < vocab; v++) total += grpo_sample_weight(z[v], zmax);
  int n = vocab, kept = 0;
  double kth = 0, prefix = 0;
  const double thr = use_min ? grpo_sample_minp_threshold(zmax, p->min_p) : -INFINITY;
  /* Stage 1: top-k (with ties), or top-p / min-p over the whole vocabulary. */
  while (n > 0) {
    int32_t top = h[0];
    if (use_k && grpo_sample_topk_drops(kept, p->top_k, z[top], kth)) break;
    if (!use_k) {
      /* top-p over the whole vocabulary: stop once the exclusive prefix
       * reaches top_p; min-p: stop below the threshold. */
      if (use_p && grpo_sample_topp_drops(kept, prefix, total, p->top_p)) break;
      if (use_min && grpo_sample_minp_drops(kept, z[top], thr)) break;
    }
    h[0] = h[--n];
    sift_down(h, n, 0, z);
    h[n] = top;
    if (use_k && kept == p->top_k - 1) kth = z[top];
    if (!use_k) prefix += grpo_sample_weight(z[top], zmax);
    kept++;
  }
  /* Move the popped tokens (at h[n..vocab), last popped first) to the front
   * in order: reverse them, then shift them down (what is left of the heap
   * is not needed). Swapping h[i] with h[vocab-1-i] for i < kept, as this
   * once did, swaps the middle back when kept > vocab / 2 (the kept list was
   * then partly ascending). */
  for (int i = n, j = vocab - 1; i < j; i++, j--) {
    int32_t t = h[i];
    h[i] = h[j];
    h[j] = t;
  }
  if (n > 0) memmove(h, h + n, sizeof *h * (size_t)kept);
  if (use_k) {
    /* Stage 2 on the top-k set: top-p with its renormalised mass, then min-p. */
    if (use_p) {
      double tot = 0;
      for (int i = 0; i < kept; i++) tot += grpo_sample_weight(z[h[i]], zmax);
      double pre = 0;
      int keep_p = 0;
      for (int i = 0; i < kept; i++) {
        if (grpo_sample_topp_drops(i, pre, tot, p->top_p)) break;
        pre += grpo_sample_weight(z[h[i]], zmax);
        keep_p++;
      }
      kept = keep_p;
    }
    if (use_min) {
      int keep_m = 0;
      for (int i = 0; i < kept; i++) {
        if (grpo_sample_minp_drops(i, z[h[i]], thr)) break;
        keep_m++;
      }
      kept = keep_m;
    }
  }
  /* Without top-k, top-p and min-p are both prefix rules of the order, so
   * applying them one after the other (as transformers does) keeps the
   * shorter prefix: the scan above stopped at whichever came first. */
  return kept;
}

/* Greedy: the first token of the order (the lowest id among the maxima). */
static int32_t first_of_order(int vocab, const double *z) {
  int32_t best = 0;
  for (int v = 1; v < vocab; v++)
    if (grpo_sample_before(z[v], v, z[best], best)) best = v;
  return best;
}

void grpo_sample_distribution_z(int vocab, const grpo_sample_params *p, grpo_sample_ws *ws,
                                double *probs) {
  memset(probs, 0, sizeof *probs * (size_t)vocab);
  double zmax = scale_z(vocab, p, ws);
  const double *z = ws->z;
  if (p->temperature == 0.0f) {
    probs[first_of_order(vocab, z)] = 1.0;
    return;
  }
  int kept = filter(vocab, p, zmax, ws);
  double total = 0;
  if (kept == 0) {
    for (int v = 0; v < vocab; v++) total += (probs[v] = grpo_sample_weight(z[v], zmax));
  } else {
    for (int i = 0; i < kept; i++)
      total += (probs[ws->order[i]] = grpo_sample_weight(z[ws->order[i]], zmax));
  }
  for (int v = 0; v < vocab; v++) probs[v] /= total;
}

void grpo_sample_row_z(const float *logits, int vocab, const grpo_sample_params *p, double u,
                       grpo_sample_ws *ws, grpo_sample_result *out) {
  /* Full-softmax statistics of the logits at the temperature. */
  double inv_t = grpo_sample_inv_t(p->temperature);
  double rmax = -INFINITY;
  for (int v = 0; v < vocab; v++) {
    double zv = grpo_sample_scale(logits[v], inv_t);
    if (zv > rmax) rmax = zv;
  }
  double rsum = 0, rdot = 0;
  for (int v = 0; v < vocab; v++)
    grpo_sample_stats_add(grpo_sample_scale(logits[v], inv_t), rmax, &rsum, &rdot);

  double zmax = scale_z(vocab, p, ws);
  const double *z = ws->z;
  int32_t tok = 0;
  float slp = 0.0f;
  if (p->temperature == 0.0f) {
    tok = first_of_order(vocab, z);
  } else {
    int kept = filter(vocab, p, zmax, ws);
    double total = 0;
    if (kept == 0) {
      /* no filter: the ids in order */
      for (int v = 0; v < vocab; v++) total += grpo_sample_weight(z[v], zmax);
      double target = grpo_sample_cdf_target(u, total), acc = 0;
      tok = vocab - 1;
      for (int v = 0; v < vocab; v++) {
        acc += grpo_sample_weight(z[v], zmax);
        if (grpo_sample_cdf_hit(acc, target)) {
          tok = v;
          break;
        }
      }
    } else {
      const int32_t *h = ws->order;
      for (int i = 0; i < kept; i++) total += grpo_sample_weight(z[h[i]], zmax);
      double target = grpo_sample_cdf_target(u, total), acc = 0;
      tok = h[kept - 1];
      for (int i = 0; i < kept; i++) {
        acc += grpo_sample_weight(z[h[i]], zmax);
        if (grpo_sample_cdf_hit(acc, target)) {
          tok = h[i];
          break;
        }
      }
    }
    slp = grpo_sample_filtered_logprob(z[tok], zmax, total);
  }
  out->token = tok;
  out->logprob = grpo_sample_logprob(grpo_sample_scale(logits[tok], inv_t), rmax, rsum);
  out->sampler_logprob = slp;
  out->entropy = grpo_sample_entropy(rsum, rdot);
}

void grpo_sample_row(const float *logits, int vocab, const grpo_sample_params *p, double u,
                     grpo_sample_ws *ws, grpo_sample_result *out) {
  for (int v = 0; v < vocab; v++) ws->z[v] = logits[v];
  grpo_sample_row_z(logits, vocab, p, u, ws, out);
}

/* ---- grpo_sampler ------------------------------------------------------------ */

enum { SAMPLER_HOST = 0, SAMPLER_CUDA = 1, SAMPLER_STAGED = 2 };

struct grpo_sampler {
  grpo_backend *be;
  int mode;
  int max_rows, vocab;
  /* host and staged: one scratch per OpenMP thread, and f32 rows */
  int n_ws;
  grpo_sample_ws *ws;
  float *rows;  /* host: [n_ws, vocab] (bf16 rows widened); staged: [max_rows, vocab] */
  void *stage;  /* staged: [max_rows, vocab] rows as copied (f32 or bf16) */
  /* cuda: device buffers */
  double *d_u;
  grpo_sample_result *d_out;
};

static int is_cuda(const grpo_backend *be) {
  return be->kind == GRPO_DEVICE_CUDA && be->name && strcmp(be->name, "cuda") == 0;
}

int grpo_sampler_create(grpo_backend *be, int max_rows, int vocab, grpo_sampler **out,
                        grpo_error *err) {
  *out = NULL;
  if (max_rows <= 0 || vocab <= 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "sampler: bad plan (%d rows of %d logits)", max_rows, vocab);
  grpo_sampler *s = calloc(1, sizeof *s);
  if (!s) return GRPO_FAIL(err, GRPO_ENOMEM, "sampler: out of memory");
  s->be = be;
  s->max_rows = max_rows;
  s->vocab = vocab;
  s->mode = be->kind == GRPO_DEVICE_CPU ? SAMPLER_HOST : is_cuda(be) ? SAMPLER_CUDA : SAMPLER_STAGED;
  int rc = GRPO_OK;
  if (s->mode == SAMPLER_CUDA) {
    rc = be->alloc(be, sizeof *s->d_u * (size_t)max_rows, (void **)&s->d_u, err);
    if (!rc) rc = be->alloc(be, sizeof *s->d_out * (size_t)max_rows, (void **)&s->d_out, err);
  } else {
    s->n_ws = omp_get_max_threads();
    size_t nrows = s->mode == SAMPLER_HOST ? (size_t)s->n_ws : (size_t)max_rows;
    s->ws = calloc((size_t)s->n_ws, sizeof *s->ws);
    s->rows = malloc(sizeof *s->rows * nrows * (size_t)vocab);
    if (s->mode == SAMPLER_STAGED) s->stage = malloc(sizeof(float) * (size_t)max_rows * (size_t)vocab);
    if (!s->ws || !s->rows || (s->mode == SAMPLER_STAGED && !s->stage))
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "sampler: out of memory for %d rows of %d logits", max_rows,
                     vocab);
    for (int i = 0; !rc && i < s->n_ws; i++) rc = grpo_sample_ws_init(&s->ws[i], vocab, err);
  }
  if (rc) {
    grpo_sampler_free(s);
    return rc;
  }
  *out = s;
  return GRPO_OK;
}

void grpo_sampler_free(grpo_sampler *s) {
  if (!s) return;
  if (s->d_u) s->be->free(s->be, s->d_u);
  if (s->d_out) s->be->free(s->be, s->d_out);
  for (int i = 0; s->ws && i < s->n_ws; i++) grpo_sample_ws_free(&s->ws[i]);
  free(s->ws);
  free(s->rows);
  free(s->stage);
  free(s);
}

static int check_params(const grpo_sample_params *p, grpo_error *err) {
  if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
    return GRPO_FAIL(err, GRPO_EINVAL, "sampler: temperature must be >= 0, got %g", p->temperature);
  if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "sampler: top_p must be in (0, 1], got %g", p->top_p);
  if (p->top_k < 0) return GRPO_FAIL(err, GRPO_EINVAL, "sampler: top_k must be >= 0, got %d", p->top_k);
  if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "sampler: min_p must be in [0, 1], got %g", p->min_p);
  return GRPO_OK;
}

/* Row r of host rows of type dtype as f32 (widened into buf for bf16). */
static const float *host_row(const void *rows, grpo_dtype dtype, int64_t ld, int r, int vocab,
                             float *buf) {
  if (dtype == GRPO_F32) return (const float *)rows + (int64_t)r * ld;
  const uint16_t *h = (const uint16_t *)rows + (int64_t)r * ld;
  for (int v = 0; v < vocab; v++) buf[v] = grpo_bf16_to_f32(h[v]);
  return buf;
}

static void sample_host_rows(grpo_sampler *s, const void *rows, grpo_dtype dtype, int64_t ld, int n,
                             int vocab, const grpo_sample_params *p, const double *u,
                             grpo_sample_result *out) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->n_ws) if (n > 1)
  for (int i = 0; i < n; i++) {
    int t = omp_get_thread_num();
    const float *row = host_row(rows, dtype, ld, i, vocab, s->rows + (size_t)t * (size_t)s->vocab);
    grpo_sample_row(row, vocab, p, u[i], &s->ws[t], &out[i]);
  }
}

int grpo_sampler_run_dtype(grpo_sampler *s, const void *logits, grpo_dtype dtype, int64_t ld,
                           int n, int vocab, const grpo_sample_params *p, const double *u,
                           grpo_sample_result *out, grpo_error *err) {
  if (n < 0 || n > s->max_rows)
    return GRPO_FAIL(err, GRPO_EINVAL, "sampler: %d rows, the plan has %d", n, s->max_rows);
  if (vocab <= 0 || vocab > s->vocab || ld < vocab)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "sampler: %d candidates in rows of stride %lld (the plan has %d)", vocab,
                     (long long)ld, s->vocab);
  if (dtype != GRPO_F32 && dtype != GRPO_BF16)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "sampler: logits of dtype %s", grpo_dtype_name(dtype));
  int rc = check_params(p, err);
  if (rc || n == 0) return rc;
  grpo_backend *be = s->be;
  switch (s->mode) {
  case SAMPLER_HOST: /* rows in host memory */
    sample_host_rows(s, logits, dtype, ld, n, vocab, p, u, out);
    return GRPO_OK;
  case SAMPLER_STAGED: {
    /* rows to the host (the candidates only), then the reference */
    size_t es = grpo_dtype_size(dtype);
    for (int i = 0; i < n && !rc; i++)
      rc = be->copy_d2h(be, (char *)s->stage + (size_t)i * (size_t)vocab * es,
                        (const char *)logits + (size_t)i * (size_t)ld * es, (size_t)vocab * es, err);
    if (rc) return rc;
    if (dtype == GRPO_F32) {
      sample_host_rows(s, s->stage, dtype, vocab, n, vocab, p, u, out);
    } else {
      for (int i = 0; i < n; i++)
        host_row(s->stage, dtype, vocab, i, vocab, s->rows + (size_t)i * (size_t)vocab);
      sample_host_rows(s, s->rows, GRPO_F32, vocab, n, vocab, p, u, out);
    }
    return GRPO_OK;
  }
  default:
    if ((rc = be->copy_h2d(be, s->d_u, u, sizeof *u * (size_t)n, err))) return rc;
    if ((rc = grpo_sample_cuda_launch(be, logits, dtype, ld, n, vocab, p, s->d_u, s->d_out, err)))
      return rc;
    if ((rc = be->copy_d2h(be, out, s->d_out, sizeof *out * (size_t)n, err))) return rc;
    return be->sync(be, err);
  }
}

int grpo_sampler_run(grpo_sampler *s, const void *logits, int64_t ld, int n, int vocab,
                     const grpo_sample_params *p, const double *u, grpo_sample_result *out,
                     grpo_error *err) {
  return grpo_sampler_run_dtype(s, logits, s->be->act_dtype, ld, n, vocab, p, u, out, err);
}
