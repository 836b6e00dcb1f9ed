/* How long the trainer's gradient all-reduce (optim_allreduce_sum, bucketed)
 * takes for a model's gradient, against memcpy of the same bytes on one rank
 * (the hardware yardstick on one node), so the time an overlap with the
 * backward pass could hide is known:
 *
 *   mpirun -np 2 build/bench/allreduce_cpu/bench_allreduce_cpu [--floats N] [--iters K]
 *
 * Default N = 38.94 M floats, the gradient of bench/model_cpu's model. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/progress.h"
#include "optim/optim.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, world;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  size_t n = 38940000;
  int iters = 5;
  for (int i = 1; i + 1 < argc; i++) {
    if (strcmp(argv[i], "--floats") == 0) n = (size_t)atoll(argv[++i]);
    else if (strcmp(argv[i], "--iters") == 0) iters = atoi(argv[++i]);
  }
  float *g = malloc(sizeof(float) * n), *h = malloc(sizeof(float) * n);
  if (!g || !h) {
    fprintf(stderr, "out of memory for %zu floats\n", n);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (size_t i = 0; i < n; i++) g[i] = h[i] = (float)(i % 97) * 1e-3f;
  grpo_error err = {0};
  double best = 1e30, best_copy = 1e30;
  for (int it = 0; it <= iters; it++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = grpo_now_seconds();
    if (optim_allreduce_sum(g, n, MPI_COMM_WORLD, 0, &err)) {
      fprintf(stderr, "rank %d: %s\n", rank, err.msg);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double t = grpo_now_seconds() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    t0 = grpo_now_seconds();
    memcpy(h, g, sizeof(float) * n);
    double c = grpo_now_seconds() - t0;
    if (it > 0 && t < best) best = t; /* the first call warms the buffers */
    if (it > 0 && c < best_copy) best_copy = c;
  }
  if (rank == 0) {
    double mb = (double)n * sizeof(float) / 1e6;
    printf("ranks %d, %zu floats (%.1f MB): all-reduce %.4f s (%.2f GB/s of gradient), memcpy %.4f s; ratio %.1fx\n",
           world, n, mb, best, mb / 1e3 / best, best_copy, best / best_copy);
  }
  free(g);
  free(h);
  MPI_Finalize();
  return 0;
}
