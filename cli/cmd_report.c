#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo report RUN_DIR\n"
    "\n"
    "Writes RUN_DIR/report.html with SVG charts of reward, accuracy, KL,\n"
    "entropy, clip ratios, lengths, grad norm, learning rate and throughput.\n";

int cmd_report(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("report", "issue #9, the run report");
}
