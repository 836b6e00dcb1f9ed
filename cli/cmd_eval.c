#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo eval RUN.yaml --ckpt CKPT --sets gsm8k,math500,... [--n N] [--k K]\n"
    "\n"
    "Evaluates a checkpoint on benchmark sets and reports pass@1, pass@k,\n"
    "maj@k, best-of-N and mean completion tokens per set.\n";

int cmd_eval(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("eval", "issue #11, evaluation");
}
