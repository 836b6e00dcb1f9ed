#include "checkpoints/safetensors.h"
#include "core/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/dtype.h"

/* ---- dtypes ------------------------------------------------------------------ */

static const struct {
  const char *name;
  size_t size;
} DTYPES[CKPT_ST_DTYPE_COUNT] = {
    [CKPT_ST_BOOL] = {"BOOL", 1},       [CKPT_ST_U8] = {"U8", 1},
    [CKPT_ST_I8] = {"I8", 1},           [CKPT_ST_F8_E5M2] = {"F8_E5M2", 1},
    [CKPT_ST_F8_E4M3] = {"F8_E4M3", 1}, [CKPT_ST_F8_E8M0] = {"F8_E8M0", 1},
    [CKPT_ST_I16] = {"I16", 2},         [CKPT_ST_U16] = {"U16", 2},
    [CKPT_ST_F16] = {"F16", 2},         [CKPT_ST_BF16] = {"BF16", 2},
    [CKPT_ST_I32] = {"I32", 4},         [CKPT_ST_U32] = {"U32", 4},
    [CKPT_ST_F32] = {"F32", 4},         [CKPT_ST_F64] = {"F64", 8},
    [CKPT_ST_I64] = {"I64", 8},         [CKPT_ST_U64] = {"U64", 8},
    [CKPT_ST_C64] = {"C64", 8},
};

const char *ckpt_st_dtype_name(ckpt_st_dtype d) {
  return (d >= 0 && d < CKPT_ST_DTYPE_COUNT) ? DTYPES[d].name : "?";
}

size_t ckpt_st_dtype_size(ckpt_st_dtype d) {
  return (d >= 0 && d < CKPT_ST_DTYPE_COUNT) ? DTYPES[d].size : 0;
}

int ckpt_st_dtype_parse(const char *s, ckpt_st_dtype *d) {
  for (int i = 0; i < CKPT_ST_DTYPE_COUNT; i++)
    if (strcmp(s, DTYPES[i].name) == 0) {
      *d = (ckpt_st_dtype)i;
      return 0;
    }
  return -1;
}

/* ---- header parsing ------------------------------------------------------------ */

/* JSON numbers arrive as doubles: accept exact non-negative integers <= 2^53. */
static int as_u64(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return -1;
  *out = (uint64_t)d;
  return 0;
}

void ckpt_st_header_free(ckpt_st_header *h) {
  if (!h) return;
  for (int i = 0; i < h->n; i++) free(h->tensors[i].name);
  free(h->tensors);
  free(h->metadata);
  memset(h, 0, sizeof *h);
}

static int cmp_offset(const void *a, const void *b) {
  const ckpt_st_tensor *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int cmp_name_ptr(const void *a, const void *b) {
  const ckpt_st_tensor *x = *(ckpt_st_tensor *const *)a, *y = *(ckpt_st_tensor *const *)b;
  return strcmp(x->name, y->name);
}

static int parse_tensor(const cJSON *item, const char *name, uint64_t data_size, ckpt_st_tensor *t,
                        grpo_error *err) {
  const char *tn = item->string;
  if (!cJSON_IsObject(item))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: tensor \"%s\": entry must be a JSON object", name, tn);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
  if (!cJSON_IsString(dt))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: tensor \"%s\": missing or non-string \"dtype\"", name,
                     tn);
  if (ckpt_st_dtype_parse(dt->valuestring, &t->dtype) != 0)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor \"%s\": unknown dtype \"%.32s\"", name, tn,
                     dt->valuestring);
  if (!cJSON_IsArray(sh))
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: tensor \"%s\": missing or non-list \"shape\"", name,
                     tn);
  int nd = cJSON_GetArraySize(sh);
  if (nd > CKPT_ST_MAX_DIMS)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: tensor \"%s\": %d dimensions (at most %d)", name,
                     tn, nd, CKPT_ST_MAX_DIMS);
  t->ndim = nd;
  uint64_t numel = 1;
  int overflow = 0;
  for (int i = 0; i < nd; i++) {
    uint64_t d;
    if (as_u64(cJSON_GetArrayItem(sh, i), &d) != 0)
      return GRPO_FAIL(err, GRPO_EPARSE,
                       "%s: tensor \"%s\": shape[%d] must be a non-negative integer", name, tn, i);
    t->shape[i] = (int64_t)d;
    if (d != 0 && numel > UINT64_MAX / d)
      overflow = 1;
    else
      numel *= d;
  }
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: tensor \"%s\": \"data_offsets\" must be [begin, end]",
                     name, tn);
  if (as_u64(cJSON_GetArrayItem(off, 0), &t->begin) != 0 ||
      as_u64(cJSON_GetArrayItem(off, 1), &t->end) != 0)
    return GRPO_FAIL(err, GRPO_EPARSE,
                     "%s: tensor \"%s\": \"data_offsets\" must be non-negative integers", name, tn);
  if (t->begin > t->end || t->end > data_size)
    return GRPO_FAIL(err, GRPO_EFORMAT,
                     "%s: tensor \"%s\": data_offsets [%llu, %llu] out of range: the data buffer "
                     "is %llu bytes (truncated file?)",
                     name, tn, (unsigned long long)t->begin, (unsigned long long)t->end,
                     (unsigned long long)data_size);
  size_t es = ckpt_st_dtype_size(t->dtype);
  if (overflow || numel > UINT64_MAX / es || numel * es != t->end - t->begin)
    return GRPO_FAIL(err, GRPO_EFORMAT,
                     "%s: tensor \"%s\": shape and dtype %s need %s bytes but data_offsets span "
                     "%llu",
                     name, tn, ckpt_st_dtype_name(t->dtype),
                     overflow ? "too many" : "a different number of",
                     (unsigned long long)(t->end - t->begin));
  t->numel = numel;
  return GRPO_OK;
}

