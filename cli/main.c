/* grpo: the command-line entry point. Dispatches to cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/runtime.h"

static const cli_command COMMANDS[] = {
    {"train", "GRPO / P-GRPO training from a YAML experiment file", cmd_train},
    {"sft", "supervised fine-tuning (warm-up) on prompt/completion JSONL", cmd_sft},
    {"generate", "sample completions for a JSONL file of prompts", cmd_generate},
    {"eval", "evaluate a checkpoint on benchmark sets (pass@k, maj@k)", cmd_eval},
    {"verify", "check a math answer against a gold answer", cmd_verify},
    {"convert", "convert weights between HF safetensors and HDF5", cmd_convert},
    {"inspect", "summarise an HDF5 checkpoint", cmd_inspect},
    {"config", "validate a config, or print every key with its default", cmd_config},
    {"report", "write an HTML report with charts for a run directory", cmd_report},
    {"tokenize", "encode stdin to token ids, or decode ids to text", cmd_tokenize},
    {"version", "print the version and build features", cmd_version},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *out) {
  fprintf(out,
          "usage: grpo <command> [options]\n"
          "\n"
          "GRPO / P-GRPO reinforcement learning for LLM reasoning.\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
  fprintf(out, "\nRun 'grpo <command> --help' for a command's options.\n");
}

int cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
  return 0;
}

int cli_not_ready(const char *name, const char *what) {
  fprintf(stderr, "grpo %s: not available yet (arrives with: %s)\n", name, what);
  return 2;
}

int main(int argc, char **argv) {
  grpo_runtime_init(argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) return cmd_version(1, argv + 1);
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].run(argc - 1, argv + 1);
  fprintf(stderr, "grpo: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
