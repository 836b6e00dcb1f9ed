/* LaTeX / plain-math lexer and parser for the verifier: a pull lexer over the
 * answer bytes and a precedence parser that builds an expression tree in the
 * caller's node pool. Recursion is bounded by MV_MAX_DEPTH, work by the
 * context's step budget, size by the node pool. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reward/math_internal.h"

enum {
  T_END = 0, T_NUM, T_VAR, T_WORD, T_CONST, T_FUNC, T_FRAC, T_SQRT, T_BINOM,
  T_PLUS, T_MINUS, T_STAR, T_SLASH, T_CARET, T_UNDER, T_BANG, T_PCT, T_CIRC,
  T_LP, T_RP, T_LB, T_RB, T_LBR, T_RBR, T_LSET, T_RSET, T_COMMA, T_SEMI, T_REL,
  T_PM, T_CUP, T_BEGIN, T_ENDENV, T_AMP, T_ROWSEP, T_SETC, T_BAD, T_PRIME, T_DOTS,
  T_COLON, T_BAR, T_SUPNUM, T_MATHBB, T_LCEIL, T_RCEIL, T_LFLOOR, T_RFLOOR,
};

typedef struct tok {
  int t, op;
  size_t at;          /* byte offset of the token */
  int exact, ndec, sig, plain;
  mv_i128 qn, qd;
  double d;
  char name[MV_NAME];
} tok;

typedef struct lexer {
  mv_ctx *c;
  const char *s;
  size_t n, pos;
  int brace;          /* current { depth */
  int text_stack[8];  /* brace depths at which text mode ends */
  int ntext;
  tok la;             /* lookahead */
  int has_la;
  int depth;          /* parser recursion depth */
  int failed;
  int paren;          /* ( [ \{ depth: no comma digit groups inside */
} lexer;

/* ---- lexer ---------------------------------------------------------------- */

static int in_text(const lexer *L) { return L->ntext > 0; }

typedef struct cmd_entry {
  const char *name;
  int t, op;
} cmd_entry;

/* op for T_SKIP-like wrappers: text-mode (1) or transparent (2) handled apart. */
static const cmd_entry CMDS[] = {
    {"frac", T_FRAC, 0}, {"dfrac", T_FRAC, 0}, {"tfrac", T_FRAC, 0}, {"cfrac", T_FRAC, 0},
    {"sqrt", T_SQRT, 0}, {"binom", T_BINOM, 0}, {"dbinom", T_BINOM, 0}, {"tbinom", T_BINOM, 0},
    {"pi", T_CONST, 'p'}, {"infty", T_CONST, 'I'}, {"infinity", T_CONST, 'I'},
    {"imath", T_CONST, 'i'},
    {"sin", T_FUNC, MV_FN_SIN}, {"cos", T_FUNC, MV_FN_COS}, {"tan", T_FUNC, MV_FN_TAN},
    {"cot", T_FUNC, MV_FN_COT}, {"sec", T_FUNC, MV_FN_SEC}, {"csc", T_FUNC, MV_FN_CSC},
    {"arcsin", T_FUNC, MV_FN_ASIN}, {"arccos", T_FUNC, MV_FN_ACOS},
    {"arctan", T_FUNC, MV_FN_ATAN}, {"sinh", T_FUNC, MV_FN_SINH}, {"cosh", T_FUNC, MV_FN_COSH},
    {"tanh", T_FUNC, MV_FN_TANH}, {"ln", T_FUNC, MV_FN_LN}, {"log", T_FUNC, MV_FN_LN},
    {"lg", T_FUNC, MV_FN_LOG10}, {"exp", T_FUNC, MV_FN_EXP},
    {"cdot", T_STAR, 0}, {"times", T_STAR, 0}, {"ast", T_STAR, 0}, {"div", T_SLASH, 0},
    {"pm", T_PM, '+'}, {"mp", T_PM, '-'},
    {"le", T_REL, MV_R_LE}, {"leq", T_REL, MV_R_LE}, {"leqslant", T_REL, MV_R_LE},
    {"ge", T_REL, MV_R_GE}, {"geq", T_REL, MV_R_GE}, {"geqslant", T_REL, MV_R_GE},
    {"lt", T_REL, MV_R_LT}, {"gt", T_REL, MV_R_GT}, {"ne", T_REL, MV_R_NE},
    {"neq", T_REL, MV_R_NE}, {"approx", T_REL, MV_R_APPROX}, {"in", T_REL, MV_R_IN},
    {"cup", T_CUP, 0}, {"circ", T_CIRC, 0}, {"degree", T_CIRC, 0},
    {"emptyset", T_SETC, '0'}, {"varnothing", T_SETC, '0'},
    {"langle", T_LP, 0}, {"rangle", T_RP, 0}, {"lbrace", T_LSET, 0}, {"rbrace", T_RSET, 0},
    {"ldots", T_DOTS, 0}, {"cdots", T_DOTS, 0}, {"dots", T_DOTS, 0}, {"prime", T_PRIME, 0},
    {"lceil", T_LCEIL, 0}, {"rceil", T_RCEIL, 0}, {"lfloor", T_LFLOOR, 0},
    {"rfloor", T_RFLOOR, 0}, {"max", T_WORD, 'x'}, {"min", T_WORD, 'n'},
    {"mid", T_BAR, 0}, {"vert", T_BAR, 0}, {"colon", T_COLON, 0}, {"mathbb", T_MATHBB, 0},
};

static const char *const SKIP_CMDS[] = {
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl",
    "biggr", "displaystyle", "textstyle", "limits", "nolimits", "quad", "qquad", "mathopen",
    "mathclose", "nonumber", "notag", "middle", "enspace", "thinspace", "medspace",
};

/* Wrappers whose braced argument is text (words, units, names). */
static const char *const TEXT_CMDS[] = {
    "text", "textbf", "textit", "textrm", "textsf", "texttt", "mathrm", "mathbf", "mathit",
    "mathsf", "mathcal", "mathscr", "mathfrak", "mbox", "hbox", "operatorname", "emph", "bm",
    "boldsymbol", "textnormal", "textup", "mathtt",
};

/* Decorations that keep their argument as math. */
static const char *const TRANSPARENT_CMDS[] = {
    "overline", "underline", "hat", "vec", "bar", "tilde", "widehat", "widetilde",
    "overrightarrow", "boxed", "fbox", "underbrace", "overbrace", "color", "phantom",
};

static const char *const GREEK[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon",
    "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma",
    "Phi", "Psi", "Omega", "ell",
};

/* Plain-text function names (no backslash). */
static const cmd_entry PLAIN[] = {
    {"sqrt", T_SQRT, 1}, {"pi", T_CONST, 'p'}, {"exp", T_FUNC, MV_FN_EXP},
    {"sin", T_FUNC, MV_FN_SIN}, {"cos", T_FUNC, MV_FN_COS}, {"tan", T_FUNC, MV_FN_TAN},
    {"ln", T_FUNC, MV_FN_LN}, {"log", T_FUNC, MV_FN_LN}, {"arcsin", T_FUNC, MV_FN_ASIN},
    {"arccos", T_FUNC, MV_FN_ACOS}, {"arctan", T_FUNC, MV_FN_ATAN}, {"cot", T_FUNC, MV_FN_COT},
    {"sec", T_FUNC, MV_FN_SEC}, {"csc", T_FUNC, MV_FN_CSC}, {"abs", T_FUNC, MV_FN_ABS},
    {"infinity", T_CONST, 'I'}, {"infty", T_CONST, 'I'}, {"inf", T_CONST, 'I'},
};

/* Two-letter runs that are words (units, connectives) rather than x*y. */
static const char *const WORD2[] = {
    "or", "cm", "km", "kg", "mm", "mg", "ml", "mL", "hr", "ft", "yd", "lb", "oz", "mi", "is",
    "of", "to", "am", "pm", "in", "sq", "cu", "ms", "kW", "kJ", "th", "st", "nd", "rd",
};

