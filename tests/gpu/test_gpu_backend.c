/* Every op of the CUDA backend against the CPU reference backend on random
 * inputs, in two passes: f32 activations, then bf16 activations (the f32-only
 * ops, scale / sumsq / adamw, run in both). Skips (exit 77) without a CUDA
 * device.
 *
 * bf16 pass: inputs are drawn in f32 and rounded to bf16 (grpo_f32_to_bf16)
 * for both sides, so the CPU reference computes in f32 on exactly the values
 * the GPU holds; act-typed GPU results are converted back to f32 for the
 * comparison. f32 buffers (parameter gradients, rstd, lse, logprob) are f32
 * on both sides in both passes.
 *
 * Metric: an element passes when |gpu - cpu| <= tol * (|cpu| + floor),
 * floor = f * max|cpu| of the tensor.
 *
 * f32 pass: f = 1e-2 (entries that cancel to ~0 are judged against the
 * tensor's scale). tol is 1e-4 for products and reductions (summation order
 * differs: cuBLAS vs OpenBLAS, tree vs sequential sums, FMA contraction on
 * the device), 2e-4 for attention and classifier gradients; 0 (bit equality)
 * where both sides do the same f32 operations in the same order: copies,
 * dtype conversions, embedding forward and backward (the GPU sums repeated
 * ids in ascending row order, like the CPU), bias_add, scale, add, kv_write.
 *
 * bf16 pass: f = 1, errors are measured against the tensor's scale. A bf16
 * store keeps 8 significant bits (error <= 2^-9 ~ 2e-3 of the value), and
 * where bf16 rounds an intermediate (HF's cast points in RMSNorm, RoPE and
 * SwiGLU; attention's P and dS; the classifier's dlogits) the error has the
 * size of the rounded terms, not of a result that may cancel to ~0. tol:
 *  - 0 for copies (copy2d, embed_fwd, kv_write, the k = 0 beta scale), for
 *    embed_bwd (f32 sums of the same values in the same order), and for
 *    bias_add / add checked against the CPU's f32 result rounded to bf16 (one
 *    f32 add, then round to nearest even, on both sides);
 *  - 1e-3 for f32 results of f32 arithmetic on bf16 inputs (rstd, dw, db,
 *    lse, logprob, entropy, gemm_wgrad): products of bf16 values are exact in
 *    f32, so only the summation order differs; the margin covers tensor-core
 *    accumulation;
 *  - 4e-3 for axpy (one rounding, after an f32 FMA that may differ by an ulp);
 *  - 1e-2 for one product or elementwise op with a rounded result and a few
 *    rounded intermediates (sgemm, sgemm_batched, RMSNorm, SwiGLU, decode):
 *    a few 2^-9 roundings with a 2x margin;
 *  - 2e-2 for chains of roundings: RoPE (cos, sin and both products rounded,
 *    as HF), attention (P and dS rounded before the next products, output
 *    rounded) and the classifier's dh / dW (bf16 dlogits in two products).
 * Within a chain the CPU continues from the GPU's rounded result where an
 * op's output feeds the next op (rope_bwd after rope_fwd, bias_grad after
 * bias_add), so each comparison measures one op. */
#include <stdint.h>

#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "core/dtype.h"
#include "test.h"

static grpo_backend *cpu, *gpu;
static int bf;             /* this pass runs bf16 activations */
static size_t AS = 4;      /* bytes per activation element */
static const char *mode = "F32";

#define TOL 1e-4
#define TOL_GRAD 2e-4
#define B_F32 1e-3  /* bf16 pass: f32 results from bf16 inputs */
#define B_FMA 4e-3  /* bf16 pass: axpy */
#define B_OP 1e-2   /* bf16 pass: one op, a few roundings */
#define B_CHAIN 2e-2 /* bf16 pass: chains of roundings */

/* ---- helpers ----------------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static double urand(void) { /* splitmix64 -> [0, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}
static float *frand(size_t n, double lo, double hi) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
  return x;
}
static int32_t *irand(size_t n, int lo, int hi) { /* [lo, hi) */
  int32_t *x = malloc((n ? n : 1) * sizeof(int32_t));
  for (size_t i = 0; i < n; i++) x[i] = lo + (int32_t)(urand() * (hi - lo));
  return x;
}
/* in the bf16 pass, x becomes the bf16 values the device holds */
static void round_act(float *x, size_t n) {
  if (!bf) return;
  for (size_t i = 0; i < n; i++) x[i] = grpo_bf16_to_f32(grpo_f32_to_bf16(x[i]));
}
/* frand for activation inputs (rounded to bf16 in the bf16 pass) */
static float *arand(size_t n, double lo, double hi) {
  float *x = frand(n, lo, hi);
  round_act(x, n);
  return x;
}

