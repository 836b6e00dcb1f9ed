/* tasks/: benchmark layouts against the real files in ../shared/data, bad
 * rows, cursor determinism, prompt templates, and the arithmetic generator
 * checked by an independent evaluator. */
#include <ctype.h>
#include <unistd.h>

#include "core/log.h"
#include "tasks/arith.h"
#include "tasks/dataset.h"
#include "test.h"

static int have_shared(void) { return access("../shared/data/gsm8k/test.jsonl", R_OK) == 0; }

static int load_builtin(task_dataset *ds, const char *name, const char *path) {
  task_format fmt;
  grpo_error err = {0};
  if (task_format_builtin(name, &fmt) != GRPO_OK) return -1;
  int rc = task_dataset_load(ds, path, &fmt, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  return rc;
}

TEST(real_benchmark_layouts) {
  if (!have_shared()) {
    printf("../shared/data absent: layout checks skipped\n");
    return;
  }
  struct {
    const char *name, *path;
    size_t rows;
    const char *first_gold;
  } sets[] = {
      {"gsm8k", "../shared/data/gsm8k/test.jsonl", 1319, "18"},
      {"gsm8k", "../shared/data/gsm8k/train.jsonl", 7473, "72"},
      {"math500", "../shared/data/math500/test.jsonl", 500, "\\left( 3, \\frac{\\pi}{2} \\right)"},
      {"aime24", "../shared/data/aime24/test.jsonl", 30, "204"},
      {"amc23", "../shared/data/amc23/test.jsonl", 40, "27"},
      {"minerva_math", "../shared/data/minerva_math/test.jsonl", 272, NULL},
      {"olympiadbench", "../shared/data/olympiadbench/test.jsonl", 675, "2"},
  };
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
    task_dataset ds;
    CHECK_EQ_INT(load_builtin(&ds, sets[i].name, sets[i].path), GRPO_OK);
    CHECK_MSG(ds.n == sets[i].rows, "%s: %zu rows", sets[i].path, ds.n);
    CHECK_EQ_INT(ds.skipped, 0);
    if (sets[i].first_gold && ds.n) CHECK_STR(ds.items[0].gold, sets[i].first_gold);
    for (size_t k = 0; k < ds.n; k++) {
      CHECK(ds.items[k].question && ds.items[k].question[0]);
      CHECK(ds.items[k].gold && ds.items[k].gold[0]);
    }
    task_dataset_free(&ds);
  }
}

TEST(olympiad_multiple_answers_joined) {
  if (!have_shared()) return;
  task_dataset ds;
  CHECK_EQ_INT(load_builtin(&ds, "olympiadbench", "../shared/data/olympiadbench/test.jsonl"),
               GRPO_OK);
  /* Row 6 lists three triples in one string; rows with several list entries
   * join them with ", ". */
  CHECK_STR(ds.items[5].gold, "$(1,8,19), (2,7,13), (4,5,7)$");
  task_dataset_free(&ds);
}

TEST(gold_rules) {
  char *g = task_extract_gold("a\n#### 1,234", TASK_GOLD_GSM8K);
  CHECK_STR(g, "1,234");
  free(g);
  CHECK(task_extract_gold("no marker", TASK_GOLD_GSM8K) == NULL);
  CHECK(task_extract_gold("#### ", TASK_GOLD_GSM8K) == NULL);
  g = task_extract_gold("so \\boxed{\\frac{1}{2}} then \\boxed{ \\{1, 2\\} }", TASK_GOLD_LAST_BOXED);
  CHECK_STR(g, "\\{1, 2\\}");
  free(g);
  g = task_extract_gold("\\fbox{3} and \\boxed{4", TASK_GOLD_LAST_BOXED); /* unbalanced last */
  CHECK_STR(g, "3");
  free(g);
  CHECK(task_extract_gold("nothing", TASK_GOLD_LAST_BOXED) == NULL);
}

