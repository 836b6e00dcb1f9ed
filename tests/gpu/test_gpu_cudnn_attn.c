/* The cuDNN SDPA path of the CUDA backend (core/cuda/attn_cudnn.cu) against
 * the CPU reference backend, on packs of plain causal segments with bf16
 * activations.
 *
 * Skips (exit 77) without a CUDA device, in a build without cuDNN, when the
 * CUDA backend cannot be created with bf16 activations (GRPO_EUNSUPPORTED),
 * and when the path does not serve this device / cuDNN runtime (it serves
 * sm_90 with cuDNN >= 9.6; the reason is printed).
 *
 * Inputs are bf16-rounded on the host, so the CPU (f32) and the GPU see the
 * same values. The cuDNN hooks are called directly through the test entry
 * points of attn_cudnn.cu (the backend's attention ops pick cuDNN by
 * themselves, so only direct calls say which path produced a result); the
 * public ops are checked too, with a pack that must decline (n_seg = 0, the
 * cuBLAS path) and mixed pairs (forward by one path, backward by the other).
 *
 * Tolerances (bf16 outputs; cuDNN rounds P and dS to bf16 for its products;
 * the CPU keeps f32 throughout). Per tensor, over its data (pads excluded):
 *   out:        max|g - c| <= 2e-2 * max|c|  and  ||g - c|| / ||c|| <= 1e-2
 *   lse (f32):  max|g - c| <= 5e-3 (absolute)
 *   dq, dk, dv: max|g - c| <= 5e-2 * max|c|  and  ||g - c|| / ||c|| <= 2e-2
 * Pads between rows (row strides larger than the data) must keep their
 * sentinel exactly, and two cuDNN backward runs must agree bit for bit. The
 * backward also runs with only the workspace grpo_cuda_cudnn_attn_workspace
 * asks for, which makes it go in chunks of segments. */
#include <stdint.h>

#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "core/dtype.h"
#include "test.h"

/* Test entry points of core/cuda/attn_cudnn.cu (declared in attn_cudnn.h). */
int grpo_cuda_cudnn_attn_available(grpo_backend *be, int *version);
size_t grpo_cuda_cudnn_attn_workspace(grpo_backend *be, int T, int nh, int nkv, int hd);
int grpo_cuda_cudnn_attn_fwd(grpo_backend *be, const grpo_attn_shape *s, void *out, int64_t ldo, float *lse,
                             void *ws, size_t ws_bytes);
int grpo_cuda_cudnn_attn_bwd(grpo_backend *be, const grpo_attn_shape *s, const void *out, int64_t ldo,
                             const float *lse, const void *dout, int64_t lddo, void *dq, void *dk, void *dv,
                             void *ws, size_t ws_bytes);
void grpo_cuda_cudnn_attn_stats(grpo_backend *be, long *plans_built, long *served_fwd, long *served_bwd);

#define TOL_OUT_MAX 2e-2
#define TOL_OUT_RMS 1e-2
#define TOL_LSE 5e-3
#define TOL_GRAD_MAX 5e-2
#define TOL_GRAD_RMS 2e-2

/* pads: exactly representable in bf16 */
#define PAD_OUT 12288.0f
#define PAD_GRAD (-768.0f)

static grpo_backend *cpu, *gpu;

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* splitmix64 -> [0, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}
static float bf(float x) { return grpo_bf16_to_f32(grpo_f32_to_bf16(x)); }

