/* Equivalence of two parsed answers: exact rational arithmetic (128-bit with
 * overflow checks), complex evaluation at Philox-random points for symbolic
 * expressions, and the structural rules for sets, tuples, intervals,
 * relations and matrices (reward/README.md lists the policies). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/philox.h"
#include "reward/math_internal.h"

enum { MV_POINTS = 4, MV_MAX_VARS = 12, MV_MAX_PM = 3, MV_MAX_SET = 64 };
/* set on an element mask: this scalar is one sign choice of a \pm expression */
#define MV_EXPANDED (1u << 16)

typedef struct val {
  double complex z;
  int ok, exact;
  mv_i128 n, d;
} val;

typedef struct env {
  int nvars;
  char names[MV_MAX_VARS][MV_NAME];
  double complex vals[MV_MAX_VARS];
  int pm_ids[MV_MAX_PM * 2];
  int npm;
  unsigned mask;
} env;

/* ---- exact rationals --------------------------------------------------------- */

static mv_i128 gcd128(mv_i128 a, mv_i128 b) {
  if (a == ((mv_i128)((unsigned __int128)1 << 127)) || b == ((mv_i128)((unsigned __int128)1 << 127)))
    return 1;
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b) {
    mv_i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

#define MV_I128_MIN ((mv_i128)((unsigned __int128)1 << 127))

static int q_make(val *v, mv_i128 n, mv_i128 d) {
  /* the most negative value has no negation: leave exact arithmetic */
  if (d == 0 || n == MV_I128_MIN || d == MV_I128_MIN) return 0;
  if (d < 0) {
    if (__builtin_sub_overflow((mv_i128)0, n, &n) || __builtin_sub_overflow((mv_i128)0, d, &d))
      return 0;
  }
  mv_i128 g = gcd128(n, d);
  if (g > 1) {
    n /= g;
    d /= g;
  }
  v->n = n;
  v->d = d;
  v->exact = 1;
  v->z = (double)n / (double)d;
  return 1;
}

static int q_add(val *r, const val *a, const val *b) {
  mv_i128 x, y, n, d;
  if (__builtin_mul_overflow(a->n, b->d, &x) || __builtin_mul_overflow(b->n, a->d, &y) ||
      __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a->d, b->d, &d))
    return 0;
  return q_make(r, n, d);
}

static int q_mul(val *r, const val *a, const val *b) {
  mv_i128 n, d;
  mv_i128 g1 = gcd128(a->n, b->d), g2 = gcd128(b->n, a->d);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  if (__builtin_mul_overflow(a->n / g1, b->n / g2, &n) ||
      __builtin_mul_overflow(a->d / g2, b->d / g1, &d))
    return 0;
  return q_make(r, n, d);
}

static int q_pow_int(val *r, const val *a, long e) {
  mv_i128 n = 1, d = 1, bn = a->n, bd = a->d;
  if (e < 0) {
    if (bn == 0) return 0;
    mv_i128 t = bn;
    bn = bd;
    bd = t;
    e = -e;
  }
  if (e > 400) return 0;
  while (e) {
    if (e & 1) {
      if (__builtin_mul_overflow(n, bn, &n) || __builtin_mul_overflow(d, bd, &d)) return 0;
    }
    e >>= 1;
    if (e) {
      if (__builtin_mul_overflow(bn, bn, &bn) || __builtin_mul_overflow(bd, bd, &bd)) return 0;
    }
  }
  return q_make(r, n, d);
}

/* Exact integer k-th root of x >= 0, or -1. */
static mv_i128 iroot(mv_i128 x, int k) {
  if (x < 0) return -1;
  if (x < 2) return x;
  double g = pow((double)x, 1.0 / k);
  mv_i128 c = (mv_i128)llround(g);
  for (mv_i128 t = c > 2 ? c - 2 : 0; t <= c + 2; t++) {
    mv_i128 p = 1;
    int over = 0;
    for (int i = 0; i < k && !over; i++) over = __builtin_mul_overflow(p, t, &p);
    if (!over && p == x) return t;
  }
  return -1;
}

/* ---- evaluation ---------------------------------------------------------- */

static val vbad(void) {
  val v;
  memset(&v, 0, sizeof v);
  return v;
}

static val vnum(double complex z) {
  val v = vbad();
  v.z = z;
  v.ok = isfinite(creal(z)) && isfinite(cimag(z));
  return v;
}

static val vinf(double sign) {
  val v = vbad();
  v.z = sign * INFINITY;
  v.ok = 1;
  return v;
}

static int is_inf(const val *v) { return v->ok && isinf(creal(v->z)); }

static val vq(mv_i128 n, mv_i128 d) {
  val v = vbad();
  if (q_make(&v, n, d)) v.ok = 1;
  return v;
}

static val eval(mv_ctx *c, int id, env *E, int depth);

static val eval_pow(val b, val e) {
  if (b.exact && e.exact) {
    val r = vbad();
    if (e.d == 1 && e.n >= -400 && e.n <= 400) {
      if (q_pow_int(&r, &b, (long)e.n)) {
        r.ok = 1;
        return r;
      }
    } else if (e.d <= 6 && e.n >= -60 && e.n <= 60) {
      int k = (int)e.d;
      int neg = b.n < 0;
      if (neg && k % 2 == 0) goto inexact;
      mv_i128 rn = iroot(neg ? -b.n : b.n, k), rd = iroot(b.d, k);
      if (rn >= 0 && rd > 0) {
        val root = vq(neg ? -rn : rn, rd);
        if (root.ok && q_pow_int(&r, &root, (long)e.n)) {
          r.ok = 1;
          return r;
        }
      }
      if (neg) {
        /* real odd root of a negative number */
        double m = pow(-creal(b.z), creal(e.z));
        return vnum((e.n % 2 != 0) ? -m : m);
      }
    }
  }
inexact:
  if (!b.ok || !e.ok) return vbad();
  if (cimag(b.z) == 0 && cimag(e.z) == 0 && creal(b.z) >= 0) return vnum(pow(creal(b.z), creal(e.z)));
  if (cimag(b.z) == 0 && cimag(e.z) == 0 && creal(e.z) == floor(creal(e.z)))
    return vnum(pow(creal(b.z), creal(e.z)));
  if (creal(b.z) == 0 && cimag(b.z) == 0) return vnum(0);
  return vnum(cpow(b.z, e.z));
}

