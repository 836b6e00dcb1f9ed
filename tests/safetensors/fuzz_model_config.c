/* libFuzzer target: config.json parsing (untrusted input). An accepted config
 * must survive to_json -> parse unchanged in its sizes, and lay out a table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_config.h"
#include "model/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  model_config c, d;
  grpo_error err;
  if (model_config_parse(&c, (const char *)data, size, "fuzz.json", &err) != GRPO_OK) return 0;
  char *json = model_config_to_json(&c);
  if (!json) return 0;
  if (model_config_parse(&d, json, strlen(json), "round trip", &err) != GRPO_OK) abort();
  if (d.hidden != c.hidden || d.n_layers != c.n_layers || d.n_heads != c.n_heads ||
      d.n_kv_heads != c.n_kv_heads || d.head_dim != c.head_dim || d.vocab != c.vocab ||
      d.tie_embeddings != c.tie_embeddings || d.rope_type != c.rope_type || d.n_eos != c.n_eos)
    abort();
  free(json);
  if (c.n_layers <= 64) {
    model_params p;
    if (model_params_layout(&p, &c, &err) == GRPO_OK) {
      size_t sum = 0;
      for (int i = 0; i < p.n; i++) sum += p.info[i].numel;
      if (sum != model_config_num_params(&c)) abort();
      model_params_free(&p);
    }
  }
  return 0;
}
