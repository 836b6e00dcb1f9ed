/* optim/: schedules by hand, AdamW + clipping against torch.optim.AdamW. */
#include "optim/optim.h"
#include "adamw_expected.h"
#include "test.h"

TEST(schedules_by_hand) {
  optim_schedule s = {OPTIM_SCHEDULE_CONSTANT, 1e-3, 4, 100, 0.0};
  CHECK_NEAR(optim_lr_at(&s, 1), 0.25e-3, 1e-12); /* first update is not wasted at lr 0 */
  CHECK_NEAR(optim_lr_at(&s, 4), 1e-3, 1e-12);
  CHECK_NEAR(optim_lr_at(&s, 99), 1e-3, 1e-12);
  s.kind = OPTIM_SCHEDULE_LINEAR;
  s.min_lr_ratio = 0.1;
  CHECK_NEAR(optim_lr_at(&s, 4), 1e-3, 1e-12);
  CHECK_NEAR(optim_lr_at(&s, 52), 1e-4 + 0.9e-3 * 0.5, 1e-12);
  CHECK_NEAR(optim_lr_at(&s, 100), 1e-4, 1e-12);
  CHECK_NEAR(optim_lr_at(&s, 500), 1e-4, 1e-12);
  s.kind = OPTIM_SCHEDULE_COSINE;
  s.min_lr_ratio = 0.0;
  CHECK_NEAR(optim_lr_at(&s, 52), 0.5e-3, 1e-12);
  CHECK_NEAR(optim_lr_at(&s, 28), 1e-3 * 0.5 * (1 + cos(3.14159265358979323846 * 0.25)), 1e-12);
  CHECK_NEAR(optim_lr_at(&s, 100), 0.0, 1e-12);
  s.warmup_steps = 0;
  CHECK_NEAR(optim_lr_at(&s, 1), 1e-3 * 0.5 * (1 + cos(3.14159265358979323846 * 0.01)), 1e-12);
  CHECK_EQ_INT(optim_schedule_parse("cosine"), OPTIM_SCHEDULE_COSINE);
  CHECK_EQ_INT(optim_schedule_parse("step"), -1);
}

TEST(adamw_matches_torch) {
  grpo_backend *be = grpo_backend_cpu();
  const size_t n = ADAMW_N_DECAY + ADAMW_N_PLAIN + 3; /* 3 floats of padding */
  float p[ADAMW_N_DECAY + ADAMW_N_PLAIN + 3], g[ADAMW_N_DECAY + ADAMW_N_PLAIN + 3];
  memcpy(p, ADAMW_P0, sizeof ADAMW_P0);
  p[n - 3] = p[n - 2] = p[n - 1] = 0.0f;
  const size_t offsets[2] = {0, ADAMW_N_DECAY}, counts[2] = {ADAMW_N_DECAY, ADAMW_N_PLAIN};
  const char *names[2] = {"model.layers.0.mlp.up_proj.weight", "model.layers.0.input_layernorm.weight"};
  optim_group groups[2];
  optim_groups_from_names(offsets, counts, names, 2, groups);
  CHECK(groups[0].decay == 1 && groups[1].decay == 0);
  optim_adamw o;
  grpo_error err = {0};
  CHECK_EQ_INT(optim_adamw_init(&o, be, n, groups, 2, 0.9f, 0.95f, 1e-8f, 0.1f, &err), GRPO_OK);
  for (int s = 0; s < ADAMW_STEPS; s++) {
    memcpy(g, ADAMW_GRADS[s], sizeof ADAMW_GRADS[s]);
    g[n - 3] = g[n - 2] = g[n - 1] = 123.0f; /* padding gradients must be ignored */
    double norm = optim_grad_norm(be, g, ADAMW_N_DECAY + ADAMW_N_PLAIN);
    CHECK_NEAR(norm, ADAMW_NORMS[s], 1e-5 * ADAMW_NORMS[s]);
    optim_adamw_step(&o, p, g, ADAMW_LRS[s], optim_clip_factor(norm, ADAMW_MAX_NORM));
  }
  for (size_t i = 0; i < ADAMW_N_DECAY + ADAMW_N_PLAIN; i++)
    CHECK_NEAR(p[i], ADAMW_FINAL[i], 2e-6 + 2e-6 * fabs(ADAMW_FINAL[i]));
  CHECK(p[n - 1] == 0.0f && p[n - 3] == 0.0f);
  CHECK_EQ_INT(o.step, ADAMW_STEPS);
  optim_adamw_free(&o);
}

TEST(clip_factor_and_validation) {
  CHECK_NEAR(optim_clip_factor(3.0, 1.5), 1.5 / (3.0 + 1e-6), 1e-7);
  CHECK_NEAR(optim_clip_factor(1.0, 1.5), 1.0, 0);
  CHECK_NEAR(optim_clip_factor(1e9, 0.0), 1.0, 0);
  optim_adamw o;
  grpo_error err = {0};
  optim_group g = {0, 4, 1};
  CHECK_EQ_INT(optim_adamw_init(&o, grpo_backend_cpu(), 4, &g, 1, 1.0f, 0.95f, 1e-8f, 0.0f, &err),
               GRPO_EINVAL);
  CHECK(strstr(err.msg, "beta1") != NULL);
  optim_group bad = {2, 4, 1};
  CHECK_EQ_INT(optim_adamw_init(&o, grpo_backend_cpu(), 4, &bad, 1, 0.9f, 0.95f, 1e-8f, 0.0f, &err),
               GRPO_EINVAL);
  CHECK(strstr(err.msg, "outside") != NULL);
}

int main(void) {
  MPI_Init(NULL, NULL);
  RUN(schedules_by_hand);
  RUN(adamw_matches_torch);
  RUN(clip_factor_and_validation);
  MPI_Finalize();
  return test_summary();
}
