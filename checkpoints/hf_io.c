#include "checkpoints/hf_io.h"
#include "core/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "core/log.h"

const char *const CKPT_HF_FILES[] = {
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
    NULL,
};

#define LAYOUT_KEY      "safetensors_layout"
#define CONFIG_KEY      "model_config_json"
#define FILE_KEY_PREFIX "hf_file."

/* ---- small file helpers --------------------------------------------------------- */


static int write_file(const char *path, const void *data, size_t n, grpo_error *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return GRPO_FAIL(err, GRPO_EIO, "%s: cannot create: %s", path, strerror(errno));
  int bad = fwrite(data, 1, n, f) != n;
  bad |= fclose(f) != 0;
  if (bad) return GRPO_FAIL(err, GRPO_EIO, "%s: write failed", path);
  return GRPO_OK;
}

static int ensure_dir(const char *dir, grpo_error *err) {
  struct stat st;
  if (stat(dir, &st) == 0)
    return S_ISDIR(st.st_mode) ? GRPO_OK
                               : GRPO_FAIL(err, GRPO_EIO, "%s: exists and is not a directory", dir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  return GRPO_OK;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ckpt_hf_copy_files(const char *src_dir, const char *dst_dir, grpo_error *err) {
  for (int i = 0; CKPT_HF_FILES[i]; i++) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", src_dir, CKPT_HF_FILES[i]);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, CKPT_HF_FILES[i]);
    if (!is_file(src)) continue;
    char *buf;
    size_t n;
    int rc = grpo_read_file(src, (size_t)1 << 30, &buf, &n, err);
    if (!rc) rc = write_file(dst, buf, n, err);
    if (!rc) free(buf);
    if (rc) return rc;
  }
  return GRPO_OK;
}

/* ---- HF directory <-> model_params ------------------------------------------------ */

static int shape_matches(const model_param_info *e, int ndim, const int64_t *shape) {
  if (ndim != e->ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (shape[i] != e->shape[i]) return 0;
  return 1;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t at = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && at < cap; i++)
    at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* The model's tensor e must be in the safetensors with the shape config.json implies. */
static int check_tensor(const ckpt_st_model *m, const model_param_info *e, const char *dir, grpo_error *err) {
  const ckpt_st_tensor *t = ckpt_st_find(m, e->name);
  if (!t) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: missing tensor \"%s\"", dir, e->name);
  if (!shape_matches(e, t->ndim, t->shape)) {
    char got[128], want[128];
    shape_str(t->ndim, t->shape, got, sizeof got);
    shape_str(e->ndim, e->shape, want, sizeof want);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor \"%s\" has shape %s, config.json implies %s",
                     m->shards[t->shard].path, e->name, got, want);
  }
  return GRPO_OK;
}

/* An HF directory's config.json and safetensors index. */
static int hf_open(const char *dir, model_config *cfg, ckpt_st_model *m, grpo_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  int rc = model_config_load(cfg, path, err);
  return rc ? rc : ckpt_st_open(m, dir, err);
}

int ckpt_hf_load(const char *dir, model_params *p, grpo_error *err) {
  memset(p, 0, sizeof *p);
  model_config cfg;
  ckpt_st_model m;
  int rc = hf_open(dir, &cfg, &m, err);
  if (rc) return rc;
  if (!cfg.tie_embeddings && !ckpt_st_find(&m, "lm_head.weight")) {
    GRPO_WARN("%s: no lm_head.weight; tying it to model.embed_tokens.weight", dir);
    cfg.tie_embeddings = 1;
  }
  if ((rc = model_params_init(p, &cfg, err))) goto done;
  for (int i = 0; i < p->n; i++) {
    const model_param_info *e = &p->info[i];
    if ((rc = check_tensor(&m, e, dir, err))) goto done;
    if ((rc = ckpt_st_read_f32(&m, e->name, p->data + e->offset, e->numel, err))) goto done;
  }
  int extra = m.n - p->n;
  if (extra > 0 && !(extra == 1 && cfg.tie_embeddings && ckpt_st_find(&m, "lm_head.weight")))
    GRPO_WARN("%s: %d tensor(s) not used by the model were ignored", dir, extra);
done:
  ckpt_st_close(&m);
  if (rc) model_params_free(p);
  return rc;
}

