/* Hugging Face model directories <-> grpo parameters and HDF5 checkpoints.
 *
 * A HF model directory holds config.json, model.safetensors (or shards plus
 * model.safetensors.index.json) and tokenizer files. grpo trains on a
 * model_params (one f32 buffer); checkpoints are HDF5 (checkpoints/ckpt.h).
 *
 * `grpo convert` keeps everything needed to rebuild the directory inside the
 * HDF5 file, so h52hf needs nothing but the .h5:
 *   /model/<name>                 each tensor: F32 and BF16 as stored, F16 widened to f32
 *   /meta/model_config_json       config.json, byte for byte
 *   /meta/safetensors_layout      JSON: shard files, tensor order per shard, each
 *                                 shard's __metadata__, the index metadata, and which
 *                                 tensors were F16 (narrowed back exactly on export)
 *   /meta/hf_file.<file name>     the bytes of each tokenizer/generation file found
 *                                 (CKPT_HF_FILES), so h52hf writes them back
 * Hence safetensors -> HDF5 -> safetensors reproduces every .safetensors file
 * bit for bit (the index JSON is rewritten with the same content).
 * Checkpoints written by training (no safetensors_layout) export as one
 * model.safetensors, sharded above CKPT_HF_SHARD_BYTES. */
#ifndef GRPO_CHECKPOINTS_HF_IO_H
#define GRPO_CHECKPOINTS_HF_IO_H

#include <stdint.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "core/error.h"
#include "model/params.h"
#include "model/prm.h"

#define CKPT_HF_SHARD_BYTES 5000000000ull /* transformers' default max_shard_size "5GB" */

/* Tokenizer and generation files copied alongside the weights, when present. */
extern const char *const CKPT_HF_FILES[];

/* Loads dir/config.json and the safetensors weights (converted to f32) into p
 * (which this initialises). Every table tensor must be present with its shape;
 * when lm_head.weight is absent the embeddings are tied (as HF does); extra
 * tensors are ignored with a warning. Errors name the file and tensor. */
int ckpt_hf_load(const char *dir, model_params *p, grpo_error *err);

/* Loads a process reward model directory (Qwen2ForProcessRewardModel layout,
 * model/prm.h): the backbone tensors into backbone (lm_head never needed: the
 * table is built tied) and score.0 / score.2 into head (n_labels from
 * score.2.weight). Hand both to model_prm_create. Errors name the file and
 * tensor; a directory without score.2.weight is "not a process reward model". */
int ckpt_hf_load_prm(const char *dir, model_params *backbone, model_prm_head *head,
                     grpo_error *err);

/* Writes p as a HF model directory (created if missing): config.json with
 * torch_dtype set from dtype, safetensors in dtype (CKPT_ST_F32 or
 * CKPT_ST_BF16, rounded to nearest even), sharded above max_shard_bytes
 * (0 = CKPT_HF_SHARD_BYTES), and the CKPT_HF_FILES found in tokenizer_dir
 * (NULL = none). */
int ckpt_hf_save(const model_params *p, const char *dir, ckpt_st_dtype dtype,
                 uint64_t max_shard_bytes, const char *tokenizer_dir, grpo_error *err);

/* Copies the CKPT_HF_FILES present in src_dir to dst_dir. */
int ckpt_hf_copy_files(const char *src_dir, const char *dst_dir, grpo_error *err);

/* Writes p's tensors under /model (in dtype) and /meta/model_config_json. */
int ckpt_put_params(ckpt_writer *w, const model_params *p, ckpt_dtype dtype, grpo_error *err);

/* Initialises p from /meta/model_config_json and the /model tensors of r
 * (bf16 widened to f32). */
int ckpt_load_params(ckpt_reader *r, model_params *p, grpo_error *err);

/* `grpo convert hf2h5`: HF directory -> HDF5 file at h5_path (step 0). */
int ckpt_hf_to_h5(const char *hf_dir, const char *h5_path, grpo_error *err);

/* `grpo convert h52hf`: HDF5 checkpoint -> HF directory. dtype CKPT_ST_F32 or
 * CKPT_ST_BF16 converts every tensor; any other value keeps the stored dtypes
 * (and the original layout when the file came from hf2h5). */
int ckpt_h5_to_hf(const char *h5_path, const char *out_dir, int dtype, grpo_error *err);

#define CKPT_HF_KEEP_DTYPE (-1)

#endif