static void *dalloc(size_t bytes) {
  void *p = NULL;
  grpo_error err = {0};
  int rc = gpu->alloc(gpu, bytes, &p, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  return p;
}
static void dput(void *d, const void *h, size_t bytes) {
  grpo_error err = {0};
  int rc = gpu->copy_h2d(gpu, d, h, bytes, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
}
static void dget(void *h, const void *d, size_t bytes) {
  grpo_error err = {0};
  int rc = gpu->copy_d2h(gpu, h, d, bytes, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
}
static void gsync(void) {
  grpo_error err = {0};
  int rc = gpu->sync(gpu, &err);
  CHECK_MSG(rc == GRPO_OK, "%s (%s)", err.msg, err.src);
}
/* f32 host values -> bf16 device buffer (n elements) */
static void *dput_bf16(const float *x, size_t n) {
  uint16_t *h = malloc((n ? n : 1) * 2);
  for (size_t i = 0; i < n; i++) h[i] = grpo_f32_to_bf16(x[i]);
  void *d = dalloc(n * 2);
  dput(d, h, n * 2);
  free(h);
  return d;
}
static void fill_bf16(void *d, float v, size_t n) {
  float *h = malloc((n ? n : 1) * 4);
  for (size_t i = 0; i < n; i++) h[i] = v;
  uint16_t *b = malloc((n ? n : 1) * 2);
  for (size_t i = 0; i < n; i++) b[i] = grpo_f32_to_bf16(h[i]);
  dput(d, b, n * 2);
  free(h), free(b);
}
static float *dget_bf16(const void *d, size_t n) {
  uint16_t *h = malloc((n ? n : 1) * 2);
  dget(h, d, n * 2);
  float *x = malloc((n ? n : 1) * 4);
  for (size_t i = 0; i < n; i++) x[i] = grpo_bf16_to_f32(h[i]);
  free(h);
  return x;
}

/* g against c over rows x cols of row stride ld starting at column c0; the
 * rest of each row (pads) must equal pad exactly in g. */
static int cmp_rows(const char *what, const float *c, const float *g, int rows, int64_t ld, int64_t c0,
                    int64_t cols, double tol_max, double tol_rms) {
  double mx = 0, err = 0, se = 0, sr = 0;
  int64_t wi = -1;
  for (int r = 0; r < rows; r++)
    for (int64_t j = c0; j < c0 + cols; j++) {
      double cv = c[r * ld + j], gv = g[r * ld + j], e = fabs(gv - cv);
      if (fabs(cv) > mx) mx = fabs(cv);
      if (!(e <= err)) err = e, wi = r * ld + j; /* NaN is worst */
      se += (gv - cv) * (gv - cv), sr += cv * cv;
    }
  double rms = sqrt(se / (sr > 0 ? sr : 1e-300));
  int ok = err <= tol_max * mx && rms <= tol_rms;
  printf("  %-48s max err %.3g (%.3g of max %.3g)  rel rms %.3g  %s\n", what, err, mx > 0 ? err / mx : 0, mx,
         rms, ok ? "ok" : "FAIL");
  CHECK_MSG(ok, "%s: worst at %lld: gpu %g cpu %g", what, (long long)wi, wi >= 0 ? g[wi] : 0.0,
            wi >= 0 ? c[wi] : 0.0);
  return ok;
}

static void check_pads(const char *what, const float *g, int rows, int64_t ld, int64_t c0, int64_t cols,
                       float pad) {
  long bad = 0;
  for (int r = 0; r < rows; r++)
    for (int64_t j = 0; j < ld; j++)
      if ((j < c0 || j >= c0 + cols) && g[r * ld + j] != pad) bad++;
  CHECK_MSG(bad == 0, "%s: %ld pad elements overwritten", what, bad);
}

static void cmp_lse(const char *what, const float *c, const float *g, size_t n) {
  double err = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)g[i] - c[i]);
    if (!(e <= err)) err = e, wi = i;
  }
  int ok = err <= TOL_LSE;
  printf("  %-48s max abs err %.3g  %s\n", what, err, ok ? "ok" : "FAIL");
  CHECK_MSG(ok, "%s: worst at %zu: gpu %g cpu %g", what, wi, g[wi], c[wi]);
}

/* ---- one pack ----------------------------------------------------------------------------- */

typedef struct pack {
  int T, nh, nkv, hd, n_seg, max_seg;
  int64_t ld, ldo; /* fused QKV row stride; out / dout row stride */
  int32_t *tin, *tout, *seg;
  float *qkv, *dout;       /* host, bf16-rounded, [T, ld] / [T, ldo] */
  float *out, *lse, *dqkv; /* CPU reference */
  void *gqkv, *gdout;      /* device bf16 */
  int32_t *gtin, *gtout, *gseg;
} pack;