static val eval_func(mv_ctx *c, const mv_node *nd, env *E, int depth) {
  int k0 = nd->kid;
  val a = eval(c, k0, E, depth + 1);
  if (nd->op == MV_FN_LOGB || nd->op == MV_FN_ROOT || nd->op == MV_FN_BINOM) {
    val b = eval(c, c->nodes[k0].next, E, depth + 1);
    if (!a.ok || !b.ok) return vbad();
    if (nd->op == MV_FN_LOGB) {
      double complex lb = clog(a.z);
      if (cabs(lb) == 0) return vbad();
      /* exact when the argument is an integer power of the base */
      double complex r = clog(b.z) / lb;
      if (a.exact && b.exact && cimag(r) == 0 && fabs(creal(r) - round(creal(r))) < 1e-12 &&
          fabs(creal(r)) < 200) {
        val t = vbad();
        if (q_pow_int(&t, &a, (long)round(creal(r))) && t.n == b.n && t.d == b.d)
          return vq((mv_i128)round(creal(r)), 1);
      }
      return vnum(r);
    }
    if (nd->op == MV_FN_ROOT) {
      if (!a.exact || a.d != 1 || a.n < 1 || a.n > 64) {
        if (cabs(a.z) == 0) return vbad();
        return eval_pow(b, vnum(1.0 / a.z));
      }
      return eval_pow(b, vq(1, a.n));
    }
    /* binomial */
    if (a.exact && b.exact && a.d == 1 && b.d == 1 && a.n >= 0 && b.n >= 0 && b.n <= a.n &&
        a.n <= 1000) {
      mv_i128 r = 1;
      mv_i128 k = b.n < a.n - b.n ? b.n : a.n - b.n;
      for (mv_i128 i = 1; i <= k; i++) {
        mv_i128 t;
        if (__builtin_mul_overflow(r, a.n - k + i, &t)) return vbad();
        r = t / i;
      }
      return vq(r, 1);
    }
    if (!a.exact || !b.exact) {
      /* Gamma continuation, as for x! */
      if (cimag(a.z) != 0 || cimag(b.z) != 0) return vbad();
      double n = creal(a.z), k = creal(b.z);
      return vnum(tgamma(n + 1) / (tgamma(k + 1) * tgamma(n - k + 1)));
    }
    return vbad();
  }
  if (!a.ok) return vbad();
  double complex z = a.z;
  switch (nd->op) {
    case MV_FN_SQRT: return eval_pow(a, vq(1, 2));
    case MV_FN_SIN: return vnum(csin(z));
    case MV_FN_COS: return vnum(ccos(z));
    case MV_FN_TAN: return vnum(ctan(z));
    case MV_FN_COT: return vnum(1.0 / ctan(z));
    case MV_FN_SEC: return vnum(1.0 / ccos(z));
    case MV_FN_CSC: return vnum(1.0 / csin(z));
    case MV_FN_ASIN: return vnum(casin(z));
    case MV_FN_ACOS: return vnum(cacos(z));
    case MV_FN_ATAN: return vnum(catan(z));
    case MV_FN_SINH: return vnum(csinh(z));
    case MV_FN_COSH: return vnum(ccosh(z));
    case MV_FN_TANH: return vnum(ctanh(z));
    case MV_FN_LN:
      if (cabs(z) == 0) return vbad();
      if (a.exact && a.n == 1 && a.d == 1) return vq(0, 1);
      return vnum(clog(z));
    case MV_FN_LOG10:
      if (cabs(z) == 0) return vbad();
      return vnum(clog(z) / log(10.0));
    case MV_FN_EXP:
      if (a.exact && a.n == 0) return vq(1, 1);
      return vnum(cexp(z));
    case MV_FN_CEIL: case MV_FN_FLOOR:
      if (cimag(z) != 0) return vbad();
      if (a.exact) {
        mv_i128 q = a.n / a.d, r = a.n % a.d;
        if (nd->op == MV_FN_FLOOR && r < 0) q -= 1;
        if (nd->op == MV_FN_CEIL && r > 0) q += 1;
        return vq(q, 1);
      }
      return vnum(nd->op == MV_FN_CEIL ? ceil(creal(z)) : floor(creal(z)));
    case MV_FN_ABS:
      if (a.exact && a.n != MV_I128_MIN) return vq(a.n < 0 ? -a.n : a.n, a.d);
      return vnum(cabs(z));
    default: return vbad(); /* primes, subscripts: opaque */
  }
}

static val eval(mv_ctx *c, int id, env *E, int depth) {
  if (id < 0 || depth > MV_MAX_DEPTH + 4 || !mv_step(c, 1)) return vbad();
  const mv_node *nd = &c->nodes[id];
  switch (nd->kind) {
    case MV_NUM:
      if (nd->exact) return vq(nd->qn, nd->qd);
      return vnum(nd->d);
    case MV_CONST:
      switch (nd->op) {
        case 'p': return vnum(3.14159265358979323846);
        case 'e': return vnum(2.71828182845904523536);
        case 'i': return vnum(I);
        default: return vinf(1);
      }
    case MV_VAR: {
      const char *nm = nd->name;
      if (c->alias_from[0] && strcmp(nm, c->alias_from) == 0) nm = c->alias_to;
      for (int i = 0; i < E->nvars; i++)
        if (strcmp(E->names[i], nm) == 0) return vnum(E->vals[i]);
      return vbad();
    }
    case MV_NEG: {
      val a = eval(c, nd->kid, E, depth + 1);
      if (is_inf(&a)) return vinf(-creal(a.z) > 0 ? 1 : -1);
      if (a.exact && a.n != MV_I128_MIN) return vq(-a.n, a.d);
      if (!a.ok) return a;
      return vnum(-a.z);
    }
    case MV_ADD: case MV_MUL: {
      val acc = vbad();
      int first = 1;
      for (int k = nd->kid; k >= 0; k = c->nodes[k].next) {
        val b = eval(c, k, E, depth + 1);
        if (!b.ok || is_inf(&b)) return vbad();
        if (first) {
          acc = b;
          first = 0;
          continue;
        }
        val r = vbad();
        if (acc.exact && b.exact &&
            (nd->kind == MV_ADD ? q_add(&r, &acc, &b) : q_mul(&r, &acc, &b))) {
          r.ok = 1;
          acc = r;
        } else {
          acc = vnum(nd->kind == MV_ADD ? acc.z + b.z : acc.z * b.z);
          if (!acc.ok) return acc;
        }
      }
      return acc;
    }
    case MV_DIV: {
      val a = eval(c, nd->kid, E, depth + 1);
      val b = eval(c, c->nodes[nd->kid].next, E, depth + 1);
      if (!a.ok || !b.ok || is_inf(&a) || is_inf(&b)) return vbad();
      if (a.exact && b.exact) {
        if (b.n == 0) return vbad();
        val inv = vq(b.d, b.n), r = vbad();
        if (inv.ok && q_mul(&r, &a, &inv)) {
          r.ok = 1;
          return r;
        }
      }
      if (cabs(b.z) == 0) return vbad();
      return vnum(a.z / b.z);
    }
    case MV_POW: {
      val a = eval(c, nd->kid, E, depth + 1);
      val b = eval(c, c->nodes[nd->kid].next, E, depth + 1);
      if (!a.ok || !b.ok || is_inf(&a) || is_inf(&b)) return vbad();
      return eval_pow(a, b);
    }
    case MV_FUNC: return eval_func(c, nd, E, depth);
    case MV_FACT: {
      val a = eval(c, nd->kid, E, depth + 1);
      /* x! = Gamma(x + 1) off the integers: identities between factorials
       * (d!/(d-k)!) hold for the continuation, so random points can test them */
      if (a.ok && !a.exact && cimag(a.z) == 0) return vnum(tgamma(creal(a.z) + 1));
      if (!a.ok || !a.exact || a.d != 1 || a.n < 0) return vbad();
      if (a.n <= 33) {
        mv_i128 r = 1;
        for (mv_i128 i = 2; i <= a.n; i++) r *= i;
        return vq(r, 1);
      }
      if (a.n <= 170) return vnum(tgamma((double)a.n + 1));
      return vbad();
    }
    case MV_PM: {
      int bit = -1;
      for (int i = 0; i < E->npm; i++)
        if (E->pm_ids[i] == id) bit = i;
      val a = eval(c, nd->kid, E, depth + 1);
      val b = eval(c, c->nodes[nd->kid].next, E, depth + 1);
      if (!a.ok || !b.ok || bit < 0) return vbad();
      if ((E->mask >> bit) & 1) {
        if (b.exact && b.n != MV_I128_MIN) b = vq(-b.n, b.d);
        else b = vnum(-b.z);
      }
      val r = vbad();
      if (a.exact && b.exact && q_add(&r, &a, &b)) {
        r.ok = 1;
        return r;
      }
      return vnum(a.z + b.z);
    }
    default: return vbad();
  }
}

