/* optim_comm on CUDA backends (label gpu; exits 77 without a device).
 *
 * ctest runs it on one rank: the communicator is NCCL (when the build has
 * it), the all-reduce of one rank returns its input and the broadcast keeps
 * the root's buffer, for one call and for several buckets; GRPO_NCCL=0 gives
 * the MPI path on the same device memory with the same results.
 *
 * On a machine with several GPUs run it by hand on more ranks, one GPU each
 * (rank r uses device r % count):
 *   mpirun -np 2 build/tests/optim/test_optim_comm_gpu
 * the sums and broadcasts are then checked against MPI on the host. With
 * fewer GPUs than ranks NCCL refuses the shared device and the test checks
 * the MPI fallback instead. */
#include <mpi.h>
#include <stdlib.h>

#include "core/backend.h"
#include "core/cuda/backend_cuda.h"
#include "optim/comm.h"
#include "test.h"

static int g_rank, g_size, g_devices;
static grpo_backend *g_be;

#define N ((size_t)(5u << 20) + 123) /* more than one 4M-float bucket */

static float value(int rank, size_t i) {
  return 0.001f * (float)((i * 37 + (size_t)rank * 101) % 997) - 0.25f * (float)rank;
}

static void check_collectives(optim_comm *c, size_t bucket) {
  grpo_error err = {0};
  float *host = malloc(N * sizeof(float)), *want = malloc(N * sizeof(float)),
        *got = malloc(N * sizeof(float));
  float *d = NULL;
  CHECK(host && want && got);
  CHECK_EQ_INT(g_be->alloc(g_be, N * sizeof(float), (void **)&d, &err), GRPO_OK);
  if (!host || !want || !got || !d) goto done;
  for (size_t i = 0; i < N; i++) host[i] = want[i] = value(g_rank, i);
  /* float sums of two addends are exact in any order; more ranks: compare near */
  MPI_Allreduce(MPI_IN_PLACE, want, (int)N, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  CHECK_EQ_INT(g_be->copy_h2d(g_be, d, host, N * sizeof(float), &err), GRPO_OK);
  int rc = optim_comm_allreduce_sum(c, d, N, bucket, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  CHECK_EQ_INT(g_be->copy_d2h(g_be, got, d, N * sizeof(float), &err), GRPO_OK);
  size_t bad = 0;
  for (size_t i = 0; i < N; i++)
    if (g_size <= 2 ? got[i] != want[i] : fabsf(got[i] - want[i]) > 1e-5f * (1 + fabsf(want[i]))) bad++;
  CHECK_MSG(bad == 0, "%zu of %zu sums differ (%s, bucket %zu)", bad, N, optim_comm_transport(c), bucket);
  /* broadcast from the last rank */
  int root = g_size - 1;
  CHECK_EQ_INT(g_be->copy_h2d(g_be, d, host, N * sizeof(float), &err), GRPO_OK);
  rc = optim_comm_bcast(c, d, N, root, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  CHECK_EQ_INT(g_be->copy_d2h(g_be, got, d, N * sizeof(float), &err), GRPO_OK);
  bad = 0;
  for (size_t i = 0; i < N; i++)
    if (got[i] != value(root, i)) bad++;
  CHECK_MSG(bad == 0, "%zu of %zu broadcast floats differ (%s)", bad, N, optim_comm_transport(c));
done:
  if (d) g_be->free(g_be, d);
  free(host);
  free(want);
  free(got);
}

TEST(nccl_when_built_with_it) {
  grpo_error err = {0};
  optim_comm *c = NULL;
  unsetenv("GRPO_NCCL");
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, g_be, "test", &err), GRPO_OK);
  if (!c) return;
#if GRPO_HAVE_NCCL
  if (g_devices >= g_size)
    CHECK_MSG(optim_comm_is_nccl(c), "fell back to MPI: %s", optim_comm_reason(c));
#endif
  if (g_rank == 0) printf("transport: %s %s\n", optim_comm_transport(c), optim_comm_reason(c));
  check_collectives(c, 0);        /* one call */
  check_collectives(c, 1u << 20); /* six buckets, the last partial */
  optim_comm_destroy(c);
}

TEST(grpo_nccl_0_uses_mpi_on_the_device) {
  grpo_error err = {0};
  optim_comm *c = NULL;
  setenv("GRPO_NCCL", "0", 1);
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, g_be, "test", &err), GRPO_OK);
  unsetenv("GRPO_NCCL");
  if (!c) return;
  CHECK(!optim_comm_is_nccl(c));
  CHECK(strstr(optim_comm_reason(c), "GRPO_NCCL=0") != NULL);
  check_collectives(c, 0);
  optim_comm_destroy(c);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_devices = grpo_backend_cuda_device_count();
  int min_devices = g_devices;
  MPI_Allreduce(&g_devices, &min_devices, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (min_devices == 0) {
    if (g_rank == 0) printf("no CUDA device: skipped\n");
    MPI_Finalize();
    return 77;
  }
  grpo_cuda_options o = {.device = g_rank % g_devices, .act_dtype = GRPO_F32};
  grpo_error err = {0};
  int rc = grpo_backend_cuda_create(&o, &g_be, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  if (!rc) {
    RUN(nccl_when_built_with_it);
    RUN(grpo_nccl_0_uses_mpi_on_the_device);
    grpo_backend_cuda_destroy(g_be);
  }
  int failed = test_cases_failed_ + (rc != GRPO_OK), any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) test_summary();
  MPI_Finalize();
  return any ? 1 : 0;
}
