/* Progress display. On a TTY: one live line redrawn in place
 *   "train  [#########-------]  45/100  1.9 step/s  ETA 00:29  reward 0.61"
 * Elsewhere (batch jobs, log files): a plain line every `plain_interval_s`
 * seconds and at the end, so job logs stay readable. */
#ifndef GRPO_CORE_PROGRESS_H
#define GRPO_CORE_PROGRESS_H

#include <stdio.h>

typedef struct grpo_progress {
  char label[32];
  char unit[16];
  long total;
  long done;
  double t_start;
  double t_last_draw;
  double plain_interval_s;  /* non-TTY print period; default 30 s */
  int is_tty;
  int enabled;              /* 0 on non-root ranks */
  FILE *out;
} grpo_progress;

/* out may be NULL (stderr). is_tty < 0 detects it from out. */
void grpo_progress_begin(grpo_progress *p, FILE *out, const char *label, const char *unit,
                         long total, int is_tty);
/* extra: short free text appended to the line (metrics), may be NULL. */
void grpo_progress_update(grpo_progress *p, long done, const char *extra);
void grpo_progress_end(grpo_progress *p, const char *extra);

/* Formats seconds as "MM:SS" or "H:MM:SS" into buf. */
void grpo_format_duration(double seconds, char *buf, size_t n);
/* Monotonic seconds. */
double grpo_now_seconds(void);

#endif