int ckpt_st_parse_header(const char *json, size_t len, uint64_t data_size, const char *name,
                         ckpt_st_header *h, grpo_error *err) {
  memset(h, 0, sizeof *h);
  if (!name) name = "safetensors";
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    long at = (end && end >= json && end <= json + len) ? (long)(end - json) : -1;
    return GRPO_FAIL(err, GRPO_EPARSE, "%s: header is not valid JSON (near byte %ld)", name, at);
  }
  /* only padding may follow the JSON value */
  for (const char *p = end; p && p < json + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(root);
      return GRPO_FAIL(err, GRPO_EPARSE,
                       "%s: header has trailing bytes after the JSON object "
                       "(at byte %ld)",
                       name, (long)(p - json));
    }
  int rc = GRPO_OK;
  if (!cJSON_IsObject(root)) {
    rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: header must be a JSON object", name);
    goto done;
  }
  int count = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, root) count++;
  h->tensors = calloc((size_t)(count ? count : 1), sizeof *h->tensors);
  if (!h->tensors) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", name);
    goto done;
  }
  int seen_meta = 0;
  cJSON_ArrayForEach(item, root) {
    if (strcmp(item->string, "__metadata__") == 0) {
      if (seen_meta++) {
        rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: duplicate \"__metadata__\"", name);
        goto done;
      }
      if (!cJSON_IsObject(item)) {
        rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: \"__metadata__\" must be an object", name);
        goto done;
      }
      const cJSON *kv;
      cJSON_ArrayForEach(kv, item) if (!cJSON_IsString(kv)) {
        rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: \"__metadata__\" value \"%s\" must be a string", name,
                       kv->string);
        goto done;
      }
      h->metadata = cJSON_PrintUnformatted(item);
      if (!h->metadata) {
        rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", name);
        goto done;
      }
      continue;
    }
    ckpt_st_tensor *t = &h->tensors[h->n];
    memset(t, 0, sizeof *t);
    if ((rc = parse_tensor(item, name, data_size, t, err))) goto done;
    t->name = strdup(item->string);
    if (!t->name) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", name);
      goto done;
    }
    h->n++;
  }
  /* duplicates: cJSON keeps repeated keys, so sort names and compare neighbours */
  if (h->n > 1) {
    ckpt_st_tensor **byname = malloc((size_t)h->n * sizeof *byname);
    if (!byname) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", name);
      goto done;
    }
    for (int i = 0; i < h->n; i++) byname[i] = &h->tensors[i];
    qsort(byname, (size_t)h->n, sizeof *byname, cmp_name_ptr);
    for (int i = 1; i < h->n && !rc; i++)
      if (strcmp(byname[i - 1]->name, byname[i]->name) == 0)
        rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor \"%s\" appears twice in the header", name,
                       byname[i]->name);
    free(byname);
    if (rc) goto done;
  }
  /* the tensors must tile the data buffer: no gap, no overlap, nothing after */
  qsort(h->tensors, (size_t)h->n, sizeof *h->tensors, cmp_offset);
  uint64_t cursor = 0;
  for (int i = 0; i < h->n; i++) {
    const ckpt_st_tensor *t = &h->tensors[i];
    if (t->begin != cursor) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT,
                     "%s: tensor \"%s\": data starts at %llu but the previous "
                     "tensor ends at %llu (%s)",
                     name, t->name, (unsigned long long)t->begin, (unsigned long long)cursor,
                     t->begin > cursor ? "gap" : "overlap");
      goto done;
    }
    cursor = t->end;
  }
  if (cursor != data_size) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT,
                   "%s: tensors cover %llu bytes but the data buffer holds "
                   "%llu (%s)",
                   name, (unsigned long long)cursor, (unsigned long long)data_size,
                   cursor < data_size ? "trailing bytes" : "truncated file");
    goto done;
  }
