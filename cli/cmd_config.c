/* grpo config: print the defaults or the reference, or validate a run file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/config.h"

static const char USAGE[] =
    "usage: grpo config --defaults\n"
    "       grpo config --markdown\n"
    "       grpo config RUN.yaml [section.key=value ...]\n"
    "\n"
    "--defaults  print every key with its default and documentation (a YAML file that\n"
    "            loads as-is)\n"
    "--markdown  print the config reference (docs/config.md)\n"
    "RUN.yaml    validate the file and the overrides, then print the resolved config\n"
    "            with every default filled in; on error print file:line:column and the\n"
    "            problem and exit 1\n";

static int print_text(int (*make)(char **, grpo_error *)) {
  grpo_error err;
  grpo_error_clear(&err);
  char *text = NULL;
  if (make(&text, &err) != GRPO_OK) {
    fprintf(stderr, "grpo config: %s\n", err.msg);
    return 1;
  }
  fputs(text, stdout);
  free(text);
  return 0;
}

int cmd_config(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--defaults") == 0) return print_text(grpo_config_defaults_yaml);
  if (argc == 2 && strcmp(argv[1], "--markdown") == 0) return print_text(grpo_config_markdown);
  if (argc < 2 || argv[1][0] == '-') {
    fputs(USAGE, stderr);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    if (!grpo_config_is_override(argv[i])) {
      fprintf(stderr, "grpo config: '%s' is not an override (section.key=value)\n\n%s", argv[i],
              USAGE);
      return 2;
    }
  }
  grpo_config cfg;
  grpo_error err;
  grpo_error_clear(&err);
  if (grpo_config_load(&cfg, argv[1], argc - 2, (const char *const *)(argv + 2), &err) != GRPO_OK) {
    fprintf(stderr, "grpo config: %s\n", err.msg);
    return 1;
  }
  char *yaml = NULL;
  int rc = grpo_config_to_yaml(&cfg, &yaml, NULL, &err);
  grpo_config_free(&cfg);
  if (rc != GRPO_OK) {
    fprintf(stderr, "grpo config: %s\n", err.msg);
    return 1;
  }
  fputs(yaml, stdout);
  free(yaml);
  return 0;
}