static void pack_make(pack *p, const int *lens, int n, int nh, int nkv, int hd, int pad) {
  memset(p, 0, sizeof *p);
  p->nh = nh, p->nkv = nkv, p->hd = hd, p->n_seg = n;
  for (int i = 0; i < n; i++) {
    p->T += lens[i];
    if (lens[i] > p->max_seg) p->max_seg = lens[i];
  }
  const int T = p->T;
  p->ld = (int64_t)(nh + 2 * nkv) * hd + pad, p->ldo = (int64_t)nh * hd + pad;
  p->tin = malloc(sizeof(int32_t) * T), p->tout = malloc(sizeof(int32_t) * T);
  p->seg = malloc(sizeof(int32_t) * (n + 1));
  int t = 0;
  for (int s = 0; s < n; s++) {
    p->seg[s] = t;
    int end = t + lens[s] - 1;
    for (int i = 0; i < lens[s]; i++, t++) p->tin[t] = t, p->tout[t] = end;
  }
  p->seg[n] = T;
  size_t nq = (size_t)T * p->ld, no = (size_t)T * p->ldo, nl = (size_t)nh * T;
  p->qkv = malloc(nq * 4), p->dout = malloc(no * 4);
  for (size_t i = 0; i < nq; i++) p->qkv[i] = bf((float)(3.0 * urand() - 1.5));
  for (size_t i = 0; i < no; i++) p->dout[i] = bf((float)(2.0 * urand() - 1.0));
  /* CPU reference (f32 on the same bf16 values) */
  p->out = malloc(no * 4), p->lse = malloc(nl * 4), p->dqkv = malloc(nq * 4);
  for (size_t i = 0; i < no; i++) p->out[i] = PAD_OUT;
  for (size_t i = 0; i < nq; i++) p->dqkv[i] = PAD_GRAD;
  grpo_attn_shape s = {T,
                       nh,
                       nkv,
                       hd,
                       1.0f / sqrtf((float)hd),
                       p->qkv,
                       p->ld,
                       p->qkv + (size_t)nh * hd,
                       p->ld,
                       p->qkv + (size_t)(nh + nkv) * hd,
                       p->ld,
                       p->tin,
                       p->tout,
                       0,
                       0,
                       NULL};
  size_t cws = cpu->attn_workspace(cpu, T, nh, nkv, hd);
  void *cw = NULL;
  grpo_error err = {0};
  CHECK(cpu->alloc(cpu, cws, &cw, &err) == GRPO_OK);
  cpu->attn_fwd(cpu, &s, p->out, p->ldo, p->lse, cw, cws);
  cpu->attn_bwd(cpu, &s, p->out, p->ldo, p->lse, p->dout, p->ldo, p->dqkv, p->dqkv + (size_t)nh * hd,
                p->dqkv + (size_t)(nh + nkv) * hd, cw, cws);
  cpu->free(cpu, cw);
  /* device inputs */
  p->gqkv = dput_bf16(p->qkv, nq), p->gdout = dput_bf16(p->dout, no);
  p->gtin = dalloc((size_t)T * 4), p->gtout = dalloc((size_t)T * 4), p->gseg = dalloc((size_t)(n + 1) * 4);
  dput(p->gtin, p->tin, (size_t)T * 4), dput(p->gtout, p->tout, (size_t)T * 4);
  dput(p->gseg, p->seg, (size_t)(n + 1) * 4);
}

static void pack_free(pack *p) {
  free(p->tin), free(p->tout), free(p->seg), free(p->qkv), free(p->dout), free(p->out), free(p->lse),
      free(p->dqkv);
  gpu->free(gpu, p->gqkv), gpu->free(gpu, p->gdout), gpu->free(gpu, p->gtin), gpu->free(gpu, p->gtout),
      gpu->free(gpu, p->gseg);
}

/* The device shape; with_segments = 0 leaves n_seg = 0 (the cuBLAS path). */
static grpo_attn_shape pack_shape(const pack *p, int with_segments) {
  const char *q = p->gqkv;
  grpo_attn_shape s = {p->T,
                       p->nh,
                       p->nkv,
                       p->hd,
                       1.0f / sqrtf((float)p->hd),
                       q,
                       p->ld,
                       q + (size_t)p->nh * p->hd * 2,
                       p->ld,
                       q + (size_t)(p->nh + p->nkv) * p->hd * 2,
                       p->ld,
                       p->gtin,
                       p->gtout,
                       0,
                       0,
                       NULL};
  if (with_segments) s.n_seg = p->n_seg, s.max_seg = p->max_seg, s.seg_start = p->gseg;
  return s;
}

/* Device outputs of one forward + backward. */
typedef struct outs {
  void *out, *dqkv;
  float *lse;
} outs;

