/* CPU backend ops against plain references written here (double
 * accumulation), backwards against central finite differences of the double
 * reference or against its analytical backward. */
#include <stdint.h>

#include "core/backend.h"
#include "core/backend_cpu_internal.h"
#include "core/dtype.h"
#include "test.h"

static grpo_backend *be;

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* splitmix64 -> [0, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}
static void fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
}
static float *fnew(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *dnew(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static double *to_d(const float *x, size_t n) {
  double *d = dnew(n);
  for (size_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}
static void *ws_new(size_t bytes) {
  void *p = NULL;
  grpo_error err = {0};
  CHECK(be->alloc(be, bytes, &p, &err) == GRPO_OK);
  return p;
}

/* max |a - b| / (atol + rtol |b|) over n, reported > 1 on failure */
static int close_f(const char *what, const float *a, const double *b, size_t n, double atol, double rtol) {
  double worst = 0.0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]) / (atol + rtol * fabs(b[i]));
    if (!(e <= worst)) { /* catches NaN */
      worst = isnan(e) ? INFINITY : e;
      wi = i;
    }
  }
  if (worst > 1.0) {
    fprintf(stderr, "  %s: mismatch at %zu: got %.9g want %.9g (ratio %.3g)\n", what, wi, (double)a[wi], b[wi], worst);
    return 0;
  }
  return 1;
}

/* ---- dtype --------------------------------------------------------------- */

TEST(dtype_conversions) {
  CHECK_EQ_INT(grpo_f32_to_bf16(1.0f), 0x3f80);
  CHECK_EQ_INT(grpo_f32_to_bf16(grpo_bits_f32(0x3f808000u)), 0x3f80); /* tie -> even */
  CHECK_EQ_INT(grpo_f32_to_bf16(grpo_bits_f32(0x3f818000u)), 0x3f82); /* tie -> even (up) */
  CHECK_EQ_INT(grpo_f32_to_bf16(grpo_bits_f32(0x3f808001u)), 0x3f81); /* above half */
  CHECK_EQ_INT(grpo_f32_to_bf16(-2.5f), 0xc020);
  CHECK(isnan(grpo_bf16_to_f32(grpo_f32_to_bf16(NAN))));
  CHECK(isinf(grpo_bf16_to_f32(grpo_f32_to_bf16(3.4e38f)))); /* rounds past max */
  CHECK_EQ_INT(grpo_f32_to_f16(1.0f), 0x3c00);
  CHECK_EQ_INT(grpo_f32_to_f16(65504.0f), 0x7bff);
  CHECK_EQ_INT(grpo_f32_to_f16(65519.0f), 0x7bff);
  CHECK_EQ_INT(grpo_f32_to_f16(65520.0f), 0x7c00);
  CHECK_EQ_INT(grpo_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);
  CHECK_EQ_INT(grpo_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);        /* tie -> even 0 */
  CHECK_EQ_INT(grpo_f32_to_f16(ldexpf(3.0f, -26)), 0x0001);        /* 0.75 ulp */
  CHECK_EQ_INT(grpo_f32_to_f16(ldexpf(3.0f, -25)), 0x0002);        /* 1.5 ulp tie -> 2 */
  CHECK_EQ_INT(grpo_f32_to_f16(-ldexpf(1.0f, -14)), 0x8400);       /* smallest normal */
  CHECK_EQ_INT(grpo_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie -> even */
  CHECK_EQ_INT(grpo_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02); /* tie -> even (up) */
  CHECK_NEAR(grpo_f16_to_f32(0x3555), 0.333251953125, 0.0);
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = grpo_f16_to_f32((uint16_t)h);
    if (isnan(f)) continue;
    if (grpo_f32_to_f16(f) != h) bad++;
    uint16_t b = (uint16_t)h; /* every bf16 pattern round-trips too */
    if (!isnan(grpo_bf16_to_f32(b)) && grpo_f32_to_bf16(grpo_bf16_to_f32(b)) != b) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(grpo_dtype_parse("BF16"), GRPO_BF16);
  CHECK_EQ_INT(grpo_dtype_parse("F64"), -1);
  float src[5] = {1.0f, -0.1f, 3.0e-3f, 65504.0f, 0.0f}, back[5];
  uint16_t mid[5];
  be->convert(be, mid, GRPO_BF16, src, GRPO_F32, 5);
  be->convert(be, back, GRPO_F32, mid, GRPO_BF16, 5);
  for (int i = 0; i < 5; i++) CHECK_NEAR(back[i], src[i], fabs(src[i]) * 0.004);
}

/* ---- matmul ---------------------------------------------------------------- */

static void ref_gemm(int ta, int tb, int m, int n, int k, double alpha, const float *A, int64_t lda,
                     const float *B, int64_t ldb, double beta, double *C, int64_t ldc) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double acc = 0.0;
      for (int p = 0; p < k; p++) {
        double a = ta ? A[p * lda + i] : A[i * lda + p];
        double b = tb ? B[j * ldb + p] : B[p * ldb + j];
        acc += a * b;
      }
      C[i * ldc + j] = alpha * acc + beta * C[i * ldc + j];
    }
}

TEST(sgemm_all_transposes) {
  int m = 13, n = 7, k = 29;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
      int arows = ta ? k : m, brows = tb ? n : k;
      float *A = fnew(arows * lda), *B = fnew(brows * ldb), *C = fnew(m * ldc);
      fill(A, arows * lda, -1, 1);
      fill(B, brows * ldb, -1, 1);
      fill(C, m * ldc, -1, 1);
      double *R = to_d(C, m * ldc);
      be->sgemm(be, ta, tb, m, n, k, 0.75f, A, lda, B, ldb, -0.5f, C, ldc);
      ref_gemm(ta, tb, m, n, k, 0.75, A, lda, B, ldb, -0.5, R, ldc);
      CHECK_MSG(close_f("sgemm", C, R, m * ldc, 1e-5, 1e-5), "ta=%d tb=%d", ta, tb);
      free(A), free(B), free(C), free(R);
    }
}

TEST(sgemm_batched_gqa) {
  /* 6 batches share B in groups of 3 (like 6 query heads over 2 kv heads) */
  int m = 5, n = 9, k = 8, batch = 6, grp = 3;
  int64_t sA = m * k + 4, sB = k * n + 1, sC = m * n + 2;
  float *A = fnew(batch * sA), *B = fnew(2 * sB), *C = fnew(batch * sC);
  fill(A, batch * sA, -1, 1);
  fill(B, 2 * sB, -1, 1);
  fill(C, batch * sC, -1, 1);
  double *R = to_d(C, batch * sC);
  be->sgemm_batched(be, 0, 1, m, n, k, 1.0f, A, k, sA, B, k, sB, grp, 1.0f, C, n, sC, batch);
  /* B_b viewed as [n x k] rows (tb = 1): B + (b/grp)*sB with ld k */
  for (int b = 0; b < batch; b++)
    ref_gemm(0, 1, m, n, k, 1.0, A + b * sA, k, B + (b / grp) * sB, k, 1.0, R + b * sC, n);
  CHECK(close_f("sgemm_batched", C, R, batch * sC, 1e-5, 1e-5));
  free(A), free(B), free(C), free(R);
}

