/* CPU fused classifier: lm_head logits in (row chunk x vocab chunk) tiles
 * made by threaded sgemm, online max / sum-exp per row, target gather and
 * entropy; the backward recomputes each tile, turns it into dlogits in place
 * and feeds two more sgemms (dh, dW). Only one tile of logits ever exists.
 *
 * Entropy is accumulated relative to the running max, H = log s - sum
 * e^(z-m) (z-m) / s, which avoids the cancellation of lse - E[z]. */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/backend_cpu_internal.h"
#include "core/classifier_plan.h"

#define DEFAULT_ROW_CHUNK 512
#define DEFAULT_VOCAB_CHUNK 4096

typedef grpo_cls_ws cls_ws;

static void chunks(const grpo_classifier_shape *s, int *rc, int *vc) {
  grpo_cls_chunks(s, DEFAULT_ROW_CHUNK, DEFAULT_VOCAB_CHUNK, rc, vc);
}

static size_t layout(const grpo_classifier_shape *s, void *ws, cls_ws *w) {
  return grpo_cls_layout(s, DEFAULT_ROW_CHUNK, DEFAULT_VOCAB_CHUNK, 64, ws, w);
}

size_t cpu_classifier_workspace(grpo_backend *be, const grpo_classifier_shape *s) {
  (void)be;
  return layout(s, NULL, NULL);
}

/* Points *hp at the chunk's hidden rows, gathering them when rows != NULL. */
static const float *chunk_rows(const grpo_classifier_shape *s, int r0, int nr, float *hbuf,
                               int64_t *ld) {
  const float *H = s->h;
  if (!s->rows) {
    *ld = s->ldh;
    return H + (int64_t)r0 * s->ldh;
  }
  int hd = s->hidden;
#pragma omp parallel for schedule(static) if ((int64_t)nr * hd > 65536)
  for (int k = 0; k < nr; k++)
    memcpy(hbuf + (int64_t)k * hd, H + (int64_t)s->rows[r0 + k] * s->ldh, sizeof(float) * (size_t)hd);
  *ld = hd;
  return hbuf;
}

void cpu_classifier_fwd(grpo_backend *be, const grpo_classifier_shape *s, float *logprob,
                        float *entropy, float *lse, void *ws, size_t ws_bytes) {
  (void)be;
  assert(s->temperature > 0.0f);
  size_t need = layout(s, ws, NULL);
  assert(ws_bytes >= need && "classifier workspace too small");
  (void)need;
  (void)ws_bytes;
  cls_ws w;
  layout(s, ws, &w);
  int rc, vc;
  chunks(s, &rc, &vc);
  const int H = s->hidden, V = s->vocab;
  const float *W = s->w;
  const float inv_t = 1.0f / s->temperature;
  for (int r0 = 0; r0 < s->n; r0 += rc) {
    int nr = s->n - r0 < rc ? s->n - r0 : rc;
    int64_t ldh;
    const float *hp = chunk_rows(s, r0, nr, w.hbuf, &ldh);
    for (int k = 0; k < nr; k++) {
      w.m[k] = -INFINITY;
      w.sum[k] = 0.0;
      w.sz[k] = 0.0;
      w.zt[k] = NAN;
    }
    for (int v0 = 0; v0 < V; v0 += vc) {
      int nv = V - v0 < vc ? V - v0 : vc;
      cpu_sgemm(0, 1, nr, nv, H, inv_t, hp, ldh, W + (int64_t)v0 * H, H, 0.0f, w.z, nv);
#pragma omp parallel for schedule(static)
      for (int k = 0; k < nr; k++) {
        const float *z = w.z + (int64_t)k * nv;
        float mx = cpu_simd.rowmax(z, nv);
        double mold = w.m[k], mnew = mx > mold ? mx : mold;
        float mf = (float)mnew;
        float cs, cz;
        cpu_simd.expstats(z, nv, mf, &cs, &cz);
        if (w.sum[k] > 0.0) {
          double a = exp(mold - mnew);
          w.sz[k] = a * (w.sz[k] + (mold - mnew) * w.sum[k]) + cz;
          w.sum[k] = a * w.sum[k] + cs;
        } else {
          w.sz[k] = cz;
          w.sum[k] = cs;
        }
        w.m[k] = mnew;
        int t = s->targets[r0 + k];
        if (t >= v0 && t < v0 + nv) w.zt[k] = z[t - v0];
      }
    }
    for (int k = 0; k < nr; k++) {
      double l = w.m[k] + log(w.sum[k]);
      lse[r0 + k] = (float)l;
      logprob[r0 + k] = (float)(w.zt[k] - l);
      if (entropy) entropy[r0 + k] = (float)(log(w.sum[k]) - w.sz[k] / w.sum[k]);
    }
  }
}

