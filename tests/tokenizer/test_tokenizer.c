/* Tokenizer against HF: fixtures from tools/make_tokenizer_fixtures.py.
 * The real Qwen2 files and the corpus texts are read from ../shared; without
 * it those cases are skipped (exit 77 when nothing else ran). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "model/tokenizer.h"
#include "test.h"

#define FIX "tests/tokenizer/fixtures/"

static model_tokenizer *QWEN; /* NULL when ../shared is absent */

static int have_shared(void) {
  struct stat st;
  return stat(test_path("../shared/tokenizers/qwen2/vocab.json"), &st) == 0;
}

static uint64_t fnv_step(uint64_t h, int32_t id) {
  for (int k = 0; k < 4; k++) {
    h ^= (uint8_t)((uint32_t)id >> (8 * k));
    h *= 0x100000001B3ull;
  }
  return h;
}

static size_t unhex(const char *s, unsigned char *out) {
  if (strcmp(s, "-") == 0) return 0;
  size_t n = 0;
  for (; s[0] && s[1]; s += 2) {
    unsigned v;
    sscanf(s, "%2x", &v);
    out[n++] = (unsigned char)v;
  }
  return n;
}

static size_t parse_ids(char *s, int32_t *out, size_t max) {
  size_t n = 0;
  if (strcmp(s, "-") == 0) return 0;
  for (char *tok = strtok(s, " "); tok && n < max; tok = strtok(NULL, " ")) out[n++] = (int32_t)atol(tok);
  return n;
}

static char *nfc_of(const char *s) { return (char *)utf8proc_NFC((const utf8proc_uint8_t *)s); }

/* ---- hand-computed behaviour ------------------------------------------------ */

