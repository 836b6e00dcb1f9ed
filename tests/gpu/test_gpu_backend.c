/* Every op of the CUDA backend (f32 activations) against the CPU reference
 * backend on random inputs. Skips (exit 77) without a CUDA device.
 *
 * Tolerances: an element passes when |gpu - cpu| <= tol * (|cpu| + floor),
 * floor = 1e-2 * max|cpu| of the tensor (so entries that cancel to ~0 are
 * judged against the tensor's scale). tol is 1e-4 for products and
 * reductions (summation order differs: cuBLAS vs OpenBLAS, tree vs sequential
 * sums, FMA contraction on the device), 2e-4 for attention and classifier
 * gradients; 0 (bit equality) where both sides do the same f32 operations in
 * the same order: copies, dtype conversions, embedding forward and backward
 * (the GPU sums repeated ids in ascending row order, like the CPU), bias_add,
 * scale, add, kv_write. */
#include <stdint.h>

#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "core/dtype.h"
#include "test.h"

static grpo_backend *cpu, *gpu;

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

static void *dalloc(size_t bytes) {
  void *p = NULL;
  grpo_error err = {0};
  int rc = gpu->alloc(gpu, bytes, &p, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  return p;
}
static void *dput(const void *h, size_t bytes) {
  void *p = dalloc(bytes);
  grpo_error err = {0};
  int rc = gpu->copy_h2d(gpu, p, h, bytes, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
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

/* gpu (host copy) against cpu; see the header comment for the metric. */
static int cmp(const char *what, const float *c, const float *g, size_t n, double tol) {
  double mx = 0.0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(c[i]) && fabs(c[i]) > mx) mx = fabs(c[i]);
  double floor_ = 1e-2 * mx + 1e-30;
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
    fprintf(stderr, "  %s: %d of %zu mismatch; worst at %zu: gpu %.9g cpu %.9g (rel %.3g > %.3g)\n",
            what, bad, n, wi, (double)g[wi], (double)c[wi], worst, tol);
    test_checks_failed_++;
    return 0;
  }
  return 1;
}

/* downloads n floats from the device and compares */
static int cmp_dev(const char *what, const float *c, const void *gdev, size_t n, double tol) {
  float *g = dget(gdev, n * sizeof(float));
  int ok = cmp(what, c, g, n, tol);
  free(g);
  return ok;
}

#define TOL 1e-4
#define TOL_GRAD 2e-4

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
  /* copy2d: 7 rows of 13 from stride 20 into stride 16 */
  float *hc = calloc(7 * 16, sizeof(float)), *dc = dput(hc, 7 * 16 * sizeof(float));
  cpu->copy2d(cpu, hc, 16, x + 10, 20, 7, 13);
  gpu->copy2d(gpu, dc, 16, d + 10, 20, 7, 13);
  cmp_dev("copy2d", hc, dc, 7 * 16, 0.0);
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
  free(x), free(hc);
  dfree(d), dfree(d2), dfree(dc);
}

/* ---- matmul ------------------------------------------------------------------------------ */

