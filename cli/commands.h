/* The grpo subcommands. Each lives in cli/cmd_<name>.c, parses its own
 * arguments, prints real usage for --help, and calls into the modules; no
 * training, parsing or numeric logic lives in cli/. Return value = exit code:
 * 0 success, 1 failure, 2 usage error or not available yet. */
#ifndef GRPO_CLI_COMMANDS_H
#define GRPO_CLI_COMMANDS_H

#include <stdio.h>

typedef struct cli_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

int cmd_train(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* grpo train and grpo sft share one driver (cmd_train.c); sft != 0 for sft. */
int cmd_train_or_sft(int argc, char **argv, int sft);

/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Prints "grpo NAME: not available yet (arrives with: WHAT)" and returns 2. */
int cli_not_ready(const char *name, const char *what);

#endif
