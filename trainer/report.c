#include "trainer/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"

/* One metric's (step, value) points. */
typedef struct series {
  char name[64];
  double *x, *y;
  int n, cap;
} series;

typedef struct series_set {
  series *s;
  int n, cap;
} series_set;

static series *find_or_add(series_set *set, const char *name) {
  for (int i = 0; i < set->n; i++)
    if (strcmp(set->s[i].name, name) == 0) return &set->s[i];
  if (set->n == set->cap) {
    int cap = set->cap ? 2 * set->cap : 32;
    series *grown = realloc(set->s, sizeof *grown * (size_t)cap);
    if (!grown) return NULL;
    set->s = grown;
    set->cap = cap;
  }
  series *s = &set->s[set->n++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  return s;
}

static int add_point(series *s, double x, double y) {
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    double *nx = realloc(s->x, sizeof *nx * (size_t)cap), *ny = realloc(s->y, sizeof *ny * (size_t)cap);
    if (nx) s->x = nx;
    if (ny) s->y = ny;
    if (!nx || !ny) return 0;
    s->cap = cap;
  }
  s->x[s->n] = x;
  s->y[s->n] = y;
  s->n++;
  return 1;
}

static void free_set(series_set *set) {
  for (int i = 0; i < set->n; i++) {
    free(set->s[i].x);
    free(set->s[i].y);
  }
  free(set->s);
}

/* Charts: a title and the metric names (or a prefix ending in '/') they draw. */
typedef struct chart_def {
  const char *id, *title;
  const char *metrics[8];
  const char *xlabel;   /* NULL: "step" */
  int log2x;            /* x drawn on a log2 axis (k = 1, 2, 4, ...) */
} chart_def;

static const chart_def CHARTS[] = {
    {"reward", "Reward", {"reward", "rewards/", "reward_kept"}, NULL, 0},
    {"accuracy", "Held-out accuracy", {"eval/*/accuracy", "eval/*/pass@*", "eval/*/maj@*"}, NULL, 0},
    {"eval_tokens_step", "Held-out tokens and P-GRPO speedup",
     {"eval/*/mean_completion_tokens", "eval/*/critical_path_tokens", "eval/*/speedup"}, NULL, 0},
    {"kl_entropy", "KL and entropy", {"kl", "entropy"}, NULL, 0},
    {"clipping", "Clip ratios", {"clip_ratio/"}, NULL, 0},
    {"length", "Completion length", {"completions/mean_length", "completions/clipped_ratio"}, NULL, 0},
    {"optim", "Grad norm and learning rate", {"grad_norm", "learning_rate"}, NULL, 0},
    {"throughput", "Throughput (tokens/s)", {"rollout_tokens_per_second", "train_tokens_per_second"}, NULL, 0},
    {"latency", "P-GRPO token latency and speedup", {"pgrpo/", "latency/"}, NULL, 0},
    {"sft", "SFT loss", {"sft/loss"}, NULL, 0},
};
#define N_CHARTS (int)(sizeof CHARTS / sizeof CHARTS[0])

static int matches(const char *metric, const char *pattern) {
  if (strchr(pattern, '*')) return fnmatch(pattern, metric, 0) == 0;
  size_t n = strlen(pattern);
  if (n && pattern[n - 1] == '/') return strncmp(metric, pattern, n) == 0;
  return strcmp(metric, pattern) == 0;
}

static const char *COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static void xml_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else fputc(*s, f);
  }
}

/* Draws one chart (series normalised per chart; a second axis is not worth
 * the complexity: each line is labelled with its range instead). */
static double chart_x(const chart_def *c, double x) { return c->log2x ? log2(fmax(x, 1e-9)) : x; }

