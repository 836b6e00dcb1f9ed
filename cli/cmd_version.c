#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

int cmd_version(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    puts("usage: grpo version\n\nPrints the grpo version and the features of this build.");
    return 0;
  }
#ifdef GRPO_HAVE_CUDA
  const char *cuda = "cuda";
#else
  const char *cuda = "no-cuda";
#endif
  printf("grpo %s (%s, cpu)\n", GRPO_VERSION, cuda);
  return 0;
}
