#include "rollout/worker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_CTRL = 7101, TAG_WORK = 7102, TAG_RESULT = 7103, TAG_ERROR = 7104 };
enum { CTRL_WEIGHTS = 1, CTRL_WORK = 2, CTRL_SHUTDOWN = 3 };
#define BCAST_BUCKET ((size_t)1 << 26) /* floats per MPI_Bcast */

/* ---- a small growable byte buffer for messages --------------------------------- */
typedef struct wire {
  unsigned char *p;
  size_t n, cap, at;  /* at: read cursor */
  int bad;            /* a read ran past the end */
} wire;

static int wire_put(wire *w, const void *src, size_t n) {
  if (w->n + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->n + n) cap *= 2;
    unsigned char *grown = realloc(w->p, cap);
    if (!grown) return 0;
    w->p = grown;
    w->cap = cap;
  }
  memcpy(w->p + w->n, src, n);
  w->n += n;
  return 1;
}

static void wire_get(wire *w, void *dst, size_t n) {
  if (w->bad || n > w->n - w->at) {
    w->bad = 1;
    memset(dst, 0, n);
    return;
  }
  memcpy(dst, w->p + w->at, n);
  w->at += n;
}

static const void *wire_view(wire *w, size_t n) {
  if (w->bad || n > w->n - w->at) {
    w->bad = 1;
    return NULL;
  }
  const void *p = w->p + w->at;
  w->at += n;
  return p;
}

#define PUT(w, v) wire_put((w), &(v), sizeof(v))
#define GET(w, v) wire_get((w), &(v), sizeof(v))

static int mpi_fail(grpo_error *err, int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return GRPO_FAIL(err, GRPO_EMPI, "%s: %s", what, msg);
}

int rollout_cluster_init(rollout_cluster *c, MPI_Comm comm, int n_trainers, grpo_error *err) {
  memset(c, 0, sizeof *c);
  c->comm = comm;
  MPI_Comm_rank(comm, &c->rank);
  MPI_Comm_size(comm, &c->size);
  if (n_trainers < 1 || n_trainers >= c->size)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "disaggregated mode needs 1 <= trainer ranks < world size; got %d trainers of %d "
                     "ranks (distributed.rollout_ranks sets the workers)",
                     n_trainers, c->size);
  c->n_trainers = n_trainers;
  int color = (c->rank == 0 || c->rank >= n_trainers) ? 0 : MPI_UNDEFINED;
  int rc = MPI_Comm_split(comm, color, c->rank, &c->weights_comm);
  return rc == MPI_SUCCESS ? GRPO_OK : mpi_fail(err, rc, "creating the weight communicator");
}

void rollout_cluster_free(rollout_cluster *c) {
  if (c->weights_comm != MPI_COMM_NULL && c->weights_comm) MPI_Comm_free(&c->weights_comm);
}

static int bcast_weights(MPI_Comm comm, float *weights, size_t n, grpo_error *err) {
  for (size_t off = 0; off < n; off += BCAST_BUCKET) {
    size_t len = n - off < BCAST_BUCKET ? n - off : BCAST_BUCKET;
    int rc = MPI_Bcast(weights + off, (int)len, MPI_FLOAT, 0, comm);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "weight broadcast");
  }
  return GRPO_OK;
}

static int send_ctrl(const rollout_cluster *c, int dst, int kind, uint32_t version, int32_t len,
                     grpo_error *err) {
  int32_t msg[4] = {kind, (int32_t)version, len, 0};
  int rc = MPI_Send(msg, 4, MPI_INT32_T, dst, TAG_CTRL, c->comm);
  return rc == MPI_SUCCESS ? GRPO_OK : mpi_fail(err, rc, "control message");
}

int rollout_broadcast_weights(const rollout_cluster *c, uint32_t version, float *weights, size_t n,
                              grpo_error *err) {
  for (int w = c->n_trainers; w < c->size; w++) {
    int rc = send_ctrl(c, w, CTRL_WEIGHTS, version, 0, err);
    if (rc) return rc;
  }
  if (c->bcast) return c->bcast(c->bcast_ctx, weights, n, err);
  return bcast_weights(c->weights_comm, weights, n, err);
}

