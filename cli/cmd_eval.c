#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/config.h"
#include "core/log.h"
#include "trainer/eval.h"

static const char USAGE[] =
    "usage: grpo eval RUN.yaml [--ckpt CKPT] [--sets gsm8k,math500,...] [--n N] [--k 1,4,16]\n"
    "                 [--data-dir DIR] [--max-problems M] [--out DIR] [section.key=value ...]\n"
    "\n"
    "Evaluates a model on benchmark sets and reports, per set, pass@1 (mean over\n"
    "n samples), pass@k (unbiased), maj@k (majority over verifier-equivalent\n"
    "answers), best-of-n (oracle and self-consistency), mean completion tokens\n"
    "and, for ThreadWeaver models (rollout.parallel_threads), critical-path\n"
    "tokens and speedup. Writes summary.json and samples.jsonl (one line per\n"
    "sample, for error analysis) to --out (default <output_dir>/eval).\n"
    "\n"
    "  --ckpt CKPT     weights: HF directory, grpo .h5 checkpoint or a run's\n"
    "                  checkpoints/ folder (sets model.path)\n"
    "  --sets LIST     benchmark names (resolved as DIR/<name>/test.jsonl),\n"
    "                  arithmetic, or .jsonl paths (default eval.sets)\n"
    "  --n N           samples per problem (eval.num_samples)\n"
    "  --k LIST        k values of pass@k and maj@k (eval.ks)\n"
    "  --data-dir DIR  folder of the benchmark sets (eval.data_dir)\n"
    "  --max-problems M  first M problems of each set (eval.max_problems)\n"
    "Launch under mpirun to split the problems over ranks.\n";

int cmd_eval(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(USAGE, stdout);
    return 0;
  }
  const char *run = NULL, *sets = NULL;
  /* flags become overrides so the resolved config records them */
  char **over = calloc((size_t)argc * 2 + 1, sizeof *over);
  char **owned = calloc((size_t)argc + 1, sizeof *owned);
  int n_over = 0, n_owned = 0, rc = 0;
  static const struct {
    const char *flag, *key;
  } map[] = {{"--ckpt", "model.path"},          {"--n", "eval.num_samples"},
             {"--k", "eval.ks"},                {"--data-dir", "eval.data_dir"},
             {"--max-problems", "eval.max_problems"}, {"--out", "eval.output_dir"}};
  for (int i = 1; !rc && i < argc; i++) {
    int done = 0;
    for (size_t m = 0; m < sizeof map / sizeof map[0] && !done; m++) {
      if (strcmp(argv[i], map[m].flag)) continue;
      done = 1;
      if (i + 1 >= argc) {
        fprintf(stderr, "grpo eval: %s needs a value\n", argv[i]);
        rc = 2;
        break;
      }
      size_t len = strlen(map[m].key) + strlen(argv[i + 1]) + 2;
      char *o = malloc(len);
      if (!o) {
        rc = 1;
        break;
      }
      snprintf(o, len, "%s=%s", map[m].key, argv[++i]);
      owned[n_owned++] = o;
      over[n_over++] = o;
    }
    if (done || rc) continue;
    if (strcmp(argv[i], "--sets") == 0 && i + 1 < argc)
      sets = argv[++i];
    else if (argv[i][0] == '-') {
      fprintf(stderr, "grpo eval: unknown option %s\n\n%s", argv[i], USAGE);
      rc = 2;
    } else if (!run)
      run = argv[i];
    else
      over[n_over++] = argv[i];
  }
  if (!rc && !run) {
    fputs(USAGE, stderr);
    rc = 2;
  }
  if (rc) {
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(over);
    return rc;
  }
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  grpo_config cfg;
  grpo_error err = {0};
  rc = grpo_config_load(&cfg, run, n_over, (const char *const *)over, &err) ? 1 : 0;
  for (int i = 0; i < n_owned; i++) free(owned[i]);
  free(owned);
  free(over);
  char *list = NULL, **names = NULL;
  int n_names = 0;
  if (rc) {
    if (rank == 0) fprintf(stderr, "grpo eval: %s\n", err.msg);
  } else {
    grpo_log_set_level((grpo_log_level)cfg.logging.level);
    if (sets) {
      list = strdup(sets);
      names = calloc(strlen(sets) + 1, sizeof *names);
      for (char *tok = list ? strtok(list, ",") : NULL; tok && names; tok = strtok(NULL, ","))
        if (*tok) names[n_names++] = tok;
    }
    if (trainer_eval_benchmarks(&cfg, MPI_COMM_WORLD, sets ? (const char *const *)names : NULL, n_names, &err)) {
      fprintf(stderr, "grpo eval: rank %d: %s\n", rank, err.msg);
      rc = 1;
    }
    grpo_config_free(&cfg);
  }
  free(list);
  free(names);
  if (rc && world > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  MPI_Finalize();
  return rc;
}
