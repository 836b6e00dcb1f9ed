/* The whole GRPO gradient against TRL: from fixed rewards, TRL's
 * _generate_and_score_completions (advantages, truncation mask) and
 * _compute_loss on the tiny Qwen2 fixture model, backpropagated to every
 * parameter (tests/fixtures/trl_grad, made by tools/make_trl_grad_fixtures.py),
 * must equal grpo's trainer_advantages + packed forward + trainer_grpo_loss +
 * model backward, for every loss_type, scale_rewards mode and
 * mask_truncated_completions. */
#include <math.h>

#include "checkpoints/hf_io.h"
#include "checkpoints/safetensors.h"
#include "model/transformer.h"
#include "test.h"
#include "trainer/advantage.h"
#include "trainer/loss.h"
#include "trainer/pack.h"

#define B 4
#define P 4
#define T 6
#define G 2

typedef struct trl_case {
  const char *file;
  trainer_loss_type type;
  float beta, eps_low, eps_high, temperature;
  int off_policy, max_len;
  trainer_scale scale;
  int mask_truncated;
  float top_entropy_quantile; /* 0: 1 (off) */
} trl_case;

/* As CASES in tools/make_trl_grad_fixtures.py. */
static const trl_case CASES[] = {
    {"dapo_offpolicy_kl", TRAINER_LOSS_DAPO, 0.04f, 0.2f, 0.28f, 0.8f, 1, T, TRAINER_SCALE_GROUP, 0, 0},
    {"grpo_onpolicy", TRAINER_LOSS_GRPO, 0.0f, 0.2f, 0.2f, 1.0f, 0, T, TRAINER_SCALE_GROUP, 0, 0},
    {"bnpo_batch_masktrunc_kl", TRAINER_LOSS_BNPO, 0.04f, 0.2f, 0.28f, 1.0f, 1, T, TRAINER_SCALE_BATCH, 1, 0},
    {"dr_grpo_none", TRAINER_LOSS_DR_GRPO, 0.0f, 0.2f, 0.2f, 0.7f, 1, 8, TRAINER_SCALE_NONE, 0, 0},
    {"grpo_masktrunc", TRAINER_LOSS_GRPO, 0.0f, 0.2f, 0.2f, 1.0f, 1, T, TRAINER_SCALE_GROUP, 1, 0},
    {"dapo_topent_kl", TRAINER_LOSS_DAPO, 0.04f, 0.2f, 0.28f, 1.0f, 1, T, TRAINER_SCALE_GROUP, 0, 0.5f},
};