/* ---- helpers over trees ---------------------------------------------------- */

static void collect(const mv_ctx *c, int id, env *E, int *pm, int *npm, int depth) {
  if (id < 0 || depth > MV_MAX_DEPTH + 4) return;
  const mv_node *nd = &c->nodes[id];
  if (nd->kind == MV_VAR && E) {
    for (int i = 0; i < E->nvars; i++)
      if (strcmp(E->names[i], nd->name) == 0) return;
    if (E->nvars < MV_MAX_VARS) snprintf(E->names[E->nvars++], MV_NAME, "%s", nd->name);
    return;
  }
  if (nd->kind == MV_PM && pm && *npm < MV_MAX_PM + 1) pm[(*npm)++] = id;
  for (int k = nd->kid; k >= 0; k = c->nodes[k].next) collect(c, k, E, pm, npm, depth + 1);
}

static int has_vars(const mv_ctx *c, int id) {
  env E;
  E.nvars = 0;
  collect(c, id, &E, NULL, NULL, 0);
  return E.nvars > 0;
}

static int tree_eq(const mv_ctx *c, int a, int b, int depth) {
  if (a < 0 || b < 0) return a == b;
  if (depth > MV_MAX_DEPTH + 4) return 0;
  const mv_node *x = &c->nodes[a], *y = &c->nodes[b];
  if (x->kind != y->kind || x->op != y->op || x->n != y->n) return 0;
  if (x->kind == MV_NUM) {
    if (x->exact != y->exact) return 0;
    return x->exact ? (x->qn == y->qn && x->qd == y->qd) : x->d == y->d;
  }
  if (x->kind == MV_VAR) return strcmp(x->name, y->name) == 0;
  if (x->kind == MV_TEXT)
    return x->tlen == y->tlen && memcmp(c->text + x->toff, c->text + y->toff, x->tlen) == 0;
  if (x->kind == MV_REL && memcmp(x->rel, y->rel, sizeof x->rel) != 0) return 0;
  if ((x->flags ^ y->flags) & (MV_F_LOPEN | MV_F_HOPEN)) return 0;
  int i = x->kid, j = y->kid;
  while (i >= 0 && j >= 0) {
    if (!tree_eq(c, i, j, depth + 1)) return 0;
    i = c->nodes[i].next;
    j = c->nodes[j].next;
  }
  return i < 0 && j < 0;
}

static int close_enough(const val *a, const val *b, double rel) {
  if (a->exact && b->exact) return a->n == b->n && a->d == b->d;
  if (is_inf(a) || is_inf(b)) return is_inf(a) && is_inf(b) && creal(a->z) == creal(b->z);
  double d = cabs(a->z - b->z);
  double m = fmax(cabs(a->z), cabs(b->z));
  if (d <= rel * m) return 1;
  /* inexact arithmetic leaves ~1e-16 residue where the exact value is 0 */
  return (!a->exact || !b->exact) && d < 1e-12 && m < 1e-9;
}

static int is_scalar_kind(int k) {
  return k == MV_NUM || k == MV_CONST || k == MV_VAR || k == MV_ADD || k == MV_MUL ||
         k == MV_NEG || k == MV_DIV || k == MV_POW || k == MV_FUNC || k == MV_FACT ||
         k == MV_PM;
}

static void fill_points(env *E, uint64_t seed, int point) {
  for (int v = 0; v < E->nvars; v++) {
    uint32_t w[4];
    grpo_rng_u32x4(seed, GRPO_RNG_VERIFY, 0, (uint32_t)point, (uint32_t)v, 0, w);
    double u = grpo_rng_u64_to_unit(w[0], w[1]);
    /* in (0.1, 0.95): roots, logs and inverse trig stay on their main branch */
    E->vals[v] = 0.1 + 0.85 * u;
  }
}

/* A decimal literal, possibly negated or written with %: 1 and its digits
 * after the point (in units of the value) and significant digits. */
static int decimal_info(const mv_ctx *c, int id, int *ndec, int *sig) {
  if (id < 0) return 0;
  int extra = 0;
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_DIV && (n->flags & MV_F_PCT)) {
    extra = 2;
    n = &c->nodes[n->kid];
  }
  if (n->kind == MV_NEG) n = &c->nodes[n->kid];
  if (n->kind == MV_NUM && (n->flags & MV_F_DEC) && n->ndec >= 1) {
    *ndec = n->ndec + extra;
    *sig = n->sig;
    return 1;
  }
  return 0;
}

/* An exact value whose decimal expansion ends within max_dec places
 * (denominator 2^a 5^b with a, b <= max_dec): a gold author would have
 * written it exactly, so a shorter decimal gold is not its rounding. */
static int short_decimal(const val *v, int max_dec) {
  if (!v->exact) return 0;
  mv_i128 d = v->d;
  int twos = 0, fives = 0;
  while (d % 2 == 0) {
    d /= 2;
    twos++;
  }
  while (d % 5 == 0) {
    d /= 5;
    fives++;
  }
  return d == 1 && twos <= max_dec && fives <= max_dec;
}

static int pm_count(const mv_ctx *c, int id);

