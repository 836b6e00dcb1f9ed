/* The pure part of evaluation: estimators, answer classes, summaries. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reward/math_verify.h"
#include "trainer/eval.h"

double trainer_pass_at_k(int n, int c, int k) {
  if (n <= 0 || c <= 0) return 0.0;
  if (k > n) k = n;
  if (k <= 0) return 0.0;
  if (n - c < k) return 1.0;
  /* C(n-c, k) / C(n, k) as a product: no overflow for any n */
  double miss = 1.0;
  for (int i = n - c + 1; i <= n; i++) miss *= 1.0 - (double)k / (double)i;
  return 1.0 - miss;
}

int trainer_answer_classes(const char *const *answers, int n, int *cluster, grpo_error *err) {
  int n_classes = 0;
  int *first = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  char *boxed = NULL;
  size_t boxed_cap = 0;
  if (!first) return -GRPO_FAIL(err, GRPO_ENOMEM, "answer classes: out of memory");
  reward_math_options mo;
  reward_math_options_default(&mo);
  mo.last_number_fallback = 0; /* the text is already the answer */
  for (int i = 0; i < n; i++) {
    cluster[i] = -1;
    const char *a = answers[i];
    if (!a || !*a) continue;
    size_t need = strlen(a) + 9;
    if (need > boxed_cap) {
      char *nb = realloc(boxed, need);
      if (!nb) {
        free(first);
        free(boxed);
        return -GRPO_FAIL(err, GRPO_ENOMEM, "answer classes: out of memory");
      }
      boxed = nb;
      boxed_cap = need;
    }
    snprintf(boxed, boxed_cap, "\\boxed{%s}", a);
    for (int c = 0; c < n_classes && cluster[i] < 0; c++) {
      const char *rep = answers[first[c]];
      if (strcmp(rep, a) == 0) {
        cluster[i] = c;
        break;
      }
      reward_math_verdict v;
      int rc = reward_math_verify(rep, boxed, &mo, &v, err);
      if (rc) {
        free(first);
        free(boxed);
        return -rc;
      }
      if (v.correct) cluster[i] = c;
    }
    if (cluster[i] < 0) {
      first[n_classes] = i;
      cluster[i] = n_classes++;
    }
  }
  free(first);
  free(boxed);
  return n_classes;
}

int trainer_eval_parse_ks(const char *text, int *ks, int cap, int *n, grpo_error *err) {
  *n = 0;
  const char *p = text ? text : "";
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 1000000 || (*end && *end != ',' && *end != ' '))
      return GRPO_FAIL(err, GRPO_EINVAL, "k list \"%s\": expected positive integers separated by commas",
                       text);
    int k = (int)v, at = 0;
    while (at < *n && ks[at] < k) at++;
    if (at == *n || ks[at] != k) {
      if (*n == cap) return GRPO_FAIL(err, GRPO_EINVAL, "k list \"%s\": more than %d values", text, cap);
      memmove(ks + at + 1, ks + at, sizeof(int) * (size_t)(*n - at));
      ks[at] = k;
      (*n)++;
    }
    p = end;
  }
  return GRPO_OK;
}

/* Majority class among the samples of one problem with sample index < k
 * (recs sorted by sample): 1 when its first member is correct. */
static int majority_correct(const trainer_eval_record *r, int n, int k, int *votes, int n_classes) {
  memset(votes, 0, sizeof(int) * (size_t)n_classes);
  for (int i = 0; i < n && r[i].sample < k; i++)
    if (r[i].cluster >= 0) votes[r[i].cluster]++;
  /* strictly more votes to replace: on a tie the class seen first stays */
  int best = -1;
  for (int i = 0; i < n && r[i].sample < k; i++)
    if (r[i].cluster >= 0 && (best < 0 || votes[r[i].cluster] > votes[r[best].cluster])) best = i;
  return best >= 0 && r[best].correct;
}

static int cmp_record(const void *a, const void *b) {
  const trainer_eval_record *x = a, *y = b;
  if (x->problem != y->problem) return x->problem < y->problem ? -1 : 1;
  return x->sample < y->sample ? -1 : x->sample > y->sample;
}