done:
  cJSON_Delete(root);
  if (rc) ckpt_st_header_free(h);
  return rc;
}

static uint64_t read_le64(const uint8_t *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
  return v;
}

static void write_le64(uint8_t *b, uint64_t v) {
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

int ckpt_st_parse_buffer(const uint8_t *buf, size_t size, const char *name, ckpt_st_header *h,
                         grpo_error *err) {
  memset(h, 0, sizeof *h);
  if (!name) name = "safetensors";
  if (size < 8)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: truncated file (%zu bytes, no header length)", name,
                     size);
  uint64_t n = read_le64(buf);
  if (n > CKPT_ST_MAX_HEADER)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: header length %llu exceeds the %u-byte limit", name,
                     (unsigned long long)n, CKPT_ST_MAX_HEADER);
  if (n > size - 8)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: truncated file: header of %llu bytes, file of %zu",
                     name, (unsigned long long)n, size);
  return ckpt_st_parse_header((const char *)buf + 8, (size_t)n, size - 8 - n, name, h, err);
}

/* ---- opening files and sharded models ------------------------------------------ */


static int open_shard(ckpt_st_shard *s, const char *path, grpo_error *err) {
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "rb");
  if (!f)
    return GRPO_FAIL(err, errno == ENOENT ? GRPO_ENOTFOUND : GRPO_EIO, "%s: cannot open: %s", path,
                     strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot stat: %s", path, strerror(errno));
  }
  uint64_t size = (uint64_t)st.st_size;
  uint8_t lenbuf[8];
  if (size < 8 || fread(lenbuf, 1, 8, f) != 8) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: truncated file (%llu bytes, no header length)", path,
                     (unsigned long long)size);
  }
  uint64_t n = read_le64(lenbuf);
  if (n > CKPT_ST_MAX_HEADER) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: header length %llu exceeds the %u-byte limit", path,
                     (unsigned long long)n, CKPT_ST_MAX_HEADER);
  }
  if (n > size - 8) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: truncated file: header of %llu bytes, file of %llu",
                     path, (unsigned long long)n, (unsigned long long)size);
  }
  char *json = malloc(n ? n : 1);
  if (!json) {
    fclose(f);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  }
  size_t got = fread(json, 1, n, f);
  fclose(f);
  if (got != n) {
    free(json);
    return GRPO_FAIL(err, GRPO_EIO, "%s: short read of the header", path);
  }
  int rc = ckpt_st_parse_header(json, n, size - 8 - n, path, &s->h, err);
  free(json);
  if (rc) return rc;
  s->path = strdup(path);
  if (!s->path) {
    ckpt_st_header_free(&s->h);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  }
  s->data_start = 8 + n;
  return GRPO_OK;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Builds m->sorted from the shards; a name in two shards is an error. */
static int build_index(ckpt_st_model *m, grpo_error *err) {
  int n = 0;
  for (int s = 0; s < m->n_shards; s++) n += m->shards[s].h.n;
  m->sorted = malloc((size_t)(n ? n : 1) * sizeof *m->sorted);
  if (!m->sorted) return GRPO_FAIL(err, GRPO_ENOMEM, "safetensors: out of memory");
  m->n = 0;
  for (int s = 0; s < m->n_shards; s++)
    for (int i = 0; i < m->shards[s].h.n; i++) {
      m->shards[s].h.tensors[i].shard = s;
      m->sorted[m->n++] = &m->shards[s].h.tensors[i];
    }
  qsort(m->sorted, (size_t)m->n, sizeof *m->sorted, cmp_name_ptr);
  for (int i = 1; i < m->n; i++)
    if (strcmp(m->sorted[i - 1]->name, m->sorted[i]->name) == 0)
      return GRPO_FAIL(err, GRPO_EFORMAT, "tensor \"%s\" appears in both %s and %s",
                       m->sorted[i]->name, m->shards[m->sorted[i - 1]->shard].path,
                       m->shards[m->sorted[i]->shard].path);
  return GRPO_OK;
}