int rollout_shutdown_workers(const rollout_cluster *c, grpo_error *err) {
  for (int w = c->n_trainers; w < c->size; w++) {
    int rc = send_ctrl(c, w, CTRL_SHUTDOWN, 0, 0, err);
    if (rc) return rc;
  }
  return GRPO_OK;
}

/* ---- work items ----------------------------------------------------------------- */
typedef struct work_header {
  uint32_t version, step;
  uint64_t seed;
  rollout_sampling sampling;
  int32_t max_new, n_groups, parallel, pad_;
} work_header;

static int pack_work(wire *m, const rollout_work *w, const int *order, int first, int count) {
  work_header h = {w->weight_version, w->step, w->seed, w->sampling, w->max_new_tokens, count, w->parallel, 0};
  int ok = PUT(m, h);
  for (int i = first; i < first + count && ok; i++) {
    int g = order[i];
    const rollout_group *gr = &w->groups[g];
    const char *gold = w->golds && w->golds[g] ? w->golds[g] : "";
    int32_t hdr[6] = {g, (int32_t)gr->prompt_index, gr->n_samples, gr->n_prompt, (int32_t)strlen(gold),
                      (int32_t)gr->first_sample};
    ok = PUT(m, hdr) && wire_put(m, gr->prompt, sizeof(int32_t) * (size_t)gr->n_prompt) &&
         wire_put(m, gold, strlen(gold));
  }
  return ok;
}

/* Result of one completion: header, then ids, logprobs, rewards. */
typedef struct result_header {
  int32_t group, sample, n, finish, truncated, n_rewards;
} result_header;

static int send_chunk(const rollout_cluster *c, int worker, const rollout_work *w, const int *order,
                      int first, int count, wire *m, grpo_error *err) {
  m->n = 0;
  if (!pack_work(m, w, order, first, count))
    return GRPO_FAIL(err, GRPO_ENOMEM, "rollout dispatch: out of memory packing work");
  int rc = send_ctrl(c, worker, CTRL_WORK, w->weight_version, (int32_t)m->n, err);
  if (rc) return rc;
  rc = MPI_Send(m->p, (int)m->n, MPI_BYTE, worker, TAG_WORK, c->comm);
  return rc == MPI_SUCCESS ? GRPO_OK : mpi_fail(err, rc, "sending work");
}

static int unpack_results(wire *m, const rollout_work *w, const int *base, rollout_results *res,
                          int src, grpo_error *err) {
  int32_t count;
  double secs;
  int64_t toks;
  GET(m, count);
  GET(m, secs);
  GET(m, toks);
  res->worker_seconds += secs;
  res->worker_tokens += (long)toks;
  for (int i = 0; i < count && !m->bad; i++) {
    result_header h;
    GET(m, h);
    if (m->bad || h.group < 0 || h.group >= w->n_groups || h.sample < 0 ||
        h.sample >= w->groups[h.group].n_samples || h.n < 0 || (!w->parallel && h.n > w->max_new_tokens) ||
        h.n_rewards != res->n_rewards)
      return GRPO_FAIL(err, GRPO_EMPI, "rollout worker rank %d sent a malformed result", src);
    rollout_output *o = &res->outs[base[h.group] + h.sample];
    if (w->parallel) {
      int64_t bytes;
      GET(m, bytes);
      const unsigned char *tb = bytes >= 0 ? wire_view(m, (size_t)bytes) : NULL;
      rollout_tw *t = res->trajs ? &res->trajs[base[h.group] + h.sample] : NULL;
      if (!tb || !t)
        return GRPO_FAIL(err, GRPO_EMPI, "rollout worker rank %d sent a malformed trajectory", src);
      rollout_tw_free(t);
      int rc = rollout_tw_unpack(t, tb, (size_t)bytes, NULL, err);
      if (rc) {
        grpo_error_prefix(err, "rollout worker rank %d", src);
        return rc;
      }
    } else {
      wire_get(m, o->ids, sizeof(int32_t) * (size_t)h.n);
      wire_get(m, o->logprobs, sizeof(float) * (size_t)h.n);
      if (o->sampler_logprobs)
        wire_get(m, o->sampler_logprobs, sizeof(float) * (size_t)h.n);
      else
        wire_view(m, sizeof(float) * (size_t)h.n);
      if (o->forced)
        wire_get(m, o->forced, (size_t)h.n);
      else
        wire_view(m, (size_t)h.n);
    }
    wire_get(m, res->rewards + (size_t)(base[h.group] + h.sample) * res->n_rewards,
             sizeof(float) * (size_t)h.n_rewards);
    o->n = h.n;
    o->finish = (rollout_finish)h.finish;
    o->truncated = h.truncated;
    o->prompt_index = w->groups[h.group].prompt_index;
    o->sample_index = w->groups[h.group].first_sample + (uint32_t)h.sample;
  }
  if (m->bad) return GRPO_FAIL(err, GRPO_EMPI, "rollout worker rank %d sent a truncated result", src);
  return GRPO_OK;
}

