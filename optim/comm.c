/* optim_comm: NCCL when every rank can use it, MPI otherwise (optim/comm.h).
 * Without GRPO_HAVE_NCCL this compiles to the MPI-only version. */
#include "optim/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cuda/backend_cuda.h"
#include "core/log.h"
#include "optim/optim.h"

#if GRPO_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

#define DEFAULT_BUCKET ((size_t)4 << 20) /* floats */
#define MAX_BUCKET ((size_t)1 << 30)     /* MPI counts are int */
#define REASON_MAX 384

struct optim_comm {
  MPI_Comm mpi;
  grpo_backend *be;
  int rank, size;
  int nccl;          /* 1: the collectives below go through NCCL */
  int failed;        /* a NCCL call failed: destroy aborts */
  char reason[REASON_MAX];
#if GRPO_HAVE_NCCL
  ncclComm_t nc;
  cudaStream_t stream;
  int device;
#endif
};

/* Why NCCL is not used, in the order that wins the agreement (MPI_MAXLOC:
 * the largest code, then the lowest rank with it, names the reason). */
enum {
  WHY_OK = 0,
  WHY_ENV = 1,      /* GRPO_NCCL=0 */
  WHY_BUILD = 2,    /* built without NCCL */
  WHY_BACKEND = 3,  /* not a real CUDA backend */
  WHY_DEVICE = 4,   /* the backend's device could not be selected */
  WHY_SHARED = 5,   /* two ranks on one GPU (NCCL refuses that) */
  WHY_ID = 6,       /* ncclGetUniqueId failed on rank 0 */
  WHY_INIT = 7,     /* ncclCommInitRank failed */
};

static int mpi_fail(grpo_error *err, int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return GRPO_FAIL(err, GRPO_EMPI, "%s: %s", what, msg);
}

static int env_disabled(void) {
  const char *v = getenv("GRPO_NCCL");
  if (!v) return 0;
  return strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 ||
         strcasecmp(v, "no") == 0;
}

static int host_memory(const grpo_backend *be) { return !be || be->kind == GRPO_DEVICE_CPU; }

/* Agrees on (code, reason) over comm: every rank ends with the largest code
 * and the reason text of the lowest rank that reported it. */
static int agree(optim_comm *c, int *code, char *reason, grpo_error *err) {
  int in[2] = {*code, c->rank}, out[2] = {0, 0};
  int rc = MPI_Allreduce(in, out, 1, MPI_2INT, MPI_MAXLOC, c->mpi);
  if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "optim_comm: agreeing on the transport");
  *code = out[0];
  if (*code != WHY_OK) {
    rc = MPI_Bcast(reason, REASON_MAX, MPI_CHAR, out[1], c->mpi);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "optim_comm: sharing the fallback reason");
    reason[REASON_MAX - 1] = '\0';
  }
  return GRPO_OK;
}

#if GRPO_HAVE_NCCL
static int nccl_fail(optim_comm *c, grpo_error *err, const char *call, ncclResult_t r) {
  const char *last = ncclGetLastError(c ? c->nc : NULL);
  if (c) c->failed = 1;
  return GRPO_FAIL(err, GRPO_EMPI, "%s failed: %s%s%s%s", call, ncclGetErrorString(r),
                   last && *last ? " (" : "", last && *last ? last : "", last && *last ? ")" : "");
}

/* Waits for the queued collective (be->sync also reports the backend's
 * deferred errors) and checks the communicator for asynchronous errors. */
static int nccl_finish(optim_comm *c, const char *call, grpo_error *err) {
  int rc = c->be->sync(c->be, err);
  if (rc) {
    c->failed = 1;
    grpo_error_prefix(err, "waiting for %s", call);
    return rc;
  }
  ncclResult_t async = ncclSuccess;
  ncclResult_t r = ncclCommGetAsyncError(c->nc, &async);
  if (r != ncclSuccess) return nccl_fail(c, err, "ncclCommGetAsyncError", r);
  if (async != ncclSuccess) {
    char what[96];
    snprintf(what, sizeof what, "%s (asynchronous error)", call);
    return nccl_fail(c, err, what, async);
  }
  return GRPO_OK;
}

