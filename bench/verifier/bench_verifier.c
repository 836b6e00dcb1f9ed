/* Verifications per second on one core over the labelled development sets,
 * and the slowest single call. Usage (from the repository root):
 *   bench_verifier [passes] [file.jsonl ...]
 * default files: ../shared/data/verify/{other_cases,hardverify_math_cases}.jsonl */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reward/math_verify.h"

typedef struct row {
  char *gold, *pred;
} row;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int load(const char *path, row **rows, int *n, int *cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "bench_verifier: cannot open %s\n", path);
    return 1;
  }
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  while ((len = getline(&line, &lcap, f)) > 0) {
    cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "gold");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pred");
    if (cJSON_IsString(g) && cJSON_IsString(p)) {
      if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        row *r = realloc(*rows, sizeof(row) * (size_t)*cap);
        if (!r) return 1;
        *rows = r;
      }
      (*rows)[*n].gold = strdup(g->valuestring);
      (*rows)[*n].pred = strdup(p->valuestring);
      (*n)++;
    }
    cJSON_Delete(o);
  }
  free(line);
  fclose(f);
  return 0;
}

int main(int argc, char **argv) {
  int passes = argc > 1 ? atoi(argv[1]) : 7;
  if (passes < 1) passes = 1;
  const char *defaults[] = {"../shared/data/verify/other_cases.jsonl",
                            "../shared/data/verify/hardverify_math_cases.jsonl"};
  row *rows = NULL;
  int n = 0, cap = 0;
  if (argc > 2) {
    for (int i = 2; i < argc; i++)
      if (load(argv[i], &rows, &n, &cap)) return 1;
  } else {
    for (int i = 0; i < 2; i++)
      if (load(defaults[i], &rows, &n, &cap)) return 1;
  }
  if (n == 0) return 1;
  reward_math_options opt;
  reward_math_options_default(&opt);
  double *rate = calloc((size_t)passes, sizeof(double));
  /* per-row best time over the passes: the call's own cost without the
   * preemption noise of a shared machine */
  double *best = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) best[i] = 1e9;
  double worst = 0;
  int worst_row = -1;
  long correct = 0;
  for (int p = 0; p < passes; p++) {
    double t0 = now();
    for (int i = 0; i < n; i++) {
      reward_math_verdict v;
      double a = now();
      reward_math_verify(rows[i].gold, rows[i].pred, &opt, &v, NULL);
      double dt = now() - a;
      if (dt < best[i]) best[i] = dt;
      if (dt > worst) {
        worst = dt;
        worst_row = i;
      }
      if (p == 0) correct += v.correct;
    }
    rate[p] = n / (now() - t0);
  }
  qsort(rate, (size_t)passes, sizeof(double), cmp_double);
  double worst_best = 0;
  int worst_best_row = -1;
  for (int i = 0; i < n; i++)
    if (best[i] > worst_best) {
      worst_best = best[i];
      worst_best_row = i;
    }
  /* hostile input: 1 MB of braces */
  size_t big = 1u << 20;
  char *braces = malloc(big + 1);
  memset(braces, '{', big);
  braces[big] = '\0';
  memcpy(braces, "\\boxed", 6);
  reward_math_verdict v;
  double a = now();
  reward_math_verify("5", braces, &opt, &v, NULL);
  double t_braces = now() - a;
  printf("rows=%d passes=%d correct_verdicts=%ld\n", n, passes, correct);
  printf("median verifications/s/core: %.0f (min %.0f, max %.0f)\n", rate[passes / 2], rate[0],
         rate[passes - 1]);
  printf("worst single call (best of %d passes): %.3f ms (row %d)\n", passes, worst_best * 1e3,
         worst_best_row);
  printf("worst single call (any pass, includes preemption): %.3f ms (row %d)\n", worst * 1e3,
         worst_row);
  printf("1 MB of braces: %.3f ms (%s)\n", t_braces * 1e3, reward_math_result_name(v.result));
  for (int i = 0; i < n; i++) {
    free(rows[i].gold);
    free(rows[i].pred);
  }
  free(rows);
  free(rate);
  free(best);
  free(braces);
  return 0;
}
