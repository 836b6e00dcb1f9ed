#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt_internal.h"
#include "core/fileio.h"
#include "core/log.h"

#ifndef GRPO_VERSION
#define GRPO_VERSION "unknown"
#endif

struct ckpt_writer {
  hid_t file;
  hid_t model, optim, m, v, state, meta;
  char path[4096];       /* the file being written */
  char final_path[4096]; /* publish mode: where it goes */
  char dir[4096];
  char name[64];         /* step_NNNNNNNN.h5 */
  int publish, keep_last;
  int64_t step;
  grpo_error first_err;  /* a failed put poisons the writer; finish reports it */
};

static void writer_close_h5(ckpt_writer *w) {
  hid_t *ids[] = {&w->m, &w->v, &w->optim, &w->model, &w->state, &w->meta};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    if (*ids[i] >= 0) {
      H5Gclose(*ids[i]);
      *ids[i] = -1;
    }
  if (w->file >= 0) {
    H5Fclose(w->file);
    w->file = -1;
  }
}

/* Records the first failure so finish() refuses to publish a partial file. */
static int poison(ckpt_writer *w, grpo_error *err, int rc) {
  if (w->first_err.code == GRPO_OK) {
    if (err)
      w->first_err = *err;
    else
      w->first_err.code = rc;
  }
  return rc;
}

static hid_t create_group(hid_t parent, const char *name) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl < 0) return -1;
  /* Creation order lets readers list tensors in the order they were written. */
  H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5Pset_obj_track_times(gcpl, 0);
  hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  H5Pclose(gcpl);
  return g;
}

/* Fixed-length strings: they live in checksummed metadata (unlike variable-
 * length ones, which go to HDF5's unchecked global heap). */
static hid_t string_type(size_t len) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return -1;
  H5Tset_size(t, len ? len : 1);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

static int put_str_attr(hid_t obj, const char *name, const char *value) {
  size_t len = strlen(value);
  hid_t t = string_type(len), s = H5Screate(H5S_SCALAR), a = -1;
  int ok = t >= 0 && s >= 0;
  if (ok) a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && a >= 0 && H5Awrite(a, t, len ? value : "") >= 0;
  if (a >= 0) H5Aclose(a);
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  return ok ? 0 : -1;
}

static int put_i64_attr(hid_t obj, const char *name, int64_t value) {
  hid_t s = H5Screate(H5S_SCALAR), a = -1;
  int ok = s >= 0;
  if (ok) a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  ok = ok && a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0;
  if (a >= 0) H5Aclose(a);
  if (s >= 0) H5Sclose(s);
  return ok ? 0 : -1;
}

/* Storage for a dataset of `bytes` bytes: small ones go in the (checksummed)
 * object header, larger ones in chunks with Fletcher-32, so a flipped bit is a
 * read error rather than a silently wrong weight. */
static hid_t make_dcpl(int ndim, const hsize_t *dims, size_t esize, int64_t numel,
                       int chunkable) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0) return dcpl;
  /* No timestamps: the same state always gives the same bytes. */
  H5Pset_obj_track_times(dcpl, 0);
  if (numel == 0) return dcpl;
  if ((uint64_t)numel * esize <= CKPT_COMPACT_MAX) {
    H5Pset_layout(dcpl, H5D_COMPACT);
  } else if (chunkable && ndim > 0) {
    hsize_t chunk[CKPT_MAX_DIMS];
    uint64_t budget = CKPT_CHUNK_BYTES / esize, inner = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      uint64_t room = budget / inner;
      chunk[d] = dims[d] < room ? dims[d] : (room ? room : 1);
      inner *= chunk[d];
    }
    H5Pset_chunk(dcpl, ndim, chunk);
    H5Pset_fletcher32(dcpl);
  }
  return dcpl;
}

