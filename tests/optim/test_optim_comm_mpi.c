/* optim_comm without a GPU (2 ranks): on the CPU backend, and on a fake
 * device (CPU ops reporting kind CUDA, so every buffer is staged through
 * host memory), the communicator falls back to MPI; its all-reduce equals
 * the plain MPI sum bit for bit and its broadcast equals MPI_Bcast, for one
 * bucket and for several; GRPO_NCCL=0 is respected and named as the reason,
 * also when only one rank sets it. */
#include <mpi.h>
#include <stdlib.h>

#include "core/backend.h"
#include "optim/comm.h"
#include "optim/optim.h"
#include "../fake_device.h"
#include "test.h"

static int g_rank, g_size;


#define N 1000

static float value(int rank, int i) { return 0.001f * (float)((i * 37 + rank * 101) % 997) - 0.3f * (float)rank; }

/* The all-reduce and broadcast through c on backend be equal plain MPI. */
static void check_collectives(grpo_backend *be, optim_comm *c, size_t bucket) {
  grpo_error err = {0};
  float host[N], want[N], got[N];
  for (int i = 0; i < N; i++) host[i] = want[i] = value(g_rank, i);
  CHECK_EQ_INT(MPI_Allreduce(MPI_IN_PLACE, want, N, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), MPI_SUCCESS);
  float *buf = NULL;
  CHECK_EQ_INT(be->alloc(be, sizeof host, (void **)&buf, &err), GRPO_OK);
  CHECK_EQ_INT(be->copy_h2d(be, buf, host, sizeof host, &err), GRPO_OK);
  CHECK_EQ_INT(optim_comm_allreduce_sum(c, buf, N, bucket, NULL, &err), GRPO_OK);
  CHECK_EQ_INT(be->copy_d2h(be, got, buf, sizeof got, &err), GRPO_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);
  /* with a caller stage too (host memory for min(n, bucket) floats) */
  float stage[N];
  CHECK_EQ_INT(be->copy_h2d(be, buf, host, sizeof host, &err), GRPO_OK);
  CHECK_EQ_INT(optim_comm_allreduce_sum(c, buf, N, bucket, stage, &err), GRPO_OK);
  CHECK_EQ_INT(be->copy_d2h(be, got, buf, sizeof got, &err), GRPO_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);
  /* broadcast from the last rank */
  int root = g_size - 1;
  for (int i = 0; i < N; i++) want[i] = value(root, i);
  CHECK_EQ_INT(be->copy_h2d(be, buf, host, sizeof host, &err), GRPO_OK);
  CHECK_EQ_INT(optim_comm_bcast(c, buf, N, root, NULL, &err), GRPO_OK);
  CHECK_EQ_INT(be->copy_d2h(be, got, buf, sizeof got, &err), GRPO_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);
  CHECK_EQ_INT(optim_comm_bcast(c, buf, N, g_size, NULL, &err), GRPO_EINVAL);
  be->free(be, buf);
}

TEST(cpu_backend_falls_back_to_mpi) {
  grpo_error err = {0};
  optim_comm *c = NULL;
  unsetenv("GRPO_NCCL");
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, grpo_backend_cpu(), "test", &err), GRPO_OK);
  if (!c) return;
  CHECK(!optim_comm_is_nccl(c));
  CHECK_STR(optim_comm_transport(c), "mpi");
  CHECK(strstr(optim_comm_reason(c), "CUDA backend") != NULL);
  CHECK_EQ_INT(optim_comm_rank(c), g_rank);
  CHECK_EQ_INT(optim_comm_size(c), g_size);
  CHECK(optim_comm_mpi(c) == MPI_COMM_WORLD);
  check_collectives(grpo_backend_cpu(), c, 0);
  check_collectives(grpo_backend_cpu(), c, 64); /* several buckets, one partial */
  optim_comm_destroy(c);
  /* host memory: be NULL */
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, NULL, "test", &err), GRPO_OK);
  CHECK(!optim_comm_is_nccl(c));
  optim_comm_destroy(c);
  optim_comm_destroy(NULL);
}

TEST(fake_device_stages_through_host) {
  grpo_error err = {0};
  optim_comm *c = NULL;
  unsetenv("GRPO_NCCL");
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, fake_device(), "test", &err), GRPO_OK);
  if (!c) return;
  CHECK(!optim_comm_is_nccl(c)); /* kind CUDA, but not a real CUDA backend */
  long before = (fake_device_h2d + fake_device_d2h);
  check_collectives(fake_device(), c, 0);
  check_collectives(fake_device(), c, 64);
  CHECK((fake_device_h2d + fake_device_d2h) > before + 8); /* the staged paths moved bucket by bucket */
  optim_comm_destroy(c);
}

