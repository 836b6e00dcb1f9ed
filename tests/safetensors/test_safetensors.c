/* safetensors reader and writer: files written by the Python safetensors /
 * transformers libraries (tests/safetensors/data, tests/fixtures/models),
 * every malformed-header rule, and byte-exact writing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"
#include "test.h"

static char tmpdir[256];

static void make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/grpo_st_XXXXXX", base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(1);
  }
}

static void rm_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static void spit(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

/* A file in memory: 8-byte length + header + `data_len` zero bytes. */
static uint8_t *make_file(const char *header, size_t data_len, size_t *size) {
  size_t hl = strlen(header);
  *size = 8 + hl + data_len;
  uint8_t *b = calloc(1, *size);
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  memcpy(b + 8, header, hl);
  return b;
}

TEST(python_dtypes) {
  grpo_error e;
  ckpt_st_model m;
  CHECK_EQ_INT(ckpt_st_open(&m, "tests/safetensors/data/dtypes.safetensors", &e), GRPO_OK);
  CHECK_EQ_INT(m.n, 9);
  CHECK_EQ_INT(m.n_shards, 1);
  CHECK_STR(m.shards[0].h.metadata, "{\"format\":\"pt\"}");
  float x[14], want[14];
  /* F32 exact; BF16 and F16 widened exactly (compare with torch's own widening) */
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "x.f32", x, 14, &e), GRPO_OK);
  CHECK(x[2] == 1.0f && x[3] == -1.5f && x[5] == 65504.0f && isinf(x[11]) && x[11] > 0);
  CHECK(signbit(x[1]));
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "x.bf16", x, 14, &e), GRPO_OK);
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "want.bf16", want, 14, &e), GRPO_OK);
  CHECK(memcmp(x, want, sizeof x) == 0);
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "x.f16", x, 14, &e), GRPO_OK);
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "want.f16", want, 14, &e), GRPO_OK);
  CHECK(memcmp(x, want, sizeof x) == 0);
  CHECK(x[4] == 3.140625f);    /* exact in f16 */
  CHECK(x[8] == 0.0f);         /* 1e-8 underflows f16 */
  const ckpt_st_tensor *t = ckpt_st_find(&m, "ids.i64");
  CHECK(t && t->dtype == CKPT_ST_I64 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
  int32_t ids[6];
  CHECK_EQ_INT(ckpt_st_read_i32(&m, "ids.i64", ids, 6, &e), GRPO_OK);
  CHECK(ids[2] == 299 && ids[3] == 2147483647 && ids[5] == 1);
  CHECK_EQ_INT(ckpt_st_read_i32(&m, "ids.i32", ids, 3, &e), GRPO_OK);
  CHECK(ids[0] == 3 && ids[1] == -4 && ids[2] == 5);
  t = ckpt_st_find(&m, "scalar");
  CHECK(t && t->ndim == 0 && t->numel == 1);
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "scalar", x, 1, &e), GRPO_OK);
  CHECK(x[0] == 2.5f);
  t = ckpt_st_find(&m, "empty");
  CHECK(t && t->numel == 0 && t->shape[1] == 4);
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "empty", x, 0, &e), GRPO_OK);
  /* wrong element count, wrong kind, missing: errors name file and tensor */
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "x.f32", x, 13, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "dtypes.safetensors") && strstr(e.msg, "x.f32"));
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "ids.i64", x, 6, &e), GRPO_EUNSUPPORTED);
  CHECK(strstr(e.msg, "ids.i64") != NULL);
  CHECK_EQ_INT(ckpt_st_read_i32(&m, "x.f32", ids, 14, &e), GRPO_EUNSUPPORTED);
  CHECK_EQ_INT(ckpt_st_read_f32(&m, "nope", x, 1, &e), GRPO_ENOTFOUND);
  CHECK(strstr(e.msg, "\"nope\"") && strstr(e.msg, "dtypes.safetensors"));
  ckpt_st_close(&m);
}

