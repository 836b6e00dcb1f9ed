/* CPU attention over packed sequences with the ancestor-interval mask.
 *
 * Flash-attention style: the token stream is cut into blocks of ATT_B rows.
 * One task owns a (kv head, query block) pair and stacks the queries of all
 * grp = nh/nkv heads that share the kv head into one [grp*nq, hd] matrix,
 * so every K/V block is read once per group and the products are grp times
 * taller (GQA). The task walks the key blocks that can hold a visible key,
 * computes scores with sgemm, masks, runs an online softmax and accumulates
 * P.V with sgemm. Per-block min/max of tin and tout decide which block pairs
 * to skip and which need no per-element mask; adjacent visible blocks are
 * taken together, up to ATT_SPAN of them per product. The backward recomputes P from
 * the saved log-sum-exp: one pass over (kv head, key block) owns dK, dV
 * (products in transposed form, which OpenBLAS packs faster); a second over
 * (kv head, query block) owns dQ. No two threads write the same gradient
 * row and the result does not depend on the thread count. */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/backend_cpu_internal.h"
#include "core/ops_math.h"

#define ATT_B 64
/* A task's products span up to ATT_SPAN adjacent visible blocks at once
 * (sgemm of 64 rows x up to 512 keys instead of 64 x 64: less packing and
 * call overhead per FLOP, and fewer online-softmax rescales). */
#ifndef ATT_SPAN
#define ATT_SPAN 4
#endif
#define ATT_SW (ATT_SPAN * ATT_B)

typedef struct blk_stats {
  int32_t *min_tin, *max_tin, *min_tout, *max_tout;
} blk_stats;

/* Per-thread scratch of one task (grp heads x ATT_B rows, or x a span). */
typedef struct att_thread {
  float *S, *dP;          /* [grp*ATT_B, ATT_SW] (or transposed [ATT_B, grp*ATT_SW]) */
  float *Qg, *dOg;        /* [grp*ATT_SW, hd] */
  float *Og;              /* [grp*ATT_B, hd] */
  float *m, *l;           /* [grp*ATT_B] */
  float *Lg, *Dg;         /* [grp*ATT_SW] */
} att_thread;

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static size_t per_thread_floats(int grp, int hd) {
  size_t rows = (size_t)grp * ATT_B, span = (size_t)grp * ATT_SW;
  return 2 * rows * ATT_SW + 2 * span * hd + rows * hd + 2 * rows + 2 * span + 64;
}

size_t cpu_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd) {
  (void)be;
  size_t nb = (size_t)(T + ATT_B - 1) / ATT_B;
  size_t bytes = align64(4 * nb * sizeof(int32_t));
  bytes += align64((size_t)nh * T * sizeof(float));
  bytes += (size_t)omp_get_max_threads() * align64(per_thread_floats(nh / nkv, hd) * sizeof(float));
  return bytes;
}

/* Carves the workspace; returns the number of per-thread slices available. */
static int carve(const grpo_attn_shape *s, void *ws, size_t ws_bytes, blk_stats *st, float **D,
                 char **thread_base, size_t *thread_stride) {
  int nb = (s->T + ATT_B - 1) / ATT_B;
  char *p = ws;
  st->min_tin = (int32_t *)p;
  st->max_tin = st->min_tin + nb;
  st->min_tout = st->max_tin + nb;
  st->max_tout = st->min_tout + nb;
  p += align64(4 * (size_t)nb * sizeof(int32_t));
  *D = (float *)p;
  p += align64((size_t)s->nh * s->T * sizeof(float));
  *thread_stride = align64(per_thread_floats(s->nh / s->nkv, s->hd) * sizeof(float));
  size_t used = (size_t)(p - (char *)ws);
  assert(ws_bytes >= used + *thread_stride && "attention workspace too small");
  *thread_base = p;
  return (int)((ws_bytes - used) / *thread_stride);
}

static att_thread thread_scratch(const grpo_attn_shape *s, char *base, size_t stride) {
  size_t rows = (size_t)(s->nh / s->nkv) * ATT_B, span = (size_t)(s->nh / s->nkv) * ATT_SW;
  float *p = (float *)(base + (size_t)omp_get_thread_num() * stride);
  att_thread t;
  t.S = p, p += rows * ATT_SW;
  t.dP = p, p += rows * ATT_SW;
  t.Qg = p, p += span * s->hd;
  t.dOg = p, p += span * s->hd;
  t.Og = p, p += rows * s->hd;
  t.m = p, p += rows;
  t.l = p, p += rows;
  t.Lg = p, p += span;
  t.Dg = p;
  return t;
}