static void run_case(const trl_case *c, model_params *p, model_transformer *m) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.safetensors", test_path("tests/fixtures/trl_grad"), c->file);
  ckpt_st_model f;
  grpo_error err = {0};
  if (ckpt_st_open(&f, path, &err)) {
    CHECK_MSG(0, "%s", err.msg);
    return;
  }
  int32_t prompt[B * P], comp[B * T], lens[B], truncated[B];
  float rewards[B], want_adv[B], want_mask[B * T], old[B * T], ref[B * T], want_loss;
  int rc = 0;
  rc |= ckpt_st_read_i32(&f, "prompt_ids", prompt, B * P, &err);
  rc |= ckpt_st_read_i32(&f, "completion_ids", comp, B * T, &err);
  rc |= ckpt_st_read_i32(&f, "lengths", lens, B, &err);
  rc |= ckpt_st_read_i32(&f, "truncated", truncated, B, &err);
  rc |= ckpt_st_read_f32(&f, "rewards", rewards, B, &err);
  rc |= ckpt_st_read_f32(&f, "advantages", want_adv, B, &err);
  rc |= ckpt_st_read_f32(&f, "loss_mask", want_mask, B * T, &err);
  rc |= ckpt_st_read_f32(&f, "old_logp", old, B * T, &err);
  rc |= ckpt_st_read_f32(&f, "ref_logp", ref, B * T, &err);
  rc |= ckpt_st_read_f32(&f, "loss", &want_loss, 1, &err);
  if (rc) {
    CHECK_MSG(0, "%s: %s", c->file, err.msg);
    ckpt_st_close(&f);
    return;
  }

  /* advantages from the rewards, as the train loop computes them */
  const float weight = 1.0f;
  trainer_adv_options ao = {c->scale, TRAINER_STD_UNBIASED, TRAINER_SUM_THEN_NORMALIZE, 1e-4};
  float adv[B];
  double scratch[B * 2];
  trainer_adv_stats ast;
  trainer_advantages(rewards, B / G, G, 1, &weight, &ao, NULL, adv, scratch, &ast);
  for (int i = 0; i < B; i++)
    CHECK_MSG(fabsf(adv[i] - want_adv[i]) <= 1e-5f, "%s: advantage %d %.7g, TRL %.7g", c->file, i, adv[i],
              want_adv[i]);

  /* pack prompt + the valid completion tokens of each sequence */
  trainer_packed pk;
  trainer_packed_init(&pk, 128, 128, TRAINER_LABELS_PARENT, NULL);
  int starts[B + 1], k = 0;
  float old_flat[B * T], ref_flat[B * T], mask_flat[B * T];
  double active = 0;
  for (int i = 0; i < B; i++) {
    int32_t seq[P + T];
    uint8_t mask[P + T] = {0};
    memcpy(seq, prompt + i * P, sizeof(int32_t) * P);
    memcpy(seq + P, comp + i * T, sizeof(int32_t) * (size_t)lens[i]);
    memset(mask + P, 1, (size_t)lens[i]);
    CHECK_EQ_INT(trainer_pack_sequence(&pk, seq, P + lens[i], mask, i, NULL), GRPO_OK);
    starts[i] = k;
    /* a masked completion still counts as a sequence (grpo, dr_grpo), not its tokens */
    const float trained = c->mask_truncated && truncated[i] ? 0.0f : 1.0f;
    for (int t = 0; t < lens[i]; t++, k++) {
      old_flat[k] = old[i * T + t], ref_flat[k] = ref[i * T + t], mask_flat[k] = trained;
      CHECK_MSG(want_mask[i * T + t] == trained, "%s: mask of completion %d differs from TRL's", c->file, i);
      active += trained;
    }
  }
  starts[B] = k;
  CHECK_EQ_INT(pk.n_pred, k);
  model_batch b = {pk.n_tokens, pk.ids, pk.pos, pk.tin, pk.tout, pk.n_pred, pk.pred_row, pk.pred_target,
                   c->temperature};
  float lp[64], dlp[64], ent[64], term[64], sorted[64];
  model_params_zero_grad(p);
  CHECK_EQ_INT(model_forward(m, &b, lp, ent, NULL, &err), GRPO_OK);
  /* the 80/20 mask: policy terms of the tokens at or above the quantile */
  const int topent = c->top_entropy_quantile > 0 && c->top_entropy_quantile < 1;
  size_t n_sorted = 0;
  for (int q = 0; q < k; q++)
    if (mask_flat[q] > 0) sorted[n_sorted++] = ent[q];
  float thr = trainer_entropy_threshold(sorted, n_sorted, c->top_entropy_quantile);
  int kept_terms = 0;
  for (int q = 0; q < k; q++) {
    term[q] = mask_flat[q] > 0 && ent[q] >= thr ? 1.0f : 0.0f;
    kept_terms += term[q] > 0;
  }
  if (topent) CHECK_MSG(kept_terms > 0 && kept_terms < (int)active, "%s: the mask keeps %d of %g", c->file, kept_terms, active);
  trainer_loss_options o = {.loss_type = c->type, .epsilon_low = c->eps_low, .epsilon_high = c->eps_high,
                            .beta = c->beta, .kl = TRAINER_KL_K3, .max_completion_length = c->max_len};
  trainer_loss_norm norm = {B, active};
  trainer_loss_batch lb = {B, starts, adv, lp, c->off_policy ? old_flat : NULL, ref_flat, NULL, NULL, mask_flat,
                           topent ? term : NULL};
  trainer_loss_stats st = {0};
  double loss = trainer_grpo_loss(&o, &norm, &lb, dlp, NULL, &st);
  CHECK_MSG(fabs(loss - want_loss) <= 1e-5 + 1e-4 * fabs(want_loss), "%s: loss %.8g, TRL %.8g", c->file, loss,
            want_loss);
  CHECK_EQ_INT(model_backward(m, &b, dlp, NULL, &err), GRPO_OK);
  int compared = 0;
  for (int i = 0; i < p->n; i++) {
    const model_param_info *e = &p->info[i];
    char name[160];
    snprintf(name, sizeof name, "grad.%s", e->name);
    if (!ckpt_st_find(&f, name)) continue;
    float *want = malloc(sizeof(float) * e->numel);
    ckpt_st_read_f32(&f, name, want, e->numel, &err);
    double scale = 0, worst = 0;
    for (size_t j = 0; j < e->numel; j++) scale = fmax(scale, fabs(want[j]));
    for (size_t j = 0; j < e->numel; j++) worst = fmax(worst, fabs(p->grad[e->offset + j] - want[j]));
    CHECK_MSG(worst <= 1e-3 * scale + 1e-7, "%s: %s off by %g (scale %g)", c->file, e->name, worst, scale);
    compared++;
    free(want);
  }
  CHECK_EQ_INT(compared, p->n);
  trainer_packed_free(&pk);
  ckpt_st_close(&f);
}

TEST(gradients_match_trl) {
  model_params p;
  grpo_error err = {0};
  if (ckpt_hf_load(test_path("tests/fixtures/models/qwen2"), &p, &err)) {
    CHECK_MSG(0, "%s", err.msg);
    return;
  }
  CHECK_EQ_INT(model_params_alloc_grad(&p, &err), GRPO_OK);
  model_plan_opts po = {.max_tokens = 128};
  model_transformer *m;
  CHECK_EQ_INT(model_transformer_create(&m, &p, grpo_backend_cpu(), &po, &err), GRPO_OK);
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(&CASES[i], &p, m);
  model_transformer_free(m);
  model_params_free(&p);
}

int main(void) {
  RUN(gradients_match_trl);
  return test_summary();
}