/* Local preconditions: the backend's device is current. */
static int nccl_local_check(optim_comm *c, char *reason) {
  c->stream = (cudaStream_t)grpo_backend_cuda_stream(c->be);
  if (!c->stream) {
    snprintf(reason, REASON_MAX, "not every rank has a CUDA backend (rank %d: %s)", c->rank,
             c->be ? c->be->name : "host memory");
    return WHY_BACKEND;
  }
  int dev = -1;
  cudaError_t ce;
#if CUDART_VERSION >= 12080
  ce = cudaStreamGetDevice(c->stream, &dev);
#else
  ce = cudaGetDevice(&dev);
#endif
  if (ce == cudaSuccess) ce = cudaSetDevice(dev);
  c->device = dev;
  if (ce != cudaSuccess) {
    snprintf(reason, REASON_MAX, "rank %d: selecting the backend's CUDA device: %s", c->rank,
             cudaGetErrorString(ce));
    (void)cudaGetLastError();
    return WHY_DEVICE;
  }
  return WHY_OK;
}

/* NCCL refuses two ranks on one GPU ("Duplicate GPU detected"): find that
 * first from every rank's host name and PCI bus id, the same answer on every
 * rank. */
static int shared_gpu(optim_comm *c, int *found, char *reason, grpo_error *err) {
  typedef struct {
    char host[MPI_MAX_PROCESSOR_NAME];
    char bus[64];
  } where;
  where me;
  memset(&me, 0, sizeof me);
  int len = 0;
  MPI_Get_processor_name(me.host, &len);
  if (cudaDeviceGetPCIBusId(me.bus, (int)sizeof me.bus, c->device) != cudaSuccess) {
    (void)cudaGetLastError();
    snprintf(me.bus, sizeof me.bus, "device %d", c->device);
  }
  where *all = malloc(sizeof *all * (size_t)c->size);
  if (!all) return GRPO_FAIL(err, GRPO_ENOMEM, "optim_comm: out of memory");
  int rc = MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, c->mpi);
  if (rc != MPI_SUCCESS) {
    free(all);
    return mpi_fail(err, rc, "optim_comm: gathering the ranks' GPUs");
  }
  *found = 0;
  for (int i = 0; !*found && i < c->size; i++)
    for (int j = i + 1; !*found && j < c->size; j++)
      if (strcmp(all[i].host, all[j].host) == 0 && strcmp(all[i].bus, all[j].bus) == 0) {
        snprintf(reason, REASON_MAX, "ranks %d and %d share the GPU %s on %s (NCCL needs one GPU per rank)", i,
                 j, all[i].bus, all[i].host);
        *found = 1;
      }
  free(all);
  return GRPO_OK;
}