/* Creates dataset `name` in g and writes data (mem type mtype, file type ftype). */
static int write_dataset(hid_t g, const char *name, hid_t ftype, hid_t mtype, int ndim,
                         const hsize_t *dims, int64_t numel, const void *data, int chunkable,
                         hid_t *out_ds) {
  hid_t space = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
  hid_t dcpl = make_dcpl(ndim, dims, H5Tget_size(ftype), numel, chunkable), ds = -1;
  int ok = space >= 0 && dcpl >= 0;
  if (ok) ds = H5Dcreate2(g, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ok = ok && ds >= 0;
  if (ok && numel > 0) ok = H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  if (ds >= 0) {
    if (ok && out_ds)
      *out_ds = ds;
    else
      H5Dclose(ds);
  }
  return ok ? 0 : -1;
}

static int writer_create(ckpt_writer **out, const char *path, int64_t step, grpo_error *err) {
  *out = NULL;
  ckpt_h5_quiet();
  if (strlen(path) >= sizeof((ckpt_writer *)0)->path)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: checkpoint path too long", path);
  ckpt_writer *w = calloc(1, sizeof *w);
  if (!w) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  w->file = w->model = w->optim = w->m = w->v = w->state = w->meta = -1;
  snprintf(w->path, sizeof w->path, "%s", path);
  w->step = step;

  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) {
    /* The 1.10 format checksums all file metadata (superblock, object headers,
     * chunk indexes), so corruption is detected instead of misread. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl >= 0) H5Pset_obj_track_times(fcpl, 0); /* root group: no timestamp either */
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl >= 0 ? fcpl : H5P_DEFAULT, fapl);
    if (fcpl >= 0) H5Pclose(fcpl);
    H5Pclose(fapl);
  }
  if (w->file < 0) {
    CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot create checkpoint file", path);
    free(w);
    return GRPO_EIO;
  }
  int ok = (w->model = create_group(w->file, "model")) >= 0 &&
           (w->state = create_group(w->file, "state")) >= 0 &&
           (w->meta = create_group(w->file, "meta")) >= 0 &&
           put_str_attr(w->meta, "format", CKPT_FORMAT_TAG) == 0 &&
           put_i64_attr(w->meta, "format_version", CKPT_FORMAT_VERSION) == 0 &&
           put_str_attr(w->meta, "producer", "grpo " GRPO_VERSION) == 0;
  if (ok) {
    hid_t ds = -1;
    int64_t v = step;
    ok = write_dataset(w->state, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, 1, &v, 0,
                       &ds) == 0;
    if (ds >= 0) H5Dclose(ds);
  }
  if (!ok) {
    CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot write checkpoint header", path);
    writer_close_h5(w);
    unlink(path);
    free(w);
    return GRPO_EIO;
  }
  *out = w;
  return GRPO_OK;
}

int ckpt_writer_open(ckpt_writer **out, const char *path, int64_t step, grpo_error *err) {
  return writer_create(out, path, step, err);
}

int ckpt_writer_begin(ckpt_writer **out, const char *dir, int64_t step, int keep_last,
                      grpo_error *err) {
  *out = NULL;
  if (step < 0) return GRPO_FAIL(err, GRPO_EINVAL, "%s: checkpoint step %lld < 0", dir, (long long)step);
  int rc = grpo_mkdirs(dir, err); /* checkpoint.dir may name a path whose parents do not exist yet */
  if (rc) return rc;
  char name[64], tmp[4200];
  ckpt_step_filename(step, name, sizeof name);
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
  rc = writer_create(out, tmp, step, err);
  if (rc) return rc;
  ckpt_writer *w = *out;
  w->publish = 1;
  w->keep_last = keep_last;
  snprintf(w->dir, sizeof w->dir, "%s", dir);
  snprintf(w->name, sizeof w->name, "%s", name);
  snprintf(w->final_path, sizeof w->final_path, "%s/%s", dir, name);
  return GRPO_OK;
}

static int check_usable(ckpt_writer *w, const char *what, const char *name, grpo_error *err) {
  if (w->first_err.code != GRPO_OK)
    return GRPO_FAIL(err, GRPO_EINVAL, "%s: %s '%s' after an earlier write failed", w->path,
                     what, name ? name : "");
  if (!ckpt_name_ok(name))
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL,
                                    "%s: invalid %s name '%s' (empty, too long, '/', '.' or '..')",
                                    w->path, what, name ? name : "(null)"));
  return GRPO_OK;
}

static int exists_in(hid_t g, const char *name) { return H5Lexists(g, name, H5P_DEFAULT) > 0; }

