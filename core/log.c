#include "core/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int g_rank = 0, g_world = 1;
static int g_level = -1; /* -1: not yet read from the environment */
static FILE *g_stream;

void grpo_log_set_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}

int grpo_log_parse_level(const char *name) {
  if (!name) return -1;
  static const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcasecmp(name, names[i]) == 0) return i;
  if (strcasecmp(name, "warning") == 0) return GRPO_LOG_WARN;
  return -1;
}

void grpo_log_set_level(grpo_log_level level) { g_level = (int)level; }

grpo_log_level grpo_log_get_level(void) {
  if (g_level < 0) {
    int from_env = grpo_log_parse_level(getenv("GRPO_LOG_LEVEL"));
    g_level = from_env >= 0 ? from_env : GRPO_LOG_INFO;
  }
  return (grpo_log_level)g_level;
}

void grpo_log_set_stream(FILE *stream) { g_stream = stream; }

void grpo_log(grpo_log_level level, const char *fmt, ...) {
  if ((int)level < (int)grpo_log_get_level()) return;
  static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
  char stamp[32], line[4096];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  int n;
  if (g_world > 1)
    n = snprintf(line, sizeof line, "%s [r%d] %s ", stamp, g_rank, tags[level]);
  else
    n = snprintf(line, sizeof line, "%s %s ", stamp, tags[level]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One fputs per line so ranks sharing a terminal do not interleave mid-line. */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = '\0';
  }
  FILE *out = g_stream ? g_stream : stderr;
  fputs(line, out);
  fflush(out);
}