static int name_in(const char *p, size_t len, const char *const *list, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (strlen(list[i]) == len && memcmp(list[i], p, len) == 0) return 1;
  return 0;
}

static const cmd_entry *cmd_find(const cmd_entry *tab, size_t count, const char *p, size_t len) {
  for (size_t i = 0; i < count; i++)
    if (strlen(tab[i].name) == len && memcmp(tab[i].name, p, len) == 0) return &tab[i];
  return NULL;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int lx_fail(lexer *L, const char *msg) {
  if (!L->failed) snprintf(L->c->err, sizeof L->c->err, "%s at byte %zu", msg, L->pos);
  L->failed = 1;
  return T_BAD;
}

static int is_digit_at(const lexer *L, size_t p) { return p < L->n && isdigit((unsigned char)L->s[p]); }

static size_t digit_run(const lexer *L, size_t p) {
  size_t k = 0;
  while (p + k < L->n && isdigit((unsigned char)L->s[p + k])) k++;
  return k;
}

/* A digit-group separator at p followed by a group of `want` digits (2 or 3)
 * that is not followed by another digit: returns the separator length. */
static size_t group_sep(const lexer *L, size_t p, int allow_two) {
  static const char *const seps[] = {",\\!", "{,}", "\\,", "\\!", "\\ ", "\\;", ",", " ", "\\:"};
  for (size_t i = 0; i < COUNT(seps); i++) {
    size_t k = strlen(seps[i]);
    if (p + k > L->n || memcmp(L->s + p, seps[i], k) != 0) continue;
    size_t g = digit_run(L, p + k);
    if (g == 3 || (allow_two && i == 0 && g == 2)) {
      /* "1,234.5" is fine; "1,2345" is not a group */
      return k;
    }
  }
  return 0;
}

static void lex_number(lexer *L, tok *t) {
  char digits[64];
  int nd = 0, ndec = -1, overflow = 0;
  size_t p = L->pos;
  size_t first = digit_run(L, p);
  int allow_group = first >= 1 && first <= 3;
  int indian = 0;
  for (size_t k = 0; k < first; k++) {
    if (nd < 60) digits[nd++] = L->s[p + k];
    else overflow = 1;
  }
  p += first;
  while (allow_group) {
    size_t sep = group_sep(L, p, 1);
    if (!sep) break;
    if (L->s[p] == ',' && L->paren > 0) break; /* (3,331) is a pair */
    if (L->s[p] == ',' && sep == 3) indian = 1;
    /* a plain space or comma must be followed by exactly three digits */
    size_t g = digit_run(L, p + sep);
    if (g == 2 && !indian) break;
    for (size_t k = 0; k < g; k++) {
      if (nd < 60) digits[nd++] = L->s[p + sep + k];
      else overflow = 1;
    }
    p += sep + g;
  }
  if (p < L->n && L->s[p] == '.' && is_digit_at(L, p + 1)) {
    p++;
    ndec = 0;
    while (is_digit_at(L, p)) {
      if (nd < 60) digits[nd++] = L->s[p];
      else overflow = 1;
      ndec++;
      p++;
    }
  }
  int exp10 = 0;
  if (p + 1 < L->n && (L->s[p] == 'e' || L->s[p] == 'E')) {
    size_t q = p + 1;
    int sign = 1;
    if (L->s[q] == '+' || L->s[q] == '-') {
      sign = L->s[q] == '-' ? -1 : 1;
      q++;
    }
    size_t g = digit_run(L, q);
    if (g > 0 && g <= 4) {
      exp10 = sign * atoi(L->s + q);
      p = q + g;
    }
  }
  L->pos = p;
  t->t = T_NUM;
  t->ndec = ndec;
  int lead = 0;
  while (lead < nd - 1 && digits[lead] == '0') lead++;
  t->sig = nd - lead;
  if (ndec >= 0) {
    /* significant digits of 0.0083 are 2 */
    int k = 0;
    while (k < nd && digits[k] == '0') k++;
    t->sig = nd - k;
  }
  digits[nd] = '\0';
  /* exact value: mantissa / 10^ndec * 10^exp10 when it fits */
  int scale = (ndec > 0 ? ndec : 0) - exp10;
  t->exact = 0;
  if (!overflow && nd - lead <= 36 && scale <= 36 && scale >= -36 + (nd - lead)) {
    mv_i128 m = 0;
    for (int k = 0; k < nd; k++) m = m * 10 + (digits[k] - '0');
    mv_i128 d = 1;
    for (int k = 0; k < (scale > 0 ? scale : -scale); k++) d *= 10;
    if (scale >= 0) {
      t->qn = m;
      t->qd = d;
    } else {
      t->qn = m * d;
      t->qd = 1;
    }
    t->exact = 1;
  }
  char buf[80];
  snprintf(buf, sizeof buf, "%.*s%se%d", ndec >= 0 ? nd - ndec : nd, digits,
           "", exp10 - (ndec > 0 ? ndec : 0));
  /* rebuild as integer digits then exponent */
  snprintf(buf, sizeof buf, "%se%d", digits, exp10 - (ndec > 0 ? ndec : 0));
  t->d = strtod(buf, NULL);
}

/* Reads "{name}" after \begin / \end; returns the name length (0 if none). */
static size_t env_name(lexer *L, char *out, size_t cap) {
  size_t p = L->pos;
  while (p < L->n && L->s[p] == ' ') p++;
  if (p >= L->n || L->s[p] != '{') return 0;
  size_t q = p + 1, k = 0;
  while (q < L->n && L->s[q] != '}' && k + 1 < cap) out[k++] = L->s[q++];
  out[k] = '\0';
  if (q >= L->n || L->s[q] != '}') return 0;
  L->pos = q + 1;
  return k ? k : 1;
}

static int lex_command(lexer *L, tok *t) {
  size_t p = L->pos + 1; /* after the backslash */
  if (p >= L->n) return T_END;
  char ch = L->s[p];
  if (!isalpha((unsigned char)ch)) {
    L->pos = p + 1;
    switch (ch) {
      case '{': L->paren++; return T_LSET;
      case '}': L->paren--; return T_RSET;
      case '%': return T_PCT;
      case '$': case ',': case '!': case ';': case ':': case ' ': case '>': case '\n': case '\t':
        return -1; /* spacing and currency: skip */
      case '(': case ')': case '[': case ']': return -1; /* math delimiters */
      case '|': return T_BAR;
      case '\\':
        /* a doubled backslash before a letter is an escaping typo */
        if (p + 1 < L->n && isalpha((unsigned char)L->s[p + 1])) {
          L->pos = p;
          return lex_command(L, t);
        }
        return T_ROWSEP;
      default: return lx_fail(L, "unknown control symbol");
    }
  }
  size_t q = p;
  while (q < L->n && isalpha((unsigned char)L->s[q])) q++;
  const char *nm = L->s + p;
  size_t len = q - p;
  L->pos = q;
  if (name_in(nm, len, SKIP_CMDS, COUNT(SKIP_CMDS))) {
    return -1;
  }
  if (name_in(nm, len, TEXT_CMDS, COUNT(TEXT_CMDS))) {
    size_t r = q;
    while (r < L->n && L->s[r] == ' ') r++;
    if (r < L->n && L->s[r] == '{') {
      /* \operatorname{sin}, \mathrm{ln}: a function, never a dropped unit word */
      size_t a = r + 1, b, e;
      while (a < L->n && L->s[a] == ' ') a++;
      for (b = a; b < L->n && isalpha((unsigned char)L->s[b]);) b++;
      for (e = b; e < L->n && L->s[e] == ' ';) e++;
      const cmd_entry *f = b > a && e < L->n && L->s[e] == '}'
                               ? cmd_find(CMDS, COUNT(CMDS), L->s + a, b - a)
                               : NULL;
      if (f && f->t == T_FUNC) {
        L->pos = e + 1;
        t->op = f->op;
        t->plain = 0;
        return T_FUNC;
      }
    }
    if (r < L->n && L->s[r] == '{' && L->ntext < 8) {
      L->pos = r + 1;
      L->brace++;
      L->text_stack[L->ntext++] = L->brace;
    }
    return -1;
  }
  if (name_in(nm, len, TRANSPARENT_CMDS, COUNT(TRANSPARENT_CMDS))) return -1;
  if (name_in(nm, len, GREEK, COUNT(GREEK))) {
    t->name[0] = '\\';
    size_t k = len < MV_NAME - 2 ? len : MV_NAME - 2;
    memcpy(t->name + 1, nm, k);
    t->name[k + 1] = '\0';
    return T_VAR;
  }
  if (len == 5 && memcmp(nm, "begin", 5) == 0) {
    char env[32];
    if (!env_name(L, env, sizeof env)) return lx_fail(L, "\\begin without {name}");
    if (strstr(env, "matrix") || strcmp(env, "array") == 0) {
      if (strcmp(env, "array") == 0) {
        size_t r = L->pos;
        while (r < L->n && L->s[r] == ' ') r++;
        if (r < L->n && L->s[r] == '{') {
          while (r < L->n && L->s[r] != '}') r++;
          L->pos = r < L->n ? r + 1 : r;
        }
      }
      return T_BEGIN;
    }
    return -1; /* aligned, cases, ...: transparent */
  }
  if (len == 3 && memcmp(nm, "end", 3) == 0) {
    char env[32];
    if (!env_name(L, env, sizeof env)) return lx_fail(L, "\\end without {name}");
    if (strstr(env, "matrix") || strcmp(env, "array") == 0) return T_ENDENV;
    return -1;
  }
  const cmd_entry *e = cmd_find(CMDS, COUNT(CMDS), nm, len);
  if (e) {
    t->op = e->op;
    t->plain = 0;
    if (e->t == T_WORD) snprintf(t->name, MV_NAME, "%s", e->name);
    return e->t;
  }
  return lx_fail(L, "unsupported command");
}

/* Multi-byte UTF-8 math symbols. */
static int lex_utf8(lexer *L, tok *t) {
  static const struct {
    const char *u;
    int t, op;
  } U[] = {
      {"\xe2\x88\x92", T_MINUS, 0}, {"\xe2\x80\x93", T_MINUS, 0}, {"\xc3\x97", T_STAR, 0},
      {"\xc2\xb7", T_STAR, 0},      {"\xe2\x8b\x85", T_STAR, 0},  {"\xc3\xb7", T_SLASH, 0},
      {"\xcf\x80", T_CONST, 'p'},   {"\xe2\x88\x9e", T_CONST, 'I'}, {"\xe2\x89\xa4", T_REL, MV_R_LE},
      {"\xe2\x89\xa5", T_REL, MV_R_GE}, {"\xe2\x89\xa0", T_REL, MV_R_NE},
      {"\xe2\x89\x88", T_REL, MV_R_APPROX}, {"\xe2\x88\x9a", T_SQRT, 2},
      {"\xc2\xb0", T_CIRC, 0},      {"\xe2\x88\xaa", T_CUP, 0},   {"\xe2\x88\x88", T_REL, MV_R_IN},
      {"\xc2\xb1", T_PM, '+'},      {"\xc2\xb2", T_SUPNUM, 2},    {"\xc2\xb3", T_SUPNUM, 3},
      {"\xe2\x88\x85", T_SETC, '0'}, {"\xe2\x84\x9d", T_SETC, 'R'}, {"\xc2\xa0", -1, 0},
      {"\xe2\x80\x89", -1, 0},      {"\xe2\x80\xaf", -1, 0},      {"\xe2\x82\xac", -1, 0},
      {"\xc2\xa3", -1, 0},          {"\xc2\xa5", -1, 0},          {"\xe2\x82\xb9", -1, 0},
  };
  for (size_t i = 0; i < COUNT(U); i++) {
    size_t k = strlen(U[i].u);
    if (L->pos + k <= L->n && memcmp(L->s + L->pos, U[i].u, k) == 0) {
      L->pos += k;
      t->op = U[i].op;
      t->plain = 1;
      return U[i].t;
    }
  }
  return lx_fail(L, "non-math character");
}

static void lex_raw(lexer *L, tok *t) {
  for (;;) {
    memset(t, 0, sizeof *t);
    if (L->failed || !mv_step(L->c, 1)) {
      if (!L->failed) snprintf(L->c->err, sizeof L->c->err, "step budget exhausted");
      L->failed = 1;
      t->t = T_END;
      return;
    }
    while (L->pos < L->n && isspace((unsigned char)L->s[L->pos])) L->pos++;
    t->at = L->pos;
    if (L->pos >= L->n) {
      t->t = T_END;
      return;
    }
    unsigned char ch = (unsigned char)L->s[L->pos];
    int r;
    if (isdigit(ch) || (ch == '.' && is_digit_at(L, L->pos + 1))) {
      lex_number(L, t);
      return;
    }
    if (isalpha(ch)) {
      size_t q = L->pos;
      while (q < L->n && isalpha((unsigned char)L->s[q])) q++;
      size_t len = q - L->pos;
      const char *w = L->s + L->pos;
      if (!in_text(L) && len >= 2) {
        const cmd_entry *e = cmd_find(PLAIN, COUNT(PLAIN), w, len);
        if (e) {
          L->pos = q;
          t->t = e->t;
          t->op = e->op;
          t->plain = 1;
          return;
        }
      }
      int word = in_text(L) || len >= 3 || (len == 2 && name_in(w, 2, WORD2, COUNT(WORD2)));
      if (!word) len = 1;
      size_t k = len < MV_NAME - 1 ? len : MV_NAME - 1;
      memcpy(t->name, w, k);
      t->name[k] = '\0';
      L->pos += len;
      t->t = word ? T_WORD : T_VAR;
      return;
    }
    if (ch >= 0x80) {
      r = lex_utf8(L, t);
      if (r < 0) continue;
      t->t = r;
      return;
    }
    L->pos++;
    switch (ch) {
      case '\\':
        L->pos--;
        r = lex_command(L, t);
        if (r < 0) continue;
        t->t = r;
        return;
      case '+': t->t = T_PLUS; return;
      case '-': t->t = T_MINUS; return;
      case '*':
        if (L->pos < L->n && L->s[L->pos] == '*') { /* ** power (Python) */
          L->pos++;
          t->t = T_CARET;
          return;
        }
        t->t = T_STAR;
        return;
      case '/': t->t = T_SLASH; return;
      case '^': t->t = T_CARET; return;
      case '_': t->t = T_UNDER; return;
      case '!': t->t = T_BANG; return;
      case '%': t->t = T_PCT; return;
      case '(': L->paren++; t->t = T_LP; return;
      case ')': L->paren--; t->t = T_RP; return;
      case '[': L->paren++; t->t = T_LB; return;
      case ']': L->paren--; t->t = T_RB; return;
      case '{':
        L->brace++;
        t->t = T_LBR;
        return;
      case '}':
        if (L->ntext > 0 && L->text_stack[L->ntext - 1] == L->brace) {
          /* end of \text{...}: the wrapper is transparent */
          L->ntext--;
          L->brace--;
          continue;
        }
        L->brace--;
        t->t = T_RBR;
        return;
      case ',': t->t = T_COMMA; return;
      case ';': t->t = T_SEMI; return;
      case ':': t->t = T_COLON; return;
      case '|': t->t = T_BAR; return;
      case '&': t->t = T_AMP; return;
      case '\'': t->t = T_PRIME; return;
      case '$': case '"': case '~': case '?': continue;
      case '=': t->t = T_REL; t->op = MV_R_EQ; return;
      case '<':
        t->t = T_REL;
        t->op = MV_R_LT;
        if (L->pos < L->n && L->s[L->pos] == '=') { L->pos++; t->op = MV_R_LE; }
        return;
      case '>':
        t->t = T_REL;
        t->op = MV_R_GT;
        if (L->pos < L->n && L->s[L->pos] == '=') { L->pos++; t->op = MV_R_GE; }
        return;
      case '.':
        if (L->pos + 1 < L->n && L->s[L->pos] == '.' && L->s[L->pos + 1] == '.') {
          L->pos += 2;
          t->t = T_DOTS;
          return;
        }
        continue; /* sentence full stop */
      default:
        t->t = lx_fail(L, "unexpected character");
        return;
    }
  }
}

static tok *peek(lexer *L) {
  /* every look costs a step, so no parser loop can spin without bound */
  if (L->failed || !mv_step(L->c, 1)) {
    if (!L->failed) snprintf(L->c->err, sizeof L->c->err, "step budget exhausted");
    L->failed = 1;
    L->la.t = T_END;
    L->has_la = 1;
    return &L->la;
  }
  if (!L->has_la) {
    lex_raw(L, &L->la);
    L->has_la = 1;
  }
  return &L->la;
}

static tok next(lexer *L) {
  tok t = *peek(L);
  L->has_la = 0;
  return t;
}

static int accept(lexer *L, int type) {
  if (peek(L)->t == type) {
    L->has_la = 0;
    return 1;
  }
  return 0;
}

/* ---- tree building -------------------------------------------------------- */

static int fail(lexer *L, const char *msg) {
  if (!L->failed) snprintf(L->c->err, sizeof L->c->err, "%s at byte %zu", msg, L->la.at);
  L->failed = 1;
  return -1;
}

static int node_new(lexer *L, int kind) {
  mv_ctx *c = L->c;
  if (c->nnodes >= c->max_nodes) return fail(L, "expression too large");
  if (!mv_step(c, 1)) return fail(L, "step budget exhausted");
  int id = c->nnodes++;
  mv_node *nd = &c->nodes[id];
  memset(nd, 0, offsetof(mv_node, qn));
  nd->kind = (uint8_t)kind;
  nd->kid = nd->next = -1;
  nd->depth = 1;
  nd->ndec = -1;
  nd->qn = 0;
  nd->qd = 1;
  nd->d = 0;
  nd->name[0] = '\0';
  return id;
}

/* Appends child to parent's kid list (kept short: the pool bounds it). */
static int add_kid(lexer *L, int parent, int child) {
  if (parent < 0 || child < 0) return -1;
  mv_node *P = &L->c->nodes[parent];
  mv_node *C = &L->c->nodes[child];
  C->next = -1;
  if (P->kid < 0) {
    P->kid = child;
  } else {
    int k = P->kid;
    long hops = 0;
    while (L->c->nodes[k].next >= 0) {
      k = L->c->nodes[k].next;
      hops++;
    }
    if (!mv_step(L->c, hops / 8)) return fail(L, "step budget exhausted");
    L->c->nodes[k].next = child;
  }
  P->n++;
  if (C->depth + 1 > P->depth) P->depth = (int16_t)(C->depth + 1);
  if (P->depth > MV_MAX_DEPTH) return fail(L, "expression nested too deeply");
  return parent;
}

static int node2(lexer *L, int kind, int a, int b) {
  if (a < 0 || b < 0) return -1;
  int id = node_new(L, kind);
  if (id < 0) return -1;
  if (add_kid(L, id, a) < 0 || add_kid(L, id, b) < 0) return -1;
  return id;
}

static int node1(lexer *L, int kind, int a) {
  if (a < 0) return -1;
  int id = node_new(L, kind);
  if (id < 0) return -1;
  return add_kid(L, id, a);
}

static int num_node(lexer *L, mv_i128 qn, mv_i128 qd) {
  int id = node_new(L, MV_NUM);
  if (id < 0) return -1;
  mv_node *nd = &L->c->nodes[id];
  nd->exact = 1;
  nd->qn = qn;
  nd->qd = qd;
  nd->d = (double)qn / (double)qd;
  nd->sig = 0;
  return id;
}

/* Sum/product builders flatten n-ary chains. */
static int join(lexer *L, int kind, int a, int b) {
  if (a < 0 || b < 0) return -1;
  if (L->c->nodes[a].kind == kind && L->c->nodes[a].flags == 0) return add_kid(L, a, b);
  return node2(L, kind, a, b);
}

/* ---- parser --------------------------------------------------------------- */

static int parse_rel(lexer *L);
static int parse_term(lexer *L, int fn_arg);
static int parse_unary(lexer *L);
static int parse_text(lexer *L);

static int enter(lexer *L) {
  if (++L->depth > MV_MAX_DEPTH) return fail(L, "nesting too deep");
  return 0;
}

static int leave(lexer *L, int r) {
  L->depth--;
  return r;
}

static int is_word(const tok *t, const char *w) {
  return t->t == T_WORD && strcasecmp(t->name, w) == 0;
}

static int is_qualifier(const tok *t) {
  return is_word(t, "for") || is_word(t, "where") || is_word(t, "when") || is_word(t, "with") ||
         is_word(t, "if") || is_word(t, "such");
}

static int list_sep(const tok *t) {
  return t->t == T_COMMA || t->t == T_SEMI || is_word(t, "and") || is_word(t, "or");
}

static int var_node(lexer *L, const char *name) {
  if (strcmp(name, "e") == 0 || strcmp(name, "i") == 0) {
    int id = node_new(L, MV_CONST);
    if (id >= 0) L->c->nodes[id].op = (uint8_t)name[0];
    return id;
  }
  int id = node_new(L, MV_VAR);
  if (id < 0) return -1;
  snprintf(L->c->nodes[id].name, MV_NAME, "%s", name);
  return id;
}

/* One TeX argument: {group}, a single digit of a number, or one token. */
static int parse_arg(lexer *L) {
  tok *t = peek(L);
  if (t->t == T_LBR) {
    next(L);
    if (enter(L) < 0) return -1;
    int r = parse_rel(L);
    if (r >= 0 && !accept(L, T_RBR)) return fail(L, "missing }");
    return leave(L, r);
  }
  if (t->t == T_NUM && t->at < L->n && isdigit((unsigned char)L->s[t->at])) {
    /* \frac12: a TeX argument is one character */
    size_t at = t->at;
    L->has_la = 0;
    L->pos = at + 1;
    return num_node(L, L->s[at] - '0', 1);
  }
  if (t->t == T_VAR) {
    tok v = next(L);
    return var_node(L, v.name);
  }
  if (t->t == T_CONST) {
    tok v = next(L);
    int id = node_new(L, MV_CONST);
    if (id >= 0) L->c->nodes[id].op = (uint8_t)v.op;
    return id;
  }
  if (t->t == T_FRAC || t->t == T_SQRT) return parse_unary(L);
  if (t->t == T_WORD) return parse_text(L);
  return fail(L, "expected an argument");
}

/* Items separated by commas up to the closing token; returns a TUPLE-like node. */
static int parse_items(lexer *L, int kind, int close1, int close2, int *closer) {
  int id = node_new(L, kind);
  if (id < 0) return -1;
  if (peek(L)->t == close1 || peek(L)->t == close2) {
    *closer = next(L).t;
    return id;
  }
  for (;;) {
    int e = parse_rel(L);
    if (e < 0) return -1;
    if (add_kid(L, id, e) < 0) return -1;
    tok *t = peek(L);
    if (t->t == T_COMMA || t->t == T_SEMI || is_word(t, "and")) {
      next(L);
      continue;
    }
    if (t->t == close1 || t->t == close2) {
      *closer = next(L).t;
      return id;
    }
    return fail(L, "unbalanced brackets");
  }
}

static int is_inf_node(const mv_ctx *c, int id) {
  if (id < 0) return 0;
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_NEG) n = &c->nodes[n->kid];
  return n->kind == MV_CONST && n->op == 'I';
}

