/* Writes the fuzz seed corpus (tests/ckpt/corpus/reader/) with the real
 * writer. Not a test; rebuild the seeds after a format change with
 *   build/tests/ckpt/ckpt_make_corpus tests/ckpt/corpus/reader */
#include "ckpt_fixture.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ckpt_make_corpus DIR\n");
    return 2;
  }
  grpo_error err;
  char path[2048];
  snprintf(path, sizeof path, "%s/sample.h5", argv[1]);
  if (write_sample(path, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  /* A second shape of file: published from a directory writer's point of view
   * (step 0), one bf16 tensor with optimizer state, a string scalar, no meta. */
  snprintf(path, sizeof path, "%s/tiny.h5", argv[1]);
  ckpt_writer *w;
  const uint16_t h[6] = {0x3F80, 0xBF80, 0x4000, 0x0000, 0x7F80, 0x7FC0};
  const float m[6] = {0.5f, -0.25f, 0, 1, 2, 3};
  const int64_t shape[2] = {2, 3};
  int rc = ckpt_writer_open(&w, path, 0, &err);
  if (!rc) rc = ckpt_writer_put_tensor(w, CKPT_MODEL, "model.layers.0.input_layernorm.weight", CKPT_BF16, 2, shape, h, &err);
  if (!rc) rc = ckpt_writer_put_tensor(w, CKPT_OPTIM_M, "model.layers.0.input_layernorm.weight", CKPT_F32, 2, shape, m, &err);
  if (!rc) rc = ckpt_writer_put_tensor(w, CKPT_OPTIM_V, "model.layers.0.input_layernorm.weight", CKPT_F32, 2, shape, m, &err);
  if (!rc) rc = ckpt_writer_put_str(w, "dataset", "gsm8k", &err);
  if (!rc) rc = ckpt_writer_finish(w, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  return rc ? 1 : 0;
}
