/* The CUDA sampler (grpo_sampler on the cuda backend, core/cuda/sample_cuda.cu)
 * against the host reference (grpo_sample_row) on random logits:
 *  - f32 rows on the f32 backend, bf16 rows on it (grpo_sampler_run_dtype)
 *    and on a bf16 backend when the build has one; bf16 rows are compared
 *    with the reference run on the bf16 values widened to f32;
 *  - vocabularies from 1 to 151936 entries, rows with a stride, smooth,
 *    peaked, tied (integer) and masked (-inf, -0) logits, greedy and every
 *    filter combination;
 *  - tokens identical, except near-boundary cases: the GPU sums masses in
 *    another order (fixed point, exact and deterministic) than the host's
 *    sequential doubles, so a token may differ when the draw or a top-p cut
 *    lies within ~1e-8 of a CDF step. A mismatch counts as near-boundary when
 *    the reference with u +- 1e-8, or top_p / min_p one float step away,
 *    gives the GPU's token; there must be no other kind, and near-boundary
 *    ones must stay below 1e-3 of the rows;
 *  - logprob, sampler_logprob and entropy within 1e-5 (+ 1e-6 relative);
 *  - the same inputs twice give bit-identical results;
 *  - the time of one call for 256 rows of 151936 (printed).
 * Exits 77 without a device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "core/dtype.h"
#include "core/sample.h"
#include "test.h"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static double unif(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static double gauss(void) {
  double a = unif() + 1e-300, b = unif();
  return sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* kinds of rows */
enum { SMOOTH, PEAKED, WIDE, TIES, MASKED, N_KINDS };

static void fill(float *x, int V, int kind) {
  for (int v = 0; v < V; v++) {
    switch (kind) {
    case SMOOTH: x[v] = (float)gauss(); break;
    case PEAKED: x[v] = (float)(3.0 * gauss()); break;
    case WIDE: x[v] = (float)(8.0 * gauss()); break;
    case TIES: x[v] = (float)((int)(rnd() % 7) - 3); break;
    default: x[v] = rnd() % 5 == 0 ? -INFINITY : (float)(2.0 * gauss()); break;
    }
  }
  if (kind == MASKED && V > 2) {
    x[rnd() % (uint64_t)V] = -0.0f;
    x[rnd() % (uint64_t)V] = 0.0f;
    x[0] = 6.0f; /* at least one finite maximum */
  }
}

typedef struct stats {
  long rows, hard, near;
  double max_dlp, max_dslp, max_dent;
} stats;

static int agrees(const float *row, int V, grpo_sample_params p, double u, int token,
                  grpo_sample_ws *ws) {
  grpo_sample_result r;
  grpo_sample_row(row, V, &p, u, ws, &r);
  return r.token == token;
}

/* The GPU token is the reference's for a draw or a cut within rounding. */
static int near_boundary(const float *row, int V, grpo_sample_params p, double u, int token,
                         grpo_sample_ws *ws) {
  const double du[2] = {-1e-8, 1e-8};
  for (int k = 0; k < 2; k++) {
    double v = u + du[k];
    if (v >= 0.0 && v < 1.0 && agrees(row, V, p, v, token, ws)) return 1;
  }
  if (p.top_p < 1.0f) {
    grpo_sample_params q = p;
    q.top_p = nextafterf(p.top_p, 0.0f);
    if (agrees(row, V, q, u, token, ws)) return 1;
    q.top_p = nextafterf(p.top_p, 2.0f);
    if (q.top_p < 1.0f && agrees(row, V, q, u, token, ws)) return 1;
  }
  if (p.min_p > 0.0f) {
    grpo_sample_params q = p;
    q.min_p = nextafterf(p.min_p, 0.0f);
    if (agrees(row, V, q, u, token, ws)) return 1;
    q.min_p = nextafterf(p.min_p, 2.0f);
    if (q.min_p <= 1.0f && agrees(row, V, q, u, token, ws)) return 1;
  }
  return 0;
}

/* Within 1e-5 + 1e-6 relative; NaN only against NaN (a row whose logits are
 * all -inf has NaN statistics in both; masked -inf entries among finite
 * ones leave them finite). */
static int close_to(double gpu, double ref, double *max_diff) {
  if (isnan(ref) || isnan(gpu)) return isnan(ref) && isnan(gpu);
  double d = fabs(gpu - ref);
  if (d > *max_diff) *max_diff = d;
  return d <= 1e-5 + 1e-6 * fabs(ref);
}

