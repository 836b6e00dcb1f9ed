#include "model/model_config.h"
#include "core/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field readers: each names the file and the field on error ---------- */

static const cJSON *field(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Reads an integer field; *out keeps its default when the field is absent or
 * null. required = 1 makes absence an error. */
static int get_int(const cJSON *obj, const char *key, int required, int *out, const char *name,
                   grpo_error *err) {
  const cJSON *v = field(obj, key);
  if (!v) {
    if (required) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: missing field \"%s\"", name, key);
    return GRPO_OK;
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
      fabs(v->valuedouble) > 2147483647.0)
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s\" must be an integer", name, key);
  *out = (int)v->valuedouble;
  return GRPO_OK;
}

static int get_num(const cJSON *obj, const char *key, double *out, const char *name,
                   grpo_error *err) {
  const cJSON *v = field(obj, key);
  if (!v) return GRPO_OK;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s\" must be a finite number", name, key);
  *out = v->valuedouble;
  return GRPO_OK;
}

static int get_bool(const cJSON *obj, const char *key, int *out, const char *name,
                    grpo_error *err) {
  const cJSON *v = field(obj, key);
  if (!v) return GRPO_OK;
  if (!cJSON_IsBool(v))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s\" must be true or false", name, key);
  *out = cJSON_IsTrue(v) ? 1 : 0;
  return GRPO_OK;
}

static int get_str(const cJSON *obj, const char *key, char *out, size_t cap, const char *name,
                   grpo_error *err) {
  const cJSON *v = field(obj, key);
  if (!v) return GRPO_OK;
  if (!cJSON_IsString(v))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s\" must be a string", name, key);
  if (strlen(v->valuestring) >= cap)
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s\" is too long", name, key);
  strcpy(out, v->valuestring);
  return GRPO_OK;
}

void model_config_defaults(model_config *cfg, model_arch arch) {
  memset(cfg, 0, sizeof *cfg);
  cfg->arch = arch;
  cfg->rms_eps = 1e-6f;
  cfg->rope_theta = 10000.0;
  cfg->rope_type = MODEL_ROPE_DEFAULT;
  cfg->max_pos = 32768;
  cfg->bos_id = -1;
  cfg->pad_id = -1;
  strcpy(cfg->hidden_act, "silu");
  switch (arch) {
    case MODEL_ARCH_QWEN2:
      strcpy(cfg->model_type, "qwen2");
      strcpy(cfg->architecture, "Qwen2ForCausalLM");
      cfg->qkv_bias = 1;
      break;
    case MODEL_ARCH_QWEN3:
      strcpy(cfg->model_type, "qwen3");
      strcpy(cfg->architecture, "Qwen3ForCausalLM");
      cfg->qk_norm = 1;
      cfg->head_dim = 128; /* Qwen3Config's default when head_dim is absent */
      break;
    case MODEL_ARCH_LLAMA:
      strcpy(cfg->model_type, "llama");
      strcpy(cfg->architecture, "LlamaForCausalLM");
      cfg->max_pos = 2048;
      break;
  }
}

/* rope_type + llama3 parameters from either rope_scaling (old) or
 * rope_parameters (new); both objects use the same keys. */
static int parse_rope_object(const cJSON *ro, const char *objname, model_config *cfg,
                             const char *name, grpo_error *err) {
  if (!cJSON_IsObject(ro))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s\" must be an object or null", name, objname);
  int rc;
  if ((rc = get_num(ro, "rope_theta", &cfg->rope_theta, name, err))) return rc;
  const cJSON *t = field(ro, "rope_type");
  if (!t) t = field(ro, "type"); /* pre-4.4x spelling */
  if (t && !cJSON_IsString(t))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"%s.rope_type\" must be a string", name,
                     objname);
  const char *type = t ? t->valuestring : "default";
  if (strcmp(type, "default") == 0) {
    cfg->rope_type = MODEL_ROPE_DEFAULT;
    return GRPO_OK;
  }
  if (strcmp(type, "llama3") != 0)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: field \"%s.rope_type\" = \"%s\" is not supported (default, llama3)", name,
                     objname, type);
  cfg->rope_type = MODEL_ROPE_LLAMA3;
  static const char *keys[] = {"factor", "low_freq_factor", "high_freq_factor",
                               "original_max_position_embeddings"};
  double vals[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4; i++) {
    if (!field(ro, keys[i]))
      return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: field \"%s.%s\" is required for rope_type llama3",
                       name, objname, keys[i]);
    if ((rc = get_num(ro, keys[i], &vals[i], name, err))) return rc;
  }
  cfg->rope_factor = vals[0];
  cfg->rope_low_freq_factor = vals[1];
  cfg->rope_high_freq_factor = vals[2];
  if (vals[3] != floor(vals[3]) || vals[3] < 1 || vals[3] > 1e9)
    return GRPO_FAIL(err, GRPO_EPARSE,
                     "%s: field \"%s.original_max_position_embeddings\" must be a positive integer",
                     name, objname);
  cfg->rope_orig_max_pos = (int)vals[3];
  if (!(cfg->rope_factor > 0) || !(cfg->rope_low_freq_factor > 0) ||
      !(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "%s: field \"%s\": llama3 scaling needs factor > 0 and "
                     "high_freq_factor > low_freq_factor > 0",
                     name, objname);
  return GRPO_OK;
}

