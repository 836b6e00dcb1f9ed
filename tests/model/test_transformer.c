/* Transformer parity against the PyTorch/transformers fixtures in
 * tests/fixtures/models/<arch>/ (made by tools/make_model_fixtures.py, the
 * expected values computed in float64): logprob, entropy, hidden states,
 * loss and every parameter gradient for a causal packed batch and a trie
 * batch; entropy gradients; temperature; recompute on/off; KV-cache decode
 * (prefill, steps, chunked prefill, prefix copy into other slots). */
#include <stdint.h>

#include "checkpoints/safetensors.h"
#include "core/backend.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test.h"

static const char *ARCHS[] = {"qwen2", "qwen3", "llama"};
#define N_ARCH 3

static char path_buf[512];
static const char *fx(const char *arch, const char *file) {
  snprintf(path_buf, sizeof path_buf, "%s", test_path("tests/fixtures/models/"));
  size_t n = strlen(path_buf);
  snprintf(path_buf + n, sizeof path_buf - n, "%s/%s", arch, file);
  return path_buf;
}

static int load_model(const char *arch, model_params *p) {
  grpo_error err = {0};
  model_config cfg;
  if (model_config_load(&cfg, fx(arch, "config.json"), &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  if (model_params_init(p, &cfg, &err) || model_params_alloc_grad(p, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  ckpt_st_model st;
  if (ckpt_st_open(&st, fx(arch, "model.safetensors"), &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < p->n && !rc; i++)
    rc = ckpt_st_read_f32(&st, p->info[i].name, p->data + p->info[i].offset, p->info[i].numel, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  ckpt_st_close(&st);
  return rc ? -1 : 0;
}

/* A fixture file's tensors, read on demand. */
typedef struct fixture {
  ckpt_st_model st;
  int ok;
} fixture;

static int fx_open(fixture *f, const char *arch, const char *file) {
  grpo_error err = {0};
  f->ok = ckpt_st_open(&f->st, fx(arch, file), &err) == 0;
  if (!f->ok) fprintf(stderr, "%s\n", err.msg);
  return f->ok;
}

static size_t fx_numel(const fixture *f, const char *name) {
  const ckpt_st_tensor *t = ckpt_st_find(&f->st, name);
  return t ? (size_t)t->numel : 0;
}

static float *fx_f32(const fixture *f, const char *name, size_t *n) {
  size_t k = fx_numel(f, name);
  if (n) *n = k;
  if (!k) {
    fprintf(stderr, "fixture lacks %s\n", name);
    return NULL;
  }
  float *out = malloc(k * sizeof(float));
  grpo_error err = {0};
  if (ckpt_st_read_f32(&f->st, name, out, k, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    free(out);
    return NULL;
  }
  return out;
}

static int32_t *fx_i32(const fixture *f, const char *name, size_t *n) {
  size_t k = fx_numel(f, name);
  if (n) *n = k;
  if (!k) return NULL;
  int32_t *out = malloc(k * sizeof(int32_t));
  grpo_error err = {0};
  if (ckpt_st_read_i32(&f->st, name, out, k, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    free(out);
    return NULL;
  }
  return out;
}

/* max over i of |a - b| / (rtol |b| + atol); <= 1 passes. */
static double worst(const float *a, const float *b, size_t n, double rtol, double atol) {
  double w = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]) / (rtol * fabs((double)b[i]) + atol);
    if (!(e <= w)) w = e;  /* NaN propagates */
  }
  return w;
}

/* GRPO_TEST_VERBOSE=1 prints every margin (error / tolerance). */
static void report(const char *what, const char *name, double w) {
  if (getenv("GRPO_TEST_VERBOSE")) printf("  %-28s %-52s %.3g\n", what, name, w);
}

static double max_abs(const float *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(a[i]) > m) m = fabs(a[i]);
  return m;
}

typedef struct batch_data {
  int32_t *ids, *pos, *tin, *tout, *row, *tgt;
  float *w;
  model_batch b;
} batch_data;

static int batch_load(const fixture *f, batch_data *d) {
  size_t T, P, tmp;
  d->ids = fx_i32(f, "batch.ids", &T);
  d->pos = fx_i32(f, "batch.pos", &tmp);
  d->tin = fx_i32(f, "batch.tin", &tmp);
  d->tout = fx_i32(f, "batch.tout", &tmp);
  d->row = fx_i32(f, "batch.pred_row", &P);
  d->tgt = fx_i32(f, "batch.pred_target", &tmp);
  d->w = fx_f32(f, "batch.weights", &tmp);
  if (!d->ids || !d->pos || !d->tin || !d->tout || !d->row || !d->tgt || !d->w) return -1;
  d->b = (model_batch){.n_tokens = (int)T, .ids = d->ids, .pos = d->pos, .tin = d->tin,
                       .tout = d->tout, .n_pred = (int)P, .pred_row = d->row,
                       .pred_target = d->tgt, .temperature = 1.0f};
  return 0;
}

static void batch_free(batch_data *d) {
  free(d->ids);
  free(d->pos);
  free(d->tin);
  free(d->tout);
  free(d->row);
  free(d->tgt);
  free(d->w);
}

/* Compares every parameter gradient with fixture tensors prefix + HF name.
 * Tolerance: 1e-3 relative plus an absolute floor of 1e-4 x the tensor's
 * largest expected magnitude (f32 sums against a float64 reference). */
static void check_grads(const char *what, const model_params *p, const fixture *f,
                        const char *prefix) {
  char name[160];
  for (int i = 0; i < p->n; i++) {
    const model_param_info *in = &p->info[i];
    snprintf(name, sizeof name, "%s%s", prefix, in->name);
    size_t n;
    float *g = fx_f32(f, name, &n);
    CHECK_MSG(g && n == in->numel, "%s: %s missing or wrong size", what, name);
    if (!g || n != in->numel) {
      free(g);
      continue;
    }
    double floor = 1e-4 * max_abs(g, n) + 1e-7;
    double w = worst(p->grad + in->offset, g, n, 1e-3, floor);
    report(what, name, w);
    CHECK_MSG(w <= 1.0, "%s: gradient %s off by %.3g x tolerance", what, name, w);
    free(g);
  }
}

static void parity_batch(const char *arch, const char *file) {
  model_params p;
  fixture f;
  if (load_model(arch, &p)) {
    CHECK_MSG(0, "%s: cannot load model", arch);
    return;
  }
  if (!fx_open(&f, arch, file)) {
    CHECK_MSG(0, "%s: cannot open %s", arch, file);
    model_params_free(&p);
    return;
  }
  batch_data d;
  CHECK(batch_load(&f, &d) == 0);
  grpo_error err = {0};
  model_transformer *m = NULL;
  model_plan_opts opts = {.max_tokens = d.b.n_tokens + 3, .row_chunk = 4};
  int rc = model_transformer_create(&m, &p, grpo_backend_cpu(), &opts, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  if (rc) goto out;
  int P = d.b.n_pred, T = d.b.n_tokens, H = p.cfg.hidden;
  float *lp = malloc(sizeof(float) * P), *ent = malloc(sizeof(float) * P);
  float *hid = malloc(sizeof(float) * (size_t)T * H);
  rc = model_forward(m, &d.b, lp, ent, hid, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  float *elp = fx_f32(&f, "expect.logprob", NULL), *eent = fx_f32(&f, "expect.entropy", NULL);
  float *ehid = fx_f32(&f, "expect.hidden", NULL), *eloss = fx_f32(&f, "expect.loss", NULL);
  CHECK(elp && eent && ehid && eloss);
  double wl = worst(lp, elp, P, 1e-4, 1e-5);
  CHECK_MSG(wl <= 1.0, "%s %s: logprob off by %.3g x tolerance", arch, file, wl);
  double we = worst(ent, eent, P, 1e-4, 1e-5);
  CHECK_MSG(we <= 1.0, "%s %s: entropy off by %.3g x tolerance", arch, file, we);
  double wh = worst(hid, ehid, (size_t)T * H, 1e-4, 1e-5);
  report(arch, file, wl);
  report(arch, file, we);
  report(arch, file, wh);
  CHECK_MSG(wh <= 1.0, "%s %s: hidden off by %.3g x tolerance", arch, file, wh);
  double loss = 0;
  for (int k = 0; k < P; k++) loss += (double)d.w[k] * lp[k];
  CHECK_NEAR(loss, eloss[0], 1e-4 * fabs(eloss[0]) + 1e-5);

  /* gradients of sum_k w_k logprob_k */
  model_params_zero_grad(&p);
  rc = model_backward(m, &d.b, d.w, NULL, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  char what[64];
  snprintf(what, sizeof what, "%s %s", arch, file);
  check_grads(what, &p, &f, "grad.");

  /* recompute gives the same gradients */
  float *g0 = malloc(sizeof(float) * p.total);
  memcpy(g0, p.grad, sizeof(float) * p.total);
  model_transformer *mr = NULL;
  model_plan_opts ro = opts;
  ro.recompute = 1;
  rc = model_transformer_create(&mr, &p, grpo_backend_cpu(), &ro, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  CHECK(model_transformer_workspace_bytes(mr) < model_transformer_workspace_bytes(m));
  model_params_zero_grad(&p);
  float *lp2 = malloc(sizeof(float) * P);
  CHECK(model_forward(mr, &d.b, lp2, NULL, NULL, &err) == 0);
  CHECK(memcmp(lp, lp2, sizeof(float) * P) == 0);
  CHECK(model_backward(mr, &d.b, d.w, NULL, &err) == 0);
  double wr = worst(p.grad, g0, p.total, 0, 1e-6);
  CHECK_MSG(wr <= 1.0, "%s %s: recompute gradients differ (%.3g x 1e-6)", arch, file, wr);
  /* backward accumulates: a second forward+backward doubles the gradient */
  CHECK(model_forward(mr, &d.b, lp2, NULL, NULL, &err) == 0);
  CHECK(model_backward(mr, &d.b, d.w, NULL, &err) == 0);
  for (size_t i = 0; i < p.total; i++) g0[i] *= 2;
  wr = worst(p.grad, g0, p.total, 1e-5, 1e-6);
  CHECK_MSG(wr <= 1.0, "%s %s: gradients do not accumulate (%.3g x tolerance)", arch, file, wr);
  model_transformer_free(mr);
  free(lp2);
  free(g0);

  /* the unfused path (one sgemm per weight) matches the fixture too */
  {
    model_transformer *mu = NULL;
    model_plan_opts uo = opts;
    uo.no_fuse = 1;
    CHECK(model_transformer_create(&mu, &p, grpo_backend_cpu(), &uo, &err) == 0);
    model_params_zero_grad(&p);
    CHECK(model_forward(mu, &d.b, lp, NULL, NULL, &err) == 0);
    wl = worst(lp, elp, P, 1e-4, 1e-5);
    CHECK_MSG(wl <= 1.0, "%s %s: unfused logprob off by %.3g x tolerance", arch, file, wl);
    CHECK(model_backward(mu, &d.b, d.w, NULL, &err) == 0);
    snprintf(what, sizeof what, "%s %s unfused", arch, file);
    check_grads(what, &p, &f, "grad.");
    model_transformer_free(mu);
  }

  /* temperature */
  float *tv = fx_f32(&f, "temp.value", NULL), *tlp = fx_f32(&f, "temp.logprob", NULL);
  float *tent = fx_f32(&f, "temp.entropy", NULL);
  if (tv && tlp && tent) {
    model_batch bt = d.b;
    bt.temperature = tv[0];
    CHECK(model_forward(m, &bt, lp, ent, NULL, &err) == 0);
    wl = worst(lp, tlp, P, 1e-4, 1e-5);
    CHECK_MSG(wl <= 1.0, "%s %s: temperature logprob off by %.3g x tolerance", arch, file, wl);
    we = worst(ent, tent, P, 1e-4, 1e-5);
    CHECK_MSG(we <= 1.0, "%s %s: temperature entropy off by %.3g x tolerance", arch, file, we);
  } else {
    CHECK_MSG(0, "%s %s: no temperature tensors", arch, file);
  }
  free(tv);
  free(tlp);
  free(tent);

  /* entropy gradient (where the fixture has it) */
  if (fx_numel(&f, "batch.ent_weights")) {
    float *u = fx_f32(&f, "batch.ent_weights", NULL);
    float *zero = calloc((size_t)P, sizeof(float));
    CHECK(model_forward(m, &d.b, lp, ent, NULL, &err) == 0);
    model_params_zero_grad(&p);
    CHECK(model_backward(m, &d.b, zero, u, &err) == 0);
    snprintf(what, sizeof what, "%s %s entropy", arch, file);
    check_grads(what, &p, &f, "grad_ent.");
    free(u);
    free(zero);
  }

  free(elp);
  free(eent);
  free(ehid);
  free(eloss);
  free(lp);
  free(ent);
  free(hid);
  model_transformer_free(m);
out:
  batch_free(&d);
  ckpt_st_close(&f.st);
  model_params_free(&p);
}

TEST(causal_batch_parity) {
  for (int a = 0; a < N_ARCH; a++) parity_batch(ARCHS[a], "causal.safetensors");
}

TEST(trie_batch_parity) {
  for (int a = 0; a < N_ARCH; a++) parity_batch(ARCHS[a], "trie.safetensors");
}

static int argmax(const float *x, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

static void decode_parity(const char *arch) {
  model_params p;
  fixture f;
  if (load_model(arch, &p) || !fx_open(&f, arch, "decode.safetensors")) {
    CHECK_MSG(0, "%s: cannot load model or decode fixture", arch);
    return;
  }
  size_t np, ns, nl;
  int32_t *prompt = fx_i32(&f, "decode.prompt", &np), *toks = fx_i32(&f, "decode.tokens", &ns);
  float *elog = fx_f32(&f, "decode.logits", &nl);
  const int V = p.cfg.vocab, S = 4;
  CHECK(prompt && toks && elog && nl == ns * (size_t)V);
  grpo_error err = {0};
  model_transformer *m = NULL;
  model_plan_opts opts = {.max_tokens = 16, .max_cache_len = 32};
  CHECK(model_transformer_create(&m, &p, grpo_backend_cpu(), &opts, &err) == 0);
  model_kv_cache c;
  CHECK(model_kv_cache_init(&c, &p.cfg, S, 32, &err) == 0);
  float *lg = malloc(sizeof(float) * V * S);

  /* slot 0: prefill, then greedy steps */
  CHECK(model_prefill(m, &c, 0, prompt, (int)np, lg, &err) == 0);
  CHECK_EQ_INT(c.len[0], (int)np);
  for (size_t s = 0; s < ns; s++) {
    double w = worst(lg, elog + s * V, V, 1e-4, 1e-4);
    CHECK_MSG(w <= 1.0, "%s: decode step %zu logits off by %.3g x tolerance", arch, s, w);
    CHECK_EQ_INT(argmax(lg, V), toks[s]);
    if (s + 1 < ns) {
      int slot = 0;
      CHECK(model_decode_step(m, &c, 1, &slot, &toks[s], lg, &err) == 0);
    }
  }

  /* slot 1: the prompt in two chunks (prefill continues a slot) */
  int half = (int)np / 2;
  CHECK(model_prefill(m, &c, 1, prompt, half, NULL, &err) == 0);
  CHECK(model_prefill(m, &c, 1, prompt + half, (int)np - half, lg, &err) == 0);
  double w = worst(lg, elog, V, 1e-4, 1e-4);
  CHECK_MSG(w <= 1.0, "%s: chunked prefill logits off by %.3g x tolerance", arch, w);

  /* prefix copy: slot 1's prompt into slots 2 and 3; all three continue alike */
  int dst[2] = {2, 3};
  CHECK(model_kv_cache_copy_prefix(&c, 1, dst, 2, (int)np, &err) == 0);
  CHECK_EQ_INT(c.len[2], (int)np);
  int slots[3] = {3, 1, 2};
  int32_t in[3];
  for (size_t s = 0; s + 1 < ns; s++) {
    for (int i = 0; i < 3; i++) in[i] = toks[s];
    CHECK(model_decode_step(m, &c, 3, slots, in, lg, &err) == 0);
    for (int i = 0; i < 3; i++) {
      w = worst(lg + (size_t)i * V, elog + (s + 1) * V, V, 1e-4, 1e-4);
      CHECK_MSG(w <= 1.0, "%s: slot %d step %zu after prefix copy off by %.3g", arch, slots[i],
                s + 1, w);
      CHECK_EQ_INT(argmax(lg + (size_t)i * V, V), toks[s + 1]);
    }
  }

  /* decode equals the full forward of prompt + tokens at every position */
  {
    int T = (int)(np + ns - 1);
    int32_t ids[64], pos[64], tin[64], tout[64], row[64], tgt[64];
    for (int i = 0; i < T; i++) {
      ids[i] = i < (int)np ? prompt[i] : toks[i - np];
      pos[i] = tin[i] = i;
      tout[i] = T - 1;
    }
    int P = (int)ns;
    for (int k = 0; k < P; k++) {
      row[k] = (int)np - 1 + k;
      tgt[k] = toks[k];
    }
    model_batch b = {.n_tokens = T, .ids = ids, .pos = pos, .tin = tin, .tout = tout,
                     .n_pred = P, .pred_row = row, .pred_target = tgt};
    float lp[64];
    CHECK(model_forward(m, &b, lp, NULL, NULL, &err) == 0);
    for (int k = 0; k < P; k++) {
      const float *z = elog + (size_t)k * V;
      double mx = z[0], se = 0;
      for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
      for (int v = 0; v < V; v++) se += exp(z[v] - mx);
      double want = z[tgt[k]] - mx - log(se);
      CHECK_NEAR(lp[k], want, 1e-4 * fabs(want) + 1e-5);
    }
  }

  /* errors: duplicated slot, bad token, copy longer than the source */
  int dup[2] = {1, 1};
  CHECK(model_decode_step(m, &c, 2, dup, in, lg, &err) == GRPO_EINVAL);
  int32_t bad = V;
  int s0 = 0;
  CHECK(model_decode_step(m, &c, 1, &s0, &bad, lg, &err) == GRPO_EINVAL);
  CHECK(model_kv_cache_copy_prefix(&c, 0, dst, 2, 99, &err) == GRPO_EINVAL);

  free(lg);
  model_kv_cache_free(&c);
  model_transformer_free(m);
  free(prompt);
  free(toks);
  free(elog);
  ckpt_st_close(&f.st);
  model_params_free(&p);
}

TEST(decode_matches_forward_and_fixture) {
  for (int a = 0; a < N_ARCH; a++) decode_parity(ARCHS[a]);
}

TEST(kv_cache_size_and_bad_batches) {
  model_params p;
  if (load_model("qwen2", &p)) {
    CHECK(0);
    return;
  }
  const model_config *cfg = &p.cfg;
  CHECK_EQ_INT(model_kv_cache_bytes(cfg, 3, 10),
               2 * cfg->n_layers * 3 * 10 * cfg->n_kv_heads * cfg->head_dim * 4 + 3 * 4);
  grpo_error err = {0};
  model_transformer *m = NULL;
  model_plan_opts opts = {.max_tokens = 4};
  CHECK(model_transformer_create(&m, &p, grpo_backend_cpu(), &opts, &err) == 0);
  int32_t ids[5] = {1, 2, 3, 4, 5}, pos[5] = {0, 1, 2, 3, 4}, tin[5] = {0, 1, 2, 3, 4};
  int32_t tout[5] = {4, 4, 4, 4, 4}, row[1] = {0}, tgt[1] = {2};
  float lp[1];
  model_batch b = {.n_tokens = 5, .ids = ids, .pos = pos, .tin = tin, .tout = tout, .n_pred = 1,
                   .pred_row = row, .pred_target = tgt};
  CHECK(model_forward(m, &b, lp, NULL, NULL, &err) == GRPO_EINVAL);  /* over the plan */
  CHECK(strstr(err.msg, "max_tokens") != NULL);
  b.n_tokens = 4;
  tout[0] = tout[1] = tout[2] = tout[3] = 3;
  ids[2] = cfg->vocab;
  CHECK(model_forward(m, &b, lp, NULL, NULL, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "ids[2]") != NULL);
  ids[2] = 3;
  tout[1] = 0;
  CHECK(model_forward(m, &b, lp, NULL, NULL, &err) == GRPO_EINVAL);
  tout[1] = 3;
  row[0] = 7;
  CHECK(model_forward(m, &b, lp, NULL, NULL, &err) == GRPO_EINVAL);
  row[0] = 0;
  CHECK(model_forward(m, &b, lp, NULL, NULL, &err) == 0);
  /* a backward with another batch shape is refused */
  b.n_tokens = 3;
  float g = 1;
  CHECK(model_backward(m, &b, &g, NULL, &err) == GRPO_EINVAL);
  model_transformer_free(m);
  model_params_free(&p);
}

int main(void) {
  RUN(causal_batch_parity);
  RUN(trie_batch_parity);
  RUN(decode_matches_forward_and_fixture);
  RUN(kv_cache_size_and_bad_batches);
  return test_summary();
}
