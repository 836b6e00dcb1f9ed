#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include "core/backend_cpu_internal.h"
#include "core/sgemm_peak.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

int grpo_sgemm_peak_measure(int n, double min_seconds, grpo_sgemm_peak *out, grpo_error *err) {
  if (n <= 0 || n > 32768) return GRPO_FAIL(err, GRPO_EINVAL, "sgemm peak: size %d out of range [1, 32768]", n);
  size_t nn = (size_t)n * n;
  float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
  if (!a || !b || !c) {
    free(a), free(b), free(c);
    return GRPO_FAIL(err, GRPO_ENOMEM, "sgemm peak: cannot allocate 3 x %d x %d floats", n, n);
  }
  for (size_t i = 0; i < nn; i++) {
    a[i] = (float)((i * 7) % 13) * 0.01f;
    b[i] = (float)((i * 5) % 11) * 0.01f;
  }
  double flop = 2.0 * n * (double)n * n;
  /* the yardstick is OpenBLAS's own threaded sgemm with as many threads as
   * OpenMP has (the backend itself keeps OpenBLAS at one thread and splits
   * products over OpenMP; see cpu_sgemm) */
  int saved = openblas_get_num_threads(), threads = omp_get_max_threads();
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm-up: thread pool, pages */
  double best = 0.0, total = 0.0, cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  int calls = 0;
  while (calls < 3 || total < min_seconds) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double dt = now_s() - t0;
    total += dt;
    calls++;
    if (dt > 0 && flop / dt > best) best = flop / dt;
  }
  double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  out->n = n;
  out->threads = openblas_get_num_threads();
  openblas_set_num_threads(saved);
  out->calls = calls;
  out->best_gflops = best * 1e-9;
  out->mean_gflops = flop * calls / total * 1e-9;
  out->cpu_gflops = cpu > 0 ? flop * calls / cpu * out->threads * 1e-9 : 0.0;
  free(a), free(b), free(c);
  return GRPO_OK;
}