static void *dalloc(size_t bytes) {
  void *p = NULL;
  grpo_error err = {0};
  int rc = gpu->alloc(gpu, bytes, &p, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  return p;
}
static void dset(void *p, const void *h, size_t bytes) {
  grpo_error err = {0};
  int rc = gpu->copy_h2d(gpu, p, h, bytes, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
}
static void *dput(const void *h, size_t bytes) {
  void *p = dalloc(bytes);
  dset(p, h, bytes);
  return p;
}
static void *dget(const void *d, size_t bytes) {
  void *h = malloc(bytes ? bytes : 1);
  grpo_error err = {0};
  int rc = gpu->copy_d2h(gpu, h, d, bytes, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  return h;
}
static void dfree(void *p) { gpu->free(gpu, p); }
static void gsync(void) {
  grpo_error err = {0};
  int rc = gpu->sync(gpu, &err);
  CHECK_MSG(rc == GRPO_OK, "%s (%s)", err.msg, err.src);
}

/* activation buffers of n elements, filled from / read back as f32 */
static void *aalloc(size_t n) { return dalloc(n * AS); }
static void aset(void *d, const float *h, size_t n) {
  if (!bf) {
    dset(d, h, n * sizeof(float));
    return;
  }
  uint16_t *t = malloc((n ? n : 1) * sizeof(uint16_t));
  grpo_f32_to_bf16_n(t, h, n);
  dset(d, t, n * sizeof(uint16_t));
  free(t);
}
static void *aput(const float *h, size_t n) {
  void *d = aalloc(n);
  aset(d, h, n);
  return d;
}
static float *aget(const void *d, size_t n) {
  if (!bf) return dget(d, n * sizeof(float));
  uint16_t *t = dget(d, n * sizeof(uint16_t));
  float *x = malloc((n ? n : 1) * sizeof(float));
  grpo_bf16_to_f32_n(x, t, n);
  free(t);
  return x;
}
/* element n of an activation buffer */
static void *aoff(void *d, size_t n) { return (char *)d + n * AS; }
/* bf16 pass: the CPU continues from the GPU's (rounded) result */
static void resync(float *c, const void *gdev, size_t n) {
  if (!bf) return;
  float *g = aget(gdev, n);
  memcpy(c, g, n * sizeof(float));
  free(g);
}

/* gpu (host copy) against cpu; see the header comment for the metric. */
static int cmpf(const char *what, const float *c, const float *g, size_t n, double tol, double ffrac) {
  double mx = 0.0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(c[i]) && fabs(c[i]) > mx) mx = fabs(c[i]);
  double floor_ = ffrac * mx + 1e-30;
  double worst = 0.0;
  size_t wi = 0;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (c[i] == g[i]) continue; /* also equal infinities */
    if (isnan(c[i]) && isnan(g[i])) continue;
    double e = fabs((double)g[i] - c[i]) / (fabs(c[i]) + floor_);
    if (!(e <= tol)) bad++;
    if (!(e <= worst)) {
      worst = isnan(e) ? INFINITY : e;
      wi = i;
    }
  }
  if (bad) {
    fprintf(stderr, "  [%s] %s: %d of %zu mismatch; worst at %zu: gpu %.9g cpu %.9g (rel %.3g > %.3g)\n",
            mode, what, bad, n, wi, (double)g[wi], (double)c[wi], worst, tol);
    test_checks_failed_++;
    return 0;
  }
  return 1;
}

/* f32 device buffer, f32 metric (ops that do not involve the act type) */
static int cmp_dev(const char *what, const float *c, const void *gdev, size_t n, double tol) {
  float *g = dget(gdev, n * sizeof(float));
  int ok = cmpf(what, c, g, n, tol, 1e-2);
  free(g);
  return ok;
}
/* f32 device buffer computed from activations: tol32 or, in the bf16 pass,
 * tol16 against the tensor's scale */
static int cmp_f32(const char *what, const float *c, const void *gdev, size_t n, double tol32,
                   double tol16) {
  float *g = dget(gdev, n * sizeof(float));
  int ok = cmpf(what, c, g, n, bf ? tol16 : tol32, bf ? 1.0 : 1e-2);
  free(g);
  return ok;
}
/* activation device buffer */
static int cmp_act(const char *what, const float *c, const void *gdev, size_t n, double tol32,
                   double tol16) {
  float *g = aget(gdev, n);
  int ok = cmpf(what, c, g, n, bf ? tol16 : tol32, bf ? 1.0 : 1e-2);
  free(g);
  return ok;
}

/* ---- memory, copies, conversions --------------------------------------------------- */

TEST(memory_copies_convert) {
  size_t n = 1003;
  float *x = frand(n, -3, 3);
  x[0] = NAN, x[1] = INFINITY, x[2] = -INFINITY, x[3] = 1e-40f, x[4] = 70000.0f, x[5] = -0.0f;
  x[6] = 1.00390625f; /* a bf16 tie */
  float *d = dput(x, n * sizeof(float));
  float *d2 = dalloc(n * sizeof(float));
  grpo_error err = {0};
  CHECK(gpu->copy_d2d(gpu, d2, d, n * sizeof(float), &err) == GRPO_OK);
  float *back = dget(d2, n * sizeof(float));
  CHECK(memcmp(back, x, n * sizeof(float)) == 0);
  free(back);
  /* memset */
  gpu->memset(gpu, d2, 0, 10 * sizeof(float));
  back = dget(d2, n * sizeof(float));
  CHECK(back[0] == 0.0f && back[9] == 0.0f && back[10] == x[10]);
  free(back);
  /* copy2d (act type): 7 rows of 13 from stride 20 into stride 16 */
  float *xa = malloc(n * sizeof(float));
  memcpy(xa, x, n * sizeof(float));
  round_act(xa, n);
  void *da = aput(xa, n);
  float *hc = calloc(7 * 16, sizeof(float));
  void *dc = aput(hc, 7 * 16);
  cpu->copy2d(cpu, hc, 16, xa + 10, 20, 7, 13);
  gpu->copy2d(gpu, dc, 16, aoff(da, 10), 20, 7, 13);
  cmp_act("copy2d", hc, dc, 7 * 16, 0.0, 0.0);
  /* conversions: bit-identical to the CPU */
  grpo_dtype nt[2] = {GRPO_BF16, GRPO_F16};
  for (int t = 0; t < 2; t++) {
    uint16_t *hn = malloc(n * 2), *dn = dalloc(n * 2);
    cpu->convert(cpu, hn, nt[t], x, GRPO_F32, n);
    gpu->convert(gpu, dn, nt[t], d, GRPO_F32, n);
    uint16_t *gn = dget(dn, n * 2);
    CHECK_MSG(memcmp(gn, hn, n * 2) == 0, "f32 -> %s", grpo_dtype_name(nt[t]));
    float *hf = malloc(n * 4), *df = dalloc(n * 4);
    cpu->convert(cpu, hf, GRPO_F32, hn, nt[t], n);
    gpu->convert(gpu, df, GRPO_F32, dn, nt[t], n);
    float *gf = dget(df, n * 4);
    CHECK_MSG(memcmp(gf, hf, n * 4) == 0, "%s -> f32", grpo_dtype_name(nt[t]));
    free(hn), free(gn), free(hf), free(gf);
    dfree(dn), dfree(df);
  }
  /* zero-byte operations are no-ops */
  void *z = (void *)1;
  CHECK(gpu->alloc(gpu, 0, &z, &err) == GRPO_OK && z == NULL);
  CHECK(gpu->copy_h2d(gpu, d, x, 0, &err) == GRPO_OK);
  gsync();
  free(x), free(xa), free(hc);
  dfree(d), dfree(d2), dfree(da), dfree(dc);
}

/* ---- matmul ------------------------------------------------------------------------------ */

/* C = alpha op(A) op(B) + beta C with padded rows; every operand starts `off`
 * elements into its buffer (bf16: off = 1 gives 2-byte aligned pointers). */
static void sgemm_case(int ta, int tb, int m, int n, int k, int off, float alpha, float beta) {
  int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
  size_t na = (size_t)(ta ? k : m) * lda + off, nb = (size_t)(tb ? n : k) * ldb + off;
  size_t nc = (size_t)m * ldc + off;
  float *A = arand(na, -1, 1), *B = arand(nb, -1, 1), *C = arand(nc, -1, 1);
  void *dA = aput(A, na), *dB = aput(B, nb), *dC = aput(C, nc);
  cpu->sgemm(cpu, ta, tb, m, n, k, alpha, A + off, lda, B + off, ldb, beta, C + off, ldc);
  gpu->sgemm(gpu, ta, tb, m, n, k, alpha, aoff(dA, off), lda, aoff(dB, off), ldb, beta,
             aoff(dC, off), ldc);
  char what[96];
  snprintf(what, sizeof what, "sgemm ta=%d tb=%d %dx%dx%d off %d", ta, tb, m, n, k, off);
  cmp_act(what, C, dC, nc, TOL, B_OP);
  free(A), free(B), free(C);
  dfree(dA), dfree(dB), dfree(dC);
}

TEST(sgemm_all_transposes) {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      sgemm_case(ta, tb, 37, 29, 53, 0, 0.7f, 0.3f);
      sgemm_case(ta, tb, 37, 29, 53, 1, 0.7f, 0.3f); /* unaligned operands */
    }
  sgemm_case(0, 1, 64, 128, 96, 0, 1.0f, 0.0f); /* tensor-core friendly sizes */
  /* k = 0 scales C by beta; beta = 0 ignores a NaN C */
  float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
  void *dC = aput(C, 6), *dA = aput(A, 1), *dB = aput(B, 1);
  cpu->sgemm(cpu, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
  gpu->sgemm(gpu, 0, 0, 2, 3, 0, 1.0f, dA, 1, dB, 3, 0.5f, dC, 3);
  cmp_act("sgemm k=0", C, dC, 6, 0.0, 0.0);
  float Cn[4] = {NAN, NAN, NAN, NAN}, A2[4] = {1, 2, 3, 4}, B2[4] = {1, 0, 0, 1};
  void *dCn = aput(Cn, 4), *dA2 = aput(A2, 4), *dB2 = aput(B2, 4);
  cpu->sgemm(cpu, 0, 0, 2, 2, 2, 1.0f, A2, 2, B2, 2, 0.0f, Cn, 2);
  gpu->sgemm(gpu, 0, 0, 2, 2, 2, 1.0f, dA2, 2, dB2, 2, 0.0f, dCn, 2);
  cmp_act("sgemm beta=0 over NaN", Cn, dCn, 4, 0.0, 0.0);
  gsync();
  dfree(dC), dfree(dA), dfree(dB), dfree(dCn), dfree(dA2), dfree(dB2);
}

/* More distinct shapes than the bf16 plan cache has slots (256), twice: plans
 * are evicted and rebuilt and every result stays right. */
TEST(sgemm_many_shapes) {
  const int nshape = 300, MM = 37, NN = 23, KK = 151;
  const int64_t lda = KK, ldb = NN, per = (int64_t)MM * NN;
  size_t na = (size_t)MM * KK, nb = (size_t)KK * NN, nc = (size_t)nshape * per;
  float *A = arand(na, -1, 1), *B = arand(nb, -1, 1), *C = arand(nc, -1, 1);
  void *dA = aput(A, na), *dB = aput(B, nb), *dC = aput(C, nc);
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < nshape; i++) {
      int m = 1 + i % MM, n = 1 + (i * 7) % NN, k = 1 + i / 2; /* (m, n, k) distinct */
      cpu->sgemm(cpu, 0, 0, m, n, k, 1.0f, A, lda, B, ldb, 0.5f, C + i * per, n);
      gpu->sgemm(gpu, 0, 0, m, n, k, 1.0f, dA, lda, dB, ldb, 0.5f, aoff(dC, (size_t)i * per), n);
    }
    cmp_act(pass ? "sgemm 300 shapes, again" : "sgemm 300 shapes", C, dC, nc, TOL, B_OP);
    resync(C, dC, nc);
  }
  gsync();
  free(A), free(B), free(C);
  dfree(dA), dfree(dB), dfree(dC);
}

