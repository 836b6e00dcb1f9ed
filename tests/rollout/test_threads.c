/* rollout/threads: the ThreadWeaver fork/join bookkeeping on scripted model
 * outputs, with a byte tokenizer (one id per byte) so every expected
 * sequence can be written as text. */
#include "rollout/threads.h"
#include "test.h"
#include "trainer/pack.h"

static int byte_encode(void *ctx, const char *text, int32_t *out, int cap) {
  (void)ctx;
  int n = (int)strlen(text);
  if (n > cap) return -1;
  for (int i = 0; i < n; i++) out[i] = (unsigned char)text[i];
  return n;
}

static int to_ids(const char *text, int32_t *out) { return byte_encode(NULL, text, out, 1 << 20); }

/* The combined view as text, and its trained part. */
static void view(const rollout_tw_seq *s, int from, char *all, char *trained) {
  int a = 0, b = 0;
  for (int i = from; i < s->n; i++) {
    all[a++] = (char)s->ids[i];
    if (s->mask[i]) trained[b++] = (char)s->ids[i];
  }
  all[a] = trained[b] = 0;
}

static void complete_text(rollout_tw *t, int thread, const char *text, rollout_finish fin) {
  int32_t ids[4096];
  int n = to_ids(text, ids);
  grpo_error err = {0};
  CHECK_EQ_INT(rollout_tw_complete(t, thread, ids, NULL, n, fin, text, &err), GRPO_OK);
}

static rollout_tw_options opts(void) {
  rollout_tw_options o = {.max_threads = 8, .max_rounds = 32, .max_new_tokens = 4000,
                          .max_len = 4096, .join_close = 1, .encode = byte_encode};
  return o;
}

static const char *MAIN1 =
    "plan <Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: mul</Outline>\n"
    "<Outline>2: again</Outline>\n</Outlines>";

TEST(one_block_fork_and_join) {
  rollout_tw t;
  rollout_tw_options o = opts();
  int32_t prompt[1] = {'Q'};
  CHECK_EQ_INT(rollout_tw_init(&t, &o, prompt, 1, NULL), GRPO_OK);
  rollout_tw_request r[8];
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 1);
  CHECK(r[0].thread == -1 && r[0].n_prefix == 1 && r[0].n_suffix == 0);
  CHECK_STR(r[0].stop, "</Outlines>");
  complete_text(&t, -1, MAIN1, ROLLOUT_FINISH_STOP);

  /* two threads (the duplicate id 2 is dropped), both from the same prefix */
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 2);
  const int base = 1 + (int)strlen(MAIN1);
  for (int k = 0; k < 2; k++) {
    CHECK_EQ_INT(r[k].n_prefix, base);
    CHECK(r[k].prefix == t.combined.ids);
    CHECK_STR(r[k].stop, "</Thread>");
    char hdr[32];
    for (int i = 0; i < r[k].n_suffix; i++) hdr[i] = (char)r[k].suffix[i];
    hdr[r[k].n_suffix] = 0;
    CHECK_STR(hdr, k == 0 ? "\n<Thread>\n1:" : "\n<Thread>\n2:");
  }
  /* results may come back in any order */
  complete_text(&t, 1, " 3*4=12</Thread>", ROLLOUT_FINISH_STOP);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 1);
  complete_text(&t, 0, " 1+2=3</Thread>", ROLLOUT_FINISH_STOP);

  /* joined in id order, block closed by the orchestrator */
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 1);
  CHECK(r[0].thread == -1);
  complete_text(&t, -1, " so \\boxed{15}", ROLLOUT_FINISH_EOS);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 0);
  CHECK(t.state == ROLLOUT_TW_DONE && t.finish == ROLLOUT_FINISH_EOS && !t.truncated);

  static char all[8192], trained[8192], want[8192];
  view(&t.combined, 1, all, trained);
  snprintf(want, sizeof want, "%s\n<Thread>\n1: 1+2=3</Thread>\n<Thread>\n2: 3*4=12</Thread>\n</Parallel> so \\boxed{15}", MAIN1);
  CHECK_STR(all, want);
  snprintf(want, sizeof want, "%s 1+2=3</Thread> so \\boxed{15}", MAIN1);
  CHECK_STR(trained, want); /* thread 2 is trained in its branch, headers never */
  CHECK_STR(t.text, all);

  CHECK_EQ_INT(t.n_branches, 1);
  view(&t.branches[0], base, all, trained);
  CHECK_STR(all, "\n<Thread>\n2: 3*4=12</Thread>");
  CHECK_STR(trained, " 3*4=12</Thread>");
  CHECK(memcmp(t.branches[0].ids, t.combined.ids, sizeof(int32_t) * (size_t)base) == 0);

  /* every generated token is trained exactly once after trie packing */
  trainer_packed p;
  CHECK_EQ_INT(trainer_packed_init(&p, 8192, 8192, TRAINER_LABELS_PARENT, NULL), GRPO_OK);
  const int32_t *seqs[2] = {t.combined.ids, t.branches[0].ids};
  int lens[2] = {t.combined.n, t.branches[0].n};
  const uint8_t *masks[2] = {t.combined.mask, t.branches[0].mask};
  CHECK_EQ_INT(trainer_pack_trajectory(&p, seqs, lens, masks, 2, 0, NULL), GRPO_OK);
  CHECK_EQ_INT(p.n_pred, t.generated);
  trainer_packed_free(&p);

  rollout_tw_free(&t);
}