static int open_index(ckpt_st_model *m, const char *index_path, grpo_error *err) {
  char *text = NULL;
  size_t len = 0;
  int rc = grpo_read_file(index_path, CKPT_ST_MAX_HEADER, &text, &len, err);
  if (rc) return rc;
  cJSON *root = cJSON_ParseWithLength(text, len);
  free(text);
  const char **files = NULL;
  int nfiles = 0;
  char dir[4096];
  if (!root) return GRPO_FAIL(err, GRPO_EPARSE, "%s: invalid JSON", index_path);
  m->from_index = 1;
  const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
  if (!cJSON_IsObject(root) || !cJSON_IsObject(wm)) {
    rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: missing object \"weight_map\"", index_path);
    goto done;
  }
  if (meta && !cJSON_IsNull(meta)) {
    if (!cJSON_IsObject(meta)) {
      rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: \"metadata\" must be an object", index_path);
      goto done;
    }
    m->index_metadata = cJSON_PrintUnformatted(meta);
  }
  int nmap = cJSON_GetArraySize(wm);
  files = calloc((size_t)(nmap ? nmap : 1), sizeof *files);
  if (!files) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", index_path);
    goto done;
  }
  const cJSON *e;
  cJSON_ArrayForEach(e, wm) {
    if (!cJSON_IsString(e)) {
      rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: weight_map[\"%s\"] must be a file name", index_path,
                     e->string);
      goto done;
    }
    const char *f = e->valuestring;
    /* shards live beside the index; refuse anything that walks elsewhere */
    if (!f[0] || strchr(f, '/') || strcmp(f, "..") == 0 || strcmp(f, ".") == 0) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT,
                     "%s: weight_map[\"%s\"] = \"%s\" is not a file name in the "
                     "index's directory",
                     index_path, e->string, f);
      goto done;
    }
    files[nfiles++] = f;
  }
  if (nfiles == 0) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: empty weight_map", index_path);
    goto done;
  }
  qsort(files, (size_t)nfiles, sizeof *files, cmp_str_ptr);
  int uniq = 0;
  for (int i = 0; i < nfiles; i++)
    if (uniq == 0 || strcmp(files[uniq - 1], files[i]) != 0) files[uniq++] = files[i];
  m->shards = calloc((size_t)uniq, sizeof *m->shards);
  if (!m->shards) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", index_path);
    goto done;
  }
  snprintf(dir, sizeof dir, "%s", index_path);
  char *slash = strrchr(dir, '/');
  if (slash)
    slash[1] = 0;
  else
    dir[0] = 0;
  for (int i = 0; i < uniq; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s%s", dir, files[i]);
    if ((rc = open_shard(&m->shards[i], path, err))) goto done;
    m->n_shards++;
  }
  if ((rc = build_index(m, err))) goto done;
  /* every tensor the index lists must be in the shard it names */
  cJSON_ArrayForEach(e, wm) {
    const ckpt_st_tensor *t = ckpt_st_find(m, e->string);
    if (!t) {
      rc = GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: tensor \"%s\" is missing from %s%s", index_path,
                     e->string, dir, e->valuestring);
      goto done;
    }
    const char *sp = m->shards[t->shard].path;
    if (!ends_with(sp, e->valuestring) || strlen(sp) != strlen(dir) + strlen(e->valuestring)) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor \"%s\" is listed in %s but stored in %s",
                     index_path, e->string, e->valuestring, sp);
      goto done;
    }
  }
done:
  free(files);
  cJSON_Delete(root);
  return rc;
}

