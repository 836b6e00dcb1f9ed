/* The device-residency plumbing of model.device: cuda, checked on every build
 * without a GPU: a "fake device" backend runs the CPU backend's ops but
 * reports kind GRPO_DEVICE_CUDA, so its memory is separate from the host
 * master copies (allocated poisoned with NaN bytes) and every transfer goes
 * through its copy ops. The same work on the CPU backend and on the fake
 * device must then give bit-identical results: any missing sync point (weights
 * not copied up, gradients not zeroed, a stale host copy saved, the KV cache
 * prefix not copied) shows up as NaN or as a difference.
 *  - params: bind / device view / grads_to_host / zero_grad / to_host / copy;
 *  - forward + backward + AdamW (optim_allreduce_sum_be on one rank,
 *    optim_grad_norm, moments via optim_adamw_moments_host);
 *  - greedy decode through the engine with the KV cache in device memory
 *    (model_kv_cache_init_on, prefix copy by copy_d2d);
 *  - the CPU backend binds without a second buffer (dev_data == data). */
#include <mpi.h>
#include <stdlib.h>

#include "core/backend.h"
#include "model/params.h"
#include "model/transformer.h"
#include "optim/optim.h"
#include "rollout/policy.h"
#include "../fake_device.h"
#include "greedy_decode.h"
#include "test.h"

static void tiny_config(model_config *c) {
  model_config_defaults(c, MODEL_ARCH_QWEN2);
  c->hidden = 32;
  c->n_layers = 2;
  c->n_heads = 4;
  c->n_kv_heads = 2;
  c->head_dim = 8;
  c->ffn = 64;
  c->vocab = 96;
  c->max_pos = 256;
  c->tie_embeddings = 0;
}

static int init_params(model_params *p, grpo_error *err) {
  model_config c;
  tiny_config(&c);
  int rc = model_params_init(p, &c, err);
  if (!rc) model_params_init_random(p, 11, 0.3f);
  return rc;
}

TEST(cpu_bind_is_in_place) {
  grpo_error err = {0};
  model_params p;
  CHECK_EQ_INT(init_params(&p, &err), GRPO_OK);
  CHECK_EQ_INT(model_params_bind(&p, grpo_backend_cpu(), &err), GRPO_OK);
  CHECK_EQ_INT(model_params_alloc_grad(&p, &err), GRPO_OK);
  CHECK(p.dev_data == p.data && p.dev_grad == p.grad && model_params_device(&p) == &p);
  long h0 = fake_device_h2d, d0 = fake_device_d2h;
  CHECK_EQ_INT(model_params_to_device(&p, &err), GRPO_OK);
  CHECK_EQ_INT(model_params_to_host(&p, &err), GRPO_OK);
  CHECK(fake_device_h2d == h0 && fake_device_d2h == d0);
  model_params_free(&p);
}

/* One training step on backend be: forward, backward (2 micro-batches), the
 * all-reduce, norm, AdamW; returns host copies of weights, grads (before the
 * update) and moments. */
static void train_step(grpo_backend *be, float *w, float *g, float *m, float *v, double *norm,
                       float *lp_out) {
  grpo_error err = {0};
  model_params p;
  CHECK_EQ_INT(init_params(&p, &err), GRPO_OK);
  CHECK_EQ_INT(model_params_bind(&p, be, &err), GRPO_OK);
  CHECK_EQ_INT(model_params_alloc_grad(&p, &err), GRPO_OK);
  model_plan_opts po = {.max_tokens = 12};
  model_transformer *tf = NULL;
  CHECK_EQ_INT(model_transformer_create(&tf, model_params_device(&p), be, &po, &err), GRPO_OK);
  int32_t ids[12], pos[12], tin[12], tout[12], row[11], tgt[11];
  for (int i = 0; i < 12; i++) ids[i] = (i * 7 + 3) % 96, pos[i] = i, tin[i] = i, tout[i] = 11;
  for (int i = 0; i < 11; i++) row[i] = i, tgt[i] = ids[i + 1];
  model_batch b = {12, ids, pos, tin, tout, 11, row, tgt, 1.0f};
  float lp[11], dl[11];
  for (int i = 0; i < 11; i++) dl[i] = -1.0f / 11;
  for (int mb = 0; mb < 2; mb++) { /* accumulates over two micro-batches */
    CHECK_EQ_INT(model_forward(tf, &b, lp, NULL, NULL, &err), GRPO_OK);
    CHECK_EQ_INT(model_backward(tf, &b, dl, NULL, &err), GRPO_OK);
  }
  memcpy(lp_out, lp, sizeof lp);
  CHECK_EQ_INT(optim_allreduce_sum_be(be, p.dev_grad, p.total, MPI_COMM_WORLD, 0, p.grad, &err), GRPO_OK);
  *norm = optim_grad_norm(be, p.dev_grad, p.total);
  CHECK_EQ_INT(model_params_grads_to_host(&p, &err), GRPO_OK);
  memcpy(g, p.grad, sizeof(float) * p.total);
  optim_group grp = {0, p.total, 1};
  optim_adamw opt;
  CHECK_EQ_INT(optim_adamw_init(&opt, be, p.total, &grp, 1, 0.9f, 0.999f, 1e-8f, 0.01f, &err), GRPO_OK);
  optim_adamw_step(&opt, p.dev_data, p.dev_grad, 1e-2, optim_clip_factor(*norm, 1.0));
  model_params_zero_grad(&p);
  /* a zeroed gradient: a second backward gives the one-micro-batch gradient */
  CHECK_EQ_INT(model_forward(tf, &b, lp, NULL, NULL, &err), GRPO_OK);
  CHECK_EQ_INT(model_backward(tf, &b, dl, NULL, &err), GRPO_OK);
  CHECK_EQ_INT(model_params_grads_to_host(&p, &err), GRPO_OK);
  float *mh, *vh;
  CHECK_EQ_INT(optim_adamw_moments_host(&opt, &mh, &vh, &err), GRPO_OK);
  memcpy(m, mh, sizeof(float) * p.total);
  memcpy(v, vh, sizeof(float) * p.total);
  CHECK_EQ_INT(model_params_to_host(&p, &err), GRPO_OK);
  memcpy(w, p.data, sizeof(float) * p.total);
  /* g2 (appended after the first gradient) */
  memcpy(g + p.total, p.grad, sizeof(float) * p.total);
  optim_adamw_free(&opt);
  model_transformer_free(tf);
  model_params_free(&p);
}

