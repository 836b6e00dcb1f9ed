/* Fuzz target: any bytes as gold and completion (split at the first NUL or
 * newline) give a verdict, never a crash, hang or sanitizer report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reward/math_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 16)) return 0;
  char *buf = malloc(size + 2);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  buf[size + 1] = '\0';
  char *split = memchr(buf, '\n', size);
  const char *gold = buf, *pred = "";
  if (split) {
    *split = '\0';
    pred = split + 1;
  }
  reward_math_verdict v;
  reward_math_options o;
  reward_math_options_default(&o);
  if (reward_math_verify(gold, pred, &o, &v, NULL) == GRPO_OK) {
    if (v.correct != (v.result == REWARD_MATH_CORRECT)) abort();
  }
  /* the same text as both sides, and swapped */
  reward_math_verify(pred, gold, &o, &v, NULL);
  reward_math_verify(buf, buf, &o, &v, NULL);
  free(buf);
  return 0;
}
