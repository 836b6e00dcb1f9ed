#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/ckpt_internal.h"
#include "core/dtype.h"

/* Bounds that keep a hostile file from making the reader allocate without limit. */
#define MAX_LINKS (1 << 20)
#define MAX_RNG_WORDS (1 << 20)
#define MAX_TEXT ((size_t)1 << 30)

typedef struct meta_text {
  char key[CKPT_NAME_MAX];
  char *text;
} meta_text;

struct ckpt_reader {
  hid_t file;
  char path[4096];
  int64_t step, version;
  char producer[256];
  ckpt_tensor_info *tensors;
  int ntensors, tensors_cap;
  int group_count[CKPT_NUM_GROUPS];
  ckpt_scalar *scalars;
  int nscalars, scalars_cap;
  uint64_t *rng;
  size_t nrng;
  meta_text *meta;
  int nmeta, meta_cap;
};

/* bf16 words at the start of an f32 buffer, widened in place: walking from the
 * back, dst[i] only overwrites src[2i], src[2i+1], which were already read. */
static void widen_bf16_in_place(void *buf, size_t n) {
  unsigned char *b = buf;
  for (size_t i = n; i-- > 0;) {
    uint16_t h;
    memcpy(&h, b + 2 * i, sizeof h); /* memcpy: the buffer is both types */
    float f = grpo_bf16_to_f32(h);
    memcpy(b + 4 * i, &f, sizeof f);
  }
}

/* Grows *arr (of *cap elements of size esize) to hold n + 1. */
static int grow(void **arr, int *cap, int n, size_t esize) {
  if (n < *cap) return 0;
  int nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, (size_t)nc * esize);
  if (!p) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

/* Reads a fixed-length string (attribute when attr >= 0, else dataset ds) into
 * a fresh NUL-terminated buffer. The declared size is cross-checked against the
 * stored bytes so a corrupt size cannot drive a huge allocation. */
static char *read_string(hid_t attr, hid_t ds, size_t max) {
  hid_t ft = attr >= 0 ? H5Aget_type(attr) : H5Dget_type(ds);
  hid_t space = attr >= 0 ? H5Aget_space(attr) : H5Dget_space(ds);
  char *buf = NULL;
  if (ft < 0 || space < 0) goto done;
  if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0) goto done;
  if (H5Sget_simple_extent_npoints(space) != 1) goto done;
  size_t n = H5Tget_size(ft);
  if (n == 0 || n >= max) goto done;
  if (ds >= 0 && H5Dget_storage_size(ds) != n) goto done;
  hid_t mt = H5Tcopy(H5T_C_S1);
  if (mt < 0) goto done;
  H5Tset_size(mt, n + 1);
  H5Tset_strpad(mt, H5T_STR_NULLTERM);
  H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 will not convert ASCII <-> UTF-8 */
  buf = calloc(1, n + 1);
  if (buf) {
    herr_t rc = attr >= 0 ? H5Aread(attr, mt, buf) : H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (rc < 0) {
      free(buf);
      buf = NULL;
    } else {
      buf[n] = '\0';
    }
  }
  H5Tclose(mt);
done:
  if (ft >= 0) H5Tclose(ft);
  if (space >= 0) H5Sclose(space);
  return buf;
}

/* NULL with *absent = 1 when there is no such attribute, 0 when unreadable. */
static char *read_str_attr(hid_t obj, const char *name, size_t max, int *absent) {
  htri_t has = H5Aexists(obj, name);
  *absent = has == 0;
  if (has <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  char *s = read_string(a, -1, max);
  H5Aclose(a);
  return s;
}

/* Scalar integer or float (dataset ds or attribute attr) converted by HDF5. */
static int read_number(hid_t attr, hid_t ds, hid_t mtype, void *out) {
  hid_t ft = attr >= 0 ? H5Aget_type(attr) : H5Dget_type(ds);
  hid_t space = attr >= 0 ? H5Aget_space(attr) : H5Dget_space(ds);
  int ok = ft >= 0 && space >= 0 && H5Sget_simple_extent_npoints(space) == 1;
  if (ok) {
    H5T_class_t c = H5Tget_class(ft);
    ok = c == H5T_INTEGER || c == H5T_FLOAT;
  }
  if (ok) ok = (attr >= 0 ? H5Aread(attr, mtype, out) : H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out)) >= 0;
  if (ft >= 0) H5Tclose(ft);
  if (space >= 0) H5Sclose(space);
  return ok ? 0 : -1;
}

