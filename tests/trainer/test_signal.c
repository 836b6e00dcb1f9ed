/* A batch scheduler's SIGUSR1 (or SIGTERM) makes `grpo train` write a
 * checkpoint at the next step boundary and exit 0; a rerun with
 * checkpoint.resume=auto continues from it. Runs the real binary. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "test.h"

static char g_dir[256], g_grpo[512];

static pid_t start_train(const char *max_steps) {
  pid_t pid = fork();
  if (pid == 0) {
    char od[400], ms[64];
    snprintf(od, sizeof od, "output_dir=%s", g_dir);
    snprintf(ms, sizeof ms, "trainer.max_steps=%s", max_steps);
    execl(g_grpo, g_grpo, "train", "tests/trainer/data/tiny.yaml", od, ms, (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int metrics_lines(void) {
  char path[400];
  snprintf(path, sizeof path, "%s/metrics.jsonl", g_dir);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int n = 0, c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void signal_stops_and_resumes(int sig) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  CHECK(system(cmd) == 0);
  pid_t pid = start_train("100000");
  /* wait for two steps, then signal */
  for (int i = 0; i < 6000 && metrics_lines() < 2; i++) nap_ms(10);
  CHECK(metrics_lines() >= 2);
  kill(pid, sig);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
  char ck[400], path[600];
  snprintf(ck, sizeof ck, "%s/checkpoints", g_dir);
  int64_t step = -1;
  grpo_error err = {0};
  CHECK_EQ_INT(ckpt_resolve(ck, CKPT_RESOLVE_VERIFY_ALL, path, sizeof path, &step, &err), GRPO_OK);
  CHECK(step >= 2 && step < 100000);
  /* the rerun continues from that step to a target just past it */
  char target[32];
  snprintf(target, sizeof target, "%lld", (long long)step + 2);
  pid = start_train(target);
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  int64_t step2 = -1;
  CHECK_EQ_INT(ckpt_resolve(ck, CKPT_RESOLVE_VERIFY_ALL, path, sizeof path, &step2, &err), GRPO_OK);
  CHECK_EQ_INT(step2, step + 2);
}

TEST(sigusr1) { signal_stops_and_resumes(SIGUSR1); }
TEST(sigterm) { signal_stops_and_resumes(SIGTERM); }

int main(void) {
  const char *b = getenv("GRPO_BUILD_DIR");
  snprintf(g_grpo, sizeof g_grpo, "%s/cli/grpo", b ? b : "build");
  snprintf(g_dir, sizeof g_dir, "/tmp/grpo_signal_test_%d", (int)getpid());
  RUN(sigusr1);
  RUN(sigterm);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd)) return 1;
  return test_summary();
}