static void compare(const float *rows, int n, int V, int ld, grpo_sample_params p, const double *u,
                    const grpo_sample_result *g, grpo_sample_ws *ws, stats *st, const char *what) {
  for (int i = 0; i < n; i++) {
    const float *row = rows + (size_t)i * ld;
    grpo_sample_result r;
    grpo_sample_row(row, V, &p, u[i], ws, &r);
    st->rows++;
    if (r.token != g[i].token) {
      if (p.temperature > 0.0f && near_boundary(row, V, p, u[i], g[i].token, ws)) {
        st->near++;
      } else {
        st->hard++;
        if (st->hard <= 5)
          fprintf(stderr, "%s: row %d (V %d, T %g, top_p %g, top_k %d, min_p %g, u %.17g): gpu %d, cpu %d\n",
                  what, i, V, p.temperature, p.top_p, p.top_k, p.min_p, u[i], g[i].token, r.token);
      }
      continue;
    }
    int ok = close_to(g[i].logprob, r.logprob, &st->max_dlp);
    ok &= close_to(g[i].sampler_logprob, r.sampler_logprob, &st->max_dslp);
    ok &= close_to(g[i].entropy, r.entropy, &st->max_dent);
    CHECK_MSG(ok,
              "%s: row %d token %d: logprob %.9g / %.9g, sampler %.9g / %.9g, entropy %.9g / %.9g", what,
              i, r.token, g[i].logprob, r.logprob, g[i].sampler_logprob, r.sampler_logprob, g[i].entropy,
              r.entropy);
  }
}

static grpo_sample_params combo(int c, int V) {
  static const float T[4] = {0.0f, 0.6f, 1.0f, 1.3f};
  static const float P[3] = {1.0f, 0.95f, 0.5f};
  static const float M[2] = {0.0f, 0.05f};
  const int K[4] = {0, 1, 50, V / 2 + 1};
  grpo_sample_params p = {T[c % 4], P[(c / 4) % 3], K[(c / 12) % 4], M[(c / 48) % 2]};
  return p;
}
#define N_COMBOS 96

/* One backend, one element type of the rows (bf16: rows rounded first). */
static void run_case(grpo_backend *be, grpo_dtype dt, stats *st, const char *what) {
  static const int Vs[] = {1, 7, 1000, 32000, 151936};
  grpo_error err = {0};
  for (size_t vi = 0; vi < sizeof Vs / sizeof Vs[0]; vi++) {
    const int V = Vs[vi], ld = V + (V > 7 ? 13 : 0), n = V >= 32000 ? 4 : 16;
    grpo_sampler *sm = NULL;
    CHECK_EQ_INT(grpo_sampler_create(be, n, V, &sm, &err), GRPO_OK);
    if (!sm) return;
    float *x = malloc(sizeof(float) * (size_t)n * ld);
    uint16_t *xb = malloc(sizeof(uint16_t) * (size_t)n * ld);
    grpo_sample_ws ws;
    CHECK_EQ_INT(grpo_sample_ws_init(&ws, V, &err), GRPO_OK);
    size_t es = grpo_dtype_size(dt), bytes = es * (size_t)n * ld;
    void *d = NULL;
    CHECK_EQ_INT(be->alloc(be, bytes, &d, &err), GRPO_OK);
    for (int kind = 0; kind < N_KINDS && d; kind++) {
      memset(x, 0, sizeof(float) * (size_t)n * ld);
      for (int i = 0; i < n; i++) fill(x + (size_t)i * ld, V, kind);
      if (dt == GRPO_BF16) {
        for (size_t j = 0; j < (size_t)n * ld; j++) {
          xb[j] = grpo_f32_to_bf16(x[j]);
          x[j] = grpo_bf16_to_f32(xb[j]);
        }
      }
      CHECK_EQ_INT(be->copy_h2d(be, d, dt == GRPO_BF16 ? (void *)xb : (void *)x, bytes, &err), GRPO_OK);
      for (int c = 0; c < N_COMBOS; c++) {
        grpo_sample_params p = combo(c, V);
        double u[16];
        grpo_sample_result g[16], g2[16];
        for (int i = 0; i < n; i++) u[i] = unif();
        int rc = grpo_sampler_run_dtype(sm, d, dt, ld, n, V, &p, u, g, &err);
        CHECK_MSG(rc == GRPO_OK, "%s: %s", what, err.msg);
        if (rc) break;
        compare(x, n, V, ld, p, u, g, &ws, st, what);
        if (c % 16 == 5) { /* deterministic */
          CHECK_EQ_INT(grpo_sampler_run_dtype(sm, d, dt, ld, n, V, &p, u, g2, &err), GRPO_OK);
          CHECK(memcmp(g, g2, sizeof(grpo_sample_result) * (size_t)n) == 0);
        }
      }
    }
    if (d) be->free(be, d);
    grpo_sample_ws_free(&ws);
    free(x);
    free(xb);
    grpo_sampler_free(sm);
  }
}

