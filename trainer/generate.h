/* `grpo generate`: sample completions for a JSONL file of prompts and write
 * one JSON object per completion:
 *   {"index": row, "sample": j, "prompt": question, "completion": text,
 *    "tokens": [...], "logprobs": [...], "finish_reason": "stop" | "length",
 *    "truncated": bool}
 * The question is the row's data.prompt_field, else its "prompt", "question"
 * or "problem" field. With rollout.parallel_threads the completion is the
 * joined ThreadWeaver trajectory. */
#ifndef GRPO_TRAINER_GENERATE_H
#define GRPO_TRAINER_GENERATE_H

#include <stdio.h>

#include "trainer/session.h"

int trainer_generate_file(trainer_session *s, const char *prompts_path, int n_samples, FILE *out,
                          grpo_error *err);

#endif