TEST(bad_rows_are_skipped_and_counted) {
  const char *buf =
      "{\"question\": \"q1\", \"answer\": \"x #### 5\"}\n"
      "not json\n"
      "\n"
      "[1, 2]\n"
      "{\"question\": \"q2\"}\n"
      "{\"question\": \"\", \"answer\": \"#### 3\"}\n"
      "{\"question\": \"q3\", \"answer\": \"no hashes\"}\n"
      "{\"question\": 7, \"answer\": \"#### 3\"}\n"
      "{\"question\": \"q4\", \"answer\": \"#### 9\"}";
  task_format fmt;
  task_format_builtin("gsm8k", &fmt);
  task_dataset ds;
  grpo_error err = {0};
  char log[4096] = {0};
  FILE *f = fmemopen(log, sizeof log, "w");
  grpo_log_set_stream(f);
  CHECK_EQ_INT(task_dataset_load_buffer(&ds, "rows.jsonl", buf, strlen(buf), &fmt, &err), GRPO_OK);
  grpo_log_set_stream(NULL);
  fclose(f);
  CHECK_EQ_INT(ds.n, 2);
  CHECK_EQ_INT(ds.skipped, 6);
  CHECK_STR(ds.items[1].gold, "9");
  CHECK_EQ_INT(ds.items[1].line, 9);
  CHECK(strstr(log, "rows.jsonl:2: skipped row: invalid JSON") != NULL);
  CHECK(strstr(log, "rows.jsonl:7: skipped row: answer has no '#### N' line") != NULL);
  task_dataset_free(&ds);

  const char *none = "garbage\n{}\n";
  CHECK_EQ_INT(task_dataset_load_buffer(&ds, "none.jsonl", none, strlen(none), &fmt, &err),
               GRPO_EPARSE);
  CHECK(strstr(err.msg, "none.jsonl: no usable rows") != NULL);
  CHECK_EQ_INT(task_dataset_load(&ds, "/nonexistent/x.jsonl", &fmt, &err), GRPO_ENOTFOUND);
  CHECK(strstr(err.msg, "/nonexistent/x.jsonl") != NULL);
  CHECK_EQ_INT(task_format_builtin("nope", &fmt), GRPO_ENOTFOUND);
}

TEST(cursor_is_a_permutation_and_restorable) {
  task_cursor a, b;
  const size_t n = 37;
  CHECK_EQ_INT(task_cursor_init(&a, n, 123, 1), GRPO_OK);
  uint32_t first[74], seen[37] = {0};
  task_cursor_next(&a, 74, first); /* two full epochs */
  for (size_t i = 0; i < n; i++) seen[first[i]]++;
  for (size_t i = 0; i < n; i++) CHECK_EQ_INT(seen[i], 1);
  CHECK(memcmp(first, first + n, n * sizeof *first) != 0); /* epochs differ */
  int identity = 1;
  for (size_t i = 0; i < n; i++) identity &= first[i] == i;
  CHECK(!identity);
  /* Restore mid-epoch from (epoch, index) alone. */
  CHECK_EQ_INT(task_cursor_init(&b, n, 123, 1), GRPO_OK);
  task_cursor_seek(&b, 0, 30);
  uint32_t resumed[20];
  task_cursor_next(&b, 20, resumed);
  CHECK(memcmp(resumed, first + 30, sizeof resumed) == 0);
  task_cursor_free(&a);
  task_cursor_free(&b);
  CHECK_EQ_INT(task_cursor_init(&a, 5, 1, 0), GRPO_OK);
  uint32_t ord[7];
  task_cursor_next(&a, 7, ord);
  CHECK(ord[0] == 0 && ord[4] == 4 && ord[5] == 0 && ord[6] == 1);
  task_cursor_free(&a);
}

TEST(prompt_templates) {
  char out[64];
  grpo_error err = {0};
  CHECK_EQ_INT(task_prompt_render("Q: {question}\nA:", "2+2?", out, sizeof out, &err), 10);
  CHECK_STR(out, "Q: 2+2?\nA:");
  CHECK(task_prompt_render("{{x}} {question}", "q", out, sizeof out, &err) >= 0);
  CHECK_STR(out, "{x} q");
  CHECK_EQ_INT(task_prompt_render("{answer}", "q", out, sizeof out, &err), -1);
  CHECK(strstr(err.msg, "unexpected '{'") != NULL);
  CHECK_EQ_INT(task_prompt_render("{question}{question}", "0123456789012345678901234567890123",
                                  out, sizeof out, &err), -1);
}

