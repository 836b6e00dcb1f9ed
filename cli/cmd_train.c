#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/config.h"
#include "core/log.h"
#include "trainer/train.h"

static const char USAGE_TRAIN[] =
    "usage: grpo train RUN.yaml [section.key=value ...]\n"
    "\n"
    "Runs GRPO as described by RUN.yaml. Launch under mpirun for several ranks\n"
    "(see launch/grpo-run). Any config key can be overridden, e.g.\n"
    "trainer.beta=0.04 optim.lr=1e-6. Writes checkpoints/, metrics.jsonl,\n"
    "config.yaml and summary.json to output_dir (default runs/<run_name>).\n"
    "checkpoint.resume=auto continues from the latest checkpoint. SIGUSR1 or\n"
    "SIGTERM write a checkpoint at the next step and exit 0.\n";

static const char USAGE_SFT[] =
    "usage: grpo sft RUN.yaml [section.key=value ...]\n"
    "\n"
    "Supervised fine-tuning on data.sft_path (prompt / completion JSONL) or on\n"
    "the worked solutions of data.task (the synthetic arithmetic task, or a\n"
    "dataset layout with a solution field), with sequence packing. Uses the\n"
    "trainer.sft_* keys and the optim section; writes the same run directory\n"
    "as grpo train.\n";

int cmd_train_or_sft(int argc, char **argv, int sft) {
  const char *usage = sft ? USAGE_SFT : USAGE_TRAIN;
  if (cli_wants_help(argc, argv)) {
    fputs(usage, stdout);
    return 0;
  }
  if (argc < 2 || argv[1][0] == '-') {
    fputs(usage, stderr);
    return 2;
  }
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  grpo_config cfg;
  grpo_error err = {0};
  int rc = grpo_config_load(&cfg, argv[1], argc - 2, (const char *const *)argv + 2, &err);
  if (rc) {
    if (rank == 0) fprintf(stderr, "grpo %s: %s\n", sft ? "sft" : "train", err.msg);
    MPI_Finalize();
    return 1;
  }
  grpo_log_set_level((grpo_log_level)cfg.logging.level);
  trainer_install_signal_handlers();
  trainer_summary sum;
  rc = sft ? trainer_sft(&cfg, MPI_COMM_WORLD, &sum, &err) : trainer_train(&cfg, MPI_COMM_WORLD, &sum, &err);
  if (rc) {
    fprintf(stderr, "grpo %s: rank %d: %s\n", sft ? "sft" : "train", rank, err.msg);
    grpo_config_free(&cfg);
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    /* a failure on one rank must end the whole job, never leave peers waiting */
    if (world > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    return 1;
  }
  if (rank == 0)
    GRPO_INFO("done: %ld steps in %.1f s (final step %ld)%s", sum.steps_done, sum.wall_seconds,
              sum.final_step, sum.stopped_by_signal ? ", stopped by a signal" : "");
  grpo_config_free(&cfg);
  MPI_Finalize();
  return 0;
}

int cmd_train(int argc, char **argv) { return cmd_train_or_sft(argc, argv, 0); }
