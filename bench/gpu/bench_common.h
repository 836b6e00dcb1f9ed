/* Shared by bench/gpu_train and bench/gpu_rollout (header only): the
 * Qwen2.5-0.5B-shaped config (and the --tiny one for a CPU smoke run), the
 * backend from --device / --act, device memory and name, wall time.
 *
 * Device memory is cudaMemGetInfo's used = total - free (the whole device, so
 * other processes on the GPU count too); on the CPU it is the process's
 * current RSS (of the machine's RAM). GRPO_HAVE_CUDA comes from grpo_cuda's public definitions. */
#ifndef GRPO_BENCH_GPU_COMMON_H
#define GRPO_BENCH_GPU_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <math.h>

#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "core/philox.h"
#include "model/model_config.h"
#include "model/params.h"

#ifdef GRPO_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Qwen2.5-0.5B (config.json of Qwen/Qwen2.5-0.5B): hidden 896, 24 layers,
 * 14 heads / 2 KV heads of 64, FFN 4864, vocab 151936, tied embeddings, q/k/v
 * bias, rope theta 1e6, eps 1e-6. tiny: hidden 128, 2 layers, 4 / 2 heads of
 * 32, FFN 384, vocab 4096 (same structure, seconds on a CPU). layers > 0
 * overrides the layer count. */
static inline int bench_qwen_config(model_config *cfg, int tiny, int layers, grpo_error *err) {
  model_config_defaults(cfg, MODEL_ARCH_QWEN2);
  if (tiny) {
    cfg->hidden = 128, cfg->n_layers = 2, cfg->n_heads = 4, cfg->n_kv_heads = 2;
    cfg->head_dim = 32, cfg->ffn = 384, cfg->vocab = 4096;
  } else {
    cfg->hidden = 896, cfg->n_layers = 24, cfg->n_heads = 14, cfg->n_kv_heads = 2;
    cfg->head_dim = 64, cfg->ffn = 4864, cfg->vocab = 151936;
  }
  if (layers > 0) cfg->n_layers = layers;
  cfg->max_pos = 32768;
  cfg->rope_theta = 1e6;
  cfg->rms_eps = 1e-6f;
  cfg->qkv_bias = 1;
  cfg->tie_embeddings = 1;
  return model_config_validate(cfg, tiny ? "qwen2.5-tiny" : "qwen2.5-0.5b", err);
}

/* Matmul weights of the decoder layers (q, k, v, o, gate, up, down): the N of
 * "6 N" (embedding and lm_head excluded; biases and norms are not matmuls). */
static inline double bench_layer_matmul_params(const model_config *c) {
  double H = c->hidden, qd = (double)c->n_heads * c->head_dim, kd = (double)c->n_kv_heads * c->head_dim;
  return (double)c->n_layers * (H * qd + 2 * H * kd + qd * H + 3 * H * c->ffn);
}

/* Random weights, fast: every matrix ~ U(-a, a) with a = std * sqrt(3) (std
 * as model_params_init_random's N(0, std^2)), biases 0, norm weights 1.
 * Stateless Philox draws keyed by (tensor, index), filled by all OpenMP
 * threads: about a second for 0.5 B parameters where the Box-Muller init of
 * model_params_init_random takes tens of seconds of a single core. */
static inline void bench_init_weights(model_params *p, uint64_t seed, float std) {
  const float a = std * sqrtf(3.0f);
  for (int t = 0; t < p->n; t++) {
    const model_param_info *in = &p->info[t];
    float *x = p->data + in->offset;
    const int64_t n = (int64_t)in->numel;
    if (in->ndim == 1) {
      int norm = in->role == MODEL_P_INPUT_NORM || in->role == MODEL_P_POST_NORM ||
                 in->role == MODEL_P_FINAL_NORM || in->role == MODEL_P_Q_NORM || in->role == MODEL_P_K_NORM;
      for (int64_t i = 0; i < n; i++) x[i] = norm ? 1.0f : 0.0f;
      continue;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
      x[i] = a * (2.0f * grpo_rng_uniform(seed, GRPO_RNG_INIT, (uint32_t)t, (uint32_t)i,
                                          (uint32_t)((uint64_t)i >> 32), 0) - 1.0f);
  }
}

/* --device cpu|cuda, --act bf16|f32 -> a backend (CPU: f32 only). */
static inline int bench_backend(const char *device, const char *act, grpo_backend **be, grpo_error *err) {
  *be = NULL;
  if (!strcmp(device, "cpu")) {
    if (strcmp(act, "f32"))
      return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "the CPU backend computes in f32 (pass --act f32)");
    *be = grpo_backend_cpu();
    return GRPO_OK;
  }
  if (strcmp(device, "cuda")) return GRPO_FAIL(err, GRPO_EINVAL, "--device must be cpu or cuda");
  grpo_cuda_options o = {.device = 0, .act_dtype = !strcmp(act, "f32") ? GRPO_F32 : GRPO_BF16};
  if (strcmp(act, "f32") && strcmp(act, "bf16"))
    return GRPO_FAIL(err, GRPO_EINVAL, "--act must be bf16 or f32");
  return grpo_backend_cuda_create(&o, be, err);
}

static inline void bench_backend_free(grpo_backend *be) {
  if (be && be->kind == GRPO_DEVICE_CUDA) grpo_backend_cuda_destroy(be);
}

/* Bytes in use: the device's used memory (CUDA) or this process's RSS (CPU). */
static inline double bench_mem_used(const grpo_backend *be, double *total) {
  *total = 0;
#ifdef GRPO_HAVE_CUDA
  if (be->kind == GRPO_DEVICE_CUDA) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) return -1;
    *total = (double)tot;
    return (double)(tot - fr);
  }
#endif
  *total = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

/* Peak: the device has no peak counter for cudaMalloc'd memory, so the CUDA
 * number is the largest bench_mem_used sample; on the CPU, ru_maxrss. */
static inline double bench_cpu_peak_rss(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss * 1024.0;
}

static inline void bench_device_name(const grpo_backend *be, char *buf, size_t cap) {
  snprintf(buf, cap, "cpu");
#ifdef GRPO_HAVE_CUDA
  if (be->kind == GRPO_DEVICE_CUDA) {
    struct cudaDeviceProp prop;
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
      snprintf(buf, cap, "%s", prop.name);
    else
      snprintf(buf, cap, "cuda (unknown)");
  }
#endif
}

/* Sort helper for medians. */
static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static inline double bench_median(const double *v, int n) {
  if (n <= 0) return 0;
  double *s = malloc(sizeof(double) * (size_t)n);
  if (!s) return v[0];
  memcpy(s, v, sizeof(double) * (size_t)n);
  qsort(s, (size_t)n, sizeof(double), bench_cmp_double);
  double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  free(s);
  return m;
}

#define BENCH_GIB (1024.0 * 1024.0 * 1024.0)

#endif
