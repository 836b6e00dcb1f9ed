/* safetensors reader and writer (huggingface/safetensors format).
 *
 * File: u64 little-endian N, N bytes of JSON header, then the data buffer.
 * The header is untrusted: it must be at most CKPT_ST_MAX_HEADER bytes, valid JSON
 * with one object per tensor {"dtype","shape","data_offsets"} (plus an optional
 * "__metadata__" object of strings), known dtypes, shapes whose byte size
 * equals end - begin, no duplicate names, and offsets that tile the data
 * buffer exactly (sorted by offset: from 0, no gap, no overlap, up to the end
 * of the file). Any violation is an error naming the file and the tensor.
 *
 * Sharded models: model.safetensors.index.json {"metadata":{...},
 * "weight_map":{name: shard file}}; every listed tensor must exist in its shard.
 *
 * Data is converted to f32 on load from F32, BF16 and F16 (core/dtype.h). Writers pad the
 * header with spaces to a multiple of 8 and order tensors as the Python
 * safetensors library does (larger dtypes first, then by name), so a file it
 * wrote is reproduced byte for byte from the same tensors and metadata. */
#ifndef GRPO_CHECKPOINTS_SAFETENSORS_H
#define GRPO_CHECKPOINTS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CKPT_ST_MAX_HEADER (100u * 1000u * 1000u) /* bytes, as the Rust reader */
#define CKPT_ST_MAX_DIMS   8

typedef enum ckpt_st_dtype {
  CKPT_ST_BOOL = 0,
  CKPT_ST_U8,
  CKPT_ST_I8,
  CKPT_ST_F8_E5M2,
  CKPT_ST_F8_E4M3,
  CKPT_ST_F8_E8M0,
  CKPT_ST_I16,
  CKPT_ST_U16,
  CKPT_ST_F16,
  CKPT_ST_BF16,
  CKPT_ST_I32,
  CKPT_ST_U32,
  CKPT_ST_F32,
  CKPT_ST_F64,
  CKPT_ST_I64,
  CKPT_ST_U64,
  CKPT_ST_C64,
  CKPT_ST_DTYPE_COUNT
} ckpt_st_dtype;

/* "F32" etc.; element size in bytes. */
const char *ckpt_st_dtype_name(ckpt_st_dtype d);
size_t ckpt_st_dtype_size(ckpt_st_dtype d);
/* Returns 0 and sets *d for a known dtype string, -1 otherwise. */
int ckpt_st_dtype_parse(const char *s, ckpt_st_dtype *d);

typedef struct ckpt_st_tensor {
  char *name;
  ckpt_st_dtype dtype;
  int ndim;
  int64_t shape[CKPT_ST_MAX_DIMS];
  uint64_t numel;
  uint64_t begin, end; /* byte offsets into the data buffer, end exclusive */
  int shard;           /* index into ckpt_st_model.shards */
} ckpt_st_tensor;

typedef struct ckpt_st_header {
  int n;
  ckpt_st_tensor *tensors; /* in file (offset) order */
  char *metadata;          /* the "__metadata__" object as compact JSON, or NULL */
} ckpt_st_header;

/* Validates a header (json, len bytes) against a data buffer of data_size
 * bytes. `name` (the file) prefixes errors. On failure *h is left empty. */
int ckpt_st_parse_header(const char *json, size_t len, uint64_t data_size, const char *name,
                         ckpt_st_header *h, grpo_error *err);

/* Validates a whole safetensors file held in memory (fuzz target entry). */
int ckpt_st_parse_buffer(const uint8_t *buf, size_t size, const char *name, ckpt_st_header *h,
                         grpo_error *err);

void ckpt_st_header_free(ckpt_st_header *h);

typedef struct ckpt_st_shard {
  char *path;
  ckpt_st_header h;
  uint64_t data_start; /* 8 + N */
} ckpt_st_shard;

typedef struct ckpt_st_model {
  int n_shards;
  ckpt_st_shard *shards;
  int n;                   /* tensors over all shards */
  ckpt_st_tensor **sorted; /* by name, for lookups */
  char *index_metadata;    /* the index's "metadata" object as compact JSON, or NULL */
  int from_index;          /* opened through a model.safetensors.index.json */
} ckpt_st_model;

/* Opens a model: `path` is a .safetensors file, a .safetensors.index.json, or
 * a directory holding model.safetensors.index.json or model.safetensors
 * (the index wins). Headers are read and validated; data stays on disk. */
int ckpt_st_open(ckpt_st_model *m, const char *path, grpo_error *err);
void ckpt_st_close(ckpt_st_model *m);

/* NULL when absent. */
const ckpt_st_tensor *ckpt_st_find(const ckpt_st_model *m, const char *name);

/* Reads the raw bytes (end - begin of them) of a tensor. */
int ckpt_st_read_raw(const ckpt_st_model *m, const ckpt_st_tensor *t, void *out, grpo_error *err);

/* Reads tensor `name` converted to f32 (from F32, BF16, F16); numel must equal
 * the tensor's element count. Errors name the file and the tensor. */
int ckpt_st_read_f32(const ckpt_st_model *m, const char *name, float *out, size_t numel,
                     grpo_error *err);

/* Reads an integer tensor (I32 or I64, range-checked) into int32. */
int ckpt_st_read_i32(const ckpt_st_model *m, const char *name, int32_t *out, size_t numel,
                     grpo_error *err);

/* One tensor to write: raw little-endian bytes in `dtype`, C order. */
typedef struct ckpt_st_write_tensor {
  const char *name;
  ckpt_st_dtype dtype;
  int ndim;
  int64_t shape[CKPT_ST_MAX_DIMS];
  const void *data;
} ckpt_st_write_tensor;

/* Writes one file. metadata: a JSON object of strings for "__metadata__"
 * (e.g. "{\"format\":\"pt\"}") or NULL. Written to path.tmp then renamed. */
int ckpt_st_write_file(const char *path, const ckpt_st_write_tensor *t, int n, const char *metadata,
                       grpo_error *err);

/* Writes a model into dir: model.safetensors when the data fits in
 * max_shard_bytes (0 = no limit), else model-0000K-of-0000N.safetensors shards
 * (tensors in name order, a new shard when the next tensor would overflow) and
 * model.safetensors.index.json with metadata.total_size. */
int ckpt_st_write_model(const char *dir, const ckpt_st_write_tensor *t, int n, const char *metadata,
                        uint64_t max_shard_bytes, grpo_error *err);

#endif
