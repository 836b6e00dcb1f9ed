/* Math verifier: hand-written cases for extraction, parsing, equivalence and
 * each documented policy (both settings), plus the size/time bounds. The
 * expected verdicts are worked out by hand from the mathematics (and the
 * examples of ../shared/reference/verifier.md). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "reward/math_verify.h"
#include "test.h"

typedef struct vcase {
  const char *gold, *pred;
  int correct;
} vcase;

static int verdict_of(const char *gold, const char *pred, const reward_math_options *o,
                      reward_math_verdict *v) {
  grpo_error err = {0};
  int rc = reward_math_verify(gold, pred, o, v, &err);
  if (rc != GRPO_OK) return -1;
  return v->correct;
}

static void run_cases(const vcase *cases, size_t n, const reward_math_options *o) {
  for (size_t i = 0; i < n; i++) {
    reward_math_verdict v;
    int got = verdict_of(cases[i].gold, cases[i].pred, o, &v);
    CHECK_MSG(got == cases[i].correct, "gold [%s] pred [%s]: got %d want %d (%s | %s | %s)",
              cases[i].gold, cases[i].pred, got, cases[i].correct, v.gold_form, v.pred_form,
              v.reason);
  }
}

#define RUN_CASES(arr, opt) run_cases(arr, sizeof(arr) / sizeof(arr[0]), opt)

TEST(extraction_priority) {
  static const vcase c[] = {
      {"7", "First I get \\boxed{4}. Hmm, no: recheck gives \\boxed{9}. So \\boxed{7}.", 1},
      {"4", "First I get \\boxed{4}. Hmm, no: recheck gives \\boxed{7}.", 0},
      {"12", "so the total is \\boxed {12}", 1},            /* space after \boxed */
      {"5", "thus \\boxed 5$ done", 1},                        /* \boxed X without braces */
      {"5", "\\boxed{\\boxed{5}}", 1},                         /* nested */
      {"5", "the answer is \\boxed{}", 0},                     /* empty box: no answer */
      {"5", "\\boxed{5", 0},                                   /* unbalanced: no answer */
      {"18", "She makes 9 * 2 = 18 dollars.\n#### 18", 1},
      {"18", "#### 18\nNew question: 3 + 4?\n#### 7", 0},      /* the last #### wins */
      {"42", "blah. The final answer is $42$. I hope it is correct.", 1},
      {"42", "**Answer:** 42", 1},
      {"42", "Answer: 41 or so, no wait. Answer: 42", 1},
      {"3", "we have x = 2 and then y = $3$", 1},             /* last math environment */
      {"3", "5 apples minus 2 apples leaves 3", 1},           /* last number fallback */
      {"9", "<think>maybe \\boxed{4}</think> The answer is \\boxed{9}", 1},
      {"4", "<think>maybe \\boxed{4}</think> The answer is \\boxed{9}", 0},
      {"\\frac{\\sqrt{3}}{3}", "\\boxed{\\frac{\\sqrt3}{3}}", 1}, /* bare LaTeX gold */
      {"$\\frac{1}{2}$", "0.5", 1},
      {"Janet sells 9 eggs.\n#### 1,234", "The answer is 1234", 1}, /* GSM8K gold */
  };
  RUN_CASES(c, NULL);
}