/* Independent evaluator: recursive descent over + - * / and parentheses. */
static const char *ev_p;
static long long ev_expr(void);
static void ev_ws(void) { while (*ev_p == ' ') ev_p++; }
static long long ev_atom(void) {
  ev_ws();
  if (*ev_p == '(') {
    ev_p++;
    long long v = ev_expr();
    ev_ws();
    ev_p++; /* ')' */
    return v;
  }
  long long v = 0;
  while (isdigit((unsigned char)*ev_p)) v = v * 10 + (*ev_p++ - '0');
  return v;
}
static long long ev_term(void) {
  long long v = ev_atom();
  for (;;) {
    ev_ws();
    if (*ev_p == '*') { ev_p++; v *= ev_atom(); }
    else if (*ev_p == '/') { ev_p++; v /= ev_atom(); }
    else return v;
  }
}
static long long ev_expr(void) {
  long long v = ev_term();
  for (;;) {
    ev_ws();
    if (*ev_p == '+') { ev_p++; v += ev_term(); }
    else if (*ev_p == '-') { ev_p++; v -= ev_term(); }
    else return v;
  }
}

TEST(arith_answers_match_an_independent_evaluator) {
  task_arith_options opt;
  task_arith_default_options(&opt);
  opt.min_ops = 1;
  opt.max_ops = 6;
  opt.allow_div = 1;
  opt.max_abs_value = 5000;
  grpo_error err = {0};
  CHECK_EQ_INT(task_arith_validate(&opt, &err), GRPO_OK);
  int ops_seen[TASK_ARITH_MAX_OPS + 1] = {0};
  for (uint64_t i = 0; i < 3000; i++) {
    task_arith_problem p;
    task_arith_generate(&opt, 7, TASK_SPLIT_TRAIN, i, &p);
    ev_p = p.expression;
    long long v = ev_expr();
    CHECK_MSG(v == p.value, "%s = %lld, generator says %lld", p.expression, v, p.value);
    CHECK(p.value >= 0 && p.value <= opt.max_abs_value);
    char boxed[64];
    snprintf(boxed, sizeof boxed, "\\boxed{%lld}", v);
    CHECK(strstr(p.solution, boxed) != NULL);
    int ops = 0;
    for (const char *c = p.expression; *c; c++) ops += strchr("+-*/", *c) != NULL;
    CHECK_EQ_INT(ops, p.n_ops);
    ops_seen[p.n_ops]++;
  }
  for (int k = 1; k <= 6; k++) CHECK(ops_seen[k] > 0);
  CHECK_EQ_INT(ops_seen[7], 0);
}

TEST(arith_deterministic_and_splits_disjoint) {
  task_arith_options opt;
  task_arith_default_options(&opt);
  task_arith_problem a, b;
  task_arith_generate(&opt, 1, TASK_SPLIT_TRAIN, 42, &a);
  task_arith_generate(&opt, 1, TASK_SPLIT_TRAIN, 42, &b);
  CHECK_STR(a.question, b.question);
  CHECK_STR(a.solution, b.solution);
  task_arith_generate(&opt, 2, TASK_SPLIT_TRAIN, 42, &b);
  CHECK(strcmp(a.expression, b.expression) != 0);
  int eval_count = 0;
  for (uint64_t i = 0; i < 2000; i++) {
    task_arith_generate(&opt, 1, TASK_SPLIT_TRAIN, i, &a);
    CHECK(task_arith_split_of(&opt, a.expression) == TASK_SPLIT_TRAIN);
    task_arith_generate(&opt, 1, TASK_SPLIT_EVAL, i, &b);
    CHECK(task_arith_split_of(&opt, b.expression) == TASK_SPLIT_EVAL);
    eval_count++;
  }
  CHECK_EQ_INT(eval_count, 2000);
}

TEST(arith_option_validation) {
  task_arith_options opt;
  grpo_error err = {0};
  task_arith_default_options(&opt);
  opt.max_ops = 9;
  CHECK_EQ_INT(task_arith_validate(&opt, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "max_ops") != NULL);
  task_arith_default_options(&opt);
  opt.max_abs_value = 10;
  CHECK_EQ_INT(task_arith_validate(&opt, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "max_abs_value") != NULL);
  task_arith_default_options(&opt);
  opt.min_ops = 0;
  CHECK_EQ_INT(task_arith_validate(&opt, &err), GRPO_EINVAL);
}

int main(void) {
  RUN(real_benchmark_layouts);
  RUN(olympiad_multiple_answers_joined);
  RUN(gold_rules);
  RUN(bad_rows_are_skipped_and_counted);
  RUN(cursor_is_a_permutation_and_restorable);
  RUN(prompt_templates);
  RUN(arith_answers_match_an_independent_evaluator);
  RUN(arith_deterministic_and_splits_disjoint);
  RUN(arith_option_validation);
  return test_summary();
}
