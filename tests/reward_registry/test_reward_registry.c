/* reward/registry: building from specs and JSON (and the errors for bad
 * specs), weighted scoring against hand-computed totals, unscorable samples,
 * group scoring, per-step means, and concurrent use of one registry. */
#include <cJSON.h>
#include <pthread.h>
#include <stdint.h>

#include "reward/math_verify.h"
#include "reward/registry.h"
#include "test.h"

typedef struct toks {
  char text[4096];
  int32_t off[256];
  int32_t n;
} toks;

static void build(toks *t, const char *const *list) {
  size_t len = 0;
  t->n = 0;
  for (int i = 0; list[i]; i++) {
    size_t k = strlen(list[i]);
    t->off[t->n++] = (int32_t)len;
    memcpy(t->text + len, list[i], k);
    len += k;
  }
  t->text[len] = '\0';
}

/* 24 tokens. Outside: <think> <Parallel> </Parallel> </think> \boxed{5} = 5;
 * block: 8 outline tokens + 4 thread tags = 12; threads 5 and 2.
 * L_total 24, L_longest 5 + 12 + 5 = 22, eta = 1/12, bonus 0.5/12. */
static const char *const k_par[] = {
    "<think>", "<Parallel>", "<Outlines>", "<Outline>", "1:", "</Outline>", "<Outline>", "2:",
    "</Outline>", "</Outlines>", "<Thread>", "1:", "a", "a", "a", "a", "</Thread>", "<Thread>",
    "2:", "b", "</Thread>", "</Parallel>", "</think>", "\\boxed{5}", NULL};

static reward_registry *make(const char *json) {
  cJSON *a = cJSON_Parse(json);
  CHECK(a != NULL);
  reward_registry *reg = NULL;
  grpo_error err;
  grpo_error_clear(&err);
  int rc = reward_registry_from_json(&reg, a, "test", &err);
  CHECK_MSG(rc == GRPO_OK, "%s", err.msg);
  cJSON_Delete(a);
  return reg;
}

/* Returns the error message of a spec that must fail (static buffer). */
static const char *json_error(const char *json) {
  static grpo_error err;
  grpo_error_clear(&err);
  cJSON *a = cJSON_Parse(json);
  CHECK(a != NULL);
  reward_registry *reg = NULL;
  int rc = reward_registry_from_json(&reg, a, NULL, &err);
  CHECK_MSG(rc == GRPO_EINVAL, "%s accepted", json);
  CHECK(reg == NULL);
  cJSON_Delete(a);
  return err.msg;
}

#define SPEC4                                                                            \
  "[{\"name\": \"math\", \"weight\": 1},"                                                \
  " {\"name\": \"format\", \"weight\": 0.5},"                                            \
  " {\"name\": \"overlong\", \"weight\": 1.0, \"options\": {\"max_completion_length\": 30, " \
  "\"cache_length\": 10}},"                                                              \
  " {\"name\": \"pgrpo_acceleration\", \"options\": {\"rho\": 0.5, \"clip\": \"0.2\"}}]"

TEST(create_and_names) {
  reward_registry *reg = make(SPEC4);
  CHECK_EQ_INT(reward_registry_count(reg), 4);
  CHECK_STR(reward_registry_name(reg, 3), "pgrpo_acceleration");
  CHECK_STR(reward_registry_metric(reg, 0), "rewards/math/mean");
  CHECK_STR(reward_registry_metric(reg, 3), "rewards/pgrpo_acceleration/mean");
  CHECK_NEAR(reward_registry_weight(reg, 1), 0.5, 0.0);
  CHECK_NEAR(reward_registry_weight(reg, 3), 1.0, 0.0); /* default weight */
  CHECK_EQ_INT(reward_registry_needs_correct(reg), 1);
  reward_registry_free(reg);

  /* The C API directly. */
  reward_option fo[] = {{"require_boxed", "false"}, {"partial", "true"}};
  reward_spec specs[] = {{"format", 2.0, fo, 2, NULL}, {"length", 0.1, (reward_option[]){{"target_length", "50"}}, 1, NULL}};
  grpo_error err;
  CHECK_EQ_INT(reward_registry_create(&reg, specs, 2, &err), GRPO_OK);
  CHECK_EQ_INT(reward_registry_needs_correct(reg), 0);
  reward_registry_free(reg);
}

