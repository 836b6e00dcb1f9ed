/* trainer/: advantages, rollout importance weights and the GRPO-family loss
 * against TRL's own code (tests/trainer/grpo_fixture.json, made by
 * tools/make_grpo_fixtures.py), plus hand-derived cases TRL does not cover
 * (dual clip, k1/k2 estimators, population std, split invariance). */
#include <cjson/cJSON.h>

#include "test.h"
#include "trainer/advantage.h"
#include "trainer/loss.h"

#define MAXN 64

static cJSON *g_fix;
static int g_B, g_T, g_G, g_maxlen;
static float g_mask[MAXN], g_logp[MAXN], g_old[MAXN], g_ref[MAXN], g_sampler[MAXN], g_ent[MAXN];
static float g_rewards[MAXN];
static float g_weights[2];
static int g_starts[MAXN];

static void read_floats(const cJSON *arr, float *out, int n) {
  for (int i = 0; i < n; i++) {
    const cJSON *v = cJSON_GetArrayItem(arr, i);
    out[i] = cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
  }
}

static int load_fixture(void) {
  FILE *f = fopen(test_path("tests/trainer/grpo_fixture.json"), "rb");
  if (!f) return 0;
  static char buf[1 << 17];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  g_fix = cJSON_Parse(buf);
  if (!g_fix) return 0;
  g_B = cJSON_GetObjectItem(g_fix, "B")->valueint;
  g_T = cJSON_GetObjectItem(g_fix, "T")->valueint;
  g_G = cJSON_GetObjectItem(g_fix, "G")->valueint;
  g_maxlen = cJSON_GetObjectItem(g_fix, "max_completion_length")->valueint;
  read_floats(cJSON_GetObjectItem(g_fix, "mask"), g_mask, g_B * g_T);
  read_floats(cJSON_GetObjectItem(g_fix, "logp"), g_logp, g_B * g_T);
  read_floats(cJSON_GetObjectItem(g_fix, "old_logp"), g_old, g_B * g_T);
  read_floats(cJSON_GetObjectItem(g_fix, "ref_logp"), g_ref, g_B * g_T);
  read_floats(cJSON_GetObjectItem(g_fix, "sampler_logp"), g_sampler, g_B * g_T);
  read_floats(cJSON_GetObjectItem(g_fix, "entropy"), g_ent, g_B * g_T);
  read_floats(cJSON_GetObjectItem(g_fix, "weights"), g_weights, 2);
  const cJSON *rows = cJSON_GetObjectItem(g_fix, "rewards");
  for (int i = 0; i < g_B; i++) read_floats(cJSON_GetArrayItem(rows, i), g_rewards + 2 * i, 2);
  /* The fixture pads every completion to T tokens; the flat layout is [B, T]
   * with masked tails, so sequence i owns tokens [i*T, (i+1)*T). */
  for (int i = 0; i <= g_B; i++) g_starts[i] = i * g_T;
  return 1;
}

static const char *str(const cJSON *c, const char *k) { return cJSON_GetObjectItem(c, k)->valuestring; }
static double num(const cJSON *c, const char *k) { return cJSON_GetObjectItem(c, k)->valuedouble; }

