#include "core/runtime.h"

#include <stdlib.h>
#include <unistd.h>

void grpo_runtime_init(char **argv) {
  if (getenv("OMP_WAIT_POLICY")) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);
  /* exec failed (no /proc): run on with the default policy */
}
