#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo tokenize --tokenizer DIR [--decode] [--chat]\n"
    "\n"
    "Encodes stdin to token ids (one line of space-separated ids), or with\n"
    "--decode reads ids from stdin and prints the text.\n";

int cmd_tokenize(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("tokenize", "issue #5, the tokenizer");
}