TEST(sgemm_batched_groups) {
  const int m = 11, n = 9, k = 16, batch = 7;
  int groups[3] = {1, 3, 7};
  for (int gi = 0; gi < 3; gi++)
    for (int t = 0; t < 2; t++) {
      int bg = groups[gi], ta = t, tb = 1 - t;
      int64_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
      int64_t sA = (ta ? k : m) * lda + 4, sB = (tb ? n : k) * ldb + 1, sC = m * ldc + 2;
      int nbB = (batch + bg - 1) / bg;
      size_t na = (size_t)sA * batch, nb = (size_t)sB * nbB, nc = (size_t)sC * batch;
      float *A = arand(na, -1, 1), *B = arand(nb, -1, 1), *C = arand(nc, -1, 1);
      void *dA = aput(A, na), *dB = aput(B, nb), *dC = aput(C, nc);
      cpu->sgemm_batched(cpu, ta, tb, m, n, k, 1.3f, A, lda, sA, B, ldb, sB, bg, 1.0f, C, ldc, sC, batch);
      gpu->sgemm_batched(gpu, ta, tb, m, n, k, 1.3f, dA, lda, sA, dB, ldb, sB, bg, 1.0f, dC, ldc, sC, batch);
      char what[64];
      snprintf(what, sizeof what, "sgemm_batched b_group=%d ta=%d", bg, ta);
      cmp_act(what, C, dC, nc, TOL, B_OP);
      free(A), free(B), free(C);
      dfree(dA), dfree(dB), dfree(dC);
    }
  gsync();
}

/* f32 C += alpha op(A) op(B) from act-type A, B (parameter gradients) */
TEST(gemm_wgrad_all_transposes) {
  const int m = 45, n = 38, k = 300;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
      size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
      float *A = arand(na, -1, 1), *B = arand(nb, -1, 1), *C = frand(nc, -1, 1);
      void *dA = aput(A, na), *dB = aput(B, nb);
      float *dC = dput(C, nc * 4);
      cpu->gemm_wgrad(cpu, ta, tb, m, n, k, 0.5f, A, lda, B, ldb, C, ldc);
      gpu->gemm_wgrad(gpu, ta, tb, m, n, k, 0.5f, dA, lda, dB, ldb, dC, ldc);
      char what[64];
      snprintf(what, sizeof what, "gemm_wgrad ta=%d tb=%d", ta, tb);
      cmp_f32(what, C, dC, nc, TOL, B_F32);
      /* a second accumulation into the same f32 C, one operand unaligned */
      cpu->gemm_wgrad(cpu, ta, tb, m, n, k - 1, -1.5f, A + 1, lda, B, ldb, C, ldc);
      gpu->gemm_wgrad(gpu, ta, tb, m, n, k - 1, -1.5f, aoff(dA, 1), lda, dB, ldb, dC, ldc);
      snprintf(what, sizeof what, "gemm_wgrad ta=%d tb=%d (second +=)", ta, tb);
      cmp_f32(what, C, dC, nc, TOL, B_F32);
      /* k = 0 leaves C as it is */
      gpu->gemm_wgrad(gpu, ta, tb, m, n, 0, 1.0f, dA, lda, dB, ldb, dC, ldc);
      cmp_f32("gemm_wgrad k=0", C, dC, nc, TOL, B_F32);
      free(A), free(B), free(C);
      dfree(dA), dfree(dB), dfree(dC);
    }
  gsync();
}

/* ---- RMSNorm ---------------------------------------------------------------------------------- */

