#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/ckpt_internal.h"

const char *ckpt_dtype_name(ckpt_dtype dtype) {
  return dtype == CKPT_BF16 ? "bfloat16" : "float32";
}

size_t ckpt_dtype_size(ckpt_dtype dtype) { return dtype == CKPT_BF16 ? 2 : 4; }

const char *ckpt_group_path(ckpt_group group) {
  switch (group) {
    case CKPT_OPTIM_M: return "/optim/m";
    case CKPT_OPTIM_V: return "/optim/v";
    default: return "/model";
  }
}

/* HDF5 calls this when one of its API functions fails, before returning to
 * us: it keeps the innermost message (the most specific one) for the next
 * CKPT_H5_FAIL, since any later HDF5 call (even a close) clears the stack. */
static _Thread_local char last_reason[256];

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0 && e->desc) snprintf((char *)data, sizeof last_reason, "%s", e->desc);
  return 0;
}

static herr_t on_h5_error(hid_t stack, void *data) {
  (void)data;
  last_reason[0] = '\0';
  H5Ewalk2(stack, H5E_WALK_UPWARD, innermost, last_reason);
  return 0;
}

void ckpt_h5_quiet(void) {
  static _Thread_local int done;
  if (!done) {
    /* After reading a corrupt file HDF5 1.10 may fail to tear down its free
     * lists at exit and prints "infinite loop closing library"; every file is
     * closed explicitly, so the exit-time cleanup is skipped. Effective only
     * before HDF5's first call, as here. */
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, on_h5_error, NULL); /* replaces HDF5's printing to stderr */
    done = 1;
  }
}

void ckpt_h5_reason(char *buf, size_t cap) {
  snprintf(buf, cap, "%s", last_reason[0] ? last_reason : "unknown error");
}

int ckpt_h5_fail(grpo_error *err, int code, const char *src_file, int src_line,
                 const char *fmt, ...) {
  char head[768], reason[256];
  ckpt_h5_reason(reason, sizeof reason);
  last_reason[0] = '\0';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  return grpo_error_set(err, code, src_file, src_line, "%s (HDF5: %s)", head, reason);
}

int ckpt_name_ok(const char *name) {
  if (!name || !name[0] || strlen(name) >= CKPT_NAME_MAX) return 0;
  if (strchr(name, '/')) return 0;
  return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int ckpt_fsync_path(const char *path, int is_dir, grpo_error *err) {
  int fd = open(path, O_RDONLY | (is_dir ? O_DIRECTORY : 0));
  if (fd < 0)
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot open for fsync: %s", path, strerror(errno));
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  if (rc != 0)
    return GRPO_FAIL(err, GRPO_EIO, "%s: fsync failed: %s", path, strerror(saved));
  return GRPO_OK;
}

void ckpt_step_filename(int64_t step, char *buf, size_t cap) {
  snprintf(buf, cap, "step_%08lld.h5", (long long)step);
}