/* Name of link i of group g, in creation order when the writer tracked it. */
static int link_name(hid_t g, hsize_t i, char *buf, size_t cap) {
  ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
  H5_index_t idx = H5_INDEX_CRT_ORDER;
  if (n < 0) {
    idx = H5_INDEX_NAME;
    n = H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
  }
  if (n < 0 || (size_t)n >= cap) return -1;
  return H5Lget_name_by_idx(g, ".", idx, H5_ITER_INC, i, buf, cap, H5P_DEFAULT) < 0 ? -1 : 0;
}

static int group_size(hid_t g, hsize_t *n) {
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) return -1;
  *n = info.nlinks;
  return info.nlinks > MAX_LINKS ? -1 : 0;
}

/* Adds one tensor's catalogue entry: type, shape and the bf16 attribute. */
static int load_tensor(ckpt_reader *r, hid_t g, ckpt_group group, const char *name,
                       grpo_error *err) {
  const char *gp = ckpt_group_path(group);
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: %s/%s is not a readable dataset", r->path, gp, name);
  hid_t ft = H5Dget_type(ds), space = H5Dget_space(ds);
  int rc = GRPO_OK;
  ckpt_tensor_info t;
  memset(&t, 0, sizeof t);
  snprintf(t.name, sizeof t.name, "%s", name);
  t.group = group;
  int absent;
  char *dattr = read_str_attr(ds, "dtype", 64, &absent);
  if (ft < 0 || space < 0 || (!dattr && !absent)) {
    rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: %s/%s: unreadable type or shape", r->path, gp, name);
    goto done;
  }
  H5T_class_t cls = H5Tget_class(ft);
  size_t size = H5Tget_size(ft);
  if (cls == H5T_FLOAT && size == 4 && (!dattr || strcmp(dattr, "float32") == 0)) {
    t.dtype = CKPT_F32;
  } else if (cls == H5T_INTEGER && size == 2 && H5Tget_sign(ft) == H5T_SGN_NONE && dattr &&
             strcmp(dattr, "bfloat16") == 0) {
    t.dtype = CKPT_BF16;
  } else {
    rc = GRPO_FAIL(err, GRPO_EFORMAT,
                   "%s: %s/%s: unsupported element type (HDF5 class %d, %zu bytes, dtype attribute '%s'); "
                   "expected float32, or uint16 with dtype=bfloat16",
                   r->path, gp, name, (int)cls, size, dattr ? dattr : "none");
    goto done;
  }
  int ndim = H5Sget_simple_extent_ndims(space);
  if (ndim < 0 || ndim > CKPT_MAX_DIMS) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s/%s: rank %d not in [0, %d]", r->path, gp, name, ndim,
                   CKPT_MAX_DIMS);
    goto done;
  }
  hsize_t dims[CKPT_MAX_DIMS];
  H5Sget_simple_extent_dims(space, dims, NULL);
  t.ndim = ndim;
  t.numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (dims[d] > (hsize_t)INT64_MAX || (dims[d] > 0 && (uint64_t)t.numel > (uint64_t)(INT64_MAX / 8) / dims[d])) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s/%s: shape overflows", r->path, gp, name);
      goto done;
    }
    t.shape[d] = (int64_t)dims[d];
    t.numel *= (int64_t)dims[d];
  }
  /* Every element must be backed by stored bytes: a corrupt shape cannot make
   * a caller allocate more than the file holds. */
  uint64_t need = (uint64_t)t.numel * ckpt_dtype_size(t.dtype);
  hsize_t stored = H5Dget_storage_size(ds);
  if (need > 0 && stored < need) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s/%s: shape needs %llu bytes but the file stores %llu (corrupt)",
                   r->path, gp, name, (unsigned long long)need, (unsigned long long)stored);
    goto done;
  }
  if (grow((void **)&r->tensors, &r->tensors_cap, r->ntensors, sizeof t) != 0) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", r->path);
    goto done;
  }
  r->tensors[r->ntensors++] = t;
  r->group_count[group]++;
done:
  free(dattr);
  if (ft >= 0) H5Tclose(ft);
  if (space >= 0) H5Sclose(space);
  H5Dclose(ds);
  return rc;
}

