/* Evaluation statistics against hand-computed values: the unbiased pass@k,
 * answer classes by verifier equivalence, maj@k with its tie rule,
 * self-consistency best-of-n, the per-problem speedup average, k lists. */
#include "test.h"
#include "trainer/eval.h"

TEST(pass_at_k_matches_hand_values) {
  /* n = 5, c = 2: pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10;
   * pass@3 = 1 - C(3,3)/C(5,3) = 1 - 1/10; pass@4: n - c < k so 1 */
  CHECK_NEAR(trainer_pass_at_k(5, 2, 1), 0.4, 1e-12);
  CHECK_NEAR(trainer_pass_at_k(5, 2, 2), 0.7, 1e-12);
  CHECK_NEAR(trainer_pass_at_k(5, 2, 3), 0.9, 1e-12);
  CHECK_NEAR(trainer_pass_at_k(5, 2, 4), 1.0, 1e-12);
  CHECK_NEAR(trainer_pass_at_k(5, 0, 3), 0.0, 1e-12);
  CHECK_NEAR(trainer_pass_at_k(5, 5, 1), 1.0, 1e-12);
  /* k > n is k = n */
  CHECK_NEAR(trainer_pass_at_k(3, 1, 10), 1.0, 1e-12);
  /* n = 64, c = 1, k = 8: 1 - C(63,8)/C(64,8) = 8/64 */
  CHECK_NEAR(trainer_pass_at_k(64, 1, 8), 0.125, 1e-12);
  /* large n stays finite: n = 1000, c = 10, k = 100 */
  /* large n stays exact: 1 - C(990,100)/C(1000,100) (Python's math.comb) */
  CHECK_NEAR(trainer_pass_at_k(1000, 10, 100), 0.653072285207994, 1e-12);
}

TEST(answer_classes_group_equivalent_answers) {
  const char *answers[] = {"\\frac{1}{2}", "0.5", "1/2", "2", NULL, "", "2.0", "x+1", "1+x", "\\{1,2\\}", "\\{2,1\\}"};
  int n = (int)(sizeof answers / sizeof answers[0]), cls[16];
  grpo_error err = {0};
  int k = trainer_answer_classes(answers, n, cls, &err);
  CHECK_EQ_INT(k, 4);
  int want[] = {0, 0, 0, 1, -1, -1, 1, 2, 2, 3, 3};
  for (int i = 0; i < n; i++) CHECK_MSG(cls[i] == want[i], "answer %d (%s): class %d, want %d", i,
                                        answers[i] ? answers[i] : "NULL", cls[i], want[i]);
}

static trainer_eval_record rec(int problem, int sample, int cluster, int correct, int tokens, int critical,
                               float lp) {
  trainer_eval_record r = {0};
  r.problem = problem;
  r.sample = sample;
  r.cluster = cluster;
  r.correct = (int8_t)correct;
  r.tokens = tokens;
  r.critical = critical;
  r.mean_logprob = lp;
  r.prm_score = NAN;
  r.views = 1u << TRAINER_EVAL_SAMPLES;
  return r;
}