static int parse_bracket(lexer *L, int open) {
  int closer = 0;
  if (enter(L) < 0) return -1;
  int id = parse_items(L, MV_TUPLE, T_RP, T_RB, &closer);
  if (id < 0) return leave(L, -1);
  mv_node *nd = &L->c->nodes[id];
  if (nd->n == 1 && ((open == T_LP && closer == T_RP) || (open == T_LB && closer == T_RB)))
    return leave(L, nd->kid); /* grouping */
  int k0 = nd->kid, k1 = k0 >= 0 ? L->c->nodes[k0].next : -1;
  int infinite_end = nd->n == 2 && (is_inf_node(L->c, k0) || is_inf_node(L->c, k1));
  if (nd->n == 2 && (open != T_LP || closer != T_RP || infinite_end)) {
    nd->kind = MV_INTERVAL;
    if (open == T_LP) nd->flags |= MV_F_LOPEN;
    if (closer == T_RP) nd->flags |= MV_F_HOPEN;
    return leave(L, id);
  }
  if (open == T_LP && closer == T_RP) nd->flags |= MV_F_PAREN;
  else if (open != (closer == T_RP ? T_LP : T_LB)) return leave(L, fail(L, "mismatched brackets"));
  return leave(L, id);
}

static int parse_matrix(lexer *L) {
  int id = node_new(L, MV_MATRIX);
  if (id < 0) return -1;
  int rows = 0, cols = -1, cur = 0;
  for (;;) {
    tok *t = peek(L);
    if (t->t == T_ENDENV) {
      next(L);
      if (cur > 0) {
        if (cols >= 0 && cur != cols) return fail(L, "ragged matrix");
        cols = cur;
        rows++;
      }
      break;
    }
    if (t->t == T_ROWSEP) {
      next(L);
      if (cur == 0) continue;
      if (cols >= 0 && cur != cols) return fail(L, "ragged matrix");
      cols = cur;
      rows++;
      cur = 0;
      continue;
    }
    int e = parse_rel(L);
    if (e < 0 || add_kid(L, id, e) < 0) return -1;
    cur++;
    if (accept(L, T_AMP)) {
      if (peek(L)->t == T_ROWSEP || peek(L)->t == T_ENDENV) return fail(L, "empty matrix cell");
      continue;
    }
    if (peek(L)->t != T_ROWSEP && peek(L)->t != T_ENDENV) return fail(L, "bad matrix cell");
  }
  if (rows == 0 || cols <= 0 || cols > 255) return fail(L, "empty matrix");
  L->c->nodes[id].op = (uint8_t)cols;
  return id;
}

