/* Model configuration: the fields of a Hugging Face config.json that the
 * decoder needs, for the qwen2, qwen3 and llama families.
 *
 * Both spellings are read: the older one (top-level rope_theta + rope_scaling,
 * torch_dtype) and the newer transformers-v5 one (rope_parameters, dtype).
 * Missing num_key_value_heads means MHA; missing head_dim means H / nh; EOS may
 * be an int or a list. Errors name the file and the field. */
#ifndef GRPO_MODEL_MODEL_CONFIG_H
#define GRPO_MODEL_MODEL_CONFIG_H

#include <stddef.h>

#include "core/error.h"

typedef enum model_arch {
  MODEL_ARCH_QWEN2 = 0, /* q/k/v bias, o_proj without */
  MODEL_ARCH_QWEN3 = 1, /* q_norm/k_norm over head_dim, explicit head_dim */
  MODEL_ARCH_LLAMA = 2, /* optional llama3 rope scaling */
} model_arch;

typedef enum model_rope_type {
  MODEL_ROPE_DEFAULT = 0,
  MODEL_ROPE_LLAMA3 = 1, /* Llama 3.1/3.2 frequency-dependent scaling */
} model_rope_type;

#define MODEL_MAX_EOS 8

typedef struct model_config {
  model_arch arch;
  char model_type[32];   /* "qwen2", "qwen3", "llama" */
  char architecture[64]; /* architectures[0], e.g. "Qwen2ForCausalLM" */
  int hidden;            /* hidden_size (H) */
  int n_layers;          /* num_hidden_layers */
  int n_heads;           /* num_attention_heads (nh) */
  int n_kv_heads;        /* num_key_value_heads (nkv); nh when absent */
  int head_dim;          /* head_dim (hd); H / nh when absent */
  int ffn;               /* intermediate_size (I) */
  int vocab;             /* vocab_size (V) */
  int max_pos;           /* max_position_embeddings */
  float rms_eps;         /* rms_norm_eps */
  double rope_theta;
  model_rope_type rope_type;
  /* llama3 scaling (rope_type == MODEL_ROPE_LLAMA3 only) */
  double rope_factor;
  double rope_low_freq_factor;
  double rope_high_freq_factor;
  int rope_orig_max_pos; /* original_max_position_embeddings */
  int qkv_bias;          /* q/k/v projections carry a bias */
  int o_bias;            /* o_proj carries a bias (attention_bias in qwen3/llama) */
  int mlp_bias;          /* gate/up/down carry biases (llama mlp_bias) */
  int qk_norm;           /* q_norm/k_norm weights (qwen3) */
  int tie_embeddings;    /* tie_word_embeddings: lm_head = embed_tokens */
  int bos_id;            /* -1 when absent/null */
  int pad_id;            /* -1 when absent/null */
  int eos_ids[MODEL_MAX_EOS];
  int n_eos;
  char dtype[16];      /* torch_dtype / dtype, e.g. "bfloat16"; "" when absent */
  char hidden_act[16]; /* "silu" (the only activation supported) */
} model_config;

/* Parses config.json text (len bytes, need not be NUL-terminated). `name`
 * (usually the path) prefixes every error message. */
int model_config_parse(model_config *cfg, const char *json, size_t len, const char *name,
                       grpo_error *err);

/* Reads and parses the file at path. */
int model_config_load(model_config *cfg, const char *path, grpo_error *err);

/* Checks the invariants the model code relies on (positive sizes, nh % nkv == 0,
 * even head_dim, ...). Called by parse; call it after building a config by hand. */
int model_config_validate(const model_config *cfg, const char *name, grpo_error *err);

/* A HF-style config.json text (old spelling: rope_theta/rope_scaling and
 * torch_dtype, which both transformers v4 and v5 read). malloc'd; NULL on OOM. */
char *model_config_to_json(const model_config *cfg);

/* Writes model_config_to_json to path. */
int model_config_save(const model_config *cfg, const char *path, grpo_error *err);

/* Defaults for a built-in config of the given family (eps, theta, biases,
 * model_type, architecture); the caller sets the sizes, then validates. */
void model_config_defaults(model_config *cfg, model_arch arch);

/* RoPE inverse frequencies, head_dim / 2 entries, computed as HF does in fp32
 * (theta^(-2j/d)), with llama3 scaling applied when configured. */
void model_config_rope_inv_freq(const model_config *cfg, float *inv_freq);

/* Number of parameters (lm_head counted once when tied). */
size_t model_config_num_params(const model_config *cfg);

#endif