static void outs_make(const pack *p, outs *o) {
  size_t nq = (size_t)p->T * p->ld, no = (size_t)p->T * p->ldo;
  o->out = dalloc(no * 2), o->dqkv = dalloc(nq * 2), o->lse = dalloc((size_t)p->nh * p->T * 4);
  fill_bf16(o->out, PAD_OUT, no);
  fill_bf16(o->dqkv, PAD_GRAD, nq);
}
static void outs_free(outs *o) { gpu->free(gpu, o->out), gpu->free(gpu, o->dqkv), gpu->free(gpu, o->lse); }

static char *dq_of(const pack *p, void *dqkv) { return (char *)dqkv; }
static char *dk_of(const pack *p, void *dqkv) { return (char *)dqkv + (size_t)p->nh * p->hd * 2; }
static char *dv_of(const pack *p, void *dqkv) { return (char *)dqkv + (size_t)(p->nh + p->nkv) * p->hd * 2; }

static void check_fwd(const char *label, const pack *p, const outs *o) {
  char what[160];
  float *g = dget_bf16(o->out, (size_t)p->T * p->ldo);
  float *l = malloc((size_t)p->nh * p->T * 4);
  dget(l, o->lse, (size_t)p->nh * p->T * 4);
  snprintf(what, sizeof what, "%s out", label);
  cmp_rows(what, p->out, g, p->T, p->ldo, 0, (int64_t)p->nh * p->hd, TOL_OUT_MAX, TOL_OUT_RMS);
  check_pads(what, g, p->T, p->ldo, 0, (int64_t)p->nh * p->hd, PAD_OUT);
  snprintf(what, sizeof what, "%s lse", label);
  cmp_lse(what, p->lse, l, (size_t)p->nh * p->T);
  free(g), free(l);
}

static void check_bwd(const char *label, const pack *p, const outs *o) {
  char what[160];
  float *g = dget_bf16(o->dqkv, (size_t)p->T * p->ld);
  int64_t q = (int64_t)p->nh * p->hd, kv = (int64_t)p->nkv * p->hd;
  snprintf(what, sizeof what, "%s dq", label);
  cmp_rows(what, p->dqkv, g, p->T, p->ld, 0, q, TOL_GRAD_MAX, TOL_GRAD_RMS);
  snprintf(what, sizeof what, "%s dk", label);
  cmp_rows(what, p->dqkv, g, p->T, p->ld, q, kv, TOL_GRAD_MAX, TOL_GRAD_RMS);
  snprintf(what, sizeof what, "%s dv", label);
  cmp_rows(what, p->dqkv, g, p->T, p->ld, q + kv, kv, TOL_GRAD_MAX, TOL_GRAD_RMS);
  snprintf(what, sizeof what, "%s dq/dk/dv", label);
  check_pads(what, g, p->T, p->ld, 0, q + 2 * kv, PAD_GRAD);
  free(g);
}

/* What the backend asks for, with room for the whole pack's deterministic
 * backward (so the main runs need no chunks). */
static size_t ws_size(const pack *p) {
  size_t a = gpu->attn_workspace(gpu, p->T, p->nh, p->nkv, p->hd);
  size_t b = grpo_cuda_cudnn_attn_workspace(gpu, p->T, p->nh, p->nkv, p->hd);
  return (a > b ? a : b) + ((size_t)64 << 20);
}

static int direct_fwd(const pack *p, const grpo_attn_shape *s, outs *o, void *ws, size_t wsb) {
  return grpo_cuda_cudnn_attn_fwd(gpu, s, o->out, p->ldo, o->lse, ws, wsb);
}
static int direct_bwd(const pack *p, const grpo_attn_shape *s, const outs *f, outs *o, void *ws, size_t wsb) {
  return grpo_cuda_cudnn_attn_bwd(gpu, s, f->out, p->ldo, f->lse, p->gdout, p->ldo, dq_of(p, o->dqkv),
                                  dk_of(p, o->dqkv), dv_of(p, o->dqkv), ws, wsb);
}
static void public_fwd(const pack *p, const grpo_attn_shape *s, outs *o, void *ws, size_t wsb) {
  gpu->attn_fwd(gpu, s, o->out, p->ldo, o->lse, ws, wsb);
}
static void public_bwd(const pack *p, const grpo_attn_shape *s, const outs *f, outs *o, void *ws,
                       size_t wsb) {
  gpu->attn_bwd(gpu, s, f->out, p->ldo, f->lse, p->gdout, p->ldo, dq_of(p, o->dqkv), dk_of(p, o->dqkv),
                dv_of(p, o->dqkv), ws, wsb);
}

