/* Shared by the training-loop tests: a tiny built-in model on the synthetic
 * task with a length-shaping reward (signal from the first step, unlike the
 * math reward on a random model), and a reader of final weights. */
#ifndef GRPO_TESTS_TRAIN_COMMON_H
#define GRPO_TESTS_TRAIN_COMMON_H

#include <math.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/hf_io.h"
#include "core/config.h"
#include "test.h"
#include "trainer/train.h"

static const char *TRAIN_BASE[] = {
    "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
    "model.intermediate_size=64", "data.task=arithmetic", "data.max_prompt_length=48",
    "data.num_eval=8", "rollout.num_generations=8", "rollout.max_completion_length=24",
    "rollout.max_batch_size=64",
    "reward.functions=[{name: length, options: {mode: target, target_length: 4}}]",
    "trainer.prompts_per_step=8", "trainer.max_tokens_per_microbatch=512", "optim.lr=0.01",
    "checkpoint.every_steps=0", "logging.progress=false", "logging.level=warn"};
#define N_TRAIN_BASE ((int)(sizeof TRAIN_BASE / sizeof TRAIN_BASE[0]))

/* Loads the base config plus extra overrides (NULL-terminated). */
static inline int train_config(grpo_config *cfg, const char *const *extra, grpo_error *err) {
  const char *over[64];
  int n = 0;
  for (int i = 0; i < N_TRAIN_BASE; i++) over[n++] = TRAIN_BASE[i];
  for (int i = 0; extra && extra[i]; i++) over[n++] = extra[i];
  return grpo_config_load(cfg, NULL, n, over, err);
}

/* Trains the base config plus extra (NULL-terminated) with its output in
 * dir, over comm; summary may be NULL. The config's status, else the run's. */
static inline int train_run(const char *dir, const char *const *extra, MPI_Comm comm,
                            trainer_summary *summary, grpo_error *err) {
  char od[1100];
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *over[48] = {od};
  int n = 1;
  for (int i = 0; extra && extra[i] && n < 47; i++) over[n++] = extra[i];
  grpo_config cfg;
  int rc = train_config(&cfg, over, err);
  if (rc) return rc;
  rc = trainer_train(&cfg, comm, summary, err);
  grpo_config_free(&cfg);
  return rc;
}

/* A metric of a run's metrics.jsonl over its steps: the last value (want_max
 * 0) or the largest (1); -1 when absent. */
static inline double scan_metric(const char *dir, const char *name, int want_max) {
  char path[700], line[8192], key[128];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  snprintf(key, sizeof key, "\"%s\": ", name);
  FILE *f = fopen(path, "r");
  double v = -1;
  while (f && fgets(line, sizeof line, f)) {
    char *p = strstr(line, key);
    if (!p) continue;
    double x = atof(p + strlen(key));
    if (!want_max || x > v) v = x;
  }
  if (f) fclose(f);
  return v;
}
static inline double last_metric(const char *dir, const char *name) { return scan_metric(dir, name, 0); }

/* Every value of a metric in a run's metrics.jsonl, in order; returns how
 * many (at most cap are stored). */
static inline int metric_series(const char *dir, const char *name, double *out, int cap) {
  char path[700], line[16384], key[128];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  snprintf(key, sizeof key, "\"%s\": ", name);
  FILE *f = fopen(path, "r");
  int n = 0;
  while (f && fgets(line, sizeof line, f)) {
    char *p = strstr(line, key);
    if (p && n < cap) out[n++] = atof(p + strlen(key));
  }
  if (f) fclose(f);
  return n;
}
static inline double max_metric(const char *dir, const char *name) { return scan_metric(dir, name, 1); }

/* The model tensors of dir/checkpoints/latest into p. */
static inline int final_weights(const char *dir, model_params *p, grpo_error *err) {
  char ck[1024], path[1200];
  snprintf(ck, sizeof ck, "%s/checkpoints", dir);
  int64_t step;
  int rc = ckpt_resolve(ck, 0, path, sizeof path, &step, err);
  ckpt_reader *r;
  if (!rc) rc = ckpt_reader_open(&r, path, err);
  if (rc) return rc;
  rc = ckpt_load_params(r, p, err);
  ckpt_reader_close(r);
  return rc;
}

/* Largest absolute difference between the final weights of two runs (-1 on error). */
static inline double max_weight_diff(const char *dir_a, const char *dir_b) {
  model_params pa, pb;
  grpo_error err = {0};
  if (final_weights(dir_a, &pa, &err)) return -1;
  if (final_weights(dir_b, &pb, &err)) {
    model_params_free(&pa);
    return -1;
  }
  double worst = pa.total == pb.total ? 0 : INFINITY;
  for (size_t i = 0; i < pa.total && i < pb.total; i++) {
    double d = fabs((double)pa.data[i] - pb.data[i]);
    if (d > worst) worst = d;
  }
  model_params_free(&pa);
  model_params_free(&pb);
  return worst;
}

#endif