static int load_group(ckpt_reader *r, ckpt_group group, int required, grpo_error *err) {
  const char *gp = ckpt_group_path(group);
  htri_t has = H5Lexists(r->file, group == CKPT_MODEL ? "/model" : "/optim", H5P_DEFAULT);
  if (has > 0 && group != CKPT_MODEL) has = H5Lexists(r->file, gp, H5P_DEFAULT);
  if (has < 0) return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot look up %s", r->path, gp);
  if (has == 0) {
    if (!required) return GRPO_OK;
    return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: not a grpo checkpoint: no %s group", r->path, gp);
  }
  hid_t g = H5Gopen2(r->file, gp, H5P_DEFAULT);
  hsize_t n = 0;
  if (g < 0 || group_size(g, &n) != 0) {
    if (g >= 0) H5Gclose(g);
    return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot list %s", r->path, gp);
  }
  int rc = GRPO_OK;
  for (hsize_t i = 0; i < n && rc == GRPO_OK; i++) {
    char name[CKPT_NAME_MAX];
    if (link_name(g, i, name, sizeof name) != 0)
      rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot read name of entry %llu of %s", r->path,
                        (unsigned long long)i, gp);
    else
      rc = load_tensor(r, g, group, name, err);
  }
  H5Gclose(g);
  return rc;
}

static int add_scalar(ckpt_reader *r, const ckpt_scalar *s, grpo_error *err) {
  if (grow((void **)&r->scalars, &r->scalars_cap, r->nscalars, sizeof *s) != 0) {
    free((char *)s->str);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", r->path);
  }
  r->scalars[r->nscalars++] = *s;
  return GRPO_OK;
}

static int load_state_entry(ckpt_reader *r, hid_t g, const char *name, grpo_error *err) {
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: /state/%s is not a readable dataset", r->path, name);
  hid_t ft = H5Dget_type(ds), space = H5Dget_space(ds);
  int rc = GRPO_OK;
  H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
  hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  if (strcmp(name, "step") == 0) {
    if (cls != H5T_INTEGER || read_number(-1, ds, H5T_NATIVE_INT64, &r->step) != 0)
      rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: /state/step is not a readable integer", r->path);
  } else if (strcmp(name, "rng") == 0) {
    if (cls != H5T_INTEGER || ndim != 1 || npoints < 0 || npoints > MAX_RNG_WORDS) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: /state/rng must be a 1-D integer array of at most %d words",
                     r->path, MAX_RNG_WORDS);
    } else if (npoints > 0) {
      r->rng = malloc((size_t)npoints * sizeof *r->rng);
      if (!r->rng)
        rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", r->path);
      else if (H5Dread(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->rng) < 0)
        rc = CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot read /state/rng", r->path);
      else
        r->nrng = (size_t)npoints;
    }
  } else {
    ckpt_scalar s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", name);
    if (npoints != 1 || ndim > 0) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: /state/%s is not a scalar", r->path, name);
    } else if (cls == H5T_INTEGER) {
      s.kind = CKPT_SCALAR_I64;
      if (read_number(-1, ds, H5T_NATIVE_INT64, &s.i64) != 0)
        rc = CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot read /state/%s", r->path, name);
      s.f64 = (double)s.i64;
    } else if (cls == H5T_FLOAT) {
      s.kind = CKPT_SCALAR_F64;
      if (read_number(-1, ds, H5T_NATIVE_DOUBLE, &s.f64) != 0)
        rc = CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot read /state/%s", r->path, name);
    } else if (cls == H5T_STRING) {
      s.kind = CKPT_SCALAR_STR;
      s.str = read_string(-1, ds, CKPT_STR_MAX);
      if (!s.str)
        rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: /state/%s: unreadable string (fixed-length, < %d bytes)",
                          r->path, name, CKPT_STR_MAX);
    } else {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: /state/%s: unsupported type (want int64, float64 or string)",
                     r->path, name);
    }
    if (rc == GRPO_OK) rc = add_scalar(r, &s, err);
  }
  if (ft >= 0) H5Tclose(ft);
  if (space >= 0) H5Sclose(space);
  H5Dclose(ds);
  return rc;
}

static int load_state(ckpt_reader *r, grpo_error *err) {
  if (H5Lexists(r->file, "/state", H5P_DEFAULT) <= 0 ||
      H5Lexists(r->file, "/state/step", H5P_DEFAULT) <= 0)
    return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: not a grpo checkpoint: no /state/step", r->path);
  hid_t g = H5Gopen2(r->file, "/state", H5P_DEFAULT);
  hsize_t n = 0;
  if (g < 0 || group_size(g, &n) != 0) {
    if (g >= 0) H5Gclose(g);
    return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot list /state", r->path);
  }
  int rc = GRPO_OK;
  for (hsize_t i = 0; i < n && rc == GRPO_OK; i++) {
    char name[CKPT_NAME_MAX];
    if (link_name(g, i, name, sizeof name) != 0)
      rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot read name of /state entry %llu", r->path,
                        (unsigned long long)i);
    else
      rc = load_state_entry(r, g, name, err);
  }
  H5Gclose(g);
  return rc;
}

