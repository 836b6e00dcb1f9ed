/* HDF5 checkpoints: model weights, AdamW state, run state and metadata.
 *
 * Layout (checkpoints/README.md has the full description and h5py examples):
 *   /model/<HF tensor name>     f32, or bf16 as uint16 with attribute dtype="bfloat16"
 *   /optim/m/<name>, /optim/v/<name>
 *   /state/step, /state/rng (uint64[n]), /state/<name> (int64, float64 or string scalars)
 *   /meta  attributes format, format_version, producer; string datasets such as
 *          config_yaml, model_config_json, tokenizer_hash
 *
 * Writing is one tensor at a time, so callers never gather a model into one
 * buffer. ckpt_writer_begin() publishes atomically into a directory
 * (step_NNNNNNNN.h5.tmp -> fsync -> rename -> fsync dir -> `latest`), rotates old
 * checkpoints, and ckpt_resolve() finds the newest valid one on restart.
 *
 * The API makes no MPI calls: data-parallel ranks hold identical weights and
 * only rank 0 writes; other ranks wait on a barrier the caller owns. Use it
 * from one thread at a time (Debian's HDF5 is built without thread safety). */
#ifndef GRPO_CHECKPOINTS_CKPT_H
#define GRPO_CHECKPOINTS_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

#define CKPT_FORMAT_VERSION 1
#define CKPT_MAX_DIMS 8
#define CKPT_NAME_MAX 256        /* tensor and scalar names, including the NUL */
#define CKPT_STR_MAX 4096        /* string scalars in /state, including the NUL */

typedef enum ckpt_dtype { CKPT_F32 = 0, CKPT_BF16 = 1 } ckpt_dtype;

/* Which group of the file a tensor lives in. */
typedef enum ckpt_group {
  CKPT_MODEL = 0,   /* /model */
  CKPT_OPTIM_M = 1, /* /optim/m: AdamW first moment */
  CKPT_OPTIM_V = 2, /* /optim/v: AdamW second moment */
} ckpt_group;
#define CKPT_NUM_GROUPS 3

const char *ckpt_dtype_name(ckpt_dtype dtype);      /* "float32", "bfloat16" */
const char *ckpt_group_path(ckpt_group group);      /* "/model", "/optim/m", "/optim/v" */
size_t ckpt_dtype_size(ckpt_dtype dtype);

/* ---- writing ---------------------------------------------------------------- */

typedef struct ckpt_writer ckpt_writer;

/* Creates (truncates) a checkpoint at exactly `path`, not atomically; for tools
 * and tests. ckpt_writer_finish() flushes, closes and fsyncs it. */
int ckpt_writer_open(ckpt_writer **out, const char *path, int64_t step, grpo_error *err);

/* Starts checkpoint `step` in directory `dir` (created if missing) as
 * dir/step_NNNNNNNN.h5.tmp. ckpt_writer_finish() publishes it atomically, points
 * dir/latest at it and deletes all but the newest `keep_last` step files
 * (keep_last <= 0 keeps everything; the one `latest` names is never deleted). */
int ckpt_writer_begin(ckpt_writer **out, const char *dir, int64_t step, int keep_last,
                      grpo_error *err);

/* Writes one tensor. shape has ndim entries (0 <= ndim <= CKPT_MAX_DIMS); data
 * holds the elements in row-major order: float for CKPT_F32, bf16 bit patterns
 * (uint16_t) for CKPT_BF16. Names are HF tensor names, kept whole (dots stay);
 * they must not be empty, contain '/' or be "." / "..". */
int ckpt_writer_put_tensor(ckpt_writer *w, ckpt_group group, const char *name,
                           ckpt_dtype dtype, int ndim, const int64_t *shape, const void *data,
                           grpo_error *err);

/* Run state under /state. "step" is written by open/begin and is reserved.
 * Conventional names: "data_cursor" (i64), reward statistics (f64). */
int ckpt_writer_put_i64(ckpt_writer *w, const char *name, int64_t value, grpo_error *err);
int ckpt_writer_put_f64(ckpt_writer *w, const char *name, double value, grpo_error *err);
int ckpt_writer_put_str(ckpt_writer *w, const char *name, const char *value, grpo_error *err);
/* RNG state as raw 64-bit words (/state/rng), e.g. seed then per-rank counters. */
int ckpt_writer_put_rng(ckpt_writer *w, const uint64_t *words, size_t n, grpo_error *err);

/* Metadata text under /meta/<key>, e.g. "config_yaml", "model_config_json",
 * "tokenizer_hash". */
int ckpt_writer_put_meta(ckpt_writer *w, const char *key, const char *text, grpo_error *err);

/* Completes the file (and publishes it, for ckpt_writer_begin) and frees w, in
 * every case. On failure nothing is published and the partial file is removed. */
int ckpt_writer_finish(ckpt_writer *w, grpo_error *err);

/* Drops an unfinished checkpoint: closes and deletes the partial file. */
void ckpt_writer_abort(ckpt_writer *w);

/* ---- reading ---------------------------------------------------------------- */

typedef struct ckpt_tensor_info {
  char name[CKPT_NAME_MAX];
  ckpt_group group;
  ckpt_dtype dtype;
  int ndim;
  int64_t shape[CKPT_MAX_DIMS];
  int64_t numel;
} ckpt_tensor_info;

