/* Private helpers shared by the checkpoints/ sources. */
#ifndef GRPO_CHECKPOINTS_CKPT_INTERNAL_H
#define GRPO_CHECKPOINTS_CKPT_INTERNAL_H

#include <hdf5.h>

#include "checkpoints/ckpt.h"

#define CKPT_FORMAT_TAG "grpo-checkpoint"
/* Texts up to this size are stored in the object header (compact layout), where
 * HDF5's metadata checksum covers them; compact data must stay below 64 KiB. */
#define CKPT_COMPACT_MAX 60000
/* Chunks of tensor data carry a Fletcher-32 checksum; this bounds their size. */
#define CKPT_CHUNK_BYTES (4u << 20)

/* Replaces HDF5's default error printing with a handler that remembers why
 * the last HDF5 call failed (once per thread; HDF5 errors never print). */
void ckpt_h5_quiet(void);

/* The innermost message of the last failed HDF5 call, so a grpo_error can say
 * why HDF5 refused, e.g. "truncated file: eof = ...". */
void ckpt_h5_reason(char *buf, size_t cap);

/* Fails with `code`, appending HDF5's reason: "<fmt>: HDF5: <reason>". */
int ckpt_h5_fail(grpo_error *err, int code, const char *src_file, int src_line,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define CKPT_H5_FAIL(err, code, ...) ckpt_h5_fail((err), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Names usable as one HDF5 link: non-empty, < CKPT_NAME_MAX, no '/', not "."/"..". */
int ckpt_name_ok(const char *name);

/* fsync a file or directory by path. */
int ckpt_fsync_path(const char *path, int is_dir, grpo_error *err);

#endif