static void block_stats(const grpo_attn_shape *s, blk_stats *st) {
  int nb = (s->T + ATT_B - 1) / ATT_B;
  for (int b = 0; b < nb; b++) {
    int j0 = b * ATT_B, j1 = j0 + ATT_B < s->T ? j0 + ATT_B : s->T;
    int32_t a = INT32_MAX, bb = INT32_MIN, c = INT32_MAX, d = INT32_MIN;
    for (int j = j0; j < j1; j++) {
      int32_t ti = s->tin[j], to = s->tout[j];
      if (ti < a) a = ti;
      if (ti > bb) bb = ti;
      if (to < c) c = to;
      if (to > d) d = to;
    }
    st->min_tin[b] = a;
    st->max_tin[b] = bb;
    st->min_tout[b] = c;
    st->max_tout[b] = d;
  }
}

/* 0: no (query, key) pair visible; 1: some; 2: all. */
static int block_vis(const blk_stats *st, int qb, int kb) {
  if (st->min_tin[kb] > st->max_tin[qb] || st->max_tout[kb] < st->min_tin[qb]) return 0;
  if (st->max_tin[kb] <= st->min_tin[qb] && st->min_tout[kb] >= st->max_tin[qb]) return 2;
  return 1;
}

/* The next run of at most ATT_SPAN adjacent blocks, from *at on, that share
 * a visible pair with block `fixed` (key blocks of query block `fixed` when
 * over_keys, else query blocks of key block `fixed`): [*b0, *b1); *partial
 * when one of them needs the element mask. Returns 0 when none is left. */
static int next_span(const blk_stats *st, int nb, int fixed, int over_keys, int *at, int *b0,
                     int *b1, int *partial) {
  int b = *at;
  while (b < nb && !(over_keys ? block_vis(st, fixed, b) : block_vis(st, b, fixed))) b++;
  if (b >= nb) return 0;
  *b0 = b;
  *partial = 0;
  while (b < nb && b - *b0 < ATT_SPAN) {
    int v = over_keys ? block_vis(st, fixed, b) : block_vis(st, b, fixed);
    if (!v) break;
    if (v == 1) *partial = 1;
    b++;
  }
  *b1 = b;
  *at = b;
  return 1;
}

/* rows of blocks [b0, b1) */
static int span_len(int T, int b0, int b1) {
  int end = b1 * ATT_B < T ? b1 * ATT_B : T;
  return end - b0 * ATT_B;
}

static int threads_for(int nt_ws) {
  int nt = omp_get_max_threads();
  return nt < nt_ws ? nt : nt_ws;
}

static int block_len(int T, int b) { return T - b * ATT_B < ATT_B ? T - b * ATT_B : ATT_B; }

/* Stacks rows i0..i0+nq of the grp heads of kv head g from x (row stride ld,
 * head stride hd) into dst[hh*nq + i]; also gathers the per-(head, row) f32
 * values of vec ([nh, T]) into vdst when given. */
static void gather(float *dst, const float *x, int64_t ld, int i0, int nq, int g, int grp, int hd,
                   const float *vec, int T, float *vdst) {
  for (int hh = 0; hh < grp; hh++) {
    int h = g * grp + hh;
    for (int i = 0; i < nq; i++)
      memcpy(dst + ((size_t)hh * nq + i) * hd, x + (int64_t)(i0 + i) * ld + (int64_t)h * hd,
             sizeof(float) * (size_t)hd);
    if (vec) memcpy(vdst + (size_t)hh * nq, vec + (int64_t)h * T + i0, sizeof(float) * (size_t)nq);
  }
}

/* Masks S [grp*nq rows, nk cols] (row stride lds): row hh*nq + i is query i0+i. */
static void mask_rows(const grpo_attn_shape *s, float *S, int64_t lds, int grp, int i0, int nq,
                      int j0, int nk) {
  for (int i = 0; i < nq; i++) {
    int32_t ti = s->tin[i0 + i];
    for (int j = 0; j < nk; j++)
      if (!grpo_attn_visible(ti, s->tin[j0 + j], s->tout[j0 + j]))
        for (int hh = 0; hh < grp; hh++) S[((int64_t)hh * nq + i) * lds + j] = -INFINITY;
  }
}

