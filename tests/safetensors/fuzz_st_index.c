/* libFuzzer target: model.safetensors.index.json (untrusted input naming
 * files to open). The input becomes the index of a scratch directory holding
 * two small shards; an accepted index must resolve every tensor it lists to a
 * readable tensor in the directory, and nothing outside it is ever opened. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"

static char dir[256];

static void setup(void) {
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/grpo_fuzz_index_%d", base ? base : "/tmp", (int)getpid());
  char cmd[600], path[512];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd) != 0) abort();
  static const float a[4] = {1, 2, 3, 4};
  static const uint16_t b[2] = {0x3f80, 0x4000};
  ckpt_st_write_tensor t[2] = {
      {.name = "w.a", .dtype = CKPT_ST_F32, .ndim = 2, .shape = {2, 2}, .data = a},
      {.name = "w.b", .dtype = CKPT_ST_BF16, .ndim = 1, .shape = {2}, .data = b},
  };
  grpo_error err;
  snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
  if (ckpt_st_write_file(path, &t[0], 1, "{\"format\":\"pt\"}", &err)) abort();
  snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
  if (ckpt_st_write_file(path, &t[1], 1, NULL, &err)) abort();
}

static void cleanup(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!dir[0]) {
    setup();
    atexit(cleanup);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fwrite(data, 1, size, f);
  fclose(f);
  ckpt_st_model m;
  grpo_error err;
  if (ckpt_st_open(&m, dir, &err) == GRPO_OK) {
    for (int i = 0; i < m.n; i++) {
      const ckpt_st_tensor *t = m.sorted[i];
      if (strncmp(m.shards[t->shard].path, dir, strlen(dir)) != 0) abort();
      float buf[4];
      if (t->numel > 4 || ckpt_st_read_f32(&m, t->name, buf, t->numel, &err) != GRPO_OK) abort();
    }
    ckpt_st_close(&m);
  }
  return 0;
}
