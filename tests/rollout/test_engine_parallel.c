/* rollout/engine, P-GRPO mode: a byte-level scripted model that writes a
 * ThreadWeaver block (two outlines, two threads, a conclusion). The engine
 * must fork, decode the threads concurrently, join, and give the same
 * trajectories whatever the slot count. */
#include <stdio.h>

#include "rollout/engine.h"
#include "scripted_policy.h"
#include "test.h"

#define V 128
#define EOS 4

static const char *MAIN_SCRIPT =
    "<Parallel>\n<Outlines>\n<Outline>1: a</Outline>\n<Outline>2: b</Outline>\n</Outlines>";

static int32_t next_byte(const int32_t *seq, int n) {
  static char text[8192];
  int m = n < 8191 ? n : 8191;
  for (int i = 0; i < m; i++) text[i] = (char)seq[i];
  text[m] = 0;
  const char *resp = text + 1; /* after the one-byte prompt */
  const char *par_end = strstr(resp, "</Parallel>");
  const char *thr = NULL;
  for (const char *p = strstr(resp, "\n<Thread>\n"); p; p = strstr(p + 1, "\n<Thread>\n")) thr = p;
  if (par_end) {
    const char *tail = " done.";
    size_t done = strlen(par_end + 11);
    return done < strlen(tail) ? tail[done] : EOS;
  }
  if (thr && !strstr(thr, "</Thread>") && strlen(thr) >= 12) {
    char id = thr[10];
    char script[32];
    snprintf(script, sizeof script, " w%c ok</Thread>", id);
    size_t done = strlen(thr + 12);
    return done < strlen(script) ? script[done] : EOS;
  }
  size_t done = strlen(resp);
  if (strncmp(resp, MAIN_SCRIPT, done) == 0 && done < strlen(MAIN_SCRIPT)) return MAIN_SCRIPT[done];
  return -1;
}

static int byte_encode(void *ctx, const char *text, int32_t *out, int cap) {
  (void)ctx;
  int n = (int)strlen(text);
  if (n > cap) return -1;
  for (int i = 0; i < n; i++) out[i] = (unsigned char)text[i];
  return n;
}

static int byte_piece(void *ctx, int32_t id, char *buf, int cap) {
  (void)ctx;
  (void)cap;
  buf[0] = (char)id;
  return 1;
}

static void run(int n_slots, rollout_tw *trajs, rollout_engine_stats *st) {
  scripted sp;
  rollout_policy pol;
  scripted_init(&sp, &pol, V, n_slots, 512);
  sp.script = next_byte;
  rollout_engine *e;
  CHECK_EQ_INT(rollout_engine_create(&e, &pol, NULL), GRPO_OK);
  rollout_engine_options o = {0};
  rollout_sampling_defaults(&o.sampling);
  o.max_new_tokens = 400;
  o.seed = 5;
  static const int32_t eos[1] = {EOS};
  o.stop_ids = eos;
  o.n_stop_ids = 1;
  o.piece = byte_piece;
  rollout_tw_options two = {.max_threads = 8, .max_rounds = 8, .max_len = 512, .join_close = 1,
                            .encode = byte_encode};
  static const int32_t P0[1] = {'Q'}, P1[1] = {'R'};
  rollout_group groups[2] = {{P0, 1, 3, 0, 0}, {P1, 1, 2, 1, 0}};
  grpo_error err = {0};
  int rc = rollout_engine_generate_parallel(e, &o, &two, groups, 2, trajs, st, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  rollout_engine_free(e);
  scripted_free(&sp);
}

TEST(fork_join_through_the_engine) {
  static rollout_tw a[5], b[5];
  rollout_engine_stats sa, sb;
  run(16, a, &sa);
  run(2, b, &sb); /* one main slot and one thread slot at a time */
  CHECK_EQ_INT(sa.prefills >= 2, 1);
  static char want[2048], got[2048];
  for (int t = 0; t < 5; t++) {
    CHECK(a[t].state == ROLLOUT_TW_DONE && a[t].finish == ROLLOUT_FINISH_EOS);
    snprintf(want, sizeof want,
             "%c%s\n<Thread>\n1: w1 ok</Thread>\n<Thread>\n2: w2 ok</Thread>\n</Parallel> done.\x04",
             t < 3 ? 'Q' : 'R', MAIN_SCRIPT);
    int n = a[t].combined.n;
    for (int i = 0; i < n; i++) got[i] = (char)a[t].combined.ids[i];
    got[n] = 0;
    CHECK_STR(got, want);
    CHECK_EQ_INT(a[t].n_branches, 1);
    CHECK_EQ_INT(a[t].blocks, 1);
    /* identical whatever the slot count */
    CHECK_EQ_INT(b[t].combined.n, n);
    CHECK(memcmp(a[t].combined.ids, b[t].combined.ids, sizeof(int32_t) * (size_t)n) == 0);
    CHECK(memcmp(a[t].combined.logprob, b[t].combined.logprob, sizeof(float) * (size_t)n) == 0);
    CHECK(memcmp(a[t].branches[0].ids, b[t].branches[0].ids, sizeof(int32_t) * (size_t)a[t].branches[0].n) == 0);
    /* generated tokens carry their logprobs (about 0: the script is nearly
     * certain); orchestrator tokens and the prompt carry none */
    for (int i = 0; i < n; i++) {
      float lp = a[t].combined.logprob[i];
      if (a[t].combined.mask[i])
        CHECK(lp <= 0 && lp > -1e-3);
      else
        CHECK(lp == 0.0f);
    }
    rollout_tw_free(&a[t]);
    rollout_tw_free(&b[t]);
  }
}

int main(void) {
  RUN(fork_join_through_the_engine);
  return test_summary();
}