/* the trainer's call, before and after: optim_comm_allreduce_sum over MPI
 * equals optim_allreduce_sum_be on the same communicator */
TEST(equals_allreduce_sum_be) {
  grpo_error err = {0};
  optim_comm *c = NULL;
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, fake_device(), "test", &err), GRPO_OK);
  if (!c) return;
  float host[N], a[N], b[N];
  for (int i = 0; i < N; i++) host[i] = value(g_rank, i) * 3.0f;
  float *d = NULL;
  CHECK_EQ_INT(fake_device()->alloc(fake_device(), sizeof host, (void **)&d, &err), GRPO_OK);
  fake_device()->copy_h2d(fake_device(), d, host, sizeof host, &err);
  CHECK_EQ_INT(optim_allreduce_sum_be(fake_device(), d, N, MPI_COMM_WORLD, 100, NULL, &err), GRPO_OK);
  fake_device()->copy_d2h(fake_device(), a, d, sizeof a, &err);
  fake_device()->copy_h2d(fake_device(), d, host, sizeof host, &err);
  CHECK_EQ_INT(optim_comm_allreduce_sum(c, d, N, 100, NULL, &err), GRPO_OK);
  fake_device()->copy_d2h(fake_device(), b, d, sizeof b, &err);
  CHECK(memcmp(a, b, sizeof a) == 0);
  fake_device()->free(fake_device(), d);
  optim_comm_destroy(c);
}

TEST(grpo_nccl_0_is_respected) {
  grpo_error err = {0};
  optim_comm *c = NULL;
  setenv("GRPO_NCCL", "0", 1);
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, grpo_backend_cpu(), "test", &err), GRPO_OK);
  if (!c) return;
  CHECK(!optim_comm_is_nccl(c));
  CHECK(strstr(optim_comm_reason(c), "GRPO_NCCL=0") != NULL);
  check_collectives(grpo_backend_cpu(), c, 0);
  optim_comm_destroy(c);
  /* "off" too, set on the last rank only: every rank agrees on MPI */
  if (g_rank == g_size - 1)
    setenv("GRPO_NCCL", "off", 1);
  else
    unsetenv("GRPO_NCCL");
  CHECK_EQ_INT(optim_comm_create(&c, MPI_COMM_WORLD, fake_device(), "test", &err), GRPO_OK);
  if (!c) return;
  CHECK(!optim_comm_is_nccl(c));
  /* the reason is the same text on every rank */
  char mine[512], first[512];
  snprintf(mine, sizeof mine, "%s", optim_comm_reason(c));
  memcpy(first, mine, sizeof first);
  MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
  CHECK_STR(mine, first);
  CHECK(mine[0] != '\0');
  check_collectives(fake_device(), c, 0);
  optim_comm_destroy(c);
  unsetenv("GRPO_NCCL");
}

/* a communicator of a sub-group (the trainer's split in disaggregated mode) */
TEST(sub_communicator) {
  grpo_error err = {0};
  MPI_Comm sub;
  MPI_Comm_split(MPI_COMM_WORLD, g_rank % 2, g_rank, &sub);
  optim_comm *c = NULL;
  CHECK_EQ_INT(optim_comm_create(&c, sub, grpo_backend_cpu(), "test", &err), GRPO_OK);
  if (c) {
    int sr;
    MPI_Comm_rank(sub, &sr);
    CHECK_EQ_INT(optim_comm_rank(c), sr);
    float v[3] = {1, 2, 3};
    CHECK_EQ_INT(optim_comm_allreduce_sum(c, v, 3, 0, NULL, &err), GRPO_OK);
    CHECK_EQ_INT((int)v[2], 3 * optim_comm_size(c));
    optim_comm_destroy(c);
  }
  MPI_Comm_free(&sub);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  RUN(cpu_backend_falls_back_to_mpi);
  RUN(fake_device_stages_through_host);
  RUN(equals_allreduce_sum_be);
  RUN(grpo_nccl_0_is_respected);
  RUN(sub_communicator);
  int failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) test_summary();
  MPI_Finalize();
  return any ? 1 : 0;
}