TEST(python_sharded_index) {
  grpo_error e;
  ckpt_st_model m, one;
  CHECK_EQ_INT(ckpt_st_open(&m, "tests/safetensors/data/sharded_bf16", &e), GRPO_OK);
  CHECK_EQ_INT(m.n_shards, 3);
  CHECK_EQ_INT(m.from_index, 1);
  CHECK_EQ_INT(m.n, 13);
  CHECK(m.index_metadata && strstr(m.index_metadata, "\"total_size\":19712"));
  /* the same model saved as one f16 file: bf16 and f16 roundings of the same
   * f32 weights agree to within their precisions */
  CHECK_EQ_INT(ckpt_st_open(&one, "tests/safetensors/data/single_f16/model.safetensors", &e), GRPO_OK);
  CHECK_EQ_INT(one.n, 13);
  for (int i = 0; i < m.n; i++) {
    const ckpt_st_tensor *a = m.sorted[i], *b = ckpt_st_find(&one, a->name);
    CHECK(b != NULL && a->dtype == CKPT_ST_BF16 && b->dtype == CKPT_ST_F16);
    if (!b) continue;
    CHECK_EQ_INT(a->numel, b->numel);
    float *x = malloc(a->numel * 4), *y = malloc(a->numel * 4);
    CHECK_EQ_INT(ckpt_st_read_f32(&m, a->name, x, a->numel, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_st_read_f32(&one, a->name, y, a->numel, &e), GRPO_OK);
    for (size_t k = 0; k < a->numel; k++)
      CHECK_MSG(fabsf(x[k] - y[k]) <= 0.008f * fabsf(y[k]) + 1e-6f, "%s[%zu] %g vs %g", a->name,
                k, x[k], y[k]);
    free(x);
    free(y);
  }
  ckpt_st_close(&m);
  ckpt_st_close(&one);
  /* opening the index file directly works too */
  CHECK_EQ_INT(ckpt_st_open(&m, "tests/safetensors/data/sharded_bf16/model.safetensors.index.json", &e), GRPO_OK);
  CHECK_EQ_INT(m.n, 13);
  ckpt_st_close(&m);
}

/* header rules: each case must fail with its code, naming the file and tensor */
TEST(malformed_headers) {
  static const struct { const char *header; size_t data; int code; const char *needle; } cases[] = {
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, GRPO_EFORMAT, "\"a\""},      /* out of range */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, GRPO_EFORMAT, "overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, GRPO_EFORMAT, "gap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, GRPO_EFORMAT, "trailing"},
    {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, GRPO_EFORMAT, "unknown dtype"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, GRPO_EFORMAT, "\"a\""},       /* shape/size */
    {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4, GRPO_EFORMAT, "\"a\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, GRPO_EFORMAT, "twice"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, GRPO_EPARSE, "shape[0]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, GRPO_EPARSE, "shape[0]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, GRPO_EFORMAT, "\"a\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, GRPO_EPARSE, "data_offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, GRPO_EPARSE, "data_offsets"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, GRPO_EPARSE, "dtype"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, GRPO_EPARSE, "shape"},
    {"{\"a\":[1,2]}", 0, GRPO_EPARSE, "\"a\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     GRPO_EUNSUPPORTED, "dimensions"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
     GRPO_EFORMAT, "\"a\""},                                                                               /* numel overflow */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, GRPO_EPARSE, "JSON"},          /* truncated JSON */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, GRPO_EPARSE, "trailing"},
    {"[]", 0, GRPO_EPARSE, "object"},
    {"{\"__metadata__\":{\"k\":1}}", 0, GRPO_EPARSE, "__metadata__"},
    {"{\"__metadata__\":[]}", 0, GRPO_EPARSE, "__metadata__"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, GRPO_EPARSE, "data_offsets"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t size;
    uint8_t *f = make_file(cases[i].header, cases[i].data, &size);
    ckpt_st_header h;
    grpo_error e;
    grpo_error_clear(&e);
    int rc = ckpt_st_parse_buffer(f, size, "bad.safetensors", &h, &e);
    CHECK_MSG(rc == cases[i].code, "case %zu: rc %d want %d: %s", i, rc, cases[i].code, e.msg);
    CHECK_MSG(strstr(e.msg, "bad.safetensors") != NULL, "case %zu: %s", i, e.msg);
    CHECK_MSG(strstr(e.msg, cases[i].needle) != NULL, "case %zu: no '%s' in: %s", i,
              cases[i].needle, e.msg);
    CHECK(h.n == 0 && h.tensors == NULL);
    free(f);
  }
  /* valid corner cases: empty header object, zero-size and 0-rank tensors, padding */
  static const char *ok[] = {
    "{}",
    "{}        ",
    "{\"__metadata__\":{\"format\":\"pt\"},\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
    "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}",
  };
  size_t data[] = {0, 0, 8};
  for (size_t i = 0; i < 3; i++) {
    size_t size;
    uint8_t *f = make_file(ok[i], data[i], &size);
    ckpt_st_header h;
    grpo_error e;
    CHECK_MSG(ckpt_st_parse_buffer(f, size, "ok.safetensors", &h, &e) == GRPO_OK, "ok %zu: %s", i, e.msg);
    ckpt_st_header_free(&h);
    free(f);
  }
}