TEST(malformed_and_limits) {
  rollout_tw t;
  rollout_tw_options o = opts();
  int32_t prompt[1] = {'Q'};
  rollout_tw_request r[8];
  /* outlines without ids: decoding goes on in the main sequence */
  rollout_tw_init(&t, &o, prompt, 1, NULL);
  complete_text(&t, -1, "<Parallel><Outlines><Outline>first: x</Outline></Outlines>", ROLLOUT_FINISH_STOP);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 1);
  CHECK(r[0].thread == -1);
  CHECK_EQ_INT(t.blocks, 0);
  rollout_tw_free(&t);

  /* a thread that hits EOS gets its "</Thread>" and ends the trajectory */
  rollout_tw_init(&t, &o, prompt, 1, NULL);
  complete_text(&t, -1, "<Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>", ROLLOUT_FINISH_STOP);
  complete_text(&t, 0, " done</Thread>", ROLLOUT_FINISH_STOP);
  complete_text(&t, 1, " oops", ROLLOUT_FINISH_EOS);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 0);
  CHECK(t.finish == ROLLOUT_FINISH_EOS);
  static char all[4096], trained[4096];
  view(&t.combined, 1, all, trained);
  CHECK(strstr(all, "\n<Thread>\n2: oops</Thread>\n</Parallel>") != NULL);
  rollout_tw_free(&t);

  /* more outline ids than max_threads: the first max_threads are forked */
  o.max_threads = 2;
  rollout_tw_init(&t, &o, prompt, 1, NULL);
  complete_text(&t, -1, "<Outlines><Outline>1:a<Outline>2:b<Outline>3:c<Outline>1.1:d</Outlines>", ROLLOUT_FINISH_STOP);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 2);
  rollout_tw_free(&t);

  /* the token budget ends the trajectory at the join, flagged truncated */
  o = opts();
  o.max_new_tokens = 80;
  rollout_tw_init(&t, &o, prompt, 1, NULL);
  complete_text(&t, -1, "<Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>", ROLLOUT_FINISH_STOP);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 2);
  CHECK_EQ_INT(r[0].max_new, 80 - t.generated);
  complete_text(&t, 0, " aaaaaaaaaaaaaaaaaaaa</Thread>", ROLLOUT_FINISH_STOP);
  complete_text(&t, 1, " bbbbbbbbbbbbbbbbbbbb</Thread>", ROLLOUT_FINISH_STOP);
  CHECK_EQ_INT(rollout_tw_pending(&t, r, 8), 0);
  CHECK(t.truncated && t.finish == ROLLOUT_FINISH_LENGTH);
  rollout_tw_free(&t);

  /* results out of protocol are errors, not crashes */
  grpo_error err = {0};
  rollout_tw_init(&t, &o, prompt, 1, NULL);
  int32_t x = 'x';
  CHECK_EQ_INT(rollout_tw_complete(&t, 3, &x, NULL, 1, ROLLOUT_FINISH_STOP, "x", &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "thread 3") != NULL);
  rollout_tw_free(&t);
  CHECK_EQ_INT(rollout_tw_init(&t, &o, prompt, 0, &err), GRPO_EINVAL);
}

