#include "trainer/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
} chart_def;

static const chart_def CHARTS[] = {
    {"reward", "Reward", {"reward", "rewards/", "reward_kept"}},
    {"accuracy", "Held-out accuracy", {"eval/"}},
    {"kl_entropy", "KL and entropy", {"kl", "entropy"}},
    {"clipping", "Clip ratios", {"clip_ratio/"}},
    {"length", "Completion length", {"completions/mean_length", "completions/clipped_ratio"}},
    {"optim", "Grad norm and learning rate", {"grad_norm", "learning_rate"}},
    {"throughput", "Throughput (tokens/s)", {"rollout_tokens_per_second", "train_tokens_per_second"}},
    {"latency", "P-GRPO token latency and speedup", {"pgrpo/", "latency/"}},
    {"sft", "SFT loss", {"sft/loss"}},
};
#define N_CHARTS (int)(sizeof CHARTS / sizeof CHARTS[0])

static int matches(const char *metric, const char *pattern) {
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
static void draw_chart(FILE *f, const chart_def *c, series **lines, int n_lines) {
  const double W = 640, H = 300, L = 60, R = 20, T = 30, B = 40;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int i = 0; i < n_lines; i++)
    for (int k = 0; k < lines[i]->n; k++) {
      x0 = fmin(x0, lines[i]->x[k]), x1 = fmax(x1, lines[i]->x[k]);
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
  fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"10\">step %.0f</text>\n", L, H - B + 14, x0);
  fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"10\" text-anchor=\"end\">step %.0f</text>\n", W - R, H - B + 14, x1);
  for (int i = 0; i < n_lines; i++) {
    const series *s = lines[i];
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" data-metric=\"%s\" points=\"",
            COLORS[i % 8], s->name);
    for (int k = 0; k < s->n; k++)
      fprintf(f, "%.1f,%.1f ", L + (W - L - R) * (s->x[k] - x0) / (x1 - x0),
              (H - B) - (H - B - T) * (s->y[k] - y0) / (y1 - y0));
    fprintf(f, "\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-family=\"sans-serif\" font-size=\"11\" fill=\"%s\">", L,
            H + 14.0 * i, COLORS[i % 8]);
    xml_escape(f, s->name);
    fprintf(f, " (last %.4g)</text>\n", s->y[s->n - 1]);
  }
  fprintf(f, "</svg>\n");
}

int trainer_report(const char *run_dir, int *n_charts, grpo_error *err) {
  char path[1200];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  FILE *in = fopen(path, "r");
  if (!in) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
  series_set set = {0};
  char *line = NULL;
  size_t cap = 0;
  int lineno = 0, rc = GRPO_OK, bad = 0;
  while (getline(&line, &cap, in) >= 0) {
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
    if (rc) break;
  }
  free(line);
  fclose(in);
  if (!rc && set.n == 0)
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
      draw_chart(html, &CHARTS[c], lines, n);
      snprintf(path, sizeof path, "%s/%s.svg", charts_dir, CHARTS[c].id);
      FILE *svg = fopen(path, "w");
      if (svg) {
        fprintf(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        draw_chart(svg, &CHARTS[c], lines, n);
        fclose(svg);
      }
      drawn++;
    }
    fprintf(html, "</body></html>\n");
    fclose(html);
  }
  free_set(&set);
  if (n_charts) *n_charts = drawn;
  return rc;
}