int ckpt_st_open(ckpt_st_model *m, const char *path, grpo_error *err) {
  memset(m, 0, sizeof *m);
  struct stat st;
  if (stat(path, &st) != 0)
    return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no such file or directory", path);
  int rc;
  if (S_ISDIR(st.st_mode)) {
    char p[8192];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
    if (file_exists(p)) {
      rc = open_index(m, p, err);
    } else {
      snprintf(p, sizeof p, "%s/model.safetensors", path);
      if (!file_exists(p)) {
        return GRPO_FAIL(err, GRPO_ENOTFOUND,
                         "%s: holds neither model.safetensors.index.json nor model.safetensors",
                         path);
      }
      return ckpt_st_open(m, p, err);
    }
  } else if (ends_with(path, ".json")) {
    rc = open_index(m, path, err);
  } else {
    m->shards = calloc(1, sizeof *m->shards);
    if (!m->shards) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
    rc = open_shard(&m->shards[0], path, err);
    if (!rc) {
      m->n_shards = 1;
      rc = build_index(m, err);
    }
  }
  if (rc) ckpt_st_close(m);
  return rc;
}

void ckpt_st_close(ckpt_st_model *m) {
  if (!m) return;
  for (int s = 0; s < m->n_shards; s++) {
    free(m->shards[s].path);
    ckpt_st_header_free(&m->shards[s].h);
  }
  free(m->shards);
  free(m->sorted);
  free(m->index_metadata);
  memset(m, 0, sizeof *m);
}

const ckpt_st_tensor *ckpt_st_find(const ckpt_st_model *m, const char *name) {
  int lo = 0, hi = m->n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(m->sorted[mid]->name, name);
    if (c == 0) return m->sorted[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NULL;
}

int ckpt_st_read_raw(const ckpt_st_model *m, const ckpt_st_tensor *t, void *out, grpo_error *err) {
  const ckpt_st_shard *s = &m->shards[t->shard];
  uint64_t n = t->end - t->begin;
  if (n == 0) return GRPO_OK;
  FILE *f = fopen(s->path, "rb");
  if (!f) return GRPO_FAIL(err, GRPO_EIO, "%s: cannot open: %s", s->path, strerror(errno));
  int rc = GRPO_OK;
  if (fseeko(f, (off_t)(s->data_start + t->begin), SEEK_SET) != 0)
    rc = GRPO_FAIL(err, GRPO_EIO, "%s: tensor \"%s\": seek failed", s->path, t->name);
  else if (fread(out, 1, (size_t)n, f) != n)
    rc = GRPO_FAIL(err, GRPO_EIO, "%s: tensor \"%s\": short read (file truncated or changed?)",
                   s->path, t->name);
  fclose(f);
  return rc;
}

static int find_checked(const ckpt_st_model *m, const char *name, size_t numel,
                        const ckpt_st_tensor **out, grpo_error *err) {
  const ckpt_st_tensor *t = ckpt_st_find(m, name);
  const char *where = m->n_shards ? m->shards[0].path : "safetensors";
  if (!t) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: missing tensor \"%s\"", where, name);
  if (t->numel != numel)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor \"%s\" has %llu elements, expected %zu",
                     m->shards[t->shard].path, name, (unsigned long long)t->numel, numel);
  *out = t;
  return GRPO_OK;
}

int ckpt_st_read_f32(const ckpt_st_model *m, const char *name, float *out, size_t numel,
                     grpo_error *err) {
  const ckpt_st_tensor *t;
  int rc = find_checked(m, name, numel, &t, err);
  if (rc) return rc;
  if (t->dtype == CKPT_ST_F32) return ckpt_st_read_raw(m, t, out, err);
  if (t->dtype != CKPT_ST_BF16 && t->dtype != CKPT_ST_F16)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: tensor \"%s\": dtype %s cannot be read as f32 "
                     "(F32, BF16, F16)",
                     m->shards[t->shard].path, name, ckpt_st_dtype_name(t->dtype));
  /* Read the 16-bit values into the upper half of out and widen forwards: the
   * write of element i never reaches the source of element i + 1. */
  uint16_t *src = (uint16_t *)(void *)out + numel;
  if ((rc = ckpt_st_read_raw(m, t, src, err))) return rc;
  if (t->dtype == CKPT_ST_BF16)
    for (size_t i = 0; i < numel; i++) {
      uint16_t h = src[i];
      out[i] = grpo_bf16_to_f32(h);
    }
  else
    for (size_t i = 0; i < numel; i++) {
      uint16_t h = src[i];
      out[i] = grpo_f16_to_f32(h);
    }
  return GRPO_OK;
}

