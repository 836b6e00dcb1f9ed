/* Status codes and error reports.
 *
 * Every fallible function returns an int status (GRPO_OK == 0) and, when given
 * a grpo_error, fills it with a message for the user that names the file,
 * line, field or tensor at fault, plus the source location that raised it:
 *
 *   if (n < 0) return GRPO_FAIL(err, GRPO_EINVAL, "%s:%d: n must be >= 0", path, line);
 *
 * Programming errors (broken invariants) are asserts; user input never is. */
#ifndef GRPO_CORE_ERROR_H
#define GRPO_CORE_ERROR_H

#include <stdarg.h>

typedef enum grpo_status {
  GRPO_OK = 0,
  GRPO_EINVAL = 1,      /* bad argument or value out of range */
  GRPO_EPARSE = 2,      /* malformed input (YAML, JSON, safetensors, ...) */
  GRPO_EIO = 3,         /* file system or OS error */
  GRPO_ENOMEM = 4,      /* allocation failed */
  GRPO_ENOTFOUND = 5,   /* missing file, key or tensor */
  GRPO_EFORMAT = 6,     /* wrong version, dtype or shape */
  GRPO_EUNSUPPORTED = 7,/* valid but not implemented here */
  GRPO_ENUMERIC = 8,    /* NaN / Inf where a finite number is required */
  GRPO_EMPI = 9,        /* a peer rank failed */
  GRPO_EBUDGET = 10,    /* a bounded computation ran out of steps */
} grpo_status;

typedef struct grpo_error {
  int code;        /* grpo_status; GRPO_OK when nothing failed */
  char msg[1024];  /* for the user */
  char src[96];    /* "file.c:123" of the code that raised it */
} grpo_error;

/* Fills *err (may be NULL) and returns code. Use through GRPO_FAIL. */
int grpo_error_set(grpo_error *err, int code, const char *src_file, int src_line,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int grpo_error_vset(grpo_error *err, int code, const char *src_file, int src_line,
                    const char *fmt, va_list ap);

/* Prepends "context: " to an existing message, keeping code and source. */
int grpo_error_prefix(grpo_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void grpo_error_clear(grpo_error *err);
const char *grpo_status_name(int code);

#define GRPO_FAIL(err, code, ...) grpo_error_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

#endif
