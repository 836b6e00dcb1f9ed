/* Crash safety of checkpoint publishing: a child process writes ~4 MB
 * checkpoints in a loop and is SIGKILLed at random (seeded) moments, many
 * times. After every kill:
 *   - every step_N.h5 in the directory opens and holds exactly step N's data
 *     (a partial file never appears under a final name);
 *   - `latest`, when present, names such a file;
 *   - ckpt_resolve() finds a checkpoint at least as new as the one found after
 *     the previous kill, with the right contents, and removes stale *.tmp.
 * A negative control runs the same checker against a naive writer (final name
 * written in place, `latest` rewritten in place) and requires it to catch a
 * violation: the checker itself can fail. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include "ckpt_fixture.h"
#include "core/log.h"
#include "core/philox.h"
#include "test.h"

#define ROWS 512
#define COLS 1024
#define OPT_ROWS 128
#define KEEP 3

typedef struct bufs {
  float *embed, *m, *v;
  uint16_t *up;
} bufs;

/* Every value is a function of the step, so any file can be checked alone. */
static void fill(bufs *b, int64_t step) {
  for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
    b->embed[i] = (float)(step * 1000 + (int64_t)(i % 4093)); /* exact in f32 */
    b->up[i] = (uint16_t)(step * 31 + (int64_t)i);
  }
  for (size_t i = 0; i < (size_t)OPT_ROWS * COLS; i++) {
    b->m[i] = b->embed[i] * 0.5f;
    b->v[i] = b->embed[i] * 0.25f;
  }
}

static int bufs_alloc(bufs *b) {
  b->embed = malloc(sizeof(float) * ROWS * COLS);
  b->up = malloc(sizeof(uint16_t) * ROWS * COLS);
  b->m = malloc(sizeof(float) * OPT_ROWS * COLS);
  b->v = malloc(sizeof(float) * OPT_ROWS * COLS);
  return b->embed && b->up && b->m && b->v ? 0 : -1;
}

static void bufs_free(bufs *b) {
  free(b->embed);
  free(b->up);
  free(b->m);
  free(b->v);
}

static int put_all(ckpt_writer *w, const bufs *b, int64_t step, grpo_error *err) {
  const int64_t s_big[2] = {ROWS, COLS}, s_opt[2] = {OPT_ROWS, COLS};
  const uint64_t rng[2] = {(uint64_t)step, ~(uint64_t)step};
  char yaml[64];
  snprintf(yaml, sizeof yaml, "step: %lld\n", (long long)step);
  int rc = 0;
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "model.embed_tokens.weight", CKPT_F32, 2, s_big, b->embed, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "model.layers.0.mlp.up_proj.weight", CKPT_BF16, 2, s_big, b->up, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_OPTIM_M, "model.embed_tokens.weight", CKPT_F32, 2, s_opt, b->m, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_OPTIM_V, "model.embed_tokens.weight", CKPT_F32, 2, s_opt, b->v, err);
  rc |= ckpt_writer_put_rng(w, rng, 2, err);
  rc |= ckpt_writer_put_i64(w, "data_cursor", step * 3, err);
  rc |= ckpt_writer_put_f64(w, "reward_mean", (double)step * 0.25, err);
  rc |= ckpt_writer_put_meta(w, "config_yaml", yaml, err);
  return rc;
}

static int write_real(const char *dir, const bufs *b, int64_t step) {
  grpo_error err;
  ckpt_writer *w;
  if (ckpt_writer_begin(&w, dir, step, KEEP, &err)) return 1;
  if (put_all(w, b, step, &err)) {
    ckpt_writer_abort(w);
    return 1;
  }
  return ckpt_writer_finish(w, &err) ? 1 : 0;
}

/* What the protocol forbids: the final name written in place, `latest`
 * truncated and rewritten. */
