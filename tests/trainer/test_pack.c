/* trainer/pack: causal packing, and trie packing on the worked example of
 * ThreadWeaver's collator (shared/reference/pgrpo.md, 8.3). */
#include "test.h"
#include "trainer/pack.h"

enum { P = 100, O = 101, o = 102, o_ = 103, O_ = 104, T = 105, T_ = 106, P_ = 107 };

/* The attention rule of the model: i sees j iff tin[j] <= tin[i] <= tout[j]. */
static int sees(const trainer_packed *p, int i, int j) {
  return p->tin[j] <= p->tin[i] && p->tin[i] <= p->tout[j];
}

TEST(causal_packing_of_three_sequences) {
  trainer_packed p;
  CHECK_EQ_INT(trainer_packed_init(&p, 64, 64, TRAINER_LABELS_PARENT, NULL), GRPO_OK);
  int32_t a[4] = {5, 6, 7, 8}, b[2] = {9, 10}, c[3] = {11, 12, 13};
  uint8_t ma[4] = {0, 0, 1, 1}, mb[2] = {0, 1}, mc[3] = {0, 1, 1};
  CHECK_EQ_INT(trainer_pack_sequence(&p, a, 4, ma, 0, NULL), GRPO_OK);
  CHECK_EQ_INT(trainer_pack_sequence(&p, b, 2, mb, 1, NULL), GRPO_OK);
  CHECK_EQ_INT(trainer_pack_sequence(&p, c, 3, mc, 2, NULL), GRPO_OK);
  CHECK_EQ_INT(p.n_tokens, 9);
  int32_t want_pos[9] = {0, 1, 2, 3, 0, 1, 0, 1, 2};
  for (int i = 0; i < 9; i++) CHECK_EQ_INT(p.pos[i], want_pos[i]);
  /* causal within a sequence, nothing across sequences */
  for (int i = 0; i < 9; i++)
    for (int j = 0; j < 9; j++) {
      int same = (i < 4) == (j < 4) && (i >= 4 && i < 6) == (j >= 4 && j < 6);
      CHECK_EQ_INT(sees(&p, i, j), same && j <= i);
    }
  int32_t want_row[5] = {1, 2, 4, 6, 7}, want_tgt[5] = {7, 8, 10, 12, 13}, want_seq[5] = {0, 0, 1, 2, 2};
  CHECK_EQ_INT(p.n_pred, 5);
  for (int k = 0; k < 5; k++) {
    CHECK_EQ_INT(p.pred_row[k], want_row[k]);
    CHECK_EQ_INT(p.pred_target[k], want_tgt[k]);
    CHECK_EQ_INT(p.pred_seq[k], want_seq[k]);
  }
  /* a sequence that does not fit leaves the batch untouched */
  int32_t big[60];
  for (int i = 0; i < 60; i++) big[i] = i;
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_pack_sequence(&p, big, 60, NULL, 3, &err), GRPO_EBUDGET);
  CHECK_EQ_INT(p.n_tokens, 9);
  CHECK_EQ_INT(p.n_pred, 5);
  uint8_t first[2] = {1, 1};
  CHECK_EQ_INT(trainer_pack_sequence(&p, b, 2, first, 4, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "first token") != NULL);
  trainer_packed_free(&p);
}

/* input : 1 2 3 P O o 4 /o o 5 /o /O 9 T 10 11 /T T 20 21 22 /T /P 30 31 */
static const int32_t COMBINED[25] = {1, 2, 3, P, O, o, 4, o_, o, 5, o_, O_, 9,
                                     T, 10, 11, T_, T, 20, 21, 22, T_, P_, 30, 31};
static const int32_t BRANCH1[17] = {1, 2, 3, P, O, o, 4, o_, o, 5, o_, O_, 9, T, 10, 11, T_};
static const int32_t BRANCH2[18] = {1, 2, 3, P, O, o, 4, o_, o, 5, o_, O_, 9, T, 20, 21, 22, T_};

