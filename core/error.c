#include "core/error.h"

#include <stdio.h>
#include <string.h>

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

int grpo_error_vset(grpo_error *err, int code, const char *src_file, int src_line,
                    const char *fmt, va_list ap) {
  if (!err) return code;
  err->code = code;
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  snprintf(err->src, sizeof err->src, "%s:%d", base_name(src_file), src_line);
  return code;
}

int grpo_error_set(grpo_error *err, int code, const char *src_file, int src_line,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  grpo_error_vset(err, code, src_file, src_line, fmt, ap);
  va_end(ap);
  return code;
}

int grpo_error_prefix(grpo_error *err, const char *fmt, ...) {
  if (!err) return GRPO_OK;
  char head[512], old[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", head, old);
  return err->code;
}

void grpo_error_clear(grpo_error *err) {
  if (!err) return;
  err->code = GRPO_OK;
  err->msg[0] = '\0';
  err->src[0] = '\0';
}

const char *grpo_status_name(int code) {
  switch (code) {
    case GRPO_OK: return "ok";
    case GRPO_EINVAL: return "invalid argument";
    case GRPO_EPARSE: return "parse error";
    case GRPO_EIO: return "I/O error";
    case GRPO_ENOMEM: return "out of memory";
    case GRPO_ENOTFOUND: return "not found";
    case GRPO_EFORMAT: return "format error";
    case GRPO_EUNSUPPORTED: return "unsupported";
    case GRPO_ENUMERIC: return "non-finite value";
    case GRPO_EMPI: return "MPI error";
    case GRPO_EBUDGET: return "budget exhausted";
    default: return "unknown error";
  }
}
