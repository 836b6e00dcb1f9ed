/* TensorBoard event files (scalars), so `tensorboard --logdir <output_dir>`
 * shows a run. The format is TFRecord: each record is
 *   u64 length | u32 masked crc32c(length) | Event proto | u32 masked crc32c(data)
 * and each Event holds wall_time, step and a Summary of (tag, simple_value)
 * pairs, encoded here by hand (a handful of protobuf fields). */
#ifndef GRPO_TRAINER_TENSORBOARD_H
#define GRPO_TRAINER_TENSORBOARD_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

typedef struct trainer_tb {
  FILE *f;
} trainer_tb;

/* Creates dir (if needed) and dir/events.out.tfevents.<time>.<host>. */
int trainer_tb_open(trainer_tb *tb, const char *dir, grpo_error *err);
void trainer_tb_close(trainer_tb *tb);
/* One event with n scalars at step. */
void trainer_tb_scalars(trainer_tb *tb, long step, const char (*names)[64], const double *values, int n);

/* CRC-32C (Castagnoli), as TFRecord uses; exposed for tests. */
uint32_t trainer_crc32c(const void *data, size_t n);

#endif
