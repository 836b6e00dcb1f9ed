#include "tasks/arith.h"

#include <stdio.h>
#include <string.h>

#include "core/philox.h"

void task_arith_default_options(task_arith_options *opt) {
  opt->min_ops = 2;
  opt->max_ops = 3;
  opt->max_operand = 20;
  opt->allow_sub = 1;
  opt->allow_mul = 1;
  opt->allow_div = 0;
  opt->allow_negative = 0;
  opt->max_abs_value = 1000;
  opt->eval_bucket_per_mille = 100;
}

int task_arith_validate(const task_arith_options *opt, grpo_error *err) {
  if (opt->min_ops < 1 || opt->min_ops > TASK_ARITH_MAX_OPS)
    return GRPO_FAIL(err, GRPO_EINVAL, "arith min_ops must be in [1, %d], got %d",
                     TASK_ARITH_MAX_OPS, opt->min_ops);
  if (opt->max_ops < opt->min_ops || opt->max_ops > TASK_ARITH_MAX_OPS)
    return GRPO_FAIL(err, GRPO_EINVAL, "arith max_ops must be in [min_ops=%d, %d], got %d",
                     opt->min_ops, TASK_ARITH_MAX_OPS, opt->max_ops);
  if (opt->max_operand < 1 || opt->max_operand > 10000)
    return GRPO_FAIL(err, GRPO_EINVAL, "arith max_operand must be in [1, 10000], got %d",
                     opt->max_operand);
  /* An all-+ expression must fit, so rejection sampling always terminates fast. */
  long long floor = (long long)(opt->max_ops + 1) * opt->max_operand;
  if (opt->max_abs_value < floor || opt->max_abs_value > 1000000000LL)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "arith max_abs_value must be in [(max_ops+1)*max_operand = %lld, 1e9], got %lld",
                     floor, opt->max_abs_value);
  if (opt->eval_bucket_per_mille < 1 || opt->eval_bucket_per_mille > 500)
    return GRPO_FAIL(err, GRPO_EINVAL, "arith eval share must be in [1, 500] per mille, got %d",
                     opt->eval_bucket_per_mille);
  return GRPO_OK;
}

/* Expression tree in a fixed array: nodes 0..n_ops are leaves, the rest ops. */
typedef struct node {
  char op;            /* 0 for a leaf */
  int left, right;
  long long value;
} node;

typedef struct tree {
  node nodes[2 * TASK_ARITH_MAX_OPS + 1];
  int n;
} tree;

static int precedence(char op) { return op == '+' || op == '-' ? 1 : op ? 2 : 3; }

static int build(tree *t, int n_ops, const task_arith_options *opt, grpo_rng_stream *s) {
  if (n_ops == 0) {
    node *leaf = &t->nodes[t->n];
    leaf->op = 0;
    leaf->value = (long long)grpo_rng_stream_below(s, (uint32_t)opt->max_operand + 1);
    return t->n++;
  }
  int k = (int)grpo_rng_stream_below(s, (uint32_t)n_ops); /* ops in the left subtree */
  int l = build(t, k, opt, s);
  if (l < 0) return -1;
  int r = build(t, n_ops - 1 - k, opt, s);
  if (r < 0) return -1;
  char ops[4];
  int n = 0;
  ops[n++] = '+';
  if (opt->allow_sub) ops[n++] = '-';
  if (opt->allow_mul) ops[n++] = '*';
  if (opt->allow_div) ops[n++] = '/';
  char op = ops[grpo_rng_stream_below(s, (uint32_t)n)];
  long long a = t->nodes[l].value, b = t->nodes[r].value;
  /* An operator that breaks a constraint falls back to +, keeping the
   * tree's shape; if + breaks the bound too, the candidate is dropped. */
  long long v = 0;
  for (int tries = 0;; tries++) {
    int ok = 1;
    switch (op) {
      case '+': v = a + b; break;
      case '-': v = a - b; ok = opt->allow_negative || v >= 0; break;
      case '*': v = a * b; break;
      case '/': ok = b != 0 && a % b == 0; v = ok ? a / b : 0; break;
    }
    if (ok && (v > opt->max_abs_value || v < -opt->max_abs_value)) ok = 0;
    if (ok) break;
    if (tries == 1) return -1;
    op = '+';
  }
  node *nd = &t->nodes[t->n];
  nd->op = op;
  nd->left = l;
  nd->right = r;
  nd->value = v;
  return t->n++;
}