static int parse_eos(const cJSON *root, model_config *cfg, const char *name, grpo_error *err) {
  const cJSON *v = field(root, "eos_token_id");
  cfg->n_eos = 0;
  if (!v) return GRPO_OK;
  if (cJSON_IsNumber(v)) {
    int id = 0, rc = get_int(root, "eos_token_id", 0, &id, name, err);
    if (rc) return rc;
    cfg->eos_ids[cfg->n_eos++] = id;
    return GRPO_OK;
  }
  if (!cJSON_IsArray(v))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"eos_token_id\" must be an integer or a list",
                     name);
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
        e->valuedouble > 2147483647.0)
      return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"eos_token_id[%d]\" must be an integer >= 0",
                       name, i);
    if (cfg->n_eos == MODEL_MAX_EOS)
      return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: field \"eos_token_id\" has more than %d ids",
                       name, MODEL_MAX_EOS);
    cfg->eos_ids[cfg->n_eos++] = (int)e->valuedouble;
    i++;
  }
  return GRPO_OK;
}

static int parse_root(const cJSON *root, model_config *cfg, const char *name, grpo_error *err) {
  int rc;
  if (!cJSON_IsObject(root))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: config.json must hold a JSON object", name);

  char mt[32] = "";
  if ((rc = get_str(root, "model_type", mt, sizeof mt, name, err))) return rc;
  if (!mt[0]) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: missing field \"model_type\"", name);
  model_arch arch;
  if (strcmp(mt, "qwen2") == 0)
    arch = MODEL_ARCH_QWEN2;
  else if (strcmp(mt, "qwen3") == 0)
    arch = MODEL_ARCH_QWEN3;
  else if (strcmp(mt, "llama") == 0)
    arch = MODEL_ARCH_LLAMA;
  else
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: field \"model_type\" = \"%s\" is not supported (qwen2, qwen3, llama)",
                     name, mt);
  model_config_defaults(cfg, arch);

  const cJSON *archs = field(root, "architectures");
  if (archs) {
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsArray(archs) || (a0 && !cJSON_IsString(a0)))
      return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"architectures\" must be a list of strings",
                       name);
    if (a0) {
      if (strlen(a0->valuestring) >= sizeof cfg->architecture)
        return GRPO_FAIL(err, GRPO_EPARSE, "%s: field \"architectures[0]\" is too long", name);
      strcpy(cfg->architecture, a0->valuestring);
    }
  }

  if ((rc = get_int(root, "hidden_size", 1, &cfg->hidden, name, err))) return rc;
  if ((rc = get_int(root, "num_hidden_layers", 1, &cfg->n_layers, name, err))) return rc;
  if ((rc = get_int(root, "num_attention_heads", 1, &cfg->n_heads, name, err))) return rc;
  if ((rc = get_int(root, "intermediate_size", 1, &cfg->ffn, name, err))) return rc;
  if ((rc = get_int(root, "vocab_size", 1, &cfg->vocab, name, err))) return rc;
  cfg->n_kv_heads = cfg->n_heads; /* absent or null: MHA */
  if ((rc = get_int(root, "num_key_value_heads", 0, &cfg->n_kv_heads, name, err))) return rc;
  /* head_dim absent: H / nh, except Qwen3Config which defaults to 128 */
  if (arch != MODEL_ARCH_QWEN3 && cfg->n_heads > 0) cfg->head_dim = cfg->hidden / cfg->n_heads;
  if ((rc = get_int(root, "head_dim", 0, &cfg->head_dim, name, err))) return rc;
  if ((rc = get_int(root, "max_position_embeddings", 0, &cfg->max_pos, name, err))) return rc;

  double eps = cfg->rms_eps;
  if ((rc = get_num(root, "rms_norm_eps", &eps, name, err))) return rc;
  cfg->rms_eps = (float)eps;

  if ((rc = get_str(root, "hidden_act", cfg->hidden_act, sizeof cfg->hidden_act, name, err)))
    return rc;
  if (strcmp(cfg->hidden_act, "silu") != 0)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: field \"hidden_act\" = \"%s\" is not supported (silu)", name,
                     cfg->hidden_act);

  /* RoPE: new spelling rope_parameters, else old rope_theta + rope_scaling. */
  if ((rc = get_num(root, "rope_theta", &cfg->rope_theta, name, err))) return rc;
  const cJSON *rp = field(root, "rope_parameters");
  const cJSON *rs = field(root, "rope_scaling");
  if (rp) {
    if ((rc = parse_rope_object(rp, "rope_parameters", cfg, name, err))) return rc;
  } else if (rs) {
    if ((rc = parse_rope_object(rs, "rope_scaling", cfg, name, err))) return rc;
  }

  int attention_bias = 0;
  if ((rc = get_bool(root, "attention_bias", &attention_bias, name, err))) return rc;
  if (arch == MODEL_ARCH_QWEN2) {
    cfg->qkv_bias = 1; /* Qwen2Attention hard-codes bias=True on q/k/v, none on o */
    cfg->o_bias = 0;
  } else {
    cfg->qkv_bias = cfg->o_bias = attention_bias;
  }
  if (arch == MODEL_ARCH_LLAMA) {
    if ((rc = get_bool(root, "mlp_bias", &cfg->mlp_bias, name, err))) return rc;
  }
  if ((rc = get_bool(root, "tie_word_embeddings", &cfg->tie_embeddings, name, err))) return rc;
  int sliding = 0;
  if ((rc = get_bool(root, "use_sliding_window", &sliding, name, err))) return rc;
  if (sliding)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: field \"use_sliding_window\" = true is not supported", name);

  if ((rc = get_int(root, "bos_token_id", 0, &cfg->bos_id, name, err))) return rc;
  if ((rc = get_int(root, "pad_token_id", 0, &cfg->pad_id, name, err))) return rc;
  if ((rc = parse_eos(root, cfg, name, err))) return rc;

  /* dtype (new) wins over torch_dtype (old). */
  if ((rc = get_str(root, "torch_dtype", cfg->dtype, sizeof cfg->dtype, name, err))) return rc;
  if ((rc = get_str(root, "dtype", cfg->dtype, sizeof cfg->dtype, name, err))) return rc;
  return model_config_validate(cfg, name, err);
}

