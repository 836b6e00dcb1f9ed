/* `grpo report RUN_DIR`: a self-contained HTML page (inline SVG, no scripts,
 * no network) with charts of a run's metrics.jsonl, plus one SVG file per
 * chart in RUN_DIR/charts/ for papers and chat. */
#ifndef GRPO_TRAINER_REPORT_H
#define GRPO_TRAINER_REPORT_H

#include "core/error.h"

/* Writes RUN_DIR/report.html and RUN_DIR/charts/<chart>.svg. Returns the
 * number of charts drawn through *n_charts (may be NULL). */
int trainer_report(const char *run_dir, int *n_charts, grpo_error *err);

#endif