static int needs_parens(char parent, char child, int is_right) {
  if (!child) return 0;
  int pp = precedence(parent), pc = precedence(child);
  if (pc < pp) return 1;
  if (is_right && pc == pp && (parent == '-' || parent == '/' || child == '/')) return 1;
  return 0;
}

static void append(char *buf, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > cap) n = cap - *len - 1;
  memcpy(buf + *len, s, n);
  *len += n;
  buf[*len] = '\0';
}

static void print_value(char *buf, size_t cap, size_t *len, long long v) {
  char num[32];
  snprintf(num, sizeof num, v < 0 ? "(%lld)" : "%lld", v);
  append(buf, cap, len, num);
}

static void print_expr(const tree *t, int i, char *buf, size_t cap, size_t *len) {
  const node *nd = &t->nodes[i];
  if (!nd->op) {
    print_value(buf, cap, len, nd->value);
    return;
  }
  char opstr[4] = {' ', nd->op, ' ', 0};
  int pl = needs_parens(nd->op, t->nodes[nd->left].op, 0);
  int pr = needs_parens(nd->op, t->nodes[nd->right].op, 1);
  if (pl) append(buf, cap, len, "(");
  print_expr(t, nd->left, buf, cap, len);
  if (pl) append(buf, cap, len, ")");
  append(buf, cap, len, opstr);
  if (pr) append(buf, cap, len, "(");
  print_expr(t, nd->right, buf, cap, len);
  if (pr) append(buf, cap, len, ")");
}

/* Post-order: one step per operation, in the order a person evaluates. */
static void print_steps(const tree *t, int i, char *buf, size_t cap, size_t *len) {
  const node *nd = &t->nodes[i];
  if (!nd->op) return;
  print_steps(t, nd->left, buf, cap, len);
  print_steps(t, nd->right, buf, cap, len);
  char opstr[4] = {' ', nd->op, ' ', 0};
  print_value(buf, cap, len, t->nodes[nd->left].value);
  append(buf, cap, len, opstr);
  print_value(buf, cap, len, t->nodes[nd->right].value);
  append(buf, cap, len, " = ");
  print_value(buf, cap, len, nd->value);
  append(buf, cap, len, ". ");
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

task_split task_arith_split_of(const task_arith_options *opt, const char *expression) {
  return fnv1a(expression) % 1000 < (uint64_t)opt->eval_bucket_per_mille ? TASK_SPLIT_EVAL
                                                                         : TASK_SPLIT_TRAIN;
}

void task_arith_generate(const task_arith_options *opt, uint64_t seed, task_split split,
                         uint64_t index, task_arith_problem *out) {
  grpo_rng_stream s;
  grpo_rng_stream_init(&s, seed, GRPO_RNG_TASK, (uint32_t)index,
                       (uint32_t)(index >> 32) ^ ((uint32_t)split << 31));
  tree t;
  /* Rejection sampling into the split's bucket; the stream keeps advancing
   * so each attempt is a fresh candidate. */
  for (;;) {
    t.n = 0;
    int n_ops = opt->min_ops +
                (int)grpo_rng_stream_below(&s, (uint32_t)(opt->max_ops - opt->min_ops + 1));
    int root = build(&t, n_ops, opt, &s);
    if (root < 0) continue;
    size_t len = 0;
    out->expression[0] = '\0';
    print_expr(&t, root, out->expression, sizeof out->expression, &len);
    if (task_arith_split_of(opt, out->expression) != split) continue;
    out->value = t.nodes[root].value;
    out->n_ops = n_ops;
    snprintf(out->answer, sizeof out->answer, "%lld", out->value);
    snprintf(out->question, sizeof out->question, "Compute %s.", out->expression);
    len = 0;
    out->solution[0] = '\0';
    print_steps(&t, root, out->solution, sizeof out->solution, &len);
    append(out->solution, sizeof out->solution, &len, "The answer is \\boxed{");
    append(out->solution, sizeof out->solution, &len, out->answer);
    append(out->solution, sizeof out->solution, &len, "}.");
    return;
  }
}
