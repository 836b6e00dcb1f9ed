#include "trainer/metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int trainer_metrics_open(trainer_metrics *m, const char *path, const char *tb_dir, int rank,
                         grpo_error *err) {
  memset(m, 0, sizeof *m);
  if (rank != 0) return GRPO_OK;
  m->file = fopen(path, "a");
  if (!m->file) return GRPO_FAIL(err, GRPO_EIO, "%s: cannot open for writing: %s", path, strerror(errno));
  return tb_dir ? trainer_tb_open(&m->tb, tb_dir, err) : GRPO_OK;
}

void trainer_metrics_close(trainer_metrics *m) {
  if (m->file) fclose(m->file);
  m->file = NULL;
  trainer_tb_close(&m->tb);
}

void trainer_metrics_set(trainer_metrics *m, const char *name, double value) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->names[i], name) == 0) {
      m->values[i] = value;
      return;
    }
  if (m->n == TRAINER_METRICS_MAX) return;
  snprintf(m->names[m->n], sizeof m->names[0], "%s", name);
  m->values[m->n++] = value;
}

double trainer_metrics_get(const trainer_metrics *m, const char *name) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->names[i], name) == 0) return m->values[i];
  return NAN;
}

void trainer_metrics_flush(trainer_metrics *m, long step) {
  if (m->file) {
    fprintf(m->file, "{\"step\": %ld, \"data\": {", step);
    for (int i = 0; i < m->n; i++) {
      /* JSON has no NaN/Inf: write null */
      if (isfinite(m->values[i]))
        fprintf(m->file, "%s\"%s\": %.9g", i ? ", " : "", m->names[i], m->values[i]);
      else
        fprintf(m->file, "%s\"%s\": null", i ? ", " : "", m->names[i]);
    }
    fprintf(m->file, "}}\n");
    fflush(m->file);
    trainer_tb_scalars(&m->tb, step, (const char(*)[64])m->names, m->values, m->n);
  }
  m->n = 0;
}