/* The NCCL communicator over c->mpi, or a code and reason to fall back. */
static int nccl_setup(optim_comm *c, int *code, char *reason, grpo_error *err) {
  int shared = 0;
  int rc = shared_gpu(c, &shared, reason, err);
  if (rc) return rc;
  if (shared) {
    *code = WHY_SHARED;
    return GRPO_OK;
  }
  /* rank 0 makes the id; it travels over MPI with rank 0's status */
  struct {
    int ok;
    char msg[REASON_MAX];
    ncclUniqueId id;
  } hello;
  memset(&hello, 0, sizeof hello);
  if (c->rank == 0) {
    ncclResult_t r = ncclGetUniqueId(&hello.id);
    hello.ok = r == ncclSuccess;
    if (!hello.ok)
      snprintf(hello.msg, sizeof hello.msg, "rank 0: ncclGetUniqueId failed: %s (%s)",
               ncclGetErrorString(r), ncclGetLastError(NULL));
  }
  rc = MPI_Bcast(&hello, (int)sizeof hello, MPI_BYTE, 0, c->mpi);
  if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "optim_comm: broadcasting the NCCL id");
  if (!hello.ok) {
    *code = WHY_ID;
    snprintf(reason, REASON_MAX, "%s", hello.msg);
    return GRPO_OK;
  }
  ncclComm_t nc = NULL;
  ncclResult_t r = ncclCommInitRank(&nc, c->size, hello.id, c->rank);
  int local = WHY_OK;
  if (r != ncclSuccess) {
    local = WHY_INIT;
    snprintf(reason, REASON_MAX, "rank %d: ncclCommInitRank failed: %s (%s)", c->rank,
             ncclGetErrorString(r), ncclGetLastError(NULL));
    nc = NULL;
  }
  rc = agree(c, &local, reason, err);
  if (rc || local != WHY_OK) {
    /* a peer failed: this rank's communicator cannot be used; abort does not
     * wait for the peers */
    if (nc) ncclCommAbort(nc);
    *code = rc ? WHY_INIT : local;
    return rc;
  }
  c->nc = nc;
  c->nccl = 1;
  *code = WHY_OK;
  return GRPO_OK;
}
#endif

