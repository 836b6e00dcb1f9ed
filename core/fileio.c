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

int grpo_mkdirs(const char *dir, grpo_error *err) {
  char buf[4096];
  if (!dir || !*dir) return GRPO_FAIL(err, GRPO_EINVAL, "empty directory path");
  if (strlen(dir) >= sizeof buf) return GRPO_FAIL(err, GRPO_EINVAL, "%s: directory path too long", dir);
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return GRPO_FAIL(err, GRPO_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
      *p = saved;
      if (!saved) break;
    }
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return GRPO_FAIL(err, GRPO_EIO, "%s: not a directory", dir);
  return GRPO_OK;
}