TEST(two_blocks_keep_all_branches) {
  rollout_tw t;
  rollout_tw_options o = opts();
  int32_t prompt[2] = {'Q', ':'};
  rollout_tw_init(&t, &o, prompt, 2, NULL);
  for (int b = 0; b < 2; b++) {
    complete_text(&t, -1, "<Outlines><Outline>1: a</Outline><Outline>2: b</Outline><Outline>3: c</Outline></Outlines>", ROLLOUT_FINISH_STOP);
    complete_text(&t, 2, " c</Thread>", ROLLOUT_FINISH_STOP);
    complete_text(&t, 0, " a</Thread>", ROLLOUT_FINISH_STOP);
    complete_text(&t, 1, " b</Thread>", ROLLOUT_FINISH_STOP);
  }
  complete_text(&t, -1, " end", ROLLOUT_FINISH_EOS);
  CHECK_EQ_INT(t.blocks, 2);
  CHECK_EQ_INT(t.n_branches, 4); /* threads 2 and 3 of each block */
  trainer_packed p;
  trainer_packed_init(&p, 8192, 8192, TRAINER_LABELS_PARENT, NULL);
  const int32_t *seqs[5] = {t.combined.ids};
  int lens[5] = {t.combined.n};
  const uint8_t *masks[5] = {t.combined.mask};
  for (int i = 0; i < 4; i++) {
    seqs[1 + i] = t.branches[i].ids;
    lens[1 + i] = t.branches[i].n;
    masks[1 + i] = t.branches[i].mask;
  }
  CHECK_EQ_INT(trainer_pack_trajectory(&p, seqs, lens, masks, 5, 0, NULL), GRPO_OK);
  CHECK_EQ_INT(p.n_pred, t.generated);
  trainer_packed_free(&p);

  /* shipped between ranks: the same views back, and bytes cut anywhere are
   * an error (never a read past them) */
  size_t nb = rollout_tw_packed_size(&t);
  unsigned char *bytes = malloc(nb);
  rollout_tw_pack(&t, bytes);
  rollout_tw u;
  size_t used = 0;
  CHECK_EQ_INT(rollout_tw_unpack(&u, bytes, nb, &used, NULL), GRPO_OK);
  CHECK(used == nb);
  CHECK(u.n_prompt == t.n_prompt && u.finish == t.finish && u.truncated == t.truncated &&
        u.generated == t.generated && u.state == ROLLOUT_TW_DONE);
  CHECK(u.combined.n == t.combined.n && u.n_branches == t.n_branches && t.n_branches >= 1);
  CHECK(memcmp(u.combined.ids, t.combined.ids, sizeof(int32_t) * (size_t)t.combined.n) == 0);
  CHECK(memcmp(u.combined.mask, t.combined.mask, (size_t)t.combined.n) == 0);
  for (int b = 0; b < t.n_branches && b < u.n_branches; b++) {
    CHECK(u.branches[b].n == t.branches[b].n);
    CHECK(memcmp(u.branches[b].ids, t.branches[b].ids, sizeof(int32_t) * (size_t)t.branches[b].n) == 0);
    CHECK(memcmp(u.branches[b].mask, t.branches[b].mask, (size_t)t.branches[b].n) == 0);
    CHECK(memcmp(u.branches[b].logprob, t.branches[b].logprob, sizeof(float) * (size_t)t.branches[b].n) == 0);
  }
  rollout_tw_free(&u);
  int cut_errors = 0;
  for (size_t cut = 0; cut < nb; cut++) {
    grpo_error err = {0};
    if (rollout_tw_unpack(&u, bytes, cut, NULL, &err) != GRPO_OK) cut_errors++;
    rollout_tw_free(&u);
  }
  CHECK_EQ_INT(cut_errors, (int)nb);
  free(bytes);
  rollout_tw_free(&t);
}

int main(void) {
  RUN(one_block_fork_and_join);
  RUN(malformed_and_limits);
  RUN(two_blocks_keep_all_branches);
  return test_summary();
}