static void report(const stats *st, const char *what) {
  printf("%s: %ld rows, %ld near-boundary token differences, %ld others; max |d logprob| %.3g, "
         "|d sampler_logprob| %.3g, |d entropy| %.3g\n",
         what, st->rows, st->near, st->hard, st->max_dlp, st->max_dslp, st->max_dent);
  CHECK_EQ_INT(st->hard, 0);
  CHECK_MSG(st->near * 1000 <= st->rows, "%ld near-boundary differences in %ld rows", st->near, st->rows);
}

static grpo_backend *cuda(grpo_dtype act, grpo_error *err) {
  grpo_cuda_options o = {.device = 0, .act_dtype = act};
  grpo_backend *be = NULL;
  if (grpo_backend_cuda_create(&o, &be, err)) return NULL;
  return be;
}

TEST(f32_rows_match_the_reference) {
  grpo_error err = {0};
  grpo_backend *be = cuda(GRPO_F32, &err);
  CHECK_MSG(be != NULL, "%s", err.msg);
  if (!be) return;
  stats st = {0};
  run_case(be, GRPO_F32, &st, "f32");
  report(&st, "f32 rows");
  grpo_backend_cuda_destroy(be);
}

TEST(bf16_rows_match_the_reference_on_rounded_logits) {
  grpo_error err = {0};
  grpo_backend *be = cuda(GRPO_F32, &err);
  CHECK_MSG(be != NULL, "%s", err.msg);
  if (!be) return;
  stats st = {0};
  run_case(be, GRPO_BF16, &st, "bf16 rows");
  report(&st, "bf16 rows (f32 backend)");
  grpo_backend_cuda_destroy(be);
  /* a bf16 backend samples its own act dtype */
  be = cuda(GRPO_BF16, &err);
  if (!be) {
    printf("no bf16 CUDA backend in this build (%s): bf16 checked through run_dtype only\n", err.msg);
    return;
  }
  const int n = 8, V = 5000;
  grpo_sampler *sm = NULL;
  CHECK_EQ_INT(grpo_sampler_create(be, n, V, &sm, &err), GRPO_OK);
  float *x = malloc(sizeof(float) * n * V);
  uint16_t *xb = malloc(sizeof(uint16_t) * n * V);
  for (int i = 0; i < n; i++) fill(x + (size_t)i * V, V, i % N_KINDS);
  for (int j = 0; j < n * V; j++) x[j] = grpo_bf16_to_f32(xb[j] = grpo_f32_to_bf16(x[j]));
  void *d = NULL;
  CHECK_EQ_INT(be->alloc(be, sizeof(uint16_t) * n * V, &d, &err), GRPO_OK);
  CHECK_EQ_INT(be->copy_h2d(be, d, xb, sizeof(uint16_t) * n * V, &err), GRPO_OK);
  grpo_sample_ws ws;
  CHECK_EQ_INT(grpo_sample_ws_init(&ws, V, &err), GRPO_OK);
  stats s2 = {0};
  for (int c = 0; c < N_COMBOS && sm && d; c++) {
    grpo_sample_params p = combo(c, V);
    double u[8];
    grpo_sample_result g[8];
    for (int i = 0; i < n; i++) u[i] = unif();
    CHECK_EQ_INT(grpo_sampler_run(sm, d, V, n, V, &p, u, g, &err), GRPO_OK);
    compare(x, n, V, V, p, u, g, &ws, &s2, "bf16 backend");
  }
  report(&s2, "bf16 backend");
  grpo_sample_ws_free(&ws);
  if (d) be->free(be, d);
  free(x);
  free(xb);
  grpo_sampler_free(sm);
  grpo_backend_cuda_destroy(be);
}

