/* Prints this machine's sgemm peak (large square f32 sgemm, all OpenBLAS
 * threads).  Usage: bench_matmul_peak [n=2048] [min_seconds=3] */
#include <stdio.h>
#include <stdlib.h>

#include "core/sgemm_peak.h"

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2048;
  double secs = argc > 2 ? atof(argv[2]) : 3.0;
  grpo_sgemm_peak pk;
  grpo_error err = {0};
  if (grpo_sgemm_peak_measure(n, secs, &pk, &err) != GRPO_OK) {
    fprintf(stderr, "bench_matmul_peak: %s\n", err.msg);
    return 1;
  }
  printf("sgemm n=%d threads=%d calls=%d best=%.1f GFLOP/s mean=%.1f GFLOP/s "
         "per-CPU-time x threads=%.1f GFLOP/s\n",
         pk.n, pk.threads, pk.calls, pk.best_gflops, pk.mean_gflops, pk.cpu_gflops);
  return 0;
}
