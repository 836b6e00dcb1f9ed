/* Files: reading a whole file (one routine for every loader: configs, JSON,
 * safetensors indexes, tokenizer files, datasets) and making directories. */
#ifndef GRPO_CORE_FILEIO_H
#define GRPO_CORE_FILEIO_H

#include <stddef.h>

#include "core/error.h"

/* Reads path into a malloc'd, NUL-terminated buffer (*out, free() it) of
 * *len bytes (len may be NULL). Fails with GRPO_ENOTFOUND when the file does
 * not exist, GRPO_EFORMAT when it is larger than limit bytes, GRPO_EIO on
 * other errors; every message names the path. */
int grpo_read_file(const char *path, size_t limit, char **out, size_t *len, grpo_error *err);

/* mkdir -p: creates dir and its missing parents; an existing directory is
 * fine. Fails with GRPO_EIO naming the path that could not be made, or
 * when dir exists but is not a directory. */
int grpo_mkdirs(const char *dir, grpo_error *err);

#endif