/* Every check on one pack. */
static void check_pack(const char *name, const int *lens, int n, int nh, int nkv, int hd, int pad) {
  pack p;
  pack_make(&p, lens, n, nh, nkv, hd, pad);
  printf("%s: T=%d, %d segments (longest %d), nh=%d nkv=%d hd=%d, ld=%lld ldo=%lld\n", name, p.T, n,
         p.max_seg, nh, nkv, hd, (long long)p.ld, (long long)p.ldo);
  size_t wsb = ws_size(&p);
  void *ws = dalloc(wsb);
  grpo_attn_shape seg = pack_shape(&p, 1), flat = pack_shape(&p, 0);
  outs a, b, c, d;
  outs_make(&p, &a), outs_make(&p, &b), outs_make(&p, &c), outs_make(&p, &d);

  /* cuDNN forward and backward, called directly */
  int rf = direct_fwd(&p, &seg, &a, ws, wsb);
  CHECK_MSG(rf == 1, "cuDNN forward declined (see the log above)");
  int rb = rf ? direct_bwd(&p, &seg, &a, &a, ws, wsb) : 0;
  CHECK_MSG(!rf || rb == 1, "cuDNN backward declined (see the log above)");
  gsync();
  if (rf) check_fwd("cudnn fwd", &p, &a);
  if (rb) check_bwd("cudnn fwd + cudnn bwd", &p, &a);

  /* deterministic: a second backward is bit-identical (unless
   * GRPO_CUDNN_ATTN=nondet asked for the other form) */
  const char *mode = getenv("GRPO_CUDNN_ATTN");
  int det = !(mode && !strcmp(mode, "nondet"));
  if (rb && det && direct_bwd(&p, &seg, &a, &b, ws, wsb) == 1) {
    size_t nq = (size_t)p.T * p.ld;
    uint16_t *x = malloc(nq * 2), *y = malloc(nq * 2);
    dget(x, a.dqkv, nq * 2), dget(y, b.dqkv, nq * 2);
    CHECK_MSG(memcmp(x, y, nq * 2) == 0, "two cuDNN backward runs differ");
    free(x), free(y);
  }

  /* the backward with only the workspace attn_cudnn bounds (one segment's
   * dP at the pack's length): it runs in chunks of segments */
  size_t small = grpo_cuda_cudnn_attn_workspace(gpu, p.T, nh, nkv, hd);
  if (rb) {
    fill_bf16(d.dqkv, PAD_GRAD, (size_t)p.T * p.ld);
    CHECK_MSG(direct_bwd(&p, &seg, &a, &d, ws, small) == 1, "cuDNN backward in a %zu-byte workspace declined",
              small);
    gsync();
    check_bwd("cudnn fwd + cudnn bwd (chunked workspace)", &p, &d);
  }

  /* n_seg = 0 must decline without writing anything or leaving an error */
  fill_bf16(c.out, PAD_OUT, (size_t)p.T * p.ldo);
  CHECK(direct_fwd(&p, &flat, &c, ws, wsb) == 0);
  CHECK(grpo_cuda_cudnn_attn_bwd(gpu, &flat, a.out, p.ldo, a.lse, p.gdout, p.ldo, dq_of(&p, c.dqkv),
                                 dk_of(&p, c.dqkv), dv_of(&p, c.dqkv), ws, wsb) == 0);
  gsync();
  {
    float *g = dget_bf16(c.out, (size_t)p.T * p.ldo);
    long touched = 0;
    for (size_t i = 0; i < (size_t)p.T * p.ldo; i++) touched += g[i] != PAD_OUT;
    CHECK_MSG(touched == 0, "a declined forward wrote %ld elements", touched);
    free(g);
  }

  /* the fallback (n_seg = 0) forward and backward */
  public_fwd(&p, &flat, &c, ws, wsb);
  public_bwd(&p, &flat, &c, &c, ws, wsb);
  gsync();
  check_fwd("fallback fwd", &p, &c);
  check_bwd("fallback fwd + fallback bwd", &p, &c);

  /* mixed: cuDNN forward + fallback backward, fallback forward + cuDNN backward */
  if (rf) {
    fill_bf16(d.dqkv, PAD_GRAD, (size_t)p.T * p.ld);
    public_bwd(&p, &flat, &a, &d, ws, wsb);
    gsync();
    check_bwd("cudnn fwd + fallback bwd", &p, &d);
  }
  if (rb) {
    fill_bf16(d.dqkv, PAD_GRAD, (size_t)p.T * p.ld);
    CHECK(direct_bwd(&p, &seg, &c, &d, ws, wsb) == 1);
    gsync();
    check_bwd("fallback fwd + cudnn bwd", &p, &d);
  }

  /* the public ops with segments (the backend picks its path) */
  long pb0, f0, b0, pb1, f1, b1;
  grpo_cuda_cudnn_attn_stats(gpu, &pb0, &f0, &b0);
  fill_bf16(d.out, PAD_OUT, (size_t)p.T * p.ldo);
  fill_bf16(d.dqkv, PAD_GRAD, (size_t)p.T * p.ld);
  public_fwd(&p, &seg, &d, ws, wsb);
  public_bwd(&p, &seg, &d, &d, ws, wsb);
  gsync();
  grpo_cuda_cudnn_attn_stats(gpu, &pb1, &f1, &b1);
  printf("  public ops with segments: cuDNN served %ld forward, %ld backward\n", f1 - f0, b1 - b0);
  check_fwd("public fwd", &p, &d);
  check_bwd("public fwd + public bwd", &p, &d);

  outs_free(&a), outs_free(&b), outs_free(&c), outs_free(&d);
  gpu->free(gpu, ws);
  pack_free(&p);
}

