/* The steady state allocates nothing: after the first call on a scratch,
 * scoring with format (regex included), overlong, length and pgrpo makes no
 * malloc/calloc/realloc call from our code. Linked with --wrap so every
 * allocation made by the executable's own objects is counted (the shared
 * libraries' internal ones are not; the verifier is left out because it owns
 * its memory policy). */
#include <stddef.h>
#include <stdint.h>

#include "reward/registry.h"
#include "test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
static long g_allocs;
void *__wrap_malloc(size_t n) { g_allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { g_allocs++; return __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { g_allocs++; return __real_realloc(p, n); }

TEST(no_allocation_per_call) {
  reward_option fo[] = {{"answer_regex", "\\\\boxed\\{\\d+\\}"}, {"check_parallel", "true"}};
  reward_option oo[] = {{"max_completion_length", "64"}};
  reward_option lo[] = {{"mode", "group"}};
  reward_spec specs[] = {{"format", 1.0, fo, 2, NULL}, {"overlong", 1.0, oo, 1, NULL},
                         {"length", 1.0, lo, 1, NULL}, {"pgrpo_acceleration", 1.0, NULL, 0, NULL}};
  reward_registry *reg;
  reward_scratch *s;
  grpo_error err;
  CHECK_EQ_INT(reward_registry_create(&reg, specs, 4, &err), GRPO_OK);
  CHECK_EQ_INT(reward_scratch_create(reg, &s, &err), GRPO_OK);
  const char *text =
      "<think><Parallel><Outlines><Outline>1: a</Outline><Outline>2: b</Outline></Outlines>"
      "<Thread>1: xxxx</Thread><Thread>2: y</Thread></Parallel></think>\\boxed{12}";
  int32_t off[64];
  int32_t n = 0;
  int32_t len = (int32_t)strlen(text);
  for (int32_t i = 0; i < len && n < 64; i += 3) off[n++] = i;
  reward_input in[4];
  reward_result r[4];
  for (int j = 0; j < 4; j++) {
    reward_input_init(&in[j]);
    in[j].completion = text;
    in[j].n_tokens = n - j;
    in[j].token_offsets = off;
    in[j].correct = j & 1;
  }
  CHECK_EQ_INT(reward_registry_score_group(reg, s, in, 4, r, &err), GRPO_OK); /* warm-up */
  long before = g_allocs;
  for (int rep = 0; rep < 100; rep++) {
    CHECK_EQ_INT(reward_registry_score(reg, s, &in[1], &r[0], &err), GRPO_OK);
    CHECK_EQ_INT(reward_registry_score_group(reg, s, in, 4, r, &err), GRPO_OK);
  }
  CHECK_EQ_INT(g_allocs - before, 0);
  CHECK_NEAR(r[1].scores[0], 1.0, 0.0); /* the format regex matched */
  /* The counter itself works: creating a scratch allocates. */
  reward_scratch *s2;
  CHECK_EQ_INT(reward_scratch_create(reg, &s2, &err), GRPO_OK);
  CHECK(g_allocs - before > 0);
  reward_scratch_free(s2);
  reward_scratch_free(s);
  reward_registry_free(reg);
}

int main(void) {
  RUN(no_allocation_per_call);
  return test_summary();
}