int ckpt_hf_load_prm(const char *dir, model_params *backbone, model_prm_head *head,
                     grpo_error *err) {
  memset(backbone, 0, sizeof *backbone);
  memset(head, 0, sizeof *head);
  model_config cfg;
  ckpt_st_model m;
  int rc = hf_open(dir, &cfg, &m, err);
  if (rc) return rc;
  /* A PRM reads no logits: tying makes the table ask for no lm_head. */
  int has_lm_head = ckpt_st_find(&m, "lm_head.weight") != NULL;
  cfg.tie_embeddings = 1;
  const ckpt_st_tensor *w2 = ckpt_st_find(&m, MODEL_PRM_HEAD_NAMES[2]);
  if (!w2 || w2->ndim != 2) {
    rc = GRPO_FAIL(err, GRPO_ENOTFOUND,
                   "%s: no 2-D tensor \"%s\": not a process reward model (%s)", dir,
                   MODEL_PRM_HEAD_NAMES[2], cfg.architecture);
    goto done;
  }
  if ((rc = model_prm_head_alloc(head, cfg.hidden, (int)w2->shape[0], err))) goto done;
  if ((rc = model_params_init(backbone, &cfg, err))) goto done;
  for (int i = 0; i < backbone->n; i++) {
    const model_param_info *e = &backbone->info[i];
    if ((rc = check_tensor(&m, e, dir, err))) goto done;
    if ((rc = ckpt_st_read_f32(&m, e->name, backbone->data + e->offset, e->numel, err))) goto done;
  }
  for (int i = 0; i < MODEL_PRM_N_HEAD; i++) {
    model_param_info e;
    memset(&e, 0, sizeof e);
    snprintf(e.name, sizeof e.name, "%s", MODEL_PRM_HEAD_NAMES[i]);
    float *dst = model_prm_head_tensor(head, i, &e.ndim, e.shape);
    e.numel = (size_t)e.shape[0] * (size_t)(e.ndim == 2 ? e.shape[1] : 1);
    if ((rc = check_tensor(&m, &e, dir, err))) goto done;
    if ((rc = ckpt_st_read_f32(&m, e.name, dst, e.numel, err))) goto done;
  }
  int extra = m.n - backbone->n - MODEL_PRM_N_HEAD - has_lm_head;
  if (extra > 0) GRPO_WARN("%s: %d tensor(s) not used by the PRM were ignored", dir, extra);
done:
  ckpt_st_close(&m);
  if (rc) {
    model_params_free(backbone);
    model_prm_head_free(head);
  }
  return rc;
}

/* Tensors of p in table order, in dtype; *bf16 holds the narrowed copy. */
static int params_as_tensors(const model_params *p, ckpt_st_dtype dtype, ckpt_st_write_tensor **out,
                             uint16_t **narrow, grpo_error *err) {
  *out = calloc((size_t)p->n, sizeof **out);
  *narrow = NULL;
  if (!*out) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  if (dtype == CKPT_ST_BF16) {
    *narrow = malloc(p->total * sizeof(uint16_t));
    if (!*narrow) {
      free(*out);
      return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory (bf16 copy of %zu floats)", p->total);
    }
    grpo_f32_to_bf16_n(*narrow, p->data, p->total);
  }
  for (int i = 0; i < p->n; i++) {
    const model_param_info *e = &p->info[i];
    ckpt_st_write_tensor *t = &(*out)[i];
    t->name = e->name;
    t->dtype = dtype;
    t->ndim = e->ndim;
    t->shape[0] = e->shape[0];
    t->shape[1] = e->shape[1];
    t->data = dtype == CKPT_ST_BF16 ? (const void *)(*narrow + e->offset)
                                    : (const void *)(p->data + e->offset);
  }
  return GRPO_OK;
}