/* ---- RMSNorm --------------------------------------------------------------- */

static void ref_rmsnorm(double *y, const double *x, const double *w, int nvec, int dim, double eps) {
  for (int v = 0; v < nvec; v++) {
    double ss = 0;
    for (int c = 0; c < dim; c++) ss += x[v * dim + c] * x[v * dim + c];
    double r = 1.0 / sqrt(ss / dim + eps);
    for (int c = 0; c < dim; c++) y[v * dim + c] = x[v * dim + c] * r * w[c];
  }
}

TEST(rmsnorm_fwd_bwd) {
  /* per-head variant inside a wider row: rows x heads vectors of dim, ld > heads*dim */
  int rows = 6, heads = 3, dim = 10, ld = heads * dim + 7;
  float eps = 1e-6f;
  int nv = rows * heads;
  float *x = fnew(rows * ld), *w = fnew(dim), *y = fnew(rows * ld), *rstd = fnew(nv);
  fill(x, rows * ld, -2, 2);
  fill(w, dim, 0.5, 1.5);
  be->rmsnorm_fwd(be, y, ld, rstd, x, ld, w, rows, heads, dim, eps);
  double *xd = dnew(nv * dim), *wd = to_d(w, dim), *yd = dnew(nv * dim);
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < heads * dim; i++) xd[r * heads * dim + i] = x[r * ld + i];
  ref_rmsnorm(yd, xd, wd, nv, dim, eps);
  float *yp = fnew(nv * dim);
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < heads * dim; i++) yp[r * heads * dim + i] = y[r * ld + i];
  CHECK(close_f("rmsnorm fwd", yp, yd, nv * dim, 1e-6, 1e-5));

  /* loss = sum c . y; gradients by central differences of the double reference */
  double *cw = dnew(nv * dim);
  for (int i = 0; i < nv * dim; i++) cw[i] = urand() * 2 - 1;
  float *dy = fnew(rows * ld), *dx = fnew(rows * ld), *dw = fnew(dim);
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < heads * dim; i++) dy[r * ld + i] = (float)cw[r * heads * dim + i];
  for (int i = 0; i < dim; i++) dw[i] = 0.25f; /* accumulates */
  for (int i = 0; i < rows * ld; i++) dx[i] = 1.0f;
  be->rmsnorm_bwd(be, dx, ld, 1, dw, dy, ld, x, ld, w, rstd, rows, heads, dim);
  double h = 1e-6, *yy = dnew(nv * dim);
  double *gx = dnew(nv * dim), *gw = dnew(dim);
  for (int i = 0; i < nv * dim; i++) {
    double keep = xd[i], lp = 0, lm = 0;
    xd[i] = keep + h;
    ref_rmsnorm(yy, xd, wd, nv, dim, eps);
    for (int j = 0; j < nv * dim; j++) lp += cw[j] * yy[j];
    xd[i] = keep - h;
    ref_rmsnorm(yy, xd, wd, nv, dim, eps);
    for (int j = 0; j < nv * dim; j++) lm += cw[j] * yy[j];
    xd[i] = keep;
    gx[i] = (lp - lm) / (2 * h) + 1.0;
  }
  for (int i = 0; i < dim; i++) {
    double keep = wd[i], lp = 0, lm = 0;
    wd[i] = keep + h;
    ref_rmsnorm(yy, xd, wd, nv, dim, eps);
    for (int j = 0; j < nv * dim; j++) lp += cw[j] * yy[j];
    wd[i] = keep - h;
    ref_rmsnorm(yy, xd, wd, nv, dim, eps);
    for (int j = 0; j < nv * dim; j++) lm += cw[j] * yy[j];
    wd[i] = keep;
    gw[i] = (lp - lm) / (2 * h) + 0.25;
  }
  float *dxp = fnew(nv * dim);
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < heads * dim; i++) dxp[r * heads * dim + i] = dx[r * ld + i];
  CHECK(close_f("rmsnorm dx", dxp, gx, nv * dim, 1e-5, 1e-4));
  CHECK(close_f("rmsnorm dw", dw, gw, dim, 1e-5, 1e-4));
  CHECK_NEAR(dx[ld - 1], 1.0, 0.0); /* padding untouched */
  /* non-accumulating variant in place over dy */
  be->rmsnorm_bwd(be, dy, ld, 0, dw, dy, ld, x, ld, w, rstd, rows, heads, dim);
  for (int i = 0; i < nv * dim; i++) gx[i] -= 1.0;
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < heads * dim; i++) dxp[r * heads * dim + i] = dy[r * ld + i];
  CHECK(close_f("rmsnorm dx in place", dxp, gx, nv * dim, 1e-5, 1e-4));
  free(x), free(w), free(y), free(rstd), free(xd), free(wd), free(yd), free(yp), free(cw);
  free(dy), free(dx), free(dw), free(yy), free(gx), free(gw), free(dxp);
}

/* ---- RoPE ------------------------------------------------------------------ */

TEST(rope_inv_freq) {
  float f[8];
  grpo_error err = {0};
  CHECK(grpo_rope_inv_freq(f, 16, 500000.0, NULL, &err) == GRPO_OK);
  /* torch: 1/(500000 ** (arange(0,16,2).float()/16)) */
  const double base[8] = {1, 0.193922758, 0.0376060307, 0.00729266508, 0.00141421345,
                          0.000274248188, 5.31829573e-05, 1.03133852e-05};
  for (int j = 0; j < 8; j++) CHECK_NEAR(f[j], base[j], base[j] * 1e-6);
  /* transformers _compute_llama3_parameters, factor 8, low 1, high 4, original 64:
   * j=0 kept, j=1 in the smoothed band, j>=2 divided by 8 */
  grpo_rope_scaling sc = {"llama3", 8.0, 1.0, 4.0, 64.0};
  CHECK(grpo_rope_inv_freq(f, 16, 500000.0, &sc, &err) == GRPO_OK);
  const double l3[8] = {1, 0.079403013, 0.00470075384, 0.000911583134, 0.000176776681,
                        3.42810235e-05, 6.64786967e-06, 1.28917316e-06};
  for (int j = 0; j < 8; j++) CHECK_NEAR(f[j], l3[j], l3[j] * 1e-6);
  sc.rope_type = "yarn";
  CHECK(grpo_rope_inv_freq(f, 16, 500000.0, &sc, &err) == GRPO_EUNSUPPORTED);
  CHECK(strstr(err.msg, "yarn") != NULL);
  CHECK(grpo_rope_inv_freq(f, 15, 500000.0, NULL, &err) == GRPO_EINVAL);
}

