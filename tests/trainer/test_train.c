/* The GRPO loop end to end on one rank: the reward rises, a resumed run ends
 * with bit-identical weights to an uninterrupted one, and the run directory
 * holds what the docs promise. */
#include <mpi.h>
#include <unistd.h>

#include "train_common.h"
#include "trainer/session.h"

static char g_tmp[256];

static void dir_for(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_tmp, name); }

TEST(reward_rises) {
  char dir[512], od[600];
  dir_for(dir, sizeof dir, "rises");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *extra[] = {od, "trainer.max_steps=16", NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  trainer_summary s;
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, &s, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  CHECK_EQ_INT(s.steps_done, 16);
  CHECK_MSG(s.reward_last > s.reward_first + 0.2, "reward %g -> %g", s.reward_first, s.reward_last);
  /* against the sgemm peak measured at start */
  double mfu = last_metric(dir, "mfu");
  CHECK_MSG(mfu > 0 && mfu <= 1, "mfu %g", mfu);
  CHECK(last_metric(dir, "timing/sync") >= 0); /* present (one rank: next to nothing) */
  char path[700];
  const char *files[] = {"metrics.jsonl", "config.yaml", "summary.json", "checkpoints/latest"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    CHECK_MSG(access(path, R_OK) == 0, "missing %s", path);
  }
  grpo_config_free(&cfg);
}

/* beta: "" (no KL) or "trainer.beta=0.04" (a reference model, which must be
 * the initial policy again after the resume, not the resumed weights). */
static void resume_case(const char *tag, const char *beta) {
  char a[512], b[512], oa[600], ob[600], na[64], nb[64];
  snprintf(na, sizeof na, "straight%s", tag);
  snprintf(nb, sizeof nb, "resumed%s", tag);
  dir_for(a, sizeof a, na);
  dir_for(b, sizeof b, nb);
  snprintf(oa, sizeof oa, "output_dir=%s", a);
  snprintf(ob, sizeof ob, "output_dir=%s", b);
  grpo_error err = {0};
  grpo_config cfg;
  const char *straight[] = {oa, "trainer.max_steps=6", beta, NULL};
  CHECK_EQ_INT(train_config(&cfg, straight, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  /* the same run, killed after step 4 (a checkpoint every 2 steps), then resumed */
  const char *first[] = {ob, "trainer.max_steps=4", "checkpoint.every_steps=2", beta, NULL};
  CHECK_EQ_INT(train_config(&cfg, first, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  const char *second[] = {ob, "trainer.max_steps=6", "checkpoint.every_steps=2", "checkpoint.resume=auto", beta, NULL};
  CHECK_EQ_INT(train_config(&cfg, second, &err), GRPO_OK);
  trainer_summary s;
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, &s, &err), GRPO_OK);
  CHECK_EQ_INT(s.steps_done, 2); /* continued, did not start over */
  CHECK_EQ_INT(s.final_step, 6);
  grpo_config_free(&cfg);
  model_params pa, pb;
  CHECK_EQ_INT(final_weights(a, &pa, &err), GRPO_OK);
  CHECK_EQ_INT(final_weights(b, &pb, &err), GRPO_OK);
  CHECK(pa.total == pb.total);
  CHECK_MSG(memcmp(pa.data, pb.data, sizeof(float) * pa.total) == 0, "%s: resumed weights differ", tag);
  /* and training changed them: the comparison is not of two initial models */
  grpo_config c0;
  const char *none[] = {NULL};
  CHECK_EQ_INT(train_config(&c0, none, &err), GRPO_OK);
  trainer_session s0;
  CHECK_EQ_INT(trainer_session_open(&s0, &c0, 0, &err), GRPO_OK);
  CHECK(s0.params.total == pa.total && memcmp(s0.params.data, pa.data, sizeof(float) * pa.total) != 0);
  trainer_session_close(&s0);
  grpo_config_free(&c0);
  model_params_free(&pa);
  model_params_free(&pb);
}

TEST(resume_is_bit_identical) {
  resume_case("", NULL);
  resume_case("_kl", "trainer.beta=0.04");
}

/* model.ref_path: a reference other than the initial policy. At step 1 the
 * policy is still the initial one, so the KL is 0 against the default
 * reference and positive against a trained checkpoint. */
TEST(reference_model_from_ref_path) {
  char ref[512], d0[512], d1[512], o0[600], o1[600], rp[600];
  dir_for(ref, sizeof ref, "straight"); /* trained 6 steps by resume_is_bit_identical */
  dir_for(d0, sizeof d0, "kl_default");
  dir_for(d1, sizeof d1, "kl_refpath");
  snprintf(o0, sizeof o0, "output_dir=%s", d0);
  snprintf(o1, sizeof o1, "output_dir=%s", d1);
  snprintf(rp, sizeof rp, "model.ref_path=%s", ref);
  grpo_error err = {0};
  grpo_config cfg;
  const char *e0[] = {o0, "trainer.max_steps=1", "trainer.beta=0.04", NULL};
  CHECK_EQ_INT(train_config(&cfg, e0, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  const char *e1[] = {o1, "trainer.max_steps=1", "trainer.beta=0.04", rp, NULL};
  CHECK_EQ_INT(train_config(&cfg, e1, &err), GRPO_OK);
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  grpo_config_free(&cfg);
  CHECK_NEAR(last_metric(d0, "kl"), 0.0, 1e-9);
  CHECK_MSG(last_metric(d1, "kl") > 1e-6, "kl against the trained reference: %g", last_metric(d1, "kl"));
}

TEST(dynamic_sampling_drops_degenerate_groups) {
  char dir[512], od[600];
  grpo_error err = {0};
  grpo_config cfg;
  /* a reward that is -1 for every completion: every group is degenerate, so
   * nothing is kept and generation stops after max_num_gen_batches rounds */
  dir_for(dir, sizeof dir, "dyn_flat");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *math[] = {od, "trainer.max_steps=1", "trainer.dynamic_sampling=true",
                        "trainer.max_num_gen_batches=3",
                        "reward.functions=[{name: length, options: {mode: target, target_length: 1000, tolerance: 1}}]",
                        NULL};
  CHECK_EQ_INT(train_config(&cfg, math, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  CHECK_NEAR(last_metric(dir, "dynamic_sampling/rounds"), 3, 0);
  CHECK_NEAR(last_metric(dir, "dynamic_sampling/kept_groups"), 0, 0);
  /* length shaping varies within groups: one round fills the batch */
  dir_for(dir, sizeof dir, "dyn_len");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *len[] = {od, "trainer.max_steps=1", "trainer.dynamic_sampling=true", "logging.peak_tflops=0.5", NULL};
  CHECK_EQ_INT(train_config(&cfg, len, &err), GRPO_OK);
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err), GRPO_OK);
  grpo_config_free(&cfg);
  CHECK_NEAR(last_metric(dir, "dynamic_sampling/kept_groups"), 8, 0);
  /* mfu = achieved TFLOP/s over the given peak (one rank) */
  double tf = last_metric(dir, "train_tflops");
  CHECK(tf > 0);
  CHECK_NEAR(last_metric(dir, "mfu"), tf / 0.5, 1e-6 * tf);
  CHECK(last_metric(dir, "dynamic_sampling/rounds") >= 1);
}

TEST(pgrpo_mode_runs) {
  const char *packings[2] = {"trainer.pgrpo_packing=trie", "trainer.pgrpo_packing=units"};
  for (int k = 0; k < 2; k++) {
    char dir[512], od[600];
    dir_for(dir, sizeof dir, k ? "pgrpo_units" : "pgrpo_trie");
    snprintf(od, sizeof od, "output_dir=%s", dir);
    const char *extra[] = {od, "trainer.max_steps=2", "rollout.parallel_threads=true", packings[k],
                           "trainer.scale_rewards=none",
                           "reward.functions=[{name: length, options: {mode: target, target_length: 4}}, "
                           "{name: pgrpo_acceleration}]",
                           NULL};
    grpo_config cfg;
    grpo_error err = {0};
    CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
    trainer_summary s;
    int rc = trainer_train(&cfg, MPI_COMM_WORLD, &s, &err);
    CHECK_MSG(rc == GRPO_OK, "%s: %s", packings[k], err.msg);
    CHECK_EQ_INT(s.steps_done, 2);
    CHECK(last_metric(dir, "rewards/pgrpo_acceleration/mean") >= 0);
    grpo_config_free(&cfg);
  }
}

/* Weights with a NaN make every gradient non-finite: each update is skipped
 * and counted, and after trainer.max_bad_steps in a row the run stops with
 * an error instead of writing NaN weights. */
TEST(non_finite_updates_are_skipped_then_stop) {
  char src[512], model[512], od[600], mp[600];
  dir_for(src, sizeof src, "nan_src");
  dir_for(model, sizeof model, "nan_model");
  grpo_error err = {0};
  model_params p;
  CHECK_EQ_INT(ckpt_hf_load(test_path("tests/fixtures/models/qwen2"), &p, &err), GRPO_OK);
  p.data[p.final_norm] = NAN;
  CHECK_EQ_INT(ckpt_hf_save(&p, model, CKPT_ST_F32, 0, NULL, &err), GRPO_OK);
  model_params_free(&p);
  snprintf(od, sizeof od, "output_dir=%s", src);
  snprintf(mp, sizeof mp, "model.path=%s", model);
  const char *extra[] = {od, mp, "trainer.max_steps=10", "trainer.max_bad_steps=2",
                         "checkpoint.every_steps=0", NULL};
  grpo_config cfg;
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  trainer_summary s;
  CHECK_EQ_INT(trainer_train(&cfg, MPI_COMM_WORLD, &s, &err), GRPO_ENUMERIC);
  CHECK(strstr(err.msg, "non-finite") != NULL);
  CHECK_EQ_INT(s.skipped_steps, 2);
  grpo_config_free(&cfg);
}

TEST(bad_config_is_an_error_not_a_crash) {
  grpo_config cfg;
  grpo_error err = {0};
  char od[600], dir[512];
  dir_for(dir, sizeof dir, "bad");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *extra[] = {od, "trainer.max_steps=1", "trainer.max_tokens_per_microbatch=16", NULL};
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  CHECK(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err) != GRPO_OK);
  CHECK(strstr(err.msg, "max_tokens_per_microbatch") != NULL);
  grpo_config_free(&cfg);
}

/* Budget forcing in GRPO rollouts: tokens injected at max_thinking_tokens
 * are not policy samples, so the loss normaliser (num_tokens) leaves them
 * out: 2 per completion that reached 4 tokens. */
TEST(budget_forcing_tokens_are_not_trained) {
  char dir[512], od[600];
  dir_for(dir, sizeof dir, "budget");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *extra[] = {od, "trainer.max_steps=1", "rollout.max_thinking_tokens=4", "rollout.budget_force_end=##",
                         NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  grpo_config_free(&cfg);
  double n = 64, total = last_metric(dir, "completions/mean_length") * n, trained = last_metric(dir, "num_tokens");
  CHECK_MSG(trained <= total - 2 && trained >= total - 2 * n, "trained %g of %g completion tokens", trained, total);
  /* not with ThreadWeaver generation */
  const char *par[] = {od, "rollout.max_thinking_tokens=4", "rollout.parallel_threads=true", NULL};
  CHECK_EQ_INT(train_config(&cfg, par, &err), GRPO_OK);
  CHECK(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err) != GRPO_OK);
  CHECK(strstr(err.msg, "parallel_threads") != NULL);
  grpo_config_free(&cfg);
}

/* rollout.adaptive_group_size: pilots of 2, then the budget of 8 x 8
 * samples shared out in groups of 2..16; all of it is spent and the sizes
 * differ (the length reward varies within groups from the first step). */
TEST(adaptive_group_size_spends_the_budget) {
  char dir[512], od[600];
  dir_for(dir, sizeof dir, "adaptive");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *extra[] = {od, "trainer.max_steps=2", "rollout.adaptive_group_size=true", "rollout.adaptive_pilot=2",
                         "rollout.adaptive_max_group_size=16", NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  grpo_config_free(&cfg);
  CHECK_NEAR(last_metric(dir, "rollout/samples"), 64, 0);
  double lo = last_metric(dir, "rollout/group_size_min"), hi = last_metric(dir, "rollout/group_size_max");
  CHECK_MSG(lo >= 2 && hi <= 16 && hi > lo, "group sizes %g..%g", lo, hi);
  /* pilot above the group size is refused */
  const char *bad[] = {od, "rollout.adaptive_group_size=true", "rollout.adaptive_pilot=9", NULL};
  CHECK_EQ_INT(train_config(&cfg, bad, &err), GRPO_OK);
  CHECK(trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err) != GRPO_OK);
  CHECK(strstr(err.msg, "adaptive_pilot") != NULL);
  grpo_config_free(&cfg);
}

/* trainer.top_entropy_quantile: the threshold is the step's 80th entropy
 * percentile, so it lies inside the range of the entropies (mean below). */
TEST(top_entropy_quantile_trains) {
  char dir[512], od[600];
  dir_for(dir, sizeof dir, "topent");
  snprintf(od, sizeof od, "output_dir=%s", dir);
  const char *extra[] = {od, "trainer.max_steps=1", "trainer.top_entropy_quantile=0.2", NULL};
  grpo_config cfg;
  grpo_error err = {0};
  CHECK_EQ_INT(train_config(&cfg, extra, &err), GRPO_OK);
  int rc = trainer_train(&cfg, MPI_COMM_WORLD, NULL, &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  grpo_config_free(&cfg);
  double thr = last_metric(dir, "entropy_threshold"), mean = last_metric(dir, "entropy");
  CHECK_MSG(thr > 0 && thr > mean, "threshold %g, mean entropy %g", thr, mean);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/grpo_train_test_%d", (int)getpid());
  RUN(reward_rises);
  RUN(resume_is_bit_identical);
  RUN(reference_model_from_ref_path);
  RUN(dynamic_sampling_drops_degenerate_groups);
  RUN(pgrpo_mode_runs);
  RUN(non_finite_updates_are_skipped_then_stop);
  RUN(bad_config_is_an_error_not_a_crash);
  RUN(budget_forcing_tokens_are_not_trained);
  RUN(adaptive_group_size_spends_the_budget);
  RUN(top_entropy_quantile_trains);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_tmp);
  MPI_Finalize();
  return test_summary();
}