int ckpt_hf_save(const model_params *p, const char *dir, ckpt_st_dtype dtype,
                 uint64_t max_shard_bytes, const char *tokenizer_dir, grpo_error *err) {
  if (dtype != CKPT_ST_F32 && dtype != CKPT_ST_BF16)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: safetensors export supports F32 and BF16, not %s", dir,
                     ckpt_st_dtype_name(dtype));
  int rc = ensure_dir(dir, err);
  if (rc) return rc;
  model_config cfg = p->cfg;
  snprintf(cfg.dtype, sizeof cfg.dtype, "%s", dtype == CKPT_ST_BF16 ? "bfloat16" : "float32");
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  if ((rc = model_config_save(&cfg, path, err))) return rc;
  ckpt_st_write_tensor *t;
  uint16_t *narrow;
  if ((rc = params_as_tensors(p, dtype, &t, &narrow, err))) return rc;
  rc = ckpt_st_write_model(dir, t, p->n, "{\"format\":\"pt\"}",
                           max_shard_bytes ? max_shard_bytes : CKPT_HF_SHARD_BYTES, err);
  free(t);
  free(narrow);
  if (!rc && tokenizer_dir) rc = ckpt_hf_copy_files(tokenizer_dir, dir, err);
  return rc;
}

/* ---- model_params <-> HDF5 checkpoint --------------------------------------------- */

int ckpt_put_params(ckpt_writer *w, const model_params *p, ckpt_dtype dtype, grpo_error *err) {
  char *json = model_config_to_json(&p->cfg);
  if (!json) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  int rc = ckpt_writer_put_meta(w, CONFIG_KEY, json, err);
  free(json);
  if (rc) return rc;
  uint16_t *tmp = NULL;
  if (dtype == CKPT_BF16) {
    size_t most = 0;
    for (int i = 0; i < p->n; i++)
      if (p->info[i].numel > most) most = p->info[i].numel;
    tmp = malloc((most ? most : 1) * sizeof *tmp);
    if (!tmp) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  }
  for (int i = 0; i < p->n && !rc; i++) {
    const model_param_info *e = &p->info[i];
    const void *data = p->data + e->offset;
    if (tmp) {
      grpo_f32_to_bf16_n(tmp, p->data + e->offset, e->numel);
      data = tmp;
    }
    rc = ckpt_writer_put_tensor(w, CKPT_MODEL, e->name, dtype, e->ndim, e->shape, data, err);
  }
  free(tmp);
  return rc;
}

int ckpt_load_params(ckpt_reader *r, model_params *p, grpo_error *err) {
  memset(p, 0, sizeof *p);
  const char *path = ckpt_reader_path(r);
  const char *json = ckpt_reader_meta(r, CONFIG_KEY);
  if (!json)
    return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no /meta/%s (not a model checkpoint)", path,
                     CONFIG_KEY);
  char name[4200];
  snprintf(name, sizeof name, "%s:/meta/%s", path, CONFIG_KEY);
  model_config cfg;
  int rc = model_config_parse(&cfg, json, strlen(json), name, err);
  if (rc) return rc;
  if (!cfg.tie_embeddings && !ckpt_reader_find(r, CKPT_MODEL, "lm_head.weight")) {
    GRPO_WARN("%s: no lm_head.weight; tying it to model.embed_tokens.weight", path);
    cfg.tie_embeddings = 1;
  }
  if ((rc = model_params_init(p, &cfg, err))) return rc;
  for (int i = 0; i < p->n && !rc; i++) {
    const model_param_info *e = &p->info[i];
    const ckpt_tensor_info *t = ckpt_reader_find(r, CKPT_MODEL, e->name);
    if (!t) {
      rc = GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: missing tensor /model/%s", path, e->name);
    } else if (!shape_matches(e, t->ndim, t->shape)) {
      char got[128], want[128];
      shape_str(t->ndim, t->shape, got, sizeof got);
      shape_str(e->ndim, e->shape, want, sizeof want);
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor /model/%s has shape %s, the config implies %s",
                     path, e->name, got, want);
    } else {
      rc = ckpt_reader_read(r, t, CKPT_F32, p->data + e->offset, e->numel, err);
    }
  }
  if (rc) model_params_free(p);
  return rc;
}