static void pack_example(trainer_packed *p, trainer_trie_labels labels) {
  CHECK_EQ_INT(trainer_packed_init(p, 64, 64, labels, NULL), GRPO_OK);
  /* Trained units: everything after the prompt in the combined view except
   * thread 2 (trained in its branch, where it was generated); thread 1 is
   * marked in both views and shares its nodes. */
  uint8_t m_comb[25] = {0}, m_b1[17] = {0}, m_b2[18] = {0};
  for (int t = 3; t < 25; t++) m_comb[t] = !(t >= 18 && t <= 21);
  for (int t = 14; t < 17; t++) m_b1[t] = 1;
  for (int t = 14; t < 18; t++) m_b2[t] = 1;
  const int32_t *seqs[3] = {COMBINED, BRANCH1, BRANCH2};
  int lens[3] = {25, 17, 18};
  const uint8_t *masks[3] = {m_comb, m_b1, m_b2};
  CHECK_EQ_INT(trainer_pack_trajectory(p, seqs, lens, masks, 3, 7, NULL), GRPO_OK);
}

TEST(trie_packing_worked_example) {
  trainer_packed p;
  pack_example(&p, TRAINER_LABELS_PARENT);
  CHECK_EQ_INT(p.n_tokens, 29);
  for (int i = 0; i < 25; i++) {
    CHECK_EQ_INT(p.ids[i], COMBINED[i]);
    CHECK_EQ_INT(p.pos[i], i);
  }
  int32_t tail[4] = {20, 21, 22, T_};
  for (int i = 0; i < 4; i++) {
    CHECK_EQ_INT(p.ids[25 + i], tail[i]);
    CHECK_EQ_INT(p.pos[25 + i], 14 + i); /* the positions it had at inference */
  }
  CHECK_EQ_INT(p.tout[0], 28);
  CHECK_EQ_INT(p.tout[13], 28);
  CHECK_EQ_INT(p.tout[14], 24);
  /* the copy attends to indices 0-13 and its own earlier tokens only */
  for (int j = 0; j < 29; j++) CHECK_EQ_INT(sees(&p, 25, j), j <= 13 || j == 25);
  CHECK(sees(&p, 28, 26) && !sees(&p, 28, 20));
  /* inside the combined part, thread-2 tokens see thread 1 (the joined view) */
  CHECK(sees(&p, 19, 15));
  /* each trained token once; the copy of 20 is predicted from T (row 13) */
  CHECK_EQ_INT(p.n_pred, 22 - 4 + 4);
  int found = 0;
  for (int k = 0; k < p.n_pred; k++) {
    CHECK_EQ_INT(p.pred_seq[k], 7);
    if (p.pred_row[k] == 13 && p.pred_target[k] == 20) found++;
    if (p.pred_target[k] == 20) CHECK_EQ_INT(p.pred_row[k], 13);
    CHECK(p.pred_row[k] >= 0 && p.pred_row[k] < p.n_tokens);
  }
  CHECK_EQ_INT(found, 1);
  trainer_packed_free(&p);
}

TEST(shifted_labels_parity_switch) {
  trainer_packed p;
  pack_example(&p, TRAINER_LABELS_SHIFTED);
  for (int k = 0; k < p.n_pred; k++)
    if (p.pred_target[k] == 20) CHECK_EQ_INT(p.pred_row[k], 24); /* the collator's wrong logit */
  trainer_packed_free(&p);
}

TEST(bad_trajectories) {
  trainer_packed p;
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_packed_init(&p, 8, 8, TRAINER_LABELS_PARENT, &err), GRPO_OK);
  int32_t a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
  const int32_t *seqs[2] = {a, b};
  int lens[2] = {3, 3};
  CHECK_EQ_INT(trainer_pack_trajectory(&p, seqs, lens, NULL, 2, 0, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "shared root") != NULL);
  CHECK_EQ_INT(p.n_tokens, 0);
  CHECK_EQ_INT(trainer_packed_init(&p, 0, 8, TRAINER_LABELS_PARENT, &err), GRPO_EINVAL);
}

int main(void) {
  RUN(causal_packing_of_three_sequences);
  RUN(trie_packing_worked_example);
  RUN(shifted_labels_parity_switch);
  RUN(bad_trajectories);
  return test_summary();
}
