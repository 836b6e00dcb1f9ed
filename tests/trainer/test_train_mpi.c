/* Colocated GRPO on 2 ranks equals 1 rank: rank 0 then trains alone on
 * MPI_COMM_SELF, and the final weights agree (up to the order of float sums
 * in the gradient all-reduce). Also checks that the reward rises on 2 ranks. */
#include <math.h>
#include <mpi.h>
#include <unistd.h>

#include "train_common.h"

static int g_rank;
static char g_tmp[256];

TEST(two_ranks_equal_one) {
  char two[512], one[512], o2[600], o1[600];
  snprintf(two, sizeof two, "%s/two", g_tmp);
  snprintf(one, sizeof one, "%s/one", g_tmp);
  snprintf(o2, sizeof o2, "output_dir=%s", two);
  snprintf(o1, sizeof o1, "output_dir=%s", one);
  grpo_error err = {0};
  grpo_config cfg;
  const char *e2[] = {o2, "trainer.max_steps=3", NULL};
  CHECK_EQ_INT(train_config(&cfg, e2, &err), GRPO_OK);
  trainer_summary s;
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, &s, &err);
  CHECK_MSG(rc == GRPO_OK, "rank %d: %s", g_rank, err.msg);
  grpo_config_free(&cfg);
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank != 0) return;
  const char *e1[] = {o1, "trainer.max_steps=3", NULL};
  CHECK_EQ_INT(train_config(&cfg, e1, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_SELF, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  double worst = max_weight_diff(two, one);
  CHECK_MSG(worst >= 0 && worst < 1e-4, "largest weight difference %g", worst);
}

TEST(reward_rises_on_two_ranks) {
  char dir[512], od[600];
  snprintf(dir, sizeof dir, "%s/rises", g_tmp);
  snprintf(od, sizeof od, "output_dir=%s", dir);
  grpo_error err = {0};
  grpo_config cfg;
  const char *e[] = {od, "trainer.max_steps=16", NULL};
  CHECK_EQ_INT(train_config(&cfg, e, &err), GRPO_OK);
  trainer_summary s;
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, &s, &err), GRPO_OK);
  CHECK_MSG(s.reward_last > s.reward_first + 0.2, "reward %g -> %g", s.reward_first, s.reward_last);
  grpo_config_free(&cfg);
  /* the same with 1 trainer + 1 rollout worker, one step off-policy */
  char dd[512], odd[600];
  snprintf(dd, sizeof dd, "%s/rises_disagg", g_tmp);
  snprintf(odd, sizeof odd, "output_dir=%s", dd);
  const char *ed[] = {odd, "trainer.max_steps=16", "distributed.mode=disaggregated", "distributed.rollout_ranks=1",
                      "distributed.off_policy_steps=1", NULL};
  CHECK_EQ_INT(train_config(&cfg, ed, &err), GRPO_OK);
  trainer_summary sd;
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, &sd, &err), GRPO_OK);
  if (g_rank == 0)
    CHECK_MSG(sd.reward_last > sd.reward_first + 0.2, "disaggregated: reward %g -> %g", sd.reward_first, sd.reward_last);
  grpo_config_free(&cfg);
  MPI_Barrier(MPI_COMM_WORLD);
  /* the gradient all-reduce is timed: timing/sync > 0 and within the step */
  if (g_rank == 0) {
    double sync = last_metric(dir, "timing/sync"), step = last_metric(dir, "step_time");
    CHECK_MSG(sync > 0 && sync < step, "timing/sync %g of step_time %g", sync, step);
  }
}

/* 1 trainer + 1 rollout worker trains the same weights as 1 colocated rank:
 * the worker samples with the broadcast weights and the keyed RNG. */