/* ---- convert: HF directory <-> HDF5 ------------------------------------------------ */

static int add_json_text(cJSON *obj, const char *key, const char *json_text) {
  cJSON *v = json_text ? cJSON_Parse(json_text) : cJSON_CreateNull();
  if (!v) return -1;
  cJSON_AddItemToObject(obj, key, v);
  return 0;
}

/* Builds /meta/safetensors_layout for m (see hf_io.h). */
static char *layout_json(const ckpt_st_model *m) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddNumberToObject(root, "version", 1);
  add_json_text(root, "index_metadata", m->index_metadata);
  cJSON_AddBoolToObject(root, "indexed", m->from_index);
  cJSON *shards = cJSON_AddArrayToObject(root, "shards");
  cJSON *f16 = cJSON_AddArrayToObject(root, "f16");
  for (int s = 0; s < m->n_shards; s++) {
    const ckpt_st_shard *sh = &m->shards[s];
    cJSON *o = cJSON_CreateObject();
    /* shards always sit beside each other: keep the bare file name */
    const char *file = strrchr(sh->path, '/') ? strrchr(sh->path, '/') + 1 : sh->path;
    cJSON_AddStringToObject(o, "file", file);
    add_json_text(o, "metadata", sh->h.metadata);
    cJSON *names = cJSON_AddArrayToObject(o, "tensors");
    for (int i = 0; i < sh->h.n; i++) {
      cJSON_AddItemToArray(names, cJSON_CreateString(sh->h.tensors[i].name));
      if (sh->h.tensors[i].dtype == CKPT_ST_F16)
        cJSON_AddItemToArray(f16, cJSON_CreateString(sh->h.tensors[i].name));
    }
    cJSON_AddItemToArray(shards, o);
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}

int ckpt_hf_to_h5(const char *hf_dir, const char *h5_path, grpo_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", hf_dir);
  char *config_text = NULL, *layout = NULL;
  void *buf = NULL;
  size_t config_len = 0;
  ckpt_writer *w = NULL;
  ckpt_st_model m;
  memset(&m, 0, sizeof m);
  model_params table;
  memset(&table, 0, sizeof table);
  int rc = grpo_read_file(path, (size_t)1 << 30, &config_text, &config_len, err);
  if (rc) return rc;
  model_config cfg;
  if (strlen(config_text) != config_len) {
    rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: contains a NUL byte", path);
    goto done;
  }
  if ((rc = model_config_parse(&cfg, config_text, config_len, path, err))) goto done;
  if ((rc = ckpt_st_open(&m, hf_dir, err))) goto done;
  if (!cfg.tie_embeddings && !ckpt_st_find(&m, "lm_head.weight")) cfg.tie_embeddings = 1;
  /* the checkpoint must be loadable for training: check names and shapes first */
  if ((rc = model_params_layout(&table, &cfg, err))) goto done;
  for (int i = 0; i < table.n; i++) {
    const model_param_info *e = &table.info[i];
    if ((rc = check_tensor(&m, e, hf_dir, err))) goto done;
  }
  uint64_t most = 0;
  for (int i = 0; i < m.n; i++) {
    const ckpt_st_tensor *t = m.sorted[i];
    if (t->dtype != CKPT_ST_F32 && t->dtype != CKPT_ST_BF16 && t->dtype != CKPT_ST_F16) {
      rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: tensor \"%s\": dtype %s (convert handles F32, "
                     "BF16, F16)",
                     m.shards[t->shard].path, t->name, ckpt_st_dtype_name(t->dtype));
      goto done;
    }
    uint64_t b = t->numel * 4;
    if (b > most) most = b;
  }
  buf = malloc(most ? most : 1);
  layout = layout_json(&m);
  if (!buf || !layout) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", hf_dir);
    goto done;
  }
  if ((rc = ckpt_writer_open(&w, h5_path, 0, err))) goto done;
  if ((rc = ckpt_writer_put_meta(w, CONFIG_KEY, config_text, err))) goto done;
  if ((rc = ckpt_writer_put_meta(w, LAYOUT_KEY, layout, err))) goto done;
  for (int s = 0; s < m.n_shards; s++)
    for (int i = 0; i < m.shards[s].h.n; i++) {
      const ckpt_st_tensor *t = &m.shards[s].h.tensors[i];
      ckpt_dtype cd = t->dtype == CKPT_ST_BF16 ? CKPT_BF16 : CKPT_F32;
      if (t->dtype == CKPT_ST_F16)
        rc = ckpt_st_read_f32(&m, t->name, buf, t->numel, err);
      else
        rc = ckpt_st_read_raw(&m, t, buf, err);
      if (!rc) rc = ckpt_writer_put_tensor(w, CKPT_MODEL, t->name, cd, t->ndim, t->shape, buf, err);
      if (rc) goto done;
    }
  for (int i = 0; CKPT_HF_FILES[i]; i++) {
    snprintf(path, sizeof path, "%s/%s", hf_dir, CKPT_HF_FILES[i]);
    if (!is_file(path)) continue;
    char *text;
    size_t n;
    if ((rc = grpo_read_file(path, (size_t)1 << 30, &text, &n, err))) goto done;
    if (strlen(text) != n) {
      GRPO_WARN("%s: holds NUL bytes; not stored in the checkpoint", path);
      free(text);
      continue;
    }
    char key[256];
    snprintf(key, sizeof key, FILE_KEY_PREFIX "%s", CKPT_HF_FILES[i]);
    rc = ckpt_writer_put_meta(w, key, text, err);
    free(text);
    if (rc) goto done;
  }
  rc = ckpt_writer_finish(w, err);
  w = NULL;