TEST(train_step_fake_device_equals_cpu) {
  model_params t;
  grpo_error err = {0};
  CHECK_EQ_INT(init_params(&t, &err), GRPO_OK);
  size_t n = t.total;
  model_params_free(&t);
  float *w[2], *g[2], *m[2], *v[2], lp[2][11];
  double norm[2];
  for (int k = 0; k < 2; k++) {
    w[k] = malloc(sizeof(float) * n), g[k] = malloc(sizeof(float) * 2 * n);
    m[k] = malloc(sizeof(float) * n), v[k] = malloc(sizeof(float) * n);
  }
  train_step(grpo_backend_cpu(), w[0], g[0], m[0], v[0], &norm[0], lp[0]);
  long h0 = fake_device_h2d;
  train_step(fake_device(), w[1], g[1], m[1], v[1], &norm[1], lp[1]);
  CHECK(fake_device_h2d > h0); /* the weights did go up */
  CHECK(isfinite(norm[0]) && norm[0] > 0);
  CHECK_MSG(norm[0] == norm[1], "grad norm cpu %.17g fake %.17g", norm[0], norm[1]);
  CHECK(memcmp(lp[0], lp[1], sizeof lp[0]) == 0);
  CHECK(memcmp(g[0], g[1], sizeof(float) * 2 * n) == 0);
  CHECK(memcmp(m[0], m[1], sizeof(float) * n) == 0);
  CHECK(memcmp(v[0], v[1], sizeof(float) * n) == 0);
  CHECK(memcmp(w[0], w[1], sizeof(float) * n) == 0);
  for (int k = 0; k < 2; k++) free(w[k]), free(g[k]), free(m[k]), free(v[k]);
}

/* Greedy decode of 3 samples of one prompt on be (KV cache there). */
static void decode(grpo_backend *be, greedy_out *out) {
  grpo_error err = {0};
  model_params p;
  CHECK_EQ_INT(init_params(&p, &err), GRPO_OK);
  CHECK_EQ_INT(model_params_bind(&p, be, &err), GRPO_OK);
  model_plan_opts po = {.max_tokens = 8, .max_cache_len = 40};
  const int32_t prompt[5] = {4, 8, 15, 16, 23};
  CHECK_EQ_INT(greedy_decode(&p, be, &po, 40, prompt, 5, 24, out, &err), GRPO_OK);
  CHECK_EQ_INT(out->prefills, 1); /* samples 1, 2 start from the copied prefix */
  CHECK_EQ_INT(out->cache_on_be, be->kind != GRPO_DEVICE_CPU);
  model_params_free(&p);
}

TEST(greedy_decode_fake_device_equals_cpu) {
  static greedy_out c, g;
  decode(grpo_backend_cpu(), &c);
  decode(fake_device(), &g);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ_INT(c.n[i], 24);
    CHECK_EQ_INT(g.n[i], c.n[i]);
    CHECK(isfinite(g.lp[i][0]));
  }
  CHECK(memcmp(c.ids, g.ids, sizeof c.ids) == 0);
  CHECK(memcmp(c.lp, g.lp, sizeof c.lp) == 0);
}

TEST(copy_reaches_the_device) {
  grpo_error err = {0};
  model_params a, b;
  CHECK_EQ_INT(init_params(&a, &err), GRPO_OK);
  CHECK_EQ_INT(init_params(&b, &err), GRPO_OK);
  for (size_t i = 0; i < a.total; i++) a.data[i] += 1.0f;
  CHECK_EQ_INT(model_params_bind(&b, fake_device(), &err), GRPO_OK);
  CHECK(b.dev_data != b.data && model_params_device(&b)->data == b.dev_data);
  CHECK_EQ_INT(model_params_copy(&b, &a, &err), GRPO_OK);
  memset(b.data, 0, sizeof(float) * b.total); /* only the device copy is right now */
  CHECK_EQ_INT(model_params_to_host(&b, &err), GRPO_OK);
  CHECK(memcmp(a.data, b.data, sizeof(float) * a.total) == 0);
  CHECK(model_params_bind(&b, grpo_backend_cpu(), &err) == GRPO_EINVAL); /* one backend at a time */
  model_params_free(&a);
  model_params_free(&b);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  RUN(cpu_bind_is_in_place);
  RUN(train_step_fake_device_equals_cpu);
  RUN(greedy_decode_fake_device_equals_cpu);
  RUN(copy_reaches_the_device);
  MPI_Finalize();
  return test_summary();
}