TEST(utf8_repair_like_python) {
  /* expected values are bytes.decode('utf-8', 'replace') */
  struct { const char *in; size_t n; const char *out; } cases[] = {
      {"\xff", 1, "\xEF\xBF\xBD"},
      {"abc\xc3", 4, "abc\xEF\xBF\xBD"},
      {"\xe2\x82", 2, "\xEF\xBF\xBD"},                           /* one maximal subpart */
      {"\xed\xa0\x80x", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx"}, /* surrogate: 3 */
      {"\xf0\x9f\x98 ok", 6, "\xEF\xBF\xBD ok"},
      {"\xc0\xaf", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xe2\x28\xa1", 3, "\xEF\xBF\xBD(\xEF\xBF\xBD"},
      {"\xe2\x82\xac", 3, "\xe2\x82\xac"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    model_text t = {0};
    CHECK(model_utf8_repair((const unsigned char *)cases[i].in, cases[i].n, 1, &t) == (long)cases[i].n);
    CHECK_STR(t.s, cases[i].out);
    model_text_free(&t);
  }
  model_text t = {0}; /* not final: the incomplete tail is held back */
  CHECK(model_utf8_repair((const unsigned char *)"a\xe2\x82", 3, 0, &t) == 1);
  CHECK_STR(t.s, "a");
  model_text_free(&t);
}

TEST(byte_level_tokenizer) {
  model_tokenizer *t;
  grpo_error err = {0};
  CHECK(model_tokenizer_byte_level(&t, &err) == GRPO_OK);
  CHECK_EQ_INT(model_tokenizer_n_ids(t), 261);
  model_ids ids = {0};
  const char *s = "a<|im_end|>\xc3\xa9<think></think><|im_start";
  CHECK(model_tokenizer_encode(t, s, strlen(s), &ids, &err) == GRPO_OK);
  int32_t want[] = {97, 258, 0xc3, 0xa9, 259, 260, '<', '|', 'i', 'm', '_', 's', 't', 'a', 'r', 't'};
  CHECK_EQ_INT(ids.n, 16);
  for (size_t i = 0; i < 16 && i < ids.n; i++) CHECK_EQ_INT(ids.ids[i], want[i]);
  model_text out = {0};
  CHECK(model_tokenizer_decode(t, ids.ids, ids.n, 0, &out, &err) == GRPO_OK);
  CHECK_STR(out.s, s);
  model_text_free(&out);
  CHECK(model_tokenizer_decode(t, ids.ids, ids.n, 1, &out, &err) == GRPO_OK); /* <think> is not special */
  CHECK_STR(out.s, "a\xc3\xa9<think></think><|im_start");
  model_text_free(&out);
  CHECK(model_tokenizer_is_special(t, 258) && !model_tokenizer_is_special(t, 259));
  CHECK_EQ_INT(model_tokenizer_eos_id(t), 258);
  CHECK_EQ_INT(model_tokenizer_find(t, "<|endoftext|>"), 256);
  CHECK_EQ_INT(model_tokenizer_find(t, "A"), 65);
  int32_t bad = 261;
  CHECK(model_tokenizer_decode(t, &bad, 1, 0, &out, &err) == GRPO_EINVAL);
  CHECK(strstr(err.msg, "261") != NULL);
  model_text_free(&out);
  model_ids_free(&ids);
  model_tokenizer_free(t);
}

TEST(stream_decoder_holds_incomplete_utf8) {
  model_tokenizer *t;
  grpo_error err = {0};
  CHECK(model_tokenizer_byte_level(&t, &err) == GRPO_OK);
  /* "€" split over three tokens, then an invalid run, then a truncated tail */
  int32_t ids[] = {0xE2, 0x82, 0xAC, 'x', 0xE2, 0x82, 'y', 0xF0, 0x9F};
  model_detok_stream st;
  model_detok_stream_init(&st, t, 0);
  model_text out = {0};
  size_t after[9];
  for (int i = 0; i < 9; i++) {
    CHECK(model_detok_stream_push(&st, ids[i], &out, &err) == GRPO_OK);
    after[i] = out.n;
  }
  CHECK_EQ_INT(after[0], 0);
  CHECK_EQ_INT(after[1], 0);
  CHECK_EQ_INT(after[2], 3);
  CHECK(model_detok_stream_finish(&st, &out, &err) == GRPO_OK);
  model_text full = {0};
  CHECK(model_tokenizer_decode(t, ids, 9, 0, &full, &err) == GRPO_OK);
  CHECK_STR(out.s, "\xe2\x82\xacx\xEF\xBF\xBDy\xEF\xBF\xBD");
  CHECK_STR(full.s, out.s);
  model_text_free(&out);
  model_text_free(&full);
  model_tokenizer_free(t);
}

/* ---- error messages name the file ------------------------------------------- */

static void write_file(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fputs(s, f);
  fclose(f);
}

static void expect_load_error(const char *path, int code, const char *needle) {
  model_tokenizer *t = NULL;
  grpo_error err = {0};
  int rc = model_tokenizer_load(path, &t, &err);
  CHECK_MSG(rc == code, "%s: rc %d (%s), want %d", path, rc, err.msg, code);
  CHECK_MSG(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
  CHECK(t == NULL);
}

TEST(bad_files_are_reported) {
  char dir[] = "/tmp/grpo_tok_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0);
    return;
  }
  char p[512], q[512];
  snprintf(p, sizeof p, "%s/tokenizer.json", dir);
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, ");
  expect_load_error(p, GRPO_EPARSE, "tokenizer.json:1: invalid JSON");
  write_file(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
  expect_load_error(dir, GRPO_EUNSUPPORTED, "WordPiece");
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]},"
                " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"}}");
  expect_load_error(p, GRPO_EFORMAT, "merge 0 (\"a\" \"b\"): the merged token is not in the vocabulary");
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}");
  expect_load_error(p, GRPO_EFORMAT, "model.vocab[\"a\"]");
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}");
  expect_load_error(p, GRPO_EFORMAT, "model.merges[0]");
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                "\"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]},"
                " \"decoder\": {\"type\": \"ByteLevel\"}}");
  expect_load_error(p, GRPO_EFORMAT, "regex does not compile");
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                " \"added_tokens\": [{\"id\": 1, \"content\": \"<x>\", \"lstrip\": true}],"
                " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"}}");
  expect_load_error(p, GRPO_EUNSUPPORTED, "added_tokens[0]");
  /* A repeated merge takes its last rank: HF tokenizers encodes "abc" as [3, 2]. */
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4},"
                " \"merges\": [\"b c\", \"a b\", \"b c\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true},"
                " \"decoder\": {\"type\": \"ByteLevel\"}}");
  {
    model_tokenizer *t = NULL;
    grpo_error err = {0};
    CHECK(model_tokenizer_load(p, &t, &err) == GRPO_OK);
    model_ids ids = {0};
    if (t) CHECK(model_tokenizer_encode(t, "abc", 3, &ids, &err) == GRPO_OK);
    CHECK(ids.n == 2 && ids.ids[0] == 3 && ids.ids[1] == 2);
    model_ids_free(&ids);
    model_tokenizer_free(t);
  }
  /* Added tokens: leftmost-longest match, "<a>b" wins over its prefix "<a>". */
  write_file(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"x\": 0, \"c\": 1}, \"merges\": []},"
                " \"added_tokens\": [{\"id\": 2, \"content\": \"<a>\", \"special\": true},"
                " {\"id\": 3, \"content\": \"<a>b\", \"special\": false}],"
                " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"}}");
  {
    model_tokenizer *t = NULL;
    grpo_error err = {0};
    CHECK(model_tokenizer_load(p, &t, &err) == GRPO_OK);
    model_ids ids = {0};
    if (t) CHECK(model_tokenizer_encode(t, "x<a>bc<a>x", 10, &ids, &err) == GRPO_OK);
    CHECK(ids.n == 5 && ids.ids[0] == 0 && ids.ids[1] == 3 && ids.ids[2] == 1 && ids.ids[3] == 2 && ids.ids[4] == 0);
    model_text out = {0};
    if (t) CHECK(model_tokenizer_decode(t, ids.ids, ids.n, 1, &out, &err) == GRPO_OK);
    CHECK_STR(out.s, "x<a>bcx"); /* only the special <a> is skipped */
    model_text_free(&out);
    model_ids_free(&ids);
    model_tokenizer_free(t);
  }
  unlink(p);
  /* slow layout */
  snprintf(p, sizeof p, "%s/vocab.json", dir);
  snprintf(q, sizeof q, "%s/merges.txt", dir);
  write_file(p, "{\"a\": 0, \"b\": 1, \"ab\": 2}");
  write_file(q, "#version: 0.2\r\na b\r\na c\r\n");
  expect_load_error(dir, GRPO_EFORMAT, "merges.txt: merge 1");
  write_file(q, "#version: 0.2\na b c\n");
  expect_load_error(dir, GRPO_EFORMAT, "merges.txt:2:");
  unlink(q);
  expect_load_error(dir, GRPO_ENOTFOUND, "merges.txt: cannot open");
  write_file(q, "a b\r\n\r\n"); /* no header, CRLF, trailing empty line */
  model_tokenizer *t = NULL;
  grpo_error err = {0};
  CHECK(model_tokenizer_load(dir, &t, &err) == GRPO_OK);
  if (t) {
    model_ids ids = {0};
    CHECK(model_tokenizer_encode(t, "ab", 2, &ids, &err) == GRPO_OK);
    CHECK(ids.n == 1 && ids.ids[0] == 2);
    model_ids_free(&ids);
    model_tokenizer_free(t);
  }
  unlink(p);
  unlink(q);
  rmdir(dir);
  expect_load_error(dir, GRPO_ENOTFOUND, dir);
}