TEST(invalid_specs) {
  const char *m;
  m = json_error("[{\"name\": \"maths\"}]");
  CHECK_MSG(strstr(m, "reward.functions[0] (maths): unknown reward function 'maths' (valid: math,") != NULL, "%s", m);
  m = json_error("[{\"name\": \"math\"}, {\"name\": \"format\", \"weight\": -1}]");
  CHECK_MSG(strstr(m, "reward.functions[1] (format): weight must be finite and >= 0, got -1") != NULL, "%s", m);
  m = json_error("[{\"name\": \"pgrpo_acceleration\", \"options\": {\"rho\": \"abc\"}}]");
  CHECK_MSG(strstr(m, "(pgrpo_acceleration): option 'rho': expected a number, got 'abc'") != NULL, "%s", m);
  m = json_error("[{\"name\": \"format\", \"options\": {\"require_boxd\": true}}]");
  CHECK_MSG(strstr(m, "unknown option 'require_boxd'") != NULL, "%s", m);
  m = json_error("[{\"name\": \"overlong\"}]");
  CHECK_MSG(strstr(m, "(overlong): missing required option 'max_completion_length'") != NULL, "%s", m);
  m = json_error("[{\"name\": \"math\"}, {\"name\": \"math\"}]");
  CHECK_MSG(strstr(m, "reward.functions[1] (math): duplicate function") != NULL, "%s", m);
  m = json_error("[]");
  CHECK_MSG(strstr(m, "need 1..16 functions, got 0") != NULL, "%s", m);
  m = json_error("{\"name\": \"math\"}");
  CHECK_MSG(strstr(m, "expected a list") != NULL, "%s", m);
  m = json_error("[{\"name\": \"math\", \"wieght\": 1}]");
  CHECK_MSG(strstr(m, "reward.functions[0]: unknown key 'wieght'") != NULL, "%s", m);
  m = json_error("[{\"name\": \"math\", \"weight\": \"1\"}]");
  CHECK_MSG(strstr(m, "reward.functions[0].weight: expected a number") != NULL, "%s", m);
  m = json_error("[{\"weight\": 1}]");
  CHECK_MSG(strstr(m, "missing 'name'") != NULL, "%s", m);
  m = json_error("[{\"name\": \"math\", \"options\": [1]}]");
  CHECK_MSG(strstr(m, "options: expected a mapping") != NULL, "%s", m);
  m = json_error("[{\"name\": \"format\", \"options\": {\"partial\": null}}]");
  CHECK_MSG(strstr(m, "options.partial: expected a string, number or boolean") != NULL, "%s", m);
  m = json_error("[{\"name\": \"format\", \"options\": {\"answer_regex\": \"[a-\"}}]");
  CHECK_MSG(strstr(m, "(format): option 'answer_regex':") != NULL, "%s", m);
  m = json_error("[{\"name\": \"length\", \"options\": {\"mode\": \"target\"}}]");
  CHECK_MSG(strstr(m, "mode target needs option 'target_length'") != NULL, "%s", m);

  /* NaN and infinite weights (JSON cannot spell them; the C API can). */
  reward_registry *reg = NULL;
  grpo_error err;
  reward_spec nan_spec = {"math", NAN, NULL, 0, NULL};
  CHECK_EQ_INT(reward_registry_create(&reg, &nan_spec, 1, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "reward.functions[0] (math): weight must be finite and >= 0, got nan") != NULL);
  reward_spec inf_spec = {"math", INFINITY, NULL, 0, NULL};
  CHECK_EQ_INT(reward_registry_create(&reg, &inf_spec, 1, &err), GRPO_EINVAL);
  reward_option twice[] = {{"rho", "0.1"}, {"rho", "0.2"}};
  reward_spec twice_spec = {"pgrpo_acceleration", 1.0, twice, 2, NULL};
  CHECK_EQ_INT(reward_registry_create(&reg, &twice_spec, 1, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "option 'rho' given twice") != NULL);
  reward_spec located = {"format", 1.0, (reward_option[]){{"partial", "maybe"}}, 1, "run.yaml:7:5"};
  CHECK_EQ_INT(reward_registry_create(&reg, &located, 1, &err), GRPO_EINVAL);
  CHECK_MSG(strstr(err.msg, "run.yaml:7:5 (format): option 'partial': expected true or false, got 'maybe'") == err.msg,
            "%s", err.msg);
  reward_spec null_name = {NULL, 1.0, NULL, 0, NULL};
  CHECK_EQ_INT(reward_registry_create(&reg, &null_name, 1, &err), GRPO_EINVAL);
  CHECK(reg == NULL);
}