int ckpt_st_read_i32(const ckpt_st_model *m, const char *name, int32_t *out, size_t numel,
                     grpo_error *err) {
  const ckpt_st_tensor *t;
  int rc = find_checked(m, name, numel, &t, err);
  if (rc) return rc;
  if (t->dtype == CKPT_ST_I32) return ckpt_st_read_raw(m, t, out, err);
  if (t->dtype != CKPT_ST_I64)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: tensor \"%s\": dtype %s cannot be read as int32",
                     m->shards[t->shard].path, name, ckpt_st_dtype_name(t->dtype));
  int64_t *tmp = malloc(numel ? numel * sizeof *tmp : 1);
  if (!tmp) return GRPO_FAIL(err, GRPO_ENOMEM, "tensor \"%s\": out of memory", name);
  rc = ckpt_st_read_raw(m, t, tmp, err);
  for (size_t i = 0; !rc && i < numel; i++) {
    if (tmp[i] < INT32_MIN || tmp[i] > INT32_MAX)
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: tensor \"%s\"[%zu] = %lld does not fit int32",
                     m->shards[t->shard].path, name, i, (long long)tmp[i]);
    else
      out[i] = (int32_t)tmp[i];
  }
  free(tmp);
  return rc;
}

/* ---- writing ------------------------------------------------------------------- */

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static cJSON *raw_u64_list(const uint64_t *v, int n) {
  char buf[CKPT_ST_MAX_DIMS * 24 + 4];
  size_t at = 0;
  buf[at++] = '[';
  for (int i = 0; i < n; i++)
    at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%llu", i ? "," : "",
                           (unsigned long long)v[i]);
  buf[at++] = ']';
  buf[at] = 0;
  return cJSON_CreateRaw(buf);
}

static size_t tensor_bytes(const ckpt_st_write_tensor *t) {
  size_t n = ckpt_st_dtype_size(t->dtype);
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

int ckpt_st_write_file(const char *path, const ckpt_st_write_tensor *t, int n, const char *metadata,
                       grpo_error *err) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  int rc = GRPO_OK;
  char *json = NULL;
  FILE *f = NULL;
  char tmp[8192];
  if (metadata) {
    cJSON *meta = cJSON_Parse(metadata);
    int ok = cJSON_IsObject(meta);
    const cJSON *kv;
    if (ok) cJSON_ArrayForEach(kv, meta) ok &= cJSON_IsString(kv);
    if (!ok) {
      cJSON_Delete(meta);
      rc = GRPO_FAIL(err, GRPO_EINVAL, "%s: metadata must be a JSON object of strings", path);
      goto done;
    }
    cJSON_AddItemToObject(root, "__metadata__", meta);
  }
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    if (t[i].dtype < 0 || t[i].dtype >= CKPT_ST_DTYPE_COUNT || t[i].ndim < 0 ||
        t[i].ndim > CKPT_ST_MAX_DIMS) {
      rc = GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor \"%s\": bad dtype or rank", path, t[i].name);
      goto done;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, t[i].name)) {
      rc = GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor \"%s\" given twice", path, t[i].name);
      goto done;
    }
    uint64_t dims[CKPT_ST_MAX_DIMS];
    for (int d = 0; d < t[i].ndim; d++) {
      if (t[i].shape[d] < 0) {
        rc = GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor \"%s\": negative dimension", path, t[i].name);
        goto done;
      }
      dims[d] = (uint64_t)t[i].shape[d];
    }
    uint64_t offs[2] = {offset, offset + tensor_bytes(&t[i])};
    offset = offs[1];
    cJSON *e = cJSON_CreateObject();
    if (!e) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
      goto done;
    }
    cJSON_AddItemToObject(root, t[i].name, e);
    cJSON_AddStringToObject(e, "dtype", ckpt_st_dtype_name(t[i].dtype));
    cJSON_AddItemToObject(e, "shape", raw_u64_list(dims, t[i].ndim));
    cJSON_AddItemToObject(e, "data_offsets", raw_u64_list(offs, 2));
  }
  json = cJSON_PrintUnformatted(root);
  if (!json) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  size_t jlen = strlen(json);
  size_t padded = (jlen + 7) / 8 * 8;
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (!f) {
    rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    goto done;
  }
  uint8_t lenbuf[8];
  write_le64(lenbuf, padded);
  int bad = write_all(f, lenbuf, 8) || write_all(f, json, jlen);
  for (size_t i = jlen; i < padded && !bad; i++) bad = fputc(' ', f) == EOF;
  for (int i = 0; i < n && !bad; i++) bad = write_all(f, t[i].data, tensor_bytes(&t[i]));
  bad |= fflush(f) != 0;
  bad |= fclose(f) != 0;
  f = NULL;
  if (bad) {
    remove(tmp);
    rc = GRPO_FAIL(err, GRPO_EIO, "%s: write failed: %s", tmp, strerror(errno));
    goto done;
  }
  if (rename(tmp, path) != 0) {
    remove(tmp);
    rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
  }