static void rmsnorm_case(int rows, int heads, int dim, int64_t ldx) {
  size_t nx = (size_t)rows * ldx, nv = (size_t)rows * heads;
  float *x = arand(nx, -2, 2), *w = arand(dim, 0.5, 1.5), *dy = arand(nx, -1, 1);
  float *y = calloc(nx, 4), *rstd = calloc(nv, 4);
  float *dx = arand(nx, -1, 1), *dw = frand(dim, -1, 1);
  void *gx = aput(x, nx), *gw = aput(w, dim), *gdy = aput(dy, nx), *gy = aput(y, nx);
  void *gdx = aput(dx, nx);
  float *grs = dput(rstd, nv * 4), *gdw = dput(dw, dim * 4);
  char what[96];
  cpu->rmsnorm_fwd(cpu, y, ldx, rstd, x, ldx, w, rows, heads, dim, 1e-6f);
  gpu->rmsnorm_fwd(gpu, gy, ldx, grs, gx, ldx, gw, rows, heads, dim, 1e-6f);
  snprintf(what, sizeof what, "rmsnorm_fwd y (%d x %d x %d)", rows, heads, dim);
  cmp_act(what, y, gy, nx, TOL, B_OP);
  cmp_f32("rmsnorm_fwd rstd", rstd, grs, nv, TOL, B_F32);
  /* accumulate into dx, dw */
  cpu->rmsnorm_bwd(cpu, dx, ldx, 1, dw, dy, ldx, x, ldx, w, rstd, rows, heads, dim);
  gpu->rmsnorm_bwd(gpu, gdx, ldx, 1, gdw, gdy, ldx, gx, ldx, gw, grs, rows, heads, dim);
  cmp_act("rmsnorm_bwd dx (+=)", dx, gdx, nx, TOL, B_OP);
  cmp_f32("rmsnorm_bwd dw (+=)", dw, gdw, dim, TOL, B_F32);
  /* dx = , in place over dy */
  cpu->rmsnorm_bwd(cpu, dy, ldx, 0, dw, dy, ldx, x, ldx, w, rstd, rows, heads, dim);
  gpu->rmsnorm_bwd(gpu, gdy, ldx, 0, gdw, gdy, ldx, gx, ldx, gw, grs, rows, heads, dim);
  cmp_act("rmsnorm_bwd dx (= in place)", dy, gdy, nx, TOL, B_OP);
  cmp_f32("rmsnorm_bwd dw (second +=)", dw, gdw, dim, TOL, B_F32);
  /* y aliasing x */
  cpu->rmsnorm_fwd(cpu, x, ldx, rstd, x, ldx, w, rows, heads, dim, 1e-5f);
  gpu->rmsnorm_fwd(gpu, gx, ldx, grs, gx, ldx, gw, rows, heads, dim, 1e-5f);
  cmp_act("rmsnorm_fwd in place", x, gx, nx, TOL, B_OP);
  gsync();
  free(x), free(w), free(dy), free(y), free(rstd), free(dx), free(dw);
  dfree(gx), dfree(gw), dfree(gdy), dfree(gy), dfree(grs), dfree(gdx), dfree(gdw);
}

TEST(rmsnorm_fwd_bwd) {
  rmsnorm_case(45, 1, 96, 100);        /* hidden-state norm, padded rows */
  rmsnorm_case(45, 4, 32, 4 * 32 + 8); /* q_norm-style: per head */
  rmsnorm_case(2000, 1, 64, 64);       /* many column-sum chunks */
  rmsnorm_case(3, 2, 300, 700);        /* dim > warp width x 8 */
}

/* ---- RoPE ------------------------------------------------------------------------------------------ */

TEST(rope_fwd_bwd) {
  const int rows = 50, heads = 3, hd = 64;
  const int64_t ld = heads * hd + 4;
  float inv[32];
  grpo_error err = {0};
  CHECK(grpo_rope_inv_freq(inv, hd, 1e6, NULL, &err) == GRPO_OK);
  int32_t *pos = irand(rows, 0, 8000);
  pos[0] = 0, pos[1] = 32767;
  size_t nx = (size_t)rows * ld;
  float *x = arand(nx, -1, 1);
  void *gx = aput(x, nx);
  float *ginv = dput(inv, sizeof inv);
  int32_t *gpos = dput(pos, rows * 4);
  cpu->rope_fwd(cpu, x, ld, rows, heads, hd, pos, inv);
  gpu->rope_fwd(gpu, gx, ld, rows, heads, hd, gpos, ginv);
  cmp_act("rope_fwd", x, gx, nx, TOL, B_CHAIN);
  resync(x, gx, nx);
  cpu->rope_bwd(cpu, x, ld, rows, heads, hd, pos, inv);
  gpu->rope_bwd(gpu, gx, ld, rows, heads, hd, gpos, ginv);
  cmp_act("rope_bwd", x, gx, nx, TOL, B_CHAIN);
  gsync();
  free(pos), free(x);
  dfree(gx), dfree(ginv), dfree(gpos);
}

/* ---- SwiGLU ---------------------------------------------------------------------------------------- */

TEST(swiglu_fwd_bwd) {
  const int rows = 33, cols = 70;
  const int64_t ldg = 2 * cols, ldo = cols + 3;
  /* gate and up inside one fused [rows, 2*cols] buffer */
  size_t ngu = (size_t)rows * ldg, no = (size_t)rows * ldo;
  float *gu = arand(ngu, -6, 6), *out = calloc(no, 4), *dout = arand(no, -1, 1);
  void *ggu = aput(gu, ngu), *gout = aput(out, no), *gdout = aput(dout, no);
  cpu->swiglu_fwd(cpu, out, ldo, gu, ldg, gu + cols, ldg, rows, cols);
  gpu->swiglu_fwd(gpu, gout, ldo, ggu, ldg, aoff(ggu, cols), ldg, rows, cols);
  cmp_act("swiglu_fwd", out, gout, no, TOL, B_OP);
  /* in place: dgate, dup overwrite gate, up */
  cpu->swiglu_bwd(cpu, gu, ldg, gu + cols, ldg, dout, ldo, gu, ldg, gu + cols, ldg, rows, cols);
  gpu->swiglu_bwd(gpu, ggu, ldg, aoff(ggu, cols), ldg, gdout, ldo, ggu, ldg, aoff(ggu, cols), ldg,
                  rows, cols);
  cmp_act("swiglu_bwd (in place)", gu, ggu, ngu, TOL, B_OP);
  gsync();
  free(gu), free(out), free(dout);
  dfree(ggu), dfree(gout), dfree(gdout);
}

/* ---- embedding ------------------------------------------------------------------------------------- */

TEST(embedding_fwd_bwd) {
  const int vocab = 50, dim = 40, rows = 300;
  const int64_t ldo = dim + 4;
  size_t nt = (size_t)vocab * dim, no = (size_t)rows * ldo;
  float *table = arand(nt, -1, 1), *out = calloc(no, 4);
  int32_t *ids = irand(rows, 0, vocab);
  ids[5] = ids[6] = ids[200] = 7; /* repeats for sure */
  void *gt = aput(table, nt), *go = aput(out, no);
  float *gdt = dput(table, nt * 4); /* the gradient table is f32 in both passes */
  int32_t *gids = dput(ids, rows * 4);
  cpu->embed_fwd(cpu, out, ldo, table, ids, rows, dim);
  gpu->embed_fwd(gpu, go, ldo, gt, gids, rows, dim);
  cmp_act("embed_fwd", out, go, no, 0.0, 0.0);
  float *dout = arand(no, -1, 1);
  void *gdout = aput(dout, no);
  cpu->embed_bwd(cpu, table, dout, ldo, ids, rows, dim);
  gpu->embed_bwd(gpu, gdt, gdout, ldo, gids, rows, dim);
  cmp_dev("embed_bwd (same order: bit-equal)", table, gdt, nt, 0.0);
  cpu->embed_bwd(cpu, table, dout, ldo, ids, 1, dim);
  gpu->embed_bwd(gpu, gdt, gdout, ldo, gids, 1, dim);
  cmp_dev("embed_bwd one row", table, gdt, nt, 0.0);
  gsync();
  free(table), free(out), free(ids), free(dout);
  dfree(gt), dfree(go), dfree(gdt), dfree(gids), dfree(gdout);
}

