#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo verify --gold G --pred P\n"
    "       grpo verify --jsonl FILE\n"
    "\n"
    "Checks whether the prediction P is mathematically equivalent to the gold\n"
    "answer G and prints the verdict with both parsed forms. With --jsonl,\n"
    "scores rows with gold and pred fields, one JSON verdict per row.\n";

int cmd_verify(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("verify", "issue #6, the reward module");
}