TEST(rope_fwd_bwd) {
  int rows = 7, heads = 3, hd = 8, ld = heads * hd + 5, n = rows * ld;
  float inv[4];
  grpo_error err = {0};
  CHECK(grpo_rope_inv_freq(inv, hd, 10000.0, NULL, &err) == GRPO_OK);
  int32_t pos[7] = {0, 1, 2, 5, 3, 3, 100};
  float *x = fnew(n), *y = fnew(n), *z = fnew(n);
  fill(x, n, -1, 1);
  memcpy(y, x, sizeof(float) * n);
  be->rope_fwd(be, y, ld, rows, heads, hd, pos, inv);
  int ok = 1;
  for (int r = 0; r < rows; r++)
    for (int h = 0; h < heads; h++)
      for (int j = 0; j < hd / 2; j++) {
        const float *xv = x + r * ld + h * hd;
        double a = (double)pos[r] * inv[j], c = cos(a), s = sin(a);
        double e0 = xv[j] * c - xv[j + hd / 2] * s, e1 = xv[j + hd / 2] * c + xv[j] * s;
        float *yv = y + r * ld + h * hd;
        if (fabs(yv[j] - e0) > 2e-5 || fabs(yv[j + hd / 2] - e1) > 2e-5) ok = 0;
      }
  CHECK(ok);
  CHECK_NEAR(y[ld - 1], x[ld - 1], 0.0);
  /* backward is the transpose of the (linear) forward: <R x, g> = <x, R^T g> */
  float *g = fnew(n);
  fill(g, n, -1, 1);
  memcpy(z, g, sizeof(float) * n);
  be->rope_bwd(be, z, ld, rows, heads, hd, pos, inv);
  double l = 0, r2 = 0;
  for (int r = 0; r < rows; r++)
    for (int i = 0; i < heads * hd; i++) {
      l += (double)y[r * ld + i] * g[r * ld + i];
      r2 += (double)x[r * ld + i] * z[r * ld + i];
    }
  CHECK_NEAR(l, r2, 1e-5);
  be->rope_bwd(be, y, ld, rows, heads, hd, pos, inv); /* inverse of fwd */
  double md = 0;
  for (int i = 0; i < n; i++) md = fmax(md, fabs(y[i] - x[i]));
  CHECK_NEAR(md, 0.0, 1e-6);
  free(x), free(y), free(z), free(g);
}

/* ---- attention --------------------------------------------------------------- */

typedef struct att_case {
  int T, nh, nkv, hd;
  int32_t *tin, *tout;
} att_case;

static int visible(const att_case *c, int i, int j) { return c->tin[j] <= c->tin[i] && c->tin[i] <= c->tout[j]; }

/* q,k,v dense [T, n*, hd] in double; out [T, nh, hd]; also returns P when asked */
static void ref_attn(const att_case *c, const double *q, const double *k, const double *v, double *out) {
  int T = c->T, nh = c->nh, hd = c->hd, grp = c->nh / c->nkv;
  double scale = 1.0 / sqrt((double)hd), *sc = dnew(T);
  for (int h = 0; h < nh; h++)
    for (int i = 0; i < T; i++) {
      int g = h / grp;
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < T; j++) {
        if (!visible(c, i, j)) continue;
        double s = 0;
        for (int d = 0; d < hd; d++) s += q[(i * nh + h) * hd + d] * k[(j * c->nkv + g) * hd + d];
        sc[j] = s * scale;
        mx = fmax(mx, sc[j]);
      }
      for (int j = 0; j < T; j++)
        if (visible(c, i, j)) sum += exp(sc[j] - mx);
      for (int d = 0; d < hd; d++) {
        double o = 0;
        for (int j = 0; j < T; j++)
          if (visible(c, i, j)) o += exp(sc[j] - mx) / sum * v[(j * c->nkv + g) * hd + d];
        out[(i * nh + h) * hd + d] = o;
      }
    }
  free(sc);
}

/* Analytical backward of ref_attn in double: dq, dk, dv (=). */
static void ref_attn_bwd(const att_case *c, const double *q, const double *k, const double *v,
                         const double *dout, double *dq, double *dk, double *dv) {
  int T = c->T, nh = c->nh, nkv = c->nkv, hd = c->hd, grp = nh / nkv;
  double scale = 1.0 / sqrt((double)hd), *P = dnew(T), *dP = dnew(T);
  memset(dq, 0, sizeof(double) * T * nh * hd);
  memset(dk, 0, sizeof(double) * T * nkv * hd);
  memset(dv, 0, sizeof(double) * T * nkv * hd);
  for (int h = 0; h < nh; h++)
    for (int i = 0; i < T; i++) {
      int g = h / grp;
      double mx = -INFINITY, sum = 0, dsum = 0;
      for (int j = 0; j < T; j++) {
        P[j] = -INFINITY;
        if (!visible(c, i, j)) continue;
        double s = 0;
        for (int d = 0; d < hd; d++) s += q[(i * nh + h) * hd + d] * k[(j * nkv + g) * hd + d];
        P[j] = s * scale;
        mx = fmax(mx, P[j]);
      }
      for (int j = 0; j < T; j++) sum += visible(c, i, j) ? exp(P[j] - mx) : 0;
      for (int j = 0; j < T; j++) {
        P[j] = visible(c, i, j) ? exp(P[j] - mx) / sum : 0;
        dP[j] = 0;
        for (int d = 0; d < hd; d++) dP[j] += dout[(i * nh + h) * hd + d] * v[(j * nkv + g) * hd + d];
        dsum += P[j] * dP[j];
      }
      for (int j = 0; j < T; j++) {
        if (P[j] == 0) continue;
        double ds = P[j] * (dP[j] - dsum) * scale;
        for (int d = 0; d < hd; d++) {
          dq[(i * nh + h) * hd + d] += ds * k[(j * nkv + g) * hd + d];
          dk[(j * nkv + g) * hd + d] += ds * q[(i * nh + h) * hd + d];
          dv[(j * nkv + g) * hd + d] += P[j] * dout[(i * nh + h) * hd + d];
        }
      }
    }
  free(P), free(dP);
}

