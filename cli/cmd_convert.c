#include <stdio.h>

#include "cli/commands.h"

static const char USAGE[] =
"usage: grpo convert hf2h5 HF_DIR OUT.h5\n"
    "       grpo convert h52hf CKPT.h5 OUT_DIR\n"
    "\n"
    "Moves weights between Hugging Face safetensors (+ config.json and\n"
    "tokenizer files) and grpo HDF5 checkpoints.\n";

int cmd_convert(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  return cli_not_ready("convert", "issue #4, safetensors import/export");
}
