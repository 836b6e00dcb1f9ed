/* libFuzzer target: the safetensors header parser (untrusted input). The input
 * is a whole file (u64 length + JSON header + data); it is also fed as a bare
 * header against a 4 KiB data buffer. Accepted headers must satisfy the
 * tiling invariant, else the target aborts. */
#include <stdint.h>
#include <stdlib.h>

#include "checkpoints/safetensors.h"

static void check_tiling(const ckpt_st_header *h, uint64_t data_size) {
  uint64_t cursor = 0;
  for (int i = 0; i < h->n; i++) {
    const ckpt_st_tensor *t = &h->tensors[i];
    if (t->begin != cursor || t->end < t->begin ||
        t->end - t->begin != t->numel * ckpt_st_dtype_size(t->dtype))
      abort();
    cursor = t->end;
  }
  if (cursor != data_size) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ckpt_st_header h;
  grpo_error err;
  if (ckpt_st_parse_buffer(data, size, "fuzz.safetensors", &h, &err) == GRPO_OK) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | data[i];
    check_tiling(&h, size - 8 - n);
    ckpt_st_header_free(&h);
  }
  if (ckpt_st_parse_header((const char *)data, size, 4096, "fuzz.json", &h, &err) == GRPO_OK) {
    check_tiling(&h, 4096);
    ckpt_st_header_free(&h);
  }
  return 0;
}
