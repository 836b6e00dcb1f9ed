/* Replays a fuzz target's seed corpus without libFuzzer, so every CI run
 * exercises the target under the sanitizer build. Besides each seed it feeds
 * every prefix (strided for long inputs) and deterministic byte mutations. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_buffer(const uint8_t *data, size_t n) {
  uint8_t *copy = malloc(n ? n : 1);
  if (!copy) return 1;
  size_t stride = n > 512 ? n / 256 : 1;
  for (size_t len = 0; len <= n; len += stride) {
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
  }
  uint32_t state = 0x9e3779b9u ^ (uint32_t)n;
  for (int round = 0; round < 64 && n > 0; round++) {
    memcpy(copy, data, n);
    for (int k = 0; k < 1 + round % 4; k++) {
      state = state * 1664525u + 1013904223u;
      size_t at = (state >> 8) % n;
      state = state * 1664525u + 1013904223u;
      copy[at] = (uint8_t)(state >> 24);
    }
    LLVMFuzzerTestOneInput(copy, n);
  }
  free(copy);
  return 0;
}

static int replay_file(const char *path, int *count) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
  fclose(f);
  int rc = buf ? replay_buffer(buf, got) : 1;
  free(buf);
  (*count)++;
  return rc;
}

static int replay_path(const char *path, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "fuzz_replay: no such corpus %s\n", path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return replay_file(path, count);
  DIR *d = opendir(path);
  if (!d) return 1;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char child[4096];
    snprintf(child, sizeof child, "%s/%s", path, e->d_name);
    rc |= replay_path(child, count);
  }
  closedir(d);
  return rc;
}

int main(int argc, char **argv) {
  int count = 0, rc = 0;
  for (int i = 1; i < argc; i++) rc |= replay_path(argv[i], &count);
  if (count == 0) {
    fprintf(stderr, "fuzz_replay: empty corpus\n");
    rc = 1;
  }
  printf("%d passed, %d failed\n", rc ? 0 : count, rc ? 1 : 0);
  return rc;
}
