/* Fuzz target: the YAML config loader and the resolved-YAML round trip.
 * Any input either fails with a message or loads; a loaded config must
 * write out and load back to an equal config. Inputs holding '=' on the
 * first line are also tried as a command-line override. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  grpo_config cfg, back;
  grpo_error err;
  if (grpo_config_init(&cfg, &err) != GRPO_OK) return 0;
  int rc = grpo_config_merge_string(&cfg, (const char *)data, size, "fuzz", &err);
  if (rc == GRPO_OK) rc = grpo_config_finalize(&cfg, &err);
  if (rc == GRPO_OK) {
    char *text = NULL;
    size_t len = 0;
    if (grpo_config_to_yaml(&cfg, &text, &len, &err) != GRPO_OK) abort();
    if (grpo_config_init(&back, &err) != GRPO_OK) abort();
    if (grpo_config_merge_string(&back, text, len, "resolved", &err) != GRPO_OK) abort();
    if (grpo_config_finalize(&back, &err) != GRPO_OK) abort();
    if (!grpo_config_equal(&cfg, &back)) abort();
    grpo_config_free(&back);
    free(text);
  }
  grpo_config_free(&cfg);

  /* The first line as an override. */
  size_t n = 0;
  while (n < size && n < 4096 && data[n] != '\n') n++;
  char *arg = malloc(n + 1);
  if (!arg) return 0;
  memcpy(arg, data, n);
  arg[n] = '\0';
  if (strchr(arg, '=') && grpo_config_init(&cfg, &err) == GRPO_OK) {
    if (grpo_config_apply_override(&cfg, arg, &err) == GRPO_OK &&
        grpo_config_finalize(&cfg, &err) == GRPO_OK) {
      char *text = NULL;
      size_t len = 0;
      if (grpo_config_to_yaml(&cfg, &text, &len, &err) != GRPO_OK) abort();
      if (grpo_config_init(&back, &err) != GRPO_OK) abort();
      if (grpo_config_merge_string(&back, text, len, "resolved", &err) != GRPO_OK) abort();
      if (grpo_config_finalize(&back, &err) != GRPO_OK) abort();
      if (!grpo_config_equal(&cfg, &back)) abort();
      grpo_config_free(&back);
      free(text);
    }
    grpo_config_free(&cfg);
  }
  free(arg);
  return 0;
}