/* A draw vector with a boundary hit exactly: u = 0 and u just below 1. */
TEST(extreme_draws) {
  grpo_error err = {0};
  grpo_backend *be = cuda(GRPO_F32, &err);
  if (!be) return;
  const int n = 4, V = 3000;
  grpo_sampler *sm = NULL;
  CHECK_EQ_INT(grpo_sampler_create(be, n, V, &sm, &err), GRPO_OK);
  float *x = malloc(sizeof(float) * n * V);
  for (int i = 0; i < n; i++) fill(x + (size_t)i * V, V, i % 2 ? TIES : SMOOTH);
  void *d = NULL;
  CHECK_EQ_INT(be->alloc(be, sizeof(float) * n * V, &d, &err), GRPO_OK);
  CHECK_EQ_INT(be->copy_h2d(be, d, x, sizeof(float) * n * V, &err), GRPO_OK);
  grpo_sample_ws ws;
  CHECK_EQ_INT(grpo_sample_ws_init(&ws, V, &err), GRPO_OK);
  stats st = {0};
  for (int c = 0; c < N_COMBOS && sm && d; c++) {
    grpo_sample_params p = combo(c, V);
    double u[4] = {0.0, 1.0 - 1.0 / 9007199254740992.0, 0.0, 1.0 - 1.0 / 9007199254740992.0};
    grpo_sample_result g[4];
    CHECK_EQ_INT(grpo_sampler_run(sm, d, V, n, V, &p, u, g, &err), GRPO_OK);
    compare(x, n, V, V, p, u, g, &ws, &st, "extreme draws");
  }
  report(&st, "extreme draws");
  grpo_sample_ws_free(&ws);
  if (d) be->free(be, d);
  free(x);
  grpo_sampler_free(sm);
  grpo_backend_cuda_destroy(be);
}

/* Time of one call, 256 rows of 151936 (Qwen2.5's vocabulary). */
TEST(timing) {
  grpo_error err = {0};
  grpo_backend *be = cuda(GRPO_F32, &err);
  if (!be) return;
  const int n = 256, V = 151936;
  grpo_sampler *sm = NULL;
  CHECK_EQ_INT(grpo_sampler_create(be, n, V, &sm, &err), GRPO_OK);
  float *x = malloc(sizeof(float) * (size_t)n * V);
  uint16_t *xb = malloc(sizeof(uint16_t) * (size_t)n * V);
  for (int i = 0; i < n; i++) fill(x + (size_t)i * V, V, PEAKED);
  for (size_t j = 0; j < (size_t)n * V; j++) xb[j] = grpo_f32_to_bf16(x[j]);
  void *d = NULL, *db = NULL;
  CHECK_EQ_INT(be->alloc(be, sizeof(float) * (size_t)n * V, &d, &err), GRPO_OK);
  CHECK_EQ_INT(be->alloc(be, sizeof(uint16_t) * (size_t)n * V, &db, &err), GRPO_OK);
  if (d && db && sm) {
    CHECK_EQ_INT(be->copy_h2d(be, d, x, sizeof(float) * (size_t)n * V, &err), GRPO_OK);
    CHECK_EQ_INT(be->copy_h2d(be, db, xb, sizeof(uint16_t) * (size_t)n * V, &err), GRPO_OK);
    double *u = malloc(sizeof(double) * n);
    grpo_sample_result *g = malloc(sizeof *g * n);
    for (int i = 0; i < n; i++) u[i] = unif();
    const char *names[4] = {"T=1", "T=1 top_p=0.95", "T=0.6 top_k=50 top_p=0.95", "T=1 min_p=0.05"};
    grpo_sample_params ps[4] = {{1, 1, 0, 0}, {1, 0.95f, 0, 0}, {0.6f, 0.95f, 50, 0}, {1, 1, 0, 0.05f}};
    for (int k = 0; k < 4; k++)
      for (int b = 0; b < 2; b++) {
        grpo_sampler_run_dtype(sm, b ? db : d, b ? GRPO_BF16 : GRPO_F32, V, n, V, &ps[k], u, g, &err);
        double t0 = now();
        const int reps = 5;
        for (int r = 0; r < reps; r++)
          CHECK_EQ_INT(grpo_sampler_run_dtype(sm, b ? db : d, b ? GRPO_BF16 : GRPO_F32, V, n, V, &ps[k], u,
                                              g, &err),
                       GRPO_OK);
        printf("sampler %d rows x %d %s, %s: %.3f ms a call\n", n, V, b ? "bf16" : "f32", names[k],
               1e3 * (now() - t0) / reps);
      }
    free(u);
    free(g);
  }
  if (d) be->free(be, d);
  if (db) be->free(be, db);
  free(x);
  free(xb);
  grpo_sampler_free(sm);
  grpo_backend_cuda_destroy(be);
}

int main(void) {
  if (grpo_backend_cuda_device_count() == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
  RUN(f32_rows_match_the_reference);
  RUN(bf16_rows_match_the_reference_on_rounded_logits);
  RUN(extreme_draws);
  RUN(timing);
  return test_summary();
}
