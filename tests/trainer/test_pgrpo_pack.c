/* P-GRPO training units: a ThreadWeaver trajectory packed as one trie and
 * packed as one row per unit gives the same logprobs and the same gradient
 * of every parameter (the two trainer.pgrpo_packing modes). */
#include <math.h>

#include "model/transformer.h"
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

static void complete(rollout_tw *t, int thread, const char *text, rollout_finish fin) {
  int32_t ids[1024];
  int n = byte_encode(NULL, text, ids, 1024);
  CHECK_EQ_INT(rollout_tw_complete(t, thread, ids, NULL, n, fin, text, NULL), GRPO_OK);
}

/* Forward + backward with d loss / d logprob = 1 for every prediction. */
static double run_batch(model_transformer *m, model_params *p, const trainer_packed *pk, float *grad_out) {
  model_batch b = {pk->n_tokens, pk->ids, pk->pos, pk->tin, pk->tout, pk->n_pred, pk->pred_row, pk->pred_target, 1.0f};
  float lp[1024], ones[1024];
  grpo_error err = {0};
  model_params_zero_grad(p);
  CHECK_EQ_INT(model_forward(m, &b, lp, NULL, NULL, &err), GRPO_OK);
  double sum = 0;
  for (int k = 0; k < pk->n_pred; k++) sum += lp[k], ones[k] = 1.0f;
  CHECK_EQ_INT(model_backward(m, &b, ones, NULL, &err), GRPO_OK);
  memcpy(grad_out, p->grad, sizeof(float) * p->total);
  return sum;
}

TEST(trie_equals_units) {
  rollout_tw t;
  rollout_tw_options o = {.max_threads = 8, .max_rounds = 8, .max_new_tokens = 4000, .max_len = 1024,
                          .join_close = 1, .encode = byte_encode};
  int32_t prompt[3] = {'Q', ':', ' '};
  CHECK_EQ_INT(rollout_tw_init(&t, &o, prompt, 3, NULL), GRPO_OK);
  complete(&t, -1, "go <Outlines><Outline>1: a</Outline><Outline>2: b</Outline><Outline>3: c</Outline></Outlines>", ROLLOUT_FINISH_STOP);
  complete(&t, 0, " 1+1=2</Thread>", ROLLOUT_FINISH_STOP);
  complete(&t, 2, " 3*3=9</Thread>", ROLLOUT_FINISH_STOP);
  complete(&t, 1, " 2-2=0</Thread>", ROLLOUT_FINISH_STOP);
  complete(&t, -1, " so \\boxed{11}", ROLLOUT_FINISH_EOS);
  CHECK_EQ_INT(t.n_branches, 2);

  model_config cfg;
  model_config_defaults(&cfg, MODEL_ARCH_QWEN2);
  cfg.hidden = 32, cfg.n_layers = 2, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.head_dim = 8;
  cfg.ffn = 48, cfg.vocab = 256, cfg.max_pos = 1024;
  grpo_error err = {0};
  CHECK_EQ_INT(model_config_validate(&cfg, "test", &err), GRPO_OK);
  model_params p;
  CHECK_EQ_INT(model_params_init(&p, &cfg, &err), GRPO_OK);
  model_params_init_random(&p, 7, 0.1f);
  CHECK_EQ_INT(model_params_alloc_grad(&p, &err), GRPO_OK);
  model_plan_opts po = {.max_tokens = 1024};
  model_transformer *m;
  CHECK_EQ_INT(model_transformer_create(&m, &p, grpo_backend_cpu(), &po, &err), GRPO_OK);

  trainer_packed trie, units;
  trainer_packed_init(&trie, 1024, 1024, TRAINER_LABELS_PARENT, NULL);
  trainer_packed_init(&units, 1024, 1024, TRAINER_LABELS_PARENT, NULL);
  const int32_t *seqs[3] = {t.combined.ids, t.branches[0].ids, t.branches[1].ids};
  int lens[3] = {t.combined.n, t.branches[0].n, t.branches[1].n};
  const uint8_t *masks[3] = {t.combined.mask, t.branches[0].mask, t.branches[1].mask};
  CHECK_EQ_INT(trainer_pack_trajectory(&trie, seqs, lens, masks, 3, 0, NULL), GRPO_OK);
  /* units: each trained run of the combined view with its context, then each branch */
  uint8_t mask[1024];
  for (int a = 0; a < t.combined.n;) {
    if (!t.combined.mask[a]) {
      a++;
      continue;
    }
    int b = a;
    while (b < t.combined.n && t.combined.mask[b]) b++;
    memset(mask, 0, (size_t)a);
    memset(mask + a, 1, (size_t)(b - a));
    CHECK_EQ_INT(trainer_pack_sequence(&units, t.combined.ids, b, mask, 0, NULL), GRPO_OK);
    a = b;
  }
  for (int k = 0; k < 2; k++)
    CHECK_EQ_INT(trainer_pack_sequence(&units, t.branches[k].ids, t.branches[k].n, t.branches[k].mask, 0, NULL), GRPO_OK);
  CHECK_EQ_INT(trie.n_pred, t.generated);
  CHECK_EQ_INT(units.n_pred, t.generated);
  CHECK(trie.n_tokens < units.n_tokens); /* the trie shares the prefixes */

  float *ga = malloc(sizeof(float) * p.total), *gb = malloc(sizeof(float) * p.total);
  double sa = run_batch(m, &p, &trie, ga), sb = run_batch(m, &p, &units, gb);
  CHECK_NEAR(sa, sb, 1e-4 * fabs(sa));
  double worst = 0, scale = 0;
  for (size_t i = 0; i < p.total; i++) {
    worst = fmax(worst, fabs(ga[i] - gb[i]));
    scale = fmax(scale, fabs(ga[i]));
  }
  CHECK(scale > 0);
  CHECK_MSG(worst <= 1e-4 * scale, "largest gradient difference %g (scale %g)", worst, scale);
  free(ga);
  free(gb);
  trainer_packed_free(&trie);
  trainer_packed_free(&units);
  model_transformer_free(m);
  model_params_free(&p);
  rollout_tw_free(&t);
}

int main(void) {
  RUN(trie_equals_units);
  return test_summary();
}