/* ---- synthetic tokenizer.json files (both merge formats, Llama 3 regex) ------ */

TEST(tiny_tokenizers_match_hf) {
  FILE *f = fopen(test_path(FIX "tiny_cases.txt"), "r");
  CHECK(f != NULL);
  if (!f) return;
  static char line[1 << 16];
  static unsigned char raw[1 << 15];
  static int32_t want[1 << 14];
  enum { MAX_TOKS = 8 };
  char names[MAX_TOKS][128];
  model_tokenizer *toks[MAX_TOKS] = {0};
  int n_toks = 0, ncases = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    line[strcspn(line, "\n")] = 0;
    char *files = strtok(line, "\t"), *hex = strtok(NULL, "\t"), *ids_s = strtok(NULL, "\t");
    if (!files || !hex || !ids_s) continue;
    size_t n = unhex(hex, raw);
    size_t nw = parse_ids(ids_s, want, 1 << 14);
    char *save = NULL;
    for (char *name = strtok_r(files, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
      int k = 0;
      while (k < n_toks && strcmp(names[k], name) != 0) k++;
      if (k == n_toks) {
        if (n_toks == MAX_TOKS) break;
        snprintf(names[k], sizeof names[k], "%s", name);
        char path[512];
        snprintf(path, sizeof path, FIX "%s", name);
        grpo_error err = {0};
        CHECK_MSG(model_tokenizer_load(test_path(path), &toks[k], &err) == GRPO_OK, "%s", err.msg);
        n_toks++;
      }
      if (!toks[k]) continue;
      model_ids got = {0};
      grpo_error err = {0};
      CHECK(model_tokenizer_encode(toks[k], (const char *)raw, n, &got, &err) == GRPO_OK);
      int same = got.n == nw;
      for (size_t i = 0; same && i < nw; i++) same = got.ids[i] == want[i];
      if (!same && bad++ < 5) {
        size_t i = 0;
        while (i < nw && i < got.n && got.ids[i] == want[i]) i++;
        fprintf(stderr, "%s case %d: ids differ at %zu (got %zu ids, want %zu)\n", name, ncases, i, got.n, nw);
      }
      CHECK(same);
      model_ids_free(&got);
      ncases++;
    }
  }
  fclose(f);
  for (int k = 0; k < n_toks; k++) model_tokenizer_free(toks[k]);
  CHECK_EQ_INT(n_toks, 5); /* qwen2 pairs/strings/slow, llama3, gpt2 */
  CHECK(ncases > 300);
}