static void draw_chart(FILE *f, const chart_def *c, series **lines, int n_lines) {
  const double W = 640, H = 300, L = 60, R = 20, T = 30, B = 40;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  const char *xl = c->xlabel ? c->xlabel : "step";
  for (int i = 0; i < n_lines; i++)
    for (int k = 0; k < lines[i]->n; k++) {
      double x = chart_x(c, lines[i]->x[k]);
      x0 = fmin(x0, x), x1 = fmax(x1, x);
      y0 = fmin(y0, lines[i]->y[k]), y1 = fmax(y1, lines[i]->y[k]);
    }
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1, y0 -= 1;
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" class=\"chart\" id=\"%s\">\n",
          W, H + 20.0 * n_lines, W, H + 20.0 * n_lines, c->id);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(f, "<text x=\"%g\" y=\"20\" font-family=\"sans-serif\" font-size=\"15\" font-weight=\"bold\">", L);
  xml_escape(f, c->title);
  fprintf(f, "</text>\n");
  fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#444\"/>\n", L, H - B, W - R, H - B);
  fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#444\"/>\n", L, T, L, H - B);
  for (int t = 0; t <= 4; t++) {
    double v = y0 + (y1 - y0) * t / 4, y = (H - B) - (H - B - T) * t / 4;
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"10\" text-anchor=\"end\">%.4g</text>\n", L - 4, y + 3, v);
    fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#eee\"/>\n", L, y, W - R, y);
  }
  fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"10\">%s %.4g</text>\n", L, H - B + 14, xl,
          c->log2x ? exp2(x0) : x0);
  fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"10\" text-anchor=\"end\">%s %.4g%s</text>\n",
          W - R, H - B + 14, xl, c->log2x ? exp2(x1) : x1, c->log2x ? " (log scale)" : "");
  for (int i = 0; i < n_lines; i++) {
    const series *s = lines[i];
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" data-metric=\"%s\" points=\"",
            COLORS[i % 8], s->name);
    for (int k = 0; k < s->n; k++)
      fprintf(f, "%.1f,%.1f ", L + (W - L - R) * (chart_x(c, s->x[k]) - x0) / (x1 - x0),
              (H - B) - (H - B - T) * (s->y[k] - y0) / (y1 - y0));
    fprintf(f, "\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"11\" fill=\"%s\">", L,
            H + 14.0 * i, COLORS[i % 8]);
    xml_escape(f, s->name);
    fprintf(f, " (last %.4g)</text>\n", s->y[s->n - 1]);
  }
  fprintf(f, "</svg>\n");
}

/* Test-time-scaling curves of <run_dir>/eval/summary.json (grpo eval):
 * per set, pass@k and maj@k against k, and maj@k against the tokens it
 * costs per problem (k times the mean completion tokens). Returns 0 when
 * there is no summary. */
static const chart_def EVAL_SAMPLES = {"eval_samples", "Accuracy vs samples per problem (grpo eval)", {NULL}, "k", 1};
static const chart_def EVAL_TOKENS = {"eval_tokens", "maj@k accuracy vs tokens per problem (grpo eval)", {NULL},
                                      "tokens", 1};

static int load_eval_curves(const char *run_dir, series_set *by_k, series_set *by_tokens, grpo_error *err) {
  char path[1200];
  snprintf(path, sizeof path, "%s/eval/summary.json", run_dir);
  char *text = NULL;
  grpo_error rerr = {0};
  int rrc = grpo_read_file(path, (size_t)1 << 28, &text, NULL, &rerr);
  if (rrc == GRPO_ENOTFOUND) return 0;
  if (rrc) {
    if (err) *err = rerr;
    return -rrc;
  }
  cJSON *root = cJSON_Parse(text);
  free(text);
  const cJSON *sets = root ? cJSON_GetObjectItem(root, "sets") : NULL;
  if (!cJSON_IsObject(sets)) {
    cJSON_Delete(root);
    return -GRPO_FAIL(err, GRPO_EPARSE, "%s: not a grpo eval summary (no \"sets\" object)", path);
  }
  const cJSON *set;
  int rc = 0;
  cJSON_ArrayForEach(set, sets) {
    const cJSON *tok = cJSON_GetObjectItem(set, "mean_completion_tokens");
    double per = cJSON_IsNumber(tok) ? tok->valuedouble : 0;
    const char *kinds[2] = {"pass@k", "maj@k"};
    for (int kind = 0; kind < 2; kind++) {
      const cJSON *curve = cJSON_GetObjectItem(set, kinds[kind]), *pt;
      char name[64];
      snprintf(name, sizeof name, "%.48s %s", set->string, kinds[kind]);
      series *s = NULL, *t = NULL;
      cJSON_ArrayForEach(pt, curve) {
        if (!cJSON_IsNumber(pt) || !pt->string) continue;
        double k = atof(pt->string);
        if (!s) s = find_or_add(by_k, name);
        if (!s || !add_point(s, k, pt->valuedouble)) rc = -GRPO_FAIL(err, GRPO_ENOMEM, "report: out of memory");
        if (kind == 1 && per > 0) {
          snprintf(name, sizeof name, "%.48s maj@k", set->string);
          if (!t) t = find_or_add(by_tokens, name);
          if (!t || !add_point(t, k * per, pt->valuedouble)) rc = -GRPO_FAIL(err, GRPO_ENOMEM, "report: out of memory");
        }
      }
    }
  }
  cJSON_Delete(root);
  return rc ? rc : by_k->n > 0;
}

