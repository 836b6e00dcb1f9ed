/* A shortened quickstart on 2 ranks (label slow): SFT warm-up on the
 * synthetic task, then 200 GRPO steps with the math verifier reward, and the
 * held-out accuracy must rise. configs/quickstart.yaml as shipped, with a
 * shorter, constant-LR GRPO phase. */
#include <mpi.h>
#include <unistd.h>

#include "test.h"
#include "trainer/train.h"

static int g_rank;
static char g_tmp[256];

TEST(sft_then_grpo_raises_accuracy) {
  char sft_dir[400], o1[500], o2[500], mp[500];
  snprintf(sft_dir, sizeof sft_dir, "%s/sft", g_tmp);
  snprintf(o1, sizeof o1, "output_dir=%s", sft_dir);
  snprintf(o2, sizeof o2, "output_dir=%s/grpo", g_tmp);
  snprintf(mp, sizeof mp, "model.path=%s", sft_dir);
  const char *quiet[] = {"logging.progress=false", "logging.level=warn"};
  grpo_config cfg;
  grpo_error err = {0};
  const char *sft[] = {o1, quiet[0], quiet[1]};
  CHECK_EQ_INT(grpo_config_load(&cfg, test_path("configs/quickstart.yaml"), 3, sft, &err), GRPO_OK);
  trainer_summary s;
  int rc = trainer_sft(&cfg, MPI_COMM_WORLD, &s, &err);
  CHECK_MSG(rc == GRPO_OK, "sft: %s", err.msg);
  grpo_config_free(&cfg);
  const char *grpo[] = {o2, mp, quiet[0], quiet[1], "trainer.max_steps=200", "trainer.eval_steps=0",
                        "trainer.eval_on_start=true", "optim.schedule=constant"};
  CHECK_EQ_INT(grpo_config_load(&cfg, test_path("configs/quickstart.yaml"), 8, grpo, &err), GRPO_OK);
  rc = trainer_train(&cfg, MPI_COMM_WORLD, &s, &err);
  CHECK_MSG(rc == GRPO_OK, "grpo: %s", err.msg);
  grpo_config_free(&cfg);
  if (g_rank == 0) {
    printf("held-out accuracy %.4f -> %.4f, reward %.3f -> %.3f\n", s.accuracy_first, s.accuracy_last,
           s.reward_first, s.reward_last);
    /* The trajectory depends on the machine (OpenBLAS picks its sgemm
     * kernels by CPU, `grpo version` names them: Cooperlake on the AMD EPYC
     * below; so runs differ from the first step), so the margins
     * hold on every machine seen: held-out accuracy over 800 samples rose by
     * +0.024 on an AMD EPYC and by more than +0.04 on earlier CI machines,
     * the step reward by ~0.17. A wrong-signed or vanishing update leaves
     * both flat or falling. */
    CHECK_MSG(s.accuracy_last >= s.accuracy_first + 0.015, "accuracy %g -> %g", s.accuracy_first,
              s.accuracy_last);
    CHECK_MSG(s.reward_last >= s.reward_first + 0.05, "reward %g -> %g", s.reward_first,
              s.reward_last);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/grpo_quickstart_test_%d", pid);
  RUN(sft_then_grpo_raises_accuracy);
  int failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_tmp);
    test_summary();
  }
  MPI_Finalize();
  return any ? 1 : 0;
}