typedef struct cost_index {
  long cost;
  int g;
} cost_index;

static int by_cost_desc(const void *a, const void *b) {
  const cost_index *x = a, *y = b;
  if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
  return x->g - y->g;
}

struct rollout_dispatch_handle {
  const rollout_work *w;
  int *order, *base;
  cost_index *ci;
  wire m;
  int next, in_flight, chunk;
};

static void handle_free(rollout_dispatch_handle *h) {
  if (!h) return;
  free(h->m.p);
  free(h->order);
  free(h->base);
  free(h->ci);
  free(h);
}

int rollout_dispatch_begin(const rollout_cluster *c, const rollout_work *w, int all_now,
                           rollout_dispatch_handle **out, grpo_error *err) {
  *out = NULL;
  const int n_workers = c->size - c->n_trainers;
  rollout_dispatch_handle *h = calloc(1, sizeof *h);
  if (!h) return GRPO_FAIL(err, GRPO_ENOMEM, "rollout dispatch: out of memory");
  h->w = w;
  h->order = malloc(sizeof(int) * (size_t)(w->n_groups + 1));
  h->base = malloc(sizeof(int) * (size_t)(w->n_groups + 1));
  h->ci = malloc(sizeof *h->ci * (size_t)(w->n_groups + 1));
  int rc = (h->order && h->base && h->ci) ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "rollout dispatch: out of memory");
  int total = 0;
  for (int g = 0; !rc && g < w->n_groups; g++) {
    h->base[g] = total;
    total += w->groups[g].n_samples;
    h->ci[g] = (cost_index){w->groups[g].n_prompt + (long)w->groups[g].n_samples * w->max_new_tokens, g};
  }
  if (!rc) {
    qsort(h->ci, (size_t)w->n_groups, sizeof *h->ci, by_cost_desc);
    if (all_now) {
      /* one chunk per worker now: deal the cost-sorted groups round-robin so
       * every share costs about the same, each share contiguous in order */
      int at = 0;
      for (int k = 0; k < n_workers; k++)
        for (int g = k; g < w->n_groups; g += n_workers) h->order[at++] = h->ci[g].g;
    } else {
      for (int g = 0; g < w->n_groups; g++) h->order[g] = h->ci[g].g;
    }
  }
  h->chunk = all_now ? 0 : (w->n_groups + 4 * n_workers - 1) / (4 * n_workers);
  if (h->chunk < 1) h->chunk = 1;
  for (int k = 0; !rc && k < n_workers && h->next < w->n_groups; k++) {
    int count = all_now ? w->n_groups / n_workers + (k < w->n_groups % n_workers ? 1 : 0)
                        : (w->n_groups - h->next < h->chunk ? w->n_groups - h->next : h->chunk);
    if (count == 0) continue;
    rc = send_chunk(c, c->n_trainers + k, w, h->order, h->next, count, &h->m, err);
    h->next += count;
    h->in_flight++;
  }
  if (rc) {
    handle_free(h);
    return rc;
  }
  *out = h;
  return GRPO_OK;
}

