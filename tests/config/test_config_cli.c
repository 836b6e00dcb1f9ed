/* `grpo config` end to end: the built binary ($GRPO_BUILD_DIR/cli/grpo). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "test.h"

static char grpo_bin[1024];

/* Runs a shell command; returns its exit status and fills out with stdout
 * (and stderr when merge). */
static int run(const char *cmd, char *out, size_t size) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, size - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 20];

TEST(markdown_matches_docs) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s config --markdown", grpo_bin);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 0);
  FILE *f = fopen("docs/config.md", "rb");
  CHECK(f != NULL);
  if (!f) return;
  static char doc[1 << 20];
  size_t n = fread(doc, 1, sizeof doc - 1, f);
  doc[n] = '\0';
  fclose(f);
  CHECK_MSG(strcmp(out, doc) == 0, "grpo config --markdown differs from docs/config.md");
}

/* grpo version names the build and what it finds: the OpenBLAS core and
 * vector level always, the CUDA libraries and the device count in a CUDA
 * build. */
TEST(version_names_the_build) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s version", grpo_bin);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 0);
  CHECK(strncmp(out, "grpo ", 5) == 0);
  CHECK(strstr(out, "\ncpu:     OpenBLAS") != NULL);
  CHECK(strstr(out, "(core ") != NULL && strstr(out, " loops, ") != NULL);
#ifdef GRPO_HAVE_CUDA
  CHECK(strstr(out, "build:   CUDA backend (sm ") != NULL);
  CHECK(strstr(out, "\ncuda:    runtime ") != NULL);
  CHECK(strstr(out, "\ndevices: ") != NULL);
#else
  CHECK(strstr(out, "build:   CPU only") != NULL);
#endif
}

TEST(defaults_then_validate) {
  char cmd[2048];
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char path[512];
  snprintf(path, sizeof path, "%s/grpo_cli_defaults_%d.yaml", dir, (int)getpid());
  snprintf(cmd, sizeof cmd, "%s config --defaults > %s", grpo_bin, path);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 0);
  snprintf(cmd, sizeof cmd, "%s config %s trainer.beta=0.04 run_name=cli", grpo_bin, path);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 0);
  CHECK(strstr(out, "run_name: cli\noutput_dir: runs/cli\n") != NULL);
  CHECK(strstr(out, "\n  beta: 0.04\n") != NULL);
  remove(path);
}

TEST(errors_exit_1_with_location) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s config tests/config/bad/unknown_key.yaml 2>&1", grpo_bin);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 1);
  CHECK_STR(out, "grpo config: tests/config/bad/unknown_key.yaml:3:3: unknown key 'trainer.bta' "
                 "(did you mean 'trainer.beta'?)\n");
  snprintf(cmd, sizeof cmd, "%s config tests/config/good/full.yaml optim.lr=abc 2>&1", grpo_bin);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 1);
  CHECK(strstr(out, "override 'optim.lr=abc': optim.lr: expected a number") != NULL);
  snprintf(cmd, sizeof cmd, "%s config tests/config/good/full.yaml notanoverride 2>&1", grpo_bin);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 2);
  snprintf(cmd, sizeof cmd, "%s config --help", grpo_bin);
  CHECK_EQ_INT(run(cmd, out, sizeof out), 0);
  CHECK(strstr(out, "--defaults") != NULL);
}

int main(void) {
  const char *build = getenv("GRPO_BUILD_DIR");
  snprintf(grpo_bin, sizeof grpo_bin, "%s/cli/grpo", build ? build : "build");
  RUN(markdown_matches_docs);
  RUN(version_names_the_build);
  RUN(defaults_then_validate);
  RUN(errors_exit_1_with_location);
  return test_summary();
}