TEST(fingerprint_identifies_the_model) {
  const char *names[4] = {FIX "tiny_qwen2_pairs.json", FIX "tiny_qwen2_strings.json", FIX "tiny_slow",
                          FIX "tiny_llama3_pairs.json"};
  uint64_t fp[5] = {0};
  for (int i = 0; i < 4; i++) {
    model_tokenizer *t = NULL;
    grpo_error err = {0};
    CHECK_MSG(model_tokenizer_load(test_path(names[i]), &t, &err) == GRPO_OK, "%s", err.msg);
    if (t) fp[i] = model_tokenizer_fingerprint(t);
    model_tokenizer_free(t);
  }
  model_tokenizer *b = NULL;
  grpo_error err = {0};
  CHECK(model_tokenizer_byte_level(&b, &err) == GRPO_OK);
  fp[4] = model_tokenizer_fingerprint(b);
  model_tokenizer_free(b);
  CHECK(fp[0] == fp[1] && fp[1] == fp[2]); /* same model, three file layouts */
  CHECK(fp[3] != fp[0] && fp[4] != fp[0] && fp[4] != fp[3]);
}

/* ---- real Qwen2 files ------------------------------------------------------ */

TEST(qwen2_hard_strings) {
  FILE *f = fopen(test_path(FIX "qwen2_hard.txt"), "r");
  CHECK(f != NULL);
  if (!f) return;
  static char line[1 << 16];
  static unsigned char raw[1 << 15], dec[1 << 15];
  static int32_t want[1 << 14];
  int ncases = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    line[strcspn(line, "\n")] = 0;
    char *hex = strtok(line, "\t"), *ids_s = strtok(NULL, "\t"), *dhex = strtok(NULL, "\t");
    if (!hex || !ids_s || !dhex) continue;
    size_t n = unhex(hex, raw), nd = unhex(dhex, dec);
    size_t nw = parse_ids(ids_s, want, 1 << 14);
    model_ids got = {0};
    grpo_error err = {0};
    CHECK(model_tokenizer_encode(QWEN, (const char *)raw, n, &got, &err) == GRPO_OK);
    int same = got.n == nw;
    for (size_t i = 0; same && i < nw; i++) same = got.ids[i] == want[i];
    if (!same) {
      size_t i = 0;
      while (i < nw && i < got.n && got.ids[i] == want[i]) i++;
      fprintf(stderr, "hard string %d (%s): ids differ at position %zu: got %d, want %d\n", ncases, hex, i,
              i < got.n ? got.ids[i] : -1, i < nw ? want[i] : -1);
    }
    CHECK(same);
    model_text out = {0};
    CHECK(model_tokenizer_decode(QWEN, want, nw, 0, &out, &err) == GRPO_OK);
    CHECK_MSG(out.n == nd && memcmp(out.s ? out.s : "", dec, nd) == 0, "hard string %d: decode differs", ncases);
    /* streaming gives the same text */
    model_detok_stream st;
    model_detok_stream_init(&st, QWEN, 0);
    model_text s2 = {0};
    for (size_t i = 0; i < nw; i++) CHECK(model_detok_stream_push(&st, want[i], &s2, &err) == GRPO_OK);
    CHECK(model_detok_stream_finish(&st, &s2, &err) == GRPO_OK);
    CHECK(s2.n == out.n && (out.n == 0 || memcmp(s2.s, out.s, out.n) == 0));
    model_text_free(&s2);
    model_text_free(&out);
    model_ids_free(&got);
    ncases++;
  }
  fclose(f);
  CHECK(ncases > 80);
}

