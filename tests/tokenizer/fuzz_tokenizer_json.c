/* Fuzz target: the tokenizer file parsers never crash on arbitrary bytes, and
 * a tokenizer they accept encodes and decodes without crashing. Input
 * starting with 'M': the rest is a merges.txt beside a fixed vocab.json
 * (slow layout); otherwise the input is a tokenizer.json. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/tokenizer.h"

static void put(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

static char dir[64], json[96], vocab[96], merges[96];

static void cleanup(void) {
  unlink(json);
  unlink(vocab);
  unlink(merges);
  rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!dir[0]) {
    atexit(cleanup);
    snprintf(dir, sizeof dir, "/tmp/grpo_fuzz_tok_%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(json, sizeof json, "%s/t.json", dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    static const char V[] = "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120a\": 4, \"c\": 5, \"abc\": 6}";
    put(vocab, V, sizeof V - 1);
  }
  const char *path = json;
  if (size > 0 && data[0] == 'M') {
    put(merges, data + 1, size - 1);
    path = dir;
  } else {
    put(json, data, size);
  }
  model_tokenizer *tok = NULL;
  grpo_error err = {0};
  if (model_tokenizer_load(path, &tok, &err) == GRPO_OK) {
    static const char text[] = "Hello, world! 123 <|im_end|> caf\xc3\xa9 \xf0\x9f\x98\x80 \xff abc ab";
    model_ids ids = {0};
    model_text out = {0};
    if (model_tokenizer_encode(tok, text, sizeof text - 1, &ids, &err)) abort();
    if (model_tokenizer_decode(tok, ids.ids, ids.n, 1, &out, &err)) abort();
    model_ids_free(&ids);
    model_text_free(&out);
    model_tokenizer_free(tok);
  } else if (!err.msg[0]) {
    abort(); /* every failure explains itself */
  }
  return 0;
}