/* /meta: format tag and version first, so a foreign or newer file is named as
 * such before anything else is interpreted. */
static int load_meta(ckpt_reader *r, grpo_error *err) {
  if (H5Lexists(r->file, "/meta", H5P_DEFAULT) <= 0)
    return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: not a grpo checkpoint: no /meta group", r->path);
  hid_t g = H5Gopen2(r->file, "/meta", H5P_DEFAULT);
  if (g < 0) return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot open /meta", r->path);
  int rc = GRPO_OK;
  int absent;
  char *tag = read_str_attr(g, "format", 64, &absent);
  if (!tag || strcmp(tag, CKPT_FORMAT_TAG) != 0) {
    rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: not a grpo checkpoint: /meta attribute format is '%s', expected '%s'",
                      r->path, tag ? tag : "(missing)", CKPT_FORMAT_TAG);
    goto done;
  }
  hid_t a = H5Aexists(g, "format_version") > 0 ? H5Aopen(g, "format_version", H5P_DEFAULT) : -1;
  int ok = a >= 0 && read_number(a, -1, H5T_NATIVE_INT64, &r->version) == 0;
  if (a >= 0) H5Aclose(a);
  if (!ok) {
    rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: /meta attribute format_version is missing or unreadable", r->path);
    goto done;
  }
  if (r->version != CKPT_FORMAT_VERSION) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: checkpoint format_version %lld is not supported: this grpo reads version %d%s",
                   r->path, (long long)r->version, CKPT_FORMAT_VERSION,
                   r->version > CKPT_FORMAT_VERSION ? " (written by a newer grpo)" : "");
    goto done;
  }
  char *producer = read_str_attr(g, "producer", sizeof r->producer, &absent);
  if (!producer && !absent) {
    rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: /meta attribute producer is unreadable", r->path);
    goto done;
  }
  snprintf(r->producer, sizeof r->producer, "%s", producer ? producer : "unknown");
  free(producer);

  hsize_t n = 0;
  if (group_size(g, &n) != 0) {
    rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot list /meta", r->path);
    goto done;
  }
  for (hsize_t i = 0; i < n && rc == GRPO_OK; i++) {
    char name[CKPT_NAME_MAX];
    if (link_name(g, i, name, sizeof name) != 0) {
      rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot read name of /meta entry %llu", r->path,
                        (unsigned long long)i);
      break;
    }
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    char *text = ds >= 0 ? read_string(-1, ds, MAX_TEXT) : NULL;
    if (ds >= 0) H5Dclose(ds);
    if (!text) {
      rc = CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: /meta/%s is not a readable fixed-length string", r->path, name);
    } else if (grow((void **)&r->meta, &r->meta_cap, r->nmeta, sizeof *r->meta) != 0) {
      free(text);
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", r->path);
    } else {
      snprintf(r->meta[r->nmeta].key, CKPT_NAME_MAX, "%s", name);
      r->meta[r->nmeta++].text = text;
    }
  }
done:
  free(tag);
  H5Gclose(g);
  return rc;
}