int ckpt_writer_put_tensor(ckpt_writer *w, ckpt_group group, const char *name,
                           ckpt_dtype dtype, int ndim, const int64_t *shape, const void *data,
                           grpo_error *err) {
  int rc = check_usable(w, "tensor", name, err);
  if (rc) return rc;
  const char *gp = ckpt_group_path(group);
  if ((unsigned)group >= CKPT_NUM_GROUPS)
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor %s: unknown group %d", w->path, name, (int)group));
  if (dtype != CKPT_F32 && dtype != CKPT_BF16)
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor %s/%s: unknown dtype %d",
                                    w->path, gp, name, (int)dtype));
  if (ndim < 0 || ndim > CKPT_MAX_DIMS || (ndim > 0 && !shape))
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor %s/%s: ndim %d not in [0, %d]",
                                    w->path, gp, name, ndim, CKPT_MAX_DIMS));
  hsize_t dims[CKPT_MAX_DIMS];
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0 || (shape[d] > 0 && numel > INT64_MAX / 8 / shape[d]))
      return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor %s/%s: bad dimension %d = %lld",
                                      w->path, gp, name, d, (long long)shape[d]));
    dims[d] = (hsize_t)shape[d];
    numel *= shape[d];
  }
  if (numel > 0 && !data)
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor %s/%s: no data", w->path, gp, name));

  hid_t g = w->model;
  if (group == CKPT_OPTIM_M || group == CKPT_OPTIM_V) {
    if (w->optim < 0 && (w->optim = create_group(w->file, "optim")) < 0)
      return poison(w, err, CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot create /optim", w->path));
    hid_t *sub = group == CKPT_OPTIM_M ? &w->m : &w->v;
    if (*sub < 0 && (*sub = create_group(w->optim, group == CKPT_OPTIM_M ? "m" : "v")) < 0)
      return poison(w, err, CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot create %s", w->path, gp));
    g = *sub;
  }
  if (exists_in(g, name))
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: tensor %s/%s written twice", w->path, gp, name));
  hid_t ftype = dtype == CKPT_BF16 ? H5T_STD_U16LE : H5T_IEEE_F32LE;
  hid_t mtype = dtype == CKPT_BF16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT;
  hid_t ds = -1;
  if (write_dataset(g, name, ftype, mtype, ndim, dims, numel, data, 1, &ds) != 0 ||
      put_str_attr(ds, "dtype", ckpt_dtype_name(dtype)) != 0) {
    if (ds >= 0) H5Dclose(ds);
    return poison(w, err, CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot write tensor %s/%s", w->path, gp, name));
  }
  H5Dclose(ds);
  return GRPO_OK;
}

static int put_state(ckpt_writer *w, const char *name, hid_t ftype, hid_t mtype, int ndim,
                     const hsize_t *dims, int64_t numel, const void *data, grpo_error *err) {
  int rc = check_usable(w, "state", name, err);
  if (rc) return rc;
  if (exists_in(w->state, name))
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: /state/%s written twice (step is written by the writer)",
                                    w->path, name));
  if (write_dataset(w->state, name, ftype, mtype, ndim, dims, numel, data, 1, NULL) != 0)
    return poison(w, err, CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot write /state/%s", w->path, name));
  return GRPO_OK;
}

int ckpt_writer_put_i64(ckpt_writer *w, const char *name, int64_t value, grpo_error *err) {
  return put_state(w, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, 1, &value, err);
}

int ckpt_writer_put_f64(ckpt_writer *w, const char *name, double value, grpo_error *err) {
  return put_state(w, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, 1, &value, err);
}

int ckpt_writer_put_rng(ckpt_writer *w, const uint64_t *words, size_t n, grpo_error *err) {
  if (n > 0 && !words)
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: /state/rng: no data", w->path));
  hsize_t dims[1] = {n};
  return put_state(w, "rng", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dims, (int64_t)n, words, err);
}

static int put_text(ckpt_writer *w, hid_t g, const char *gname, const char *name,
                    const char *text, size_t max, grpo_error *err) {
  int rc = check_usable(w, gname, name, err);
  if (rc) return rc;
  if (!text) text = "";
  size_t len = strlen(text);
  if (len >= max)
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: /%s/%s: string of %zu bytes exceeds %zu",
                                    w->path, gname, name, len, max - 1));
  if (exists_in(g, name))
    return poison(w, err, GRPO_FAIL(err, GRPO_EINVAL, "%s: /%s/%s written twice", w->path, gname, name));
  hid_t t = string_type(len);
  int bad = t < 0 || write_dataset(g, name, t, t, 0, NULL, 1, len ? text : "", 0, NULL) != 0;
  if (t >= 0) H5Tclose(t);
  if (bad)
    return poison(w, err, CKPT_H5_FAIL(err, GRPO_EIO, "%s: cannot write /%s/%s", w->path, gname, name));
  return GRPO_OK;
}

