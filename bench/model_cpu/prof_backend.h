/* bench/model_cpu: per-op wall-clock profile of a backend (bench only). */
#ifndef GRPO_BENCH_PROF_BACKEND_H
#define GRPO_BENCH_PROF_BACKEND_H
#include "core/backend.h"

/* Returns a table that times every op of be and then calls it. */
grpo_backend *prof_wrap(grpo_backend *be);
void prof_reset(void);
void prof_enable(int on);
/* Prints the rows since the last reset, longest first. */
void prof_report(const char *title, double wall_s, double peak_gflops);
#endif