TEST(length_prefix_rules) {
  grpo_error e;
  ckpt_st_header h;
  uint8_t small[5] = {1, 0, 0, 0, 0};
  CHECK_EQ_INT(ckpt_st_parse_buffer(small, 5, "t.st", &h, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "truncated") != NULL);
  /* header length over 100 MB */
  uint8_t big[16] = {0};
  uint64_t n = 100000001;
  for (int i = 0; i < 8; i++) big[i] = (uint8_t)(n >> (8 * i));
  CHECK_EQ_INT(ckpt_st_parse_buffer(big, 16, "t.st", &h, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "limit") != NULL);
  /* header length past the end of the file */
  uint8_t past[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  CHECK_EQ_INT(ckpt_st_parse_buffer(past, 10, "t.st", &h, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "truncated") != NULL);
}

/* the same rules on disk, plus truncation and broken indexes */
TEST(files_on_disk) {
  char path[512], dir[512];
  grpo_error e;
  ckpt_st_model m;
  size_t n = 0;
  uint8_t *good = slurp("tests/fixtures/models/llama/model.safetensors", &n);
  CHECK(good != NULL);
  snprintf(path, sizeof path, "%s/cut.safetensors", tmpdir);
  spit(path, good, n - 3); /* truncated data */
  CHECK_EQ_INT(ckpt_st_open(&m, path, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "cut.safetensors") && strstr(e.msg, "truncated"));
  spit(path, good, 100); /* truncated inside the header */
  CHECK_EQ_INT(ckpt_st_open(&m, path, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "truncated") != NULL);
  spit(path, good, 4);
  CHECK_EQ_INT(ckpt_st_open(&m, path, &e), GRPO_EFORMAT);
  free(good);
  CHECK_EQ_INT(ckpt_st_open(&m, "tests/safetensors/data/nothing_here", &e), GRPO_ENOTFOUND);
  /* a directory without weights */
  CHECK_EQ_INT(ckpt_st_open(&m, tmpdir, &e), GRPO_ENOTFOUND);
  CHECK(strstr(e.msg, "model.safetensors") != NULL);

  /* sharded model with a broken index */
  snprintf(dir, sizeof dir, "%s/shards", tmpdir);
  mkdir(dir, 0755);
  const char *src = "tests/safetensors/data/sharded_bf16";
  for (int k = 1; k <= 3; k++) {
    char s[512], d[512];
    snprintf(s, sizeof s, "%s/model-0000%d-of-00003.safetensors", src, k);
    snprintf(d, sizeof d, "%s/model-0000%d-of-00003.safetensors", dir, k);
    uint8_t *b = slurp(s, &n);
    spit(d, b, n);
    free(b);
  }
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  static const struct { const char *index; int code; const char *needle; } idx[] = {
    {"{\"weight_map\":{\"model.norm.weight\":\"model-00003-of-00003.safetensors\","
     "\"ghost.weight\":\"model-00001-of-00003.safetensors\"}}", GRPO_ENOTFOUND, "ghost.weight"},
    {"{\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00003.safetensors\"}}",
     GRPO_ENOTFOUND, "model.norm.weight"},
    {"{\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00003.safetensors\","
     "\"model.layers.0.input_layernorm.weight\":\"model-00003-of-00003.safetensors\"}}",
     GRPO_EFORMAT, "is listed in model-00001-of-00003.safetensors"},
    {"{\"weight_map\":{\"model.norm.weight\":\"../model-00003-of-00003.safetensors\"}}",
     GRPO_EFORMAT, "not a file name"},
    {"{\"weight_map\":{\"model.norm.weight\":\"model-00009-of-00009.safetensors\"}}",
     GRPO_ENOTFOUND, "model-00009-of-00009"},
    {"{\"weight_map\":{\"model.norm.weight\":3}}", GRPO_EPARSE, "model.norm.weight"},
    {"{\"metadata\":{}}", GRPO_EPARSE, "weight_map"},
    {"{\"weight_map\":{}}", GRPO_EFORMAT, "empty"},
    {"{\"weight_map\":", GRPO_EPARSE, "JSON"},
  };
  for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
    spit(path, idx[i].index, strlen(idx[i].index));
    grpo_error_clear(&e);
    int rc = ckpt_st_open(&m, dir, &e);
    CHECK_MSG(rc == idx[i].code, "index %zu: rc %d: %s", i, rc, e.msg);
    CHECK_MSG(strstr(e.msg, idx[i].needle) != NULL, "index %zu: no '%s' in: %s", i,
              idx[i].needle, e.msg);
  }
  /* the same tensor in two shards */
  char d2[512];
  snprintf(d2, sizeof d2, "%s/model-00002-of-00003.safetensors", dir);
  snprintf(path, sizeof path, "%s/model-00003-of-00003.safetensors", dir);
  uint8_t *b = slurp(path, &n);
  spit(d2, b, n);
  free(b);
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  const char *two = "{\"weight_map\":{\"model.norm.weight\":\"model-00002-of-00003.safetensors\","
                    "\"model.layers.0.input_layernorm.weight\":\"model-00003-of-00003.safetensors\"}}";
  spit(path, two, strlen(two));
  CHECK_EQ_INT(ckpt_st_open(&m, dir, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "appears in both") != NULL);
}