int rollout_dispatch_finish(const rollout_cluster *c, rollout_dispatch_handle *h, rollout_results *res,
                            grpo_error *err) {
  const rollout_work *w = h->w;
  int rc = GRPO_OK;
  res->worker_seconds = 0;
  res->worker_tokens = 0;
  while (!rc && h->in_flight > 0) {
    MPI_Status st;
    int mrc = MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &st);
    if (mrc != MPI_SUCCESS) {
      rc = mpi_fail(err, mrc, "waiting for rollout workers");
      break;
    }
    if (st.MPI_TAG != TAG_RESULT && st.MPI_TAG != TAG_ERROR) {
      rc = GRPO_FAIL(err, GRPO_EMPI, "unexpected message (tag %d) from rank %d during rollout",
                     st.MPI_TAG, st.MPI_SOURCE);
      break;
    }
    int bytes;
    MPI_Get_count(&st, MPI_BYTE, &bytes);
    wire in = {malloc((size_t)bytes + 1), (size_t)bytes, (size_t)bytes + 1, 0, 0};
    if (!in.p) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "rollout dispatch: out of memory for a result");
      break;
    }
    MPI_Recv(in.p, bytes, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, c->comm, MPI_STATUS_IGNORE);
    if (st.MPI_TAG == TAG_ERROR) {
      in.p[bytes] = 0;
      rc = GRPO_FAIL(err, GRPO_EMPI, "rollout worker rank %d failed: %s", st.MPI_SOURCE, (char *)in.p);
    } else {
      rc = unpack_results(&in, w, h->base, res, st.MPI_SOURCE, err);
      h->in_flight--;
      if (!rc && h->next < w->n_groups) {
        int count = w->n_groups - h->next < h->chunk ? w->n_groups - h->next : h->chunk;
        rc = send_chunk(c, st.MPI_SOURCE, w, h->order, h->next, count, &h->m, err);
        h->next += count;
        h->in_flight++;
      }
    }
    free(in.p);
  }
  handle_free(h);
  return rc;
}

int rollout_dispatch(const rollout_cluster *c, const rollout_work *w, rollout_results *res,
                     grpo_error *err) {
  rollout_dispatch_handle *h;
  int rc = rollout_dispatch_begin(c, w, 0, &h, err);
  return rc ? rc : rollout_dispatch_finish(c, h, res, err);
}

/* ---- the worker side ------------------------------------------------------------ */

static void report_error(const rollout_cluster *c, const grpo_error *err) {
  const char *msg = err && err->msg[0] ? err->msg : "unknown error";
  MPI_Send(msg, (int)strlen(msg), MPI_BYTE, 0, TAG_ERROR, c->comm);
}

