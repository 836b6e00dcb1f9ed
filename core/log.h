/* Leveled logging to stderr: "2026-11-25 06:30:01 [r1] WARN  message".
 * The rank prefix appears once grpo_log_set_rank() was called with a world
 * size > 1. GRPO_LOG_LEVEL=debug|info|warn|error sets the threshold. */
#ifndef GRPO_CORE_LOG_H
#define GRPO_CORE_LOG_H

#include <stdio.h>

typedef enum grpo_log_level {
  GRPO_LOG_DEBUG = 0,
  GRPO_LOG_INFO = 1,
  GRPO_LOG_WARN = 2,
  GRPO_LOG_ERROR = 3,
} grpo_log_level;

void grpo_log_set_rank(int rank, int world_size);
void grpo_log_set_level(grpo_log_level level);
grpo_log_level grpo_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -1 otherwise. */
int grpo_log_parse_level(const char *name);
/* Redirects output (default stderr); used by tests. */
void grpo_log_set_stream(FILE *stream);

void grpo_log(grpo_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define GRPO_DEBUG(...) grpo_log(GRPO_LOG_DEBUG, __VA_ARGS__)
#define GRPO_INFO(...) grpo_log(GRPO_LOG_INFO, __VA_ARGS__)
#define GRPO_WARN(...) grpo_log(GRPO_LOG_WARN, __VA_ARGS__)
#define GRPO_ERROR(...) grpo_log(GRPO_LOG_ERROR, __VA_ARGS__)

#endif