/* Runs the backend on a fused QKV buffer [T, (nh+2nkv)*hd + pad] and compares
 * fwd and bwd with the double reference. */
static void check_attention(const att_case *c, const char *name) {
  int T = c->T, nh = c->nh, nkv = c->nkv, hd = c->hd;
  int64_t ld = (int64_t)(nh + 2 * nkv) * hd + 3, ldo = (int64_t)nh * hd + 1;
  float *qkv = fnew(T * ld), *out = fnew(T * ldo), *dout = fnew(T * ldo), *dqkv = fnew(T * ld);
  float *lse = fnew(nh * T);
  fill(qkv, T * ld, -1.5, 1.5);
  fill(dout, T * ldo, -1, 1);
  grpo_attn_shape s = {T, nh, nkv, hd, (float)(1.0 / sqrt(hd)), qkv, ld, qkv + nh * hd, ld,
                       qkv + (nh + nkv) * hd, ld, c->tin, c->tout, 0, 0, NULL};
  size_t wsb = be->attn_workspace(be, T, nh, nkv, hd);
  void *ws = ws_new(wsb);
  be->attn_fwd(be, &s, out, ldo, lse, ws, wsb);
  for (int i = 0; i < T * ld; i++) dqkv[i] = 7.0f; /* = semantics: overwritten */
  be->attn_bwd(be, &s, out, ldo, lse, dout, ldo, dqkv, dqkv + nh * hd, dqkv + (nh + nkv) * hd, ws, wsb);

  double *q = dnew(T * nh * hd), *k = dnew(T * nkv * hd), *v = dnew(T * nkv * hd), *o = dnew(T * nh * hd);
  double *dod = dnew(T * nh * hd), *dq = dnew(T * nh * hd), *dk = dnew(T * nkv * hd), *dv = dnew(T * nkv * hd);
  for (int i = 0; i < T; i++) {
    for (int x = 0; x < nh * hd; x++) {
      q[i * nh * hd + x] = qkv[i * ld + x];
      dod[i * nh * hd + x] = dout[i * ldo + x];
    }
    for (int x = 0; x < nkv * hd; x++) {
      k[i * nkv * hd + x] = qkv[i * ld + nh * hd + x];
      v[i * nkv * hd + x] = qkv[i * ld + (nh + nkv) * hd + x];
    }
  }
  ref_attn(c, q, k, v, o);
  ref_attn_bwd(c, q, k, v, dod, dq, dk, dv);
  float *got = fnew(T * nh * hd), *gdq = fnew(T * nh * hd), *gdk = fnew(T * nkv * hd), *gdv = fnew(T * nkv * hd);
  for (int i = 0; i < T; i++) {
    for (int x = 0; x < nh * hd; x++) {
      got[i * nh * hd + x] = out[i * ldo + x];
      gdq[i * nh * hd + x] = dqkv[i * ld + x];
    }
    for (int x = 0; x < nkv * hd; x++) {
      gdk[i * nkv * hd + x] = dqkv[i * ld + nh * hd + x];
      gdv[i * nkv * hd + x] = dqkv[i * ld + (nh + nkv) * hd + x];
    }
  }
  CHECK_MSG(close_f("attn out", got, o, T * nh * hd, 1e-5, 1e-4), "%s", name);
  CHECK_MSG(close_f("attn dq", gdq, dq, T * nh * hd, 1e-5, 1e-4), "%s", name);
  CHECK_MSG(close_f("attn dk", gdk, dk, T * nkv * hd, 1e-5, 1e-4), "%s", name);
  CHECK_MSG(close_f("attn dv", gdv, dv, T * nkv * hd, 1e-5, 1e-4), "%s", name);
  CHECK_NEAR(dqkv[ld - 1], 7.0, 0.0); /* padding untouched */
  /* lse against the reference for (head 1, last token) */
  {
    int h = 1, i = T - 1, g = h / (nh / nkv);
    double mx = -INFINITY, sum = 0, sc;
    for (int j = 0; j < T; j++)
      if (visible(c, i, j)) {
        sc = 0;
        for (int d = 0; d < hd; d++) sc += q[(i * nh + h) * hd + d] * k[(j * nkv + g) * hd + d];
        mx = fmax(mx, sc / sqrt(hd));
      }
    for (int j = 0; j < T; j++)
      if (visible(c, i, j)) {
        sc = 0;
        for (int d = 0; d < hd; d++) sc += q[(i * nh + h) * hd + d] * k[(j * nkv + g) * hd + d];
        sum += exp(sc / sqrt(hd) - mx);
      }
    CHECK_NEAR(lse[h * T + i], mx + log(sum), 1e-4);
  }
  free(qkv), free(out), free(dout), free(dqkv), free(lse), free(ws);
  free(q), free(k), free(v), free(o), free(dod), free(dq), free(dk), free(dv);
  free(got), free(gdq), free(gdk), free(gdv);
}

static att_case causal_case(const int *lens, int nseq, int nh, int nkv, int hd) {
  att_case c = {0, nh, nkv, hd, NULL, NULL};
  for (int s = 0; s < nseq; s++) c.T += lens[s];
  c.tin = malloc(sizeof(int32_t) * c.T);
  c.tout = malloc(sizeof(int32_t) * c.T);
  int t = 0;
  for (int s = 0; s < nseq; s++) {
    int end = t + lens[s] - 1;
    for (int i = 0; i < lens[s]; i++, t++) {
      c.tin[t] = t;
      c.tout[t] = end;
    }
  }
  return c;
}

TEST(attention_causal_packed) {
  int lens[3] = {70, 45, 90}; /* crosses 64-row blocks, sequence starts mid-block */
  att_case c = causal_case(lens, 3, 4, 2, 16);
  check_attention(&c, "causal 70+45+90, GQA 4/2");
  free(c.tin), free(c.tout);
  int lens2[4] = {1, 63, 1, 64}; /* length-1 sequences, block-aligned boundaries */
  c = causal_case(lens2, 4, 2, 1, 8);
  check_attention(&c, "causal 1+63+1+64, MQA");
  free(c.tin), free(c.tout);
  int lens1[1] = {33};
  c = causal_case(lens1, 1, 2, 2, 8);
  check_attention(&c, "single sequence, MHA");
  free(c.tin), free(c.tout);
}

/* Trie packing: shared prefix P (len 50), thread A (40) and thread B (60)
 * both continuing P with the same position ids; then an unrelated sequence
 * (30); DFS order. Optionally the tokens are stored in a scrambled order:
 * the mask depends only on tin/tout. */