/* math 1*1 + format 0.5*1 + overlong 1*(20-24)/10 + pgrpo 1*(0.5/12). */
TEST(weighted_total_by_hand) {
  reward_registry *reg = make(SPEC4);
  reward_scratch *s;
  grpo_error err;
  CHECK_EQ_INT(reward_scratch_create(reg, &s, &err), GRPO_OK);
  toks t;
  build(&t, k_par);
  CHECK_EQ_INT(t.n, 24);
  reward_input in;
  reward_input_init(&in);
  in.completion = t.text;
  in.n_tokens = t.n;
  in.token_offsets = t.off;
  in.correct = 1;
  reward_result r;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
  CHECK_NEAR(r.scores[0], 1.0, 0.0);
  CHECK_NEAR(r.scores[1], 1.0, 0.0);
  CHECK_NEAR(r.scores[2], -0.4, 1e-12);
  CHECK_NEAR(r.scores[3], 0.5 / 12.0, 1e-12);
  CHECK_NEAR(r.total, 1.0 + 0.5 - 0.4 + 0.5 / 12.0, 1e-12);
  CHECK_EQ_INT(r.correct, 1);
  CHECK_MSG(strstr(r.detail, "format=1") && strstr(r.detail, "overlong=-0.4") &&
                strstr(r.detail, "pgrpo_acceleration=0.04167(eta=0.083)"),
            "%s", r.detail);
  in.correct = 0;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
  CHECK_NEAR(r.total, 0.5 - 0.4, 1e-12);
  /* Without offsets the pgrpo counts are bytes: same structure, different eta. */
  in.correct = 1;
  in.token_offsets = NULL;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
  double len = (double)strlen(t.text);
  CHECK_NEAR(r.scores[3], 0.5 * (strlen("2:b")) / len, 1e-12);
  reward_scratch_free(s);
  reward_registry_free(reg);
}

TEST(verifier_and_unscorable) {
  reward_registry *reg = make(SPEC4);
  reward_scratch *s;
  grpo_error err;
  CHECK_EQ_INT(reward_scratch_create(reg, &s, &err), GRPO_OK);
  toks t;
  build(&t, k_par);
  reward_input in;
  reward_input_init(&in);
  in.completion = t.text;
  in.n_tokens = t.n;
  in.token_offsets = t.off;
  reward_result r;
  /* correct = -1: the verifier decides, once, for math and pgrpo. */
  in.gold = "5";
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
  CHECK_EQ_INT(r.correct, 1);
  CHECK_NEAR(r.scores[0], 1.0, 0.0);
  CHECK_NEAR(r.scores[3], 0.5 / 12.0, 1e-12);
  in.gold = "7";
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
  CHECK_EQ_INT(r.correct, 0);
  CHECK_NEAR(r.scores[0], 0.0, 0.0);
  CHECK_NEAR(r.scores[3], 0.0, 0.0);
  /* No gold: math and pgrpo are unscorable (NaN), the total skips them. */
  in.gold = NULL;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
  CHECK_EQ_INT(r.correct, -1);
  CHECK(isnan(r.scores[0]) && isnan(r.scores[3]));
  CHECK_NEAR(r.total, 0.5 - 0.4, 1e-12);
  CHECK_MSG(strstr(r.detail, "math=nan(no gold)") != NULL, "%s", r.detail);
  /* The registry follows the verifier's verdict: NaN exactly when the
   * verifier says the gold is unscorable (whatever its policy for these). */
  const char *golds[] = {"", "}{", "\\frac{", "\\boxed{", "5", NULL};
  for (int g = 0; golds[g]; g++) {
    reward_math_verdict v;
    CHECK_EQ_INT(reward_math_verify(golds[g], t.text, NULL, &v, &err), GRPO_OK);
    in.gold = golds[g];
    CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_OK);
    CHECK_MSG(isnan(r.scores[0]) == (v.result == REWARD_MATH_UNSCORABLE), "gold '%s'", golds[g]);
    CHECK_EQ_INT(r.correct, v.result == REWARD_MATH_UNSCORABLE ? -1 : v.correct);
  }
  in.gold = NULL;
  /* Every function unscorable -> NaN total. */
  reward_registry *m = make("[{\"name\": \"math\"}]");
  reward_scratch *ms;
  CHECK_EQ_INT(reward_scratch_create(m, &ms, &err), GRPO_OK);
  CHECK_EQ_INT(reward_registry_score(m, ms, &in, &r, &err), GRPO_OK);
  CHECK(isnan(r.total));
  /* incorrect_reward option. */
  reward_registry *neg = make("[{\"name\": \"math\", \"options\": {\"incorrect_reward\": -1}}]");
  reward_scratch *ns;
  CHECK_EQ_INT(reward_scratch_create(neg, &ns, &err), GRPO_OK);
  in.correct = 0;
  CHECK_EQ_INT(reward_registry_score(neg, ns, &in, &r, &err), GRPO_OK);
  CHECK_NEAR(r.total, -1.0, 0.0);
  reward_scratch_free(ns);
  reward_registry_free(neg);
  reward_scratch_free(ms);
  reward_registry_free(m);
  reward_scratch_free(s);
  reward_registry_free(reg);
}