static void disaggregated_vs_colocated(const char *name, const char *extra, const char *extra2) {
  char dis[512], col[512], od[600], oc[600];
  snprintf(dis, sizeof dis, "%s/disagg_%s", g_tmp, name);
  snprintf(col, sizeof col, "%s/coloc_%s", g_tmp, name);
  snprintf(od, sizeof od, "output_dir=%s", dis);
  snprintf(oc, sizeof oc, "output_dir=%s", col);
  grpo_error err = {0};
  grpo_config cfg;
  const char *e2[] = {od, "trainer.max_steps=3", "distributed.mode=disaggregated",
                      "distributed.rollout_ranks=1", extra, extra2, NULL};
  CHECK_EQ_INT(train_config(&cfg, e2, &err), GRPO_OK);
  trainer_summary s;
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, &s, &err);
  CHECK_MSG(rc == GRPO_OK, "rank %d: %s", g_rank, err.msg);
  grpo_config_free(&cfg);
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank != 0) return;
  CHECK_EQ_INT(s.steps_done, 3);
  const char *e1[] = {oc, "trainer.max_steps=3", extra, extra2, NULL};
  CHECK_EQ_INT(train_config(&cfg, e1, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_SELF, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  double worst = max_weight_diff(dis, col);
  CHECK_MSG(worst >= 0 && worst < 1e-5, "%s: largest weight difference %g", name, worst);
  if (extra2 && strstr(extra2, "dynamic")) /* dynamic sampling: it took more than one round */
    CHECK_MSG(max_metric(dis, "dynamic_sampling/rounds") > 1, "%s: every step took one generation round", name);
}

TEST(disaggregated_equals_colocated) { disaggregated_vs_colocated("plain", NULL, NULL); }

/* budget forcing on the workers: the injected tokens' mask travels back, so
 * the trainer leaves them out of the loss as a colocated run does */
TEST(disaggregated_budget_forcing_equals_colocated) {
  disaggregated_vs_colocated("budget", "rollout.max_thinking_tokens=4", NULL);
}

/* P-GRPO: workers generate ThreadWeaver trajectories and score them (the
 * acceleration reward counts tokens of the joined response), the trainer
 * receives whole trajectories and trains them trie-packed */
TEST(disaggregated_pgrpo_equals_colocated) {
  disaggregated_vs_colocated("pgrpo", "rollout.parallel_threads=true",
                             "reward.functions=[{name: length, options: {mode: target, target_length: 4}}, "
                             "{name: pgrpo_acceleration}]");
}

/* adaptive group sizes over the workers: a pilot round, the same sizes on
 * every trainer, the rest of each group keyed after its pilot */
TEST(disaggregated_adaptive_group_size_equals_colocated) {
  disaggregated_vs_colocated("adaptive", "rollout.adaptive_group_size=true", "rollout.adaptive_pilot=2");
}

/* DAPO dynamic sampling over worker rounds (a reward under which some
 * groups come back all equal): the same groups are kept */
TEST(disaggregated_dynamic_sampling_equals_colocated) {
  disaggregated_vs_colocated("dynamic", "reward.functions=[{name: length, options: {mode: target, target_length: 23, tolerance: 3}}]",
                             "trainer.dynamic_sampling=true");
}

/* distributed.off_policy_steps=1 (1 trainer + 1 worker): the step after a
 * checkpoint is on-policy, so a run stopped at a checkpoint and resumed ends
 * with the same weights as an uninterrupted one; and the lag is real: the
 * weights differ from an on-policy run's. */
static void disagg_run(const char *dir, const char *steps, const char *resume, int off) {
  char od[600];
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *e[] = {od, steps, "distributed.mode=disaggregated", "distributed.rollout_ranks=1",
                     "checkpoint.every_steps=2", resume, off ? "distributed.off_policy_steps=1" : NULL, NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, e, &err), GRPO_OK);
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "rank %d: %s", g_rank, err.msg);
  grpo_config_free(&cfg);
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(off_policy_resumes_exactly) {
  char a[512], b[512], c[512];
  snprintf(a, sizeof a, "%s/offp_straight", g_tmp);
  snprintf(b, sizeof b, "%s/offp_resumed", g_tmp);
  snprintf(c, sizeof c, "%s/onp", g_tmp);
  disagg_run(a, "trainer.max_steps=6", "checkpoint.resume=never", 1);
  disagg_run(b, "trainer.max_steps=4", "checkpoint.resume=never", 1);
  disagg_run(b, "trainer.max_steps=6", "checkpoint.resume=auto", 1);
  disagg_run(c, "trainer.max_steps=6", "checkpoint.resume=never", 0);
  if (g_rank != 0) return;
  CHECK_NEAR(max_weight_diff(a, b), 0.0, 0.0);
  CHECK_MSG(max_weight_diff(a, c) > 1e-6, "off-policy and on-policy runs ended with the same weights");
}

/* logging.log_completions on 2 ranks: every trained completion of the step
 * (8 prompts x 8) reaches rank 0's completions.jsonl, with its rewards and
 * advantage; a group's advantages sum to 0 (scale_rewards group). */
TEST(completions_are_logged_from_every_rank) {
  char dir[512], od[600];
  snprintf(dir, sizeof dir, "%s/logged", g_tmp);
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *e[] = {od, "trainer.max_steps=1", "logging.log_completions=true", "logging.num_completions_to_print=2",
                     NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, e, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank != 0) return;
  char path[700], line[16384];
  snprintf(path, sizeof path, "%s/completions.jsonl", dir);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  int lines = 0, with_reward = 0;
  double adv_sum = 0;
  while (f && fgets(line, sizeof line, f)) {
    lines++;
    with_reward += strstr(line, "\"rewards\":{\"length\":") != NULL && strstr(line, "\"step\":1,") != NULL;
    const char *a = strstr(line, "\"advantage\":");
    if (a) adv_sum += atof(a + 12);
  }
  if (f) fclose(f);
  CHECK_EQ_INT(lines, 64);
  CHECK_EQ_INT(with_reward, 64);
  CHECK_NEAR(adv_sum, 0.0, 1e-3);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/grpo_train_mpi_%d", pid);
  RUN(two_ranks_equal_one);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(reward_rises_on_two_ranks);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(disaggregated_equals_colocated);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(disaggregated_budget_forcing_equals_colocated);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(disaggregated_dynamic_sampling_equals_colocated);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(disaggregated_pgrpo_equals_colocated);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(disaggregated_adaptive_group_size_equals_colocated);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(off_policy_resumes_exactly);
  MPI_Barrier(MPI_COMM_WORLD);
  RUN(completions_are_logged_from_every_rank);
  int failed = test_cases_failed_, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_tmp);
    test_summary();
  }
  MPI_Finalize();
  return any ? 1 : 0;
}
