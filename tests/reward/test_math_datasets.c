/* Math verifier against labelled data in ../shared (skipped with exit 77 when
 * absent): the two development sets of ../shared/reference/verifier.md, with
 * floors just under the measured accuracy so regressions fail, and GSM8K golds
 * against reformattings of themselves and against a different number. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward/math_verify.h"
#include "test.h"

static const char *const OTHER = "../shared/data/verify/other_cases.jsonl";
static const char *const HARD = "../shared/data/verify/hardverify_math_cases.jsonl";
static const char *const GSM8K = "../shared/data/gsm8k/test.jsonl";

typedef struct tally {
  int n, ok, fn, fp, negatives;
} tally;

static int score_set(const char *path, tally *t) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  memset(t, 0, sizeof *t);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int lineno = 0;
  while ((len = getline(&line, &cap, f)) > 0) {
    lineno++;
    cJSON *row = cJSON_ParseWithLength(line, (size_t)len);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(row, "gold");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(row, "pred");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(row, "expected");
    CHECK_MSG(cJSON_IsString(g) && cJSON_IsString(p) && cJSON_IsBool(e), "%s:%d: bad row", path, lineno);
    if (cJSON_IsString(g) && cJSON_IsString(p) && cJSON_IsBool(e)) {
      reward_math_verdict v;
      int rc = reward_math_verify(g->valuestring, p->valuestring, NULL, &v, NULL);
      CHECK(rc == GRPO_OK);
      int want = cJSON_IsTrue(e);
      t->n++;
      t->negatives += !want;
      if (v.correct == want) t->ok++;
      else if (v.correct) t->fp++;
      else t->fn++;
    }
    cJSON_Delete(row);
  }
  free(line);
  fclose(f);
  return 0;
}

static void report(const char *name, const tally *t) {
  printf("%-28s n=%3d accuracy=%.3f false_neg=%d false_pos=%d (fp rate %.3f of %d negatives)\n",
         name, t->n, t->n ? (double)t->ok / t->n : 0.0, t->fn, t->fp,
         t->negatives ? (double)t->fp / t->negatives : 0.0, t->negatives);
}

TEST(other_cases) {
  tally t;
  CHECK(score_set(OTHER, &t) == 0);
  report("other_cases", &t);
  CHECK_EQ_INT(t.n, 158);
  /* measured 0.994 (157/158), no false positive (target: FP rate <= 2%, i.e.
   * none of the 35 negatives); the false negative is listed in reward/README.md */
  CHECK(t.ok >= 156);
  CHECK(t.fp == 0);
  CHECK(t.fp * 50 <= t.negatives); /* FP rate <= 2% */
}

TEST(hardverify) {
  tally t;
  CHECK(score_set(HARD, &t) == 0);
  report("hardverify_math_cases", &t);
  CHECK_EQ_INT(t.n, 500);
  /* measured 0.910 (455/500); target >= 0.85. The one false positive (a
   * reordered set labelled wrong) is listed in reward/README.md; the target
   * allows 5 (2% of 250 negatives) */
  CHECK(t.ok >= 453);
  CHECK(t.fp <= 1);
  CHECK(t.fp * 50 <= t.negatives); /* FP rate <= 2% */
}

static int verify(const char *gold, const char *pred) {
  reward_math_verdict v;
  if (reward_math_verify(gold, pred, NULL, &v, NULL) != GRPO_OK) return -1;
  return v.correct;
}

/* "1234567" -> "1,234,567" */
static void with_commas(const char *digits, char *out, size_t cap) {
  size_t n = strlen(digits), k = 0;
  size_t start = digits[0] == '-' ? 1 : 0;
  for (size_t i = 0; i < n && k + 2 < cap; i++) {
    if (i > start && (n - i) % 3 == 0) out[k++] = ',';
    out[k++] = digits[i];
  }
  out[k] = '\0';
}

TEST(gsm8k) {
  FILE *f = fopen(GSM8K, "r");
  CHECK(f != NULL);
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rows = 0, bad = 0;
  while ((len = getline(&line, &cap, f)) > 0) {
    cJSON *row = cJSON_ParseWithLength(line, (size_t)len);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, "answer");
    if (!cJSON_IsString(a)) {
      cJSON_Delete(row);
      bad++;
      continue;
    }
    const char *h = strstr(a->valuestring, "####");
    char num[64] = "";
    if (h) sscanf(h + 4, " %63s", num);
    char plain[64];
    size_t k = 0;
    for (size_t i = 0; num[i] && k + 1 < sizeof plain; i++)
      if (num[i] != ',') plain[k++] = num[i];
    plain[k] = '\0';
    char pred[256], commas[96];
    with_commas(plain, commas, sizeof commas);
    long whole = strtol(plain, NULL, 10);
    int integer = strchr(plain, '.') == NULL;
    rows++;
    CHECK_MSG(verify(a->valuestring, a->valuestring) == 1, "gold vs itself: %s", num);
    snprintf(pred, sizeof pred, "#### %s", plain);
    CHECK_MSG(verify(a->valuestring, pred) == 1, "%s", pred);
    snprintf(pred, sizeof pred, "The answer is \\boxed{%s}.", commas);
    CHECK_MSG(verify(a->valuestring, pred) == 1, "%s", pred);
    snprintf(pred, sizeof pred, "So she makes $%s%s in total.\nAnswer: $%s%s", commas,
             integer ? ".00" : "", commas, integer ? ".00" : "");
    CHECK_MSG(verify(a->valuestring, pred) == 1, "%s", pred);
    if (integer) {
      snprintf(pred, sizeof pred, "\\boxed{%ld}", whole + 1);
      CHECK_MSG(verify(a->valuestring, pred) == 0, "%s vs %s", num, pred);
      snprintf(pred, sizeof pred, "#### %ld", whole * 10);
      CHECK_MSG(verify(a->valuestring, pred) == 0, "%s vs %s", num, pred);
      snprintf(pred, sizeof pred, "The answer is %ld.5", whole);
      CHECK_MSG(verify(a->valuestring, pred) == 0, "%s vs %s", num, pred);
    }
    cJSON_Delete(row);
  }
  free(line);
  fclose(f);
  printf("gsm8k: %d golds checked\n", rows);
  CHECK_EQ_INT(bad, 0);
  CHECK(rows >= 1000);
}

int main(void) {
  FILE *f = fopen(OTHER, "r");
  if (!f) {
    printf("skipped: %s not found (run from the repository root beside ../shared)\n", OTHER);
    return 77;
  }
  fclose(f);
  RUN(other_cases);
  RUN(hardverify);
  RUN(gsm8k);
  return test_summary();
}