int model_config_validate(const model_config *cfg, const char *name, grpo_error *err) {
  struct {
    const char *field;
    long v;
    long max;
  } pos[] = {
      {"hidden_size", cfg->hidden, 1 << 20},
      {"num_hidden_layers", cfg->n_layers, 4096},
      {"num_attention_heads", cfg->n_heads, 4096},
      {"num_key_value_heads", cfg->n_kv_heads, 4096},
      {"head_dim", cfg->head_dim, 65536},
      {"intermediate_size", cfg->ffn, 1 << 22},
      {"vocab_size", cfg->vocab, 1 << 26},
      {"max_position_embeddings", cfg->max_pos, 1L << 30},
  };
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (pos[i].v < 1 || pos[i].v > pos[i].max)
      return GRPO_FAIL(err, GRPO_EINVAL, "%s: field \"%s\" = %ld is out of range [1, %ld]", name,
                       pos[i].field, pos[i].v, pos[i].max);
  if (cfg->n_heads % cfg->n_kv_heads != 0)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "%s: field \"num_key_value_heads\" = %d must divide num_attention_heads = %d",
                     name, cfg->n_kv_heads, cfg->n_heads);
  if (cfg->head_dim % 2 != 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: field \"head_dim\" = %d must be even (RoPE)", name,
                     cfg->head_dim);
  if (!(cfg->rms_eps > 0) || !isfinite(cfg->rms_eps))
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: field \"rms_norm_eps\" must be > 0", name);
  if (!(cfg->rope_theta > 1.0) || !isfinite(cfg->rope_theta))
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: field \"rope_theta\" must be > 1", name);
  /* Sizes must fit the parameter table's size_t arithmetic comfortably. */
  if ((double)cfg->vocab * cfg->hidden > 4e10 ||
      (double)cfg->n_heads * cfg->head_dim * cfg->hidden > 4e10)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: model too large", name);
  for (int i = 0; i < cfg->n_eos; i++)
    if (cfg->eos_ids[i] < 0)
      return GRPO_FAIL(err, GRPO_EINVAL, "%s: field \"eos_token_id\" must be >= 0", name);
  return GRPO_OK;
}

