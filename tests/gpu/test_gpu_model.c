/* Whole-model forward and backward of the tiny fixture models
 * (tests/fixtures/models/<arch>/, PyTorch float64 references) on the CUDA
 * backend, with the weights and gradients in device memory: the params are
 * bound to the GPU (model_params_bind) and their device view
 * (model_params_device) is handed to the transformer, which then touches
 * memory only through the backend; gradients come back through
 * model_params_grads_to_host. Same tolerances as tests/model/test_transformer.c
 * (1e-4 relative + 1e-5 for logprob, entropy, hidden; 1e-3 relative + 1e-4 x
 * max for gradients). Skips (77) without a device. The decode path (KV cache
 * on the device) is covered by test_gpu_train.c.
 *
 * The same again with bf16 activations (the default on CUDA): bf16 keeps 8
 * significant bits, so the bounds are those of bf16 rounding a few dozen
 * ops deep, against the float64 reference: logprob and entropy within 0.1
 * absolute + 2% relative, hidden states and every parameter gradient within 5% in
 * relative L2 norm (per tensor). A wrong offset or a missed conversion
 * gives errors of order 1. */
#include <stdint.h>

#include "checkpoints/hf_io.h"
#include "checkpoints/safetensors.h"
#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "model/model_config.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test.h"

static grpo_backend *gpu, *gpu_bf16;
static const char *ARCHS[] = {"qwen2", "qwen3", "llama"};

static char path_buf[512];
static const char *fx(const char *arch, const char *file) {
  snprintf(path_buf, sizeof path_buf, "%s", test_path("tests/fixtures/models/"));
  size_t n = strlen(path_buf);
  snprintf(path_buf + n, sizeof path_buf - n, "%s/%s", arch, file);
  return path_buf;
}

/* The fixture's weights (an HF directory) with the project's own loader. */
static int load_model(const char *arch, model_params *p) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s%s", test_path("tests/fixtures/models/"), arch);
  grpo_error err = {0};
  if (ckpt_hf_load(dir, p, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  return 0;
}

static float *fx_f32(ckpt_st_model *st, const char *name, size_t *n) {
  const ckpt_st_tensor *t = ckpt_st_find(st, name);
  if (!t) {
    fprintf(stderr, "fixture lacks %s\n", name);
    return NULL;
  }
  size_t k = (size_t)t->numel;
  if (n) *n = k;
  float *out = malloc(k * sizeof(float));
  grpo_error err = {0};
  if (ckpt_st_read_f32(st, name, out, k, &err)) {
    free(out);
    return NULL;
  }
  return out;
}

static int32_t *fx_i32(ckpt_st_model *st, const char *name, size_t *n) {
  const ckpt_st_tensor *t = ckpt_st_find(st, name);
  if (!t) return NULL;
  size_t k = (size_t)t->numel;
  if (n) *n = k;
  int32_t *out = malloc(k * sizeof(int32_t));
  grpo_error err = {0};
  if (ckpt_st_read_i32(st, name, out, k, &err)) {
    free(out);
    return NULL;
  }
  return out;
}

static double worst(const float *a, const float *b, size_t n, double rtol, double atol) {
  double w = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]) / (rtol * fabs((double)b[i]) + atol);
    if (!(e <= w)) w = e;
  }
  return w;
}

static double max_abs(const float *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(a[i]) > m) m = fabs(a[i]);
  return m;
}

static double rel_l2(const float *a, const float *ref, size_t n) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; i++) {
    d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
    r += (double)ref[i] * ref[i];
  }
  return sqrt(d / (r > 0 ? r : 1e-30));
}

/* bf16: within abs + 2% of |b|, as a ratio to it (<= 1 passes) */
static double worst_abs(const float *a, const float *b, size_t n, double abs) {
  double w = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - b[i]) / (abs + 0.02 * fabs((double)b[i]));
    if (!(e <= w)) w = e;
  }
  return w;
}

