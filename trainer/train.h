/* The training loops: `grpo train` (GRPO / P-GRPO, colocated placement: every
 * rank rolls out its share of the prompts and trains on it, gradients summed
 * over ranks) and `grpo sft` (supervised warm-up on packed sequences).
 *
 * One GRPO step:
 *   prompts (dataset cursor or the synthetic task; rank r takes its slice)
 *   -> rollout (G samples per prompt, keyed RNG) -> rewards (registry)
 *   -> rewards all-gathered, advantages over the whole batch (identical on
 *      every rank) -> packed micro-batches -> forward, GRPO loss, backward
 *   -> gradient all-reduce, global-norm clip, AdamW -> metrics, checkpoint.
 * Loss normalisers (sequences, tokens) are global, so the update does not
 * depend on the rank count or the micro-batch split.
 *
 * Runs write <output_dir>/config.yaml, metrics.jsonl, checkpoints/ and
 * summary.json. checkpoint.resume auto continues from checkpoints/latest and
 * ends with the same weights as an uninterrupted run. SIGUSR1 / SIGTERM write
 * a checkpoint at the next step boundary and return (exit 0). */
#ifndef GRPO_TRAINER_TRAIN_H
#define GRPO_TRAINER_TRAIN_H

#include <mpi.h>

#include "core/config.h"
#include "core/error.h"

typedef struct trainer_summary {
  long steps_done;          /* optimizer steps completed by the run (after resume) */
  long final_step;
  double accuracy_first;    /* mean eval accuracy of the first / last evaluation (-1 none) */
  double accuracy_last;
  double reward_first, reward_last;
  double wall_seconds;
  int stopped_by_signal;
  long skipped_steps;       /* non-finite loss or gradient */
} trainer_summary;

int trainer_train(const grpo_config *cfg, MPI_Comm comm, trainer_summary *summary, grpo_error *err);
int trainer_sft(const grpo_config *cfg, MPI_Comm comm, trainer_summary *summary, grpo_error *err);

/* Installs the SIGUSR1 / SIGTERM handlers (a flag only; the loops react at
 * the next step boundary). */
void trainer_install_signal_handlers(void);

#endif
