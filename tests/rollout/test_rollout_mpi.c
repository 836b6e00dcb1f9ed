/* Disaggregated rollout under mpirun -np 3: rank 0 trains, ranks 1-2
 * generate. Results must equal the same generation done in one process, new
 * weights must reach the workers whole, and a failing worker must surface
 * as an error naming its rank. The scripted policy's logits include a bias
 * vector that stands in for the model weights. */
#include <math.h>
#include <mpi.h>

#include "checkpoints/hf_io.h"
#include "rollout/policy.h"
#include "rollout/worker.h"
#include "scripted_policy.h"
#include "test.h"

#define V 40
#define MAXNEW 12
#define NG 7
#define G 3
#define NR 2

static int g_rank;
static float g_weights[V];

static int score(void *ctx, const char *gold, const int32_t *ids, int n, int truncated, float *r,
                 grpo_error *err) {
  (void)ctx;
  (void)err;
  long s = 0;
  for (int i = 0; i < n; i++) s += ids[i];
  r[0] = (float)(s % 7) + (float)strlen(gold);
  r[1] = truncated ? NAN : (float)n;
  return GRPO_OK;
}

static int32_t PROMPTS[NG][8];
static rollout_group GROUPS[NG];
static const char *GOLDS[NG] = {"a", "bb", "", "ccc", "d", "ee", "f"};

static void setup_groups(void) {
  for (int g = 0; g < NG; g++) {
    int n = 1 + (g * 3) % 7;
    for (int i = 0; i < n; i++) PROMPTS[g][i] = (g * 5 + i) % V;
    GROUPS[g] = (rollout_group){PROMPTS[g], n, G, (uint32_t)(100 + g), 0};
  }
}

static rollout_work work_for(uint32_t version) {
  rollout_work w = {0};
  w.weight_version = version;
  w.step = 3;
  w.seed = 99;
  rollout_sampling_defaults(&w.sampling);
  w.sampling.temperature = 0.8f;
  w.max_new_tokens = MAXNEW;
  w.n_groups = NG;
  w.groups = GROUPS;
  w.golds = GOLDS;
  return w;
}

static const int32_t STOP[1] = {7};

typedef struct outbuf {
  rollout_output outs[NG * G];
  int32_t ids[NG * G][MAXNEW];
  float lp[NG * G][MAXNEW], slp[NG * G][MAXNEW];
  float rewards[NG * G * NR];
} outbuf;

static void wire_outs(outbuf *b) {
  for (int i = 0; i < NG * G; i++) {
    b->outs[i].ids = b->ids[i];
    b->outs[i].logprobs = b->lp[i];
    b->outs[i].sampler_logprobs = b->slp[i];
  }
}

/* The same generation and scoring in this process. */
static void local_run(outbuf *b, uint32_t version) {
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 4, 64);
  sp.bias = g_weights;
  rollout_engine *e;
  rollout_engine_create(&e, &pol, NULL);
  rollout_work w = work_for(version);
  rollout_engine_options eo = {.sampling = w.sampling, .max_new_tokens = MAXNEW, .seed = w.seed,
                               .step = w.step, .stop_ids = STOP, .n_stop_ids = 1};
  wire_outs(b);
  CHECK_EQ_INT(rollout_engine_generate(e, &eo, GROUPS, NG, b->outs, NULL, NULL), GRPO_OK);
  for (int i = 0; i < NG * G; i++)
    score(NULL, GOLDS[i / G], b->outs[i].ids, b->outs[i].n, b->outs[i].truncated, b->rewards + i * NR, NULL);
  rollout_engine_free(e);
  scripted_free(&sp);
}

static void same(const outbuf *a, const outbuf *b) {
  for (int i = 0; i < NG * G; i++) {
    CHECK_EQ_INT(a->outs[i].n, b->outs[i].n);
    CHECK(memcmp(a->ids[i], b->ids[i], sizeof(int32_t) * (size_t)a->outs[i].n) == 0);
    CHECK(memcmp(a->lp[i], b->lp[i], sizeof(float) * (size_t)a->outs[i].n) == 0);
    CHECK(a->outs[i].finish == b->outs[i].finish && a->outs[i].truncated == b->outs[i].truncated);
    CHECK(a->outs[i].prompt_index == b->outs[i].prompt_index);
    for (int k = 0; k < NR; k++) {
      float x = a->rewards[i * NR + k], y = b->rewards[i * NR + k];
      CHECK((isnan(x) && isnan(y)) || x == y);
    }
  }
}

static rollout_cluster g_cluster;

