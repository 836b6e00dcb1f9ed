#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo generate RUN.yaml --prompts FILE.jsonl [--n N] [--out FILE.jsonl]\n"
    "\n"
    "Samples N completions per prompt with the rollout settings of RUN.yaml\n"
    "and writes one JSON object per completion (tokens, logprobs, text,\n"
    "finish reason).\n";

int cmd_generate(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("generate", "issue #7, rollout");
}