done:
  if (w) ckpt_writer_abort(w);
  model_params_free(&table);
  ckpt_st_close(&m);
  free(buf);
  free(layout);
  free(config_text);
  return rc;
}

/* One tensor of the checkpoint, in the dtype it should have on export. */
typedef struct export_tensor {
  const ckpt_tensor_info *info;
  ckpt_st_dtype dtype;
  void *data;
} export_tensor;

static int load_export(ckpt_reader *r, const ckpt_tensor_info *t, ckpt_st_dtype dtype,
                       export_tensor *x, grpo_error *err) {
  x->info = t;
  x->dtype = dtype;
  size_t n = (size_t)t->numel;
  x->data = malloc((n ? n : 1) * 4);
  if (!x->data) return GRPO_FAIL(err, GRPO_ENOMEM, "tensor \"%s\": out of memory", t->name);
  if (dtype == CKPT_ST_BF16) return ckpt_reader_read(r, t, CKPT_BF16, x->data, n, err);
  int rc = ckpt_reader_read(r, t, CKPT_F32, x->data, n, err);
  if (rc || dtype == CKPT_ST_F32) return rc;
  /* F16 on the way in: f16 -> f32 was exact, so this narrowing is too */
  float *f = x->data;
  uint16_t *h = x->data;
  for (size_t i = 0; i < n; i++) h[i] = grpo_f32_to_f16(f[i]);
  return GRPO_OK;
}

static int in_string_array(const cJSON *arr, const char *s) {
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0) return 1;
  return 0;
}

static int write_index(const char *out_dir, const cJSON *index_meta, cJSON *weight_map,
                       grpo_error *err) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddItemToObject(root, "metadata",
                        index_meta ? cJSON_Duplicate(index_meta, 1) : cJSON_CreateObject());
  cJSON_AddItemToObject(root, "weight_map", weight_map);
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  if (!text) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", out_dir);
  int rc = write_file(path, text, strlen(text), err);
  free(text);
  return rc;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(const ckpt_tensor_info *const *)a)->name,
                (*(const ckpt_tensor_info *const *)b)->name);
}