/* Runs one work item and sends its results. */
static int serve_work(const rollout_cluster *c, const rollout_worker_options *o, wire *in,
                      uint32_t have_version, grpo_error *err) {
  work_header h;
  GET(in, h);
  if (in->bad || h.n_groups < 0 || h.max_new <= 0)
    return GRPO_FAIL(err, GRPO_EMPI, "malformed work item");
  if (h.parallel && !o->tw)
    return GRPO_FAIL(err, GRPO_EINVAL, "parallel (ThreadWeaver) work sent to a worker without fork/join options");
  if (h.version != have_version)
    return GRPO_FAIL(err, GRPO_EINVAL, "work needs weights version %u but this worker holds %u",
                     h.version, have_version);
  int n = h.n_groups;
  rollout_group *groups = calloc((size_t)n + 1, sizeof *groups);
  int32_t *gidx = calloc((size_t)n + 1, sizeof *gidx);
  char **golds = calloc((size_t)n + 1, sizeof *golds);
  int32_t **prompts = calloc((size_t)n + 1, sizeof *prompts); /* aligned copies of the wire bytes */
  int rc = (groups && gidx && golds && prompts) ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory");
  int total = 0;
  for (int i = 0; !rc && i < n; i++) {
    int32_t hdr[6];
    GET(in, hdr);
    const void *prompt = wire_view(in, sizeof(int32_t) * (size_t)(hdr[3] > 0 ? hdr[3] : 0));
    const char *gold = wire_view(in, (size_t)(hdr[4] > 0 ? hdr[4] : 0));
    if (in->bad || hdr[2] <= 0 || hdr[3] <= 0 || hdr[4] < 0 || hdr[5] < 0) {
      rc = GRPO_FAIL(err, GRPO_EMPI, "malformed work item (group %d)", i);
      break;
    }
    gidx[i] = hdr[0];
    prompts[i] = malloc(sizeof(int32_t) * (size_t)hdr[3]);
    golds[i] = malloc((size_t)hdr[4] + 1);
    if (!golds[i] || !prompts[i]) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory");
      break;
    }
    memcpy(prompts[i], prompt, sizeof(int32_t) * (size_t)hdr[3]);
    groups[i] = (rollout_group){prompts[i], hdr[3], hdr[2], (uint32_t)hdr[1], (uint32_t)hdr[5]};
    memcpy(golds[i], gold, (size_t)hdr[4]);
    golds[i][hdr[4]] = 0;
    total += hdr[2];
  }
  rollout_output *outs = NULL;
  int32_t *ids = NULL;
  float *lps = NULL, *slps = NULL, *rewards = NULL;
  uint8_t *forced = NULL;
  rollout_tw *trajs = NULL;
  if (!rc && h.parallel && !(trajs = calloc((size_t)total + 1, sizeof *trajs)))
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory for %d trajectories", total);
  if (!rc) {
    size_t T = (size_t)total, L = (size_t)h.max_new;
    outs = calloc(T + 1, sizeof *outs);
    ids = malloc((T * L + 1) * sizeof *ids);
    lps = malloc((T * L + 1) * sizeof *lps);
    slps = malloc((T * L + 1) * sizeof *slps);
    rewards = malloc((T * (size_t)o->n_rewards + 1) * sizeof *rewards);
    forced = calloc(T * L + 1, 1);
    if (!outs || !ids || !lps || !slps || !rewards || !forced)
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory for %d completions", total);
    for (size_t i = 0; !rc && i < T; i++) {
      outs[i].ids = ids + i * L;
      outs[i].logprobs = lps + i * L;
      outs[i].sampler_logprobs = slps + i * L;
      outs[i].forced = forced + i * L;
    }
  }
  rollout_engine_stats st = {0};
  if (!rc) {
    rollout_engine_options eo = {.sampling = h.sampling, .max_new_tokens = h.max_new, .seed = h.seed,
                                 .step = h.step, .stop_ids = o->stop_ids, .n_stop_ids = o->n_stop_ids,
                                 .stop_strings = o->stop_strings, .n_stop_strings = o->n_stop_strings,
                                 .piece = o->piece, .piece_ctx = o->piece_ctx,
                                 .vocab_limit = o->vocab_limit, .budget = o->budget};
    if (h.parallel) {
      rollout_tw_options two = *o->tw;
      rc = rollout_engine_generate_parallel(o->engine, &eo, &two, groups, n, trajs, &st, err);
      /* the response of each trajectory, as a completion */
      for (int k = 0; !rc && k < total; k++) {
        const rollout_tw *t = &trajs[k];
        outs[k].n = t->combined.n - t->n_prompt;
        outs[k].finish = t->finish;
        outs[k].truncated = t->truncated;
        outs[k].ids = t->combined.ids + t->n_prompt;
      }
    } else {
      rc = rollout_engine_generate(o->engine, &eo, groups, n, outs, &st, err);
    }
  }
  for (int i = 0, k = 0; !rc && i < n; i++)
    for (int j = 0; j < groups[i].n_samples && !rc; j++, k++)
      rc = o->score(o->score_ctx, golds[i], outs[k].ids, outs[k].n, outs[k].truncated,
                    rewards + (size_t)k * o->n_rewards, err);
  size_t tw_cap = 0;
  unsigned char *tw_buf = NULL;
  wire m = {0};
  if (!rc) {
    int32_t count = total;
    double secs = st.seconds;
    int64_t toks = st.decode_tokens + st.prefill_tokens;
    int ok = PUT(&m, count) && PUT(&m, secs) && PUT(&m, toks);
    for (int i = 0, k = 0; ok && i < n; i++)
      for (int j = 0; j < groups[i].n_samples && ok; j++, k++) {
        result_header rh = {gidx[i], j, outs[k].n, outs[k].finish, outs[k].truncated, o->n_rewards};
        if (h.parallel) {
          int64_t bytes = (int64_t)rollout_tw_packed_size(&trajs[k]);
          if ((size_t)bytes > tw_cap) {
            unsigned char *nb = realloc(tw_buf, (size_t)bytes);
            if (!nb) {
              ok = 0;
              break;
            }
            tw_buf = nb;
            tw_cap = (size_t)bytes;
          }
          rollout_tw_pack(&trajs[k], tw_buf);
          ok = PUT(&m, rh) && PUT(&m, bytes) && wire_put(&m, tw_buf, (size_t)bytes) &&
               wire_put(&m, rewards + (size_t)k * o->n_rewards, sizeof(float) * (size_t)o->n_rewards);
          continue;
        }
        ok = PUT(&m, rh) && wire_put(&m, outs[k].ids, sizeof(int32_t) * (size_t)outs[k].n) &&
             wire_put(&m, outs[k].logprobs, sizeof(float) * (size_t)outs[k].n) &&
             wire_put(&m, outs[k].sampler_logprobs, sizeof(float) * (size_t)outs[k].n) &&
             wire_put(&m, outs[k].forced, (size_t)outs[k].n) &&
             wire_put(&m, rewards + (size_t)k * o->n_rewards, sizeof(float) * (size_t)o->n_rewards);
      }
    if (!ok) rc = GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory packing results");
  }
  if (!rc) {
    int mrc = MPI_Send(m.p, (int)m.n, MPI_BYTE, 0, TAG_RESULT, c->comm);
    if (mrc != MPI_SUCCESS) rc = mpi_fail(err, mrc, "sending results");
  }
  free(m.p);
  for (int i = 0; golds && i < n; i++) free(golds[i]);
  for (int i = 0; prompts && i < n; i++) free(prompts[i]);
  free(golds);
  free(prompts);
  free(groups);
  free(gidx);
  free(outs);
  free(ids);
  free(lps);
  free(slps);
  free(rewards);
  free(forced);
  free(tw_buf);
  for (int k = 0; trajs && k < total; k++) rollout_tw_free(&trajs[k]);
  free(trajs);
  return rc;
}