void cpu_classifier_bwd(grpo_backend *be, const grpo_classifier_shape *s, const float *lse,
                        const float *entropy, const float *dlogprob, const float *dentropy,
                        void *dh, int64_t lddh, float *dw, void *ws, size_t ws_bytes) {
  (void)be;
  assert(s->temperature > 0.0f);
  assert(!dentropy || entropy);
  size_t need = layout(s, ws, NULL);
  assert(ws_bytes >= need && "classifier workspace too small");
  (void)need;
  (void)ws_bytes;
  cls_ws w;
  layout(s, ws, &w);
  int rc, vc;
  chunks(s, &rc, &vc);
  const int H = s->hidden, V = s->vocab;
  const float *W = s->w;
  float *DH = dh;
  const float inv_t = 1.0f / s->temperature;
  for (int r0 = 0; r0 < s->n; r0 += rc) {
    int nr = s->n - r0 < rc ? s->n - r0 : rc;
    int64_t ldh;
    const float *hp = chunk_rows(s, r0, nr, w.hbuf, &ldh);
    /* without a row map the chunk's dh rows are contiguous: accumulate in place */
    float *dhp = s->rows ? w.dhbuf : DH + (int64_t)r0 * lddh;
    int64_t lddhp = s->rows ? H : lddh;
    if (s->rows) memset(w.dhbuf, 0, sizeof(float) * (size_t)nr * H);
    for (int v0 = 0; v0 < V; v0 += vc) {
      int nv = V - v0 < vc ? V - v0 : vc;
      cpu_sgemm(0, 1, nr, nv, H, inv_t, hp, ldh, W + (int64_t)v0 * H, H, 0.0f, w.z, nv);
#pragma omp parallel for schedule(static)
      for (int k = 0; k < nr; k++) {
        float *z = w.z + (int64_t)k * nv;
        float L = lse[r0 + k];
        float g = dlogprob[r0 + k] * inv_t;
        float ge = dentropy ? dentropy[r0 + k] * inv_t : 0.0f;
        float ez = dentropy ? L - entropy[r0 + k] : 0.0f;
        cpu_simd.clsgrad(z, nv, L, g, ge, ez);
        int t = s->targets[r0 + k];
        if (t >= v0 && t < v0 + nv) z[t - v0] += g;
      }
      cpu_sgemm(0, 0, nr, H, nv, 1.0f, w.z, nv, W + (int64_t)v0 * H, H, 1.0f, dhp, lddhp);
      cpu_sgemm(1, 0, nv, H, nr, 1.0f, w.z, nv, hp, ldh, 1.0f, dw + (int64_t)v0 * H, H);
    }
    if (s->rows) {
      /* serial over rows (a row may repeat), parallel over columns */
#pragma omp parallel if ((int64_t)nr * H > 65536)
      {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int c0 = (int)((int64_t)H * t / nt), c1 = (int)((int64_t)H * (t + 1) / nt);
        for (int k = 0; k < nr; k++) {
          float *dst = DH + (int64_t)s->rows[r0 + k] * lddh;
          const float *src = w.dhbuf + (int64_t)k * H;
          for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
      }
    }
  }
}
