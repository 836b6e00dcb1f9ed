/* core/: errors, Philox known answers, arena limits, duration formatting, logging. */
#include <stdint.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/log.h"
#include "core/philox.h"
#include "core/progress.h"
#include "test.h"

/* Known-answer vectors from Random123's tests/kat_vectors (philox4x32_10). */
TEST(philox_known_answers) {
  static const uint32_t cases[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    grpo_philox4x32_10(cases[i], cases[i] + 4, out);
    for (int j = 0; j < 4; j++) CHECK_EQ_INT(out[j], cases[i][6 + j]);
  }
}

TEST(rng_is_keyed_not_sequential) {
  /* Same coordinates -> same draw; any coordinate changed -> different draw. */
  float a = grpo_rng_uniform(42, GRPO_RNG_SAMPLING, 3, 5, 7, 11);
  CHECK(a == grpo_rng_uniform(42, GRPO_RNG_SAMPLING, 3, 5, 7, 11));
  CHECK(a != grpo_rng_uniform(43, GRPO_RNG_SAMPLING, 3, 5, 7, 11));
  CHECK(a != grpo_rng_uniform(42, GRPO_RNG_DATA, 3, 5, 7, 11));
  CHECK(a != grpo_rng_uniform(42, GRPO_RNG_SAMPLING, 4, 5, 7, 11));
  CHECK(a != grpo_rng_uniform(42, GRPO_RNG_SAMPLING, 3, 6, 7, 11));
  CHECK(a != grpo_rng_uniform(42, GRPO_RNG_SAMPLING, 3, 5, 8, 11));
  CHECK(a != grpo_rng_uniform(42, GRPO_RNG_SAMPLING, 3, 5, 7, 12));
  CHECK(grpo_rng_u32_to_unit(0xffffffffu) < 1.0f);
  CHECK(grpo_rng_u32_to_unit(0) == 0.0f);
}

TEST(rng_stream_moments) {
  grpo_rng_stream s;
  grpo_rng_stream_init(&s, 7, GRPO_RNG_TEST, 0, 0);
  double sum = 0, sq = 0;
  int counts[10] = {0};
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double u = grpo_rng_stream_unit(&s);
    CHECK(u >= 0.0 && u < 1.0);
    sum += u;
    counts[grpo_rng_stream_below(&s, 10)]++;
    double z = grpo_rng_stream_normal(&s);
    sq += z * z;
  }
  CHECK_NEAR(sum / n, 0.5, 0.005);
  CHECK_NEAR(sq / n, 1.0, 0.02);
  for (int k = 0; k < 10; k++) CHECK_NEAR(counts[k] / (double)n, 0.1, 0.005);
}

TEST(arena_limits_and_alignment) {
  grpo_arena a;
  CHECK(grpo_arena_init(&a, 1000) == GRPO_OK);
  char *p = grpo_arena_alloc(&a, 10, 1);
  CHECK(p != NULL);
  float *q = grpo_arena_alloc(&a, 100, 64);
  CHECK(q != NULL && ((uintptr_t)q % 64) == 0);
  size_t mark = grpo_arena_mark(&a);
  CHECK(grpo_arena_alloc(&a, 2000, 8) == NULL); /* past capacity: fails, no growth */
  CHECK(grpo_arena_mark(&a) == mark);
  CHECK(grpo_arena_alloc(&a, 500, 8) != NULL);
  grpo_arena_rewind(&a, mark);
  CHECK(a.used == mark);
  CHECK(a.high_water >= mark + 500);
  grpo_arena_reset(&a);
  CHECK(grpo_arena_alloc(&a, 1000, 1) != NULL);
  CHECK(grpo_arena_alloc(&a, 1, 1) == NULL);
  grpo_arena_free(&a);
}

TEST(error_messages_carry_location) {
  grpo_error e;
  grpo_error_clear(&e);
  int rc = GRPO_FAIL(&e, GRPO_EPARSE, "%s:%d:%d: bad value", "run.yaml", 3, 7);
  CHECK_EQ_INT(rc, GRPO_EPARSE);
  CHECK_EQ_INT(e.code, GRPO_EPARSE);
  CHECK_STR(e.msg, "run.yaml:3:7: bad value");
  CHECK(strstr(e.src, "test_core.c:") == e.src);
  grpo_error_prefix(&e, "loading %s", "config");
  CHECK_STR(e.msg, "loading config: run.yaml:3:7: bad value");
  CHECK(GRPO_FAIL(NULL, GRPO_EIO, "ignored") == GRPO_EIO);
  CHECK_STR(grpo_status_name(GRPO_ENOTFOUND), "not found");
}

TEST(log_levels_and_rank_prefix) {
  char buf[1024] = {0};
  FILE *f = fmemopen(buf, sizeof buf, "w");
  grpo_log_set_stream(f);
  grpo_log_set_level(GRPO_LOG_WARN);
  GRPO_INFO("hidden %d", 1);
  grpo_log_set_rank(1, 2);
  GRPO_WARN("shown %d", 2);
  fflush(f);
  CHECK(strstr(buf, "hidden") == NULL);
  CHECK(strstr(buf, "[r1] WARN  shown 2\n") != NULL);
  grpo_log_set_stream(NULL);
  fclose(f);
  grpo_log_set_rank(0, 1);
  CHECK_EQ_INT(grpo_log_parse_level("DEBUG"), GRPO_LOG_DEBUG);
  CHECK_EQ_INT(grpo_log_parse_level("warning"), GRPO_LOG_WARN);
  CHECK_EQ_INT(grpo_log_parse_level("loud"), -1);
}

TEST(progress_plain_lines) {
  char buf[2048] = {0};
  FILE *f = fmemopen(buf, sizeof buf, "w");
  grpo_progress p;
  grpo_progress_begin(&p, f, "train", "step", 4, 0);
  p.plain_interval_s = 0.0; /* print every update */
  grpo_progress_update(&p, 2, "reward 0.50");
  grpo_progress_end(&p, NULL);
  fflush(f);
  fclose(f);
  CHECK(strstr(buf, "train  [##########----------] 2/4") != NULL);
  CHECK(strstr(buf, "reward 0.50\n") != NULL);
  CHECK(strstr(buf, "took") != NULL);
  CHECK(strchr(buf, '\r') == NULL); /* no TTY control codes in batch logs */
  char d[32];
  grpo_format_duration(3725, d, sizeof d);
  CHECK_STR(d, "1:02:05");
  grpo_format_duration(59.6, d, sizeof d);
  CHECK_STR(d, "01:00");
  grpo_format_duration(-1, d, sizeof d);
  CHECK_STR(d, "--:--");
}

int main(void) {
  RUN(philox_known_answers);
  RUN(rng_is_keyed_not_sequential);
  RUN(rng_stream_moments);
  RUN(arena_limits_and_alignment);
  RUN(error_messages_carry_location);
  RUN(log_levels_and_rank_prefix);
  RUN(progress_plain_lines);
  return test_summary();
}