TEST(trl_parity_every_case) {
  const cJSON *cases = cJSON_GetObjectItem(g_fix, "cases"), *c;
  int n_cases = 0;
  cJSON_ArrayForEach(c, cases) {
    n_cases++;
    trainer_adv_options ao = {TRAINER_SCALE_GROUP, TRAINER_STD_UNBIASED, TRAINER_SUM_THEN_NORMALIZE, 1e-4};
    if (strcmp(str(c, "scale"), "batch") == 0) ao.scale = TRAINER_SCALE_BATCH;
    if (strcmp(str(c, "scale"), "none") == 0) ao.scale = TRAINER_SCALE_NONE;
    if (strcmp(str(c, "aggregation"), "normalize_then_sum") == 0) ao.aggregation = TRAINER_NORMALIZE_THEN_SUM;
    float adv[MAXN], total[MAXN], want_adv[MAXN];
    double scratch[MAXN * 3];
    trainer_adv_stats st;
    trainer_advantages(g_rewards, g_B / g_G, g_G, 2, g_weights, &ao, total, adv, scratch, &st);
    read_floats(cJSON_GetObjectItem(c, "advantages"), want_adv, g_B);
    for (int i = 0; i < g_B; i++) CHECK_NEAR(adv[i], want_adv[i], 1e-5 * (1 + fabs(want_adv[i])));

    float isw[MAXN];
    const cJSON *want_isw = cJSON_GetObjectItem(c, "is_weight");
    const char *mode = cJSON_IsString(cJSON_GetObjectItem(c, "is_mode")) ? str(c, "is_mode") : NULL;
    if (mode) {
      trainer_is_mode m = strcmp(mode, "token_truncate") == 0      ? TRAINER_IS_TOKEN_TRUNCATE
                          : strcmp(mode, "token_mask") == 0        ? TRAINER_IS_TOKEN_MASK
                          : strcmp(mode, "sequence_truncate") == 0 ? TRAINER_IS_SEQUENCE_TRUNCATE
                                                                   : TRAINER_IS_SEQUENCE_MASK;
      trainer_is_weights(m, 0.5f, 1.5f, g_B, g_starts, g_old, g_sampler, g_mask, isw);
      float want[MAXN];
      read_floats(want_isw, want, g_B * g_T);
      for (int t = 0; t < g_B * g_T; t++)
        if (g_mask[t] > 0) CHECK_NEAR(isw[t], want[t], 1e-5 * (1 + want[t]));
    }

    trainer_loss_options o = {0};
    const char *lt = str(c, "loss_type");
    o.loss_type = strcmp(lt, "grpo") == 0 ? TRAINER_LOSS_GRPO
                  : strcmp(lt, "bnpo") == 0 ? TRAINER_LOSS_BNPO
                  : strcmp(lt, "dr_grpo") == 0 ? TRAINER_LOSS_DR_GRPO
                                               : TRAINER_LOSS_DAPO;
    o.epsilon_low = (float)num(c, "eps_low");
    o.epsilon_high = (float)num(c, "eps_high");
    o.delta = cJSON_IsNumber(cJSON_GetObjectItem(c, "delta")) ? (float)num(c, "delta") : 0.0f;
    o.sequence_level_is = strcmp(str(c, "is_level"), "sequence") == 0;
    o.beta = (float)num(c, "beta");
    o.kl = TRAINER_KL_K3;
    o.kl_bias_correction = cJSON_IsTrue(cJSON_GetObjectItem(c, "kl_bias"));
    o.entropy_coef = (float)num(c, "entropy_coef");
    o.max_completion_length = g_maxlen;
    trainer_loss_batch b = {g_B, g_starts, adv, g_logp,
                            cJSON_IsTrue(cJSON_GetObjectItem(c, "off_policy")) ? g_old : NULL,
                            g_ref, mode ? isw : NULL, g_ent, g_mask, NULL};
    trainer_loss_norm norm = {g_B, 0};
    for (int t = 0; t < g_B * g_T; t++) norm.n_tokens += g_mask[t];
    float dlogp[MAXN], dent[MAXN], want_d[MAXN], want_de[MAXN];
    trainer_loss_stats s = {0};
    double loss = trainer_grpo_loss(&o, &norm, &b, dlogp, dent, &s);
    CHECK_MSG(fabs(loss - num(c, "loss")) <= 2e-6 + 1e-5 * fabs(num(c, "loss")),
              "case %d (%s): loss %.9g, TRL %.9g", n_cases, lt, loss, num(c, "loss"));
    read_floats(cJSON_GetObjectItem(c, "dlogp"), want_d, g_B * g_T);
    read_floats(cJSON_GetObjectItem(c, "dentropy"), want_de, g_B * g_T);
    for (int t = 0; t < g_B * g_T; t++) {
      CHECK_MSG(fabs(dlogp[t] - want_d[t]) <= 1e-7 + 1e-5 * fabs(want_d[t]),
                "case %d (%s) token %d: dlogp %.9g, TRL %.9g", n_cases, lt, t, dlogp[t], want_d[t]);
      if (o.entropy_coef != 0) CHECK_NEAR(dent[t], want_de[t], 1e-7 + 1e-5 * fabs(want_de[t]));
    }
    CHECK_NEAR(s.clip_low / s.clip_count, num(c, "clip_low"), 1e-6);
    CHECK_NEAR(s.clip_high / s.clip_count, num(c, "clip_high"), 1e-6);
    CHECK_NEAR(s.clip_region / s.clip_count, num(c, "clip_region"), 1e-6);
    CHECK_NEAR(s.entropy_sum / s.tokens, num(c, "entropy"), 1e-5);
    if (o.beta != 0) CHECK_NEAR(s.kl_sum / s.tokens, num(c, "kl"), 1e-5);
  }
  CHECK_EQ_INT(n_cases, 16);
}

