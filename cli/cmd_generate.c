#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/config.h"
#include "core/log.h"
#include "trainer/generate.h"

static const char USAGE[] =
    "usage: grpo generate RUN.yaml --prompts FILE.jsonl [--n N] [--out FILE.jsonl] [key=value ...]\n"
    "\n"
    "Samples N completions (default rollout.num_generations) per prompt with the\n"
    "model, tokenizer and rollout settings of RUN.yaml, and writes one JSON object\n"
    "per completion (index, sample, prompt, completion, tokens, logprobs,\n"
    "finish_reason, truncated) to --out or stdout. A row's question is its\n"
    "data.prompt_field, else its prompt, question or problem field.\n";

int cmd_generate(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  const char *run = NULL, *prompts = NULL, *out_path = NULL;
  int n = 0;
  char **overrides = calloc((size_t)argc, sizeof *overrides);
  int n_over = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--prompts") == 0 && i + 1 < argc)
      prompts = argv[++i];
    else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      out_path = argv[++i];
    else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
      n = atoi(argv[++i]);
    else if (argv[i][0] == '-') {
      fprintf(stderr, "grpo generate: unknown option %s\n\n%s", argv[i], USAGE);
      free(overrides);
      return 2;
    } else if (!run)
      run = argv[i];
    else
      overrides[n_over++] = argv[i];
  }
  if (!run || !prompts) {
    fputs(USAGE, stderr);
    free(overrides);
    return 2;
  }
  grpo_config cfg;
  grpo_error err = {0};
  if (grpo_config_load(&cfg, run, n_over, (const char *const *)overrides, &err)) {
    fprintf(stderr, "grpo generate: %s\n", err.msg);
    free(overrides);
    return 1;
  }
  free(overrides);
  if (n <= 0) n = (int)cfg.rollout.num_generations;
  FILE *out = out_path ? fopen(out_path, "w") : stdout;
  int rc = 1;
  trainer_session s;
  if (!out) {
    fprintf(stderr, "grpo generate: cannot write %s\n", out_path);
  } else if (trainer_session_open(&s, &cfg, 0, &err)) {
    fprintf(stderr, "grpo generate: %s\n", err.msg);
  } else {
    rc = trainer_generate_file(&s, prompts, n, out, &err) ? 1 : 0;
    if (rc) fprintf(stderr, "grpo generate: %s\n", err.msg);
    trainer_session_close(&s);
  }
  if (out && out != stdout) fclose(out);
  grpo_config_free(&cfg);
  return rc;
}
