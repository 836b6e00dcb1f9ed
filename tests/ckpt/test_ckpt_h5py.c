/* h5py (an independent HDF5 reader) reads every dataset and attribute of a
 * checkpoint and finds the values the formulas in ckpt_fixture.h promise.
 * Skipped (exit 77) where python3 has no h5py, e.g. in CI. */
#include "ckpt_fixture.h"
#include "test.h"

static char *g_dir;

TEST(h5py_reads_everything) {
  grpo_error err;
  char sample[1024], chunked[1024], cmd[4096];
  snprintf(sample, sizeof sample, "%s/sample.h5", g_dir);
  snprintf(chunked, sizeof chunked, "%s/chunked.h5", g_dir);
  CHECK_EQ_INT(write_sample(sample, &err), 0);
  enum { R = 300, C = 256 };
  static float x[R * C];
  for (int i = 0; i < R * C; i++) x[i] = (float)i * 0.5f;
  ckpt_writer *w;
  const int64_t shape[2] = {R, C};
  CHECK_EQ_INT(ckpt_writer_open(&w, chunked, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "big.weight", CKPT_F32, 2, shape, x, &err), 0);
  CHECK_EQ_INT(ckpt_writer_finish(w, &err), 0);
  snprintf(cmd, sizeof cmd, "python3 %s %s %s", test_path("tests/ckpt/check_h5py.py"), sample, chunked);
  CHECK_EQ_INT(system(cmd), 0);
}

int main(void) {
  if (system("python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
    printf("h5py not available: skipped\n");
    return 77;
  }
  g_dir = make_tmpdir();
  if (!g_dir) return 1;
  RUN(h5py_reads_everything);
  remove_tree(g_dir);
  free(g_dir);
  return test_summary();
}