TEST(summary_matches_hand_calculation) {
  /* problem 0: classes 0 1 1 0 2, only class 1 is correct (c = 2).
   *   maj@1: class 0 -> wrong; maj@3: class 1 has 2 of 3 -> right;
   *   maj@5: classes 0 and 1 tie at 2, class 0 came first -> wrong.
   *   self-consistency: the tie is broken by mean logprob; the best is
   *   sample 2 (-0.1, class 1) -> right.
   *   speedup: tokens / critical = 2, 2, 2, 2, 1 -> 1.8
   * problem 1: no answers at all (c = 0): every vote is wrong.
   *   speedup: 1 for each sample -> 1.0
   * problem 2: classes 0 0 0 0 0, all correct.  speedup 4 -> 4.0
   * Records are given out of order on purpose. */
  trainer_eval_record r[] = {
      rec(0, 4, 2, 0, 10, 10, -2.0f), rec(0, 0, 0, 0, 20, 10, -0.5f), rec(0, 1, 1, 1, 20, 10, -0.3f),
      rec(0, 2, 1, 1, 20, 10, -0.1f), rec(0, 3, 0, 0, 20, 10, -0.2f), rec(1, 0, -1, 0, 8, 8, -1.0f),
      rec(1, 1, -1, 0, 8, 8, -1.0f),  rec(1, 2, -1, 0, 8, 8, -1.0f),  rec(1, 3, -1, 0, 8, 8, -1.0f),
      rec(1, 4, -1, 0, 8, 8, -1.0f),  rec(2, 0, 0, 1, 40, 10, -1.0f), rec(2, 1, 0, 1, 40, 10, -1.0f),
      rec(2, 2, 0, 1, 40, 10, -1.0f), rec(2, 3, 0, 1, 40, 10, -1.0f), rec(2, 4, 0, 1, 40, 10, -1.0f),
  };
  int ks[] = {1, 3, 5, 8};
  trainer_eval_stats st;
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_eval_summarize(r, sizeof r / sizeof r[0], 3, ks, 4, 0, &st, &err), 0);
  CHECK_EQ_INT(st.problems, 3);
  CHECK_EQ_INT(st.min_samples, 5);
  CHECK_EQ_INT(st.n_ks, 3); /* k = 8 > 5 samples is dropped */
  CHECK_NEAR(st.pass1, (0.4 + 0 + 1) / 3, 1e-12);
  CHECK_NEAR(st.pass_at_k[1], (trainer_pass_at_k(5, 2, 3) + 0 + 1) / 3, 1e-12);
  CHECK_NEAR(st.maj_at_k[0], 1.0 / 3, 1e-12); /* only problem 2 */
  CHECK_NEAR(st.maj_at_k[1], 2.0 / 3, 1e-12);
  CHECK_NEAR(st.maj_at_k[2], 1.0 / 3, 1e-12);
  CHECK_NEAR(st.bon_oracle, 2.0 / 3, 1e-12);
  CHECK_NEAR(st.bon_self_consistency, 2.0 / 3, 1e-12);
  CHECK_NEAR(st.bon_prm, -1, 0);
  CHECK_NEAR(st.speedup, (1.8 + 1.0 + 4.0) / 3, 1e-12);
  CHECK_NEAR(st.mean_tokens, (90.0 + 40 + 200) / 15, 1e-12);
  CHECK_NEAR(st.mean_critical, (50.0 + 40 + 50) / 15, 1e-12);
  CHECK_NEAR(st.answered, 10.0 / 15, 1e-12);

  /* maj over all samples: problem 0 ties 2-2 -> class 0 first -> wrong */
  CHECK_NEAR(st.maj_all, 1.0 / 3, 1e-12);
  CHECK_EQ_INT((int)st.total_samples, 15);
  CHECK_NEAR(st.total_tokens, 330, 1e-9);

  /* a problem without records counts as wrong; records of another view are ignored */
  trainer_eval_record r2[] = {rec(0, 0, 0, 1, 5, 5, 0), rec(0, 0, 0, 0, 5, 5, 0)};
  r2[1].views = 1u << 1;
  CHECK_EQ_INT(trainer_eval_summarize(r2, 2, 2, ks, 1, 0, &st, &err), 0);
  CHECK_NEAR(st.pass1, 0.5, 1e-12);
  CHECK_EQ_INT(st.n_ks, 0); /* problem 1 has no samples */
  CHECK_EQ_INT(trainer_eval_summarize(r2, 2, 2, ks, 1, 1, &st, &err), 0);
  CHECK_NEAR(st.pass1, 0.0, 1e-12);
  /* a record in two views counts in both */
  r2[1].views |= 1u << TRAINER_EVAL_ADAPTIVE;
  r2[0].views |= 1u << TRAINER_EVAL_ADAPTIVE;
  CHECK_EQ_INT(trainer_eval_summarize(r2, 2, 1, ks, 1, TRAINER_EVAL_ADAPTIVE, &st, &err), 0);
  CHECK_EQ_INT(st.max_samples, 2);
  CHECK_NEAR(st.pass1, 0.5, 1e-12);

  /* PRM best-of-n: the highest score's correctness */
  trainer_eval_record r3[] = {rec(0, 0, 0, 0, 5, 5, 0), rec(0, 1, 1, 1, 5, 5, 0)};
  r3[0].prm_score = 0.2f;
  r3[1].prm_score = 0.9f;
  CHECK_EQ_INT(trainer_eval_summarize(r3, 2, 1, ks, 1, 0, &st, &err), 0);
  CHECK_NEAR(st.bon_prm, 1.0, 1e-12);

  trainer_eval_record bad = rec(7, 0, 0, 1, 1, 1, 0);
  CHECK(trainer_eval_summarize(&bad, 1, 2, ks, 1, 0, &st, &err) != 0);
  CHECK(strstr(err.msg, "problem 7") != NULL);
}

TEST(k_lists_parse_sorted_and_unique) {
  int ks[8], n;
  grpo_error err = {0};
  CHECK_EQ_INT(trainer_eval_parse_ks("4,1,4, 16", ks, 8, &n, &err), 0);
  CHECK_EQ_INT(n, 3);
  CHECK(ks[0] == 1 && ks[1] == 4 && ks[2] == 16);
  CHECK(trainer_eval_parse_ks("0", ks, 8, &n, &err) != 0);
  CHECK(trainer_eval_parse_ks("1,x", ks, 8, &n, &err) != 0);
  CHECK(strstr(err.msg, "1,x") != NULL);
  CHECK(trainer_eval_parse_ks("1,2,3", ks, 2, &n, &err) != 0);
}

int main(void) {
  RUN(pass_at_k_matches_hand_values);
  RUN(answer_classes_group_equivalent_answers);
  RUN(summary_matches_hand_calculation);
  RUN(k_lists_parse_sorted_and_unique);
  return test_summary();
}