/* The gradient must not depend on how the batch is split into micro-batches
 * (or ranks): computing each half with the global normaliser and adding the
 * shares gives the whole-batch loss and gradient, for every global loss type. */
TEST(split_invariance) {
  float adv[MAXN] = {0.7f, -1.2f, 0.5f, -0.6f, 0.6f, 0.0f};
  trainer_loss_type types[3] = {TRAINER_LOSS_GRPO, TRAINER_LOSS_DR_GRPO, TRAINER_LOSS_DAPO};
  for (int k = 0; k < 3; k++) {
    trainer_loss_options o = {.loss_type = types[k], .epsilon_low = 0.2f, .epsilon_high = 0.28f,
                              .beta = 0.05f, .kl = TRAINER_KL_K3, .max_completion_length = g_maxlen};
    trainer_loss_norm norm = {g_B, 0};
    for (int t = 0; t < g_B * g_T; t++) norm.n_tokens += g_mask[t];
    trainer_loss_batch whole = {g_B, g_starts, adv, g_logp, g_old, g_ref, NULL, g_ent, g_mask, NULL};
    float d_whole[MAXN], d_split[MAXN];
    trainer_loss_stats s = {0};
    double l_whole = trainer_grpo_loss(&o, &norm, &whole, d_whole, NULL, &s);
    int h = g_B / 2, starts2[MAXN];
    for (int i = 0; i <= g_B - h; i++) starts2[i] = i * g_T;
    trainer_loss_batch first = {h, g_starts, adv, g_logp, g_old, g_ref, NULL, g_ent, g_mask, NULL};
    const int off = h * g_T;
    trainer_loss_batch second = {g_B - h, starts2, adv + h, g_logp + off, g_old + off,
                                 g_ref + off, NULL, g_ent + off, g_mask + off, NULL};
    double l_split = trainer_grpo_loss(&o, &norm, &first, d_split, NULL, &s) +
                     trainer_grpo_loss(&o, &norm, &second, d_split + off, NULL, &s);
    CHECK_NEAR(l_split, l_whole, 1e-9 + 1e-7 * fabs(l_whole));
    for (int t = 0; t < g_B * g_T; t++) CHECK(d_split[t] == d_whole[t]);
  }
}

/* d loss / d logp by central differences, for the options TRL lacks. */
static double loss_at(const trainer_loss_options *o, float *logp, const float *adv) {
  trainer_loss_norm norm = {g_B, 0};
  for (int t = 0; t < g_B * g_T; t++) norm.n_tokens += g_mask[t];
  trainer_loss_batch b = {g_B, g_starts, adv, logp, g_old, g_ref, NULL, g_ent, g_mask, NULL};
  float d[MAXN];
  trainer_loss_stats s = {0};
  return trainer_grpo_loss(o, &norm, &b, d, NULL, &s);
}