/* writer: Python's layout byte for byte */
TEST(writer_matches_python) {
  grpo_error e;
  ckpt_st_model m;
  /* re-write the Python-written dtypes file from its own tensors, shuffled */
  CHECK_EQ_INT(ckpt_st_open(&m, "tests/safetensors/data/dtypes.safetensors", &e), GRPO_OK);
  ckpt_st_write_tensor w[16];
  void *bufs[16];
  int n = m.n;
  for (int i = 0; i < n; i++) {
    const ckpt_st_tensor *t = m.sorted[(i * 5) % n]; /* any order in */
    bufs[i] = malloc(t->end - t->begin + 1);
    CHECK_EQ_INT(ckpt_st_read_raw(&m, t, bufs[i], &e), GRPO_OK);
    w[i].name = t->name;
    w[i].dtype = t->dtype;
    w[i].ndim = t->ndim;
    memcpy(w[i].shape, t->shape, sizeof w[i].shape);
    w[i].data = bufs[i];
  }
  char dir[512], path[512];
  snprintf(dir, sizeof dir, "%s/w", tmpdir);
  CHECK_EQ_INT(ckpt_st_write_model(dir, w, n, "{\"format\":\"pt\"}", 0, &e), GRPO_OK);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  size_t na = 0, nb = 0;
  uint8_t *a = slurp("tests/safetensors/data/dtypes.safetensors", &na), *b = slurp(path, &nb);
  CHECK(a && b && na == nb && memcmp(a, b, na) == 0);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
  CHECK_EQ_INT(hl % 8, 0);
  free(a);
  free(b);
  /* sharded: limit 40 bytes -> several shards + index; reads back equal */
  snprintf(dir, sizeof dir, "%s/ws", tmpdir);
  CHECK_EQ_INT(ckpt_st_write_model(dir, w, n, NULL, 40, &e), GRPO_OK);
  ckpt_st_model s;
  CHECK_EQ_INT(ckpt_st_open(&s, dir, &e), GRPO_OK);
  CHECK(s.n_shards > 2 && s.from_index && s.n == n);
  for (int i = 0; i < n; i++) {
    const ckpt_st_tensor *t = ckpt_st_find(&s, w[i].name);
    CHECK(t != NULL && t->dtype == w[i].dtype);
    if (!t) continue;
    uint8_t *got = malloc(t->end - t->begin + 1);
    CHECK_EQ_INT(ckpt_st_read_raw(&s, t, got, &e), GRPO_OK);
    CHECK(memcmp(got, w[i].data, t->end - t->begin) == 0);
    free(got);
  }
  ckpt_st_close(&s);
  /* writing again unsharded drops the stale index */
  CHECK_EQ_INT(ckpt_st_write_model(dir, w, n, NULL, 0, &e), GRPO_OK);
  CHECK_EQ_INT(ckpt_st_open(&s, dir, &e), GRPO_OK);
  CHECK(s.n_shards == 1 && !s.from_index);
  ckpt_st_close(&s);
  /* writer refuses bad input */
  w[1].name = w[0].name;
  snprintf(path, sizeof path, "%s/dup.safetensors", tmpdir);
  CHECK_EQ_INT(ckpt_st_write_file(path, w, 2, NULL, &e), GRPO_EINVAL);
  CHECK_EQ_INT(ckpt_st_write_file(path, w, 1, "{\"k\":1}", &e), GRPO_EINVAL);
  for (int i = 0; i < n; i++) free(bufs[i]);
  ckpt_st_close(&m);
}