TEST(qwen2_special_and_stream) {
  CHECK_EQ_INT(model_tokenizer_n_ids(QWEN), 151646);
  CHECK_EQ_INT(model_tokenizer_find(QWEN, "<|im_end|>"), 151645);
  CHECK_EQ_INT(model_tokenizer_eos_id(QWEN), 151645);
  CHECK_EQ_INT(model_tokenizer_pad_id(QWEN), 151643);
  CHECK(model_tokenizer_is_special(QWEN, 151644));
  CHECK_EQ_INT(model_tokenizer_find(QWEN, "!"), 0);
  CHECK(model_tokenizer_chat_template(QWEN) != NULL);
  /* "😀" is 4 byte-tokens or fewer; stream each id and check held-back text */
  const char *s = "\xF0\x9F\x98\x80\xE4\xBD\xA0<|im_end|>";
  model_ids ids = {0};
  grpo_error err = {0};
  CHECK(model_tokenizer_encode(QWEN, s, strlen(s), &ids, &err) == GRPO_OK);
  model_detok_stream st;
  model_detok_stream_init(&st, QWEN, 1);
  model_text out = {0};
  for (size_t i = 0; i < ids.n; i++) {
    CHECK(model_detok_stream_push(&st, ids.ids[i], &out, &err) == GRPO_OK);
    CHECK(out.n == 0 || out.n == 4 || out.n == 7); /* never a partial character */
  }
  CHECK(model_detok_stream_finish(&st, &out, &err) == GRPO_OK);
  CHECK_STR(out.s, "\xF0\x9F\x98\x80\xE4\xBD\xA0");
  model_text_free(&out);
  model_ids_free(&ids);
}

/* Every question/answer of GSM8K test and MATH-500: ids hash like HF's, and
 * decode(encode(x)) == NFC(x). */
