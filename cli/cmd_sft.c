#include "cli/commands.h"

/* Defined in cmd_train.c: one loop driver for both. */
int cmd_train_or_sft(int argc, char **argv, int sft);

int cmd_sft(int argc, char **argv) { return cmd_train_or_sft(argc, argv, 1); }