int ckpt_reader_open(ckpt_reader **out, const char *path, grpo_error *err) {
  *out = NULL;
  ckpt_h5_quiet();
  struct stat st;
  if (!path || !path[0]) return GRPO_FAIL(err, GRPO_EINVAL, "checkpoint path is empty");
  if (stat(path, &st) != 0)
    return GRPO_FAIL(err, errno == ENOENT ? GRPO_ENOTFOUND : GRPO_EIO, "%s: cannot open checkpoint: %s",
                     path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: is a directory, not a checkpoint file", path);
  if (strlen(path) >= sizeof((ckpt_reader *)0)->path)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: checkpoint path too long", path);

  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return CKPT_H5_FAIL(err, GRPO_EIO, "%s: HDF5 property list", path);
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  htri_t is_h5 = H5Fis_hdf5(path); /* H5Fis_accessible arrives in 1.12 */
  if (is_h5 == 0) {
    H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: not an HDF5 file (no HDF5 signature)", path);
  }
  hid_t file = is_h5 > 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl) : -1;
  H5Pclose(fapl);
  if (file < 0)
    return CKPT_H5_FAIL(err, GRPO_EFORMAT, "%s: cannot open checkpoint: truncated or corrupt HDF5 file", path);

  ckpt_reader *r = calloc(1, sizeof *r);
  if (!r) {
    H5Fclose(file);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  }
  r->file = file;
  snprintf(r->path, sizeof r->path, "%s", path);
  int rc = load_meta(r, err);
  if (!rc) rc = load_state(r, err);
  if (!rc) rc = load_group(r, CKPT_MODEL, 1, err);
  if (!rc) rc = load_group(r, CKPT_OPTIM_M, 0, err);
  if (!rc) rc = load_group(r, CKPT_OPTIM_V, 0, err);
  if (rc) {
    ckpt_reader_close(r);
    return rc;
  }
  *out = r;
  return GRPO_OK;
}

void ckpt_reader_close(ckpt_reader *r) {
  if (!r) return;
  if (r->file >= 0) H5Fclose(r->file);
  H5Eclear2(H5E_DEFAULT);
  for (int i = 0; i < r->nscalars; i++) free((char *)r->scalars[i].str);
  for (int i = 0; i < r->nmeta; i++) free(r->meta[i].text);
  free(r->scalars);
  free(r->meta);
  free(r->tensors);
  free(r->rng);
  free(r);
}

const char *ckpt_reader_path(const ckpt_reader *r) { return r->path; }
int64_t ckpt_reader_step(const ckpt_reader *r) { return r->step; }
int64_t ckpt_reader_format_version(const ckpt_reader *r) { return r->version; }
const char *ckpt_reader_producer(const ckpt_reader *r) { return r->producer; }
int ckpt_reader_num_tensors(const ckpt_reader *r) { return r->ntensors; }
int ckpt_reader_count(const ckpt_reader *r, ckpt_group group) {
  return (unsigned)group < CKPT_NUM_GROUPS ? r->group_count[group] : 0;
}

const ckpt_tensor_info *ckpt_reader_tensor(const ckpt_reader *r, int i) {
  return i >= 0 && i < r->ntensors ? &r->tensors[i] : NULL;
}

const ckpt_tensor_info *ckpt_reader_find(const ckpt_reader *r, ckpt_group group, const char *name) {
  for (int i = 0; i < r->ntensors; i++)
    if (r->tensors[i].group == group && strcmp(r->tensors[i].name, name) == 0) return &r->tensors[i];
  return NULL;
}

int ckpt_reader_read_rows(ckpt_reader *r, const ckpt_tensor_info *t, int64_t row0, int64_t nrows,
                          ckpt_dtype want, void *buf, size_t buf_elems, grpo_error *err) {
  const char *gp = ckpt_group_path(t->group);
  int whole = t->ndim == 0 || (row0 == 0 && nrows == t->shape[0]);
  if (!whole && (row0 < 0 || nrows < 0 || row0 > t->shape[0] || nrows > t->shape[0] - row0))
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: %s/%s: rows [%lld, %lld) outside [0, %lld)", r->path, gp,
                     t->name, (long long)row0, (long long)(row0 + nrows), (long long)t->shape[0]);
  if (want != CKPT_F32 && want != CKPT_BF16)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: %s/%s: unknown dtype %d requested", r->path, gp, t->name, (int)want);
  int64_t count = t->numel;
  if (!whole) count = t->shape[0] ? t->numel / t->shape[0] * nrows : 0;
  if ((uint64_t)count > buf_elems)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: %s/%s: buffer holds %zu elements, the read needs %lld",
                     r->path, gp, t->name, buf_elems, (long long)count);
  if (count == 0) return GRPO_OK;

  char dpath[CKPT_NAME_MAX + 16];
  snprintf(dpath, sizeof dpath, "%s/%s", gp, t->name);
  hid_t ds = H5Dopen2(r->file, dpath, H5P_DEFAULT);
  if (ds < 0) return CKPT_H5_FAIL(err, GRPO_ENOTFOUND, "%s: cannot open tensor %s", r->path, dpath);
  hid_t fspace = H5S_ALL, mspace = H5S_ALL;
  if (!whole) {
    hsize_t start[CKPT_MAX_DIMS] = {0}, cnt[CKPT_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) cnt[d] = (hsize_t)t->shape[d];
    start[0] = (hsize_t)row0;
    cnt[0] = (hsize_t)nrows;
    fspace = H5Dget_space(ds);
    mspace = H5Screate_simple(t->ndim, cnt, NULL);
    if (fspace < 0 || mspace < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0) {
      if (fspace >= 0) H5Sclose(fspace);
      if (mspace >= 0) H5Sclose(mspace);
      H5Dclose(ds);
      return CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot select rows of %s", r->path, dpath);
    }
  }
  int rc = GRPO_OK;
  void *tmp = NULL;
  herr_t hr;
  if (t->dtype == CKPT_BF16) {
    /* bf16 -> f32 widens inside the caller's buffer: no temporary. */
    hr = H5Dread(ds, H5T_NATIVE_UINT16, mspace, fspace, H5P_DEFAULT, buf);
    if (hr >= 0 && want == CKPT_F32) widen_bf16_in_place(buf, (size_t)count);
  } else if (want == CKPT_F32) {
    hr = H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf);
  } else {
    tmp = malloc((size_t)count * sizeof(float));
    if (!tmp) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: %s: out of memory for the f32 -> bf16 read", r->path, dpath);
      hr = 0;
    } else {
      hr = H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, tmp);
      if (hr >= 0) grpo_f32_to_bf16_n(buf, tmp, (size_t)count);
    }
  }
  if (hr < 0) rc = CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot read tensor %s (corrupt data?)", r->path, dpath);
  free(tmp);
  if (fspace != H5S_ALL) H5Sclose(fspace);
  if (mspace != H5S_ALL) H5Sclose(mspace);
  H5Dclose(ds);
  return rc;
}

