/* Measures this machine's single-precision matmul peak: large square
 * row-major sgemm through OpenBLAS with all its threads, the yardstick that
 * bench/ reports achieved FLOP/s against. */
#ifndef GRPO_CORE_SGEMM_PEAK_H
#define GRPO_CORE_SGEMM_PEAK_H

#include "core/error.h"

typedef struct grpo_sgemm_peak {
  int n;              /* matrix size used */
  int threads;        /* OpenBLAS threads */
  int calls;          /* timed sgemm calls */
  double best_gflops; /* fastest single call, 2 n^3 / seconds / 1e9 */
  double mean_gflops; /* all timed calls together */
  /* FLOPs per second of process CPU time, times the thread count: what the
   * threads reach when they are not descheduled (on a shared, loaded machine
   * the wall-clock figures above drop, this one much less) */
  double cpu_gflops;
} grpo_sgemm_peak;

/* Times C = A B on n x n matrices (after one untimed warm-up call) until
 * min_seconds have passed and at least 3 calls were made. */
int grpo_sgemm_peak_measure(int n, double min_seconds, grpo_sgemm_peak *out, grpo_error *err);

#endif
