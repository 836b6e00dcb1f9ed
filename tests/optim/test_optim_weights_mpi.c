/* The weight broadcast through the rollout cluster's own transport
 * (rollout_cluster.bcast), the plumbing the trainer uses for NCCL, checked
 * without a GPU: trainer rank 0 and the workers hold the weights in fake
 * device memory (CPU ops reporting kind CUDA) and the transport is
 * optim_comm_bcast over weights_comm (its staged MPI path here). Every
 * worker ends with rank 0's device weights for every version, the host
 * buffers are left alone and weights_received is never called.
 * Runs on 3 ranks: rank 0 trains, ranks 1 and 2 are workers. */
#include <mpi.h>
#include <stdlib.h>

#include "core/backend.h"
#include "optim/comm.h"
#include "rollout/worker.h"
#include "../fake_device.h"
#include "test.h"

#define N 3000

static int g_rank, g_size;
typedef struct wlink {
  optim_comm *comm;
  float *dev;       /* this rank's device weights */
  int calls;
} wlink;

static int transport(void *ctx, float *host, size_t n, grpo_error *err) {
  wlink *l = ctx;
  (void)host;
  l->calls++;
  return optim_comm_bcast(l->comm, l->dev, n, 0, NULL, err);
}

static int received_calls;
static int on_received(void *ctx, grpo_error *err) {
  (void)ctx, (void)err;
  received_calls++;
  return GRPO_OK;
}

static float weight(int version, int i) { return (float)version + 0.001f * (float)(i % 1000); }

static void run(void) {
  grpo_error err = {0};
  rollout_cluster cl;
  CHECK_EQ_INT(rollout_cluster_init(&cl, MPI_COMM_WORLD, 1, &err), GRPO_OK);
  wlink l = {0};
  CHECK_EQ_INT(fake_device()->alloc(fake_device(), N * sizeof(float), (void **)&l.dev, &err), GRPO_OK);
  CHECK_EQ_INT(optim_comm_create(&l.comm, cl.weights_comm, fake_device(), "weight broadcast", &err), GRPO_OK);
  cl.bcast = transport;
  cl.bcast_ctx = &l;
  float *host = malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) host[i] = -1.0f;
  if (g_rank == 0) {
    for (int v = 1; v <= 3; v++) {
      float w[N];
      for (int i = 0; i < N; i++) w[i] = weight(v, i);
      fake_device()->copy_h2d(fake_device(), l.dev, w, sizeof w, &err);
      CHECK_EQ_INT(rollout_broadcast_weights(&cl, (uint32_t)v, host, N, &err), GRPO_OK);
    }
    CHECK_EQ_INT(l.calls, 3);
    CHECK_EQ_INT(rollout_shutdown_workers(&cl, &err), GRPO_OK);
  } else {
    rollout_worker_options o = {.weights = host, .n_weights = N, .weights_received = on_received};
    CHECK_EQ_INT(rollout_worker_loop(&cl, &o, &err), GRPO_OK);
    CHECK_EQ_INT(l.calls, 3);
    float got[N];
    fake_device()->copy_d2h(fake_device(), got, l.dev, sizeof got, &err);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += got[i] != weight(3, i);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(received_calls, 0);
  }
  for (int i = 0; i < N; i++) CHECK(host[i] == -1.0f); /* the host buffers stay untouched */
  free(host);
  optim_comm_destroy(l.comm);
  fake_device()->free(fake_device(), l.dev);
  rollout_cluster_free(&cl);
}

TEST(device_transport_replaces_mpi_bcast) { run(); }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  RUN(device_transport_replaces_mpi_bcast);
  int failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) test_summary();
  MPI_Finalize();
  return any ? 1 : 0;
}