typedef enum ckpt_scalar_kind { CKPT_SCALAR_I64 = 0, CKPT_SCALAR_F64 = 1, CKPT_SCALAR_STR = 2 } ckpt_scalar_kind;

typedef struct ckpt_scalar {
  char name[CKPT_NAME_MAX];
  ckpt_scalar_kind kind;
  int64_t i64;
  double f64;
  const char *str; /* owned by the reader */
} ckpt_scalar;

typedef struct ckpt_reader ckpt_reader;

/* Opens a checkpoint and loads its catalogue: format version, step, tensor
 * list, /state scalars and /meta texts (tensor data is read on demand).
 * Missing, non-HDF5, truncated, corrupt and wrong-version files are errors
 * whose message names the file. */
int ckpt_reader_open(ckpt_reader **out, const char *path, grpo_error *err);
void ckpt_reader_close(ckpt_reader *r);

const char *ckpt_reader_path(const ckpt_reader *r);
int64_t ckpt_reader_step(const ckpt_reader *r);
int64_t ckpt_reader_format_version(const ckpt_reader *r);
const char *ckpt_reader_producer(const ckpt_reader *r);

/* Tensors of all groups, in write order within each group (model, m, v). */
int ckpt_reader_num_tensors(const ckpt_reader *r);
const ckpt_tensor_info *ckpt_reader_tensor(const ckpt_reader *r, int i);
const ckpt_tensor_info *ckpt_reader_find(const ckpt_reader *r, ckpt_group group,
                                         const char *name);
int ckpt_reader_count(const ckpt_reader *r, ckpt_group group);

/* Reads a whole tensor into buf (buf_elems elements of `want`). want may be the
 * stored dtype, or CKPT_F32 for a bf16 tensor (widened exactly), or CKPT_BF16
 * for an f32 tensor (rounded to nearest even). Checksums are verified. */
int ckpt_reader_read(ckpt_reader *r, const ckpt_tensor_info *t, ckpt_dtype want, void *buf,
                     size_t buf_elems, grpo_error *err);
/* Rows [row0, row0 + nrows) of the first dimension (ndim >= 1). */
int ckpt_reader_read_rows(ckpt_reader *r, const ckpt_tensor_info *t, int64_t row0,
                          int64_t nrows, ckpt_dtype want, void *buf, size_t buf_elems,
                          grpo_error *err);
/* By name: ENOTFOUND naming the file and tensor when absent. */
int ckpt_reader_read_named(ckpt_reader *r, ckpt_group group, const char *name, ckpt_dtype want,
                           void *buf, size_t buf_elems, grpo_error *err);

/* /state scalars other than step and rng, in write order. */
int ckpt_reader_num_scalars(const ckpt_reader *r);
const ckpt_scalar *ckpt_reader_scalar(const ckpt_reader *r, int i);
const ckpt_scalar *ckpt_reader_find_scalar(const ckpt_reader *r, const char *name);
int ckpt_reader_get_i64(const ckpt_reader *r, const char *name, int64_t *out, grpo_error *err);
int ckpt_reader_get_f64(const ckpt_reader *r, const char *name, double *out, grpo_error *err);
/* RNG words, NULL with *n = 0 when the checkpoint has none. */
const uint64_t *ckpt_reader_rng(const ckpt_reader *r, size_t *n);
/* /meta/<key> text, NULL when absent. */
const char *ckpt_reader_meta(const ckpt_reader *r, const char *key);
int ckpt_reader_num_meta(const ckpt_reader *r);
const char *ckpt_reader_meta_key(const ckpt_reader *r, int i);

/* ---- directories -------------------------------------------------------------- */

/* Opens `path` and, when full, reads every tensor (verifying checksums). */
int ckpt_verify(const char *path, int full, int64_t *step_out, grpo_error *err);

/* ckpt_resolve flags. */
#define CKPT_RESOLVE_VERIFY_ALL 1u /* read every tensor (checksums) before trusting a file */
#define CKPT_RESOLVE_CLEAN_TMP 2u  /* delete stale *.tmp; only when no writer can be running */

/* Newest valid checkpoint in dir: the one `latest` names if it verifies (and its
 * step matches its name), else the newest step file that does, logging a
 * warning. *.tmp files are never candidates. ENOTFOUND when dir holds no valid
 * checkpoint. path_out gets dir/step_N.h5. A trainer resuming calls it with
 * both flags; read-only tools (grpo inspect) with neither. */
int ckpt_resolve(const char *dir, unsigned flags, char *path_out, size_t cap, int64_t *step_out,
                 grpo_error *err);

/* Deletes all but the newest keep_last step files, never the one `latest` names. */
int ckpt_rotate(const char *dir, int keep_last, grpo_error *err);

/* File name of a step: "step_00000042.h5". */
void ckpt_step_filename(int64_t step, char *buf, size_t cap);

/* ---- inspection ----------------------------------------------------------------- */

/* Prints step, format version, each tensor with shape, dtype and L2 norm,
 * optimizer state presence, run state, metadata and the config YAML. */
int ckpt_summary(const char *path, FILE *out, grpo_error *err);

#endif