/* Text answers: consecutive words (and numbers inside \text) joined by spaces. */
static int parse_text(lexer *L) {
  mv_ctx *c = L->c;
  int id = node_new(L, MV_TEXT);
  if (id < 0) return -1;
  c->nodes[id].toff = c->ntext;
  char orig[2] = {0, 0};
  int words = 0;
  while (peek(L)->t == T_WORD && !is_word(peek(L), "and") && !is_word(peek(L), "or")) {
    tok w = next(L);
    size_t k = strlen(w.name);
    if (c->ntext + (int)k + 2 >= MV_TEXT_BUF) return fail(L, "text too long");
    if (c->ntext > c->nodes[id].toff) c->text[c->ntext++] = ' ';
    if (words++ == 0) orig[0] = w.name[0];
    for (size_t j = 0; j < k; j++) c->text[c->ntext++] = (char)tolower((unsigned char)w.name[j]);
  }
  c->nodes[id].tlen = c->ntext - c->nodes[id].toff;
  if (words == 1 && c->nodes[id].tlen == 1) {
    /* a lone letter in \text{} or \mathrm{} is a choice letter or a name */
    c->ntext = c->nodes[id].toff;
    c->nnodes--; /* id is the last node: reuse the slot */
    return var_node(L, orig);
  }
  return id;
}