/* Masks ST [nk rows, grp*nq cols] (row stride lds): column hh*nq + i is query i0+i. */
static void mask_cols(const grpo_attn_shape *s, float *ST, int64_t lds, int grp, int i0, int nq,
                      int j0, int nk) {
  const int32_t *tin_q = s->tin + i0;
  for (int j = 0; j < nk; j++) {
    int32_t lo = s->tin[j0 + j], hi = s->tout[j0 + j];
    float *Sj = ST + (int64_t)j * lds;
    for (int i = 0; i < nq; i++)
      if (!grpo_attn_visible(tin_q[i], lo, hi))
        for (int hh = 0; hh < grp; hh++) Sj[hh * nq + i] = -INFINITY;
  }
}

void cpu_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                  void *ws, size_t ws_bytes) {
  (void)be;
  assert(s->nh % s->nkv == 0);
  blk_stats st;
  float *D;
  char *tb;
  size_t tstride;
  int nt_ws = carve(s, ws, ws_bytes, &st, &D, &tb, &tstride);
  block_stats(s, &st);
  const int T = s->T, hd = s->hd, grp = s->nh / s->nkv, nkv = s->nkv;
  const int nb = (T + ATT_B - 1) / ATT_B;
  const float *Q = s->q, *K = s->k, *V = s->v;
  float *OUT = out;
  int saved = cpu_blas_serial_begin();
#pragma omp parallel num_threads(threads_for(nt_ws))
  {
    att_thread w = thread_scratch(s, tb, tstride);
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < nkv * nb; task++) {
      int g = task / nb, qb = task % nb;
      int i0 = qb * ATT_B, nq = block_len(T, qb), rows = grp * nq;
      gather(w.Qg, Q, s->ldq, i0, nq, g, grp, hd, NULL, T, NULL);
      for (int r = 0; r < rows; r++) {
        w.m[r] = -INFINITY;
        w.l[r] = 0.0f;
      }
      memset(w.Og, 0, sizeof(float) * (size_t)rows * hd);
      int at = 0, kb0, kb1, part;
      while (next_span(&st, nb, qb, 1, &at, &kb0, &kb1, &part)) {
        int j0 = kb0 * ATT_B, nk = span_len(T, kb0, kb1);
        cpu_sgemm(0, 1, rows, nk, hd, s->scale, w.Qg, hd, K + j0 * s->ldk + (int64_t)g * hd, s->ldk,
                  0.0f, w.S, ATT_SW);
        if (part) mask_rows(s, w.S, ATT_SW, grp, i0, nq, j0, nk);
        for (int r = 0; r < rows; r++) {
          float *Sr = w.S + r * ATT_SW;
          float mx = cpu_simd.rowmax(Sr, nk);
          if (mx == -INFINITY) {
            memset(Sr, 0, sizeof(float) * (size_t)nk);
            continue;
          }
          float mnew = mx > w.m[r] ? mx : w.m[r];
          float alpha = expf(w.m[r] - mnew); /* 0 when m was -inf */
          float sum = cpu_simd.expsum(Sr, nk, mnew);
          if (alpha != 1.0f) {
            float *Or = w.Og + r * hd;
            for (int c = 0; c < hd; c++) Or[c] *= alpha;
          }
          w.l[r] = w.l[r] * alpha + sum;
          w.m[r] = mnew;
        }
        cpu_sgemm(0, 0, rows, hd, nk, 1.0f, w.S, ATT_SW, V + j0 * s->ldv + (int64_t)g * hd, s->ldv,
                  1.0f, w.Og, hd);
      }
      for (int hh = 0; hh < grp; hh++) {
        int h = g * grp + hh;
        for (int i = 0; i < nq; i++) {
          int r = hh * nq + i;
          float *dst = OUT + (int64_t)(i0 + i) * ldo + (int64_t)h * hd;
          if (w.l[r] > 0.0f) {
            float inv = 1.0f / w.l[r];
            for (int c = 0; c < hd; c++) dst[c] = w.Og[r * hd + c] * inv;
            lse[(int64_t)h * T + i0 + i] = w.m[r] + logf(w.l[r]);
          } else {
            /* a token that sees nothing (tout < tin): zero output, P = 0 in backward */
            memset(dst, 0, sizeof(float) * (size_t)hd);
            lse[(int64_t)h * T + i0 + i] = INFINITY;
          }
        }
      }
    }
  }
  cpu_blas_serial_end(saved);
}