int ckpt_reader_read(ckpt_reader *r, const ckpt_tensor_info *t, ckpt_dtype want, void *buf,
                     size_t buf_elems, grpo_error *err) {
  return ckpt_reader_read_rows(r, t, 0, t->ndim ? t->shape[0] : 1, want, buf, buf_elems, err);
}

int ckpt_reader_read_named(ckpt_reader *r, ckpt_group group, const char *name, ckpt_dtype want,
                           void *buf, size_t buf_elems, grpo_error *err) {
  const ckpt_tensor_info *t = ckpt_reader_find(r, group, name);
  if (!t)
    return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no tensor %s/%s", r->path, ckpt_group_path(group), name);
  return ckpt_reader_read(r, t, want, buf, buf_elems, err);
}

int ckpt_reader_num_scalars(const ckpt_reader *r) { return r->nscalars; }
const ckpt_scalar *ckpt_reader_scalar(const ckpt_reader *r, int i) {
  return i >= 0 && i < r->nscalars ? &r->scalars[i] : NULL;
}

const ckpt_scalar *ckpt_reader_find_scalar(const ckpt_reader *r, const char *name) {
  for (int i = 0; i < r->nscalars; i++)
    if (strcmp(r->scalars[i].name, name) == 0) return &r->scalars[i];
  return NULL;
}

int ckpt_reader_get_i64(const ckpt_reader *r, const char *name, int64_t *out, grpo_error *err) {
  const ckpt_scalar *s = ckpt_reader_find_scalar(r, name);
  if (!s) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no /state/%s", r->path, name);
  if (s->kind != CKPT_SCALAR_I64)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: /state/%s is not an integer", r->path, name);
  *out = s->i64;
  return GRPO_OK;
}

int ckpt_reader_get_f64(const ckpt_reader *r, const char *name, double *out, grpo_error *err) {
  const ckpt_scalar *s = ckpt_reader_find_scalar(r, name);
  if (!s) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no /state/%s", r->path, name);
  if (s->kind == CKPT_SCALAR_STR)
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: /state/%s is a string, not a number", r->path, name);
  *out = s->f64;
  return GRPO_OK;
}

const uint64_t *ckpt_reader_rng(const ckpt_reader *r, size_t *n) {
  *n = r->nrng;
  return r->rng;
}

const char *ckpt_reader_meta(const ckpt_reader *r, const char *key) {
  for (int i = 0; i < r->nmeta; i++)
    if (strcmp(r->meta[i].key, key) == 0) return r->meta[i].text;
  return NULL;
}

int ckpt_reader_num_meta(const ckpt_reader *r) { return r->nmeta; }
const char *ckpt_reader_meta_key(const ckpt_reader *r, int i) {
  return i >= 0 && i < r->nmeta ? r->meta[i].key : NULL;
}