static att_case trie_case(int scramble) {
  att_case c = {180, 4, 2, 8, NULL, NULL};
  int32_t tin[180], tout[180];
  for (int i = 0; i < 180; i++) tin[i] = i;
  for (int i = 0; i < 50; i++) tout[i] = 149;
  for (int i = 50; i < 90; i++) tout[i] = 89;
  for (int i = 90; i < 150; i++) tout[i] = 149;
  for (int i = 150; i < 180; i++) tout[i] = 179;
  c.tin = malloc(sizeof(int32_t) * 180);
  c.tout = malloc(sizeof(int32_t) * 180);
  for (int i = 0; i < 180; i++) {
    int src = scramble ? (i * 7) % 180 : i; /* 7 is coprime to 180 */
    c.tin[i] = tin[src];
    c.tout[i] = tout[src];
  }
  return c;
}

TEST(attention_trie_packed) {
  att_case c = trie_case(0);
  check_attention(&c, "trie");
  /* a thread-B token does not see thread A */
  CHECK(!visible(&c, 100, 60) && visible(&c, 100, 10) && visible(&c, 60, 10) && !visible(&c, 160, 10));
  free(c.tin), free(c.tout);
  c = trie_case(1);
  check_attention(&c, "trie, scrambled token order");
  free(c.tin), free(c.tout);
}

/* The reference backward itself against central differences of the double
 * forward (small case), so the two references cannot share a mistake. */
TEST(attention_reference_bwd_vs_fd) {
  int lens[2] = {3, 4};
  att_case c = causal_case(lens, 2, 2, 1, 4);
  c.tout[0] = 2; /* already; plus a branch: token 2 does not see token 1 */
  c.tin[1] = 1, c.tout[1] = 1;
  c.tin[2] = 2, c.tout[2] = 2;
  int T = c.T, nh = 2, nkv = 1, hd = 4;
  size_t nq = T * nh * hd, nk = T * nkv * hd;
  double *q = dnew(nq), *k = dnew(nk), *v = dnew(nk), *o = dnew(nq), *w = dnew(nq);
  for (size_t i = 0; i < nq; i++) q[i] = urand() * 2 - 1, w[i] = urand() * 2 - 1;
  for (size_t i = 0; i < nk; i++) k[i] = urand() * 2 - 1, v[i] = urand() * 2 - 1;
  double *dq = dnew(nq), *dk = dnew(nk), *dv = dnew(nk);
  ref_attn_bwd(&c, q, k, v, w, dq, dk, dv);
  double *bufs[3] = {q, k, v}, *grads[3] = {dq, dk, dv};
  size_t ns[3] = {nq, nk, nk};
  double worst = 0, h = 1e-6;
  for (int b = 0; b < 3; b++)
    for (size_t i = 0; i < ns[b]; i++) {
      double keep = bufs[b][i], lp = 0, lm = 0;
      bufs[b][i] = keep + h;
      ref_attn(&c, q, k, v, o);
      for (size_t j = 0; j < nq; j++) lp += w[j] * o[j];
      bufs[b][i] = keep - h;
      ref_attn(&c, q, k, v, o);
      for (size_t j = 0; j < nq; j++) lm += w[j] * o[j];
      bufs[b][i] = keep;
      worst = fmax(worst, fabs((lp - lm) / (2 * h) - grads[b][i]));
    }
  CHECK_NEAR(worst, 0.0, 1e-7);
  free(q), free(k), free(v), free(o), free(w), free(dq), free(dk), free(dv), free(c.tin), free(c.tout);
}

TEST(attention_decode_and_kv_write) {
  int nslots = 3, tmax = 20, nh = 4, nkv = 2, hd = 8, width = nkv * hd;
  float *kc = fnew(nslots * tmax * width), *vc = fnew(nslots * tmax * width);
  fill(kc, nslots * tmax * width, -1, 1);
  fill(vc, nslots * tmax * width, -1, 1);
  /* append one row to slots 2 and 0 at positions 11 and 4 */
  float newk[2 * 17], newv[2 * 17];
  fill(newk, 34, -1, 1);
  fill(newv, 34, -1, 1);
  int32_t wslots[2] = {2, 0}, wpos[2] = {11, 4};
  be->kv_write(be, kc, newk, 17, wslots, wpos, 2, width, tmax);
  be->kv_write(be, vc, newv, 17, wslots, wpos, 2, width, tmax);
  CHECK_NEAR(kc[(2 * tmax + 11) * width + 5], newk[5], 0.0);
  CHECK_NEAR(vc[(0 * tmax + 4) * width + 3], newv[17 + 3], 0.0);
  int n = 2;
  int32_t slots[2] = {2, 0}, lens[2] = {12, 5};
  float *q = fnew(n * nh * hd), *out = fnew(n * nh * hd);
  fill(q, n * nh * hd, -1, 1);
  size_t wsb = be->attn_decode_workspace(be, n, nh, tmax);
  void *ws = ws_new(wsb);
  float scale = 1.0f / sqrtf((float)hd);
  be->attn_decode(be, out, q, kc, vc, slots, lens, n, nh, nkv, hd, tmax, scale, ws, wsb);
  double *ref = dnew(n * nh * hd);
  for (int i = 0; i < n; i++)
    for (int h = 0; h < nh; h++) {
      int g = h / (nh / nkv);
      double sc[20], mx = -INFINITY, sum = 0;
      for (int t = 0; t < lens[i]; t++) {
        double a = 0;
        for (int d = 0; d < hd; d++) a += (double)q[(i * nh + h) * hd + d] * kc[((slots[i] * tmax + t) * nkv + g) * hd + d];
        sc[t] = a * scale;
        mx = fmax(mx, sc[t]);
      }
      for (int t = 0; t < lens[i]; t++) sum += exp(sc[t] - mx);
      for (int d = 0; d < hd; d++) {
        double o = 0;
        for (int t = 0; t < lens[i]; t++) o += exp(sc[t] - mx) / sum * vc[((slots[i] * tmax + t) * nkv + g) * hd + d];
        ref[(i * nh + h) * hd + d] = o;
      }
    }
  CHECK(close_f("attn decode", out, ref, n * nh * hd, 1e-6, 1e-5));
  free(kc), free(vc), free(q), free(out), free(ws), free(ref);
}

/* ---- SwiGLU, embedding, bias, elementwise ------------------------------------- */

static double silu(double x) { return x / (1 + exp(-x)); }

