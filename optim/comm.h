/* The data-parallel communicator: NCCL on device memory when every rank can
 * use it, MPI otherwise.
 *
 *   optim_comm *c;
 *   optim_comm_create(&c, comm, be, "gradient all-reduce", err); // collective, once per run
 *   optim_comm_allreduce_sum(c, grad, n, 0, stage, err);          // in place, backend memory
 *   optim_comm_bcast(c, weights, n, 0, stage, err);               // in place, backend memory
 *   optim_comm_destroy(c);
 *
 * The transport is decided once, alike on every rank of comm. NCCL is used
 * when all of these hold on every rank:
 *  - the build has NCCL (GRPO_HAVE_NCCL: the CUDA build found nccl.h / libnccl);
 *  - be is a real CUDA backend (grpo_backend_cuda_stream(be) != NULL);
 *  - the environment variable GRPO_NCCL is not 0 / off / false / no;
 *  - rank 0's ncclGetUniqueId and every rank's ncclCommInitRank succeeded
 *    (the id travels over MPI_Bcast on comm; the NCCL communicator lives on
 *    the device of the backend's stream).
 * Otherwise the object is the MPI communicator and the calls below are the
 * MPI paths of optim.h (host buffers, or device buffers staged through host
 * memory one bucket at a time). A NCCL failure at creation is never fatal:
 * every rank logs a warning naming the reason and all of them use MPI.
 * (NCCL's own bootstrap is blocking: a rank that fails inside
 * ncclCommInitRank after it has started talking to its peers can leave them
 * waiting until NCCL's bootstrap timeout. Failures before that point, the
 * usual ones, are agreed over MPI first.)
 *
 * With NCCL the collectives run on the backend's stream, in order with its
 * other ops, and return when they are complete (be->sync), so the contract
 * is the MPI one: on return buf holds the result on every rank. Errors name
 * the NCCL call, ncclGetErrorString and ncclGetLastError.
 *
 * comm must outlive the object (it is not duplicated). Destroy the object
 * before the backend. */
#ifndef GRPO_OPTIM_COMM_H
#define GRPO_OPTIM_COMM_H

#include <mpi.h>
#include <stddef.h>

#include "core/backend.h"
#include "core/error.h"

typedef struct optim_comm optim_comm;

/* Collective over comm: every rank calls it with its own backend (be NULL:
 * host memory). what names the use in log lines ("gradient all-reduce").
 * Fails only for lack of memory or a broken MPI; NCCL problems fall back. */
int optim_comm_create(optim_comm **out, MPI_Comm comm, grpo_backend *be, const char *what,
                      grpo_error *err);
/* Frees the NCCL communicator (ncclCommDestroy; ncclCommAbort after a failed
 * NCCL call). NULL is a no-op. Not collective for MPI. */
void optim_comm_destroy(optim_comm *c);

/* 1 when the collectives go through NCCL on device memory. */
int optim_comm_is_nccl(const optim_comm *c);
/* "nccl" or "mpi". */
const char *optim_comm_transport(const optim_comm *c);
/* Why MPI was chosen ("" with NCCL): e.g. "GRPO_NCCL=0", "not every rank has
 * a CUDA backend", "ncclCommInitRank on rank 1: unhandled cuda error ...". */
const char *optim_comm_reason(const optim_comm *c);
MPI_Comm optim_comm_mpi(const optim_comm *c);
int optim_comm_rank(const optim_comm *c);
int optim_comm_size(const optim_comm *c);

/* In-place sum of n floats of backend memory over the ranks.
 * NCCL: ncclAllReduce(ncclFloat32, ncclSum) on the device, one call per
 * bucket of bucket_floats (0 = the whole buffer in one call); stage unused.
 * MPI: optim_allreduce_sum_be(be, buf, n, comm, bucket_floats, stage) (0 =
 * 4M-float buckets; stage: NULL or host memory for min(n, bucket) floats). */
int optim_comm_allreduce_sum(optim_comm *c, float *buf, size_t n, size_t bucket_floats, float *stage,
                             grpo_error *err);

/* In-place broadcast of n floats of backend memory from root to every rank.
 * NCCL: ncclBroadcast on the device (one call). MPI: MPI_Bcast in buckets;
 * on a device each bucket is staged through host memory (the root copies it
 * down, the others copy it up; stage as above, 4M-float buckets). */
int optim_comm_bcast(optim_comm *c, float *buf, size_t n, int root, float *stage, grpo_error *err);

#endif