/* Rebuilds the original shards from /meta/safetensors_layout. */
static int export_with_layout(ckpt_reader *r, const cJSON *layout, const char *out_dir,
                              grpo_error *err) {
  const char *h5 = ckpt_reader_path(r);
  const cJSON *shards = cJSON_GetObjectItemCaseSensitive(layout, "shards");
  const cJSON *f16 = cJSON_GetObjectItemCaseSensitive(layout, "f16");
  const cJSON *index_meta = cJSON_GetObjectItemCaseSensitive(layout, "index_metadata");
  int indexed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(layout, "indexed"));
  if (!cJSON_IsArray(shards))
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: /meta/%s has no \"shards\" list", h5, LAYOUT_KEY);
  cJSON *weight_map = cJSON_CreateObject();
  int rc = GRPO_OK;
  const cJSON *sh;
  cJSON_ArrayForEach(sh, shards) {
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(sh, "file");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(sh, "tensors");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(sh, "metadata");
    /* the layout comes from the file: only plain names inside out_dir */
    if (!cJSON_IsString(file) || !file->valuestring[0] || strchr(file->valuestring, '/') ||
        file->valuestring[0] == '.' || !cJSON_IsArray(names)) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: /meta/%s: bad shard entry", h5, LAYOUT_KEY);
      break;
    }
    int n = cJSON_GetArraySize(names);
    export_tensor *xs = calloc((size_t)(n ? n : 1), sizeof *xs);
    ckpt_st_write_tensor *wt = calloc((size_t)(n ? n : 1), sizeof *wt);
    char *meta_text = (meta && cJSON_IsObject(meta)) ? cJSON_PrintUnformatted(meta) : NULL;
    if (!xs || !wt) rc = GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
    int k = 0;
    const cJSON *nm;
    cJSON_ArrayForEach(nm, names) {
      if (rc) break;
      const ckpt_tensor_info *t =
          cJSON_IsString(nm) ? ckpt_reader_find(r, CKPT_MODEL, nm->valuestring) : NULL;
      if (!t) {
        rc = GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: tensor /model/%s listed in /meta/%s is missing",
                       h5, cJSON_IsString(nm) ? nm->valuestring : "?", LAYOUT_KEY);
        break;
      }
      ckpt_st_dtype d = t->dtype == CKPT_BF16           ? CKPT_ST_BF16
                        : in_string_array(f16, t->name) ? CKPT_ST_F16
                                                        : CKPT_ST_F32;
      if ((rc = load_export(r, t, d, &xs[k], err))) {
        k++;
        break;
      }
      wt[k].name = t->name;
      wt[k].dtype = d;
      wt[k].ndim = t->ndim;
      memcpy(wt[k].shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
      wt[k].data = xs[k].data;
      cJSON_AddStringToObject(weight_map, t->name, file->valuestring);
      k++;
    }
    if (!rc) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", out_dir, file->valuestring);
      rc = ckpt_st_write_file(path, wt, k, meta_text, err);
    }
    for (int i = 0; i < k; i++) free(xs[i].data);
    free(xs);
    free(wt);
    free(meta_text);
    if (rc) break;
  }
  if (!rc && indexed) {
    /* weight_map sorted by name, as transformers writes it */
    int n = cJSON_GetArraySize(weight_map);
    const ckpt_tensor_info **ts = calloc((size_t)(n ? n : 1), sizeof *ts);
    cJSON *sorted = cJSON_CreateObject();
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, weight_map) ts[k++] = ckpt_reader_find(r, CKPT_MODEL, e->string);
    qsort(ts, (size_t)k, sizeof *ts, cmp_name);
    for (int i = 0; i < k; i++)
      cJSON_AddStringToObject(
          sorted, ts[i]->name,
          cJSON_GetObjectItemCaseSensitive(weight_map, ts[i]->name)->valuestring);
    free(ts);
    rc = write_index(out_dir, cJSON_IsObject(index_meta) ? index_meta : NULL, sorted, err);
  }
  cJSON_Delete(weight_map);
  return rc;
}

