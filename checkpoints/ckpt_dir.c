/* Checkpoint directories: verification, rotation and resolving the newest
 * valid checkpoint after a crash. Publishing itself is in ckpt_write.c. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt_internal.h"
#include "core/log.h"

#define BLOCK_ELEMS ((size_t)1 << 20)

/* Calls fn on consecutive row blocks of t read as f32, through one bounded buffer. */
typedef void (*block_fn)(const float *x, size_t n, void *ctx);

static int scan_tensor(ckpt_reader *r, const ckpt_tensor_info *t, block_fn fn, void *ctx,
                       grpo_error *err) {
  if (t->numel == 0) return GRPO_OK;
  int64_t rows = t->ndim ? t->shape[0] : 1;
  int64_t row_elems = t->numel / rows;
  int64_t per = (int64_t)(BLOCK_ELEMS / (size_t)row_elems);
  if (per < 1) per = 1;
  if (per > rows) per = rows;
  float *buf = malloc((size_t)(per * row_elems) * sizeof *buf);
  if (!buf) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory reading %s", ckpt_reader_path(r), t->name);
  int rc = GRPO_OK;
  for (int64_t row = 0; row < rows && rc == GRPO_OK; row += per) {
    int64_t n = rows - row < per ? rows - row : per;
    rc = ckpt_reader_read_rows(r, t, row, n, CKPT_F32, buf, (size_t)(per * row_elems), err);
    if (rc == GRPO_OK && fn) fn(buf, (size_t)(n * row_elems), ctx);
  }
  free(buf);
  return rc;
}

int ckpt_verify(const char *path, int full, int64_t *step_out, grpo_error *err) {
  ckpt_reader *r;
  int rc = ckpt_reader_open(&r, path, err);
  if (rc) return rc;
  for (int i = 0; full && rc == GRPO_OK && i < ckpt_reader_num_tensors(r); i++)
    rc = scan_tensor(r, ckpt_reader_tensor(r, i), NULL, NULL, err);
  if (rc == GRPO_OK && step_out) *step_out = ckpt_reader_step(r);
  ckpt_reader_close(r);
  return rc;
}

/* "step_<digits>.h5" -> step; -1 for any other name. */
static int64_t parse_step_name(const char *name) {
  if (strncmp(name, "step_", 5) != 0) return -1;
  const char *p = name + 5;
  int64_t step = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    if (digits >= 18) return -1;
    step = step * 10 + (*p - '0');
  }
  return digits > 0 && strcmp(p, ".h5") == 0 ? step : -1;
}

static int is_tmp_name(const char *name) {
  size_t n = strlen(name);
  if (strcmp(name, "latest.tmp") == 0) return 1;
  return strncmp(name, "step_", 5) == 0 && n > 7 && strcmp(name + n - 7, ".h5.tmp") == 0;
}

typedef struct step_file {
  int64_t step;
  char name[64];
} step_file;

static int by_step_desc(const void *a, const void *b) {
  int64_t x = ((const step_file *)a)->step, y = ((const step_file *)b)->step;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Step files of dir, newest first; optionally deletes stale *.tmp files. */
static int list_steps(const char *dir, int clean_tmp, step_file **out, int *n, grpo_error *err) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return GRPO_FAIL(err, errno == ENOENT ? GRPO_ENOTFOUND : GRPO_EIO, "%s: cannot open checkpoint directory: %s",
                     dir, strerror(errno));
  step_file *files = NULL;
  int count = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (clean_tmp && is_tmp_name(e->d_name)) {
      char p[4400];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      if (unlink(p) == 0) GRPO_INFO("removed stale partial checkpoint %s", p);
      continue;
    }
    int64_t step = parse_step_name(e->d_name);
    if (step < 0 || strlen(e->d_name) >= sizeof files[0].name) continue;
    if (count == cap) {
      cap = cap ? cap * 2 : 16;
      step_file *nf = realloc(files, (size_t)cap * sizeof *nf);
      if (!nf) {
        free(files);
        closedir(d);
        return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", dir);
      }
      files = nf;
    }
    files[count].step = step;
    snprintf(files[count].name, sizeof files[count].name, "%s", e->d_name);
    count++;
  }
  closedir(d);
  if (count) qsort(files, (size_t)count, sizeof *files, by_step_desc);
  *out = files;
  *n = count;
  return GRPO_OK;
}