/* ---- bias, elementwise, sumsq, AdamW --------------------------------------------------------------- */

TEST(bias_and_elementwise) {
  const int rows = 301, cols = 77;
  const int64_t ld = cols + 3;
  size_t ny = (size_t)rows * ld;
  float *y = arand(ny, -1, 1), *b = arand(cols, -1, 1), *db = frand(cols, -1, 1);
  void *gy = aput(y, ny), *gb = aput(b, cols);
  float *gdb = dput(db, cols * 4);
  cpu->bias_add(cpu, y, ld, b, rows, cols);
  gpu->bias_add(gpu, gy, ld, gb, rows, cols);
  round_act(y, ny); /* one f32 add, then the store's rounding */
  cmp_act("bias_add", y, gy, ny, 0.0, 0.0);
  cpu->bias_grad(cpu, db, y, ld, rows, cols);
  gpu->bias_grad(gpu, gdb, gy, ld, rows, cols);
  cmp_f32("bias_grad", db, gdb, cols, TOL, B_F32);
  size_t n = 100003;
  float *a = arand(n, -1, 1), *c = arand(n, -1, 1), *r = calloc(n, 4);
  void *ga = aput(a, n), *gc = aput(c, n), *gr = aput(r, n);
  cpu->add(cpu, r, a, c, n);
  gpu->add(gpu, gr, ga, gc, n);
  round_act(r, n);
  cmp_act("add", r, gr, n, 0.0, 0.0);
  cpu->add(cpu, a, a, c, n); /* y aliases a */
  gpu->add(gpu, ga, ga, gc, n);
  round_act(a, n);
  cmp_act("add in place", a, ga, n, 0.0, 0.0);
  cpu->axpy(cpu, r, -0.37f, c, n);
  gpu->axpy(gpu, gr, -0.37f, gc, n);
  /* FMA on the device: where y + alpha x cancels, the CPU's rounding of
   * alpha x (<= 1.5e-8) is judged against the floor (1e-2 x max ~ 0.016): ~1e-6 */
  cmp_act("axpy", r, gr, n, 4e-6, B_FMA);
  /* scale and sumsq work on f32 buffers (gradients) in both passes */
  float *gf = dput(r, n * 4);
  cpu->scale(cpu, r, 0.125f, n);
  gpu->scale(gpu, gf, 0.125f, n);
  cmp_dev("scale", r, gf, n, 0.0);
  double sc = cpu->sumsq(cpu, r, n), sg = gpu->sumsq(gpu, gf, n);
  CHECK_NEAR(sg, sc, 1e-9 * sc);
  CHECK(gpu->sumsq(gpu, gf, 0) == 0.0);
  CHECK_NEAR(gpu->sumsq(gpu, gf, 1), (double)r[0] * r[0], 1e-12);
  gsync();
  free(y), free(b), free(db), free(a), free(c), free(r);
  dfree(gy), dfree(gb), dfree(gdb), dfree(ga), dfree(gc), dfree(gr), dfree(gf);
}

TEST(adamw_steps) {
  size_t n = 5000;
  float *p = frand(n, -1, 1), *g = frand(n, -1, 1), *m = frand(n, -0.1, 0.1), *v = frand(n, 0, 0.01);
  float *gp = dput(p, n * 4), *gg = dput(g, n * 4), *gm = dput(m, n * 4), *gv = dput(v, n * 4);
  grpo_adamw_hparams hp = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1,
                           .grad_scale = 0.5f};
  for (long t = 3; t <= 4; t++) {
    grpo_adamw_prepare(&hp, t);
    cpu->adamw(cpu, p, g, m, v, n, &hp);
    gpu->adamw(gpu, gp, gg, gm, gv, n, &hp);
  }
  /* nvcc contracts m + (1-b1)(g - m) and the p, v updates into FMAs; where m
   * cancels to ~0 the CPU's product rounding (<= 3.7e-9 per step) is judged
   * against the floor (1e-2 x max|m| ~ 1.7e-3): up to ~4e-6 */
  cmp_dev("adamw p", p, gp, n, 1e-5);
  cmp_dev("adamw m", m, gm, n, 1e-5);
  cmp_dev("adamw v", v, gv, n, 1e-5);
  gsync();
  free(p), free(g), free(m), free(v);
  dfree(gp), dfree(gg), dfree(gm), dfree(gv);
}


/* ---- attention -------------------------------------------------------------------------------------- */

typedef struct att_case {
  int T, nh, nkv, hd;
  int32_t *tin, *tout;
  int n_seg, max_seg; /* plain causal packs: their segments (grpo_attn_shape) */
  int32_t *seg_start;
} att_case;

static att_case causal_case(const int *lens, int nseq, int nh, int nkv, int hd) {
  att_case c;
  memset(&c, 0, sizeof c);
  c.nh = nh, c.nkv = nkv, c.hd = hd;
  for (int s = 0; s < nseq; s++) c.T += lens[s];
  c.tin = malloc(sizeof(int32_t) * c.T);
  c.tout = malloc(sizeof(int32_t) * c.T);
  c.seg_start = malloc(sizeof(int32_t) * (nseq + 1));
  c.n_seg = nseq;
  int t = 0;
  for (int s = 0; s < nseq; s++) {
    int end = t + lens[s] - 1;
    c.seg_start[s] = t;
    if (lens[s] > c.max_seg) c.max_seg = lens[s];
    for (int i = 0; i < lens[s]; i++, t++) c.tin[t] = t, c.tout[t] = end;
  }
  c.seg_start[nseq] = c.T;
  return c;
}

/* prefix (50) shared by threads A (40) and B (60), then an unrelated
 * sequence (30); tokens stored in a scrambled order; token 3 (storage)
 * sees nothing (tout < tin). */
static att_case trie_case(int nh, int nkv, int hd) {
  att_case c;
  memset(&c, 0, sizeof c);
  c.T = 180, c.nh = nh, c.nkv = nkv, c.hd = hd;
  int32_t tin[180], tout[180];
  for (int i = 0; i < 180; i++) tin[i] = i;
  for (int i = 0; i < 50; i++) tout[i] = 149;
  for (int i = 50; i < 90; i++) tout[i] = 89;
  for (int i = 90; i < 150; i++) tout[i] = 149;
  for (int i = 150; i < 180; i++) tout[i] = 179;
  c.tin = malloc(sizeof(int32_t) * 180);
  c.tout = malloc(sizeof(int32_t) * 180);
  for (int i = 0; i < 180; i++) {
    int src = (i * 7) % 180;
    c.tin[i] = tin[src];
    c.tout[i] = tout[src];
  }
  c.tout[3] = c.tin[3] - 1;
  return c;
}