int model_config_parse(model_config *cfg, const char *json, size_t len, const char *name,
                       grpo_error *err) {
  if (!name) name = "config.json";
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    long off = (at && at >= json && at <= json + len) ? (long)(at - json) : -1;
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: invalid JSON (near byte %ld)", name, off);
  }
  model_config tmp;
  int rc = parse_root(root, &tmp, name, err);
  cJSON_Delete(root);
  if (rc == GRPO_OK) *cfg = tmp;
  return rc;
}

int model_config_load(model_config *cfg, const char *path, grpo_error *err) {
  char *buf;
  size_t n;
  int rc = grpo_read_file(path, (size_t)64 << 20, &buf, &n, err);
  if (rc) return rc;
  rc = model_config_parse(cfg, buf, n, path, err);
  free(buf);
  return rc;
}

static const char *dtype_or_default(const model_config *cfg) {
  return cfg->dtype[0] ? cfg->dtype : "float32";
}

char *model_config_to_json(const model_config *cfg) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON *archs = cJSON_AddArrayToObject(o, "architectures");
  if (archs) cJSON_AddItemToArray(archs, cJSON_CreateString(cfg->architecture));
  cJSON_AddStringToObject(o, "model_type", cfg->model_type);
  cJSON_AddNumberToObject(o, "hidden_size", cfg->hidden);
  cJSON_AddNumberToObject(o, "intermediate_size", cfg->ffn);
  cJSON_AddNumberToObject(o, "num_hidden_layers", cfg->n_layers);
  cJSON_AddNumberToObject(o, "num_attention_heads", cfg->n_heads);
  cJSON_AddNumberToObject(o, "num_key_value_heads", cfg->n_kv_heads);
  cJSON_AddNumberToObject(o, "head_dim", cfg->head_dim);
  cJSON_AddNumberToObject(o, "vocab_size", cfg->vocab);
  cJSON_AddNumberToObject(o, "max_position_embeddings", cfg->max_pos);
  cJSON_AddStringToObject(o, "hidden_act", cfg->hidden_act);
  /* the shortest decimal that reads back as the same float: 1e-05, not
   * 9.99999975e-06 */
  char eps[32];
  for (int prec = 1; prec <= 9; prec++) {
    snprintf(eps, sizeof eps, "%.*g", prec, (double)cfg->rms_eps);
    if ((float)strtod(eps, NULL) == cfg->rms_eps) break;
  }
  cJSON_AddNumberToObject(o, "rms_norm_eps", strtod(eps, NULL));
  cJSON_AddNumberToObject(o, "rope_theta", cfg->rope_theta);
  if (cfg->rope_type == MODEL_ROPE_LLAMA3) {
    cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
    if (rs) {
      cJSON_AddStringToObject(rs, "rope_type", "llama3");
      cJSON_AddNumberToObject(rs, "factor", cfg->rope_factor);
      cJSON_AddNumberToObject(rs, "low_freq_factor", cfg->rope_low_freq_factor);
      cJSON_AddNumberToObject(rs, "high_freq_factor", cfg->rope_high_freq_factor);
      cJSON_AddNumberToObject(rs, "original_max_position_embeddings", cfg->rope_orig_max_pos);
    }
  } else {
    cJSON_AddNullToObject(o, "rope_scaling");
  }
  if (cfg->arch != MODEL_ARCH_QWEN2) cJSON_AddBoolToObject(o, "attention_bias", cfg->o_bias);
  if (cfg->arch == MODEL_ARCH_LLAMA) cJSON_AddBoolToObject(o, "mlp_bias", cfg->mlp_bias);
  cJSON_AddBoolToObject(o, "tie_word_embeddings", cfg->tie_embeddings);
  if (cfg->arch != MODEL_ARCH_LLAMA) cJSON_AddBoolToObject(o, "use_sliding_window", 0);
  if (cfg->bos_id >= 0)
    cJSON_AddNumberToObject(o, "bos_token_id", cfg->bos_id);
  else
    cJSON_AddNullToObject(o, "bos_token_id");
  if (cfg->pad_id >= 0) cJSON_AddNumberToObject(o, "pad_token_id", cfg->pad_id);
  if (cfg->n_eos == 1) {
    cJSON_AddNumberToObject(o, "eos_token_id", cfg->eos_ids[0]);
  } else if (cfg->n_eos > 1) {
    cJSON *e = cJSON_AddArrayToObject(o, "eos_token_id");
    for (int i = 0; e && i < cfg->n_eos; i++)
      cJSON_AddItemToArray(e, cJSON_CreateNumber(cfg->eos_ids[i]));
  }
  cJSON_AddStringToObject(o, "torch_dtype", dtype_or_default(cfg));
  cJSON_AddNumberToObject(o, "initializer_range", 0.02);
  cJSON_AddBoolToObject(o, "use_cache", 1);
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  return s;
}

