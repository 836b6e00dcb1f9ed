/* Minimal test harness shared by every C test.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *   int main(void) { RUN(name); return test_summary(); }
 *
 * A test case passes when none of its checks failed. test_summary() prints
 * "N passed, N failed" (the line CI reads) and returns the exit status. */
#ifndef GRPO_TESTS_TEST_H
#define GRPO_TESTS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_checks_failed_;
static int test_cases_passed_;
static int test_cases_failed_;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      test_checks_failed_++;                                                 \
    }                                                                        \
  } while (0)

#define CHECK_MSG(cond, ...)                                                 \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
      test_checks_failed_++;                                                 \
    }                                                                        \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                   \
  do {                                                                       \
    long long a_ = (long long)(a), b_ = (long long)(b);                      \
    if (a_ != b_) {                                                          \
      fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s = %lld, %s = %lld\n",  \
              __FILE__, __LINE__, #a, a_, #b, b_);                           \
      test_checks_failed_++;                                                 \
    }                                                                        \
  } while (0)

#define CHECK_STR(a, b)                                                      \
  do {                                                                       \
    const char *a_ = (a), *b_ = (b);                                         \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                 \
      fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n",         \
              __FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
      test_checks_failed_++;                                                 \
    }                                                                        \
  } while (0)

/* |a - b| <= tol, NaN never passes. */
#define CHECK_NEAR(a, b, tol)                                                \
  do {                                                                       \
    double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);           \
    if (!(fabs(a_ - b_) <= t_)) {                                            \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g (tol %g)\n", \
              __FILE__, __LINE__, #a, a_, #b, b_, t_);                       \
      test_checks_failed_++;                                                 \
    }                                                                        \
  } while (0)

#define RUN(name)                                                            \
  do {                                                                       \
    int before_ = test_checks_failed_;                                       \
    name();                                                                  \
    if (test_checks_failed_ == before_) {                                    \
      test_cases_passed_++;                                                  \
    } else {                                                                 \
      test_cases_failed_++;                                                  \
      fprintf(stderr, "FAILED: %s\n", #name);                                \
    }                                                                        \
  } while (0)

static inline int test_summary(void) {
  printf("%d passed, %d failed\n", test_cases_passed_, test_cases_failed_);
  return test_cases_failed_ ? 1 : 0;
}

/* Path of a file under the source root (tests run from there; GRPO_SOURCE_DIR
 * overrides). Returns a static buffer. */
static inline const char *test_path(const char *rel) {
  static char buf[4096];
  const char *root = getenv("GRPO_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
  return buf;
}

#endif