static void free_case(att_case *c) { free(c->tin), free(c->tout), free(c->seg_start); }

static size_t al256(size_t x) { return (x + 255) & ~(size_t)255; }

/* Workspace for the backward with `rows` (head x query) score rows per tile:
 * f32: D + S and dP (f32); bf16: D + f32 dK, dV sums + S, dP (f32) + P, dS (bf16). */
static size_t ws_for_rows(const att_case *c, size_t rows) {
  size_t a = al256((size_t)c->nh * c->T * 4), s4 = al256(rows * c->T * 4);
  if (!bf) return a + 2 * s4 + 1024;
  size_t acc = al256((size_t)c->T * c->nkv * c->hd * 4), s2 = al256(rows * c->T * 2);
  return a + 2 * acc + 2 * s4 + 2 * s2 + 2048;
}

/* columns [c0, c1) of two rows x ld matrices */
static void cmp_cols(const char *what, const float *c, const float *g, int rows, int64_t ld,
                     int64_t c0, int64_t c1, double tol) {
  size_t w = (size_t)(c1 - c0), n = (size_t)rows * w;
  float *cc = malloc(n * 4), *gg = malloc(n * 4);
  for (int r = 0; r < rows; r++) {
    memcpy(cc + r * w, c + r * ld + c0, w * 4);
    memcpy(gg + r * w, g + r * ld + c0, w * 4);
  }
  cmpf(what, cc, gg, n, tol, 1.0);
  free(cc), free(gg);
}

static void check_attention(const att_case *c, const char *name) {
  const int T = c->T, nh = c->nh, nkv = c->nkv, hd = c->hd;
  const int64_t W = (int64_t)(nh + 2 * nkv) * hd, ld = W + 7, ldo = (int64_t)nh * hd + 5;
  size_t nqkv = (size_t)T * ld, no = (size_t)T * ldo, nl = (size_t)nh * T;
  /* row pads must survive on both sides. Both passes: bf16-representable
   * values at the data's scale, since the metric's floor is a fraction of the
   * tensor's largest entry (a pad of 12345 would let f32 errors of ~1e-2 pass) */
  const float pad_o = 0.75f, pad_d = -0.875f;
  float *qkv = arand(nqkv, -1.5, 1.5), *dout = arand(no, -1, 1);
  float *out = malloc(no * 4), *lse = malloc(nl * 4), *dqkv = malloc(nqkv * 4);
  for (size_t i = 0; i < no; i++) out[i] = pad_o;
  for (size_t i = 0; i < nqkv; i++) dqkv[i] = pad_d; /* dq, dk, dv are written (=) */
  grpo_attn_shape s;
  memset(&s, 0, sizeof s);
  s.T = T, s.nh = nh, s.nkv = nkv, s.hd = hd, s.scale = 1.0f / sqrtf((float)hd);
  s.q = qkv, s.ldq = ld, s.k = qkv + (size_t)nh * hd, s.ldk = ld;
  s.v = qkv + (size_t)(nh + nkv) * hd, s.ldv = ld, s.tin = c->tin, s.tout = c->tout;
  size_t cws = cpu->attn_workspace(cpu, T, nh, nkv, hd);
  void *cw = NULL;
  grpo_error err = {0};
  CHECK(cpu->alloc(cpu, cws, &cw, &err) == GRPO_OK);
  cpu->attn_fwd(cpu, &s, out, ldo, lse, cw, cws);
  cpu->attn_bwd(cpu, &s, out, ldo, lse, dout, ldo, dqkv, dqkv + (size_t)nh * hd,
                dqkv + (size_t)(nh + nkv) * hd, cw, cws);

  void *gqkv = aput(qkv, nqkv), *gdout = aput(dout, no);
  int32_t *gtin = dput(c->tin, T * 4), *gtout = dput(c->tout, T * 4);
  int32_t *gseg = c->n_seg ? dput(c->seg_start, (size_t)(c->n_seg + 1) * 4) : NULL;
  void *gout = aalloc(no), *gdqkv = aalloc(nqkv), *gdq2 = aalloc(nqkv);
  float *glse = dalloc(nl * 4);
  grpo_attn_shape g = s;
  g.q = gqkv, g.k = aoff(gqkv, (size_t)nh * hd), g.v = aoff(gqkv, (size_t)(nh + nkv) * hd);
  g.tin = gtin, g.tout = gtout;
  /* bf16 causal packs may take the cuDNN path (when built and it accepts) */
  g.n_seg = c->n_seg, g.max_seg = c->max_seg, g.seg_start = gseg;
  size_t full = gpu->attn_workspace(gpu, T, nh, nkv, hd);
  size_t sizes[4] = {full, ws_for_rows(c, (size_t)4 * T), ws_for_rows(c, (size_t)2 * T),
                     ws_for_rows(c, 50)};
  const char *label[4] = {"full", "4T rows", "2T rows", "50 rows"};
  float *init_o = malloc(no * 4), *init_d = malloc(nqkv * 4);
  for (size_t i = 0; i < no; i++) init_o[i] = pad_o;
  for (size_t i = 0; i < nqkv; i++) init_d[i] = pad_d;
  for (int w = 0; w < 4; w++) {
    void *gws = dalloc(sizes[w]);
    aset(gout, init_o, no);
    aset(gdqkv, init_d, nqkv);
    gpu->attn_fwd(gpu, &g, gout, ldo, glse, gws, sizes[w]);
    gpu->attn_bwd(gpu, &g, gout, ldo, glse, gdout, ldo, gdqkv, aoff(gdqkv, (size_t)nh * hd),
                  aoff(gdqkv, (size_t)(nh + nkv) * hd), gws, sizes[w]);
    char what[160];
    snprintf(what, sizeof what, "attn %s [%s] out", name, label[w]);
    cmp_act(what, out, gout, no, TOL, B_CHAIN);
    snprintf(what, sizeof what, "attn %s [%s] lse", name, label[w]);
    cmp_f32(what, lse, glse, nl, TOL, B_F32);
    if (!bf) {
      snprintf(what, sizeof what, "attn %s [%s] dq/dk/dv", name, label[w]);
      cmp_act(what, dqkv, gdqkv, nqkv, TOL_GRAD, B_CHAIN);
    } else { /* each gradient against its own scale; the pads exactly */
      float *ga = aget(gdqkv, nqkv);
      const int64_t cq = (int64_t)nh * hd, ck = cq + (int64_t)nkv * hd;
      snprintf(what, sizeof what, "attn %s [%s] dq", name, label[w]);
      cmp_cols(what, dqkv, ga, T, ld, 0, cq, B_CHAIN);
      snprintf(what, sizeof what, "attn %s [%s] dk", name, label[w]);
      cmp_cols(what, dqkv, ga, T, ld, cq, ck, B_CHAIN);
      snprintf(what, sizeof what, "attn %s [%s] dv", name, label[w]);
      cmp_cols(what, dqkv, ga, T, ld, ck, W, B_CHAIN);
      snprintf(what, sizeof what, "attn %s [%s] dqkv pads", name, label[w]);
      cmp_cols(what, dqkv, ga, T, ld, W, ld, 0.0);
      free(ga);
    }
    if (w == 0) { /* deterministic: a second backward gives the same bits */
      aset(gdq2, init_d, nqkv);
      gpu->attn_bwd(gpu, &g, gout, ldo, glse, gdout, ldo, gdq2, aoff(gdq2, (size_t)nh * hd),
                    aoff(gdq2, (size_t)(nh + nkv) * hd), gws, sizes[w]);
      void *b1 = dget(gdqkv, nqkv * AS), *b2 = dget(gdq2, nqkv * AS);
      CHECK_MSG(memcmp(b1, b2, nqkv * AS) == 0, "[%s] attn %s: backward not deterministic", mode,
                name);
      free(b1), free(b2);
    }
    gsync();
    dfree(gws);
  }
  cpu->free(cpu, cw);
  free(qkv), free(dout), free(out), free(lse), free(dqkv), free(init_o), free(init_d);
  dfree(gqkv), dfree(gdout), dfree(gtin), dfree(gtout), dfree(gseg), dfree(gout), dfree(glse);
  dfree(gdqkv), dfree(gdq2);
}