TEST(bad_inputs) {
  reward_registry *reg = make(SPEC4);
  reward_scratch *s, *other;
  grpo_error err;
  CHECK_EQ_INT(reward_scratch_create(reg, &s, &err), GRPO_OK);
  reward_registry *reg2 = make("[{\"name\": \"format\"}]");
  CHECK_EQ_INT(reward_scratch_create(reg2, &other, &err), GRPO_OK);
  reward_input in;
  reward_input_init(&in);
  reward_result r;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "completion is NULL") != NULL);
  in.completion = "abc";
  in.n_tokens = -2;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_EINVAL);
  in.n_tokens = 2;
  int32_t off[2] = {1, 0};
  in.token_offsets = off;
  in.correct = 1;
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, &err), GRPO_EINVAL);
  CHECK_MSG(strstr(err.msg, "reward.functions[3] (pgrpo_acceleration): pgrpo: token_offsets[1]") != NULL,
            "%s", err.msg);
  CHECK_EQ_INT(reward_registry_score(reg, s, &in, &r, NULL), GRPO_EINVAL); /* no error struct */
  reward_input grp[2] = {in, in};
  reward_result gr[2];
  CHECK_EQ_INT(reward_registry_score_group(reg, s, grp, 2, gr, &err), GRPO_EINVAL);
  CHECK_MSG(strstr(err.msg, "group sample 0: reward.functions[3]") == err.msg, "%s", err.msg);
  CHECK_EQ_INT(reward_registry_score_group(reg, s, grp, 2, gr, NULL), GRPO_EINVAL);
  in.token_offsets = NULL;
  CHECK_EQ_INT(reward_registry_score(reg, other, &in, &r, &err), GRPO_EINVAL);
  reward_scratch_free(other);
  reward_registry_free(reg2);
  reward_scratch_free(s);
  reward_registry_free(reg);
}

/* length mode=group (Kimi k1.5) over lengths 100, 200, 300 with correct
 * 1, 0, 1: lambda 0.5, 0, -0.5 -> length 0.5, 0, -0.5; math 1, 0, 1. */
TEST(group_scoring) {
  reward_registry *reg = make(
      "[{\"name\": \"math\"}, {\"name\": \"length\", \"weight\": 0.5, \"options\": {\"mode\": \"group\"}}]");
  reward_scratch *s;
  grpo_error err;
  CHECK_EQ_INT(reward_scratch_create(reg, &s, &err), GRPO_OK);
  reward_input in[3];
  reward_result r[3];
  int64_t lens[3] = {100, 200, 300};
  int ok[3] = {1, 0, 1};
  for (int j = 0; j < 3; j++) {
    reward_input_init(&in[j]);
    in[j].completion = "x";
    in[j].n_tokens = (int32_t)lens[j];
    in[j].correct = ok[j];
  }
  /* Per completion, the group function is unscorable. */
  CHECK_EQ_INT(reward_registry_score(reg, s, &in[0], &r[0], &err), GRPO_OK);
  CHECK(isnan(r[0].scores[1]));
  CHECK_NEAR(r[0].total, 1.0, 0.0);
  CHECK_EQ_INT(reward_registry_score_group(reg, s, in, 3, r, &err), GRPO_OK);
  CHECK_NEAR(r[0].scores[1], 0.5, 1e-12);
  CHECK_NEAR(r[1].scores[1], 0.0, 0.0);
  CHECK_NEAR(r[2].scores[1], -0.5, 1e-12);
  CHECK_NEAR(r[0].total, 1.25, 1e-12);
  CHECK_NEAR(r[1].total, 0.0, 0.0);
  CHECK_NEAR(r[2].total, 0.75, 1e-12);
  CHECK_EQ_INT(reward_registry_score_group(reg, s, in, -1, r, &err), GRPO_EINVAL);
  CHECK_EQ_INT(reward_registry_score_group(reg, s, in, 0, r, &err), GRPO_OK);
  /* A group of one: all lengths equal, lambda 0. */
  CHECK_EQ_INT(reward_registry_score_group(reg, s, in, 1, r, &err), GRPO_OK);
  CHECK_NEAR(r[0].scores[1], 0.0, 0.0);
  reward_scratch_free(s);
  reward_registry_free(reg);
}

