#include <stdio.h>

#include "checkpoints/ckpt.h"
#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo inspect CKPT\n"
    "\n"
    "Prints a checkpoint summary: step, format version, every tensor with its\n"
    "shape, dtype and L2 norm, optimizer state presence, run state scalars and\n"
    "the config YAML it was written with.\n"
    "\n"
    "CKPT is a step_NNNNNNNN.h5 file, or a checkpoint directory (the newest\n"
    "valid checkpoint in it is shown). Exit status 1 when it cannot be read.\n";

int cmd_inspect(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (argc != 2) {
    fputs(USAGE, stderr);
    return 2;
  }
  grpo_error err;
  grpo_error_clear(&err);
  if (ckpt_summary(argv[1], stdout, &err) != GRPO_OK) {
    fflush(stdout);
    fprintf(stderr, "grpo inspect: %s\n", err.msg);
    return 1;
  }
  return 0;
}
