/* Two ranks with half the batch each take the same AdamW steps as one rank
 * with the whole batch: gradients are summed across ranks, clipped by the
 * global norm, and the update is identical everywhere. */
#include <mpi.h>

#include "optim/optim.h"
#include "test.h"

#define N_DATA 16
#define DIM 6
#define STEPS 6

static int g_rank, g_size;

/* grad of sum_i (x_i . w - y_i)^2 over rows [lo, hi) */
static void lsq_grad(const float *w, int lo, int hi, float *grad) {
  memset(grad, 0, sizeof(float) * DIM);
  for (int i = lo; i < hi; i++) {
    float x[DIM], r = 0;
    for (int d = 0; d < DIM; d++) {
      x[d] = sinf(0.7f * (float)(i * DIM + d) + 0.3f);
      r += x[d] * w[d];
    }
    r -= cosf((float)i);
    for (int d = 0; d < DIM; d++) grad[d] += 2.0f * r * x[d];
  }
}

static void train(int distributed, size_t bucket, float *w) {
  grpo_backend *be = grpo_backend_cpu();
  optim_group groups[2] = {{0, DIM - 2, 1}, {DIM - 2, 2, 0}};
  optim_adamw o;
  grpo_error err = {0};
  CHECK_EQ_INT(optim_adamw_init(&o, be, DIM, groups, 2, 0.9f, 0.999f, 1e-8f, 0.05f, &err), GRPO_OK);
  optim_schedule sched = {OPTIM_SCHEDULE_COSINE, 0.05, 2, STEPS, 0.1};
  for (int d = 0; d < DIM; d++) w[d] = 0.1f * (float)d;
  for (int s = 1; s <= STEPS; s++) {
    float grad[DIM];
    if (distributed) {
      int per = N_DATA / g_size;
      lsq_grad(w, g_rank * per, (g_rank + 1) * per, grad);
      CHECK_EQ_INT(optim_allreduce_sum(grad, DIM, MPI_COMM_WORLD, bucket, &err), GRPO_OK);
    } else {
      lsq_grad(w, 0, N_DATA, grad);
    }
    double norm = optim_grad_norm(be, grad, DIM);
    optim_adamw_step(&o, w, grad, optim_lr_at(&sched, s), optim_clip_factor(norm, 2.0));
  }
  optim_adamw_free(&o);
}

TEST(rank_split_equals_single_rank) {
  float whole[DIM], split[DIM], split_small_buckets[DIM];
  train(0, 0, whole);
  train(1, 0, split);
  train(1, 4, split_small_buckets); /* several buckets, one partial */
  for (int d = 0; d < DIM; d++) {
    CHECK_NEAR(split[d], whole[d], 1e-5 * (1 + fabs(whole[d])));
    CHECK(split[d] == split_small_buckets[d]);
  }
  /* every rank holds the same weights bit for bit */
  float first[DIM];
  memcpy(first, split, sizeof first);
  MPI_Bcast(first, DIM, MPI_FLOAT, 0, MPI_COMM_WORLD);
  CHECK(memcmp(first, split, sizeof first) == 0);
  /* and training moved them */
  CHECK(fabs(whole[0] - 0.0) > 1e-3);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  RUN(rank_split_equals_single_rank);
  int failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) test_summary();
  MPI_Finalize();
  return any ? 1 : 0;
}