static int scalar_eq(mv_ctx *c, int g, unsigned gm, int p, unsigned pmask) {
  const reward_math_options *o = c->opt;
  env E;
  memset(&E, 0, sizeof E);
  int pmg[MV_MAX_PM + 1], npg = 0, pmp[MV_MAX_PM + 1], npp = 0;
  collect(c, g, &E, pmg, &npg, 0);
  collect(c, p, &E, pmp, &npp, 0);
  if (npg > MV_MAX_PM || npp > MV_MAX_PM) return tree_eq(c, g, p, 0);
  int points = E.nvars ? MV_POINTS : 1, okpts = 0;
  int vars = E.nvars;
  for (int pt = 0; pt < points; pt++) {
    fill_points(&E, o->seed, pt);
    E.npm = npg;
    memcpy(E.pm_ids, pmg, sizeof(int) * (size_t)npg);
    E.mask = gm;
    val a = eval(c, g, &E, 0);
    E.npm = npp;
    memcpy(E.pm_ids, pmp, sizeof(int) * (size_t)npp);
    E.mask = pmask;
    val b = eval(c, p, &E, 0);
    if (c->budget_hit) return 0;
    if (!a.ok && !b.ok) continue;
    if (!a.ok || !b.ok) return 0;
    if (close_enough(&a, &b, o->rel_tol)) {
      okpts++;
      continue;
    }
    /* rounded decimals: only for constants */
    if (vars || !o->allow_rounded || cimag(a.z) != 0 || cimag(b.z) != 0) return 0;
    double gv = creal(a.z), pv = creal(b.z);
    int pn = 0, ps = 0, gn = 0, gs = 0;
    int pd = decimal_info(c, p, &pn, &ps), gd = decimal_info(c, g, &gn, &gs);
    if (pd && ps >= o->rounded_min_sig && (!gd || gn != pn)) {
      double ulp = pow(10.0, -pn);
      double diff = fabs(gv - pv);
      int rounded = diff <= 0.5 * ulp * (1 + 1e-9) + 1e-15 * fabs(gv);
      int trunc = (gv >= 0) == (pv >= 0) && fabs(pv) <= fabs(gv) && diff < ulp * (1 - 1e-12);
      if (rounded || trunc) {
        okpts++;
        continue;
      }
    }
    if (gd && gs >= 2 && gn >= 2 && (pd ? pn >= gn + 2 : !short_decimal(&b, gn + 2))) {
      /* the gold is itself a rounding (README, "rounded gold"): of a value
       * with no short decimal form, exact or printed to more digits */
      double ulp = pow(10.0, -gn);
      if (fabs(gv - pv) <= 0.5 * ulp * (1 + 1e-9)) {
        okpts++;
        continue;
      }
    }
    return 0;
  }
  if (okpts == 0) return tree_eq(c, g, p, 0);
  return 1;
}

static int pm_count(const mv_ctx *c, int id) {
  int pm[MV_MAX_PM + 1], n = 0;
  collect(c, id, NULL, pm, &n, 0);
  return n;
}

/* Percent policy: p% equals p/100; a bare p also matches when either side
 * carries the % sign (the written number is the same). */
static int number_eq(mv_ctx *c, int g, unsigned gm, int p, unsigned pm) {
  if (scalar_eq(c, g, gm, p, pm)) return 1;
  if (!c->opt->percent_bare_ok) return 0;
  const mv_node *G = &c->nodes[g], *P = &c->nodes[p];
  int g2 = (G->kind == MV_DIV && (G->flags & MV_F_PCT)) ? G->kid : g;
  int p2 = (P->kind == MV_DIV && (P->flags & MV_F_PCT)) ? P->kid : p;
  if (g2 == g && p2 == p) return 0;
  return scalar_eq(c, g2, gm, p2, pm);
}

/* ---- intervals ------------------------------------------------------------ */

typedef struct ivl {
  int lo, hi;        /* nodes, -1 for an infinite end */
  int lopen, hopen;
} ivl;

static int inf_sign(const mv_ctx *c, int id) {
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_CONST && n->op == 'I') return 1;
  if (n->kind == MV_NEG && c->nodes[n->kid].kind == MV_CONST && c->nodes[n->kid].op == 'I')
    return -1;
  return 0;
}

static int as_interval(const mv_ctx *c, int id, ivl *out, int allow_paren_tuple) {
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_SETCONST && n->op == 'R') {
    *out = (ivl){-1, -1, 1, 1};
    return 1;
  }
  if (n->kind == MV_INTERVAL ||
      (allow_paren_tuple && n->kind == MV_TUPLE && (n->flags & MV_F_PAREN) && n->n == 2)) {
    int a = n->kid, b = c->nodes[a].next;
    out->lopen = n->kind == MV_TUPLE || (n->flags & MV_F_LOPEN);
    out->hopen = n->kind == MV_TUPLE || (n->flags & MV_F_HOPEN);
    out->lo = inf_sign(c, a) == -1 ? -1 : a;
    out->hi = inf_sign(c, b) == 1 ? -1 : b;
    return 1;
  }
  return 0;
}

static int is_lt(int op) { return op == MV_R_LT || op == MV_R_LE; }
static int is_gt(int op) { return op == MV_R_GT || op == MV_R_GE; }

/* x > a, a <= x <= b, ... on a single variable: its interval and variable. */
static int relation_interval(const mv_ctx *c, int id, ivl *out, char *var) {
  const mv_node *n = &c->nodes[id];
  if (n->kind != MV_REL) return 0;
  int k0 = n->kid, k1 = c->nodes[k0].next;
  if (n->n == 2) {
    int op = n->rel[0], x = k0, a = k1;
    if (c->nodes[k0].kind != MV_VAR) {
      x = k1;
      a = k0;
      op = is_lt(op) ? op + 2 : is_gt(op) ? op - 2 : op; /* a < x  ==  x > a */
    }
    if (c->nodes[x].kind != MV_VAR || has_vars(c, a)) return 0;
    if (op == MV_R_IN) return 0;
    snprintf(var, MV_NAME, "%s", c->nodes[x].name);
    if (is_gt(op)) *out = (ivl){a, -1, op == MV_R_GT, 1};
    else if (is_lt(op)) *out = (ivl){-1, a, 1, op == MV_R_LT};
    else return 0;
    return 1;
  }
  if (n->n == 3) {
    int k2 = c->nodes[k1].next, o1 = n->rel[0], o2 = n->rel[1];
    if (c->nodes[k1].kind != MV_VAR || has_vars(c, k0) || has_vars(c, k2)) return 0;
    snprintf(var, MV_NAME, "%s", c->nodes[k1].name);
    if (is_lt(o1) && is_lt(o2)) *out = (ivl){k0, k2, o1 == MV_R_LT, o2 == MV_R_LT};
    else if (is_gt(o1) && is_gt(o2)) *out = (ivl){k2, k0, o2 == MV_R_GT, o1 == MV_R_GT};
    else return 0;
    return 1;
  }
  return 0;
}