TEST(dual_clip_and_kl_estimators_by_finite_differences) {
  float adv[MAXN] = {0.7f, -1.2f, 0.5f, -0.6f, 0.6f, -2.0f};
  trainer_kl kls[4] = {TRAINER_KL_K1, TRAINER_KL_K2, TRAINER_KL_K3, TRAINER_KL_K3_PLUS};
  for (int k = 0; k < 4; k++) {
    trainer_loss_options o = {.loss_type = TRAINER_LOSS_DAPO, .epsilon_low = 0.2f,
                              .epsilon_high = 0.28f, .dual_clip_c = 1.3f, .beta = 0.3f,
                              .kl = kls[k], .max_completion_length = g_maxlen};
    trainer_loss_norm norm = {g_B, 0};
    for (int t = 0; t < g_B * g_T; t++) norm.n_tokens += g_mask[t];
    float logp[MAXN], d[MAXN];
    memcpy(logp, g_logp, sizeof logp);
    trainer_loss_batch b = {g_B, g_starts, adv, logp, g_old, g_ref, NULL, g_ent, g_mask, NULL};
    trainer_loss_stats s = {0};
    trainer_grpo_loss(&o, &norm, &b, d, NULL, &s);
    for (int t = 0; t < g_B * g_T; t++) {
      if (g_mask[t] == 0) {
        CHECK(d[t] == 0.0f);
        continue;
      }
      const float h = 1e-3f;
      float keep = logp[t];
      logp[t] = keep + h;
      double up = loss_at(&o, logp, adv);
      logp[t] = keep - h;
      double down = loss_at(&o, logp, adv);
      logp[t] = keep;
      double fd = (up - down) / (2 * h);
      if (kls[k] == TRAINER_KL_K3_PLUS) {
        /* straight-through: the value is k3's, the gradient k2's, so compare
         * with the k2 loss's finite difference instead */
        trainer_loss_options o2 = o;
        o2.kl = TRAINER_KL_K2;
        logp[t] = keep + h;
        up = loss_at(&o2, logp, adv);
        logp[t] = keep - h;
        down = loss_at(&o2, logp, adv);
        logp[t] = keep;
        fd = (up - down) / (2 * h);
      }
      CHECK_MSG(fabs(d[t] - fd) <= 2e-4 + 1e-2 * fabs(fd), "kl %d token %d: %g vs fd %g", k, t, d[t], fd);
    }
  }
  /* dual clip caps the loss of a negative-advantage token with a huge ratio */
  trainer_loss_options o = {.loss_type = TRAINER_LOSS_DAPO, .epsilon_low = 0.2f, .epsilon_high = 0.2f,
                            .dual_clip_c = 3.0f, .max_completion_length = 4};
  int st[2] = {0, 1};
  float a = -1.0f, lp = 0.0f, old = -3.0f, m = 1.0f, d;
  trainer_loss_batch b = {1, st, &a, &lp, &old, NULL, NULL, NULL, &m, NULL};
  trainer_loss_norm norm = {1, 1};
  trainer_loss_stats s = {0};
  CHECK_NEAR(trainer_grpo_loss(&o, &norm, &b, &d, NULL, &s), 3.0, 1e-9); /* not e^3 = 20.1 */
  CHECK(d == 0.0f);
  o.dual_clip_c = 0.0f;
  CHECK_NEAR(trainer_grpo_loss(&o, &norm, &b, &d, NULL, &s), exp(3.0), 1e-4);
}

TEST(advantages_by_hand) {
  /* two groups of 3: population std for group 0 = sqrt(2/9) */
  float r[6] = {1, 0, 0, 2, 2, 2}, w = 1.0f, adv[6], total[6];
  double scratch[12];
  trainer_adv_stats st;
  trainer_adv_options o = {TRAINER_SCALE_GROUP, TRAINER_STD_POPULATION, TRAINER_SUM_THEN_NORMALIZE, 0.0};
  trainer_advantages(r, 2, 3, 1, &w, &o, total, adv, scratch, &st);
  CHECK_NEAR(adv[0], (2.0 / 3) / sqrt(2.0 / 9), 1e-6);
  CHECK_NEAR(adv[1], (-1.0 / 3) / sqrt(2.0 / 9), 1e-6);
  CHECK_NEAR(adv[3], 0.0, 0.0);
  CHECK_NEAR(st.frac_reward_zero_std, 0.5, 0);
  o.scale = TRAINER_SCALE_NONE; /* P-GRPO / Dr. GRPO: mean-centring only */
  trainer_advantages(r, 2, 3, 1, &w, &o, total, adv, scratch, &st);
  CHECK_NEAR(adv[0], 2.0 / 3, 1e-7);
  CHECK_NEAR(adv[2], -1.0 / 3, 1e-7);
  CHECK(trainer_group_is_degenerate(total + 3, 3));
  CHECK(!trainer_group_is_degenerate(total, 3));
  float with_nan[3] = {NAN, 1.0f, 1.0f};
  CHECK(trainer_group_is_degenerate(with_nan, 3));
}

int main(void) {
  if (!load_fixture()) {
    fprintf(stderr, "cannot read tests/trainer/grpo_fixture.json\n");
    return 1;
  }
  RUN(trl_parity_every_case);
  RUN(split_invariance);
  RUN(dual_clip_and_kl_estimators_by_finite_differences);
  RUN(advantages_by_hand);
  cJSON_Delete(g_fix);
  return test_summary();
}