TEST(sgemm_all_transposes) {
  const int m = 37, n = 29, k = 53;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
      size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
      float *A = frand(na, -1, 1), *B = frand(nb, -1, 1), *C = frand(nc, -1, 1);
      float *dA = dput(A, na * 4), *dB = dput(B, nb * 4), *dC = dput(C, nc * 4);
      cpu->sgemm(cpu, ta, tb, m, n, k, 0.7f, A, lda, B, ldb, 0.3f, C, ldc);
      gpu->sgemm(gpu, ta, tb, m, n, k, 0.7f, dA, lda, dB, ldb, 0.3f, dC, ldc);
      char what[64];
      snprintf(what, sizeof what, "sgemm ta=%d tb=%d", ta, tb);
      cmp_dev(what, C, dC, nc, TOL);
      free(A), free(B), free(C);
      dfree(dA), dfree(dB), dfree(dC);
    }
  /* k = 0 scales C by beta; beta = 0 ignores a NaN C */
  float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
  float *dC = dput(C, sizeof C), *dA = dput(A, 4), *dB = dput(B, 4);
  cpu->sgemm(cpu, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
  gpu->sgemm(gpu, 0, 0, 2, 3, 0, 1.0f, dA, 1, dB, 3, 0.5f, dC, 3);
  cmp_dev("sgemm k=0", C, dC, 6, 0.0);
  float Cn[4] = {NAN, NAN, NAN, NAN}, A2[4] = {1, 2, 3, 4}, B2[4] = {1, 0, 0, 1};
  float *dCn = dput(Cn, sizeof Cn), *dA2 = dput(A2, sizeof A2), *dB2 = dput(B2, sizeof B2);
  cpu->sgemm(cpu, 0, 0, 2, 2, 2, 1.0f, A2, 2, B2, 2, 0.0f, Cn, 2);
  gpu->sgemm(gpu, 0, 0, 2, 2, 2, 1.0f, dA2, 2, dB2, 2, 0.0f, dCn, 2);
  cmp_dev("sgemm beta=0 over NaN", Cn, dCn, 4, 0.0);
  gsync();
  dfree(dC), dfree(dA), dfree(dB), dfree(dCn), dfree(dA2), dfree(dB2);
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
      float *A = frand(na, -1, 1), *B = frand(nb, -1, 1), *C = frand(nc, -1, 1);
      float *dA = dput(A, na * 4), *dB = dput(B, nb * 4), *dC = dput(C, nc * 4);
      cpu->sgemm_batched(cpu, ta, tb, m, n, k, 1.3f, A, lda, sA, B, ldb, sB, bg, 1.0f, C, ldc, sC, batch);
      gpu->sgemm_batched(gpu, ta, tb, m, n, k, 1.3f, dA, lda, sA, dB, ldb, sB, bg, 1.0f, dC, ldc, sC, batch);
      char what[64];
      snprintf(what, sizeof what, "sgemm_batched b_group=%d ta=%d", bg, ta);
      cmp_dev(what, C, dC, nc, TOL);
      free(A), free(B), free(C);
      dfree(dA), dfree(dB), dfree(dC);
    }
  gsync();
}

/* ---- RMSNorm ---------------------------------------------------------------------------------- */