TEST(numbers) {
  static const vcase c[] = {
      {"42", "042", 1},      {"42", "+42", 1},         {"0", "-0", 1},
      {"0.7", "0.70", 1},    {"0.7", "\\frac{7}{10}", 1}, {"0.4", ".4", 1},
      {"5", "5.0", 1},       {"5", "5.001", 0},        {"1234567", "1,234,567", 1},
      {"2500", "2\\,500", 1}, {"12345", "12\\,345", 1}, {"2500", "2{,}500", 1},
      {"1000000", "1 000 000", 1}, {"1000000", "10^{6}", 1}, {"2500", "2.5\\times10^{3}", 1},
      {"2500", "2.5e3", 1},  {"0.0025", "2.5E-3", 1},  {"3.14", "3,14", 0}, /* "3,14" is a list */
      {"3.1416", "3,1416", 1},                      /* decimal comma, unambiguous */
      {"7.75", "7 3/4", 1},  {"918.5", "918\\frac{1}{2}", 1}, {"10", "\\$10", 1},
      {"10", "10 dollars", 1}, {"12", "12\\text{ m}", 1}, {"865", "865 \\mbox{ inches}^2", 1},
      {"\\frac{1}{2}", "\\frac{1}{2} cm", 1}, {"1000001", "1000000", 0},
      {"\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", 0},   /* exact, not absolute tolerance */
      {"\\frac{1}{2^{99}}", "2^{-99}", 1},
      {"\\frac{1}{2004!}", "\\frac{1}{2006!}", 0},     /* beyond double range: structural */
      {"\\frac{2^{2005}+1}{3 \\cdot 2^{2006}}", "\\frac{1}{3 \\cdot 2^{2006}}", 0},
      {"−3", "-3", 1}, /* unicode minus */
  };
  RUN_CASES(c, NULL);
}

TEST(latex_forms) {
  static const vcase c[] = {
      {"\\frac{1}{3}", "\\dfrac{1}{3}", 1},  {"\\frac{8}{3}", "\\tfrac83", 1},
      {"\\frac{1}{2}+\\frac{1}{72}", "\\dfrac{1}{2} +\\! \\frac1{72}", 1},
      {"\\frac{3}{6}", "\\frac{1}{2}", 1},   {"\\frac{2}{\\sqrt{2}}", "\\sqrt{2}", 1},
      {"\\sqrt{12}", "2\\sqrt{3}", 1},       {"\\sqrt{16}", "4", 1}, {"\\sqrt[3]{8}", "2", 1},
      {"\\sqrt[3]{-8}", "-2", 1},            {"(x-2)(x+2)", "x^2-4", 1},
      {"-3+e^{5}", "e^{5}-3", 1},            {"e^{16}-1", "-1 + exp(16)", 1},
      {"\\dfrac{\\pi}{2}", "pi/2", 1},       {"-2\\pi", "-2*pi", 1},
      {"14 - i", "14.0 + -1.0i", 1},         {"\\frac34i", "\\frac{3}{4}i", 1},
      {"\\left(x-2\\right)\\left(x+2\\right)", "(x-2)(x+2)", 1},
      {"x^2+2x+1", "x^2 + 2*x + 1", 1},      {"x^2+2x+1", "x^3+2x+1", 0},
      {"3x+4y", "3a+4b", 0},                 /* variables are matched by name */
      {"\\tan^2(y)+1", "\\sec^2(y)", 1},     {"\\sin^2 x + \\cos^2 x", "1", 1},
      {"\\log_2 8", "3", 1},                 {"\\ln(e^2)", "2", 1},
      {"\\binom{5}{2}", "10", 1},            {"5!", "120", 1},
      {"(r+5)^2", "(r+5)(r+5)", 1},
      /* factorials and binomials of variables: Gamma continuation at random points */
      {"\\frac{d!}{2k(d-k)!}", "\\frac{\\binom{d}{k}(k-1)!}{2}", 1},
      {"\\frac{d!}{2k(d-k)!}", "\\frac{\\binom{d}{k}k!}{2}", 0},
      {"\\binom{n}{2}", "\\frac{n(n-1)}{2}", 1}, {"\\binom{n}{2}", "\\frac{n(n+1)}{2}", 0},
      {"n!", "(n+1)!/(n+1)", 1},           {"n!", "(n-1)!", 0},          {"10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}", 1},
      {"4", "4\\sqrt(2)", 0},                /* malformed LaTeX is rejected */
      {"\\sqrt{2}", "sqrt(2)", 1},           /* plain-text function call is fine */
      {"10 - 2\\sqrt{5}", "10 - 2\xe2\x88\x9a" "5", 1}, /* unicode root */
      /* a function name in \\operatorname / \\mathrm / \\text is the function */
      {"\\sin(x+1)", "\\operatorname{sin}(x+1)", 1}, {"x+1", "\\operatorname{sin}(x+1)", 0},
      {"\\ln 2", "\\mathrm{ln}\\, 2", 1},       {"\\sin^2 x", "\\text{ sin }^2 x", 1},
      /* an unknown function applied is not its argument */
      {"x+1", "\\operatorname{foo}(x+1)", 0},   {"12", "\\text{lcm}(4, 6)", 0},
      {"2", "so it equals sqrt(2)", 0},         {"\\sqrt{2}", "so it equals sqrt(2)", 1},
      {"6", "so the answer is gcd(12, 18)", 0}, {"5", "Answer (5)", 1},
      /* JSON-eaten backslashes: form feed + "rac" is \\frac, tab + "imes" \\times */
      {"\f" "rac{1}{2}", "0.5", 1},             {"3\times 4", "12", 1},
      {"[\f" "rac{1}{6}, 1)", "[1/6, 1)", 1},   {"\f" "rac{1}{2}", "0.4", 0},
      {"3\t4", "12", 0},                       /* a plain tab stays whitespace */
      {"x_1 + x_2", "x_{2} + x_1", 1},       {"x_1", "x_2", 0},
      {"(a+5)(b+2)", "(+5)(b+2)", 0},        /* never strip single letters */
      {"30", "30^\\circ", 1},                {"30", "30^{\\circ}", 1},
      {"\\frac{\\pi}{6}", "30^\\circ", 0},   /* degrees vs radians: rejected */
  };
  RUN_CASES(c, NULL);
}

