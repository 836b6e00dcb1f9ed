#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_schedule_parse(const char *name) {
  if (!name) return -1;
  if (strcmp(name, "constant") == 0) return OPTIM_SCHEDULE_CONSTANT;
  if (strcmp(name, "linear") == 0) return OPTIM_SCHEDULE_LINEAR;
  if (strcmp(name, "cosine") == 0) return OPTIM_SCHEDULE_COSINE;
  return -1;
}

double optim_lr_at(const optim_schedule *s, long t) {
  if (t < 1) t = 1;
  if (s->warmup_steps > 0 && t <= s->warmup_steps)
    return s->lr * (double)t / (double)s->warmup_steps;
  if (s->kind == OPTIM_SCHEDULE_CONSTANT) return s->lr;
  long span = s->total_steps - s->warmup_steps;
  double floor = s->min_lr_ratio * s->lr;
  if (span <= 0) return s->lr;
  double progress = (double)(t - s->warmup_steps) / (double)span;
  if (progress > 1.0) progress = 1.0;
  if (s->kind == OPTIM_SCHEDULE_LINEAR) return floor + (s->lr - floor) * (1.0 - progress);
  return floor + (s->lr - floor) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
}

int optim_adamw_init(optim_adamw *o, grpo_backend *be, size_t n, const optim_group *groups,
                     int n_groups, float beta1, float beta2, float eps, float weight_decay,
                     grpo_error *err) {
  memset(o, 0, sizeof *o);
  if (!(beta1 >= 0.0f && beta1 < 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "optim.beta1 must be in [0, 1), got %g", beta1);
  if (!(beta2 >= 0.0f && beta2 < 1.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "optim.beta2 must be in [0, 1), got %g", beta2);
  if (!(eps > 0.0f)) return GRPO_FAIL(err, GRPO_EINVAL, "optim.eps must be > 0, got %g", eps);
  if (!(weight_decay >= 0.0f))
    return GRPO_FAIL(err, GRPO_EINVAL, "optim.weight_decay must be >= 0, got %g", weight_decay);
  for (int i = 0; i < n_groups; i++)
    if (groups[i].offset > n || groups[i].count > n - groups[i].offset)
      return GRPO_FAIL(err, GRPO_EINVAL, "optimizer group %d [%zu, +%zu) outside %zu floats", i,
                       groups[i].offset, groups[i].count, n);
  o->groups = malloc(sizeof *o->groups * (size_t)(n_groups ? n_groups : 1));
  if (!o->groups) return GRPO_FAIL(err, GRPO_ENOMEM, "optimizer: out of memory");
  memcpy(o->groups, groups, sizeof *groups * (size_t)n_groups);
  o->n_groups = n_groups;
  o->be = be;
  o->n = n;
  o->beta1 = beta1;
  o->beta2 = beta2;
  o->eps = eps;
  o->weight_decay = weight_decay;
  int rc = be->alloc(be, n * sizeof(float), (void **)&o->m, err);
  if (!rc) rc = be->alloc(be, n * sizeof(float), (void **)&o->v, err);
  if (rc) {
    optim_adamw_free(o);
    return rc;
  }
  be->memset(be, o->m, 0, n * sizeof(float));
  be->memset(be, o->v, 0, n * sizeof(float));
  return GRPO_OK;
}

void optim_adamw_free(optim_adamw *o) {
  if (o->be) {
    o->be->free(o->be, o->m);
    o->be->free(o->be, o->v);
  }
  free(o->host_m);
  free(o->host_v);
  free(o->groups);
  memset(o, 0, sizeof *o);
}

void optim_adamw_step(optim_adamw *o, float *params, const float *grads, double lr,
                      float grad_scale) {
  o->step++;
  for (int i = 0; i < o->n_groups; i++) {
    const optim_group *g = &o->groups[i];
    grpo_adamw_hparams hp = {.lr = (float)lr,
                             .beta1 = o->beta1,
                             .beta2 = o->beta2,
                             .eps = o->eps,
                             .weight_decay = g->decay ? o->weight_decay : 0.0f,
                             .grad_scale = grad_scale};
    grpo_adamw_prepare(&hp, o->step);
    o->be->adamw(o->be, params + g->offset, grads + g->offset, o->m + g->offset,
                 o->v + g->offset, g->count, &hp);
  }
}

static int host_memory(const grpo_backend *be) { return !be || be->kind == GRPO_DEVICE_CPU; }

int optim_adamw_moments_host(optim_adamw *o, float **m, float **v, grpo_error *err) {
  if (host_memory(o->be)) {
    *m = o->m;
    *v = o->v;
    return GRPO_OK;
  }
  *m = *v = NULL;
  size_t bytes = o->n * sizeof(float);
  if (!o->host_m) o->host_m = malloc(bytes ? bytes : 1);
  if (!o->host_v) o->host_v = malloc(bytes ? bytes : 1);
  if (!o->host_m || !o->host_v)
    return GRPO_FAIL(err, GRPO_ENOMEM, "optimizer: no host memory for the moments (%zu floats)", o->n);
  int rc = o->be->copy_d2h(o->be, o->host_m, o->m, bytes, err);
  if (!rc) rc = o->be->copy_d2h(o->be, o->host_v, o->v, bytes, err);
  if (rc) return rc;
  *m = o->host_m;
  *v = o->host_v;
  return GRPO_OK;
}

int optim_adamw_moments_to_device(optim_adamw *o, grpo_error *err) {
  if (host_memory(o->be) || !o->host_m || !o->host_v) return GRPO_OK;
  size_t bytes = o->n * sizeof(float);
  int rc = o->be->copy_h2d(o->be, o->m, o->host_m, bytes, err);
  if (!rc) rc = o->be->copy_h2d(o->be, o->v, o->host_v, bytes, err);
  return rc;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

int optim_groups_from_names(const size_t *offsets, const size_t *counts, const char *const *names,
                            int n, optim_group *out) {
  for (int i = 0; i < n; i++) {
    out[i].offset = offsets[i];
    out[i].count = counts[i];
    out[i].decay = !(ends_with(names[i], "bias") || strstr(names[i], "norm") != NULL);
  }
  return n;
}

int optim_allreduce_sum(float *buf, size_t n, MPI_Comm comm, size_t bucket_floats,
                        grpo_error *err) {
  if (bucket_floats == 0) bucket_floats = (size_t)4 << 20;
  if (bucket_floats > (size_t)1 << 30) bucket_floats = (size_t)1 << 30; /* MPI counts are int */
  for (size_t off = 0; off < n; off += bucket_floats) {
    size_t len = n - off < bucket_floats ? n - off : bucket_floats;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)len, MPI_FLOAT, MPI_SUM, comm);
    if (rc != MPI_SUCCESS) {
      char msg[MPI_MAX_ERROR_STRING];
      int len_msg = 0;
      MPI_Error_string(rc, msg, &len_msg);
      return GRPO_FAIL(err, GRPO_EMPI, "gradient all-reduce failed at float %zu: %s", off, msg);
    }
  }
  return GRPO_OK;
}

int optim_allreduce_sum_be(grpo_backend *be, float *buf, size_t n, MPI_Comm comm,
                           size_t bucket_floats, float *stage, grpo_error *err) {
  if (host_memory(be)) return optim_allreduce_sum(buf, n, comm, bucket_floats, err);
  int world = 1;
  MPI_Comm_size(comm, &world);
  if (world == 1 || n == 0) return GRPO_OK;
  if (bucket_floats == 0) bucket_floats = (size_t)4 << 20;
  if (bucket_floats > (size_t)1 << 30) bucket_floats = (size_t)1 << 30;
  size_t chunk = n < bucket_floats ? n : bucket_floats;
  float *own = NULL;
  if (!stage) {
    own = stage = malloc(chunk * sizeof(float));
    if (!own)
      return GRPO_FAIL(err, GRPO_ENOMEM, "gradient all-reduce: no host staging buffer (%zu floats)",
                       chunk);
  }
  int rc = GRPO_OK;
  for (size_t off = 0; !rc && off < n; off += chunk) {
    size_t len = n - off < chunk ? n - off : chunk;
    rc = be->copy_d2h(be, stage, buf + off, len * sizeof(float), err);
    if (!rc) rc = optim_allreduce_sum(stage, len, comm, len, err);
    if (!rc) rc = be->copy_h2d(be, buf + off, stage, len * sizeof(float), err);
    if (rc) grpo_error_prefix(err, "gradient all-reduce on %s, floats [%zu, %zu)", be->name, off,
                              off + len);
  }
  free(own);
  return rc;
}

double optim_grad_norm(grpo_backend *be, const float *grads, size_t n) {
  return sqrt(be->sumsq(be, grads, n));
}

float optim_clip_factor(double norm, double max_norm) {
  if (!(max_norm > 0)) return 1.0f;
  double f = max_norm / (norm + 1e-6);
  return f < 1.0 ? (float)f : 1.0f;
}