static void rmsnorm_case(int rows, int heads, int dim, int64_t ldx) {
  size_t nx = (size_t)rows * ldx, nv = (size_t)rows * heads;
  float *x = frand(nx, -2, 2), *w = frand(dim, 0.5, 1.5), *dy = frand(nx, -1, 1);
  float *y = calloc(nx, 4), *rstd = calloc(nv, 4);
  float *dx = frand(nx, -1, 1), *dw = frand(dim, -1, 1);
  float *gx = dput(x, nx * 4), *gw = dput(w, dim * 4), *gdy = dput(dy, nx * 4), *gy = dput(y, nx * 4);
  float *grs = dput(rstd, nv * 4), *gdx = dput(dx, nx * 4), *gdw = dput(dw, dim * 4);
  char what[96];
  cpu->rmsnorm_fwd(cpu, y, ldx, rstd, x, ldx, w, rows, heads, dim, 1e-6f);
  gpu->rmsnorm_fwd(gpu, gy, ldx, grs, gx, ldx, gw, rows, heads, dim, 1e-6f);
  snprintf(what, sizeof what, "rmsnorm_fwd y (%d x %d x %d)", rows, heads, dim);
  cmp_dev(what, y, gy, nx, TOL);
  cmp_dev("rmsnorm_fwd rstd", rstd, grs, nv, TOL);
  /* accumulate into dx, dw */
  cpu->rmsnorm_bwd(cpu, dx, ldx, 1, dw, dy, ldx, x, ldx, w, rstd, rows, heads, dim);
  gpu->rmsnorm_bwd(gpu, gdx, ldx, 1, gdw, gdy, ldx, gx, ldx, gw, grs, rows, heads, dim);
  cmp_dev("rmsnorm_bwd dx (+=)", dx, gdx, nx, TOL);
  cmp_dev("rmsnorm_bwd dw (+=)", dw, gdw, dim, TOL);
  /* dx = , in place over dy */
  cpu->rmsnorm_bwd(cpu, dy, ldx, 0, dw, dy, ldx, x, ldx, w, rstd, rows, heads, dim);
  gpu->rmsnorm_bwd(gpu, gdy, ldx, 0, gdw, gdy, ldx, gx, ldx, gw, grs, rows, heads, dim);
  cmp_dev("rmsnorm_bwd dx (= in place)", dy, gdy, nx, TOL);
  cmp_dev("rmsnorm_bwd dw (second +=)", dw, gdw, dim, TOL);
  /* y aliasing x */
  cpu->rmsnorm_fwd(cpu, x, ldx, rstd, x, ldx, w, rows, heads, dim, 1e-5f);
  gpu->rmsnorm_fwd(gpu, gx, ldx, grs, gx, ldx, gw, rows, heads, dim, 1e-5f);
  cmp_dev("rmsnorm_fwd in place", x, gx, nx, TOL);
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
  float *x = frand(nx, -1, 1);
  float *gx = dput(x, nx * 4), *ginv = dput(inv, sizeof inv);
  int32_t *gpos = dput(pos, rows * 4);
  cpu->rope_fwd(cpu, x, ld, rows, heads, hd, pos, inv);
  gpu->rope_fwd(gpu, gx, ld, rows, heads, hd, gpos, ginv);
  cmp_dev("rope_fwd", x, gx, nx, TOL);
  cpu->rope_bwd(cpu, x, ld, rows, heads, hd, pos, inv);
  gpu->rope_bwd(gpu, gx, ld, rows, heads, hd, gpos, ginv);
  cmp_dev("rope_bwd", x, gx, nx, TOL);
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
  float *gu = frand(ngu, -6, 6), *out = calloc(no, 4), *dout = frand(no, -1, 1);
  float *ggu = dput(gu, ngu * 4), *gout = dput(out, no * 4), *gdout = dput(dout, no * 4);
  cpu->swiglu_fwd(cpu, out, ldo, gu, ldg, gu + cols, ldg, rows, cols);
  gpu->swiglu_fwd(gpu, gout, ldo, ggu, ldg, ggu + cols, ldg, rows, cols);
  cmp_dev("swiglu_fwd", out, gout, no, TOL);
  /* in place: dgate, dup overwrite gate, up */
  cpu->swiglu_bwd(cpu, gu, ldg, gu + cols, ldg, dout, ldo, gu, ldg, gu + cols, ldg, rows, cols);
  gpu->swiglu_bwd(gpu, ggu, ldg, ggu + cols, ldg, gdout, ldo, ggu, ldg, ggu + cols, ldg, rows, cols);
  cmp_dev("swiglu_bwd (in place)", gu, ggu, ngu, TOL);
  gsync();
  free(gu), free(out), free(dout);
  dfree(ggu), dfree(gout), dfree(gdout);
}

/* ---- embedding ------------------------------------------------------------------------------------- */

TEST(embedding_fwd_bwd) {
  const int vocab = 50, dim = 40, rows = 300;
  const int64_t ldo = dim + 4;
  float *table = frand((size_t)vocab * dim, -1, 1), *out = calloc((size_t)rows * ldo, 4);
  int32_t *ids = irand(rows, 0, vocab);
  ids[5] = ids[6] = ids[200] = 7; /* repeats for sure */
  float *gt = dput(table, (size_t)vocab * dim * 4), *go = dput(out, (size_t)rows * ldo * 4);
  int32_t *gids = dput(ids, rows * 4);
  cpu->embed_fwd(cpu, out, ldo, table, ids, rows, dim);
  gpu->embed_fwd(gpu, go, ldo, gt, gids, rows, dim);
  cmp_dev("embed_fwd", out, go, (size_t)rows * ldo, 0.0);
  float *dout = frand((size_t)rows * ldo, -1, 1), *gdout = dput(dout, (size_t)rows * ldo * 4);
  cpu->embed_bwd(cpu, table, dout, ldo, ids, rows, dim);
  gpu->embed_bwd(gpu, gt, gdout, ldo, gids, rows, dim);
  cmp_dev("embed_bwd (same order: bit-equal)", table, gt, (size_t)vocab * dim, 0.0);
  cpu->embed_bwd(cpu, table, dout, ldo, ids, 1, dim);
  gpu->embed_bwd(gpu, gt, gdout, ldo, gids, 1, dim);
  cmp_dev("embed_bwd one row", table, gt, (size_t)vocab * dim, 0.0);
  gsync();
  free(table), free(out), free(ids), free(dout);
  dfree(gt), dfree(go), dfree(gids), dfree(gdout);
}