TEST(text_and_choices) {
  static const vcase c[] = {
      {"\\text{Tuesday}", "Tuesday", 1}, {"\\text{Evelyn}", "evelyn", 1},
      {"\\text{13}", "13", 1},           {"odd", "\\text{oddd}", 0},
      {"B", "(B)", 1},                   {"B", "\\text{(B)}", 1}, {"E", "\\mathrm{E}", 1},
      {"A", "\\textbf{A}", 1},           {"A", "B", 0},           {"E", "\\mathrm{E}*2", 0},
      {"f'", "f'", 1},                   {"E", "E'", 0},
      /* a choice letter against an answer labelled with it */
      {"C", "C. x = 42", 1},             {"C. x = 42", "C", 1},  {"C", "(C) 42", 1},
      {"C", "B. x = 42", 0},             {"C. x = 42", "D", 0},  {"C", "C.x = 42", 0},
      {"A", "A. x = 1, B. x = 2", 0},    {"A", "(A) 1 (B) 2", 0},   /* options listed */
      /* sentence golds: a short text answer that is a phrase of the sentence */
      {"Petya will receive the last token.", "Petya", 1},
      {"Petya will receive the last token.", "Vasya", 0},
      {"Petya will receive the last token.", "the", 0}, /* stopwords only */
      {"Petya will receive the last token.", "\\boxed{5}", 0},
      {"\\text{infinitely many}", "\\infty", 1},
  };
  RUN_CASES(c, NULL);
}

TEST(percent_policy) {
  static const vcase c[] = {
      {"25\\%", "0.25", 1}, {"25\\%", "25", 1},  {"25\\%", "25\\%", 1}, {"10%", "0.1", 1},
      {"10", "10\\%", 1},   {"7", "700", 0},     {"0.3", "30", 0},      {"28\\%", "28 percent", 1},
      {"25\\%", "2.5", 0},
  };
  RUN_CASES(c, NULL);
  reward_math_options o;
  reward_math_options_default(&o);
  o.percent_bare_ok = 0;
  static const vcase strict[] = {{"25\\%", "25", 0}, {"25\\%", "0.25", 1}, {"10", "10\\%", 0}};
  RUN_CASES(strict, &o);
}