void cpu_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                  const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                  void *ws, size_t ws_bytes) {
  (void)be;
  assert(s->nh % s->nkv == 0);
  blk_stats st;
  float *D;
  char *tb;
  size_t tstride;
  int nt_ws = carve(s, ws, ws_bytes, &st, &D, &tb, &tstride);
  block_stats(s, &st);
  const int T = s->T, nh = s->nh, nkv = s->nkv, hd = s->hd, grp = s->nh / s->nkv;
  const int nb = (T + ATT_B - 1) / ATT_B;
  const int64_t ldt = (int64_t)grp * ATT_SW; /* row stride of transposed tiles */
  const float *O = out, *DO = dout, *Q = s->q, *K = s->k, *V = s->v;
  float *DQ = dq, *DK = dk, *DV = dv;
  int saved = cpu_blas_serial_begin();
#pragma omp parallel num_threads(threads_for(nt_ws))
  {
    att_thread w = thread_scratch(s, tb, tstride);
    /* D[h, i] = dO . O */
#pragma omp for schedule(static)
    for (int64_t x = 0; x < (int64_t)nh * T; x++) {
      int h = (int)(x / T), i = (int)(x % T);
      const float *o = O + i * ldo + (int64_t)h * hd, *d = DO + i * lddo + (int64_t)h * hd;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int c = 0; c < hd; c++) acc += o[c] * d[c];
      D[x] = acc;
    }
    /* dK, dV: one task per (kv head, key block), tiles transposed [nk, grp*nq] */
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < nkv * nb; task++) {
      int g = task / nb, kb = task % nb;
      int j0 = kb * ATT_B, nk = block_len(T, kb);
      float *dKb = DK + j0 * s->ldk + (int64_t)g * hd, *dVb = DV + j0 * s->ldv + (int64_t)g * hd;
      for (int j = 0; j < nk; j++) {
        memset(dKb + j * s->ldk, 0, sizeof(float) * (size_t)hd);
        memset(dVb + j * s->ldv, 0, sizeof(float) * (size_t)hd);
      }
      const float *Kb = K + j0 * s->ldk + (int64_t)g * hd, *Vb = V + j0 * s->ldv + (int64_t)g * hd;
      int at = 0, qb0, qb1, part;
      while (next_span(&st, nb, kb, 0, &at, &qb0, &qb1, &part)) {
        int i0 = qb0 * ATT_B, nq = span_len(T, qb0, qb1), rows = grp * nq;
        gather(w.Qg, Q, s->ldq, i0, nq, g, grp, hd, lse, T, w.Lg);
        gather(w.dOg, DO, lddo, i0, nq, g, grp, hd, D, T, w.Dg);
        cpu_sgemm(0, 1, nk, rows, hd, s->scale, Kb, s->ldk, w.Qg, hd, 0.0f, w.S, ldt);
        if (part) mask_cols(s, w.S, ldt, grp, i0, nq, j0, nk);
        for (int j = 0; j < nk; j++) cpu_simd.expsubv(w.S + j * ldt, rows, w.Lg);
        cpu_sgemm(0, 0, nk, hd, rows, 1.0f, w.S, ldt, w.dOg, hd, 1.0f, dVb, s->ldv);
        cpu_sgemm(0, 1, nk, rows, hd, 1.0f, Vb, s->ldv, w.dOg, hd, 0.0f, w.dP, ldt);
        for (int j = 0; j < nk; j++) {
          const float *Pj = w.S + j * ldt;
          float *dPj = w.dP + j * ldt;
#pragma omp simd
          for (int r = 0; r < rows; r++) dPj[r] = Pj[r] * (dPj[r] - w.Dg[r]);
        }
        cpu_sgemm(0, 0, nk, hd, rows, s->scale, w.dP, ldt, w.Qg, hd, 1.0f, dKb, s->ldk);
      }
    }
    /* dQ: one task per (kv head, query block) */
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < nkv * nb; task++) {
      int g = task / nb, qb = task % nb;
      int i0 = qb * ATT_B, nq = block_len(T, qb), rows = grp * nq;
      gather(w.Qg, Q, s->ldq, i0, nq, g, grp, hd, lse, T, w.Lg);
      gather(w.dOg, DO, lddo, i0, nq, g, grp, hd, D, T, w.Dg);
      memset(w.Og, 0, sizeof(float) * (size_t)rows * hd); /* dQ of the group */
      int at = 0, kb0, kb1, part;
      while (next_span(&st, nb, qb, 1, &at, &kb0, &kb1, &part)) {
        int j0 = kb0 * ATT_B, nk = span_len(T, kb0, kb1);
        const float *Kb = K + j0 * s->ldk + (int64_t)g * hd, *Vb = V + j0 * s->ldv + (int64_t)g * hd;
        cpu_sgemm(0, 1, rows, nk, hd, s->scale, w.Qg, hd, Kb, s->ldk, 0.0f, w.S, ATT_SW);
        if (part) mask_rows(s, w.S, ATT_SW, grp, i0, nq, j0, nk);
        for (int r = 0; r < rows; r++) cpu_simd.expsub(w.S + r * ATT_SW, nk, w.Lg[r]);
        cpu_sgemm(0, 1, rows, nk, hd, 1.0f, w.dOg, hd, Vb, s->ldv, 0.0f, w.dP, ATT_SW);
        for (int r = 0; r < rows; r++) {
          const float *Pr = w.S + r * ATT_SW;
          float *dPr = w.dP + r * ATT_SW, d = w.Dg[r];
#pragma omp simd
          for (int j = 0; j < nk; j++) dPr[j] = Pr[j] * (dPr[j] - d);
        }
        cpu_sgemm(0, 0, rows, hd, nk, s->scale, w.dP, ATT_SW, Kb, s->ldk, 1.0f, w.Og, hd);
      }
      for (int hh = 0; hh < grp; hh++)
        for (int i = 0; i < nq; i++)
          memcpy(DQ + (int64_t)(i0 + i) * s->ldq + (int64_t)(g * grp + hh) * hd,
                 w.Og + ((size_t)hh * nq + i) * hd, sizeof(float) * (size_t)hd);
    }
  }
  cpu_blas_serial_end(saved);
}