/* ---- bias, elementwise, sumsq, AdamW --------------------------------------------------------------- */

TEST(bias_and_elementwise) {
  const int rows = 301, cols = 77;
  const int64_t ld = cols + 3;
  size_t ny = (size_t)rows * ld;
  float *y = frand(ny, -1, 1), *b = frand(cols, -1, 1), *db = frand(cols, -1, 1);
  float *gy = dput(y, ny * 4), *gb = dput(b, cols * 4), *gdb = dput(db, cols * 4);
  cpu->bias_add(cpu, y, ld, b, rows, cols);
  gpu->bias_add(gpu, gy, ld, gb, rows, cols);
  cmp_dev("bias_add", y, gy, ny, 0.0);
  cpu->bias_grad(cpu, db, y, ld, rows, cols);
  gpu->bias_grad(gpu, gdb, gy, ld, rows, cols);
  cmp_dev("bias_grad", db, gdb, cols, TOL);
  size_t n = 100003;
  float *a = frand(n, -1, 1), *c = frand(n, -1, 1), *r = calloc(n, 4);
  float *ga = dput(a, n * 4), *gc = dput(c, n * 4), *gr = dput(r, n * 4);
  cpu->add(cpu, r, a, c, n);
  gpu->add(gpu, gr, ga, gc, n);
  cmp_dev("add", r, gr, n, 0.0);
  cpu->add(cpu, a, a, c, n); /* y aliases a */
  gpu->add(gpu, ga, ga, gc, n);
  cmp_dev("add in place", a, ga, n, 0.0);
  cpu->axpy(cpu, r, -0.37f, c, n);
  gpu->axpy(gpu, gr, -0.37f, gc, n);
  cmp_dev("axpy", r, gr, n, 1e-6); /* FMA on the device */
  cpu->scale(cpu, r, 0.125f, n);
  gpu->scale(gpu, gr, 0.125f, n);
  cmp_dev("scale", r, gr, n, 0.0);
  double sc = cpu->sumsq(cpu, r, n), sg = gpu->sumsq(gpu, gr, n);
  CHECK_NEAR(sg, sc, 1e-9 * sc);
  CHECK(gpu->sumsq(gpu, gr, 0) == 0.0);
  CHECK_NEAR(gpu->sumsq(gpu, gr, 1), (double)r[0] * r[0], 1e-12);
  gsync();
  free(y), free(b), free(db), free(a), free(c), free(r);
  dfree(gy), dfree(gb), dfree(gdb), dfree(ga), dfree(gc), dfree(gr);
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
  cmp_dev("adamw p", p, gp, n, 1e-6);
  cmp_dev("adamw m", m, gm, n, 1e-6);
  cmp_dev("adamw v", v, gv, n, 1e-6);
  gsync();
  free(p), free(g), free(m), free(v);
  dfree(gp), dfree(gg), dfree(gm), dfree(gv);
}

/* ---- attention -------------------------------------------------------------------------------------- */

typedef struct att_case {
  int T, nh, nkv, hd;
  int32_t *tin, *tout;
} att_case;

static att_case causal_case(const int *lens, int nseq, int nh, int nkv, int hd) {
  att_case c = {0, nh, nkv, hd, NULL, NULL};
  for (int s = 0; s < nseq; s++) c.T += lens[s];
  c.tin = malloc(sizeof(int32_t) * c.T);
  c.tout = malloc(sizeof(int32_t) * c.T);
  int t = 0;
  for (int s = 0; s < nseq; s++) {
    int end = t + lens[s] - 1;
    for (int i = 0; i < lens[s]; i++, t++) c.tin[t] = t, c.tout[t] = end;
  }
  return c;
}

