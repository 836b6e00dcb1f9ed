/* The trainer's device paths (model.device: cuda) in every build, on
 * stand-in devices (trainer_session_device_override):
 *  - f32 stand-in (tests/fake_device.h: the CPU ops over memory of its own,
 *    poisoned with NaN): 3 GRPO steps with a KL reference model, the
 *    evaluation on start, checkpoints with optimizer state, and generation
 *    through the device sampler give the CPU run's losses and final weights
 *    bit for bit; stopped after step 2 and resumed, the same again. Any sync
 *    point the trainer misses (weights not uploaded, masters not brought back
 *    before a checkpoint, moments not restored, the reference not on the
 *    device) shows up as NaN or a difference.
 *  - bf16 stand-in (fake_bf16.h): the same run with bf16 activations and
 *    working weights completes with finite losses, within 10% of the CPU's at
 *    step 1, and resumed it ends bit-identical to the straight run (the f32
 *    masters and moments are the whole state). */
#include <math.h>
#include <mpi.h>
#include <unistd.h>

#include "../fake_device.h"
#include "../trainer/train_common.h"
#include "fake_bf16.h"
#include "trainer/session.h"

static char g_tmp[256];


/* be NULL: the CPU; else model.device: cuda on be. */
static int run_train(const char *name, grpo_backend *be, const char *steps, const char *resume,
                     char *dir, size_t cap, grpo_error *err) {
  snprintf(dir, cap, "%s/%s", g_tmp, name);
  const char *dtype = !be ? "model.dtype=auto"
                      : be->act_dtype == GRPO_BF16 ? "model.dtype=bfloat16" : "model.dtype=float32";
  const char *extra[] = {be ? "model.device=cuda" : "model.device=cpu", dtype, steps,
                         "trainer.beta=0.04", "checkpoint.every_steps=1",
                         "checkpoint.save_optimizer=true", "trainer.eval_on_start=true", resume, NULL};
  trainer_session_device_override(be);
  int rc = train_run(dir, extra, MPI_COMM_WORLD, NULL, err);
  trainer_session_device_override(NULL);
  return rc;
}

static int weights_equal(const char *a, const char *b) {
  return max_weight_diff(a, b) == 0.0;
}

TEST(f32_stand_in_equals_cpu) {
  char dc[512], dd[512], dr[512];
  grpo_error err = {0};
  int rc = run_train("cpu", NULL, "trainer.max_steps=3", "checkpoint.resume=never", dc, sizeof dc, &err);
  CHECK_MSG(rc == GRPO_OK, "cpu: %s", err.msg);
  long up = fake_device_h2d;
  rc = run_train("dev", fake_device(), "trainer.max_steps=3", "checkpoint.resume=never", dd, sizeof dd, &err);
  CHECK_MSG(rc == GRPO_OK, "stand-in: %s", err.msg);
  if (rc) return;
  CHECK(fake_device_h2d > up); /* it did run on the stand-in */
  double lc[8], ld[8];
  int nc = metric_series(dc, "loss", lc, 8), nd = metric_series(dd, "loss", ld, 8);
  CHECK_MSG(nc == 3 && nd == 3, "loss lines: cpu %d, stand-in %d", nc, nd);
  for (int i = 0; i < nc && i < nd; i++)
    CHECK_MSG(lc[i] == ld[i], "step %d: loss cpu %.17g stand-in %.17g", i + 1, lc[i], ld[i]);
  CHECK_MSG(weights_equal(dc, dd), "final weights differ by %g", max_weight_diff(dc, dd));
  rc = run_train("dev_resumed", fake_device(), "trainer.max_steps=2", "checkpoint.resume=never", dr,
                 sizeof dr, &err);
  if (!rc)
    rc = run_train("dev_resumed", fake_device(), "trainer.max_steps=3", "checkpoint.resume=auto", dr,
                   sizeof dr, &err);
  CHECK_MSG(rc == GRPO_OK, "stand-in resumed: %s", err.msg);
  if (!rc) CHECK_MSG(weights_equal(dc, dr), "resumed weights differ by %g", max_weight_diff(dc, dr));
}

TEST(bf16_stand_in_trains_and_resumes) {
  char dc[512], dd[512], dr[512];
  grpo_error err = {0};
  int rc = run_train("cpu_b", NULL, "trainer.max_steps=3", "checkpoint.resume=never", dc, sizeof dc, &err);
  CHECK_MSG(rc == GRPO_OK, "cpu: %s", err.msg);
  rc = run_train("bf16", fake_bf16_backend(), "trainer.max_steps=3", "checkpoint.resume=never", dd,
                 sizeof dd, &err);
  CHECK_MSG(rc == GRPO_OK, "bf16 stand-in: %s", err.msg);
  if (rc) return;
  double lc[8], ld[8];
  int nc = metric_series(dc, "loss", lc, 8), nd = metric_series(dd, "loss", ld, 8);
  CHECK_MSG(nc == 3 && nd == 3, "loss lines: cpu %d, bf16 %d", nc, nd);
  for (int i = 0; i < nd; i++) CHECK(isfinite(ld[i]));
  if (nc >= 1 && nd >= 1)
    CHECK_MSG(fabs(lc[0] - ld[0]) <= 0.1 * fabs(lc[0]) + 1e-3, "step 1: loss cpu %.6g bf16 %.6g", lc[0],
              ld[0]);
  double dw = max_weight_diff(dc, dd);
  printf("  bf16 vs f32 after 3 steps: largest weight difference %.3g\n", dw);
  CHECK(dw > 0 && dw < 0.1); /* rounded differently, trained alike (lr 0.01) */
  rc = run_train("bf16_resumed", fake_bf16_backend(), "trainer.max_steps=2", "checkpoint.resume=never", dr,
                 sizeof dr, &err);
  if (!rc)
    rc = run_train("bf16_resumed", fake_bf16_backend(), "trainer.max_steps=3", "checkpoint.resume=auto", dr,
                   sizeof dr, &err);
  CHECK_MSG(rc == GRPO_OK, "bf16 resumed: %s", err.msg);
  if (!rc) CHECK_MSG(weights_equal(dd, dr), "resumed weights differ by %g", max_weight_diff(dd, dr));
  CHECK_EQ_INT(fake_bf16_live_allocations(), 0);
}

TEST(dtype_must_match_the_stand_in) {
  char d[512];
  grpo_error err = {0};
  char od[600];
  snprintf(d, sizeof d, "%s/mismatch", g_tmp);
  snprintf(od, sizeof od, "output_dir=%s", d);
  const char *extra[] = {od, "model.device=cuda", "model.dtype=float32", "trainer.max_steps=1", NULL};
  grpo_config cfg;
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  trainer_session_device_override(fake_bf16_backend());
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err);
  trainer_session_device_override(NULL);
  CHECK(rc == GRPO_EINVAL && strstr(err.msg, "model.dtype") != NULL);
  grpo_config_free(&cfg);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/grpo_train_device_test_%d", (int)getpid());
  RUN(f32_stand_in_equals_cpu);
  RUN(bf16_stand_in_trains_and_resumes);
  RUN(dtype_must_match_the_stand_in);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_tmp);
  MPI_Finalize();
  return test_summary();
}