static int ivl_eq(mv_ctx *c, const ivl *g, const ivl *p) {
  if ((g->lo < 0) != (p->lo < 0) || (g->hi < 0) != (p->hi < 0)) return 0;
  if (g->lo >= 0 && (g->lopen != p->lopen || !scalar_eq(c, g->lo, 0, p->lo, 0))) return 0;
  if (g->hi >= 0 && (g->hopen != p->hopen || !scalar_eq(c, g->hi, 0, p->hi, 0))) return 0;
  return 1;
}

/* ---- structural comparison ---------------------------------------------- */

typedef struct elem {
  int id;
  unsigned mask;
} elem;

static int eq_node(mv_ctx *c, int g, unsigned gm, int p, unsigned pm, int depth, char *why,
                   size_t wc);

/* Elements of a set-like answer: list/set kids, or the 2^k sign choices of a
 * scalar with \pm. Returns the count, -1 if not set-like. */
static int set_elems(const mv_ctx *c, int id, elem *out, int cap) {
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_LIST || n->kind == MV_SET) {
    int k = 0;
    for (int i = n->kid; i >= 0; i = c->nodes[i].next) {
      int ki = c->nodes[i].kind;
      int np = is_scalar_kind(ki) || ki == MV_TUPLE ? pm_count(c, i) : 0;
      if (np > MV_MAX_PM) return -1;
      for (unsigned m = 0; m < (1u << np); m++) {
        if (k >= cap) return -1;
        out[k++] = (elem){i, np ? (m | MV_EXPANDED) : 0};
      }
    }
    return k;
  }
  if (n->kind == MV_SETCONST && n->op == '0') return 0;
  /* a scalar or a tuple with \pm is the set of its sign choices */
  if (is_scalar_kind(n->kind) || n->kind == MV_TUPLE) {
    int np = pm_count(c, id);
    if (np == 0 || np > MV_MAX_PM) return -1;
    int k = 0;
    for (unsigned m = 0; m < (1u << np) && k < cap; m++) out[k++] = (elem){id, m | MV_EXPANDED};
    return k;
  }
  return -1;
}

static int match_sets(mv_ctx *c, const elem *ge, int ng, const elem *pe, int np, int depth,
                      char *why, size_t wc) {
  if (ng != np) {
    snprintf(why, wc, "answer count differs (gold %d, pred %d)", ng, np);
    return 0;
  }
  unsigned char used[MV_MAX_SET] = {0};
  for (int i = 0; i < ng; i++) {
    int found = 0;
    for (int j = 0; j < np && !found; j++) {
      if (used[j]) continue;
      if (eq_node(c, ge[i].id, ge[i].mask, pe[j].id, pe[j].mask, depth + 1, why, wc)) {
        used[j] = 1;
        found = 1;
      }
    }
    if (!found) {
      snprintf(why, wc, "gold element %d unmatched", i + 1);
      return 0;
    }
  }
  return 1;
}

/* Bare-list order policy (README): a list of real numbers written in
 * neither increasing nor decreasing order reads as positional ("a, b, c" in
 * the question's order), so it must follow the gold's order; a sorted list
 * is how a solution set is conventionally written and stays order-free, as
 * do lists holding \pm, variables, relations, tuples or complex values. */
static int sorted_or_unordered(mv_ctx *c, const elem *pe, int n) {
  env E;
  memset(&E, 0, sizeof E);
  int up = 1, down = 1;
  double prev = 0;
  for (int i = 0; i < n; i++) {
    int k = c->nodes[pe[i].id].kind;
    if (pe[i].mask || !is_scalar_kind(k) || k == MV_PM || has_vars(c, pe[i].id)) return 1;
    val v = eval(c, pe[i].id, &E, 0);
    if (!v.ok || cimag(v.z) != 0 || is_inf(&v)) return 1;
    double x = creal(v.z);
    if (i > 0) {
      up = up && x >= prev;
      down = down && x <= prev;
    }
    prev = x;
  }
  return up || down;
}

/* Element i of the gold against element i of the prediction. */
static int match_ordered(mv_ctx *c, const elem *ge, const elem *pe, int n, int depth, char *why,
                         size_t wc) {
  for (int i = 0; i < n; i++)
    if (!eq_node(c, ge[i].id, ge[i].mask, pe[i].id, pe[i].mask, depth + 1, why, wc)) {
      snprintf(why, wc, "list not sorted, so ordered: element %d differs", i + 1);
      return 0;
    }
  return 1;
}

static int simple_lhs(const mv_ctx *c, int id) {
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_VAR || n->kind == MV_TEXT) return 1;
  if (n->kind == MV_TUPLE && n->n <= 8) {
    /* (k, l) = (...) */
    for (int k = n->kid; k >= 0; k = c->nodes[k].next)
      if (c->nodes[k].kind != MV_VAR) return 0;
    return 1;
  }
  if (n->kind == MV_FUNC && (n->op == MV_FN_PRIME || n->op == MV_FN_SUB)) return 1;
  if (n->kind == MV_MUL && n->n == 2 && c->nodes[n->kid].kind == MV_VAR) {
    /* f(x), f(x, y) */
    int a = c->nodes[n->kid].next;
    const mv_node *A = &c->nodes[a];
    return A->kind == MV_VAR || (A->kind == MV_TUPLE && (A->flags & MV_F_PAREN));
  }
  return 0;
}

/* f(x) with one variable argument: the node of x, else -1. */
static int fn_arg_var(const mv_ctx *c, int id) {
  const mv_node *n = &c->nodes[id];
  if (n->kind != MV_MUL || n->n != 2 || c->nodes[n->kid].kind != MV_VAR) return -1;
  int a = c->nodes[n->kid].next;
  return c->nodes[a].kind == MV_VAR ? a : -1;
}

static int last_kid(const mv_ctx *c, int id) {
  int k = c->nodes[id].kid;
  while (k >= 0 && c->nodes[k].next >= 0) k = c->nodes[k].next;
  return k;
}

/* lhs - rhs of a single relation, evaluated at the random points: equal up to
 * a constant factor (positive for inequalities). */