/* Exports every /model tensor in one dtype (or as stored) with the default layout. */
static int export_plain(ckpt_reader *r, const char *out_dir, int dtype, grpo_error *err) {
  int n = ckpt_reader_num_tensors(r), k = 0;
  export_tensor *xs = calloc((size_t)(n ? n : 1), sizeof *xs);
  ckpt_st_write_tensor *wt = calloc((size_t)(n ? n : 1), sizeof *wt);
  int rc = (!xs || !wt) ? GRPO_FAIL(err, GRPO_ENOMEM, "out of memory") : GRPO_OK;
  for (int i = 0; i < n && !rc; i++) {
    const ckpt_tensor_info *t = ckpt_reader_tensor(r, i);
    if (t->group != CKPT_MODEL) continue;
    ckpt_st_dtype d = dtype == CKPT_ST_F32 || dtype == CKPT_ST_BF16
                          ? (ckpt_st_dtype)dtype
                          : (t->dtype == CKPT_BF16 ? CKPT_ST_BF16 : CKPT_ST_F32);
    rc = load_export(r, t, d, &xs[k], err);
    wt[k].name = t->name;
    wt[k].dtype = d;
    wt[k].ndim = t->ndim;
    memcpy(wt[k].shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    wt[k].data = xs[k].data;
    k++;
  }
  if (!rc && k == 0)
    rc = GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no /model tensors", ckpt_reader_path(r));
  if (!rc)
    rc = ckpt_st_write_model(out_dir, wt, k, "{\"format\":\"pt\"}", CKPT_HF_SHARD_BYTES, err);
  for (int i = 0; i < k; i++) free(xs[i].data);
  free(xs);
  free(wt);
  return rc;
}

int ckpt_h5_to_hf(const char *h5_path, const char *out_dir, int dtype, grpo_error *err) {
  ckpt_reader *r = NULL;
  int rc = ckpt_reader_open(&r, h5_path, err);
  if (rc) return rc;
  cJSON *layout = NULL;
  const char *config = ckpt_reader_meta(r, CONFIG_KEY);
  if (!config) {
    rc = GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no /meta/%s (not a model checkpoint)", h5_path,
                   CONFIG_KEY);
    goto done;
  }
  model_config cfg;
  char name[4200];
  snprintf(name, sizeof name, "%s:/meta/%s", h5_path, CONFIG_KEY);
  if ((rc = model_config_parse(&cfg, config, strlen(config), name, err))) goto done;
  if ((rc = ensure_dir(out_dir, err))) goto done;
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", out_dir);
  if (dtype == CKPT_ST_F32 || dtype == CKPT_ST_BF16) {
    /* the weights change dtype, so config.json's torch_dtype must follow */
    snprintf(cfg.dtype, sizeof cfg.dtype, "%s", dtype == CKPT_ST_BF16 ? "bfloat16" : "float32");
    rc = model_config_save(&cfg, path, err);
  } else {
    rc = write_file(path, config, strlen(config), err);
  }
  if (rc) goto done;
  const char *layout_text = ckpt_reader_meta(r, LAYOUT_KEY);
  if (layout_text && dtype != CKPT_ST_F32 && dtype != CKPT_ST_BF16) {
    layout = cJSON_Parse(layout_text);
    if (!cJSON_IsObject(layout)) {
      rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: /meta/%s is not a JSON object", h5_path, LAYOUT_KEY);
      goto done;
    }
    rc = export_with_layout(r, layout, out_dir, err);
  } else {
    rc = export_plain(r, out_dir, dtype, err);
  }
  if (rc) goto done;
  for (int i = 0; CKPT_HF_FILES[i]; i++) {
    char key[256];
    snprintf(key, sizeof key, FILE_KEY_PREFIX "%s", CKPT_HF_FILES[i]);
    const char *text = ckpt_reader_meta(r, key);
    if (!text) continue;
    snprintf(path, sizeof path, "%s/%s", out_dir, CKPT_HF_FILES[i]);
    if ((rc = write_file(path, text, strlen(text), err))) goto done;
  }
done:
  cJSON_Delete(layout);
  ckpt_reader_close(r);
  return rc;
}
