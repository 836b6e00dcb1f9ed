/* Fuzz target: dataset rows are untrusted input. */
#include <stdint.h>
#include <stddef.h>

#include "core/log.h"
#include "tasks/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  grpo_log_set_level(GRPO_LOG_ERROR);
  static const char *const layouts[] = {"gsm8k", "minerva_math", "olympiadbench"};
  for (int i = 0; i < 3; i++) {
    task_format fmt;
    task_format_builtin(layouts[i], &fmt);
    task_dataset ds;
    grpo_error err;
    if (task_dataset_load_buffer(&ds, "fuzz", (const char *)data, size, &fmt, &err) == GRPO_OK)
      task_dataset_free(&ds);
  }
  return 0;
}