TEST(step_means) {
  reward_registry *reg = make("[{\"name\": \"math\"}, {\"name\": \"format\"}]");
  reward_stats a, b;
  reward_stats_init(&a, reg);
  reward_stats_init(&b, reg);
  reward_result r;
  r.scores[0] = 1.0, r.scores[1] = 0.0, r.total = 1.0;
  reward_stats_add(&a, &r);
  r.scores[0] = 0.0, r.scores[1] = 1.0, r.total = 1.0;
  reward_stats_add(&a, &r);
  r.scores[0] = NAN, r.scores[1] = 1.0, r.total = 1.0;
  reward_stats_add(&b, &r);
  /* merge == summing the double run (what MPI_Allreduce does across ranks) */
  reward_stats c = a;
  double *cd = reward_stats_doubles(&c);
  const double *bd = reward_stats_doubles(&b);
  for (int k = 0; k < REWARD_STATS_NDOUBLES; k++) cd[k] += bd[k];
  reward_stats_merge(&a, &b);
  CHECK(memcmp(reward_stats_doubles(&a), cd, REWARD_STATS_NDOUBLES * sizeof(double)) == 0);
  /* math: {1, 0} -> mean 0.5, std 0.5; format {0, 1, 1} -> 2/3, sqrt(2)/3 */
  CHECK_NEAR(reward_stats_mean(&a, 0), 0.5, 1e-12);
  CHECK_NEAR(reward_stats_std(&a, 0), 0.5, 1e-12);
  CHECK_NEAR(reward_stats_mean(&a, 1), 2.0 / 3.0, 1e-12);
  CHECK_NEAR(reward_stats_std(&a, 1), sqrt(2.0) / 3.0, 1e-12);
  CHECK_NEAR(reward_stats_total_mean(&a), 1.0, 0.0);
  reward_stats_init(&b, reg);
  CHECK(isnan(reward_stats_mean(&b, 0)));
  reward_registry_free(reg);
}

/* One shared registry, one scratch per thread: results equal the serial ones. */
#define NTHREADS 4
#define NCASES 6
static const char *k_cases[NCASES] = {
    "<think>a</think>\\boxed{5}", "<think>x", "no think \\boxed{5}",
    "<think><Parallel><Outlines><Outline>1:</Outline></Outlines><Thread>1: zz</Thread></Parallel></think>\\boxed{5}",
    "<think>t</think><Parallel>\\boxed{7}", ""};
typedef struct job {
  const reward_registry *reg;
  double totals[NCASES];
  int rc;
} job;

static void *worker(void *arg) {
  job *j = arg;
  reward_scratch *s;
  if (reward_scratch_create(j->reg, &s, NULL)) {
    j->rc = 1;
    return NULL;
  }
  for (int rep = 0; rep < 200; rep++)
    for (int c = 0; c < NCASES; c++) {
      reward_input in;
      reward_input_init(&in);
      in.completion = k_cases[c];
      in.n_tokens = (int32_t)strlen(k_cases[c]);
      in.gold = "5";
      reward_result r;
      if (reward_registry_score(j->reg, s, &in, &r, NULL)) j->rc = 1;
      if (rep > 0 && memcmp(&r.total, &j->totals[c], sizeof r.total) != 0) j->rc = 2;
      j->totals[c] = r.total;
    }
  reward_scratch_free(s);
  return NULL;
}

