/* `grpo inspect`: the binary from $GRPO_BUILD_DIR/cli/grpo prints the summary
 * of a checkpoint (or of the newest one in a directory) and exits 1 with an
 * error naming the path for missing, foreign and corrupt files. */
#include <sys/wait.h>

#include "ckpt_fixture.h"
#include "test.h"

static char *g_dir;
static char g_grpo[2048];

/* Runs `grpo inspect ARG`; returns the exit status, output in out/err files. */
static int inspect(const char *arg, char **out, char **errtext) {
  char cmd[8192], o[1100], e[1100];
  snprintf(o, sizeof o, "%s/stdout.txt", g_dir);
  snprintf(e, sizeof e, "%s/stderr.txt", g_dir);
  snprintf(cmd, sizeof cmd, "'%s' inspect '%s' >'%s' 2>'%s'", g_grpo, arg, o, e);
  int status = system(cmd);
  size_t n;
  unsigned char *so = slurp(o, &n);
  *out = so ? realloc(so, n + 1) : calloc(1, 1);
  if (so) (*out)[n] = '\0';
  unsigned char *se = slurp(e, &n);
  *errtext = se ? realloc(se, n + 1) : calloc(1, 1);
  if (se) (*errtext)[n] = '\0';
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(inspect_prints_summary) {
  grpo_error err;
  char path[1100], *out, *errtext;
  snprintf(path, sizeof path, "%s/sample.h5", g_dir);
  CHECK_EQ_INT(write_sample(path, &err), 0);
  CHECK_EQ_INT(inspect(path, &out, &errtext), 0);
  CHECK(strstr(out, "step            7\n") != NULL);
  CHECK(strstr(out, "format_version  1\n") != NULL);
  CHECK(strstr(out, "model.embed_tokens.weight") && strstr(out, "[8, 4]") && strstr(out, "bfloat16"));
  CHECK(strstr(out, "norm 2.5\n") != NULL); /* lm_head.scale = 2.5 */
  CHECK(strstr(out, "optimizer state: present") != NULL);
  CHECK(strstr(out, "data_cursor              123") != NULL);
  CHECK(strstr(out, "config:\n" SAMPLE_CONFIG) != NULL);
  CHECK_STR(errtext, "");
  free(out);
  free(errtext);
}

TEST(inspect_directory_uses_newest) {
  grpo_error err;
  char dir[1100], *out, *errtext;
  snprintf(dir, sizeof dir, "%s/ckpts", g_dir);
  for (int step = 1; step <= 2; step++) {
    ckpt_writer *w;
    float x = (float)step;
    CHECK_EQ_INT(ckpt_writer_begin(&w, dir, step, 2, &err), 0);
    CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "x", CKPT_F32, 0, NULL, &x, &err), 0);
    CHECK_EQ_INT(ckpt_writer_finish(w, &err), 0);
  }
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s/step_00000003.h5.tmp", dir); /* as if a trainer were writing */
  spit(tmp, (const unsigned char *)"partial", 7);
  CHECK_EQ_INT(inspect(dir, &out, &errtext), 0);
  CHECK(strstr(out, "step            2\n") && strstr(out, "step_00000002.h5"));
  CHECK(access(tmp, F_OK) == 0); /* inspect never deletes a live writer's file */
  CHECK(strstr(out, "optimizer state: absent") != NULL);
  CHECK(strstr(out, "config: (none stored)") != NULL);
  free(out);
  free(errtext);
  remove_tree(dir);
}

TEST(inspect_errors_exit_1) {
  char path[1100], *out, *errtext;
  snprintf(path, sizeof path, "%s/missing.h5", g_dir);
  CHECK_EQ_INT(inspect(path, &out, &errtext), 1);
  CHECK(strstr(errtext, "grpo inspect: ") && strstr(errtext, path) && strstr(errtext, "No such file"));
  free(out);
  free(errtext);

  snprintf(path, sizeof path, "%s/text.h5", g_dir);
  spit(path, (const unsigned char *)"hello\n", 6);
  CHECK_EQ_INT(inspect(path, &out, &errtext), 1);
  CHECK(strstr(errtext, path) && strstr(errtext, "not an HDF5 file"));
  free(out);
  free(errtext);

  /* Corrupt: the sample with a byte flipped in its middle. */
  char src[1100];
  snprintf(src, sizeof src, "%s/sample.h5", g_dir);
  size_t n;
  unsigned char *d = slurp(src, &n);
  CHECK(d != NULL);
  if (!d) return;
  d[n / 2] ^= 0xFF;
  snprintf(path, sizeof path, "%s/corrupt.h5", g_dir);
  spit(path, d, n);
  free(d);
  CHECK_EQ_INT(inspect(path, &out, &errtext), 1);
  CHECK(strstr(errtext, path) != NULL);
  CHECK(strstr(errtext, "HDF5") == NULL || strstr(errtext, "(HDF5: ") != NULL); /* no raw HDF5 dump */
  CHECK(strstr(errtext, "HDF5-DIAG") == NULL);
  free(out);
  free(errtext);
}

TEST(inspect_usage) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "'%s' inspect >/dev/null 2>&1", g_grpo);
  int status = system(cmd);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  snprintf(cmd, sizeof cmd, "'%s' inspect --help | grep -q 'usage: grpo inspect CKPT'", g_grpo);
  CHECK_EQ_INT(system(cmd), 0);
}

int main(void) {
  const char *build = getenv("GRPO_BUILD_DIR");
  snprintf(g_grpo, sizeof g_grpo, "%s/cli/grpo", build ? build : "build");
  if (access(g_grpo, X_OK) != 0) {
    fprintf(stderr, "%s not found: build the grpo target first\n", g_grpo);
    return 1;
  }
  g_dir = make_tmpdir();
  if (!g_dir) return 1;
  RUN(inspect_prints_summary);
  RUN(inspect_directory_uses_newest);
  RUN(inspect_errors_exit_1);
  RUN(inspect_usage);
  remove_tree(g_dir);
  free(g_dir);
  return test_summary();
}
