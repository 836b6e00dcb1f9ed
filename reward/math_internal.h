/* Private to the math verifier (reward/math_*.c): scratch context, expression
 * tree, parser and evaluator entry points. Not a public API. */
#ifndef GRPO_REWARD_MATH_INTERNAL_H
#define GRPO_REWARD_MATH_INTERNAL_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#include "reward/math_verify.h"

__extension__ typedef __int128 mv_i128;

enum {
  MV_MAX_NODES = 2048,  /* hard ceiling; options may lower it */
  MV_MAX_DEPTH = 96,    /* tree depth and parser recursion depth */
  MV_MAX_ANSWER = 4096, /* bytes of an extracted answer that are parsed */
  MV_TEXT_BUF = 4096,   /* normalised words of text answers */
  MV_NAME = 24,         /* variable / word name bytes */
};

typedef enum mv_kind {
  MV_NUM = 1,   /* exact rational (q) or inexact double (d) */
  MV_CONST,     /* op: 'p' pi, 'e' Euler, 'i' imaginary unit, 'I' infinity */
  MV_VAR,       /* name */
  MV_ADD,       /* n-ary sum of kids */
  MV_MUL,       /* n-ary product of kids */
  MV_NEG,       /* -kid */
  MV_DIV,       /* kid / kid->next */
  MV_POW,       /* kid ^ kid->next */
  MV_FUNC,      /* op = mv_fn, one kid (log with base: two kids, base first) */
  MV_FACT,      /* kid! */
  MV_PM,        /* a \pm b (kids a, b); unary: a = 0 */
  MV_TUPLE,     /* (a, b, ...); flags MV_F_PAREN when written with () */
  MV_SET,       /* \{a, b\} */
  MV_LIST,      /* bare top-level list a, b (or "a and b") */
  MV_INTERVAL,  /* kids lo, hi; flags MV_F_LOPEN / MV_F_HOPEN */
  MV_UNION,     /* kids: intervals or sets */
  MV_REL,       /* chain: kids e0, e1, ...; ops in rel[] (node op = count) */
  MV_MATRIX,    /* rows x cols kids, row-major; n = rows, op = cols */
  MV_TEXT,      /* words: text offset/length in ctx->text */
  MV_SETCONST,  /* op: 'R' reals, '0' empty set */
} mv_kind;

enum {
  MV_F_PCT = 1,     /* written with a % sign */
  MV_F_DEG = 2,     /* written with ^\circ */
  MV_F_PAREN = 4,   /* tuple written with parentheses (could be an open interval) */
  MV_F_LOPEN = 8,
  MV_F_HOPEN = 16,
  MV_F_DEC = 32,    /* number written as a decimal */
  MV_F_UNIT = 64,   /* a unit word was stripped */
};

typedef enum mv_fn {
  MV_FN_SIN = 1, MV_FN_COS, MV_FN_TAN, MV_FN_COT, MV_FN_SEC, MV_FN_CSC,
  MV_FN_ASIN, MV_FN_ACOS, MV_FN_ATAN, MV_FN_SINH, MV_FN_COSH, MV_FN_TANH,
  MV_FN_LN, MV_FN_LOG10, MV_FN_LOGB, MV_FN_EXP, MV_FN_ABS, MV_FN_SQRT, MV_FN_ROOT,
  MV_FN_PRIME, /* f' style derivative mark: opaque, compared structurally */
  MV_FN_SUB,   /* subscript on a non-variable: opaque */
  MV_FN_BINOM, /* binomial coefficient, kids n, k */
  MV_FN_CEIL, MV_FN_FLOOR,
} mv_fn;

/* Relation operators in a chain. */
enum { MV_R_EQ = 1, MV_R_LT, MV_R_LE, MV_R_GT, MV_R_GE, MV_R_NE, MV_R_APPROX, MV_R_IN };

typedef struct mv_node {
  uint8_t kind, op, flags;
  uint8_t rel[6];     /* MV_REL: operators between kids */
  int16_t depth;
  int n;              /* number of kids */
  int kid, next;      /* first child, next sibling; -1 none */
  int ndec, sig;      /* MV_NUM: digits after the point (-1 none), significant digits */
  int exact;          /* MV_NUM: q is exact */
  mv_i128 qn, qd;     /* MV_NUM exact value qn/qd, qd > 0 */
  double d;           /* MV_NUM value as double */
  int toff, tlen;     /* MV_TEXT */
  char name[MV_NAME]; /* MV_VAR */
} mv_node;

typedef struct mv_ctx {
  const reward_math_options *opt;
  mv_node *nodes;
  int nnodes, max_nodes;
  long steps, max_steps;
  int budget_hit;
  char text[MV_TEXT_BUF];
  int ntext;
  char err[96];
  char alias_from[MV_NAME], alias_to[MV_NAME]; /* dummy-variable renaming */
} mv_ctx;

/* Extraction (math_extract.c). Writes the answer span into out (NUL
 * terminated, at most cap-1 bytes) and returns the rule, or NONE. */
reward_math_rule mv_extract_pred(const char *s, size_t n, const reward_math_options *opt, char *out,
                                 size_t cap, char *why, size_t whycap);
/* Gold: #### N tail, \boxed, or the whole text. Returns 0 when empty. */
int mv_extract_gold(const char *s, size_t n, char *out, size_t cap);
/* Last (want_last) or first span of math-looking text with a digit. */
int mv_math_span(const char *s, size_t n, int want_last, char *out, size_t cap);
int mv_last_number(const char *s, size_t n, char *out, size_t cap);

/* Parser (math_parse.c): returns the root node or -1 with ctx->err set. */
int mv_parse(mv_ctx *c, const char *s, size_t n);
/* Prints a tree (debugging / diagnostics), truncated to cap. */
void mv_print(const mv_ctx *c, int node, char *out, size_t cap);

/* Equivalence (math_equiv.c): 1 equal, 0 not, with a reason. */
int mv_equivalent(mv_ctx *c, int gold, int pred, char *why, size_t whycap);

static inline int mv_step(mv_ctx *c, long k) {
  c->steps += k;
  if (c->steps > c->max_steps) {
    c->budget_hit = 1;
    return 0;
  }
  return 1;
}

#endif