TEST(swiglu_fwd_bwd) {
  int rows = 5, cols = 11, ld = 2 * cols + 1; /* fused [gate | up] */
  float *gu = fnew(rows * ld), *out = fnew(rows * cols), *dout = fnew(rows * cols), *dgu = fnew(rows * ld);
  fill(gu, rows * ld, -4, 4);
  fill(dout, rows * cols, -1, 1);
  be->swiglu_fwd(be, out, cols, gu, ld, gu + cols, ld, rows, cols);
  double *ref = dnew(rows * cols), *rg = dnew(rows * cols), *ru = dnew(rows * cols);
  double h = 1e-6;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) {
      double g = gu[r * ld + c], u = gu[r * ld + cols + c], d = dout[r * cols + c];
      ref[r * cols + c] = silu(g) * u;
      rg[r * cols + c] = d * (silu(g + h) - silu(g - h)) / (2 * h) * u;
      ru[r * cols + c] = d * silu(g);
    }
  CHECK(close_f("swiglu fwd", out, ref, rows * cols, 1e-6, 1e-5));
  be->swiglu_bwd(be, dgu, ld, dgu + cols, ld, dout, cols, gu, ld, gu + cols, ld, rows, cols);
  float *a = fnew(rows * cols), *b = fnew(rows * cols);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) a[r * cols + c] = dgu[r * ld + c], b[r * cols + c] = dgu[r * ld + cols + c];
  CHECK(close_f("swiglu dgate", a, rg, rows * cols, 1e-5, 1e-4));
  CHECK(close_f("swiglu dup", b, ru, rows * cols, 1e-6, 1e-5));
  /* in place: gradients overwrite the activations */
  be->swiglu_bwd(be, gu, ld, gu + cols, ld, dout, cols, gu, ld, gu + cols, ld, rows, cols);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) a[r * cols + c] = gu[r * ld + c];
  CHECK(close_f("swiglu dgate in place", a, rg, rows * cols, 1e-5, 1e-4));
  free(gu), free(out), free(dout), free(dgu), free(ref), free(rg), free(ru), free(a), free(b);
}

TEST(embedding_fwd_bwd) {
  int V = 9, dim = 6, rows = 7, ldo = 8;
  int32_t ids[7] = {3, 0, 8, 3, 3, 5, 0};
  float *E = fnew(V * dim), *out = fnew(rows * ldo), *dout = fnew(rows * ldo), *dE = fnew(V * dim);
  fill(E, V * dim, -1, 1);
  fill(dout, rows * ldo, -1, 1);
  be->embed_fwd(be, out, ldo, E, ids, rows, dim);
  int ok = 1;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < dim; c++) ok &= out[r * ldo + c] == E[ids[r] * dim + c];
  CHECK(ok);
  for (int i = 0; i < V * dim; i++) dE[i] = 0.5f;
  be->embed_bwd(be, dE, dout, ldo, ids, rows, dim);
  double *ref = dnew(V * dim);
  for (int i = 0; i < V * dim; i++) ref[i] = 0.5;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < dim; c++) ref[ids[r] * dim + c] += dout[r * ldo + c];
  CHECK(close_f("embed bwd", dE, ref, V * dim, 1e-6, 1e-6));
  free(E), free(out), free(dout), free(dE), free(ref);
}

TEST(bias_and_elementwise) {
  int rows = 4, cols = 5, ld = 7;
  float *y = fnew(rows * ld), *b = fnew(cols), *db = fnew(cols);
  fill(y, rows * ld, -1, 1);
  fill(b, cols, -1, 1);
  double *ry = to_d(y, rows * ld), *rdb = dnew(cols);
  be->bias_add(be, y, ld, b, rows, cols);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) ry[r * ld + c] += b[c];
  CHECK(close_f("bias add", y, ry, rows * ld, 1e-7, 1e-6));
  for (int c = 0; c < cols; c++) db[c] = 1.0f, rdb[c] = 1.0;
  be->bias_grad(be, db, y, ld, rows, cols);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) rdb[c] += y[r * ld + c];
  CHECK(close_f("bias grad", db, rdb, cols, 1e-6, 1e-6));
  float a[4] = {1, 2, 3, 4}, c2[4] = {0.5f, -1, 2, 0}, o[4];
  be->add(be, o, a, c2, 4);
  CHECK_NEAR(o[1], 1.0, 0.0);
  CHECK_NEAR(o[2], 5.0, 0.0);
  be->axpy(be, o, -2.0f, a, 4); /* o = a + c2 - 2a = c2 - a */
  CHECK_NEAR(o[0], -0.5, 0.0);
  CHECK_NEAR(o[3], -4.0, 0.0);
  be->scale(be, o, 0.5f, 4);
  CHECK_NEAR(o[3], -2.0, 0.0);
  CHECK_NEAR(be->sumsq(be, a, 4), 30.0, 0.0);
  /* a large buffer takes the threaded path */
  size_t n = 300001;
  float *big = fnew(n);
  double want = 0;
  for (size_t i = 0; i < n; i++) big[i] = (float)((i % 7) - 3), want += (double)big[i] * big[i];
  CHECK_NEAR(be->sumsq(be, big, n), want, 0.0);
  /* copy2d and memset */
  float src[12], dst[15];
  for (int i = 0; i < 12; i++) src[i] = (float)i;
  be->memset(be, dst, 0, sizeof dst);
  be->copy2d(be, dst, 5, src, 4, 3, 3);
  CHECK_NEAR(dst[5 + 2], 6.0, 0.0);
  CHECK_NEAR(dst[3], 0.0, 0.0);
  free(y), free(b), free(db), free(ry), free(rdb), free(big);
}

/* ---- classifier ------------------------------------------------------------------ */

typedef struct cls_case {
  int n, H, V;
  double temp;
  const int32_t *rows, *tg;
} cls_case;

/* logprob, entropy per prediction from full logits, in double */
static void ref_cls(const cls_case *c, const double *h, int64_t ldh, const double *W, double *lp, double *ent) {
  double *z = dnew(c->V);
  for (int k = 0; k < c->n; k++) {
    int r = c->rows ? c->rows[k] : k;
    double mx = -INFINITY, sum = 0, pz = 0;
    for (int v = 0; v < c->V; v++) {
      double a = 0;
      for (int d = 0; d < c->H; d++) a += h[r * ldh + d] * W[v * c->H + d];
      z[v] = a / c->temp;
      mx = fmax(mx, z[v]);
    }
    for (int v = 0; v < c->V; v++) sum += exp(z[v] - mx);
    double lse = mx + log(sum);
    for (int v = 0; v < c->V; v++) pz += exp(z[v] - lse) * z[v];
    lp[k] = z[c->tg[k]] - lse;
    ent[k] = lse - pz;
  }
  free(z);
}