TEST(qwen2_corpus) {
  FILE *fx = fopen(test_path(FIX "qwen2_corpus.txt"), "r");
  CHECK(fx != NULL);
  if (!fx) return;
  const char *files[2] = {"../shared/data/gsm8k/test.jsonl", "../shared/data/math500/test.jsonl"};
  const char *fields[2][2] = {{"question", "answer"}, {"problem", "solution"}};
  static char line[1 << 20], fl[1 << 16];
  FILE *cur = NULL;
  int cur_file = -1, cur_line = -1, nt = 0, bad = 0;
  cJSON *row = NULL;
  model_ids ids = {0};
  model_text out = {0};
  while (fgets(fl, sizeof fl, fx)) {
    if (fl[0] == '#') continue;
    int fi, ln, field;
    size_t count;
    unsigned long long hash;
    int off = 0;
    if (sscanf(fl, "%d %d %d %zu %llx%n", &fi, &ln, &field, &count, &hash, &off) != 5) continue;
    if (fi != cur_file) {
      if (cur) fclose(cur);
      cur = fopen(test_path(files[fi]), "r");
      CHECK_MSG(cur != NULL, "%s", files[fi]);
      if (!cur) break;
      cur_file = fi;
      cur_line = -1;
    }
    while (cur_line < ln && fgets(line, sizeof line, cur)) {
      cur_line++;
      if (cur_line == ln) {
        cJSON_Delete(row);
        row = cJSON_Parse(line);
      }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, fields[fi][field]);
    CHECK(cJSON_IsString(v));
    if (!cJSON_IsString(v)) break;
    const char *text = v->valuestring;
    ids.n = 0;
    grpo_error err = {0};
    CHECK(model_tokenizer_encode(QWEN, text, strlen(text), &ids, &err) == GRPO_OK);
    uint64_t h = 0xCBF29CE484222325ull;
    size_t first_bad_block = (size_t)-1;
    const char *marks = fl + off;
    for (size_t i = 0; i < ids.n; i++) {
      h = fnv_step(h, ids.ids[i]);
      if ((i + 1) % 128 == 0 && first_bad_block == (size_t)-1) {
        unsigned m = 0;
        int used = 0;
        if (sscanf(marks, " %x%n", &m, &used) == 1) marks += used;
        if ((uint32_t)h != m) first_bad_block = i / 128;
      }
    }
    if (ids.n != count || h != hash) {
      if (bad++ < 10) {
        if (first_bad_block == (size_t)-1) first_bad_block = ids.n / 128;
        fprintf(stderr, "corpus text %d (%s line %d %s): got %zu ids, want %zu; first difference in ids [%zu, %zu)\n",
                nt, files[fi], ln + 1, fields[fi][field], ids.n, count, first_bad_block * 128,
                first_bad_block * 128 + 128);
      }
    }
    out.n = 0;
    CHECK(model_tokenizer_decode(QWEN, ids.ids, ids.n, 0, &out, &err) == GRPO_OK);
    char *want = nfc_of(text);
    if (!out.s || strcmp(out.s, want) != 0) {
      if (bad++ < 10) fprintf(stderr, "corpus text %d: decode(encode(x)) != NFC(x)\n", nt);
    }
    free(want);
    nt++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(nt, 2 * 1319 + 2 * 500);
  if (cur) fclose(cur);
  fclose(fx);
  cJSON_Delete(row);
  model_ids_free(&ids);
  model_text_free(&out);
}

/* No argument: the self-contained cases. "qwen2": the cases that need
 * ../shared (exit 77, "skipped", when it is absent). */
int main(int argc, char **argv) {
  if (argc < 2) {
    RUN(utf8_repair_like_python);
    RUN(byte_level_tokenizer);
    RUN(stream_decoder_holds_incomplete_utf8);
    RUN(bad_files_are_reported);
    RUN(tiny_tokenizers_match_hf);
    RUN(fingerprint_identifies_the_model);
    return test_summary();
  }
  if (!have_shared()) {
    fprintf(stderr, "skipped: ../shared/tokenizers/qwen2 not found beside the checkout\n");
    return 77;
  }
  grpo_error err = {0};
  if (model_tokenizer_load(test_path("../shared/tokenizers/qwen2"), &QWEN, &err) != GRPO_OK) {
    fprintf(stderr, "loading Qwen2: %s\n", err.msg);
    return 1;
  }
  RUN(qwen2_special_and_stream);
  RUN(qwen2_hard_strings);
  RUN(qwen2_corpus);
  model_tokenizer_free(QWEN);
  return test_summary();
}