/* every fixture file loads; shapes are what tests/fixtures/models/README.md says */
TEST(fixtures_load_with_documented_shapes) {
  static const char *models[] = {"qwen2", "qwen3", "llama"};
  static const int hd[] = {16, 32, 16};
  for (int mi = 0; mi < 3; mi++) {
    char path[256];
    grpo_error e;
    ckpt_st_model w;
    snprintf(path, sizeof path, "tests/fixtures/models/%s", models[mi]);
    CHECK_EQ_INT(ckpt_st_open(&w, path, &e), GRPO_OK);
    const char *batches[] = {"causal", "trie"};
    const int T[] = {20, 15}, P[] = {17, 14};
    for (int b = 0; b < 2; b++) {
      ckpt_st_model f;
      snprintf(path, sizeof path, "tests/fixtures/models/%s/%s.safetensors", models[mi], batches[b]);
      CHECK_EQ_INT(ckpt_st_open(&f, path, &e), GRPO_OK);
      static const char *rows[] = {"batch.ids", "batch.pos", "batch.tin", "batch.tout"};
      for (int k = 0; k < 4; k++) {
        const ckpt_st_tensor *t = ckpt_st_find(&f, rows[k]);
        CHECK(t && t->dtype == CKPT_ST_I32 && t->ndim == 1 && t->shape[0] == T[b]);
      }
      static const char *preds[] = {"batch.pred_row", "batch.pred_target", "batch.weights",
                                    "expect.logprob", "expect.entropy", "temp.logprob", "temp.entropy"};
      for (int k = 0; k < 7; k++) {
        const ckpt_st_tensor *t = ckpt_st_find(&f, preds[k]);
        CHECK_MSG(t && t->ndim == 1 && t->shape[0] == P[b], "%s %s", path, preds[k]);
      }
      const ckpt_st_tensor *h = ckpt_st_find(&f, "expect.hidden");
      CHECK(h && h->ndim == 2 && h->shape[0] == T[b] && h->shape[1] == 64);
      h = ckpt_st_find(&f, "expect.inv_freq");
      CHECK(h && h->shape[0] == hd[mi] / 2);
      /* one gradient per weight, same shape */
      int grads = 0;
      for (int k = 0; k < f.n; k++)
        if (strncmp(f.sorted[k]->name, "grad.", 5) == 0) {
          const ckpt_st_tensor *g = f.sorted[k], *p = ckpt_st_find(&w, g->name + 5);
          CHECK_MSG(p != NULL, "%s: %s has no parameter", path, g->name);
          if (p) CHECK(p->ndim == g->ndim && p->numel == g->numel && g->dtype == CKPT_ST_F32);
          grads++;
        }
      CHECK_EQ_INT(grads, w.n);
      /* structural checks on the batch: ancestors, predictions, loss */
      int32_t tin[32], tout[32], row[32], tgt[32];
      float wt[32], lp[32], loss;
      CHECK_EQ_INT(ckpt_st_read_i32(&f, "batch.tin", tin, (size_t)T[b], &e), GRPO_OK);
      CHECK_EQ_INT(ckpt_st_read_i32(&f, "batch.tout", tout, (size_t)T[b], &e), GRPO_OK);
      CHECK_EQ_INT(ckpt_st_read_i32(&f, "batch.pred_row", row, (size_t)P[b], &e), GRPO_OK);
      CHECK_EQ_INT(ckpt_st_read_i32(&f, "batch.pred_target", tgt, (size_t)P[b], &e), GRPO_OK);
      CHECK_EQ_INT(ckpt_st_read_f32(&f, "batch.weights", wt, (size_t)P[b], &e), GRPO_OK);
      CHECK_EQ_INT(ckpt_st_read_f32(&f, "expect.logprob", lp, (size_t)P[b], &e), GRPO_OK);
      CHECK_EQ_INT(ckpt_st_read_f32(&f, "expect.loss", &loss, 1, &e), GRPO_OK);
      double sum = 0;
      for (int k = 0; k < P[b]; k++) {
        CHECK(row[k] >= 0 && row[k] < T[b] && tgt[k] >= 0 && tgt[k] < 300);
        CHECK(lp[k] < 0);
        sum += (double)wt[k] * lp[k];
      }
      CHECK_NEAR(sum, loss, 1e-4 * fabs(loss));
      for (int i = 0; i < T[b]; i++) CHECK(tin[i] == i && tout[i] >= i && tout[i] < T[b]);
      ckpt_st_close(&f);
    }
    ckpt_st_model d;
    snprintf(path, sizeof path, "tests/fixtures/models/%s/decode.safetensors", models[mi]);
    CHECK_EQ_INT(ckpt_st_open(&d, path, &e), GRPO_OK);
    const ckpt_st_tensor *lg = ckpt_st_find(&d, "decode.logits");
    CHECK(lg && lg->ndim == 2 && lg->shape[0] == 6 && lg->shape[1] == 300);
    /* tokens are the argmax of the logits */
    float logits[6 * 300];
    int32_t toks[6];
    CHECK_EQ_INT(ckpt_st_read_f32(&d, "decode.logits", logits, 1800, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_st_read_i32(&d, "decode.tokens", toks, 6, &e), GRPO_OK);
    for (int s = 0; s < 6; s++) {
      int best = 0;
      for (int v = 1; v < 300; v++)
        if (logits[s * 300 + v] > logits[s * 300 + best]) best = v;
      CHECK_EQ_INT(best, toks[s]);
    }
    ckpt_st_close(&d);
    ckpt_st_close(&w);
  }
}

int main(void) {
  make_tmpdir();
  RUN(python_dtypes);
  RUN(python_sharded_index);
  RUN(malformed_headers);
  RUN(length_prefix_rules);
  RUN(files_on_disk);
  RUN(writer_matches_python);
  RUN(fixtures_load_with_documented_shapes);
  rm_tree(tmpdir);
  return test_summary();
}