static void check_classifier(int n, int H, int V, double temp, int rc, int vc, int use_rows) {
  int rowsN = n + 3;
  int64_t ldh = H + 2;
  int32_t *rows = malloc(sizeof(int32_t) * n), *tg = malloc(sizeof(int32_t) * n);
  for (int k = 0; k < n; k++) {
    rows[k] = (k * 5 + 1) % rowsN;
    if (k == n - 1) rows[k] = rows[0]; /* a repeated row accumulates twice */
    tg[k] = (int)(urand() * V);
  }
  tg[0] = V - 1;
  float *h = fnew(rowsN * ldh), *W = fnew(V * H);
  fill(h, rowsN * ldh, -1, 1);
  fill(W, V * H, -1.5, 1.5);
  cls_case c = {n, H, V, temp, use_rows ? rows : NULL, tg};
  grpo_classifier_shape s = {n, H, V, h, ldh, c.rows, W, tg, (float)temp, rc, vc};
  size_t wsb = be->classifier_workspace(be, &s);
  void *ws = ws_new(wsb);
  float *lp = fnew(n), *ent = fnew(n), *lse = fnew(n);
  be->classifier_fwd(be, &s, lp, ent, lse, ws, wsb);
  double *hd = to_d(h, rowsN * ldh), *Wd = to_d(W, V * H), *rlp = dnew(n), *rent = dnew(n);
  ref_cls(&c, hd, ldh, Wd, rlp, rent);
  CHECK_MSG(close_f("cls logprob", lp, rlp, n, 1e-5, 1e-5), "n=%d V=%d rc=%d vc=%d T=%g", n, V, rc, vc, temp);
  CHECK_MSG(close_f("cls entropy", ent, rent, n, 1e-5, 1e-5), "n=%d V=%d rc=%d vc=%d T=%g", n, V, rc, vc, temp);

  /* backward: loss = sum a_k logprob_k + b_k entropy_k, by central differences */
  float *dlp = fnew(n), *dent = fnew(n), *dh = fnew(rowsN * ldh), *dW = fnew(V * H);
  fill(dlp, n, -1, 1);
  fill(dent, n, -1, 1);
  for (int i = 0; i < rowsN * ldh; i++) dh[i] = 0.25f;
  for (int i = 0; i < V * H; i++) dW[i] = -0.5f;
  be->classifier_bwd(be, &s, lse, ent, dlp, dent, dh, ldh, dW, ws, wsb);
  double *gh = dnew(rowsN * ldh), *gW = dnew(V * H), *tl = dnew(n), *te = dnew(n), step = 1e-5;
#define LOSS(out)                                                   \
  do {                                                              \
    ref_cls(&c, hd, ldh, Wd, tl, te);                               \
    out = 0;                                                        \
    for (int k = 0; k < n; k++) out += dlp[k] * tl[k] + dent[k] * te[k]; \
  } while (0)
  for (int i = 0; i < rowsN * ldh; i++) {
    double keep = hd[i], a, b;
    if (i % ldh >= H) {
      gh[i] = 0.25;
      continue;
    }
    hd[i] = keep + step;
    LOSS(a);
    hd[i] = keep - step;
    LOSS(b);
    hd[i] = keep;
    gh[i] = (a - b) / (2 * step) + 0.25;
  }
  for (int i = 0; i < V * H; i++) {
    double keep = Wd[i], a, b;
    Wd[i] = keep + step;
    LOSS(a);
    Wd[i] = keep - step;
    LOSS(b);
    Wd[i] = keep;
    gW[i] = (a - b) / (2 * step) - 0.5;
  }
#undef LOSS
  CHECK_MSG(close_f("cls dh", dh, gh, rowsN * ldh, 1e-4, 1e-3), "n=%d V=%d rows=%d", n, V, use_rows);
  CHECK_MSG(close_f("cls dW", dW, gW, V * H, 1e-4, 1e-3), "n=%d V=%d rows=%d", n, V, use_rows);
  /* dentropy = NULL must equal dentropy = 0 */
  float *dh2 = fnew(rowsN * ldh), *dW2 = fnew(V * H), *z0 = fnew(n);
  float *dh3 = fnew(rowsN * ldh), *dW3 = fnew(V * H);
  be->classifier_bwd(be, &s, lse, NULL, dlp, NULL, dh2, ldh, dW2, ws, wsb);
  be->classifier_bwd(be, &s, lse, ent, dlp, z0, dh3, ldh, dW3, ws, wsb);
  double md = 0;
  for (int i = 0; i < V * H; i++) md = fmax(md, fabs(dW2[i] - dW3[i]));
  CHECK_NEAR(md, 0.0, 1e-6);
  free(rows), free(tg), free(h), free(W), free(ws), free(lp), free(ent), free(lse), free(hd), free(Wd);
  free(rlp), free(rent), free(dlp), free(dent), free(dh), free(dW), free(gh), free(gW), free(tl), free(te);
  free(dh2), free(dW2), free(z0), free(dh3), free(dW3);
}

TEST(classifier_chunks_and_temperature) {
  /* chunk sizes that divide neither n nor V, temperature != 1, with and without a row map */
  check_classifier(13, 8, 37, 0.7, 5, 10, 1);
  check_classifier(13, 8, 37, 1.0, 4, 37, 0);
  check_classifier(6, 5, 23, 1.3, 0, 0, 1); /* backend default chunks */
}

TEST(classifier_large_logits) {
  /* peaked distribution: entropy near 0 must not suffer cancellation */
  int n = 3, H = 4, V = 50;
  float h[12] = {0.5f, -0.5f, 0.5f, 0.5f}, W[200]; /* row 0 has |h| = 1 */
  fill(h + 4, 8, -1, 1);
  fill(W, 200, -1, 1);
  for (int d = 0; d < H; d++) W[7 * H + d] = 40.0f * h[d]; /* token 7 dominates row 0 */
  int32_t tg[3] = {7, 1, 2};
  grpo_classifier_shape s = {n, H, V, h, H, NULL, W, tg, 1.0f, 2, 16};
  size_t wsb = be->classifier_workspace(be, &s);
  void *ws = ws_new(wsb);
  float lp[3], ent[3], lse[3];
  be->classifier_fwd(be, &s, lp, ent, lse, ws, wsb);
  double *hd = to_d(h, 12), *Wd = to_d(W, 200), rlp[3], rent[3];
  cls_case c = {n, H, V, 1.0, NULL, tg};
  ref_cls(&c, hd, H, Wd, rlp, rent);
  CHECK_NEAR(lp[0], rlp[0], 1e-6);
  CHECK_NEAR(ent[0], rent[0], 1e-6 + 1e-4 * rent[0]);
  CHECK(ent[0] < 1e-3);
  free(ws), free(hd), free(Wd);
}

