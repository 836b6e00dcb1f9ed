#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo train RUN.yaml [section.key=value ...]\n"
    "\n"
    "Runs GRPO or P-GRPO as described by RUN.yaml. Launch under mpirun for\n"
    "several ranks (see launch/grpo-run). Any config key can be overridden,\n"
    "e.g. trainer.beta=0.04 optim.lr=1e-6. Writes checkpoints, metrics.jsonl,\n"
    "config.yaml and summary.json to output_dir (default runs/<run_name>).\n"
    "SIGUSR1/SIGTERM write a checkpoint at the next step and exit 0.\n";

int cmd_train(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("train", "issue #8, the GRPO / P-GRPO trainer");
}