static void parity(const char *arch, const char *file, int bf16) {
  grpo_backend *be = bf16 ? gpu_bf16 : gpu;
  model_params hp;
  if (load_model(arch, &hp)) {
    CHECK_MSG(0, "%s: cannot load model", arch);
    return;
  }
  grpo_error err = {0};
  ckpt_st_model st;
  if (ckpt_st_open(&st, fx(arch, file), &err)) {
    CHECK_MSG(0, "%s: %s", arch, err.msg);
    model_params_free(&hp);
    return;
  }
  size_t T = 0, P = 0, tmp = 0;
  int32_t *ids = fx_i32(&st, "batch.ids", &T), *pos = fx_i32(&st, "batch.pos", &tmp);
  int32_t *tin = fx_i32(&st, "batch.tin", &tmp), *tout = fx_i32(&st, "batch.tout", &tmp);
  int32_t *row = fx_i32(&st, "batch.pred_row", &P), *tgt = fx_i32(&st, "batch.pred_target", &tmp);
  float *w = fx_f32(&st, "batch.weights", &tmp);
  float *elp = fx_f32(&st, "expect.logprob", NULL), *eent = fx_f32(&st, "expect.entropy", NULL);
  float *ehid = fx_f32(&st, "expect.hidden", NULL);
  CHECK(ids && pos && tin && tout && row && tgt && w && elp && eent && ehid);
  /* weights to the GPU, then a zeroed gradient there */
  int rc = model_params_bind(&hp, be, &err);
  if (!rc) rc = model_params_alloc_grad(&hp, &err);
  CHECK_MSG(rc == 0, "%s", err.msg);
  CHECK(rc || (hp.dev_data && hp.dev_data != hp.data && hp.dev_grad && hp.dev_grad != hp.grad));
  model_transformer *m = NULL;
  if (!rc && ids && pos && tin && tout && row && tgt && w && elp && eent && ehid) {
    model_batch b = {.n_tokens = (int)T, .ids = ids, .pos = pos, .tin = tin, .tout = tout,
                     .n_pred = (int)P, .pred_row = row, .pred_target = tgt, .temperature = 1.0f};
    model_plan_opts opts = {.max_tokens = (int)T + 3, .row_chunk = 4};
    rc = model_transformer_create(&m, model_params_device(&hp), be, &opts, &err);
    CHECK_MSG(rc == 0, "%s: %s", arch, err.msg);
    if (!rc) {
      int H = hp.cfg.hidden;
      float *lp = malloc(sizeof(float) * P), *ent = malloc(sizeof(float) * P);
      float *hid = malloc(sizeof(float) * T * H);
      rc = model_forward(m, &b, lp, ent, hid, &err);
      CHECK_MSG(rc == 0, "%s", err.msg);
      double wl = bf16 ? worst_abs(lp, elp, P, 0.1) : worst(lp, elp, P, 1e-4, 1e-5);
      double we = bf16 ? worst_abs(ent, eent, P, 0.1) : worst(ent, eent, P, 1e-4, 1e-5);
      double wh = bf16 ? rel_l2(hid, ehid, T * H) / 0.05 : worst(hid, ehid, T * H, 1e-4, 1e-5);
      CHECK_MSG(wl <= 1.0, "%s %s: gpu logprob off by %.3g x tolerance", arch, file, wl);
      CHECK_MSG(we <= 1.0, "%s %s: gpu entropy off by %.3g x tolerance", arch, file, we);
      CHECK_MSG(wh <= 1.0, "%s %s: gpu hidden off by %.3g x tolerance", arch, file, wh);
      rc = model_backward(m, &b, w, NULL, &err);
      CHECK_MSG(rc == 0, "%s", err.msg);
      CHECK(model_params_grads_to_host(&hp, &err) == GRPO_OK);
      const float *g = hp.grad;
      char name[160];
      for (int i = 0; i < hp.n; i++) {
        const model_param_info *in = &hp.info[i];
        snprintf(name, sizeof name, "grad.%s", in->name);
        size_t n = 0;
        float *eg = fx_f32(&st, name, &n);
        CHECK_MSG(eg && n == in->numel, "%s: %s missing", arch, name);
        if (eg && n == in->numel) {
          double wg = bf16 ? rel_l2(g + in->offset, eg, n) / 0.05
                           : worst(g + in->offset, eg, n, 1e-3, 1e-4 * max_abs(eg, n) + 1e-7);
          CHECK_MSG(wg <= 1.0, "%s %s: gpu gradient %s off by %.3g x tolerance", arch, file, name, wg);
        }
        free(eg);
      }
      free(lp), free(ent), free(hid);
      model_transformer_free(m);
    }
  }
  ckpt_st_close(&st);
  model_params_free(&hp);
  free(ids), free(pos), free(tin), free(tout), free(row), free(tgt), free(w);
  free(elp), free(eent), free(ehid);
}

TEST(causal_batch_parity_gpu) {
  for (int a = 0; a < 3; a++) parity(ARCHS[a], "causal.safetensors", 0);
}
TEST(trie_batch_parity_gpu) {
  for (int a = 0; a < 3; a++) parity(ARCHS[a], "trie.safetensors", 0);
}
TEST(causal_batch_parity_gpu_bf16) {
  for (int a = 0; a < 3; a++) parity(ARCHS[a], "causal.safetensors", 1);
}
TEST(trie_batch_parity_gpu_bf16) {
  for (int a = 0; a < 3; a++) parity(ARCHS[a], "trie.safetensors", 1);
}

int main(void) {
  if (grpo_backend_cuda_device_count() == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
  grpo_error err = {0};
  grpo_cuda_options bf = {.act_dtype = GRPO_BF16};
  if (grpo_backend_cuda_create(NULL, &gpu, &err) != GRPO_OK ||
      grpo_backend_cuda_create(&bf, &gpu_bf16, &err) != GRPO_OK) {
    fprintf(stderr, "cuda backend: %s\n", err.msg);
    return 1;
  }
  RUN(causal_batch_parity_gpu);
  RUN(trie_batch_parity_gpu);
  RUN(causal_batch_parity_gpu_bf16);
  RUN(trie_batch_parity_gpu_bf16);
  grpo_backend_cuda_destroy(gpu);
  grpo_backend_cuda_destroy(gpu_bf16);
  return test_summary();
}