static int relations_eq(mv_ctx *c, int g, int p, char *why, size_t wc) {
  const mv_node *G = &c->nodes[g], *P = &c->nodes[p];
  if (G->n != 2 || P->n != 2) {
    if (G->n == P->n && memcmp(G->rel, P->rel, sizeof G->rel) == 0) {
      int i = G->kid, j = P->kid;
      while (i >= 0 && j >= 0) {
        if (!scalar_eq(c, i, 0, j, 0)) return 0;
        i = c->nodes[i].next;
        j = c->nodes[j].next;
      }
      return 1;
    }
    snprintf(why, wc, "relation chains differ");
    return 0;
  }
  int go = G->rel[0], po = P->rel[0];
  int gl = G->kid, gr = c->nodes[gl].next, pl = P->kid, pr = c->nodes[pl].next;
  /* orient: a > b becomes b < a */
  if (is_gt(go)) {
    int t = gl;
    gl = gr;
    gr = t;
    go -= 2;
  }
  if (is_gt(po)) {
    int t = pl;
    pl = pr;
    pr = t;
    po -= 2;
  }
  if (go != po) {
    snprintf(why, wc, "relation operators differ");
    return 0;
  }
  env E;
  memset(&E, 0, sizeof E);
  collect(c, g, &E, NULL, NULL, 0);
  collect(c, p, &E, NULL, NULL, 0);
  if (E.nvars == 0) return scalar_eq(c, gl, 0, pl, 0) && scalar_eq(c, gr, 0, pr, 0);
  double complex ratio = 0;
  int have = 0;
  for (int pt = 0; pt < MV_POINTS + 2; pt++) {
    fill_points(&E, c->opt->seed, pt);
    val a = eval(c, gl, &E, 0), b = eval(c, gr, &E, 0);
    val x = eval(c, pl, &E, 0), y = eval(c, pr, &E, 0);
    if (!a.ok || !b.ok || !x.ok || !y.ok) continue;
    double complex fg = a.z - b.z, fp = x.z - y.z;
    double scale = fmax(cabs(a.z) + cabs(b.z), 1e-300), scp = fmax(cabs(x.z) + cabs(y.z), 1e-300);
    int zg = cabs(fg) < 1e-10 * scale, zp = cabs(fp) < 1e-10 * scp;
    if (zg != zp) return 0;
    if (zg) continue;
    double complex r = fg / fp;
    if (!have) {
      ratio = r;
      have = 1;
    } else if (cabs(r - ratio) > 1e-7 * cabs(ratio)) {
      snprintf(why, wc, "relations not proportional");
      return 0;
    }
  }
  if (!have) return tree_eq(c, g, p, 0);
  if (go != MV_R_EQ && go != MV_R_NE && creal(ratio) <= 0) return 0;
  return 1;
}

/* One union member as an interval: an interval, or a one-element set {c}. */
static int member_interval(const mv_ctx *c, int id, ivl *out) {
  const mv_node *n = &c->nodes[id];
  if (n->kind == MV_SET && n->n == 1) {
    *out = (ivl){n->kid, n->kid, 0, 0};
    return 1;
  }
  return as_interval(c, id, out, 1);
}

static int relations_vs_union(mv_ctx *c, int g, int p, char *why, size_t wc) {
  ivl gi[MV_MAX_SET], pi[MV_MAX_SET];
  char var[MV_NAME] = "", v[MV_NAME];
  int n = 0;
  for (int k = c->nodes[g].kid; k >= 0; k = c->nodes[k].next, n++) {
    const mv_node *R = &c->nodes[k];
    if (R->kind == MV_REL && R->n == 2 && R->rel[0] == MV_R_EQ && c->nodes[R->kid].kind == MV_VAR &&
        !has_vars(c, c->nodes[R->kid].next)) {
      int pt = c->nodes[R->kid].next;
      gi[n] = (ivl){pt, pt, 0, 0};
      snprintf(v, MV_NAME, "%s", c->nodes[R->kid].name);
    } else if (!relation_interval(c, k, &gi[n], v)) {
      snprintf(why, wc, "gold list is not a union of relations");
      return 0;
    }
    if (var[0] && strcmp(var, v) != 0) return 0;
    snprintf(var, MV_NAME, "%s", v);
  }
  int m = 0;
  for (int k = c->nodes[p].kid; k >= 0; k = c->nodes[k].next, m++)
    if (!member_interval(c, k, &pi[m])) return 0;
  unsigned char used[MV_MAX_SET] = {0};
  for (int i = 0; i < n; i++) {
    int found = 0;
    for (int j = 0; j < m && !found; j++)
      if (!used[j] && ivl_eq(c, &gi[i], &pi[j])) used[j] = found = 1;
    if (!found) {
      snprintf(why, wc, "union member %d unmatched", i + 1);
      return 0;
    }
  }
  return 1;
}