/* prefix (50) shared by threads A (40) and B (60), then an unrelated
 * sequence (30); tokens stored in a scrambled order; token 3 (storage)
 * sees nothing (tout < tin). */
static att_case trie_case(int nh, int nkv, int hd) {
  att_case c = {180, nh, nkv, hd, NULL, NULL};
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

/* Workspace for the backward with `rows` (head x query) score rows per tile. */
static size_t ws_for_rows(const att_case *c, size_t rows) {
  size_t a = ((size_t)c->nh * c->T * 4 + 255) & ~(size_t)255;
  size_t s = (rows * c->T * 4 + 255) & ~(size_t)255;
  return a + 2 * s + 1024;
}

static void check_attention(const att_case *c, const char *name) {
  const int T = c->T, nh = c->nh, nkv = c->nkv, hd = c->hd;
  const int64_t W = (int64_t)(nh + 2 * nkv) * hd, ld = W + 7, ldo = (int64_t)nh * hd + 5;
  size_t nqkv = (size_t)T * ld, no = (size_t)T * ldo, nl = (size_t)nh * T;
  float *qkv = frand(nqkv, -1.5, 1.5), *dout = frand(no, -1, 1);
  float *out = malloc(no * 4), *lse = malloc(nl * 4), *dqkv = malloc(nqkv * 4);
  for (size_t i = 0; i < no; i++) out[i] = 12345.0f; /* pads keep it on both sides */
  for (size_t i = 0; i < nqkv; i++) dqkv[i] = -777.0f; /* dq, dk, dv are written (=) */
  grpo_attn_shape s = {T, nh, nkv, hd, 1.0f / sqrtf((float)hd), qkv, ld, qkv + (size_t)nh * hd, ld,
                       qkv + (size_t)(nh + nkv) * hd, ld, c->tin, c->tout};
  size_t cws = cpu->attn_workspace(cpu, T, nh, nkv, hd);
  void *cw = NULL;
  grpo_error err = {0};
  CHECK(cpu->alloc(cpu, cws, &cw, &err) == GRPO_OK);
  cpu->attn_fwd(cpu, &s, out, ldo, lse, cw, cws);
  cpu->attn_bwd(cpu, &s, out, ldo, lse, dout, ldo, dqkv, dqkv + (size_t)nh * hd,
                dqkv + (size_t)(nh + nkv) * hd, cw, cws);

  float *gqkv = dput(qkv, nqkv * 4), *gdout = dput(dout, no * 4);
  int32_t *gtin = dput(c->tin, T * 4), *gtout = dput(c->tout, T * 4);
  float *gout = dalloc(no * 4), *glse = dalloc(nl * 4), *gdqkv = dalloc(nqkv * 4);
  grpo_attn_shape g = s;
  g.q = gqkv, g.k = gqkv + (size_t)nh * hd, g.v = gqkv + (size_t)(nh + nkv) * hd;
  g.tin = gtin, g.tout = gtout;
  size_t full = gpu->attn_workspace(gpu, T, nh, nkv, hd);
  size_t sizes[4] = {full, ws_for_rows(c, (size_t)4 * T), ws_for_rows(c, (size_t)2 * T),
                     ws_for_rows(c, 50)};
  const char *label[4] = {"full", "4T rows", "2T rows", "50 rows"};
  for (int w = 0; w < 4; w++) {
    float *gws = dalloc(sizes[w]);
    float *init_o = malloc(no * 4), *init_d = malloc(nqkv * 4);
    for (size_t i = 0; i < no; i++) init_o[i] = 12345.0f;
    for (size_t i = 0; i < nqkv; i++) init_d[i] = -777.0f;
    grpo_error e2 = {0};
    CHECK(gpu->copy_h2d(gpu, gout, init_o, no * 4, &e2) == GRPO_OK);
    CHECK(gpu->copy_h2d(gpu, gdqkv, init_d, nqkv * 4, &e2) == GRPO_OK);
    gpu->attn_fwd(gpu, &g, gout, ldo, glse, gws, sizes[w]);
    gpu->attn_bwd(gpu, &g, gout, ldo, glse, gdout, ldo, gdqkv, gdqkv + (size_t)nh * hd,
                  gdqkv + (size_t)(nh + nkv) * hd, gws, sizes[w]);
    char what[160];
    snprintf(what, sizeof what, "attn %s [%s] out", name, label[w]);
    cmp_dev(what, out, gout, no, TOL);
    snprintf(what, sizeof what, "attn %s [%s] lse", name, label[w]);
    cmp_dev(what, lse, glse, nl, TOL);
    snprintf(what, sizeof what, "attn %s [%s] dq/dk/dv", name, label[w]);
    cmp_dev(what, dqkv, gdqkv, nqkv, TOL_GRAD);
    gsync();
    dfree(gws);
    free(init_o), free(init_d);
  }
  cpu->free(cpu, cw);
  free(qkv), free(dout), free(out), free(lse), free(dqkv);
  dfree(gqkv), dfree(gdout), dfree(gtin), dfree(gtout), dfree(gout), dfree(glse), dfree(gdqkv);
}

TEST(attention_causal_packed) {
  int lens[3] = {70, 45, 90};
  att_case c = causal_case(lens, 3, 6, 2, 32);
  check_attention(&c, "causal 70+45+90 GQA 6/2");
  free(c.tin), free(c.tout);
  int lens2[4] = {1, 63, 1, 64};
  c = causal_case(lens2, 4, 2, 1, 8);
  check_attention(&c, "causal 1+63+1+64 MQA");
  free(c.tin), free(c.tout);
  int lens1[1] = {33};
  c = causal_case(lens1, 1, 3, 3, 64);
  check_attention(&c, "single sequence MHA hd 64");
  free(c.tin), free(c.tout);
}

TEST(attention_trie_packed) {
  att_case c = trie_case(4, 2, 16);
  check_attention(&c, "trie scrambled GQA 4/2");
  free(c.tin), free(c.tout);
  c = trie_case(8, 2, 128);
  check_attention(&c, "trie scrambled GQA 8/2 hd 128");
  free(c.tin), free(c.tout);
}

/* ---- KV cache and decode ------------------------------------------------------------------------------- */

TEST(kv_write_and_decode) {
  const int nslots = 5, tmax = 40, nh = 4, nkv = 2, hd = 16, width = nkv * hd;
  const int nrows = nslots * tmax;
  const int64_t lds = width + 3;
  size_t ncache = (size_t)nslots * tmax * width;
  float *kc = calloc(ncache, 4), *vc = calloc(ncache, 4);
  float *ksrc = frand((size_t)nrows * lds, -1, 1), *vsrc = frand((size_t)nrows * lds, -1, 1);
  int32_t *slots = malloc(nrows * 4), *pos = malloc(nrows * 4);
  for (int i = 0; i < nrows; i++) slots[i] = (i * 3) % nslots, pos[i] = i / nslots; /* every cell once */
  float *gkc = dput(kc, ncache * 4), *gvc = dput(vc, ncache * 4);
  float *gks = dput(ksrc, (size_t)nrows * lds * 4), *gvs = dput(vsrc, (size_t)nrows * lds * 4);
  int32_t *gslots = dput(slots, nrows * 4), *gpos = dput(pos, nrows * 4);
  cpu->kv_write(cpu, kc, ksrc, lds, slots, pos, nrows, width, tmax);
  cpu->kv_write(cpu, vc, vsrc, lds, slots, pos, nrows, width, tmax);
  gpu->kv_write(gpu, gkc, gks, lds, gslots, gpos, nrows, width, tmax);
  gpu->kv_write(gpu, gvc, gvs, lds, gslots, gpos, nrows, width, tmax);
  cmp_dev("kv_write k", kc, gkc, ncache, 0.0);
  cmp_dev("kv_write v", vc, gvc, ncache, 0.0);
  /* decode: 3 queries on slots {4, 0, 2} with lengths {40, 0, 17}; then all 5 slots, slots NULL */
  for (int variant = 0; variant < 2; variant++) {
    int n = variant ? nslots : 3;
    int32_t qs[3] = {4, 0, 2}, lens3[3] = {40, 0, 17}, lens5[5] = {1, 40, 7, 39, 20};
    int32_t *lens = variant ? lens5 : lens3;
    float *q = frand((size_t)n * nh * hd, -1, 1), *out = calloc((size_t)n * nh * hd, 4);
    size_t wsb = cpu->attn_decode_workspace(cpu, n, nh, tmax);
    float *ws = malloc(wsb);
    cpu->attn_decode(cpu, out, q, kc, vc, variant ? NULL : qs, lens, n, nh, nkv, hd, tmax, 0.25f, ws, wsb);
    size_t gwsb = gpu->attn_decode_workspace(gpu, n, nh, tmax);
    float *gq = dput(q, (size_t)n * nh * hd * 4), *gout = dalloc((size_t)n * nh * hd * 4), *gws = dalloc(gwsb);
    int32_t *gqs = dput(qs, sizeof qs), *glens = dput(lens, (size_t)n * 4);
    gpu->attn_decode(gpu, gout, gq, gkc, gvc, variant ? NULL : gqs, glens, n, nh, nkv, hd, tmax, 0.25f,
                     gws, gwsb);
    cmp_dev(variant ? "attn_decode (slots NULL)" : "attn_decode", out, gout, (size_t)n * nh * hd, TOL);
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
  float *h = frand(nh_, -1, 1), *w = frand(nw, -0.5, 0.5);
  int32_t *rows = malloc(n * 4), *tg = irand(n, 0, V);
  for (int k = 0; k < n; k++) rows[k] = (k * 5) % hrows; /* repeats when n > hrows */
  tg[0] = 0, tg[n - 1] = V - 1;
  grpo_classifier_shape s = {n, H, V, h, ldh, with_rows ? rows : NULL, w, tg, temp, row_chunk, vocab_chunk};
  float *lp = malloc(n * 4), *ent = malloc(n * 4), *lse = malloc(n * 4);
  size_t cws = cpu->classifier_workspace(cpu, &s);
  void *cw = malloc(cws);
  cpu->classifier_fwd(cpu, &s, lp, with_entropy ? ent : NULL, lse, cw, cws);
  float *dlp = frand(n, -1, 1), *dent = frand(n, -1, 1);
  float *dh = frand(nh_, -1, 1), *dw = frand(nw, -1, 1);
  float *gh = dput(h, nh_ * 4), *gw = dput(w, nw * 4), *gdh = dput(dh, nh_ * 4), *gdw = dput(dw, nw * 4);
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
  fprintf(stderr, "  %s\n", what);
  cmp_dev("classifier logprob", lp, glp, n, TOL);
  cmp_dev("classifier lse", lse, glse, n, TOL);
  if (with_entropy) cmp_dev("classifier entropy", ent, gent, n, TOL);
  cmp_dev("classifier dh (+=)", dh, gdh, nh_, TOL_GRAD);
  cmp_dev("classifier dw (+=)", dw, gdw, nw, TOL_GRAD);
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
  grpo_cuda_options o = {0, GRPO_BF16, 0};
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_EUNSUPPORTED && b == NULL);
  o.act_dtype = GRPO_F32;
  o.device = 1 << 20;
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_EINVAL && b == NULL);
  o.device = 0;
  CHECK(grpo_backend_cuda_create(&o, &b, &err) == GRPO_OK && b != NULL);
  if (!b) return;
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
  grpo_error err = {0};
  if (grpo_backend_cuda_create(NULL, &gpu, &err) != GRPO_OK) {
    fprintf(stderr, "cuda backend: %s\n", err.msg);
    return 1;
  }
  RUN(memory_copies_convert);
  RUN(sgemm_all_transposes);
  RUN(sgemm_batched_groups);
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
  RUN(deferred_errors_and_options);
  grpo_backend_cuda_destroy(gpu);
  return test_summary();
}