int ckpt_writer_put_str(ckpt_writer *w, const char *name, const char *value, grpo_error *err) {
  return put_text(w, w->state, "state", name, value, CKPT_STR_MAX, err);
}

int ckpt_writer_put_meta(ckpt_writer *w, const char *key, const char *text, grpo_error *err) {
  return put_text(w, w->meta, "meta", key, text, (size_t)1 << 30, err);
}

static int write_latest(const char *dir, const char *name, grpo_error *err) {
  char tmp[4200], dst[4200];
  snprintf(tmp, sizeof tmp, "%s/latest.tmp", dir);
  snprintf(dst, sizeof dst, "%s/latest", dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return GRPO_FAIL(err, GRPO_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  char line[80];
  int len = snprintf(line, sizeof line, "%s\n", name);
  ssize_t put = write(fd, line, (size_t)len);
  int saved = errno;
  if (put != len || fsync(fd) != 0) {
    if (put == len) saved = errno;
    close(fd);
    unlink(tmp);
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot write: %s", tmp, strerror(saved));
  }
  close(fd);
  if (rename(tmp, dst) != 0) {
    saved = errno;
    unlink(tmp);
    return GRPO_FAIL(err, GRPO_EIO, "%s: cannot rename to %s: %s", tmp, dst, strerror(saved));
  }
  return ckpt_fsync_path(dir, 1, err);
}

int ckpt_writer_finish(ckpt_writer *w, grpo_error *err) {
  if (!w) return GRPO_FAIL(err, GRPO_EINVAL, "ckpt_writer_finish: no writer");
  if (w->first_err.code != GRPO_OK) {
    if (err) *err = w->first_err;
    grpo_error_prefix(err, "checkpoint not written");
    ckpt_writer_abort(w);
    return err ? err->code : GRPO_EIO;
  }
  /* Everything reaches the disk before the name becomes visible. */
  int ok = H5Fflush(w->file, H5F_SCOPE_GLOBAL) >= 0;
  if (!ok) {
    int rc = CKPT_H5_FAIL(err, GRPO_EIO, "%s: flushing checkpoint failed", w->path);
    ckpt_writer_abort(w);
    return rc;
  }
  hid_t file = w->file;
  w->file = -1;
  writer_close_h5(w);
  if (H5Fclose(file) < 0) {
    int rc = CKPT_H5_FAIL(err, GRPO_EIO, "%s: closing checkpoint failed", w->path);
    ckpt_writer_abort(w);
    return rc;
  }
  int rc = ckpt_fsync_path(w->path, 0, err);
  if (rc == GRPO_OK && w->publish) {
    if (rename(w->path, w->final_path) != 0)
      rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot rename to %s: %s", w->path, w->final_path,
                     strerror(errno));
    if (rc == GRPO_OK) rc = ckpt_fsync_path(w->dir, 1, err);
    if (rc == GRPO_OK) rc = write_latest(w->dir, w->name, err);
    if (rc == GRPO_OK && w->keep_last > 0) {
      grpo_error rot;
      grpo_error_clear(&rot);
      if (ckpt_rotate(w->dir, w->keep_last, &rot) != GRPO_OK)
        GRPO_WARN("checkpoint rotation: %s", rot.msg);
    }
  }
  if (rc != GRPO_OK) unlink(w->path);
  free(w);
  return rc;
}

void ckpt_writer_abort(ckpt_writer *w) {
  if (!w) return;
  writer_close_h5(w);
  unlink(w->path);
  free(w);
}