static int parse_func(lexer *L, tok f) {
  int power = -1, base = -1;
  for (int k = 0; k < 2; k++) {
    if (peek(L)->t == T_CARET) {
      next(L);
      power = parse_arg(L);
      if (power < 0) return -1;
    } else if (peek(L)->t == T_UNDER && f.op == MV_FN_LN) {
      next(L);
      base = parse_arg(L);
      if (base < 0) return -1;
    }
  }
  int arg;
  if (peek(L)->t == T_LP) {
    next(L);
    arg = parse_bracket(L, T_LP);
  } else {
    if (enter(L) < 0) return -1;
    arg = leave(L, parse_term(L, 1));
  }
  if (arg < 0) return -1;
  int id = node_new(L, MV_FUNC);
  if (id < 0) return -1;
  L->c->nodes[id].op = (uint8_t)(base >= 0 ? MV_FN_LOGB : f.op);
  if (base >= 0 && add_kid(L, id, base) < 0) return -1;
  if (add_kid(L, id, arg) < 0) return -1;
  if (power >= 0) {
    /* \sin^{-1} x is arcsin; other powers apply to the value */
    mv_node *pw = &L->c->nodes[power];
    if (pw->kind == MV_NEG && L->c->nodes[pw->kid].kind == MV_NUM &&
        L->c->nodes[pw->kid].exact && L->c->nodes[pw->kid].qn == 1 &&
        L->c->nodes[pw->kid].qd == 1 && f.op >= MV_FN_SIN && f.op <= MV_FN_TAN) {
      L->c->nodes[id].op = (uint8_t)(f.op - MV_FN_SIN + MV_FN_ASIN);
      return id;
    }
    return node2(L, MV_POW, id, power);
  }
  return id;
}

