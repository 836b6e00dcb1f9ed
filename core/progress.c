#include "core/progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double grpo_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void grpo_format_duration(double seconds, char *buf, size_t n) {
  if (!(seconds >= 0) || seconds > 360000000.0) {
    snprintf(buf, n, "--:--");
    return;
  }
  long s = (long)(seconds + 0.5);
  if (s >= 3600)
    snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    snprintf(buf, n, "%02ld:%02ld", s / 60, s % 60);
}

void grpo_progress_begin(grpo_progress *p, FILE *out, const char *label, const char *unit,
                         long total, int is_tty) {
  memset(p, 0, sizeof *p);
  p->out = out ? out : stderr;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "it");
  p->total = total;
  p->is_tty = is_tty >= 0 ? is_tty : isatty(fileno(p->out));
  p->plain_interval_s = 30.0;
  p->enabled = 1;
  p->t_start = grpo_now_seconds();
  p->t_last_draw = p->t_start;
}

static void draw(grpo_progress *p, const char *extra, int final) {
  double now = grpo_now_seconds();
  double elapsed = now - p->t_start;
  double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
  char eta[32], spent[32];
  grpo_format_duration(rate > 0 && p->total > 0 ? (double)(p->total - p->done) / rate : -1.0,
                       eta, sizeof eta);
  grpo_format_duration(elapsed, spent, sizeof spent);
  char bar[24] = "";
  if (p->total > 0) {
    int width = 20, filled = (int)((double)width * (double)p->done / (double)p->total);
    if (filled > width) filled = width;
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '-';
    bar[width] = '\0';
  }
  char line[512];
  int n = snprintf(line, sizeof line, "%-6s [%s] %ld/%ld  %.2f %s/s  %s %s", p->label, bar,
                   p->done, p->total, rate, p->unit, final ? "took" : "ETA",
                   final ? spent : eta);
  if (extra && *extra && n > 0 && (size_t)n < sizeof line)
    snprintf(line + n, sizeof line - (size_t)n, "  %s", extra);
  if (p->is_tty)
    fprintf(p->out, "\r\033[K%s%s", line, final ? "\n" : "");
  else
    fprintf(p->out, "%s\n", line);
  fflush(p->out);
  p->t_last_draw = now;
}

void grpo_progress_update(grpo_progress *p, long done, const char *extra) {
  p->done = done;
  if (!p->enabled) return;
  double since = grpo_now_seconds() - p->t_last_draw;
  double period = p->is_tty ? 0.1 : p->plain_interval_s;
  if (since >= period) draw(p, extra, 0);
}

void grpo_progress_end(grpo_progress *p, const char *extra) {
  if (p->enabled) draw(p, extra, 1);
}
