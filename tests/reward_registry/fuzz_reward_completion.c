/* Fuzz target: arbitrary completion bytes through the P-GRPO structure
 * parser (token and byte units), the format checker and a registry, checking
 * the invariants the trainer relies on. Byte 0 picks the token stride and the
 * correctness flag; the rest is the completion. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward/format.h"
#include "reward/pgrpo.h"
#include "reward/registry.h"

#define REQUIRE(c) \
  do {             \
    if (!(c)) __builtin_trap(); \
  } while (0)

static reward_registry *g_reg;

static void check_stats(const reward_pgrpo_stats *st, int64_t units) {
  REQUIRE(st->total == units);
  REQUIRE(st->non_block >= 0 && st->parallel_total >= 0);
  REQUIRE(st->non_block <= st->longest && st->longest <= st->total);
  REQUIRE(st->threads >= 0 && st->max_threads <= st->threads);
  REQUIRE((st->flags == 0) == (st->first_error < 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int stride = 1 + (data[0] & 7), correct = (data[0] >> 3) & 1;
  size_t len = size - 1;
  char *text = malloc(len + 1);
  int32_t *off = malloc((len / (size_t)stride + 1) * sizeof *off);
  if (!text || !off) abort();
  memcpy(text, data + 1, len);
  text[len] = '\0';
  int32_t n = 0;
  for (size_t i = 0; i < len; i += (size_t)stride) off[n++] = (int32_t)i;

  reward_pgrpo_stats st;
  REQUIRE(reward_pgrpo_parse(text, len, off, n, &st, NULL) == GRPO_OK);
  check_stats(&st, n);
  reward_pgrpo_stats sb;
  REQUIRE(reward_pgrpo_parse(text, len, NULL, 0, &sb, NULL) == GRPO_OK);
  check_stats(&sb, (int64_t)len);
  REQUIRE(sb.flags == st.flags && sb.blocks == st.blocks && sb.threads == st.threads);
  reward_pgrpo_options po;
  reward_pgrpo_defaults(&po);
  double b = reward_pgrpo_acceleration(&po, &st, correct);
  REQUIRE(b >= 0.0 && b <= po.clip);
  po.malformed = REWARD_PGRPO_MALFORMED_LENIENT;
  b = reward_pgrpo_acceleration(&po, &st, correct);
  REQUIRE(b >= 0.0 && b <= po.clip);

  reward_format_options fo;
  reward_format_defaults(&fo);
  fo.check_parallel = 1;
  reward_format_report rep;
  reward_format_check(&fo, text, len, NULL, &rep);
  REQUIRE(rep.score == 0.0 || rep.score == 1.0);
  REQUIRE((rep.failed & ~rep.checked) == 0);
  snprintf(fo.answer_open, sizeof fo.answer_open, "<answer>");
  snprintf(fo.answer_close, sizeof fo.answer_close, "</answer>");
  fo.single_boxed = 1;
  fo.partial = 1;
  reward_format_check(&fo, text, len, NULL, &rep);
  REQUIRE(rep.score >= 0.0 && rep.score <= 1.0);
  REQUIRE((rep.failed & ~rep.checked) == 0);

  if (!g_reg) {
    reward_option fopt[] = {{"answer_regex", "\\\\boxed\\{(\\d+)\\}\\s*$"}, {"partial", "true"}};
    reward_option oopt[] = {{"max_completion_length", "64"}, {"cache_length", "16"}};
    reward_spec specs[] = {{"format", 1.0, fopt, 2, NULL}, {"overlong", 1.0, oopt, 2, NULL},
                           {"pgrpo_acceleration", 1.0, NULL, 0, NULL}};
    if (reward_registry_create(&g_reg, specs, 3, NULL)) abort();
  }
  reward_scratch *s;
  if (reward_scratch_create(g_reg, &s, NULL)) abort();
  reward_input in;
  reward_input_init(&in);
  in.completion = text;
  size_t slen = strlen(text); /* an embedded NUL ends the completion */
  int32_t m = 0;
  while (m < n && (size_t)off[m] <= slen) m++;
  in.n_tokens = m;
  in.token_offsets = off;
  in.correct = correct;
  reward_result r;
  REQUIRE(reward_registry_score(g_reg, s, &in, &r, NULL) == GRPO_OK);
  REQUIRE(r.scores[0] >= 0.0 && r.scores[0] <= 1.0);
  REQUIRE(r.scores[1] >= -1.0 && r.scores[1] <= 0.0);
  REQUIRE(r.scores[2] >= 0.0 && r.scores[2] <= 0.2);
  REQUIRE(strlen(r.detail) < REWARD_DETAIL_MAX);
  reward_scratch_free(s);
  free(off);
  free(text);
  return 0;
}
