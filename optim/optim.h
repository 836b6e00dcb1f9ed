/* Optimizer: AdamW with fp32 state over one flat parameter buffer, learning
 * rate schedules, global-norm clipping, and the gradient all-reduce over MPI
 * (NCCL on device memory: optim/comm.h).
 *
 * A step on every rank:
 *   optim_comm_allreduce_sum(dp, grad, n, ...)    // sum over data-parallel ranks
 *                                                 // (dp: optim_comm_create once per run;
 *                                                 //  its MPI path is optim_allreduce_sum_be)
 *   norm = optim_grad_norm(be, grad, n)           // identical on every rank now
 *   optim_adamw_step(&opt, be, params, grad, optim_lr_at(&sched, step), clip)
 *
 * The parameter buffer is split into groups (offset, count, decay): weight
 * decay skips biases and norm weights, the usual exclusion. Groups come from
 * the caller (the trainer builds them from the model's parameter table), so
 * optim knows nothing about models.
 *
 * Memory: params, grads and the moments are backend memory (host memory on
 * the CPU backend, device memory on CUDA). With NCCL (optim/comm.h) the
 * device all-reduce runs in place on the devices; without it the device
 * all-reduce stages through host memory, one bucket at a time (copy_d2h,
 * MPI_Allreduce, copy_h2d). Checkpoints reach the moments through
 * optim_adamw_moments_host. */
#ifndef GRPO_OPTIM_OPTIM_H
#define GRPO_OPTIM_OPTIM_H

#include <mpi.h>
#include <stddef.h>

#include "core/backend.h"
#include "core/error.h"

/* ---- learning rate schedules ------------------------------------------------ */
typedef enum optim_schedule_kind {
  OPTIM_SCHEDULE_CONSTANT = 0, /* lr after warmup */
  OPTIM_SCHEDULE_LINEAR = 1,   /* warmup, then linear decay to min_lr_ratio * lr */
  OPTIM_SCHEDULE_COSINE = 2,   /* warmup, then cosine decay to min_lr_ratio * lr */
} optim_schedule_kind;

typedef struct optim_schedule {
  optim_schedule_kind kind;
  double lr;
  long warmup_steps;   /* linear ramp from lr/warmup to lr over these steps */
  long total_steps;    /* decay horizon (max_steps) */
  double min_lr_ratio; /* floor of the decay, fraction of lr */
} optim_schedule;

/* Parses "constant" | "linear" | "cosine"; -1 otherwise. */
int optim_schedule_parse(const char *name);
/* Learning rate for 1-based step t (the t-th update). */
double optim_lr_at(const optim_schedule *s, long t);

/* ---- AdamW ------------------------------------------------------------------- */
typedef struct optim_group {
  size_t offset, count;  /* floats in the flat buffers */
  int decay;             /* 1: apply weight decay */
} optim_group;

typedef struct optim_adamw {
  grpo_backend *be;
  size_t n;              /* floats in params, grads and moments */
  float *m, *v;          /* backend memory, f32 */
  float *host_m, *host_v;/* device backends: host copies for checkpoints (lazily
                            allocated by optim_adamw_moments_host); else NULL */
  long step;             /* updates applied so far */
  float beta1, beta2, eps, weight_decay;
  optim_group *groups;
  int n_groups;
} optim_adamw;

/* Allocates zeroed moments for n floats. groups (copied) must cover disjoint
 * ranges within [0, n); floats outside every group (padding) are never
 * touched. Hyper-parameters are validated; messages name the bad one. */
int optim_adamw_init(optim_adamw *o, grpo_backend *be, size_t n, const optim_group *groups,
                     int n_groups, float beta1, float beta2, float eps, float weight_decay,
                     grpo_error *err);
void optim_adamw_free(optim_adamw *o);
/* One update with learning rate lr; every gradient is multiplied by
 * grad_scale first (the clip factor; 1 for none). */
void optim_adamw_step(optim_adamw *o, float *params, const float *grads, double lr,
                      float grad_scale);

/* Host views of the moments for checkpoints: on a host-memory backend *m, *v
 * are o->m, o->v themselves; on a device, host copies filled now (copy_d2h).
 * After writing into them (resume), optim_adamw_moments_to_device pushes
 * them back (a no-op on a host-memory backend). */
int optim_adamw_moments_host(optim_adamw *o, float **m, float **v, grpo_error *err);
int optim_adamw_moments_to_device(optim_adamw *o, grpo_error *err);

/* Builds groups from tensor (offset, count, name) triples: decay is off for
 * names ending in "bias" and for norm weights (a name containing "norm"). */
int optim_groups_from_names(const size_t *offsets, const size_t *counts, const char *const *names,
                            int n, optim_group *out);

/* ---- gradients across ranks -------------------------------------------------- */
/* In-place sum of n floats over comm, in buckets of bucket_floats (0 =
 * default 4M floats) so large models never need a second full buffer and MPI
 * messages stay bounded. Host memory. */
int optim_allreduce_sum(float *buf, size_t n, MPI_Comm comm, size_t bucket_floats,
                        grpo_error *err);
/* The same on backend memory buf: optim_allreduce_sum itself on a host-memory
 * backend (be NULL or kind CPU); on a device, each bucket is staged through
 * host memory (copy_d2h, MPI_Allreduce, copy_h2d). stage: NULL (a bucket is
 * allocated for the call) or host memory for min(n, bucket) floats. A
 * communicator of one rank returns at once on a device. This is the MPI path
 * of optim_comm_allreduce_sum (optim/comm.h), which uses NCCL instead when
 * the run's communicator has it. */
int optim_allreduce_sum_be(grpo_backend *be, float *buf, size_t n, MPI_Comm comm,
                           size_t bucket_floats, float *stage, grpo_error *err);
/* L2 norm of the gradient (after the all-reduce it is the global norm). */
double optim_grad_norm(grpo_backend *be, const float *grads, size_t n);
/* The factor torch.nn.utils.clip_grad_norm_ applies: min(1, max_norm / (norm + 1e-6));
 * 1 when max_norm <= 0 (clipping off). */
float optim_clip_factor(double norm, double max_norm);

#endif