/* The file name in dir/latest, "" when missing or not a step file name. */
static void read_latest(const char *dir, char *name, size_t cap, int *present) {
  char p[4200];
  snprintf(p, sizeof p, "%s/latest", dir);
  name[0] = '\0';
  *present = 0;
  FILE *f = fopen(p, "r");
  if (!f) return;
  *present = 1;
  char line[128] = "";
  if (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (parse_step_name(line) >= 0) snprintf(name, cap, "%s", line);
  }
  fclose(f);
}

int ckpt_rotate(const char *dir, int keep_last, grpo_error *err) {
  if (keep_last <= 0) return GRPO_OK;
  step_file *files;
  int n, present;
  int rc = list_steps(dir, 0, &files, &n, err);
  if (rc) return rc;
  char latest[64];
  read_latest(dir, latest, sizeof latest, &present);
  for (int i = keep_last; i < n; i++) {
    if (strcmp(files[i].name, latest) == 0) continue;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
    if (unlink(p) != 0 && errno != ENOENT) {
      rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot delete old checkpoint: %s", p, strerror(errno));
      break;
    }
  }
  free(files);
  return rc;
}

static int try_candidate(const char *dir, const char *name, int full, char *path_out, size_t cap,
                         int64_t *step_out, grpo_error *why) {
  char p[4200];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int64_t step = -1;
  int rc = ckpt_verify(p, full, &step, why);
  if (rc == GRPO_OK && step != parse_step_name(name))
    rc = GRPO_FAIL(why, GRPO_EFORMAT, "%s: holds step %lld, not the step its name says", p, (long long)step);
  if (rc == GRPO_OK) {
    if (strlen(p) >= cap) return GRPO_FAIL(why, GRPO_EINVAL, "%s: path longer than the caller's buffer", p);
    snprintf(path_out, cap, "%s", p);
    if (step_out) *step_out = step;
  }
  return rc;
}

int ckpt_resolve(const char *dir, unsigned flags, char *path_out, size_t cap, int64_t *step_out,
                 grpo_error *err) {
  step_file *files;
  int n, present;
  int full_verify = (flags & CKPT_RESOLVE_VERIFY_ALL) != 0;
  int rc = list_steps(dir, (flags & CKPT_RESOLVE_CLEAN_TMP) != 0, &files, &n, err);
  if (rc) return rc;
  char latest[64];
  grpo_error why;
  grpo_error_clear(&why);
  read_latest(dir, latest, sizeof latest, &present);
  if (latest[0]) {
    if (try_candidate(dir, latest, full_verify, path_out, cap, step_out, &why) == GRPO_OK) {
      free(files);
      return GRPO_OK;
    }
    GRPO_WARN("%s/latest names %s, which is not usable (%s); looking for an older checkpoint", dir,
              latest, why.msg);
  } else if (present) {
    GRPO_WARN("%s/latest does not name a step file; looking for the newest checkpoint", dir);
  }
  int rejected = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(files[i].name, latest) == 0) continue;
    if (try_candidate(dir, files[i].name, full_verify, path_out, cap, step_out, &why) == GRPO_OK) {
      if (present || rejected) GRPO_WARN("resuming from %s", path_out);
      free(files);
      return GRPO_OK;
    }
    GRPO_WARN("skipping %s/%s: %s", dir, files[i].name, why.msg);
    rejected++;
  }
  free(files);
  return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no valid checkpoint (%d step file%s rejected)", dir,
                   rejected + (latest[0] ? 1 : 0), rejected + (latest[0] ? 1 : 0) == 1 ? "" : "s");
}

/* ---- summary ------------------------------------------------------------------ */

static void add_squares(const float *x, size_t n, void *ctx) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  *(double *)ctx += s;
}

static void print_shape(FILE *out, const ckpt_tensor_info *t) {
  char buf[256];
  int len = snprintf(buf, sizeof buf, "[");
  for (int d = 0; d < t->ndim; d++)
    len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  snprintf(buf + len, sizeof buf - (size_t)len, "]");
  fprintf(out, "%-18s", buf);
}