/* Draws a chart into the page and into charts/<id>.svg. */
static void emit_chart(FILE *html, const char *charts_dir, const chart_def *c, series **lines, int n) {
  char path[1300];
  draw_chart(html, c, lines, n);
  snprintf(path, sizeof path, "%s/%s.svg", charts_dir, c->id);
  FILE *svg = fopen(path, "w");
  if (svg) {
    fprintf(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    draw_chart(svg, c, lines, n);
    fclose(svg);
  }
}

int trainer_report(const char *run_dir, int *n_charts, grpo_error *err) {
  char path[1200];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  series_set set = {0}, by_k = {0}, by_tokens = {0};
  int rc = GRPO_OK, lineno = 0, bad = 0;
  int have_eval = load_eval_curves(run_dir, &by_k, &by_tokens, err);
  if (have_eval < 0) rc = -have_eval;
  FILE *in = rc ? NULL : fopen(path, "r");
  if (!rc && !in && have_eval <= 0)
    rc = GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: cannot open: %s (and no eval/summary.json)", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  while (in && !rc && getline(&line, &cap, in) >= 0) {
    lineno++;
    cJSON *row = cJSON_Parse(line);
    const cJSON *step = row ? cJSON_GetObjectItem(row, "step") : NULL;
    const cJSON *data = row ? cJSON_GetObjectItem(row, "data") : NULL;
    if (!cJSON_IsNumber(step) || !cJSON_IsObject(data)) {
      bad++; /* a torn last line of a live run, or foreign text: skip it */
      cJSON_Delete(row);
      continue;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, data) {
      if (!cJSON_IsNumber(v) || !v->string) continue;
      series *s = find_or_add(&set, v->string);
      if (!s || !add_point(s, step->valuedouble, v->valuedouble)) {
        rc = GRPO_FAIL(err, GRPO_ENOMEM, "report: out of memory");
        break;
      }
    }
    cJSON_Delete(row);
  }
  free(line);
  if (in) fclose(in);
  if (!rc && set.n == 0 && have_eval <= 0)
    rc = GRPO_FAIL(err, GRPO_EPARSE, "%s: no metrics to draw (%d lines, %d unreadable)", path, lineno, bad);
  char charts_dir[1200];
  snprintf(charts_dir, sizeof charts_dir, "%s/charts", run_dir);
  if (!rc && mkdir(charts_dir, 0777) && errno != EEXIST)
    rc = GRPO_FAIL(err, GRPO_EIO, "cannot create %s: %s", charts_dir, strerror(errno));
  FILE *html = NULL;
  if (!rc) {
    snprintf(path, sizeof path, "%s/report.html", run_dir);
    html = fopen(path, "w");
    if (!html) rc = GRPO_FAIL(err, GRPO_EIO, "%s: cannot write: %s", path, strerror(errno));
  }
  int drawn = 0;
  if (!rc) {
    fprintf(html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>grpo report: ");
    xml_escape(html, run_dir);
    fprintf(html, "</title>\n<style>body{font-family:sans-serif;margin:24px;background:#fafafa}"
                  "svg.chart{margin:8px;border:1px solid #ddd;vertical-align:top}</style></head><body>\n<h1>grpo run: ");
    xml_escape(html, run_dir);
    fprintf(html, "</h1>\n");
    series *lines[16];
    for (int c = 0; c < N_CHARTS; c++) {
      int n = 0;
      for (int i = 0; i < set.n && n < 16; i++)
        for (int m = 0; m < 8 && CHARTS[c].metrics[m]; m++)
          if (matches(set.s[i].name, CHARTS[c].metrics[m]) && set.s[i].n > 0) {
            lines[n++] = &set.s[i];
            break;
          }
      if (n == 0) continue;
      emit_chart(html, charts_dir, &CHARTS[c], lines, n);
      drawn++;
    }
    const series_set *curves[2] = {&by_k, &by_tokens};
    const chart_def *defs[2] = {&EVAL_SAMPLES, &EVAL_TOKENS};
    for (int c = 0; c < 2; c++) {
      int n = 0;
      for (int i = 0; i < curves[c]->n && n < 16; i++)
        if (curves[c]->s[i].n > 0) lines[n++] = &curves[c]->s[i];
      if (n == 0) continue;
      emit_chart(html, charts_dir, defs[c], lines, n);
      drawn++;
    }
    fprintf(html, "</body></html>\n");
    fclose(html);
  }
  free_set(&set);
  free_set(&by_k);
  free_set(&by_tokens);
  if (n_charts) *n_charts = drawn;
  return rc;
}
