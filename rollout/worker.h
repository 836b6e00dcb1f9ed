/* MPI rollout workers (distributed.mode: disaggregated).
 *
 * Ranks [0, T) train; ranks [T, N) generate. Trainer rank 0 is the only one
 * that talks to the workers:
 *
 *   trainer 0                               worker w
 *   rollout_broadcast_weights(v) ------>    (receives weights version v, whole)
 *   rollout_dispatch(work) -- chunks --->   generate + score each chunk
 *                           <-- results --  (pulls the next chunk when done)
 *   rollout_shutdown_workers() -------->    rollout_worker_loop returns
 *
 * Weights travel by MPI_Bcast over a communicator of trainer rank 0 and the
 * workers (or by the cluster's own transport, rollout_cluster.bcast: NCCL
 * between devices), announced by a control message naming the version; a
 * work item names the version it needs and a worker refuses (error) to
 * sample with another, so no sample ever comes from a half-received or stale
 * model.
 *
 * Balance: groups are sorted by expected cost (prompt + G x max_new tokens)
 * and handed out in chunks of about a quarter of a fair share; a worker asks
 * for the next chunk when it sends its results, so a slow worker holds at
 * most one chunk.
 *
 * Faults: a worker that fails sends its message to rank 0, which returns it
 * as an error naming the rank (the caller then ends the job with MPI_Abort:
 * no rank is left waiting). Completions are keyed by (prompt, sample) and
 * drawn with keyed RNG, so the results equal a single-process run. */
#ifndef GRPO_ROLLOUT_WORKER_H
#define GRPO_ROLLOUT_WORKER_H

#include <mpi.h>
#include <stddef.h>

#include "rollout/engine.h"

/* Scores one completion (for parallel work: the joined response of a
 * trajectory, tags kept) into rewards[n_rewards] (NaN = unscorable). */
typedef int (*rollout_score_fn)(void *ctx, const char *gold, const int32_t *ids, int n,
                                int truncated, float *rewards, grpo_error *err);

typedef struct rollout_work {
  uint32_t weight_version;
  uint32_t step;
  uint64_t seed;
  rollout_sampling sampling;
  int max_new_tokens;
  int n_groups;
  const rollout_group *groups;
  const char *const *golds;      /* one per group (may be NULL: "") */
  int parallel;                  /* ThreadWeaver trajectories (rollout_engine_generate_parallel) */
} rollout_work;

/* Where rank 0 collects results: arrays in group order (sum of n_samples
 * entries). outs[i] has caller buffers of max_new_tokens entries (forced
 * may be NULL: the budget-forcing mask is then dropped). */
typedef struct rollout_results {
  rollout_output *outs;
  float *rewards;                /* [total, n_rewards] */
  int n_rewards;
  double worker_seconds;         /* summed generation time over workers */
  long worker_tokens;
  rollout_tw *trajs;             /* parallel work: the trajectories (rollout_tw_free
                                    each); outs[i].n / finish / truncated still
                                    describe the response, outs[i] buffers unused */
} rollout_results;

/* The world layout: comm, trainer count T; workers are ranks T..size-1.
 * Creates the weight communicator (collective over comm: every rank calls). */
typedef struct rollout_cluster {
  MPI_Comm comm;
  MPI_Comm weights_comm;         /* rank 0 + workers; MPI_COMM_NULL on other trainers */
  int rank, size, n_trainers;
  /* Optional weight transport; NULL (what init leaves): MPI_Bcast of the
   * host buffers over weights_comm. Set it alike on trainer rank 0 and on
   * every worker after init. It moves the n weights from rank 0 of
   * weights_comm to the others wherever they live (the trainer uses NCCL
   * between the devices when every rank of weights_comm can: optim/comm.h);
   * `host` is the buffer rollout_broadcast_weights / the worker options
   * name, which it may leave stale. On a worker it replaces both the
   * MPI_Bcast and weights_received: it must leave the weights where the
   * engine samples from. */
  int (*bcast)(void *ctx, float *host, size_t n, grpo_error *err);
  void *bcast_ctx;
} rollout_cluster;

int rollout_cluster_init(rollout_cluster *c, MPI_Comm comm, int n_trainers, grpo_error *err);
void rollout_cluster_free(rollout_cluster *c);

/* ---- trainer rank 0 ---------------------------------------------------------- */
int rollout_broadcast_weights(const rollout_cluster *c, uint32_t version, float *weights, size_t n,
                              grpo_error *err);
int rollout_dispatch(const rollout_cluster *c, const rollout_work *w, rollout_results *res,
                     grpo_error *err);
int rollout_shutdown_workers(const rollout_cluster *c, grpo_error *err);

/* The same in two halves, for one-step off-policy training: begin sends the
 * work and returns at once (all_now: every worker gets its whole share now,
 * cost-balanced, so the workers generate while rank 0 trains; otherwise the
 * first chunks, as rollout_dispatch), finish collects the results (and
 * hands out any remaining chunks) and frees the handle. w, its groups and
 * golds must stay valid until finish; rank 0 must not broadcast weights in
 * between (the workers are busy). */
typedef struct rollout_dispatch_handle rollout_dispatch_handle;
int rollout_dispatch_begin(const rollout_cluster *c, const rollout_work *w, int all_now,
                           rollout_dispatch_handle **h, grpo_error *err);
int rollout_dispatch_finish(const rollout_cluster *c, rollout_dispatch_handle *h, rollout_results *res,
                            grpo_error *err);

/* ---- workers ------------------------------------------------------------------ */
typedef struct rollout_worker_options {
  rollout_engine *engine;
  float *weights;                /* the buffer the policy samples with */
  size_t n_weights;
  const int32_t *stop_ids;
  int n_stop_ids;
  const char *const *stop_strings;
  int n_stop_strings;
  rollout_piece_fn piece;
  void *piece_ctx;
  int vocab_limit;
  rollout_score_fn score;
  void *score_ctx;
  int n_rewards;
  rollout_budget_forcing budget; /* budget forcing; all zero = off. Results carry
                                    each completion's forced mask either way. */
  const rollout_tw_options *tw;  /* fork/join limits for parallel work; NULL: refused */
  /* Called after each weight broadcast landed in `weights` (host memory),
   * e.g. to copy them to the GPU the engine samples on; may be NULL. Not
   * called when the cluster has its own transport (rollout_cluster.bcast). */
  int (*weights_received)(void *ctx, grpo_error *err);
  void *weights_ctx;
} rollout_worker_options;

/* Serves until shutdown. On a local failure it reports to rank 0 and
 * returns the error. */
int rollout_worker_loop(const rollout_cluster *c, const rollout_worker_options *o, grpo_error *err);

#endif
