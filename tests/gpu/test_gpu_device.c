/* Proves the CUDA toolchain path end to end: a kernel runs and matches the host. */
#include "core/cuda/device.h"
#include "test.h"

TEST(saxpy_matches_host) { CHECK_NEAR(grpo_cuda_selftest(100000), 0.0, 0.0); }

int main(void) {
  if (grpo_cuda_device_count() == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
  RUN(saxpy_matches_host);
  return test_summary();
}