static int parse_atom(lexer *L) {
  tok *pt = peek(L);
  switch (pt->t) {
    case T_NUM: {
      tok t = next(L);
      int id = node_new(L, MV_NUM);
      if (id < 0) return -1;
      mv_node *nd = &L->c->nodes[id];
      nd->exact = t.exact;
      nd->qn = t.qn;
      nd->qd = t.qd;
      nd->d = t.d;
      nd->ndec = t.ndec;
      nd->sig = t.sig;
      if (t.ndec >= 0) nd->flags |= MV_F_DEC;
      return id;
    }
    case T_VAR: {
      tok t = next(L);
      char name[MV_NAME];
      snprintf(name, sizeof name, "%s", t.name);
      if (peek(L)->t == T_UNDER) {
        /* subscripts become part of the name: x_1, a_{n+1} */
        next(L);
        size_t start = peek(L)->at;
        int sub = parse_arg(L);
        if (sub < 0) return -1;
        size_t end = L->has_la ? L->la.at : L->pos;
        size_t k = strlen(name);
        if (k + 2 < MV_NAME) {
          name[k++] = '_';
          for (size_t j = start; j < end && k + 1 < MV_NAME; j++)
            if (!isspace((unsigned char)L->s[j]) && L->s[j] != '{' && L->s[j] != '}')
              name[k++] = L->s[j];
          name[k] = '\0';
        }
        int id = node_new(L, MV_VAR);
        if (id >= 0) snprintf(L->c->nodes[id].name, MV_NAME, "%s", name);
        return id;
      }
      return var_node(L, name);
    }
    case T_CONST: {
      tok t = next(L);
      int id = node_new(L, MV_CONST);
      if (id >= 0) L->c->nodes[id].op = (uint8_t)t.op;
      return id;
    }
    case T_SETC: {
      tok t = next(L);
      int id = node_new(L, MV_SETCONST);
      if (id >= 0) L->c->nodes[id].op = (uint8_t)t.op;
      return id;
    }
    case T_MATHBB: {
      next(L);
      if (!accept(L, T_LBR)) return fail(L, "\\mathbb without {");
      tok t = next(L);
      if ((t.t != T_VAR && t.t != T_WORD) || !accept(L, T_RBR)) return fail(L, "bad \\mathbb");
      int id = node_new(L, MV_SETCONST);
      if (id >= 0) L->c->nodes[id].op = (uint8_t)t.name[0];
      return id;
    }
    case T_LP: case T_LB: {
      int open = next(L).t;
      return parse_bracket(L, open);
    }
    case T_LBR: {
      next(L);
      if (accept(L, T_RBR)) return fail(L, "empty group");
      if (enter(L) < 0) return -1;
      int r = parse_rel(L);
      if (r >= 0 && peek(L)->t == T_COMMA) {
        /* {a, b} without \{: a list in braces */
        int id = node_new(L, MV_LIST);
        if (id < 0 || add_kid(L, id, r) < 0) return leave(L, -1);
        while (accept(L, T_COMMA)) {
          int e = parse_rel(L);
          if (e < 0 || add_kid(L, id, e) < 0) return leave(L, -1);
        }
        r = id;
      }
      if (r >= 0 && !accept(L, T_RBR)) return leave(L, fail(L, "missing }"));
      return leave(L, r);
    }
    case T_LSET: {
      next(L);
      int closer = 0;
      if (enter(L) < 0) return -1;
      if (peek(L)->t == T_VAR) {
        /* set builder \{x | condition\}: the condition stands for the set */
        size_t save_pos = L->pos;
        tok save_la = L->la;
        int save_has = L->has_la, save_n = L->c->nnodes, save_paren = L->paren;
        next(L);
        if (peek(L)->t == T_BAR || peek(L)->t == T_COLON) {
          next(L);
          int cond = parse_rel(L);
          if (cond >= 0 && !accept(L, T_RSET)) return leave(L, fail(L, "missing \\}"));
          return leave(L, cond);
        }
        L->pos = save_pos;
        L->la = save_la;
        L->has_la = save_has;
        L->c->nnodes = save_n;
        L->paren = save_paren;
      }
      int id = parse_items(L, MV_SET, T_RSET, T_RSET, &closer);
      if (id >= 0 && L->c->nodes[id].n == 0) L->c->nodes[id].kind = MV_SETCONST, L->c->nodes[id].op = '0';
      return leave(L, id);
    }
    case T_BAR: {
      next(L);
      if (enter(L) < 0) return -1;
      int e = parse_rel(L);
      if (e >= 0 && !accept(L, T_BAR)) return leave(L, fail(L, "missing |"));
      int id = node1(L, MV_FUNC, e);
      if (id >= 0) L->c->nodes[id].op = MV_FN_ABS;
      return leave(L, id);
    }
    case T_LCEIL: case T_LFLOOR: {
      int close = next(L).t == T_LCEIL ? T_RCEIL : T_RFLOOR;
      if (enter(L) < 0) return -1;
      int e = parse_rel(L);
      if (e >= 0 && !accept(L, close)) return leave(L, fail(L, "missing \\rceil/\\rfloor"));
      int id = node1(L, MV_FUNC, e);
      if (id >= 0) L->c->nodes[id].op = close == T_RCEIL ? MV_FN_CEIL : MV_FN_FLOOR;
      return leave(L, id);
    }
    case T_FRAC: case T_BINOM: {
      int t = next(L).t;
      int a = parse_arg(L);
      int b = a >= 0 ? parse_arg(L) : -1;
      if (b < 0) return -1;
      if (t == T_FRAC) return node2(L, MV_DIV, a, b);
      int id = node2(L, MV_FUNC, a, b);
      if (id >= 0) L->c->nodes[id].op = MV_FN_BINOM;
      return id;
    }
    case T_SQRT: {
      tok s = next(L);
      int index = -1;
      if (peek(L)->t == T_LB && !s.plain) {
        next(L);
        if (enter(L) < 0) return -1;
        index = parse_rel(L);
        if (index >= 0 && !accept(L, T_RB)) return leave(L, fail(L, "missing ] in \\sqrt[n]"));
        leave(L, 0);
        if (index < 0) return -1;
      }
      int arg;
      if (peek(L)->t == T_LP) {
        if (!s.plain) return fail(L, "malformed \\sqrt(...)");
        next(L);
        arg = parse_bracket(L, T_LP);
      } else if (s.plain == 2) {
        /* unicode root: binds to the next atom */
        arg = parse_atom(L);
      } else {
        arg = parse_arg(L);
      }
      if (arg < 0) return -1;
      int id = node_new(L, MV_FUNC);
      if (id < 0) return -1;
      L->c->nodes[id].op = index >= 0 ? MV_FN_ROOT : MV_FN_SQRT;
      if (index >= 0 && add_kid(L, id, index) < 0) return -1;
      return add_kid(L, id, arg);
    }
    case T_FUNC: return parse_func(L, next(L));
    case T_BEGIN: next(L); return parse_matrix(L);
    case T_WORD: return parse_text(L);
    case T_DOTS: {
      next(L);
      return var_node(L, "\\dots");
    }
    case T_END: return fail(L, "unexpected end");
    default: return fail(L, "unexpected token");
  }
}

static int starts_atom(const tok *t) {
  switch (t->t) {
    case T_NUM: case T_VAR: case T_CONST: case T_FUNC: case T_FRAC: case T_SQRT: case T_BINOM:
    case T_LP: case T_LBR: case T_BEGIN: case T_SETC: case T_MATHBB: case T_LCEIL: case T_LFLOOR:
      return 1;
    default:
      return 0;
  }
}

/* Exponent after ^: a group, a number, a letter, or (plain) a signed atom. */
static int parse_exponent(lexer *L, int *degree) {
  tok *t = peek(L);
  if (t->t == T_CIRC) {
    next(L);
    *degree = 1;
    return -2;
  }
  if (t->t == T_LBR) {
    next(L);
    if (peek(L)->t == T_CIRC) {
      next(L);
      if (!accept(L, T_RBR)) return fail(L, "bad ^{\\circ}");
      *degree = 1;
      return -2;
    }
    if (enter(L) < 0) return -1;
    int r = parse_rel(L);
    if (r >= 0 && !accept(L, T_RBR)) return leave(L, fail(L, "missing } in exponent"));
    return leave(L, r);
  }
  if (t->t == T_MINUS || t->t == T_PLUS) {
    int neg = next(L).t == T_MINUS;
    int e = parse_exponent(L, degree);
    if (e < 0) return e == -2 ? fail(L, "bad exponent") : -1;
    return neg ? node1(L, MV_NEG, e) : e;
  }
  if (t->t == T_LP) {
    next(L);
    return parse_bracket(L, T_LP);
  }
  return parse_arg(L);
}

static int parse_postfix(lexer *L) {
  int a = parse_atom(L);
  for (;;) {
    if (a < 0) return -1;
    tok *t = peek(L);
    if (t->t == T_CARET) {
      next(L);
      int deg = 0;
      int e = parse_exponent(L, &deg);
      if (e == -2) {
        L->c->nodes[a].flags |= MV_F_DEG;
        continue;
      }
      if (e >= 0 && L->c->nodes[e].kind == MV_TEXT) continue;
      a = node2(L, MV_POW, a, e);
    } else if (t->t == T_SUPNUM) {
      int v = next(L).op;
      a = node2(L, MV_POW, a, num_node(L, v, 1));
    } else if (t->t == T_CIRC) {
      next(L);
      L->c->nodes[a].flags |= MV_F_DEG;
    } else if (t->t == T_BANG) {
      next(L);
      a = node1(L, MV_FACT, a);
    } else if (t->t == T_PCT) {
      next(L);
      int id = node2(L, MV_DIV, a, num_node(L, 100, 1));
      if (id < 0) return -1;
      L->c->nodes[id].flags |= MV_F_PCT;
      a = id;
    } else if (is_word(t, "percent") || is_word(t, "pct")) {
      next(L);
      int id = node2(L, MV_DIV, a, num_node(L, 100, 1));
      if (id < 0) return -1;
      L->c->nodes[id].flags |= MV_F_PCT;
      a = id;
    } else if (t->t == T_PRIME) {
      next(L);
      int id = node1(L, MV_FUNC, a);
      if (id < 0) return -1;
      L->c->nodes[id].op = MV_FN_PRIME;
      a = id;
    } else if (t->t == T_UNDER) {
      /* subscript on a non-variable: keep as part of the structure */
      next(L);
      int s = parse_arg(L);
      a = node2(L, MV_FUNC, a, s);
      if (a >= 0) L->c->nodes[a].op = MV_FN_SUB;
    } else {
      return a;
    }
  }
}