TEST(threads_share_a_registry) {
  reward_registry *reg = make(
      "[{\"name\": \"math\"}, {\"name\": \"format\", \"options\": {\"answer_regex\": \"\\\\\\\\boxed\"}},"
      " {\"name\": \"overlong\", \"options\": {\"max_completion_length\": 40}},"
      " {\"name\": \"pgrpo_acceleration\", \"options\": {\"malformed\": \"lenient\"}}]");
  job serial = {reg, {0}, 0};
  worker(&serial);
  CHECK_EQ_INT(serial.rc, 0);
  /* Hand check of case 0: math 1, format 1, overlong 0, pgrpo 0 (sequential). */
  CHECK_NEAR(serial.totals[0], 2.0, 0.0);
  pthread_t th[NTHREADS];
  job jobs[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    jobs[i] = (job){reg, {0}, 0};
    CHECK_EQ_INT(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(jobs[i].rc, 0);
    CHECK(memcmp(jobs[i].totals, serial.totals, sizeof serial.totals) == 0);
  }
  reward_registry_free(reg);
}

/* The option table (docs) and the parsers (code) agree: each function's
 * "valid:" list equals its documented keys, and every documented key with its
 * documented default (or a sample for required/computed ones) is accepted. */
TEST(option_docs_match_code) {
  int n;
  const reward_option_doc *d = reward_registry_option_docs(&n);
  CHECK(n > 20);
  const char *fns[] = {"math", "format", "overlong", "length", "pgrpo_acceleration"};
  for (int f = 0; f < 5; f++) {
    reward_option bad = {"__nope__", "1"};
    reward_spec sp = {fns[f], 1.0, &bad, 1, NULL};
    reward_registry *reg = NULL;
    grpo_error err;
    CHECK_EQ_INT(reward_registry_create(&reg, &sp, 1, &err), GRPO_EINVAL);
    const char *v = strstr(err.msg, "(valid: ");
    CHECK_MSG(v != NULL, "%s", err.msg);
    if (!v) continue;
    v += 8;
    int listed = 0, documented = 0;
    for (int i = 0; i < n; i++) {
      if (strcmp(d[i].function, fns[f]) != 0) continue;
      documented++;
      char key[64];
      snprintf(key, sizeof key, "%s", d[i].key);
      /* the key appears as a whole item of the list */
      const char *p = v;
      int found = 0;
      while ((p = strstr(p, key)) != NULL) {
        char after = p[strlen(key)];
        char before = p == v ? ' ' : p[-1];
        if ((after == ',' || after == ')') && before == ' ') found = 1;
        p++;
      }
      CHECK_MSG(found, "%s.%s documented but not accepted (%s)", fns[f], key, err.msg);
    }
    for (const char *p = v; *p && *p != ')'; p++) listed += *p == ',';
    CHECK_MSG(listed + 1 == documented, "%s: %d keys in code, %d documented", fns[f], listed + 1, documented);
  }
  for (int i = 0; i < n; i++) {
    /* The documented default, or samples for required / computed defaults. */
    const char *samples[5] = {d[i].default_value, NULL, NULL, NULL, NULL};
    const char *val = d[i].default_value;
    if (!val[0] || strchr(val, ' ') || strchr(val, '/') || strcmp(val, "target_length") == 0) {
      samples[1] = strcmp(d[i].key, "answer_regex") == 0 ? "x" : "64";
      samples[2] = "true";
      samples[3] = "0.001";
    }
    reward_option o[2] = {{d[i].key, NULL}, {"max_completion_length", "64"}};
    int no = strcmp(d[i].function, "overlong") == 0 && strcmp(d[i].key, "max_completion_length") != 0 ? 2 : 1;
    if (strcmp(d[i].function, "length") == 0 && strcmp(d[i].key, "target_length") != 0) {
      o[1].key = "target_length";
      no = 2;
    }
    int accepted = 0;
    for (int k = 0; samples[k] && !accepted; k++) {
      o[0].value = samples[k];
      reward_spec sp = {d[i].function, 1.0, o, no, NULL};
      reward_registry *reg = NULL;
      accepted = reward_registry_create(&reg, &sp, 1, NULL) == GRPO_OK;
      reward_registry_free(reg);
    }
    CHECK_MSG(accepted, "%s.%s: no documented or sample value accepted", d[i].function, d[i].key);
  }
}

int main(void) {
  RUN(option_docs_match_code);
  RUN(create_and_names);
  RUN(invalid_specs);
  RUN(weighted_total_by_hand);
  RUN(verifier_and_unscorable);
  RUN(bad_inputs);
  RUN(group_scoring);
  RUN(step_means);
  RUN(threads_share_a_registry);
  return test_summary();
}