TEST(attention_causal_packed) {
  int lens[3] = {70, 45, 90};
  att_case c = causal_case(lens, 3, 6, 2, 32);
  check_attention(&c, "causal 70+45+90 GQA 6/2");
  free_case(&c);
  int lens2[4] = {1, 63, 1, 64};
  c = causal_case(lens2, 4, 2, 1, 8);
  check_attention(&c, "causal 1+63+1+64 MQA");
  free_case(&c);
  int lens1[1] = {33};
  c = causal_case(lens1, 1, 3, 3, 64);
  check_attention(&c, "single sequence MHA hd 64");
  free_case(&c);
}

TEST(attention_trie_packed) {
  att_case c = trie_case(4, 2, 16);
  check_attention(&c, "trie scrambled GQA 4/2");
  free_case(&c);
  c = trie_case(8, 2, 128);
  check_attention(&c, "trie scrambled GQA 8/2 hd 128");
  free_case(&c);
}

/* ---- KV cache and decode ------------------------------------------------------------------------------- */

TEST(kv_write_and_decode) {
  const int nslots = 5, tmax = 40, nh = 4, nkv = 2, hd = 16, width = nkv * hd;
  const int nrows = nslots * tmax;
  const int64_t lds = width + 3;
  size_t ncache = (size_t)nslots * tmax * width, nsrc = (size_t)nrows * lds;
  float *kc = calloc(ncache, 4), *vc = calloc(ncache, 4);
  float *ksrc = arand(nsrc, -1, 1), *vsrc = arand(nsrc, -1, 1);
  int32_t *slots = malloc(nrows * 4), *pos = malloc(nrows * 4);
  for (int i = 0; i < nrows; i++) slots[i] = (i * 3) % nslots, pos[i] = i / nslots; /* every cell once */
  void *gkc = aput(kc, ncache), *gvc = aput(vc, ncache);
  void *gks = aput(ksrc, nsrc), *gvs = aput(vsrc, nsrc);
  int32_t *gslots = dput(slots, nrows * 4), *gpos = dput(pos, nrows * 4);
  cpu->kv_write(cpu, kc, ksrc, lds, slots, pos, nrows, width, tmax);
  cpu->kv_write(cpu, vc, vsrc, lds, slots, pos, nrows, width, tmax);
  gpu->kv_write(gpu, gkc, gks, lds, gslots, gpos, nrows, width, tmax);
  gpu->kv_write(gpu, gvc, gvs, lds, gslots, gpos, nrows, width, tmax);
  cmp_act("kv_write k", kc, gkc, ncache, 0.0, 0.0);
  cmp_act("kv_write v", vc, gvc, ncache, 0.0, 0.0);
  /* decode: 3 queries on slots {4, 0, 2} with lengths {40, 0, 17}; then all 5 slots, slots NULL */
  for (int variant = 0; variant < 2; variant++) {
    int n = variant ? nslots : 3;
    int32_t qs[3] = {4, 0, 2}, lens3[3] = {40, 0, 17}, lens5[5] = {1, 40, 7, 39, 20};
    int32_t *lens = variant ? lens5 : lens3;
    size_t nq = (size_t)n * nh * hd;
    float *q = arand(nq, -1, 1), *out = calloc(nq, 4);
    size_t wsb = cpu->attn_decode_workspace(cpu, n, nh, tmax);
    float *ws = malloc(wsb);
    cpu->attn_decode(cpu, out, q, kc, vc, variant ? NULL : qs, lens, n, nh, nkv, hd, tmax, 0.25f, ws, wsb);
    size_t gwsb = gpu->attn_decode_workspace(gpu, n, nh, tmax);
    void *gq = aput(q, nq), *gout = aalloc(nq), *gws = dalloc(gwsb);
    int32_t *gqs = dput(qs, sizeof qs), *glens = dput(lens, (size_t)n * 4);
    gpu->attn_decode(gpu, gout, gq, gkc, gvc, variant ? NULL : gqs, glens, n, nh, nkv, hd, tmax, 0.25f,
                     gws, gwsb);
    cmp_act(variant ? "attn_decode (slots NULL)" : "attn_decode", out, gout, nq, TOL, B_OP);
    gsync();
    free(q), free(out), free(ws);
    dfree(gq), dfree(gout), dfree(gws), dfree(gqs), dfree(glens);
  }
  free(kc), free(vc), free(ksrc), free(vsrc), free(slots), free(pos);
  dfree(gkc), dfree(gvc), dfree(gks), dfree(gvs), dfree(gslots), dfree(gpos);
}

/* ---- fused classifier ------------------------------------------------------------------------------------- */