static int parse_unary(lexer *L) {
  if (enter(L) < 0) return -1;
  tok *t = peek(L);
  if (t->t == T_MINUS) {
    next(L);
    return leave(L, node1(L, MV_NEG, parse_unary(L)));
  }
  if (t->t == T_PLUS) {
    next(L);
    return leave(L, parse_unary(L));
  }
  if (t->t == T_PM) {
    int neg = next(L).op == '-';
    int z = num_node(L, 0, 1);
    int b = parse_unary(L);
    if (neg) b = node1(L, MV_NEG, b);
    return leave(L, node2(L, MV_PM, z, b));
  }
  return leave(L, parse_postfix(L));
}

static int is_int_literal(const mv_ctx *c, int id) {
  const mv_node *n = &c->nodes[id];
  return n->kind == MV_NUM && n->exact && n->qd == 1 && n->ndec < 0 && n->flags == 0;
}

/* Units and other trailing words after a quantity are dropped. */
static int skip_unit(lexer *L, int a) {
  while (peek(L)->t == T_WORD && !is_word(peek(L), "and") && !is_word(peek(L), "or") &&
         !is_word(peek(L), "percent") && !is_word(peek(L), "pct")) {
    next(L);
    if (peek(L)->t == T_CARET) {
      next(L);
      int deg = 0;
      if (parse_exponent(L, &deg) == -1) return -1;
    }
    if (peek(L)->t == T_SUPNUM) next(L);
    L->c->nodes[a].flags |= MV_F_UNIT;
  }
  return a;
}

static int parse_term(lexer *L, int fn_arg) {
  int a = parse_unary(L);
  if (a < 0) return -1;
  int first = 1;
  for (;;) {
    tok *t = peek(L);
    if (t->t == T_COLON && !fn_arg) {
      /* a : b is a ratio (a / b); "Label: value" keeps the value */
      next(L);
      if (peek(L)->t == T_END || list_sep(peek(L))) return a;
      int b = parse_unary(L);
      if (b < 0) return -1;
      a = L->c->nodes[a].kind == MV_TEXT ? b : node2(L, MV_DIV, a, b);
    } else if (t->t == T_STAR && !fn_arg) {
      next(L);
      a = join(L, MV_MUL, a, parse_unary(L));
    } else if (t->t == T_SLASH && !fn_arg) {
      next(L);
      int b = parse_unary(L);
      if (b < 0) return -1;
      /* mixed number written 3128 1/2 was caught below; here plain division */
      a = node2(L, MV_DIV, a, b);
    } else if (is_qualifier(t)) {
      /* "f(x) = 1 for all x > 0", "where k is an integer": the condition
       * qualifies the answer; skip it to the end of the item */
      int depth = 0;
      for (;;) {
        tok *q = peek(L);
        if (q->t == T_END || L->failed) break;
        if (depth == 0 && (q->t == T_COMMA || q->t == T_SEMI || q->t == T_RP || q->t == T_RB ||
                           q->t == T_RBR || q->t == T_RSET))
          break;
        if (q->t == T_LP || q->t == T_LB || q->t == T_LBR || q->t == T_LSET) depth++;
        if (q->t == T_RP || q->t == T_RB || q->t == T_RBR || q->t == T_RSET) depth--;
        next(L);
      }
      return a;
    } else if (t->t == T_WORD && L->c->nodes[a].kind != MV_TEXT && !is_word(t, "and") &&
               !is_word(t, "or") && !is_word(t, "percent") && !is_word(t, "pct")) {
      if (skip_unit(L, a) < 0) return -1;
    } else if (starts_atom(t) && (L->c->nodes[a].flags & MV_F_UNIT) &&
               L->c->nodes[a].kind != MV_TEXT) {
      /* "5 apples minus 2 apples": prose, not a product */
      return fail(L, "words between quantities");
    } else if (starts_atom(t) && L->c->nodes[a].kind == MV_TEXT && t->t == T_LP && t->at > 0 &&
               (isalpha((unsigned char)L->s[t->at - 1]) || L->s[t->at - 1] == '}')) {
      /* foo(x+1), \operatorname{lcm}(4, 6): an unknown function applied, not
       * a leading word to drop (that would make it x+1) */
      return fail(L, "unknown function");
    } else if (starts_atom(t) && !(fn_arg && t->t == T_FUNC)) {
      int mixed_candidate = first && is_int_literal(L->c, a) &&
                            (t->t == T_FRAC || t->t == T_NUM);
      int b = parse_postfix(L);
      if (b < 0) return -1;
      if (mixed_candidate) {
        mv_node *B = &L->c->nodes[b];
        if (B->kind == MV_NUM && is_int_literal(L->c, b) && peek(L)->t == T_SLASH) {
          next(L);
          int d = parse_postfix(L);
          if (d < 0) return -1;
          if (!is_int_literal(L->c, d)) return fail(L, "bad mixed number");
          b = node2(L, MV_DIV, b, d);
          a = node2(L, MV_ADD, a, b);
          first = 0;
          continue;
        }
        if (B->kind == MV_DIV && is_int_literal(L->c, B->kid) &&
            is_int_literal(L->c, L->c->nodes[B->kid].next)) {
          a = node2(L, MV_ADD, a, b);
          first = 0;
          continue;
        }
        if (B->kind == MV_NUM) return fail(L, "two numbers side by side");
      }
      if (L->c->nodes[b].kind == MV_TEXT && L->c->nodes[a].kind != MV_TEXT) {
        L->c->nodes[a].flags |= MV_F_UNIT;
      } else if (L->c->nodes[a].kind == MV_TEXT && L->c->nodes[b].kind != MV_TEXT) {
        a = b; /* "approximately 5": leading words dropped */
      } else {
        a = join(L, MV_MUL, a, b);
      }
    } else {
      return a;
    }
    first = 0;
    if (a < 0) return -1;
  }
}

static int parse_sum(lexer *L) {
  int a;
  a = parse_term(L, 0);
  for (;;) {
    if (a < 0) return -1;
    tok *t = peek(L);
    if (t->t == T_PLUS) {
      next(L);
      a = join(L, MV_ADD, a, parse_term(L, 0));
    } else if (t->t == T_MINUS) {
      next(L);
      a = join(L, MV_ADD, a, node1(L, MV_NEG, parse_term(L, 0)));
    } else if (t->t == T_PM) {
      int neg = next(L).op == '-';
      int b = parse_term(L, 0);
      if (neg) b = node1(L, MV_NEG, b);
      a = node2(L, MV_PM, a, b);
    } else {
      return a;
    }
  }
}

static int parse_union(lexer *L) {
  int a = parse_sum(L);
  while (a >= 0 && peek(L)->t == T_CUP) {
    next(L);
    int b = parse_sum(L);
    if (b < 0) return -1;
    if (L->c->nodes[a].kind != MV_UNION) {
      int u = node_new(L, MV_UNION);
      if (u < 0 || add_kid(L, u, a) < 0) return -1;
      a = u;
    }
    if (add_kid(L, a, b) < 0) return -1;
  }
  return a;
}

