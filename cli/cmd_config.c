#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo config --defaults\n"
    "       grpo config RUN.yaml [section.key=value ...]\n"
    "\n"
    "--defaults prints every key with its default and documentation.\n"
    "With a file, validates it and prints the resolved config.\n";

int cmd_config(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("config", "issue #3, the YAML config");
}