static void classifier_case(int n, int with_rows, int row_chunk, int vocab_chunk, float temp,
                            int with_entropy) {
  const int H = 48, V = 1000, hrows = with_rows ? 23 : n;
  const int64_t ldh = H + 4;
  size_t nh_ = (size_t)hrows * ldh, nw = (size_t)V * H;
  float *h = arand(nh_, -1, 1), *w = arand(nw, -0.5, 0.5);
  int32_t *rows = malloc(n * 4), *tg = irand(n, 0, V);
  for (int k = 0; k < n; k++) rows[k] = (k * 5) % hrows; /* repeats when n > hrows */
  tg[0] = 0, tg[n - 1] = V - 1;
  grpo_classifier_shape s = {n, H, V, h, ldh, with_rows ? rows : NULL, w, tg, temp, row_chunk, vocab_chunk};
  float *lp = malloc(n * 4), *ent = malloc(n * 4), *lse = malloc(n * 4);
  size_t cws = cpu->classifier_workspace(cpu, &s);
  void *cw = malloc(cws);
  cpu->classifier_fwd(cpu, &s, lp, with_entropy ? ent : NULL, lse, cw, cws);
  float *dlp = frand(n, -1, 1), *dent = frand(n, -1, 1);
  /* small initial values: the metric's floor follows the largest entry, and
   * the bf16 pass (floor = 1 x max) must still see errors in the added gradient */
  float *dh = arand(nh_, -0.05, 0.05), *dw = frand(nw, -0.05, 0.05);
  void *gh = aput(h, nh_), *gw = aput(w, nw), *gdh = aput(dh, nh_);
  float *gdw = dput(dw, nw * 4);
  int32_t *grows = dput(rows, n * 4), *gtg = dput(tg, n * 4);
  float *glp = dalloc(n * 4), *gent = dalloc(n * 4), *glse = dalloc(n * 4);
  float *gdlp = dput(dlp, n * 4), *gdent = dput(dent, n * 4);
  cpu->classifier_bwd(cpu, &s, lse, with_entropy ? ent : NULL, dlp, with_entropy ? dent : NULL, dh, ldh,
                      dw, cw, cws);
  grpo_classifier_shape g = s;
  g.h = gh, g.w = gw, g.rows = with_rows ? grows : NULL, g.targets = gtg;
  size_t gwsb = gpu->classifier_workspace(gpu, &g);
  void *gws = dalloc(gwsb);
  gpu->classifier_fwd(gpu, &g, glp, with_entropy ? gent : NULL, glse, gws, gwsb);
  gpu->classifier_bwd(gpu, &g, glse, with_entropy ? gent : NULL, gdlp, with_entropy ? gdent : NULL, gdh,
                      ldh, gdw, gws, gwsb);
  char what[128];
  snprintf(what, sizeof what, "classifier n=%d rows=%d chunks %d/%d T=%.2f", n, with_rows, row_chunk,
           vocab_chunk, temp);
  fprintf(stderr, "  [%s] %s\n", mode, what);
  cmp_f32("classifier logprob", lp, glp, n, TOL, B_F32);
  cmp_f32("classifier lse", lse, glse, n, TOL, B_F32);
  if (with_entropy) cmp_f32("classifier entropy", ent, gent, n, TOL, B_F32);
  cmp_act("classifier dh (+=)", dh, gdh, nh_, TOL_GRAD, B_CHAIN);
  cmp_f32("classifier dw (+=)", dw, gdw, nw, TOL_GRAD, B_CHAIN);
  gsync();
  free(h), free(w), free(rows), free(tg), free(lp), free(ent), free(lse), free(cw);
  free(dlp), free(dent), free(dh), free(dw);
  dfree(gh), dfree(gw), dfree(gdh), dfree(gdw), dfree(grows), dfree(gtg), dfree(glp), dfree(gent);
  dfree(glse), dfree(gdlp), dfree(gdent), dfree(gws);
}

TEST(classifier_fwd_bwd) {
  classifier_case(37, 1, 16, 256, 0.7f, 1); /* row map with repeats, tails in both chunkings */
  classifier_case(37, 1, 0, 0, 1.0f, 0);    /* backend default chunks, no entropy */
  classifier_case(23, 0, 8, 300, 1.3f, 1);  /* no row map */
}

/* ---- errors ------------------------------------------------------------------------------------------------- */

TEST(deferred_errors_and_options) {
  grpo_error err = {0};
  grpo_backend *b = NULL;
  grpo_cuda_options o = {0, GRPO_F16, 0};
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_EUNSUPPORTED && b == NULL);
  o.act_dtype = GRPO_BF16;
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_OK && b != NULL);
  if (b) {
    CHECK(b->act_dtype == GRPO_BF16);
    grpo_backend_cuda_destroy(b);
    b = NULL;
  }
  o.act_dtype = GRPO_F32;
  o.device = 1 << 20;
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_EINVAL && b == NULL);
  o.device = 0;
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_OK && b != NULL);
  if (!b) return;
  CHECK(b->act_dtype == GRPO_F32);
  /* an id < 0 is skipped in the kernel and reported by sync, stickily */
  int32_t ids[2] = {1, -1};
  float table[8] = {0}, out[8];
  void *dt = NULL, *dids = NULL, *dout = NULL;
  CHECK(b->alloc(b, sizeof table, &dt, &err) == GRPO_OK);
  CHECK(b->alloc(b, sizeof ids, &dids, &err) == GRPO_OK);
  CHECK(b->alloc(b, sizeof out, &dout, &err) == GRPO_OK);
  CHECK(b->copy_h2d(b, dt, table, sizeof table, &err) == GRPO_OK);
  CHECK(b->copy_h2d(b, dids, ids, sizeof ids, &err) == GRPO_OK);
  b->embed_fwd(b, dout, 4, dt, dids, 2, 4);
  CHECK(b->sync(b, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "embedding id") != NULL);
  CHECK(b->sync(b, &err) == GRPO_EINVAL);
  CHECK(b->copy_d2h(b, out, dout, sizeof out, &err) == GRPO_EINVAL);
  b->free(b, dt), b->free(b, dids), b->free(b, dout);
  grpo_backend_cuda_destroy(b);
}

int main(void) {
  if (grpo_backend_cuda_device_count() == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
  cpu = grpo_backend_cpu();
  const grpo_dtype acts[2] = {GRPO_F32, GRPO_BF16};
  for (int a = 0; a < 2; a++) {
    grpo_error err = {0};
    grpo_cuda_options o = {0, acts[a], 0};
    bf = acts[a] == GRPO_BF16;
    AS = bf ? 2 : 4;
    mode = grpo_dtype_name(acts[a]);
    if (grpo_backend_cuda_create(&o, &gpu, &err) != GRPO_OK) {
      fprintf(stderr, "cuda backend (%s activations): %s\n", mode, err.msg);
      return 1;
    }
    fprintf(stderr, "== %s activations ==\n", mode);
    RUN(memory_copies_convert);
    RUN(sgemm_all_transposes);
    RUN(sgemm_many_shapes);
    RUN(sgemm_batched_groups);
    RUN(gemm_wgrad_all_transposes);
    RUN(rmsnorm_fwd_bwd);
    RUN(rope_fwd_bwd);
    RUN(swiglu_fwd_bwd);
    RUN(embedding_fwd_bwd);
    RUN(bias_and_elementwise);
    RUN(adamw_steps);
    RUN(attention_causal_packed);
    RUN(attention_trie_packed);
    RUN(kv_write_and_decode);
    RUN(classifier_fwd_bwd);
    grpo_backend_cuda_destroy(gpu);
    gpu = NULL;
  }
  RUN(deferred_errors_and_options);
  return test_summary();
}