/* a : b is a ratio (a / b); "Label: value" keeps the value. */
static int parse_ratio(lexer *L) {
  int a = parse_union(L);
  while (a >= 0 && peek(L)->t == T_COLON) {
    next(L);
    if (peek(L)->t == T_END || list_sep(peek(L))) return a;
    int b = parse_union(L);
    if (b < 0) return -1;
    if (L->c->nodes[a].kind == MV_TEXT) a = b;
    else a = node2(L, MV_DIV, a, b);
  }
  return a;
}

static int parse_rel(lexer *L) {
  if (enter(L) < 0) return -1;
  int a = parse_ratio(L);
  if (a < 0) return leave(L, -1);
  if (peek(L)->t != T_REL) return leave(L, a);
  int id = node_new(L, MV_REL);
  if (id < 0 || add_kid(L, id, a) < 0) return leave(L, -1);
  while (peek(L)->t == T_REL) {
    int op = next(L).op;
    mv_node *R = &L->c->nodes[id];
    if (R->n > 6) return leave(L, fail(L, "relation chain too long"));
    R->rel[R->n - 1] = (uint8_t)op;
    int b = parse_ratio(L);
    if (b < 0 || add_kid(L, id, b) < 0) return leave(L, -1);
  }
  return leave(L, id);
}

int mv_parse(mv_ctx *c, const char *s, size_t n) {
  lexer L;
  memset(&L, 0, sizeof L);
  L.c = c;
  L.s = s;
  L.n = n;
  c->err[0] = '\0';
  /* a whole answer like "3,14" is a decimal comma (a group of three digits is
   * a thousands separator instead) */
  char tmp[64];
  size_t i = 0;
  while (i < n && isspace((unsigned char)s[i])) i++;
  size_t j = n;
  while (j > i && (isspace((unsigned char)s[j - 1]) || s[j - 1] == '.')) j--;
  {
    size_t k = i, comma = 0, ncomma = 0, ok = j > i && j - i < sizeof tmp;
    if (ok && (s[k] == '-' || s[k] == '+')) k++;
    size_t lead = 0;
    for (; ok && k < j; k++) {
      if (s[k] == ',') {
        ncomma++;
        comma = k;
      } else if (!isdigit((unsigned char)s[k])) {
        ok = 0;
      } else if (!ncomma) {
        lead++;
      }
    }
    if (ok && ncomma == 1 && lead > 0 && (j - comma - 1 >= 4 || (lead == 1 && s[comma - 1] == '0'))) {
      memcpy(tmp, s + i, j - i);
      tmp[comma - i] = '.';
      L.s = tmp;
      L.n = j - i;
    }
  }
  int root;
  int id = node_new(&L, MV_LIST);
  if (id < 0) return -1;
  for (;;) {
    while (list_sep(peek(&L))) next(&L);
    if (peek(&L)->t == T_END) break;
    int e = parse_rel(&L);
    if (e < 0 || L.failed) return -1;
    if (add_kid(&L, id, e) < 0) return -1;
    tok *t = peek(&L);
    if (t->t == T_END) break;
    if (list_sep(t)) continue;
    if (t->t == T_ROWSEP) {
      next(&L);
      continue;
    }
    return fail(&L, "trailing input");
  }
  if (L.failed) return -1;
  mv_node *R = &c->nodes[id];
  if (R->n == 0) {
    snprintf(c->err, sizeof c->err, "empty answer");
    return -1;
  }
  root = R->n == 1 ? R->kid : id;
  return root;
}

/* ---- printing ------------------------------------------------------------- */

typedef struct pbuf {
  char *s;
  size_t cap, len;
} pbuf;

static void put(pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(pbuf *b, const char *fmt, ...) {
  if (b->len + 1 >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (k > 0) b->len += (size_t)k;
  if (b->len >= b->cap) b->len = b->cap - 1;
}

static void print_i128(pbuf *b, mv_i128 v) {
  char tmp[48];
  int k = 0, neg = v < 0;
  unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
  do {
    tmp[k++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u && k < 46);
  if (neg) tmp[k++] = '-';
  char out[48];
  for (int i = 0; i < k; i++) out[i] = tmp[k - 1 - i];
  out[k] = '\0';
  put(b, "%s", out);
}

static void pr(const mv_ctx *c, int id, pbuf *b, int depth) {
  if (id < 0 || depth > MV_MAX_DEPTH + 2 || b->len + 1 >= b->cap) return;
  const mv_node *n = &c->nodes[id];
  static const char *const fn[] = {"?", "sin", "cos", "tan", "cot", "sec", "csc", "asin",
                                   "acos", "atan", "sinh", "cosh", "tanh", "ln", "log10",
                                   "logb", "exp", "abs", "sqrt", "root", "prime", "sub", "binom",
                                   "ceil", "floor"};
  static const char *const rel[] = {"?", "=", "<", "<=", ">", ">=", "!=", "~", "in"};
  const char *open = "(", *close = ")", *sep = ", ";
  switch (n->kind) {
    case MV_NUM:
      if (n->exact) {
        print_i128(b, n->qn);
        if (n->qd != 1) {
          put(b, "/");
          print_i128(b, n->qd);
        }
      } else {
        put(b, "%.17g", n->d);
      }
      break;
    case MV_CONST:
      put(b, "%s", n->op == 'p' ? "pi" : n->op == 'e' ? "e" : n->op == 'i' ? "i" : "inf");
      break;
    case MV_VAR: put(b, "%s", n->name); break;
    case MV_SETCONST: put(b, "%s", n->op == '0' ? "{}" : n->op == 'R' ? "R" : "Set?"); break;
    case MV_TEXT: put(b, "\"%.*s\"", n->tlen, c->text + n->toff); break;
    case MV_NEG: put(b, "-("); pr(c, n->kid, b, depth + 1); put(b, ")"); break;
    case MV_FACT: put(b, "("); pr(c, n->kid, b, depth + 1); put(b, ")!"); break;
    case MV_FUNC:
      put(b, "%s", n->op < (int)COUNT(fn) ? fn[n->op] : "fn?");
      /* fallthrough */
    case MV_ADD: case MV_MUL: case MV_DIV: case MV_POW: case MV_PM: case MV_TUPLE:
    case MV_SET: case MV_LIST: case MV_INTERVAL: case MV_UNION: case MV_MATRIX: case MV_REL: {
      if (n->kind == MV_ADD) sep = " + ";
      if (n->kind == MV_MUL) sep = "*";
      if (n->kind == MV_DIV) sep = "/";
      if (n->kind == MV_POW) sep = "^";
      if (n->kind == MV_PM) sep = " +- ";
      if (n->kind == MV_UNION) sep = " U ";
      if (n->kind == MV_SET) open = "{", close = "}";
      if (n->kind == MV_LIST) open = "list[", close = "]";
      if (n->kind == MV_MATRIX) open = "matrix[", close = "]";
      if (n->kind == MV_INTERVAL) {
        open = (n->flags & MV_F_LOPEN) ? "(" : "[";
        close = (n->flags & MV_F_HOPEN) ? ")" : "]";
      }
      put(b, "%s", open);
      int k = n->kid, i = 0;
      while (k >= 0) {
        if (i > 0) {
          if (n->kind == MV_REL) put(b, " %s ", rel[n->rel[i - 1] < 9 ? n->rel[i - 1] : 0]);
          else if (n->kind == MV_MATRIX && n->op && i % n->op == 0) put(b, "; ");
          else put(b, "%s", sep);
        }
        pr(c, k, b, depth + 1);
        k = c->nodes[k].next;
        i++;
      }
      put(b, "%s", close);
      break;
    }
    default: put(b, "?"); break;
  }
  if (n->flags & MV_F_PCT) put(b, "[%%]");
  if (n->flags & MV_F_DEG) put(b, "[deg]");
}

void mv_print(const mv_ctx *c, int node, char *out, size_t cap) {
  if (!cap) return;
  pbuf b = {out, cap, 0};
  out[0] = '\0';
  if (node < 0) {
    put(&b, "(unparsed)");
    return;
  }
  pr(c, node, &b, 0);
}
