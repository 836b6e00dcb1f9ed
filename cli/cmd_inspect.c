#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo inspect CKPT.h5\n"
    "\n"
    "Prints a checkpoint summary: step, tensors with shapes, dtypes and norms,\n"
    "run state, and the config it was written with.\n";

int cmd_inspect(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("inspect", "issue #3, the HDF5 checkpoint format");
}