TEST(gqa_hd64) {
  int lens[4] = {1, 37, 128, 300};
  check_pack("GQA 14/2 hd 64", lens, 4, 14, 2, 64, 0);
}

TEST(gqa_hd128_padded_rows) {
  int lens[4] = {1, 37, 128, 300};
  check_pack("GQA 14/2 hd 128, padded rows", lens, 4, 14, 2, 128, 8);
}

TEST(mha_hd64_padded_rows) {
  int lens[3] = {5, 64, 200};
  check_pack("MHA 4/4 hd 64, padded rows", lens, 3, 4, 4, 64, 8);
}

/* A pack in the same buckets as gqa_hd64 (4 segments, longest 257..384)
 * reuses its plans. */
TEST(plan_cache) {
  long p0, f0, b0, p1, f1, b1;
  int lens[4] = {2, 36, 127, 299};
  grpo_cuda_cudnn_attn_stats(gpu, &p0, &f0, &b0);
  check_pack("GQA 14/2 hd 64, same buckets", lens, 4, 14, 2, 64, 0);
  grpo_cuda_cudnn_attn_stats(gpu, &p1, &f1, &b1);
  CHECK_MSG(p1 == p0, "%ld new plans built for a pack in cached buckets", p1 - p0);
  CHECK(f1 > f0 && b1 > b0);
}

int main(void) {
  if (grpo_backend_cuda_device_count() == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
#ifndef GRPO_HAVE_CUDNN
  printf("built without cuDNN: skipped\n");
  return 77;
#endif
  cpu = grpo_backend_cpu();
  grpo_error err = {0};
  grpo_cuda_options opt = {.device = 0, .act_dtype = GRPO_BF16};
  int rc = grpo_backend_cuda_create(&opt, &gpu, &err);
  if (rc == GRPO_EUNSUPPORTED) {
    printf("CUDA backend without bf16 activations (%s): skipped\n", err.msg);
    return 77;
  }
  if (rc != GRPO_OK) {
    fprintf(stderr, "cuda backend: %s\n", err.msg);
    return 1;
  }
  int version = 0;
  if (!grpo_cuda_cudnn_attn_available(gpu, &version)) {
    printf("cuDNN %d: the SDPA path does not serve this device or runtime (see the log): skipped\n", version);
    grpo_backend_cuda_destroy(gpu);
    return 77;
  }
  printf("cuDNN %d.%d.%d\n", version / 10000, version / 100 % 100, version % 100);
  RUN(gqa_hd64);
  RUN(gqa_hd128_padded_rows);
  RUN(mha_hd64_padded_rows);
  RUN(plan_cache);
  grpo_backend_cuda_destroy(gpu);
  return test_summary();
}
