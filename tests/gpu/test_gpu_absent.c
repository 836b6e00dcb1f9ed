/* model.device: cuda where it cannot run (a build without CUDA, or no visible
 * device) is a clear error from trainer_session_open, not a crash, and leaves
 * nothing open. Built in every configuration (label unit); skips (77) where a
 * device is present (test_gpu_train covers that case). */
#include <mpi.h>

#include "../trainer/train_common.h"
#include "core/cuda/backend_cuda.h"
#include "trainer/session.h"

TEST(cuda_without_a_device_is_an_error) {
  const char *extra[] = {"model.device=cuda", NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  trainer_session s;
  int rc = trainer_session_open(&s, &cfg, 0, &err);
  CHECK_EQ_INT(rc, GRPO_EUNSUPPORTED);
  CHECK_MSG(strstr(err.msg, "model.device: cuda") != NULL, "message: %s", err.msg);
  CHECK(s.be == NULL && s.model == NULL && s.tok == NULL);
  grpo_config_free(&cfg);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (grpo_backend_cuda_device_count() > 0) {
    printf("a CUDA device is present: skipped\n");
    MPI_Finalize();
    return 77;
  }
  RUN(cuda_without_a_device_is_an_error);
  MPI_Finalize();
  return test_summary();
}