static int eq_node(mv_ctx *c, int g, unsigned gm, int p, unsigned pm, int depth, char *why,
                   size_t wc) {
  if (depth > 8 || !mv_step(c, 1)) {
    snprintf(why, wc, c->budget_hit ? "step budget exhausted" : "structure too deep");
    return 0;
  }
  const mv_node *G = &c->nodes[g], *P = &c->nodes[p];
  const reward_math_options *o = c->opt;

  /* relations and assignments */
  if (G->kind == MV_REL) {
    int op = G->rel[0];
    int lhs = G->kid, rhs = c->nodes[lhs].next;
    if (G->n >= 2 && (op == MV_R_APPROX)) return eq_node(c, lhs, gm, p, pm, depth + 1, why, wc);
    if (G->n > 2 && P->kind != MV_REL) {
      /* x = y = z = v: every member but the last is a name */
      int all = 1;
      for (int i = 0, k = lhs; i < G->n - 1; i++, k = c->nodes[k].next)
        if (G->rel[i] != MV_R_EQ || !simple_lhs(c, k)) all = 0;
      if (all) return eq_node(c, last_kid(c, g), gm, p, pm, depth + 1, why, wc);
    }
    if (G->n == 2 && (op == MV_R_EQ || op == MV_R_IN) && simple_lhs(c, lhs)) {
      if (P->kind == MV_REL && P->n == 2 && P->rel[0] == op && simple_lhs(c, P->kid)) {
        if (c->nodes[lhs].kind == MV_VAR && c->nodes[P->kid].kind == MV_VAR &&
            strcmp(c->nodes[lhs].name, c->nodes[P->kid].name) != 0) {
          snprintf(why, wc, "assigned variables differ");
          return 0;
        }
        int ga = fn_arg_var(c, lhs), pa = fn_arg_var(c, P->kid);
        if (ga >= 0 && pa >= 0 && !c->alias_from[0]) {
          /* f(x) = x and f(z) = z: the argument is a dummy variable */
          snprintf(c->alias_from, MV_NAME, "%s", c->nodes[pa].name);
          snprintf(c->alias_to, MV_NAME, "%s", c->nodes[ga].name);
          int r = eq_node(c, rhs, gm, c->nodes[P->kid].next, pm, depth + 1, why, wc);
          c->alias_from[0] = '\0';
          return r;
        }
        return eq_node(c, rhs, gm, c->nodes[P->kid].next, pm, depth + 1, why, wc);
      }
      ivl gi, pi;
      char v[MV_NAME];
      if (op == MV_R_IN && relation_interval(c, p, &pi, v) && as_interval(c, rhs, &gi, 1) &&
          c->nodes[lhs].kind == MV_VAR && strcmp(v, c->nodes[lhs].name) == 0)
        return ivl_eq(c, &gi, &pi);
      if (P->kind != MV_REL) return eq_node(c, rhs, gm, p, pm, depth + 1, why, wc);
    }
    if (P->kind == MV_REL) {
      if (P->n >= 2 && P->rel[0] == MV_R_APPROX) return eq_node(c, g, gm, P->kid, pm, depth + 1, why, wc);
      ivl gi, pi;
      char gv[MV_NAME], pv[MV_NAME];
      if (relation_interval(c, g, &gi, gv) && relation_interval(c, p, &pi, pv))
        return strcmp(gv, pv) == 0 && ivl_eq(c, &gi, &pi);
      if (P->kind == MV_REL && P->n == 2 && P->rel[0] == MV_R_IN && simple_lhs(c, P->kid) &&
          relation_interval(c, g, &gi, gv) && as_interval(c, c->nodes[P->kid].next, &pi, 1))
        return ivl_eq(c, &gi, &pi);
      return relations_eq(c, g, p, why, wc);
    }
    /* gold relation vs predicted interval: accepted (the gold states the set) */
    ivl gi, pi;
    char gv[MV_NAME];
    if (relation_interval(c, g, &gi, gv) && as_interval(c, p, &pi, 1)) return ivl_eq(c, &gi, &pi);
    snprintf(why, wc, "gold is a relation, pred is not");
    return 0;
  }
  if (P->kind == MV_REL) {
    int op = P->rel[0];
    if (op == MV_R_APPROX) return eq_node(c, g, gm, P->kid, pm, depth + 1, why, wc);
    if (op == MV_R_EQ) {
      /* a solution chain "x = 2 + 3 = 5": its last member is the claim */
      for (int i = 0; i < P->n - 1; i++)
        if (P->rel[i] != MV_R_EQ) goto relation;
      return eq_node(c, g, gm, last_kid(c, p), pm, depth + 1, why, wc);
    }
    if (op == MV_R_IN && P->n == 2 && simple_lhs(c, P->kid))
      return eq_node(c, g, gm, c->nodes[P->kid].next, pm, depth + 1, why, wc);
  relation:
    if (o->allow_set_relation) {
      ivl gi, pi;
      char pv[MV_NAME];
      if (relation_interval(c, p, &pi, pv) && as_interval(c, g, &gi, 1)) return ivl_eq(c, &gi, &pi);
    }
    snprintf(why, wc, "pred is a relation, gold is not");
    return 0;
  }

  /* gold "a < x \le b or c \le x < d" against a predicted union */
  if (G->kind == MV_LIST && P->kind == MV_UNION && G->n == P->n && G->n <= MV_MAX_SET)
    return relations_vs_union(c, g, p, why, wc);

  /* sets, lists and \pm */
  elem ge[MV_MAX_SET], pe[MV_MAX_SET];
  int ng = gm ? -1 : set_elems(c, g, ge, MV_MAX_SET);
  if (ng >= 0) {
    int np = pm ? -1 : set_elems(c, p, pe, MV_MAX_SET);
    if (np < 0 && G->kind == MV_LIST && P->kind == MV_TUPLE) {
      /* a bare list of answers against a tuple of the same answers */
      np = 0;
      for (int i = P->kid; i >= 0 && np < MV_MAX_SET; i = c->nodes[i].next) pe[np++] = (elem){i, 0};
    }
    if (np < 0) {
      snprintf(why, wc, "gold has %d answers, pred is a single answer", ng);
      return 0;
    }
    if (G->kind == MV_LIST && (P->kind == MV_LIST || P->kind == MV_TUPLE) && ng == np &&
        !sorted_or_unordered(c, pe, np))
      return match_ordered(c, ge, pe, np, depth, why, wc);
    return match_sets(c, ge, ng, pe, np, depth, why, wc);
  }
  if (!pm && set_elems(c, p, pe, MV_MAX_SET) >= 0) {
    snprintf(why, wc, "pred lists several answers, gold one");
    return 0;
  }

  /* intervals and unions */
  ivl gi, pi;
  if (G->kind == MV_INTERVAL || (G->kind == MV_SETCONST && G->op == 'R')) {
    if (!as_interval(c, g, &gi, 0) || !as_interval(c, p, &pi, 1)) {
      snprintf(why, wc, "gold is an interval, pred is not");
      return 0;
    }
    if (!ivl_eq(c, &gi, &pi)) {
      snprintf(why, wc, "interval ends differ");
      return 0;
    }
    return 1;
  }
  if (G->kind == MV_UNION) {
    if (P->kind != MV_UNION || P->n != G->n || G->n > MV_MAX_SET) {
      snprintf(why, wc, "gold is a union, pred is not the same size");
      return 0;
    }
    int k = 0;
    for (int i = G->kid; i >= 0; i = c->nodes[i].next) ge[k++] = (elem){i, 0};
    k = 0;
    for (int i = P->kid; i >= 0; i = c->nodes[i].next) pe[k++] = (elem){i, 0};
    return match_sets(c, ge, G->n, pe, P->n, depth, why, wc);
  }
  if (G->kind == MV_TUPLE) {
    if ((G->flags & MV_F_PAREN) && G->n == 2 && P->kind == MV_INTERVAL) {
      snprintf(why, wc, "open interval vs half-open/closed interval");
      return 0;
    }
    if ((P->kind != MV_TUPLE && P->kind != MV_LIST) || P->n != G->n) {
      snprintf(why, wc, "tuple sizes or kinds differ");
      return 0;
    }
    /* one sign choice of a tuple with \pm: each entry gets its own bits */
    int goff = 0, poff = 0;
    for (int i = G->kid, j = P->kid; i >= 0 && j >= 0; i = c->nodes[i].next, j = c->nodes[j].next) {
      int gk = gm ? pm_count(c, i) : 0, pk = pm ? pm_count(c, j) : 0;
      unsigned gsub = gk ? ((gm >> goff) & ((1u << gk) - 1)) | MV_EXPANDED : 0;
      unsigned psub = pk ? ((pm >> poff) & ((1u << pk) - 1)) | MV_EXPANDED : 0;
      goff += gk;
      poff += pk;
      if (!eq_node(c, i, gsub, j, psub, depth + 1, why, wc)) return 0;
    }
    return 1;
  }
  if (G->kind == MV_MATRIX) {
    int vec = (G->op == 1 || G->op == G->n) && P->kind == MV_TUPLE && P->n == G->n;
    if (!vec && (P->kind != MV_MATRIX || P->n != G->n || P->op != G->op)) {
      snprintf(why, wc, "matrix shapes differ");
      return 0;
    }
    for (int i = G->kid, j = P->kid; i >= 0 && j >= 0; i = c->nodes[i].next, j = c->nodes[j].next)
      if (!eq_node(c, i, 0, j, 0, depth + 1, why, wc)) return 0;
    return 1;
  }
  if (G->kind == MV_TEXT && P->kind == MV_CONST && P->op == 'I' &&
      strstr(c->text + G->toff, "infinit") && G->tlen < 24) {
    return 1; /* "infinitely many" */
  }
  if (G->kind == MV_TEXT) {
    if (P->kind != MV_TEXT || !tree_eq(c, g, p, 0)) {
      snprintf(why, wc, "text differs");
      return 0;
    }
    return 1;
  }
  if (G->kind == MV_SETCONST) {
    if (!tree_eq(c, g, p, 0)) {
      snprintf(why, wc, "set constants differ");
      return 0;
    }
    return 1;
  }
  if (is_scalar_kind(G->kind)) {
    if (!is_scalar_kind(P->kind)) {
      snprintf(why, wc, "gold is a number/expression, pred is not");
      return 0;
    }
    if ((G->flags ^ P->flags) & MV_F_DEG) {
      /* 60^\circ vs \pi/3: degrees never equal radians (policy) */
    }
    if (!number_eq(c, g, gm, p, pm)) {
      if (!why[0] || strncmp(why, "value", 5) != 0) snprintf(why, wc, "values differ");
      return 0;
    }
    return 1;
  }
  snprintf(why, wc, "kinds differ");
  return 0;
}

