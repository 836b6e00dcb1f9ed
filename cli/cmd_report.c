#include <stdio.h>

#include "cli/commands.h"
#include "trainer/report.h"

static const char USAGE[] =
    "usage: grpo report RUN_DIR\n"
    "\n"
    "Writes RUN_DIR/report.html, a self-contained page with SVG charts of the\n"
    "run's metrics.jsonl (reward per function, held-out accuracy, KL, entropy,\n"
    "clip ratios, completion length, grad norm, learning rate, throughput,\n"
    "P-GRPO latency), and one SVG per chart in RUN_DIR/charts/.\n";

int cmd_report(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    fputs(USAGE, stderr);
    return 2;
  }
  grpo_error err = {0};
  int n = 0;
  if (trainer_report(argv[1], &n, &err)) {
    fprintf(stderr, "grpo report: %s\n", err.msg);
    return 1;
  }
  printf("wrote %s/report.html (%d charts) and %s/charts/\n", argv[1], n, argv[1]);
  return 0;
}
