/* The trainer's device paths on 2 ranks, on stand-in devices
 * (trainer_session_device_override; see test_train_device.c):
 *  - 2 data-parallel ranks on the f32 stand-in train the CPU's weights bit
 *    for bit (the gradient all-reduce staged through host memory);
 *  - 1 trainer + 1 rollout worker (disaggregated) on the f32 stand-in: the
 *    same, so the worker uploads the broadcast weights before it samples
 *    (through the device sampler) and the trainer gathers what it needs;
 *  - the disaggregated run on the bf16 stand-in completes with finite
 *    losses (the worker refreshes its bf16 working copy). */
#include <math.h>
#include <mpi.h>
#include <unistd.h>

#include "../fake_device.h"
#include "../trainer/train_common.h"
#include "fake_bf16.h"
#include "trainer/session.h"

static char g_tmp[256];
static int g_rank;

static int run_train(const char *name, grpo_backend *be, int disagg, char *dir, size_t cap,
                     grpo_error *err) {
  snprintf(dir, cap, "%s/%s", g_tmp, name);
  const char *dtype = !be ? "model.dtype=auto"
                      : be->act_dtype == GRPO_BF16 ? "model.dtype=bfloat16" : "model.dtype=float32";
  const char *extra[] = {be ? "model.device=cuda" : "model.device=cpu", dtype, "trainer.max_steps=3",
                         "trainer.beta=0.04", "checkpoint.every_steps=3",
                         disagg ? "distributed.mode=disaggregated" : "distributed.mode=colocated",
                         disagg ? "distributed.rollout_ranks=1" : "distributed.rollout_ranks=0", NULL};
  trainer_session_device_override(be);
  int rc = train_run(dir, extra, MPI_COMM_WORLD, NULL, err);
  trainer_session_device_override(NULL);
  MPI_Barrier(MPI_COMM_WORLD);
  return rc;
}

static void same_as_cpu(const char *name, int disagg) {
  char dc[512], dd[512], nc[64], nd[64];
  grpo_error err = {0};
  snprintf(nc, sizeof nc, "%s_cpu", name);
  snprintf(nd, sizeof nd, "%s_dev", name);
  int rc = run_train(nc, NULL, disagg, dc, sizeof dc, &err);
  CHECK_MSG(rc == GRPO_OK, "%s cpu: %s", name, err.msg);
  rc = run_train(nd, fake_device(), disagg, dd, sizeof dd, &err);
  CHECK_MSG(rc == GRPO_OK, "%s stand-in: %s", name, err.msg);
  if (!rc && g_rank == 0) {
    double a = last_metric(dc, "loss"), b = last_metric(dd, "loss");
    CHECK_MSG(a == b, "%s: last loss cpu %.17g stand-in %.17g", name, a, b);
    double w = max_weight_diff(dc, dd);
    CHECK_MSG(w == 0.0, "%s: final weights differ by %g", name, w);
  }
}

TEST(data_parallel_stand_in_equals_cpu) { same_as_cpu("dp", 0); }
TEST(disaggregated_stand_in_equals_cpu) { same_as_cpu("disagg", 1); }

TEST(disaggregated_bf16_stand_in) {
  char d[512];
  grpo_error err = {0};
  int rc = run_train("disagg_bf16", fake_bf16_backend(), 1, d, sizeof d, &err);
  CHECK_MSG(rc == GRPO_OK, "bf16 stand-in: %s", err.msg);
  if (!rc && g_rank == 0) {
    double l = last_metric(d, "loss");
    CHECK_MSG(isfinite(l) && l != -1, "last loss %g", l);
    model_params p;
    CHECK_EQ_INT(final_weights(d, &p, &err), GRPO_OK);
    int finite = 1;
    for (size_t i = 0; i < p.total; i++) finite &= isfinite(p.data[i]) != 0;
    CHECK(finite);
    model_params_free(&p);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/grpo_train_device_mpi_%d", pid);
  RUN(data_parallel_stand_in_equals_cpu);
  RUN(disaggregated_stand_in_equals_cpu);
  RUN(disaggregated_bf16_stand_in);
  int failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) {
    test_summary();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_tmp);
  }
  MPI_Finalize();
  return any ? 1 : 0;
}
