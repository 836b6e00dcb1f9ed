#include "core/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int grpo_read_file(const char *path, size_t limit, char **out, size_t *len, grpo_error *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return GRPO_FAIL(err, errno == ENOENT ? GRPO_ENOTFOUND : GRPO_EIO, "%s: cannot open: %s", path,
                     strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_EIO, "%s: not a regular file", path);
  }
  if ((unsigned long long)st.st_size > (unsigned long long)limit) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: file too large (%lld bytes, limit %zu)", path,
                     (long long)st.st_size, limit);
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory for %zu bytes", path, n);
  }
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  if (got != n) {
    free(buf);
    return GRPO_FAIL(err, GRPO_EIO, "%s: short read (%zu of %zu bytes)", path, got, n);
  }
  buf[n] = '\0';
  *out = buf;
  if (len) *len = n;
  return GRPO_OK;
}