/* ---- decode ------------------------------------------------------------------ */

size_t cpu_attn_decode_workspace(grpo_backend *be, int n, int nh, int tmax) {
  (void)be;
  return (size_t)n * nh * tmax * sizeof(float);
}

void cpu_attn_decode(grpo_backend *be, void *out, const void *q, const void *kcache,
                     const void *vcache, const int32_t *slots, const int32_t *lens, int n, int nh,
                     int nkv, int hd, int tmax, float scale, void *ws, size_t ws_bytes) {
  (void)be;
  assert(nh % nkv == 0);
  assert(ws_bytes >= cpu_attn_decode_workspace(be, n, nh, tmax));
  (void)ws_bytes;
  const float *Q = q, *KC = kcache, *VC = vcache;
  float *OUT = out, *W = ws;
  int grp = nh / nkv;
#pragma omp parallel for schedule(dynamic, 1)
  for (int task = 0; task < n * nh; task++) {
    int i = task / nh, h = task % nh, g = h / grp;
    int64_t slot = slots ? slots[i] : i;
    int len = lens[i];
    assert(len >= 0 && len <= tmax);
    const float *qv = Q + ((int64_t)i * nh + h) * hd;
    float *sc = W + (int64_t)task * tmax, *o = OUT + ((int64_t)i * nh + h) * hd;
    float mx = -INFINITY;
    for (int t = 0; t < len; t++) {
      const float *kv = KC + ((slot * tmax + t) * nkv + g) * hd;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int c = 0; c < hd; c++) acc += qv[c] * kv[c];
      sc[t] = acc * scale;
      mx = sc[t] > mx ? sc[t] : mx;
    }
    float sum = 0.0f;
    for (int t = 0; t < len; t++) {
      sc[t] = expf(sc[t] - mx);
      sum += sc[t];
    }
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    memset(o, 0, sizeof(float) * (size_t)hd);
    for (int t = 0; t < len; t++) {
      const float *vv = VC + ((slot * tmax + t) * nkv + g) * hd;
      float p = sc[t] * inv;
#pragma omp simd
      for (int c = 0; c < hd; c++) o[c] += p * vv[c];
    }
  }
}

void cpu_kv_write(grpo_backend *be, void *cache, const void *src, int64_t lds,
                  const int32_t *slots, const int32_t *pos, int n, int width, int tmax) {
  (void)be;
  float *C = cache;
  const float *S = src;
  for (int i = 0; i < n; i++) {
    assert(pos[i] >= 0 && pos[i] < tmax);
    memcpy(C + ((int64_t)slots[i] * tmax + pos[i]) * width, S + i * lds, sizeof(float) * (size_t)width);
  }
}
