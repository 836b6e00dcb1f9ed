/* Fuzz target: arbitrary bytes as a checkpoint file. Opening, listing, reading
 * every tensor (both dtypes, whole and by rows), the run state and the inspect
 * summary must either work or fail with an error naming the file. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "core/log.h"

#define MAX_READ_ELEMS ((int64_t)1 << 22)

static const char *input_path(void) {
  static char path[512];
  if (!path[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/grpo_fuzz_ckpt_%ld.h5", tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
    grpo_log_set_level(GRPO_LOG_ERROR);
  }
  return path;
}

static void must_name_file(const grpo_error *err, const char *path) {
  if (!strstr(err->msg, path)) {
    fprintf(stderr, "error does not name the file: %s\n", err->msg);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = input_path();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  size_t off = 0;
  while (off < size) {
    ssize_t n = write(fd, data + off, size - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(fd);

  grpo_error err;
  grpo_error_clear(&err);
  ckpt_reader *r = NULL;
  if (ckpt_reader_open(&r, path, &err) != GRPO_OK) {
    must_name_file(&err, path);
    unlink(path);
    return 0;
  }
  for (int i = 0; i < ckpt_reader_num_tensors(r); i++) {
    const ckpt_tensor_info *t = ckpt_reader_tensor(r, i);
    if (t->numel > MAX_READ_ELEMS) continue;
    float *buf = malloc((size_t)(t->numel + 1) * sizeof(float));
    if (!buf) continue;
    if (ckpt_reader_read(r, t, CKPT_F32, buf, (size_t)t->numel, &err) != GRPO_OK) must_name_file(&err, path);
    if (ckpt_reader_read(r, t, CKPT_BF16, buf, (size_t)t->numel, &err) != GRPO_OK) must_name_file(&err, path);
    if (t->ndim > 0 && t->shape[0] > 1 &&
        ckpt_reader_read_rows(r, t, 1, t->shape[0] - 1, CKPT_F32, buf, (size_t)t->numel, &err) != GRPO_OK)
      must_name_file(&err, path);
    free(buf);
  }
  for (int i = 0; i < ckpt_reader_num_scalars(r); i++) {
    const ckpt_scalar *s = ckpt_reader_scalar(r, i);
    if (s->kind == CKPT_SCALAR_STR && strlen(s->str) >= CKPT_STR_MAX) abort();
  }
  size_t nrng;
  const uint64_t *rng = ckpt_reader_rng(r, &nrng);
  volatile uint64_t sink = 0;
  for (size_t i = 0; i < nrng; i++) sink ^= rng[i];
  for (int i = 0; i < ckpt_reader_num_meta(r); i++) sink ^= strlen(ckpt_reader_meta(r, ckpt_reader_meta_key(r, i)));
  ckpt_reader_close(r);

  FILE *devnull = fopen("/dev/null", "w");
  if (devnull) {
    if (ckpt_summary(path, devnull, &err) != GRPO_OK) must_name_file(&err, path);
    fclose(devnull);
  }
  unlink(path);
  return 0;
}