int rollout_worker_loop(const rollout_cluster *c, const rollout_worker_options *o, grpo_error *err) {
  uint32_t version = 0;
  int have_weights = 0;
  wire in = {0};
  int rc = GRPO_OK;
  for (;;) {
    int32_t ctrl[4];
    int mrc = MPI_Recv(ctrl, 4, MPI_INT32_T, 0, TAG_CTRL, c->comm, MPI_STATUS_IGNORE);
    if (mrc != MPI_SUCCESS) {
      rc = mpi_fail(err, mrc, "worker waiting for the trainer");
      break;
    }
    if (ctrl[0] == CTRL_SHUTDOWN) break;
    if (ctrl[0] == CTRL_WEIGHTS) {
      if (c->bcast) {
        if ((rc = c->bcast(c->bcast_ctx, o->weights, o->n_weights, err))) {
          report_error(c, err);
          break;
        }
      } else if ((rc = bcast_weights(c->weights_comm, o->weights, o->n_weights, err))) {
        break;
      } else if (o->weights_received && (rc = o->weights_received(o->weights_ctx, err))) {
        report_error(c, err);
        break;
      }
      version = (uint32_t)ctrl[1];
      have_weights = 1;
      continue;
    }
    if (ctrl[0] != CTRL_WORK || ctrl[2] < 0) {
      rc = GRPO_FAIL(err, GRPO_EMPI, "worker: unknown control message %d", ctrl[0]);
      report_error(c, err);
      break;
    }
    size_t len = (size_t)ctrl[2];
    if (len > in.cap) {
      unsigned char *grown = realloc(in.p, len);
      if (!grown) {
        rc = GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory for a work item");
        report_error(c, err);
        break;
      }
      in.p = grown;
      in.cap = len;
    }
    MPI_Recv(in.p, (int)len, MPI_BYTE, 0, TAG_WORK, c->comm, MPI_STATUS_IGNORE);
    in.n = len;
    in.at = 0;
    in.bad = 0;
    rc = have_weights ? serve_work(c, o, &in, version, err)
                      : GRPO_FAIL(err, GRPO_EINVAL, "work arrived before any weights");
    if (rc) {
      report_error(c, err);
      break;
    }
  }
  free(in.p);
  return rc;
}
