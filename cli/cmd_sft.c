#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo sft RUN.yaml [section.key=value ...]\n"
    "\n"
    "Supervised fine-tuning on the prompt/completion JSONL named by the\n"
    "config (data.sft_path), with sequence packing. Parallel-thread traces\n"
    "are trie-packed as in P-GRPO.\n";

int cmd_sft(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("sft", "issue #8, the trainer (SFT warm-up)");
}
