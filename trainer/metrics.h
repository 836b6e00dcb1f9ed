/* Per-step metrics: one JSON object per step in metrics.jsonl,
 *   {"step": 12, "data": {"reward": 0.61, "rewards/math/mean": 0.61, ...}}
 * (verl's file-logger layout with TRL's metric names), written and flushed
 * by rank 0 only. Names keep their insertion order within a step. */
#ifndef GRPO_TRAINER_METRICS_H
#define GRPO_TRAINER_METRICS_H

#include <stdio.h>

#include "core/error.h"
#include "trainer/tensorboard.h"

#define TRAINER_METRICS_MAX 96

typedef struct trainer_metrics {
  FILE *file;              /* NULL on non-root ranks */
  trainer_tb tb;           /* TensorBoard events when enabled (rank 0) */
  int n;
  char names[TRAINER_METRICS_MAX][64];
  double values[TRAINER_METRICS_MAX];
} trainer_metrics;

/* Opens (appends to) path on rank 0; other ranks get a sink that drops
 * everything. tb_dir: also write TensorBoard events there (NULL: no). */
int trainer_metrics_open(trainer_metrics *m, const char *path, const char *tb_dir, int rank,
                         grpo_error *err);
void trainer_metrics_close(trainer_metrics *m);
/* Sets a value for the current step (replaces one of the same name). */
void trainer_metrics_set(trainer_metrics *m, const char *name, double value);
/* The value set this step, or NAN. */
double trainer_metrics_get(const trainer_metrics *m, const char *name);
/* Writes the step's line and clears it. */
void trainer_metrics_flush(trainer_metrics *m, long step);

#endif
