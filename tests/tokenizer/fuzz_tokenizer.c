/* Fuzz target: encode + decode never crash; for valid UTF-8 input
 * decode(encode(x)) == NFC(x) (x for the byte tokenizer, which does not
 * normalise), and the stream decoder agrees with decode. The first input
 * byte picks the tokenizer: built-in bytes, or the synthetic Qwen2-regex /
 * Llama 3-regex tokenizer.json fixtures (read relative to GRPO_SOURCE_DIR or
 * the current directory, i.e. the repository root). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "model/tokenizer.h"

static model_tokenizer *TOKS[3];

static void init(void) {
  static int done;
  if (done) return;
  done = 1;
  grpo_error err = {0};
  if (model_tokenizer_byte_level(&TOKS[0], &err)) abort();
  const char *names[2] = {"tiny_qwen2_pairs.json", "tiny_llama3_pairs.json"};
  const char *root = getenv("GRPO_SOURCE_DIR");
  for (int i = 0; i < 2; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/tokenizer/fixtures/%s", root ? root : ".", names[i]);
    if (model_tokenizer_load(path, &TOKS[1 + i], &err)) {
      fprintf(stderr, "fuzz_tokenizer: %s (run from the repository root)\n", err.msg);
      abort();
    }
  }
}

static int valid_utf8(const uint8_t *s, size_t n) {
  model_text t = {0};
  long k = model_utf8_repair(s, n, 1, &t);
  int ok = k == (long)n && t.n == n && (n == 0 || memcmp(t.s, s, n) == 0);
  model_text_free(&t);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  if (size == 0) return 0;
  int which = data[0] % 3;
  model_tokenizer *tok = TOKS[which];
  const uint8_t *s = data + 1;
  size_t n = size - 1;
  model_ids ids = {0};
  model_text out = {0}, st = {0};
  grpo_error err = {0};
  if (model_tokenizer_encode(tok, (const char *)s, n, &ids, &err)) abort();
  if (model_tokenizer_decode(tok, ids.ids, ids.n, 0, &out, &err)) abort();
  model_detok_stream ds;
  model_detok_stream_init(&ds, tok, 0);
  for (size_t i = 0; i < ids.n; i++)
    if (model_detok_stream_push(&ds, ids.ids[i], &st, &err)) abort();
  if (model_detok_stream_finish(&ds, &st, &err)) abort();
  if (st.n != out.n || (out.n && memcmp(st.s, out.s, out.n) != 0)) abort();
  if (valid_utf8(s, n)) {
    char *z = malloc(n + 1);
    memcpy(z, s, n);
    z[n] = 0;
    int has_nul = strlen(z) != n;
    if (which == 0) {
      if (out.n != n || (n && memcmp(out.s, s, n) != 0)) abort();
    } else if (!has_nul) { /* utf8proc_NFC stops at NUL */
      char *want = (char *)utf8proc_NFC((const utf8proc_uint8_t *)z);
      if (!want || strlen(want) != out.n || memcmp(want, out.s ? out.s : "", out.n) != 0) abort();
      free(want);
    }
    free(z);
  }
  model_ids_free(&ids);
  model_text_free(&out);
  model_text_free(&st);
  return 0;
}
