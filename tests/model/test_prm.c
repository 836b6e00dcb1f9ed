/* Process reward model parity against tests/fixtures/prm/ (made by
 * tools/make_prm_fixtures.py with transformers, expected values in float64):
 * step scores and head logits at every separator of four sequences, loaded
 * through ckpt_hf_load_prm as a hub PRM directory would be; plus the errors a
 * user can cause (wrong directory, too long, too many steps, bad ids, a head
 * that does not fit the backbone). */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "checkpoints/hf_io.h"
#include "core/backend.h"
#include "core/fileio.h"
#include "model/prm.h"
#include "test.h"

#define FIX "tests/fixtures/prm"

static model_prm *load_prm(int max_tokens) {
  grpo_error err = {0};
  model_params bb;
  model_prm_head head;
  if (ckpt_hf_load_prm(test_path(FIX), &bb, &head, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return NULL;
  }
  model_prm *prm = NULL;
  if (model_prm_create(&prm, &bb, &head, grpo_backend_cpu(), max_tokens, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    model_params_free(&bb);
    model_prm_head_free(&head);
    return NULL;
  }
  CHECK(bb.data == NULL && head.mem == NULL); /* moved into the PRM */
  return prm;
}

static cJSON *load_expect(void) {
  char *text;
  size_t n;
  grpo_error err = {0};
  if (grpo_read_file(test_path(FIX "/expect.json"), 1 << 20, &text, &n, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return NULL;
  }
  cJSON *j = cJSON_ParseWithLength(text, n);
  free(text);
  return j;
}

TEST(test_prm_parity) {
  model_prm *prm = load_prm(64);
  cJSON *ex = load_expect();
  CHECK(prm && ex);
  if (!prm || !ex) goto out;
  CHECK_EQ_INT(model_prm_config(prm)->hidden, 32);
  int32_t sep = (int32_t)cJSON_GetObjectItem(ex, "sep_id")->valueint;
  const cJSON *cases = cJSON_GetObjectItem(ex, "cases");
  int n_cases = 0, n_checked = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const cJSON *jids = cJSON_GetObjectItem(c, "ids"), *jsc = cJSON_GetObjectItem(c, "scores"),
                *jlg = cJSON_GetObjectItem(c, "logits");
    int n = cJSON_GetArraySize(jids), ns = cJSON_GetArraySize(jsc);
    int32_t ids[64];
    CHECK(n <= 64);
    for (int i = 0; i < n && i < 64; i++) ids[i] = (int32_t)cJSON_GetArrayItem(jids, i)->valueint;
    float scores[16], logits[32];
    int got = -1;
    grpo_error err = {0};
    int rc = model_prm_step_scores(prm, ids, n, sep, scores, logits, 16, &got, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_EQ_INT(got, ns);
    for (int k = 0; k < ns && k < got; k++) {
      CHECK_NEAR(scores[k], cJSON_GetArrayItem(jsc, k)->valuedouble, 1e-5);
      CHECK_NEAR(logits[2 * k], cJSON_GetArrayItem(jlg, 2 * k)->valuedouble, 1e-4);
      CHECK_NEAR(logits[2 * k + 1], cJSON_GetArrayItem(jlg, 2 * k + 1)->valuedouble, 1e-4);
      n_checked++;
    }
    n_cases++;
  }
  CHECK_EQ_INT(n_cases, 4);
  CHECK_EQ_INT(n_checked, 11);
  /* The scores are a function of the prefix: scoring a prefix alone (the first
   * two steps of case 0) gives the same first two scores. */
  const cJSON *c0 = cJSON_GetArrayItem(cases, 0);
  const cJSON *ids0 = cJSON_GetObjectItem(c0, "ids");
  int32_t pre[64];
  int np = 0, seps = 0;
  for (int i = 0; i < cJSON_GetArraySize(ids0) && seps < 2; i++) {
    pre[np++] = (int32_t)cJSON_GetArrayItem(ids0, i)->valueint;
    seps += pre[np - 1] == sep;
  }
  float s2[4];
  int got2 = 0;
  grpo_error err = {0};
  CHECK(model_prm_step_scores(prm, pre, np, sep, s2, NULL, 4, &got2, &err) == 0);
  CHECK_EQ_INT(got2, 2);
  for (int k = 0; k < 2; k++)
    CHECK_NEAR(s2[k], cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "scores"), k)->valuedouble, 1e-5);
out:
  cJSON_Delete(ex);
  model_prm_free(prm);
}

TEST(test_prm_errors) {
  grpo_error err = {0};
  model_params bb;
  model_prm_head head;
  /* a causal LM directory has no score head */
  CHECK(ckpt_hf_load_prm(test_path("tests/fixtures/models/qwen2"), &bb, &head, &err) == GRPO_ENOTFOUND);
  CHECK(strstr(err.msg, "not a process reward model") != NULL);
  CHECK(bb.data == NULL && head.mem == NULL);
  CHECK(ckpt_hf_load_prm(test_path("tests/fixtures/no_such_dir"), &bb, &head, &err) != 0);

  model_prm *prm = load_prm(16);
  CHECK(prm != NULL);
  if (!prm) return;
  int32_t ids[20] = {5, 6, 151, 7, 151, 8, 151};
  float sc[4];
  int n = -1;
  CHECK(model_prm_step_scores(prm, ids, 20, 151, sc, NULL, 4, &n, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "max_tokens") != NULL);
  CHECK(model_prm_step_scores(prm, ids, 0, 151, sc, NULL, 4, &n, &err) == GRPO_EINVAL);
  CHECK(model_prm_step_scores(prm, ids, 7, 151, sc, NULL, 2, &n, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "3 step separators") != NULL);
  CHECK(model_prm_step_scores(prm, ids, 7, 151, sc, NULL, 3, &n, &err) == 0);
  CHECK_EQ_INT(n, 3);
  for (int k = 0; k < 3; k++) CHECK(sc[k] > 0.0f && sc[k] < 1.0f);
  ids[1] = 160; /* vocab is 160 */
  CHECK(model_prm_step_scores(prm, ids, 7, 151, sc, NULL, 3, &n, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "vocabulary") != NULL);
  model_prm_free(prm);

  /* a head that does not fit the backbone is refused, and nothing is taken */
  CHECK(ckpt_hf_load_prm(test_path(FIX), &bb, &head, &err) == 0);
  model_prm_head bad;
  CHECK(model_prm_head_alloc(&bad, 16, 2, &err) == 0);
  model_prm *p2 = NULL;
  CHECK(model_prm_create(&p2, &bb, &bad, grpo_backend_cpu(), 8, &err) == GRPO_EFORMAT);
  CHECK(p2 == NULL && bb.data != NULL && bad.mem != NULL);
  model_prm_head three;
  CHECK(model_prm_head_alloc(&three, 32, 3, &err) == 0);
  CHECK(model_prm_create(&p2, &bb, &three, grpo_backend_cpu(), 8, &err) == GRPO_EFORMAT);
  CHECK(model_prm_create(&p2, &bb, &head, grpo_backend_cpu(), 0, &err) == GRPO_EINVAL);
  CHECK(bb.data != NULL && head.mem != NULL);
  model_prm_head_free(&bad);
  model_prm_head_free(&three);
  model_prm_head_free(&head);
  model_params_free(&bb);
}

int main(void) {
  RUN(test_prm_parity);
  RUN(test_prm_errors);
  return test_summary();
}