static int print_group(ckpt_reader *r, ckpt_group g, FILE *out, grpo_error *err) {
  for (int i = 0; i < ckpt_reader_num_tensors(r); i++) {
    const ckpt_tensor_info *t = ckpt_reader_tensor(r, i);
    if (t->group != g) continue;
    double sq = 0;
    int rc = scan_tensor(r, t, add_squares, &sq, err);
    if (rc) return rc;
    fprintf(out, "  %-48s ", t->name);
    print_shape(out, t);
    fprintf(out, " %-8s  norm %.6g\n", ckpt_dtype_name(t->dtype), sqrt(sq));
  }
  return GRPO_OK;
}

int ckpt_summary(const char *path, FILE *out, grpo_error *err) {
  char resolved[4200];
  struct stat st;
  if (path && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    int rc = ckpt_resolve(path, 0, resolved, sizeof resolved, NULL, err); /* never clean: a writer may be live */
    if (rc) return rc;
    path = resolved;
  }
  ckpt_reader *r;
  int rc = ckpt_reader_open(&r, path, err);
  if (rc) return rc;
  fprintf(out, "checkpoint      %s\n", path);
  fprintf(out, "format_version  %lld\n", (long long)ckpt_reader_format_version(r));
  fprintf(out, "producer        %s\n", ckpt_reader_producer(r));
  fprintf(out, "step            %lld\n", (long long)ckpt_reader_step(r));
  int64_t numel = 0;
  for (int i = 0; i < ckpt_reader_num_tensors(r); i++)
    if (ckpt_reader_tensor(r, i)->group == CKPT_MODEL) numel += ckpt_reader_tensor(r, i)->numel;
  fprintf(out, "\nmodel: %d tensors, %lld parameters\n", ckpt_reader_count(r, CKPT_MODEL), (long long)numel);
  rc = print_group(r, CKPT_MODEL, out, err);
  int nm = ckpt_reader_count(r, CKPT_OPTIM_M), nv = ckpt_reader_count(r, CKPT_OPTIM_V);
  if (rc == GRPO_OK) {
    if (nm + nv == 0) {
      fprintf(out, "\noptimizer state: absent\n");
    } else {
      fprintf(out, "\noptimizer state: present (m: %d tensors, v: %d tensors)\n", nm, nv);
      fprintf(out, " m:\n");
      rc = print_group(r, CKPT_OPTIM_M, out, err);
      if (rc == GRPO_OK) fprintf(out, " v:\n");
      if (rc == GRPO_OK) rc = print_group(r, CKPT_OPTIM_V, out, err);
    }
  }
  if (rc == GRPO_OK) {
    fprintf(out, "\nrun state:\n");
    size_t nrng;
    const uint64_t *rng = ckpt_reader_rng(r, &nrng);
    if (nrng) {
      fprintf(out, "  %-24s %zu words:", "rng", nrng);
      for (size_t i = 0; i < nrng && i < 4; i++) fprintf(out, " 0x%016llx", (unsigned long long)rng[i]);
      fprintf(out, "%s\n", nrng > 4 ? " ..." : "");
    }
    for (int i = 0; i < ckpt_reader_num_scalars(r); i++) {
      const ckpt_scalar *s = ckpt_reader_scalar(r, i);
      if (s->kind == CKPT_SCALAR_I64)
        fprintf(out, "  %-24s %lld\n", s->name, (long long)s->i64);
      else if (s->kind == CKPT_SCALAR_F64)
        fprintf(out, "  %-24s %.17g\n", s->name, s->f64);
      else
        fprintf(out, "  %-24s \"%s\"\n", s->name, s->str);
    }
    fprintf(out, "\nmetadata:\n");
    for (int i = 0; i < ckpt_reader_num_meta(r); i++) {
      const char *k = ckpt_reader_meta_key(r, i), *v = ckpt_reader_meta(r, k);
      if (strcmp(k, "config_yaml") == 0) continue;
      size_t len = strlen(v);
      if (len <= 64 && !strchr(v, '\n'))
        fprintf(out, "  %-24s %s\n", k, v);
      else
        fprintf(out, "  %-24s (%zu bytes)\n", k, len);
    }
    const char *yaml = ckpt_reader_meta(r, "config_yaml");
    if (yaml) {
      size_t len = strlen(yaml);
      fprintf(out, "\nconfig:\n%s%s", yaml, len && yaml[len - 1] != '\n' ? "\n" : "");
    } else {
      fprintf(out, "\nconfig: (none stored)\n");
    }
  }
  ckpt_reader_close(r);
  return rc;
}