TEST(rounding_policy) {
  static const vcase c[] = {
      {"\\sqrt{11}", "3.3166", 1},  {"\\sqrt{11}", "3.3167", 0}, {"\\sqrt{11}", "3.3170", 0},
      {"\\frac{2}{3}", "0.67", 0},   /* two significant digits: below the default minimum */
      {"\\frac{2}{3}", "0.667", 1}, {"\\frac{600}{7}", "85.71", 1}, {"\\frac{600}{7}", "85.72", 0},
      {"\\frac{1}{12}", "0.0833333333333333", 1},
      {"0.29", "0.290243531202435", 1}, /* the gold itself is rounded */
      {"30.52", "\\dfrac{1587}{52}", 1}, {"30.53", "\\dfrac{1587}{52}", 0},
      {"5.001", "5", 0},
      /* a rounded gold needs two decimals (in the value; % adds two) ... */
      {"6.67", "\\frac{20}{3}", 1},    {"33.3", "\\frac{100}{3}", 0},
      {"41.4\\%", "\\sqrt{2}-1", 1},   {"33.3\\%", "\\frac13", 1},
      /* ... and a prediction with no short decimal form: 2.45 would be written */
      {"2.5", "2.45", 0},               {"2.5", "\\frac{49}{20}", 0}, {"12.5", "12.45", 0},
      {"12.75", "12.748", 0},           {"12.75", "12.7483", 1},     /* two more digits */
      {"6.02", "6\\frac{1}{64}", 1},    {"6.01", "6\\frac{1}{64}", 0},
      {"0.46", "\\frac{6}{13}", 1},     {"0.46", "\\frac{23}{50}", 1}, /* exact: equal */
  };
  RUN_CASES(c, NULL);
  reward_math_options o;
  reward_math_options_default(&o);
  o.allow_rounded = 0;
  static const vcase off[] = {{"\\sqrt{11}", "3.3166", 0}, {"30.52", "\\dfrac{1587}{52}", 0},
                              {"\\frac{1}{2}", "0.5", 1}, {"6.67", "\\frac{20}{3}", 0}};
  RUN_CASES(off, &o);
}