/* The vectorised exp of the softmax loops against exp in double. */
TEST(simd_exp_accuracy) {
  enum { N = 4001 };
  static float z[N];
  for (int i = 0; i < N; i++) z[i] = -90.0f + 178.0f * (float)i / (N - 1);
  cpu_simd.expsub(z, N, 0.0f);
  double worst = 0;
  for (int i = 0; i < N; i++) {
    float x = -90.0f + 178.0f * (float)i / (N - 1);
    double e = exp((double)x);
    if (x < -87.3f) {
      CHECK(z[i] >= 0.0f && z[i] < 1.2e-38f);
      continue;
    }
    worst = fmax(worst, fabs(z[i] - e) / e);
  }
  CHECK_MSG(worst < 2.5e-7, "%s: worst relative error %g", cpu_simd.name, worst);
  float mz[37];
  for (int i = 0; i < 37; i++) mz[i] = -INFINITY;
  CHECK(cpu_simd.rowmax(mz, 37) == -INFINITY);
  CHECK(cpu_simd.rowmax(mz, 0) == -INFINITY);
  for (int pos = 0; pos < 37; pos += 6) { /* in the 16-lane body and in the tail */
    for (int i = 0; i < 37; i++) mz[i] = (float)(-i % 5) - 10.0f;
    mz[pos] = 3.5f;
    CHECK_NEAR(cpu_simd.rowmax(mz, 37), 3.5, 0.0);
  }
  float m[3] = {-INFINITY, 0.0f, NAN};
  cpu_simd.expsub(m, 3, 0.0f);
  CHECK(m[0] == 0.0f && m[1] == 1.0f && isnan(m[2]));
  float s, sz, zz[5] = {1, 2, 3, -INFINITY, 0.5f};
  cpu_simd.expstats(zz, 5, 3.0f, &s, &sz);
  double ws = exp(-2.0) + exp(-1.0) + 1 + exp(-2.5), wsz = -2 * exp(-2.0) - exp(-1.0) - 2.5 * exp(-2.5);
  CHECK_NEAR(s, ws, 1e-6);
  CHECK_NEAR(sz, wsz, 1e-6);
}

/* ---- AdamW ------------------------------------------------------------------------ */

TEST(adamw_two_steps) {
  /* lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.01; grads step 1 then step 2.
   * By hand for p = 1, g = 0.5 then -0.25:
   *  t=1: p = 0.999; m = 0.05; v = 2.5e-4; step_size = 0.1/0.1 = 1;
   *       denom = sqrt(2.5e-4)/sqrt(1e-3) + 1e-8 = 0.5 + 1e-8; p = 0.999 - 0.1 = 0.899
   *  t=2: p = 0.899*0.999 = 0.898101; m = 0.045 - 0.025 = 0.02;
   *       v = 0.999*2.5e-4 + 0.001*0.0625 = 3.1225e-4; step_size = 0.1/0.19;
   *       denom = sqrt(3.1225e-4)/sqrt(0.001999) = 0.395228...;
   *       p = 0.898101 - 0.526316*0.02/0.395228 = 0.871467
   * (torch.optim.AdamW gives 0.899000049, 0.871467352; the other two
   * elements are torch's values for the same run.) */
  float p[3] = {1.0f, -2.0f, 0.0f}, m[3] = {0}, v[3] = {0};
  float g1[3] = {0.5f, 0.1f, -1.0f}, g2[3] = {-0.25f, 0.1f, 2.0f};
  grpo_adamw_hparams hp = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                           .weight_decay = 0.01, .grad_scale = 1.0f};
  grpo_adamw_prepare(&hp, 1);
  be->adamw(be, p, g1, m, v, 3, &hp);
  CHECK_NEAR(p[0], 0.899000049, 2e-7);
  CHECK_NEAR(p[1], -2.09800005, 2e-7);
  CHECK_NEAR(p[2], 0.0999999866, 2e-7);
  grpo_adamw_prepare(&hp, 2);
  be->adamw(be, p, g2, m, v, 3, &hp);
  double byhand = 0.899 * 0.999 - (0.1 / 0.19) * 0.02 / (sqrt(3.1225e-4) / sqrt(1 - 0.999 * 0.999) + 1e-8);
  CHECK_NEAR(p[0], byhand, 3e-7);
  CHECK_NEAR(p[0], 0.871467352, 3e-7);
  CHECK_NEAR(p[1], -2.19590187, 3e-7);
  CHECK_NEAR(p[2], 0.0632896349, 3e-7);
  CHECK_NEAR(m[0], 0.02, 1e-8);
  CHECK_NEAR(v[0], 3.1225e-4, 6e-11); /* 2 f32 ulps */
  /* grad_scale multiplies the gradient before everything else */
  float q1[1] = {1.0f}, mq[1] = {0}, vq[1] = {0}, q2[1] = {1.0f}, mq2[1] = {0}, vq2[1] = {0};
  float gg[1] = {0.5f}, gh[1] = {0.25f};
  grpo_adamw_prepare(&hp, 1);
  hp.grad_scale = 0.5f;
  be->adamw(be, q1, gg, mq, vq, 1, &hp);
  hp.grad_scale = 1.0f;
  be->adamw(be, q2, gh, mq2, vq2, 1, &hp);
  CHECK_NEAR(q1[0], q2[0], 0.0);
  CHECK_NEAR(mq[0], 0.025, 4e-9);
}

int main(void) {
  be = grpo_backend_cpu();
  CHECK(be && be->kind == GRPO_DEVICE_CPU && be->act_dtype == GRPO_F32);
  RUN(dtype_conversions);
  RUN(sgemm_all_transposes);
  RUN(sgemm_batched_gqa);
  RUN(rmsnorm_fwd_bwd);
  RUN(rope_inv_freq);
  RUN(rope_fwd_bwd);
  RUN(swiglu_fwd_bwd);
  RUN(embedding_fwd_bwd);
  RUN(bias_and_elementwise);
  RUN(adamw_two_steps);
  /* softmax-heavy ops under every vector kernel set this CPU can run */
  int best = cpu_simd_select(-1);
  for (int level = best; level >= 0; level--) {
    cpu_simd_select(level);
    fprintf(stderr, "simd kernels: %s\n", cpu_simd.name);
    RUN(simd_exp_accuracy);
    RUN(attention_causal_packed);
    RUN(attention_trie_packed);
    RUN(attention_reference_bwd_vs_fd);
    RUN(attention_decode_and_kv_write);
    RUN(classifier_chunks_and_temperature);
    RUN(classifier_large_logits);
  }
  cpu_simd_select(best);
  return test_summary();
}