/* The single free variable of a tree that is an integer-parameter name
 * (k, n, m, t), else NULL. */
static const char *param_var(const mv_ctx *c, int id, env *E) {
  memset(E, 0, sizeof *E);
  const mv_node *n = &c->nodes[id];
  /* an assignment's left side is not free, also in a list of solutions
   * (x = \pi/6 + k\pi, \pi/3 + k\pi) */
  int list = n->kind == MV_LIST || n->kind == MV_SET;
  for (int k = list ? n->kid : id; k >= 0; k = list ? c->nodes[k].next : -1) {
    const mv_node *r = &c->nodes[k];
    int free = k;
    if (r->kind == MV_REL && r->n == 2 && r->rel[0] == MV_R_EQ &&
        (c->nodes[r->kid].kind == MV_VAR || !list))
      free = c->nodes[r->kid].next;
    collect(c, free, E, NULL, NULL, 0);
  }
  if (E->nvars != 1) return NULL;
  const char *v = E->names[0];
  if (strcmp(v, "k") && strcmp(v, "n") && strcmp(v, "m") && strcmp(v, "t")) return NULL;
  return v;
}

static int var_index(const env *E, const char *name) {
  for (int i = 0; i < E->nvars; i++)
    if (strcmp(E->names[i], name) == 0) return i;
  return -1;
}

/* Implicit functions (README): gold F(x, y) = G(x, y) in exactly two
 * variables, affine in y with a nonzero slope (so it fixes y uniquely), and
 * a prediction y = E(x) or just E(x), E in the other variable only: equal
 * when y := E(x) satisfies the gold at every random point (xy = 6 and 6/x;
 * \rho\sin\theta = \sqrt{3} and \sqrt{3}\csc\theta). */
static int implicit_eq(mv_ctx *c, int g, int p) {
  const mv_node *G = &c->nodes[g], *P = &c->nodes[p];
  if (G->kind != MV_REL || G->n != 2 || G->rel[0] != MV_R_EQ) return 0;
  /* y = f(x) names its unknown: the assignment rules decide */
  if (c->nodes[G->kid].kind == MV_VAR) return 0;
  env E, Ep;
  memset(&E, 0, sizeof E);
  memset(&Ep, 0, sizeof Ep);
  collect(c, g, &E, NULL, NULL, 0);
  if (E.nvars != 2) return 0;
  int expr = p, dep;
  if (P->kind == MV_REL) {
    if (P->n != 2 || P->rel[0] != MV_R_EQ || c->nodes[P->kid].kind != MV_VAR) return 0;
    dep = var_index(&E, c->nodes[P->kid].name);
    expr = c->nodes[P->kid].next;
  } else {
    if (!is_scalar_kind(P->kind) || pm_count(c, p) > 0) return 0;
    collect(c, p, &Ep, NULL, NULL, 0);
    if (Ep.nvars != 1 || var_index(&E, Ep.names[0]) < 0) return 0;
    dep = 1 - var_index(&E, Ep.names[0]);
  }
  if (dep < 0) return 0;
  collect(c, expr, &Ep, NULL, NULL, 0);
  if (Ep.nvars != 1 || var_index(&E, Ep.names[0]) != 1 - dep) return 0;
  int lhs = G->kid, rhs = c->nodes[lhs].next, checked = 0;
  for (int pt = 0; pt < MV_POINTS; pt++) {
    fill_points(&E, c->opt->seed, pt);
    double complex y[3] = {E.vals[dep], E.vals[dep] + 0.5, 0}, f[3];
    double scale = 0;
    val e = eval(c, expr, &E, 0);
    if (!e.ok) continue;
    y[2] = e.z;
    for (int k = 0; k < 3; k++) {
      E.vals[dep] = y[k];
      val a = eval(c, lhs, &E, 0), b = eval(c, rhs, &E, 0);
      if (!a.ok || !b.ok || c->budget_hit) return 0;
      f[k] = a.z - b.z;
      scale = fmax(scale, cabs(a.z) + cabs(b.z));
    }
    double complex slope = (f[1] - f[0]) / (y[1] - y[0]);
    if (cabs(slope) < 1e-9 * fmax(scale, 1e-300)) return 0; /* y not determined */
    /* affine in y: the third value lies on the line through the first two */
    double complex line = f[0] + slope * (y[2] - y[0]);
    if (cabs(f[2] - line) > 1e-8 * fmax(scale, 1e-300)) return 0;
    if (cabs(f[2]) > 1e-9 * fmax(scale, 1e-300)) return 0;
    checked++;
  }
  return checked >= 2;
}

int mv_equivalent(mv_ctx *c, int gold, int pred, char *why, size_t whycap) {
  why[0] = '\0';
  int r = eq_node(c, gold, 0, pred, 0, 0, why, whycap);
  if (!r && !c->budget_hit && implicit_eq(c, gold, pred)) {
    snprintf(why, whycap, "satisfies the gold equation (implicit function)");
    return 1;
  }
  if (!r && !c->budget_hit) {
    /* x = k\pi vs n\pi: integer parameters are dummies */
    env Eg, Ep;
    const char *gv = param_var(c, gold, &Eg), *pv = param_var(c, pred, &Ep);
    if (gv && pv && strcmp(gv, pv) != 0) {
      snprintf(c->alias_from, MV_NAME, "%s", pv);
      snprintf(c->alias_to, MV_NAME, "%s", gv);
      char why2[REWARD_MATH_REASON_MAX] = "";
      r = eq_node(c, gold, 0, pred, 0, 0, why2, sizeof why2);
      c->alias_from[0] = '\0';
      if (r) {
        snprintf(why, whycap, "equivalent with parameter %s renamed %s", pv, gv);
        return 1;
      }
    }
  }
  if (r) snprintf(why, whycap, "equivalent");
  else if (c->budget_hit) snprintf(why, whycap, "step budget exhausted");
  return r;
}
