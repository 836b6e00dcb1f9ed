/* Fuzz target: arbitrary bytes as a JSON reward.functions list. Any input
 * either builds a registry that then scores a fixed completion, or fails
 * with a message; never a crash. */
#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reward/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *j = cJSON_ParseWithLength((const char *)data, size);
  if (!j) return 0;
  reward_registry *reg = NULL;
  grpo_error err;
  grpo_error_clear(&err);
  int rc = reward_registry_from_json(&reg, j, "fuzz", &err);
  if (rc != GRPO_OK) {
    if (reg || err.msg[0] == '\0') __builtin_trap();
  } else {
    reward_scratch *s;
    if (reward_scratch_create(reg, &s, NULL) == GRPO_OK) {
      reward_input in;
      reward_input_init(&in);
      in.completion = "<think>x<Parallel><Outlines><Outline>1:</Outline></Outlines><Thread>1: y"
                      "</Thread></Parallel></think>\\boxed{3}";
      in.n_tokens = 12;
      in.correct = 1; /* keeps the verifier out of this target */
      reward_result r;
      if (reward_registry_score(reg, s, &in, &r, NULL) != GRPO_OK) __builtin_trap();
      reward_scratch_free(s);
    }
    reward_registry_free(reg);
  }
  cJSON_Delete(j);
  return 0;
}