static int write_naive(const char *dir, const bufs *b, int64_t step) {
  grpo_error err;
  char name[64], path[2048];
  ckpt_step_filename(step, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ckpt_writer *w;
  if (ckpt_writer_open(&w, path, step, &err)) return 1;
  if (put_all(w, b, step, &err)) {
    ckpt_writer_abort(w);
    return 1;
  }
  if (ckpt_writer_finish(w, &err)) return 1;
  snprintf(path, sizeof path, "%s/latest", dir);
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  fprintf(f, "%s\n", name);
  fclose(f);
  return ckpt_rotate(dir, KEEP, &err) ? 1 : 0;
}

static void child_loop(const char *dir, int64_t first, int naive) {
  bufs b;
  if (bufs_alloc(&b)) _exit(3);
  for (int64_t step = first;; step++) {
    fill(&b, step);
    if ((naive ? write_naive : write_real)(dir, &b, step)) _exit(4);
  }
}

/* 0 when path is a complete checkpoint of `step`; otherwise why not in why. */
static int check_content(const char *path, int64_t step, bufs *want, bufs *got, char *why, size_t cap) {
  grpo_error err;
  grpo_error_clear(&err);
  ckpt_reader *r;
  if (ckpt_reader_open(&r, path, &err)) {
    snprintf(why, cap, "%s", err.msg);
    return 1;
  }
  fill(want, step);
  int bad = ckpt_reader_step(r) != step;
  bad = bad || ckpt_reader_num_tensors(r) != 4;
  bad = bad || ckpt_reader_read_named(r, CKPT_MODEL, "model.embed_tokens.weight", CKPT_F32, got->embed,
                                      (size_t)ROWS * COLS, &err) ||
        memcmp(got->embed, want->embed, sizeof(float) * ROWS * COLS);
  bad = bad || ckpt_reader_read_named(r, CKPT_MODEL, "model.layers.0.mlp.up_proj.weight", CKPT_BF16, got->up,
                                      (size_t)ROWS * COLS, &err) ||
        memcmp(got->up, want->up, sizeof(uint16_t) * ROWS * COLS);
  bad = bad || ckpt_reader_read_named(r, CKPT_OPTIM_M, "model.embed_tokens.weight", CKPT_F32, got->m,
                                      (size_t)OPT_ROWS * COLS, &err) ||
        memcmp(got->m, want->m, sizeof(float) * OPT_ROWS * COLS);
  bad = bad || ckpt_reader_read_named(r, CKPT_OPTIM_V, "model.embed_tokens.weight", CKPT_F32, got->v,
                                      (size_t)OPT_ROWS * COLS, &err) ||
        memcmp(got->v, want->v, sizeof(float) * OPT_ROWS * COLS);
  int64_t cursor = -1;
  double mean = -1;
  size_t nrng = 0;
  const uint64_t *rng = ckpt_reader_rng(r, &nrng);
  bad = bad || ckpt_reader_get_i64(r, "data_cursor", &cursor, &err) || cursor != step * 3;
  bad = bad || ckpt_reader_get_f64(r, "reward_mean", &mean, &err) || mean != (double)step * 0.25;
  bad = bad || nrng != 2 || rng[0] != (uint64_t)step || rng[1] != ~(uint64_t)step;
  char yaml[64];
  snprintf(yaml, sizeof yaml, "step: %lld\n", (long long)step);
  const char *y = ckpt_reader_meta(r, "config_yaml");
  bad = bad || !y || strcmp(y, yaml) != 0;
  if (bad) snprintf(why, cap, "%s: contents differ from step %lld (%s)", path, (long long)step, err.msg);
  ckpt_reader_close(r);
  return bad;
}

static int64_t step_of_name(const char *name) {
  long long s;
  char tail[8];
  if (sscanf(name, "step_%lld.%7s", &s, tail) == 2 && strcmp(tail, "h5") == 0) return s;
  return -1;
}

typedef struct state {
  int64_t published; /* step found by the previous resolve, -1 before any */
  int tmp_seen;      /* kills that left a *.tmp behind (landed mid-write) */
  int violations;
  int quiet;         /* the negative control expects violations: don't print them */
  int64_t good[16];  /* steps whose files passed check_content since the last kill */
  int ngood;
} state;

/* check_content once per file per kill: the same file is often reached as a
 * directory entry, through `latest` and through the resolver. */
static int check_cached(state *st, const char *path, int64_t step, bufs *want, bufs *got, char *why, size_t cap) {
  for (int i = 0; i < st->ngood; i++)
    if (st->good[i] == step) return 0;
  int bad = check_content(path, step, want, got, why, cap);
  if (!bad && st->ngood < 16) st->good[st->ngood++] = step;
  return bad;
}

static void violation(state *st, int iter, const char *fmt, const char *detail) {
  st->violations++;
  if (st->violations <= 5 && !st->quiet) {
    fprintf(stderr, "  kill %d: ", iter);
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
  }
}

static void check_dir(const char *dir, int iter, state *st, bufs *want, bufs *got) {
  char why[1200], path[2048];
  st->ngood = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  int tmp = 0;
  while (d && (e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0) tmp = 1;
    int64_t s = step_of_name(e->d_name);
    if (s < 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (check_cached(st, path, s, want, got, why, sizeof why)) violation(st, iter, "final name holds a bad file: %s", why);
  }
  if (d) closedir(d);
  st->tmp_seen += tmp;

  snprintf(path, sizeof path, "%s/latest", dir);
  size_t n = 0;
  unsigned char *latest = slurp(path, &n);
  if (latest) {
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(n < 100 ? n : 100), (const char *)latest);
    free(latest);
    size_t len = strlen(name);
    int64_t s = len > 0 && name[len - 1] == '\n' ? (name[len - 1] = '\0', step_of_name(name)) : -1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (s < 0)
      violation(st, iter, "latest is partial or garbage: '%s'", name);
    else if (check_cached(st, path, s, want, got, why, sizeof why))
      violation(st, iter, "latest names a bad file: %s", why);
  }

  grpo_error err;
  grpo_log_level old = grpo_log_get_level();
  grpo_log_set_level(GRPO_LOG_ERROR); /* fallbacks warn; the naive writer makes many */
  int64_t step = -1;
  int rc = ckpt_resolve(dir, CKPT_RESOLVE_VERIFY_ALL | CKPT_RESOLVE_CLEAN_TMP, path, sizeof path, &step, &err);
  grpo_log_set_level(old);
  if (rc != GRPO_OK) {
    if (st->published >= 0) violation(st, iter, "published checkpoint lost: %s", err.msg);
  } else {
    if (step < st->published) violation(st, iter, "resolved checkpoint went back in time: %s", path);
    if (check_cached(st, path, step, want, got, why, sizeof why)) violation(st, iter, "resolved a bad file: %s", why);
    st->published = step;
  }
  d = opendir(dir);
  while (d && (e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) violation(st, iter, "stale %s not cleaned", e->d_name);
  }
  if (d) closedir(d);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs `iters` fork/kill rounds; returns the checker's state. */
static state kill_loop(const char *dir, int iters, int naive, double max_delay, uint32_t tag) {
  state st;
  memset(&st, 0, sizeof st);
  st.published = -1;
  st.quiet = naive;
  bufs want, got;
  if (bufs_alloc(&want) || bufs_alloc(&got)) {
    st.violations = 1000;
    return st;
  }
  grpo_rng_stream rs;
  grpo_rng_stream_init(&rs, 20261125, GRPO_RNG_TEST, tag, 0);
  for (int it = 0; it < iters; it++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) child_loop(dir, st.published + 1, naive);
    if (pid < 0) {
      violation(&st, it, "%s", "fork failed");
      break;
    }
    double delay = grpo_rng_stream_unit(&rs) * max_delay;
    struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
      violation(&st, it, "%s", "writer failed on its own (not killed)");
    check_dir(dir, it, &st, &want, &got);
  }
  bufs_free(&want);
  bufs_free(&got);
  return st;
}

static char *g_dir;

TEST(sigkill_never_exposes_partial_checkpoints) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/real", g_dir);
  /* Calibrate: kill delays span about three checkpoint writes. */
  bufs b;
  CHECK(bufs_alloc(&b) == 0);
  fill(&b, 0);
  double t0 = now_s();
  CHECK_EQ_INT(write_real(dir, &b, 0), 0);
  double t_write = now_s() - t0;
  bufs_free(&b);
  double max_delay = 3.0 * t_write;
  if (max_delay > 0.25) max_delay = 0.25;
  state st = kill_loop(dir, 40, 0, max_delay, 1);
  printf("atomic writer: one checkpoint %.1f ms; 40 kills, %d mid-write (a .tmp left), newest step %lld, %d violations\n",
         t_write * 1e3, st.tmp_seen, (long long)st.published, st.violations);
  CHECK_EQ_INT(st.violations, 0);
  CHECK(st.published > 0);
  /* The test only means something if kills land inside writes. */
  CHECK_MSG(st.tmp_seen >= 10, "only %d of 40 kills landed mid-write", st.tmp_seen);
  remove_tree(dir);
}

TEST(checker_catches_a_naive_writer) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/naive", g_dir);
  mkdir(dir, 0777);
  bufs b;
  CHECK(bufs_alloc(&b) == 0);
  fill(&b, 0);
  double t0 = now_s();
  CHECK_EQ_INT(write_naive(dir, &b, 0), 0);
  double t_write = now_s() - t0;
  bufs_free(&b);
  state st = kill_loop(dir, 15, 1, 2.0 * t_write, 2);
  printf("naive writer: 15 kills, %d violations caught\n", st.violations);
  CHECK_MSG(st.violations > 0, "the checker found nothing wrong with in-place writes");
  remove_tree(dir);
}

int main(void) {
  g_dir = make_tmpdir();
  if (!g_dir) return 1;
  RUN(sigkill_never_exposes_partial_checkpoints);
  RUN(checker_catches_a_naive_writer);
  remove_tree(g_dir);
  free(g_dir);
  return test_summary();
}