int optim_comm_create(optim_comm **out, MPI_Comm comm, grpo_backend *be, const char *what,
                      grpo_error *err) {
  *out = NULL;
  if (!what) what = "collectives";
  optim_comm *c = calloc(1, sizeof *c);
  if (!c) return GRPO_FAIL(err, GRPO_ENOMEM, "optim_comm: out of memory");
  c->mpi = comm;
  c->be = be;
  int rc = MPI_Comm_rank(comm, &c->rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(comm, &c->size);
  if (rc != MPI_SUCCESS) {
    free(c);
    return mpi_fail(err, rc, "optim_comm: reading the communicator");
  }
  char reason[REASON_MAX] = "";
  int code = WHY_OK;
  if (env_disabled()) {
    code = WHY_ENV;
    snprintf(reason, sizeof reason, "GRPO_NCCL=0 (rank %d)", c->rank);
  } else {
#if GRPO_HAVE_NCCL
    code = nccl_local_check(c, reason);
#else
    code = host_memory(be) ? WHY_BACKEND : WHY_BUILD;
    if (code == WHY_BACKEND)
      snprintf(reason, sizeof reason, "not every rank has a CUDA backend (rank %d: %s)", c->rank,
               be ? be->name : "host memory");
    else
      snprintf(reason, sizeof reason, "built without NCCL");
#endif
  }
  rc = agree(c, &code, reason, err);
#if GRPO_HAVE_NCCL
  if (!rc && code == WHY_OK) rc = nccl_setup(c, &code, reason, err);
#endif
  if (rc) {
    free(c);
    return rc;
  }
  if (c->nccl) {
#if GRPO_HAVE_NCCL
    if (c->rank == 0) {
      int v = 0;
      ncclGetVersion(&v);
      GRPO_INFO("%s: NCCL %d.%d.%d on device memory over %d rank%s", what, v / 10000, v / 100 % 100,
                v % 100, c->size, c->size == 1 ? "" : "s");
    }
#endif
  } else {
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    if (code >= WHY_DEVICE) {
      if (c->rank == 0) GRPO_WARN("%s: NCCL unavailable, using MPI instead: %s", what, c->reason);
    } else if (code == WHY_ENV) {
      if (c->rank == 0) GRPO_INFO("%s: MPI (%s)", what, c->reason);
    } else {
      GRPO_DEBUG("%s: MPI (%s)", what, c->reason);
    }
  }
  *out = c;
  return GRPO_OK;
}

void optim_comm_destroy(optim_comm *c) {
  if (!c) return;
#if GRPO_HAVE_NCCL
  if (c->nc) {
    if (c->failed)
      ncclCommAbort(c->nc);
    else
      ncclCommDestroy(c->nc);
  }
#endif
  free(c);
}

int optim_comm_is_nccl(const optim_comm *c) { return c && c->nccl; }
const char *optim_comm_transport(const optim_comm *c) { return c && c->nccl ? "nccl" : "mpi"; }
const char *optim_comm_reason(const optim_comm *c) { return c ? c->reason : ""; }
MPI_Comm optim_comm_mpi(const optim_comm *c) { return c->mpi; }
int optim_comm_rank(const optim_comm *c) { return c->rank; }
int optim_comm_size(const optim_comm *c) { return c->size; }

int optim_comm_allreduce_sum(optim_comm *c, float *buf, size_t n, size_t bucket_floats, float *stage,
                             grpo_error *err) {
#if GRPO_HAVE_NCCL
  if (c->nccl) {
    if (n == 0) return GRPO_OK;
    size_t chunk = bucket_floats ? bucket_floats : n;
    for (size_t off = 0; off < n; off += chunk) {
      size_t len = n - off < chunk ? n - off : chunk;
      ncclResult_t r = ncclAllReduce(buf + off, buf + off, len, ncclFloat32, ncclSum, c->nc, c->stream);
      if (r != ncclSuccess) {
        nccl_fail(c, err, "ncclAllReduce", r);
        return grpo_error_prefix(err, "gradient all-reduce, floats [%zu, %zu)", off, off + len);
      }
    }
    return nccl_finish(c, "ncclAllReduce", err);
  }
#endif
  return optim_allreduce_sum_be(c->be, buf, n, c->mpi, bucket_floats, stage, err);
}

static int mpi_bcast_host(float *buf, size_t n, int root, MPI_Comm comm, size_t chunk,
                          grpo_error *err) {
  for (size_t off = 0; off < n; off += chunk) {
    size_t len = n - off < chunk ? n - off : chunk;
    int rc = MPI_Bcast(buf + off, (int)len, MPI_FLOAT, root, comm);
    if (rc != MPI_SUCCESS) {
      mpi_fail(err, rc, "MPI_Bcast");
      return grpo_error_prefix(err, "broadcast, floats [%zu, %zu)", off, off + len);
    }
  }
  return GRPO_OK;
}

int optim_comm_bcast(optim_comm *c, float *buf, size_t n, int root, float *stage, grpo_error *err) {
  if (root < 0 || root >= c->size)
    return GRPO_FAIL(err, GRPO_EINVAL, "broadcast: root %d outside the %d ranks", root, c->size);
  if (n == 0) return GRPO_OK;
#if GRPO_HAVE_NCCL
  if (c->nccl) {
    ncclResult_t r = ncclBroadcast(buf, buf, n, ncclFloat32, root, c->nc, c->stream);
    if (r != ncclSuccess) return nccl_fail(c, err, "ncclBroadcast", r);
    return nccl_finish(c, "ncclBroadcast", err);
  }
#endif
  size_t chunk = n < DEFAULT_BUCKET ? n : DEFAULT_BUCKET;
  if (host_memory(c->be)) return mpi_bcast_host(buf, n, root, c->mpi, MAX_BUCKET, err);
  if (c->size == 1) return GRPO_OK;
  float *own = NULL;
  if (!stage) {
    own = stage = malloc(chunk * sizeof(float));
    if (!own)
      return GRPO_FAIL(err, GRPO_ENOMEM, "broadcast: no host staging buffer (%zu floats)", chunk);
  }
  grpo_backend *be = c->be;
  int rc = GRPO_OK;
  for (size_t off = 0; !rc && off < n; off += chunk) {
    size_t len = n - off < chunk ? n - off : chunk;
    if (c->rank == root) rc = be->copy_d2h(be, stage, buf + off, len * sizeof(float), err);
    if (!rc) rc = mpi_bcast_host(stage, len, root, c->mpi, len, err);
    if (!rc && c->rank != root) rc = be->copy_h2d(be, buf + off, stage, len * sizeof(float), err);
    if (rc) grpo_error_prefix(err, "broadcast on %s, floats [%zu, %zu)", be->name, off, off + len);
  }
  free(own);
  return rc;
}
