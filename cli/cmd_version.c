/* grpo version: the version, what this build has, and what it finds here
 * (the first thing to paste into a bug report, and the check that a GPU
 * node's build sees its devices, cuDNN and NCCL). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/backend.h"
#ifdef GRPO_HAVE_CUDA
#include "core/cuda/device.h"
#endif

#ifdef GRPO_HAVE_CUDA
/* "13.0" from 13000-style encodings (major*1000 + minor*10) */
static const char *cuda_ver(int v, char *buf, size_t cap) {
  if (!v) return "none";
  snprintf(buf, cap, "%d.%d", v / 1000, (v % 1000) / 10);
  return buf;
}

static void print_cuda_build(void) {
#ifdef GRPO_HAVE_CUDNN
  const char *cudnn = ", cuDNN";
#else
  const char *cudnn = ", no cuDNN";
#endif
#ifdef GRPO_HAVE_NCCL
  const char *nccl = ", NCCL";
#else
  const char *nccl = ", no NCCL";
#endif
  printf("build:   CUDA backend (sm %s)%s%s\n", GRPO_CUDA_ARCHS, cudnn, nccl);
}

static void print_cuda(void) {
  grpo_cuda_versions v;
  grpo_cuda_library_versions(&v);
  char a[32], b[32], c[48] = "none", d[48] = "none", e[48] = "none";
  if (v.cublas) snprintf(c, sizeof c, "%d.%d.%d", v.cublas / 10000, v.cublas / 100 % 100, v.cublas % 100);
  /* cuDNN 9: major*10000 + minor*100 + patch; NCCL >= 2.9: major*10000 + minor*100 + patch */
  if (v.cudnn) snprintf(d, sizeof d, "%ld.%ld.%ld", v.cudnn / 10000, v.cudnn / 100 % 100, v.cudnn % 100);
  if (v.nccl) snprintf(e, sizeof e, "%d.%d.%d", v.nccl / 10000, v.nccl / 100 % 100, v.nccl % 100);
  printf("cuda:    runtime %s, driver %s, cuBLAS %s, cuDNN %s, NCCL %s\n",
         cuda_ver(v.runtime, a, sizeof a), cuda_ver(v.driver, b, sizeof b), c, d, e);
  int n = grpo_cuda_device_count();
  printf("devices: %d visible\n", n);
  for (int i = 0; i < n; i++) {
    char name[256];
    size_t mem = 0;
    int ma = 0, mi = 0;
    if (grpo_cuda_device_info(i, name, sizeof name, &mem, &ma, &mi) == 0)
      printf("  %d: %s, %.1f GiB, sm_%d%d\n", i, name, (double)mem / (1024.0 * 1024 * 1024), ma, mi);
  }
}
#endif

int cmd_version(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    puts("usage: grpo version\n\nPrints the grpo version, the features of this build (CUDA, cuDNN,\n"
         "NCCL), the CPU backend as it runs here (OpenBLAS build and core, vector\n"
         "level, threads), and the CUDA libraries and devices it finds.");
    return 0;
  }
  printf("grpo %s\n", GRPO_VERSION);
#ifdef GRPO_HAVE_CUDA
  print_cuda_build();
#else
  puts("build:   CPU only (configured without the CUDA backend)");
#endif
  char cpu[512];
  grpo_backend_cpu_describe(cpu, sizeof cpu);
  printf("cpu:     %s\n", cpu);
#ifdef GRPO_HAVE_CUDA
  print_cuda();
#endif
  return 0;
}