TEST(sets_tuples_intervals) {
  static const vcase c[] = {
      {"1331 and 1728", "1728", 0},          /* subset is wrong */
      {"2, 3", "\\boxed{3}", 0},              {"3", "\\boxed{2, 3}", 0}, /* superset */
      {"2, 3", "\\boxed{3, 2}", 1},           {"\\{1, 2\\}", "\\{2, 1\\}", 1},
      {"3, 8, -1", "5, 7, -1", 0},            {"7", "\\boxed{7 or 8}", 0}, /* hedge */
      {"\\{1, 2\\}", "\\{1, 2, 2\\}", 0},
      {"(1, 2)", "(2, 1)", 0},                {"(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", 1},
      {"[1, 4)", "(1,4)", 0},                 {"[1, 4)", "[1,4)", 1}, {"(1, 4]", "(1, 4)", 0},
      {"(-\\infty, \\infty)", "\\mathbb{R}", 1},
      {"(-\\infty, 0) \\cup (1, \\infty)", "(1, \\infty) \\cup (-\\infty, 0)", 1},
      {"(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty, 0)", 0},
      {"\\pm 2", "2, -2", 1},                 {"1 \\pm \\sqrt{19}", "1 + \\sqrt{19}, 1 - \\sqrt{19}", 1},
      {"\\pm 2", "2", 0},                     {"\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt{5}, 1-\\sqrt{5}\\}", 1},
      {"(3,2),(-3,2)", "\\{(-3, 2), (3, 2)\\}", 1},
      {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", 1},
      {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 4 & 3 \\end{bmatrix}", 0},
      {"\\begin{pmatrix} -7 \\\\ 16 \\end{pmatrix}", "(-7,16)", 1},
      {"\\{x | -1 < x < 1\\}", "(-1, 1)", 1},
      /* bare lists: sorted predictions are sets, unsorted ones positional */
      {"10, 4, -2", "4, 10, -2", 0},          {"10, 4, -2", "10, 4, -2", 1},
      {"10, 4, -2", "-2, 4, 10", 1},          {"10, 4, -2", "10, 4, -2.0", 1},
      {"0.1, 4, 2", "4, .1, 2", 0},           {"0.1, 4, 2", "4, 2, .1", 1}, /* descending */
      {"1,-1,7,-7", "-7, -1, 1, 7", 1},       {"5,1", "1, 5", 1}, /* two: always sorted */
      {"10, 4, -2", "(4, 10, -2)", 0},        {"10, 4, -2", "\\{4, 10, -2\\}", 1},
      {"1, 2, 2", "2, 1, 2", 0},              {"1, 2, 2", "2, 2, 1", 1},
      {"x, 2x, 1", "1, x, 2x", 1},            /* variables: order-free */
      {"a = 1, b = 3, c = 2", "c = 2, a = 1, b = 3", 1},
      /* \pm inside a tuple: one tuple per sign choice, signs independent */
      {"(\\sqrt{2}, 0, \\sqrt{2}), (\\sqrt{2}, 0, -\\sqrt{2}), (-\\sqrt{2}, 0, \\sqrt{2}), (-\\sqrt{2}, 0, -\\sqrt{2})",
       "(\\pm \\sqrt{2}, 0, \\pm \\sqrt{2})", 1},
      {"(\\sqrt{2}, 0, \\sqrt{2}), (\\sqrt{2}, 0, -\\sqrt{2}), (-\\sqrt{2}, 0, \\sqrt{2}), (-\\sqrt{2}, 0, -\\sqrt{2})",
       "(\\pm \\sqrt{2}, 1, \\pm \\sqrt{3})", 0},
      {"(1, \\pm 2)", "(1, 2), (1, -2)", 1}, {"(1, \\pm 2)", "(1, 2)", 0},
      {"(1, 2)", "(1, \\pm 2)", 0},          {"(\\pm 1, \\pm 1)", "(1, 1), (-1, -1)", 0},
      {"(1, \\pm 2), (3, 4)", "(3, 4), (1, -2), (1, 2)", 1},
      /* circled numbers are numbered statements: "②③" is the list 2, 3 */
      {"\xe2\x91\xa1\xe2\x91\xa2", "2, 3", 1}, {"\xe2\x91\xa1\xe2\x91\xa2", "1, 2", 0},
      {"\xe2\x91\xa1\xe2\x91\xa2", "23", 0},   {"\xe2\x91\xb3", "20", 1},
  };
  RUN_CASES(c, NULL);
}

TEST(relations_policy) {
  static const vcase c[] = {
      {"x = 5", "5", 1},                      {"5", "x = 5", 1},
      {"5", "x = 2 + 3 = 5", 1},              {"f(x) = 2x", "2x", 1},
      {"f(x)=x-1", "f(x) = x-1", 1},          {"f(z)=z", "f(x)=x", 1},
      {"y = 3x-2", "y = -2+3x", 1},           {"34x+45y-20z+100=0", "-34x-45y+20z-100=0", 1},
      {"3x + 4y + 14=0", "3*x-1*y+13=0", 0},  {"2x+3y-z+1=0", "x-y+4z+5=0", 0},
      {"x < 3", "3 > x", 1},                  {"x < 3", "x > 3", 0}, {"x \\le 3", "x < 3", 0},
      {"-2 \\le x \\le 7", "[-2, 7]", 1},     /* gold relation, predicted interval: accepted */
      {"x \\in [-2,7]", "-2 \\le x \\le 7", 1},
      {"\\frac{\\sqrt{3}}{3}", "\\frac{\\sqrt{3}}{3} \\approx 0.577", 1},
      {"x = y = z = \\frac{\\sqrt{2}}{2}", "\\dfrac{\\sqrt{2}}{2}", 1},
      {"(2, \\infty)", "x > 2", 0},           /* predicted relation, gold interval: rejected */
      {"x = k\\pi", "n\\pi", 1},              /* integer parameters are dummies */
      {"x = \\frac{\\pi}{6} + k\\pi, \\frac{\\pi}{3} + k\\pi", "\\frac{\\pi}{6} + n\\pi, \\frac{\\pi}{3} + n\\pi", 1},
      {"x = \\frac{\\pi}{6} + k\\pi, \\frac{\\pi}{3} + k\\pi", "\\frac{\\pi}{6}, \\frac{\\pi}{3}", 0},
      {"2x", "2y", 0},                        /* other variables are not */
      {"(a, b) = (3n, 5n)", "(3t, 5t) \\text{ for some integer } t", 1},
      {"f(x) = 1", "f(x) = 1 \\text{ for all } x \\in \\mathbb{Q}", 1},
      {"4 < m \\leq 8 \\text{ or } 10 \\leq m < 12", "(4, 8] \\cup [10, 12)", 1},
      {"4 < m \\leq 8 \\text{ or } 10 \\leq m < 12", "(4, 8] \\cup (10, 12)", 0},
      {"a \\le -2 \\text{ or } a = 1", "(-\\infty, -2] \\cup \\{1\\}", 1},
      {"\\lceil n / 2\\rceil+1", "\\left\\lceil \\dfrac{n}{2} \\right\\rceil + 1", 1},
      {"\\lfloor 7/2 \\rfloor", "3", 1},
      {"2:1", "2", 1},                        {"1 : (4/3)", "\\frac{3}{4}", 1},
      {"7,14,18", "Paolo: 18, Qing: 14, Rayna: 7", 1},
      /* implicit functions: y := pred satisfies a gold affine in y */
      {"xy = 6", "\\dfrac{6}{x}", 1},        {"xy = 6", "\\dfrac{6}{x + 1}", 0},
      {"xy = 6", "y = 6/x", 1},               {"xy = 6", "x = \\frac{6}{y}", 1},
      {"\\rho\\sin\\theta = \\sqrt{3}", "\\sqrt{3} \\csc \\theta", 1},
      {"\\rho\\sin\\theta = \\sqrt{3}", "\\sqrt{3} \\sin \\theta", 0},
      {"y + 1 = -(2x - 1)^2", "-4x^2 + 4x - 2", 1}, {"y + 1 = -(2x - 1)^2", "-4x^2 + 4x - 1", 0},
      {"x^2 + y^2 = 1", "\\sqrt{1 - x^2}", 0}, /* not affine in y: one branch only */
      {"x + 0y = 5", "5", 0},                 /* y not determined */
      {"y = 2x", "y/2", 0},                   /* an assignment names its unknown */
      {"x + y + z = 1", "1 - x - y", 0},      /* three variables */
  };
  RUN_CASES(c, NULL);
  reward_math_options o;
  reward_math_options_default(&o);
  o.allow_set_relation = 1;
  static const vcase lenient[] = {{"(2, \\infty)", "x > 2", 1}, {"(3,4]", "3 < \\lambda \\leq 4", 1},
                                  {"(2, \\infty)", "x \\ge 2", 0}};
  RUN_CASES(lenient, &o);
}

TEST(unscorable_gold) {
  reward_math_verdict v;
  CHECK_EQ_INT(verdict_of("", "5", NULL, &v), 0);
  CHECK_EQ_INT(v.result, REWARD_MATH_UNSCORABLE);
  CHECK_EQ_INT(verdict_of("\\frac{1}{", "\\frac{1}{", NULL, &v), 0);
  CHECK_EQ_INT(v.result, REWARD_MATH_UNSCORABLE);
  CHECK_EQ_INT(verdict_of("6", "\\boxed{3}", NULL, &v), 0); /* never 1 for a plain gold */
  CHECK_EQ_INT(v.result, REWARD_MATH_INCORRECT);
  CHECK(reward_math_score("6", "\\boxed{6}", NULL) == 1.0);
  CHECK(reward_math_score("", "\\boxed{6}", NULL) == 0.0);
  grpo_error err = {0};
  CHECK_EQ_INT(reward_math_verify(NULL, "x", NULL, &v, &err), GRPO_EINVAL);
}

TEST(require_think) {
  reward_math_options o;
  reward_math_options_default(&o);
  o.require_think_close = 1;
  reward_math_verdict v;
  CHECK_EQ_INT(verdict_of("5", "\\boxed{5}", &o, &v), 0);
  CHECK_EQ_INT(verdict_of("5", "<think>hmm</think>\\boxed{5}", &o, &v), 1);
}

TEST(diagnostics) {
  reward_math_verdict v;
  CHECK_EQ_INT(verdict_of("\\frac12", "The answer is \\boxed{0.5}.", NULL, &v), 1);
  CHECK_EQ_INT(v.rule, REWARD_MATH_RULE_BOXED);
  CHECK_STR(v.pred_answer, "0.5");
  CHECK_STR(v.gold_form, "(1/2)");
  CHECK(v.gold_parsed && v.pred_parsed);
  CHECK(v.steps > 0);
  CHECK_STR(reward_math_rule_name(REWARD_MATH_RULE_HASHES), "hashes");
  CHECK_STR(reward_math_result_name(REWARD_MATH_UNSCORABLE), "unscorable");
}

/* Hostile inputs give a verdict within the step budget. */
TEST(bounds) {
  size_t n = 1u << 20;
  char *s = malloc(n + 16);
  CHECK(s != NULL);
  if (!s) return;
  reward_math_verdict v;
  memset(s, '{', n);
  s[n] = '\0';
  CHECK_EQ_INT(verdict_of("5", s, NULL, &v), 0);
  CHECK(v.steps <= 400000);
  memcpy(s, "\\boxed", 6);
  CHECK_EQ_INT(verdict_of("5", s, NULL, &v), 0);
  CHECK_EQ_INT(verdict_of(s, "5", NULL, &v), 0);
  CHECK(v.result == REWARD_MATH_UNSCORABLE);
  /* deep parentheses and long sums inside a box */
  size_t k = 0;
  k += (size_t)sprintf(s, "\\boxed{");
  for (int i = 0; i < 5000; i++) s[k++] = '(';
  s[k++] = '5';
  for (int i = 0; i < 5000; i++) s[k++] = ')';
  s[k++] = '}';
  s[k] = '\0';
  CHECK_EQ_INT(verdict_of("5", s, NULL, &v), 0);
  k = (size_t)sprintf(s, "\\boxed{");
  for (int i = 0; i < 3000; i++) k += (size_t)sprintf(s + k, "1+");
  k += (size_t)sprintf(s + k, "1}");
  CHECK_EQ_INT(verdict_of("3001", s, NULL, &v), 0); /* too large: rejected, not hung */
  CHECK_EQ_INT(verdict_of("2^{2^{100}}", "2^{2^{100}}", NULL, &v), 1); /* same tree */
  CHECK_EQ_INT(verdict_of("2^{2^{100}}", "2^{2^{100}}+1", NULL, &v), 0);
  CHECK_EQ_INT(verdict_of("1000!", "1000!", NULL, &v), 1);
  CHECK_EQ_INT(verdict_of("1000!", "999!", NULL, &v), 0);
  free(s);
}

/* Concurrent calls give the same verdicts as sequential ones (no shared
 * mutable state). */
static const vcase THREAD_CASES[] = {
    {"x^2-4", "(x-2)(x+2)", 1}, {"[1, 4)", "(1,4)", 0}, {"\\pm 2", "2, -2", 1},
    {"\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", 0}, {"\\sin^2 x + \\cos^2 x", "1", 1},
    {"Petya will receive the last token.", "Petya", 1},
};
enum { THREAD_CASES_N = sizeof THREAD_CASES / sizeof THREAD_CASES[0], THREAD_REPS = 200 };

static void *thread_body(void *arg) {
  int *bad = arg;
  for (int r = 0; r < THREAD_REPS; r++)
    for (int i = 0; i < THREAD_CASES_N; i++) {
      reward_math_verdict v;
      if (verdict_of(THREAD_CASES[i].gold, THREAD_CASES[i].pred, NULL, &v) != THREAD_CASES[i].correct)
        (*bad)++;
    }
  return NULL;
}

TEST(threads) {
  pthread_t th[4];
  int bad[4] = {0};
  for (int t = 0; t < 4; t++) CHECK(pthread_create(&th[t], NULL, thread_body, &bad[t]) == 0);
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < 4; t++) CHECK_EQ_INT(bad[t], 0);
}

int main(void) {
  RUN(extraction_priority);
  RUN(numbers);
  RUN(latex_forms);
  RUN(text_and_choices);
  RUN(percent_policy);
  RUN(rounding_policy);
  RUN(sets_tuples_intervals);
  RUN(relations_policy);
  RUN(unscorable_gold);
  RUN(require_think);
  RUN(diagnostics);
  RUN(bounds);
  RUN(threads);
  return test_summary();
}