int trainer_eval_summarize(const trainer_eval_record *recs, size_t n_recs, int n_problems,
                           const int *ks, int n_ks, int view, trainer_eval_stats *out,
                           grpo_error *err) {
  memset(out, 0, sizeof *out);
  out->problems = n_problems;
  out->bon_prm = -1;
  if (n_problems <= 0) return GRPO_OK;
  trainer_eval_record *r = malloc(sizeof *r * (n_recs ? n_recs : 1));
  size_t *start = calloc((size_t)n_problems + 1, sizeof *start);
  int *votes = malloc(sizeof(int) * (n_recs ? n_recs : 1));
  if (!r || !start || !votes) {
    free(r);
    free(start);
    free(votes);
    return GRPO_FAIL(err, GRPO_ENOMEM, "eval summary: out of memory");
  }
  size_t m = 0;
  for (size_t i = 0; i < n_recs; i++) {
    if (!((recs[i].views >> view) & 1u)) continue;
    if (recs[i].problem < 0 || recs[i].problem >= n_problems) {
      free(r);
      free(start);
      free(votes);
      return GRPO_FAIL(err, GRPO_EINVAL, "eval summary: record of problem %d outside 0..%d",
                       (int)recs[i].problem, n_problems - 1);
    }
    r[m++] = recs[i];
  }
  qsort(r, m, sizeof *r, cmp_record);
  for (size_t i = 0; i < m; i++) start[r[i].problem + 1]++;
  for (int p = 0; p < n_problems; p++) start[p + 1] += start[p];
  out->min_samples = -1;
  for (int p = 0; p < n_problems; p++) {
    int n = (int)(start[p + 1] - start[p]);
    if (out->min_samples < 0 || n < out->min_samples) out->min_samples = n;
    if (n > out->max_samples) out->max_samples = n;
  }
  for (int i = 0; i < n_ks && out->n_ks < TRAINER_EVAL_MAX_KS; i++)
    if (ks[i] >= 1 && ks[i] <= out->min_samples) out->ks[out->n_ks++] = ks[i];
  size_t samples = 0, answered = 0, truncated = 0;
  double tokens = 0, critical = 0, speed = 0, prm_correct = 0;
  int speed_problems = 0, have_prm = 0;
  for (int p = 0; p < n_problems; p++) {
    const trainer_eval_record *pr = r + start[p];
    int n = (int)(start[p + 1] - start[p]), c = 0, n_classes = 0;
    double sp = 0;
    int sp_n = 0, sc_best = -1, prm_best = -1;
    for (int i = 0; i < n; i++) {
      c += pr[i].correct != 0;
      answered += pr[i].cluster >= 0;
      truncated += pr[i].truncated != 0;
      tokens += pr[i].tokens;
      critical += pr[i].critical;
      if (pr[i].cluster + 1 > n_classes) n_classes = pr[i].cluster + 1;
      if (pr[i].critical > 0) {
        sp += (double)pr[i].tokens / pr[i].critical;
        sp_n++;
      }
      if (!isnan(pr[i].prm_score)) {
        have_prm = 1;
        if (prm_best < 0 || pr[i].prm_score > pr[prm_best].prm_score) prm_best = i;
      }
    }
    samples += (size_t)n;
    if (n == 0) continue;
    out->pass1 += (double)c / n;
    for (int j = 0; j < out->n_ks; j++) {
      out->pass_at_k[j] += trainer_pass_at_k(n, c, out->ks[j]);
      out->maj_at_k[j] += majority_correct(pr, n, out->ks[j], votes, n_classes);
    }
    out->bon_oracle += c > 0;
    out->maj_all += majority_correct(pr, n, INT32_MAX, votes, n_classes);
    /* self-consistency: the largest class, then the most confident sample */
    if (n_classes > 0) {
      memset(votes, 0, sizeof(int) * (size_t)n_classes);
      for (int i = 0; i < n; i++)
        if (pr[i].cluster >= 0) votes[pr[i].cluster]++;
      for (int i = 0; i < n; i++) {
        if (pr[i].cluster < 0) continue;
        if (sc_best < 0 || votes[pr[i].cluster] > votes[pr[sc_best].cluster] ||
            (votes[pr[i].cluster] == votes[pr[sc_best].cluster] && pr[i].mean_logprob > pr[sc_best].mean_logprob))
          sc_best = i;
      }
    }
    out->bon_self_consistency += sc_best >= 0 && pr[sc_best].correct;
    prm_correct += prm_best >= 0 && pr[prm_best].correct;
    if (sp_n) {
      speed += sp / sp_n;
      speed_problems++;
    }
  }
  double P = n_problems;
  out->pass1 /= P;
  for (int j = 0; j < out->n_ks; j++) {
    out->pass_at_k[j] /= P;
    out->maj_at_k[j] /= P;
  }
  out->bon_oracle /= P;
  out->maj_all /= P;
  out->bon_self_consistency /= P;
  if (have_prm) out->bon_prm = prm_correct / P;
  out->total_samples = (long)samples;
  out->total_tokens = tokens;
  if (samples) {
    out->mean_tokens = tokens / (double)samples;
    out->mean_critical = critical / (double)samples;
    out->answered = (double)answered / (double)samples;
    out->truncated = (double)truncated / (double)samples;
  }
  out->speedup = speed_problems ? speed / speed_problems : 0;
  if (out->min_samples < 0) out->min_samples = 0;
  free(r);
  free(start);
  free(votes);
  return GRPO_OK;
}

