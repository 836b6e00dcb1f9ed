/* Single-thread encode throughput of model_tokenizer on JSONL text fields.
 *
 *   bench_tokenizer TOKENIZER REPS FILE:FIELD[,FIELD...] ...
 *
 * Prints one line: bytes, texts, ids, best and median seconds per pass, MB/s
 * (best pass). The first pass starts with an empty pre-token cache; every
 * pass goes through the same API the trainer uses.
 *
 *   bench_tokenizer --ids TOKENIZER < lines
 *
 * Encodes each stdin line (hex of the text's bytes) and prints its ids, for
 * bench/tokenizer/compare_hf.py. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/tokenizer.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int ids_mode(const char *path) {
  model_tokenizer *t;
  grpo_error err = {0};
  if (model_tokenizer_load(path, &t, &err)) {
    fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned char *raw = NULL;
  model_ids ids = {0};
  while ((len = getline(&line, &cap, stdin)) > 0) {
    raw = realloc(raw, (size_t)len / 2 + 1);
    size_t n = 0;
    for (ssize_t i = 0; i + 1 < len && line[i] != '\n'; i += 2) {
      unsigned v;
      if (sscanf(line + i, "%2x", &v) != 1) return 1;
      raw[n++] = (unsigned char)v;
    }
    ids.n = 0;
    if (model_tokenizer_encode(t, (const char *)raw, n, &ids, &err)) {
      fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
      return 1;
    }
    for (size_t i = 0; i < ids.n; i++) printf(i ? " %d" : "%d", (int)ids.ids[i]);
    putchar('\n');
  }
  free(line);
  free(raw);
  model_ids_free(&ids);
  model_tokenizer_free(t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--ids") == 0) return ids_mode(argv[2]);
  if (argc < 4) {
    fprintf(stderr, "usage: bench_tokenizer TOKENIZER REPS FILE:FIELD[,FIELD...] ...\n");
    return 2;
  }
  char **texts = NULL;
  size_t nt = 0, cap = 0, bytes = 0;
  for (int a = 3; a < argc; a++) {
    char spec[4096];
    snprintf(spec, sizeof spec, "%s", argv[a]);
    char *colon = strrchr(spec, ':');
    if (!colon) return 2;
    *colon = 0;
    FILE *f = fopen(spec, "r");
    if (!f) {
      fprintf(stderr, "bench_tokenizer: cannot open %s\n", spec);
      return 1;
    }
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
      cJSON *row = cJSON_Parse(line);
      char fields[1024];
      snprintf(fields, sizeof fields, "%s", colon + 1);
      for (char *fl = strtok(fields, ","); fl; fl = strtok(NULL, ",")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, fl);
        if (!cJSON_IsString(v)) continue;
        if (nt == cap) {
          cap = cap ? cap * 2 : 1024;
          texts = realloc(texts, cap * sizeof *texts);
        }
        texts[nt++] = strdup(v->valuestring);
        bytes += strlen(v->valuestring);
      }
      cJSON_Delete(row);
    }
    free(line);
    fclose(f);
  }
  grpo_error err = {0};
  model_tokenizer *tok;
  double t0 = now();
  if (model_tokenizer_load(argv[1], &tok, &err)) {
    fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
    return 1;
  }
  double load_s = now() - t0;
  int reps = atoi(argv[2]);
  if (reps < 1) reps = 1;
  double *secs = malloc((size_t)reps * sizeof *secs);
  model_ids ids = {0};
  size_t total_ids = 0;
  for (int r = 0; r < reps; r++) {
    total_ids = 0;
    double s = now();
    for (size_t i = 0; i < nt; i++) {
      ids.n = 0;
      if (model_tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids, &err)) {
        fprintf(stderr, "bench_tokenizer: text %zu: %s\n", i, err.msg);
        return 1;
      }
      total_ids += ids.n;
    }
    secs[r] = now() - s;
  }
  double first = secs[0];
  qsort(secs, (size_t)reps, sizeof *secs, cmp_d);
  printf("grpo_c bytes=%zu texts=%zu ids=%zu load_s=%.3f first_s=%.4f best_s=%.4f median_s=%.4f MB_s=%.1f\n",
         bytes, nt, total_ids, load_s, first, secs[0], secs[reps / 2], bytes / secs[0] / 1e6);
  model_ids_free(&ids);
  model_tokenizer_free(tok);
  for (size_t i = 0; i < nt; i++) free(texts[i]);
  free(texts);
  free(secs);
  return 0;
}