TEST(trainer_side) {
  const rollout_cluster *c = &g_cluster;
  static outbuf remote, local;
  grpo_error err = {0};
  for (uint32_t version = 1; version <= 2; version++) {
    for (int v = 0; v < V; v++) g_weights[v] = 0.5f * sinf((float)(v * version));
    CHECK_EQ_INT(rollout_broadcast_weights(c, version, g_weights, V, &err), GRPO_OK);
    rollout_work w = work_for(version);
    rollout_results res = {remote.outs, remote.rewards, NR, 0, 0, NULL};
    wire_outs(&remote);
    int rc = rollout_dispatch(c, &w, &res, &err);
    CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
    CHECK(res.worker_tokens > 0);
    local_run(&local, version);
    same(&remote, &local);
    /* the two halves (one-step off-policy), every share sent at once: the
     * same results; rank 0 is free between begin and finish */
    static outbuf split;
    rollout_results res2 = {split.outs, split.rewards, NR, 0, 0, NULL};
    wire_outs(&split);
    rollout_dispatch_handle *h = NULL;
    CHECK_EQ_INT(rollout_dispatch_begin(c, &w, 1, &h, &err), GRPO_OK);
    CHECK(h != NULL);
    if (h) CHECK_EQ_INT(rollout_dispatch_finish(c, h, &res2, &err), GRPO_OK);
    same(&split, &local);
  }
  /* a work item for weights the workers do not hold fails, naming the rank */
  rollout_work w = work_for(99);
  w.n_groups = 1;
  rollout_results res = {remote.outs, remote.rewards, NR, 0, 0, NULL};
  CHECK_EQ_INT(rollout_dispatch(c, &w, &res, &err), GRPO_EMPI);
  CHECK(strstr(err.msg, "rollout worker rank 1 failed") != NULL || strstr(err.msg, "rollout worker rank 2 failed") != NULL);
  CHECK(strstr(err.msg, "version 99") != NULL);
  CHECK_EQ_INT(rollout_shutdown_workers(c, &err), GRPO_OK);
}

TEST(worker_side) {
  const rollout_cluster *c = &g_cluster;
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, 3, 64); /* a different slot count than the local run */
  sp.bias = g_weights;
  rollout_engine *e;
  rollout_engine_create(&e, &pol, NULL);
  rollout_worker_options o = {.engine = e, .weights = g_weights, .n_weights = V, .stop_ids = STOP,
                              .n_stop_ids = 1, .score = score, .n_rewards = NR};
  grpo_error err = {0};
  int rc = rollout_worker_loop(c, &o, &err);
  /* one worker gets the bad work item and stops with its error; the other shuts down cleanly */
  CHECK(rc == GRPO_OK || strstr(err.msg, "version 99") != NULL);
  rollout_engine_free(e);
  scripted_free(&sp);
}

/* The same protocol with the real transformer: the tiny Qwen2 fixture model
 * (tests/fixtures/models/qwen2). Rank 0 perturbs its weights, broadcasts
 * them, and the workers' completions must equal rank 0 generating alone. */
static void model_round(void) {
  grpo_error err = {0};
  model_params p;
  if (ckpt_hf_load(test_path("tests/fixtures/models/qwen2"), &p, &err)) {
    CHECK_MSG(0, "%s", err.msg);
    return;
  }
  model_plan_opts po = {.max_tokens = 16, .max_cache_len = 48};
  model_transformer *m;
  rollout_model_policy mp;
  rollout_policy pol;
  rollout_engine *e;
  CHECK_EQ_INT(model_transformer_create(&m, &p, grpo_backend_cpu(), &po, &err), GRPO_OK);
  CHECK_EQ_INT(rollout_model_policy_init(&mp, &pol, m, &p.cfg, g_rank == 0 ? 4 : 3, 48, &err), GRPO_OK);
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, &err), GRPO_OK);
  if (g_rank == 0) {
    for (size_t i = 0; i < p.total; i += 7) p.data[i] *= 1.25f; /* weights the workers do not have yet */
    static outbuf remote, local;
    CHECK_EQ_INT(rollout_broadcast_weights(&g_cluster, 5, p.data, p.total, &err), GRPO_OK);
    rollout_work w = work_for(5);
    rollout_results res = {remote.outs, remote.rewards, NR, 0, 0, NULL};
    wire_outs(&remote);
    CHECK_EQ_INT(rollout_dispatch(&g_cluster, &w, &res, &err), GRPO_OK);
    rollout_engine_options eo = {.sampling = w.sampling, .max_new_tokens = MAXNEW, .seed = w.seed,
                                 .step = w.step, .stop_ids = STOP, .n_stop_ids = 1};
    wire_outs(&local);
    CHECK_EQ_INT(rollout_engine_generate(e, &eo, GROUPS, NG, local.outs, NULL, &err), GRPO_OK);
    for (int i = 0; i < NG * G; i++)
      score(NULL, GOLDS[i / G], local.outs[i].ids, local.outs[i].n, local.outs[i].truncated, local.rewards + i * NR, NULL);
    same(&remote, &local);
    CHECK_EQ_INT(rollout_shutdown_workers(&g_cluster, &err), GRPO_OK);
  } else {
    rollout_worker_options o = {.engine = e, .weights = p.data, .n_weights = p.total, .stop_ids = STOP,
                                .n_stop_ids = 1, .score = score, .n_rewards = NR};
    CHECK_EQ_INT(rollout_worker_loop(&g_cluster, &o, &err), GRPO_OK);
  }
  rollout_engine_free(e);
  rollout_model_policy_free(&mp);
  model_transformer_free(m);
  model_params_free(&p);
}

TEST(real_model_through_workers) { model_round(); }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  setup_groups();
  grpo_error err = {0};
  CHECK_EQ_INT(rollout_cluster_init(&g_cluster, MPI_COMM_WORLD, 1, &err), GRPO_OK);
  /* the tiny transformer first (every rank serves until rank 0 shuts down),
   * then the scripted policy with its failure case */
  RUN(real_model_through_workers);
  if (g_rank == 0)
    RUN(trainer_side);
  else
    RUN(worker_side);
  int local_failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&local_failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  rollout_cluster_free(&g_cluster);
  if (g_rank == 0) test_summary();
  MPI_Finalize();
  return any ? 1 : 0;
}
