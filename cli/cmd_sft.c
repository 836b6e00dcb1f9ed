#include "cli/commands.h"

int cmd_sft(int argc, char **argv) { return cmd_train_or_sft(argc, argv, 1); }