int model_config_save(const model_config *cfg, const char *path, grpo_error *err) {
  char *s = model_config_to_json(cfg);
  if (!s) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(s);
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot create: %s", path, strerror(errno));
  }
  size_t n = strlen(s);
  int bad = fwrite(s, 1, n, f) != n || fputc('\n', f) == EOF;
  bad |= fclose(f) != 0;
  free(s);
  if (bad) return GRPO_FAIL(err, GRPO_EIO, "%s: write error", path);
  return GRPO_OK;
}

void model_config_rope_inv_freq(const model_config *cfg, float *inv_freq) {
  const int d = cfg->head_dim;
  const float base = (float)cfg->rope_theta;
  for (int j = 0; j < d / 2; j++) {
    /* as HF: arange(0, d, 2).float() / d, base ** that, 1 / that, all fp32 */
    float e = (float)(2 * j) / (float)d;
    inv_freq[j] = 1.0f / (float)pow((double)base, (double)e);
  }
  if (cfg->rope_type != MODEL_ROPE_LLAMA3) return;
  /* Mirrors transformers' _compute_llama3_parameters in fp32: python scalars
   * become fp32 operands and `c / t` is evaluated as reciprocal(t) * c. */
  const float two_pi = (float)(2.0 * 3.14159265358979323846);
  const float factor = (float)cfg->rope_factor;
  const float lo = (float)cfg->rope_low_freq_factor;
  const float old_ctx = (float)cfg->rope_orig_max_pos;
  const float low_wavelen = (float)(cfg->rope_orig_max_pos / cfg->rope_low_freq_factor);
  const float high_wavelen = (float)(cfg->rope_orig_max_pos / cfg->rope_high_freq_factor);
  const float band = (float)(cfg->rope_high_freq_factor - cfg->rope_low_freq_factor);
  for (int j = 0; j < d / 2; j++) {
    float f = inv_freq[j];
    float wavelen = (1.0f / f) * two_pi;
    float scaled = (wavelen > low_wavelen) ? f / factor : f;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
      float smooth = ((1.0f / wavelen) * old_ctx - lo) / band;
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    inv_freq[j] = scaled;
  }
}

size_t model_config_num_params(const model_config *c) {
  size_t H = (size_t)c->hidden, q = (size_t)c->n_heads * c->head_dim,
         kv = (size_t)c->n_kv_heads * c->head_dim, I = (size_t)c->ffn, V = (size_t)c->vocab;
  size_t layer = 2 * H + H * q + 2 * H * kv + q * H + 3 * H * I;
  if (c->qkv_bias) layer += q + 2 * kv;
  if (c->o_bias) layer += H;
  if (c->qk_norm) layer += 2 * (size_t)c->head_dim;
  if (c->mlp_bias) layer += 2 * I + H;
  size_t n = V * H + H + layer * (size_t)c->n_layers;
  if (!c->tie_embeddings) n += V * H;
  return n;
}