done:
  if (f) fclose(f);
  free(json);
  cJSON_Delete(root);
  return rc;
}

/* The Python library's order: larger dtypes first, then by name. */
static int cmp_write_order(const void *a, const void *b) {
  const ckpt_st_write_tensor *x = a, *y = b;
  if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int ensure_dir(const char *dir, grpo_error *err) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return GRPO_OK;
    return GRPO_FAIL(err, GRPO_EIO, "%s: exists and is not a directory", dir);
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
  return GRPO_OK;
}

int ckpt_st_write_model(const char *dir, const ckpt_st_write_tensor *t, int n, const char *metadata,
                        uint64_t max_shard_bytes, grpo_error *err) {
  int rc = ensure_dir(dir, err);
  if (rc) return rc;
  ckpt_st_write_tensor *sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
  int *shard_of = malloc((size_t)(n ? n : 1) * sizeof *shard_of);
  if (!sorted || !shard_of) {
    free(sorted);
    free(shard_of);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", dir);
  }
  /* split in the caller's order (as save_pretrained walks the state dict) */
  uint64_t total = 0, cur = 0;
  int nshards = 1;
  for (int i = 0; i < n; i++) {
    uint64_t b = tensor_bytes(&t[i]);
    if (max_shard_bytes && cur > 0 && cur + b > max_shard_bytes) {
      nshards++;
      cur = 0;
    }
    shard_of[i] = nshards - 1;
    cur += b;
    total += b;
  }
  char path[8192];
  if (nshards == 1) {
    memcpy(sorted, t, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_write_order);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = ckpt_st_write_file(path, sorted, n, metadata, err);
    /* a stale index would win over the new single file on the next open */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!rc) remove(path);
    goto done;
  }
  cJSON *index = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(index, "metadata");
  cJSON *wm = cJSON_AddObjectToObject(index, "weight_map");
  if (!index || !meta || !wm) {
    cJSON_Delete(index);
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", dir);
    goto done;
  }
  cJSON_AddNumberToObject(meta, "total_size", (double)total);
  for (int s = 0; s < nshards && !rc; s++) {
    int k = 0;
    for (int i = 0; i < n; i++)
      if (shard_of[i] == s) sorted[k++] = t[i];
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_write_order);
    char fname[64];
    snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, nshards);
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    rc = ckpt_st_write_file(path, sorted, k, metadata, err);
    for (int i = 0; i < k && !rc; i++) cJSON_AddStringToObject(wm, sorted[i].name, fname);
  }
  if (!rc) {
    /* weight_map sorted by name, as transformers writes it */
    int m = cJSON_GetArraySize(wm);
    const char **names = malloc((size_t)(m ? m : 1) * sizeof *names);
    cJSON *wm2 = cJSON_CreateObject();
    if (!names || !wm2) {
      free(names);
      cJSON_Delete(wm2);
      cJSON_Delete(index);
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", dir);
      goto done;
    }
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) names[k++] = e->string;
    qsort(names, (size_t)k, sizeof *names, cmp_str_ptr);
    for (int i = 0; i < k; i++)
      cJSON_AddStringToObject(wm2, names[i],
                              cJSON_GetObjectItemCaseSensitive(wm, names[i])->valuestring);
    free(names);
    cJSON_ReplaceItemInObject(index, "weight_map", wm2);
    char *text = cJSON_Print(index);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = text ? fopen(path, "wb") : NULL;
    int bad = !f || fputs(text, f) == EOF || fputc('\n', f) == EOF;
    if (f) bad |= fclose(f) != 0;
    if (bad) rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot write the index", path);
    free(text);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) remove(path); /* an old single file would shadow nothing but confuse readers */
  }
  cJSON_Delete(index);
done:
  free(sorted);
  free(shard_of);
  return rc;
}