void trainer_eval_print_table(FILE *f, const char *const *names, const trainer_eval_stats *stats,
                              int n) {
  fprintf(f, "%-22s %8s %5s %4s %7s %7s %7s %7s %7s %7s %7s %8s %9s %8s %7s\n", "set", "problems", "n", "k",
          "pass@1", "pass@k", "maj@k", "maj@n", "bon_sc", "bon_prm", "any", "tok/smp", "tok/prob", "critical",
          "speedup");
  for (int i = 0; i < n; i++) {
    const trainer_eval_stats *s = &stats[i];
    int j = s->n_ks - 1;
    char prm[16] = "-";
    if (s->bon_prm >= 0) snprintf(prm, sizeof prm, "%.4f", s->bon_prm);
    fprintf(f, "%-22s %8d %5d %4d %7.4f %7.4f %7.4f %7.4f %7.4f %7s %7.4f %8.1f %9.1f %8.1f %6.2fx\n", names[i],
            s->problems, s->max_samples, j >= 0 ? s->ks[j] : 0, s->pass1, j >= 0 ? s->pass_at_k[j] : 0,
            j >= 0 ? s->maj_at_k[j] : 0, s->maj_all, s->bon_self_consistency, prm, s->bon_oracle, s->mean_tokens,
            s->problems ? s->total_tokens / s->problems : 0, s->mean_critical, s->speedup);
  }
  fputs("n: most samples of a problem; k: the largest k reported; maj@n: majority of all samples; bon_sc / bon_prm:\n"
        "best-of-n by self-consistency / PRM score; any: some sample correct (oracle best-of-n); tok/smp, tok/prob:\n"
        "completion tokens per sample and per problem; critical: critical-path tokens (speedup = tokens / critical)\n",
        f);
}

void trainer_eval_write_json(FILE *f, const trainer_eval_stats *s) {
  fprintf(f, "{\"problems\": %d, \"samples_per_problem\": %d, \"pass@1\": %.6f", s->problems, s->max_samples,
          s->pass1);
  fprintf(f, ", \"pass@k\": {");
  for (int j = 0; j < s->n_ks; j++) fprintf(f, "%s\"%d\": %.6f", j ? ", " : "", s->ks[j], s->pass_at_k[j]);
  fprintf(f, "}, \"maj@k\": {");
  for (int j = 0; j < s->n_ks; j++) fprintf(f, "%s\"%d\": %.6f", j ? ", " : "", s->ks[j], s->maj_at_k[j]);
  fprintf(f, "}, \"maj@n\": %.6f, \"best_of_n\": {\"oracle\": %.6f, \"self_consistency\": %.6f", s->maj_all,
          s->bon_oracle, s->bon_self_consistency);
  if (s->bon_prm >= 0) fprintf(f, ", \"prm\": %.6f", s->bon_prm);
  fprintf(f, "}, \"mean_completion_tokens\": %.3f, \"mean_critical_path_tokens\": %.3f, \"speedup\": %.4f",
          s->mean_tokens, s->mean_critical, s->speedup);
  fprintf(f, ", \"answered\": %.6f, \"truncated\": %.6f, \"total_samples\": %ld, \"total_tokens\": %.0f}",
          s->answered, s->truncated, s->total_samples, s->total_tokens);
}
