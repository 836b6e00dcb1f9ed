/* HF directories <-> model_params <-> HDF5 checkpoints (checkpoints/hf_io.h):
 * bit-exact round trips on files written by transformers, and the errors. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/hf_io.h"
#include "checkpoints/safetensors.h"
#include "core/dtype.h"
#include "core/log.h"
#include "test.h"

static char tmpdir[256];

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  b[*n] = 0;
  fclose(f);
  return b;
}

static int same_file(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  if (!same) fprintf(stderr, "differ: %s (%zu bytes) vs %s (%zu bytes)\n", a, x ? na : 0, b, y ? nb : 0);
  free(x);
  free(y);
  return same;
}

static void copy_file(const char *src, const char *dst) {
  size_t n = 0;
  uint8_t *b = slurp(src, &n);
  FILE *f = fopen(dst, "wb");
  if (b && f) fwrite(b, 1, n, f);
  if (f) fclose(f);
  free(b);
}

TEST(load_fixtures_into_params) {
  static const char *models[] = {"qwen2", "qwen3", "llama"};
  for (int m = 0; m < 3; m++) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/models/%s", models[m]);
    grpo_error e;
    model_params p;
    CHECK_EQ_INT(ckpt_hf_load(dir, &p, &e), GRPO_OK);
    ckpt_st_model st;
    CHECK_EQ_INT(ckpt_st_open(&st, dir, &e), GRPO_OK);
    for (int i = 0; i < p.n; i++) {
      const model_param_info *pi = &p.info[i];
      float *want = malloc(pi->numel * sizeof(float));
      CHECK_EQ_INT(ckpt_st_read_f32(&st, pi->name, want, pi->numel, &e), GRPO_OK);
      CHECK_MSG(memcmp(want, p.data + pi->offset, pi->numel * sizeof(float)) == 0, "%s %s",
                models[m], pi->name);
      free(want);
    }
    if (p.cfg.tie_embeddings)
      CHECK(model_params_tensor(&p, "lm_head.weight") == model_params_tensor(&p, "model.embed_tokens.weight"));
    ckpt_st_close(&st);
    model_params_free(&p);
  }
}

/* index files: same metadata and weight_map (formatting may differ) */
static int same_index(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  char *x = (char *)slurp(a, &na), *y = (char *)slurp(b, &nb);
  cJSON *ja = x ? cJSON_Parse(x) : NULL, *jb = y ? cJSON_Parse(y) : NULL;
  int same = ja && jb && cJSON_Compare(ja, jb, 1);
  cJSON_Delete(ja);
  cJSON_Delete(jb);
  free(x);
  free(y);
  return same;
}

/* safetensors -> HDF5 -> safetensors reproduces every file */
TEST(convert_round_trip_bit_exact) {
  static const struct { const char *dir; const char *files[8]; } cases[] = {
    {"tests/fixtures/models/qwen2", {"model.safetensors", "config.json", NULL}},
    {"tests/fixtures/models/qwen3", {"model.safetensors", "config.json", NULL}},
    {"tests/fixtures/models/llama", {"model.safetensors", "config.json", NULL}},
    {"tests/safetensors/data/sharded_bf16",
     {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors", "config.json", "tokenizer_config.json", NULL}},
    {"tests/safetensors/data/single_f16", {"model.safetensors", "config.json", "tokenizer_config.json", NULL}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char h5[512], out[512];
    snprintf(h5, sizeof h5, "%s/case%zu.h5", tmpdir, c);
    snprintf(out, sizeof out, "%s/case%zu", tmpdir, c);
    grpo_error e;
    CHECK_MSG(ckpt_hf_to_h5(cases[c].dir, h5, &e) == GRPO_OK, "%s: %s", cases[c].dir, e.msg);
    CHECK_MSG(ckpt_h5_to_hf(h5, out, CKPT_HF_KEEP_DTYPE, &e) == GRPO_OK, "%s: %s", h5, e.msg);
    for (int f = 0; cases[c].files[f]; f++) {
      char a[512], b[512];
      snprintf(a, sizeof a, "%s/%s", cases[c].dir, cases[c].files[f]);
      snprintf(b, sizeof b, "%s/%s", out, cases[c].files[f]);
      CHECK_MSG(same_file(a, b), "case %zu: %s", c, cases[c].files[f]);
    }
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/model.safetensors.index.json", cases[c].dir);
    snprintf(b, sizeof b, "%s/model.safetensors.index.json", out);
    struct stat st;
    CHECK((stat(a, &st) == 0) == (stat(b, &st) == 0));
    if (stat(a, &st) == 0) CHECK(same_index(a, b));
    /* bf16 stays bf16 inside the HDF5; f16 is widened to f32 there */
    ckpt_reader *r;
    CHECK_EQ_INT(ckpt_reader_open(&r, h5, &e), GRPO_OK);
    const ckpt_tensor_info *t = ckpt_reader_find(r, CKPT_MODEL, "model.norm.weight");
    CHECK(t != NULL);
    if (t) CHECK_EQ_INT(t->dtype, c == 3 ? CKPT_BF16 : CKPT_F32);
    /* and the checkpoint loads for training */
    model_params p, q;
    CHECK_EQ_INT(ckpt_load_params(r, &p, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_hf_load(cases[c].dir, &q, &e), GRPO_OK);
    CHECK(p.total == q.total && memcmp(p.data, q.data, p.total * sizeof(float)) == 0);
    model_params_free(&p);
    model_params_free(&q);
    ckpt_reader_close(r);
  }
}

/* model_params through the HDF5 checkpoint: f32 exact, bf16 rounded to nearest even */
TEST(params_through_checkpoint) {
  grpo_error e;
  model_params p, q;
  CHECK_EQ_INT(ckpt_hf_load("tests/fixtures/models/qwen3", &p, &e), GRPO_OK);
  for (int d = 0; d < 2; d++) {
    char h5[512];
    snprintf(h5, sizeof h5, "%s/params%d.h5", tmpdir, d);
    ckpt_writer *w;
    CHECK_EQ_INT(ckpt_writer_open(&w, h5, 7, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_put_params(w, &p, d ? CKPT_BF16 : CKPT_F32, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_writer_finish(w, &e), GRPO_OK);
    ckpt_reader *r;
    CHECK_EQ_INT(ckpt_reader_open(&r, h5, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_reader_step(r), 7);
    CHECK_EQ_INT(ckpt_load_params(r, &q, &e), GRPO_OK);
    CHECK_EQ_INT(q.cfg.head_dim, 32);
    CHECK_EQ_INT(q.total, p.total);
    int bad = 0;
    for (size_t i = 0; i < p.total; i++) {
      float want = d ? grpo_bf16_to_f32(grpo_f32_to_bf16(p.data[i])) : p.data[i];
      if (memcmp(&want, &q.data[i], 4) != 0) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    if (d) CHECK(memcmp(p.data, q.data, p.total * 4) != 0); /* the rounding did happen */
    model_params_free(&q);
    ckpt_reader_close(r);
  }
  /* exported with --dtype bf16: the same rounding, torch_dtype updated */
  char h5[512], out[512], cfg[600];
  snprintf(h5, sizeof h5, "%s/params0.h5", tmpdir);
  snprintf(out, sizeof out, "%s/exp_bf16", tmpdir);
  CHECK_EQ_INT(ckpt_h5_to_hf(h5, out, CKPT_ST_BF16, &e), GRPO_OK);
  CHECK_EQ_INT(ckpt_hf_load(out, &q, &e), GRPO_OK);
  CHECK_STR(q.cfg.dtype, "bfloat16");
  int bad = 0;
  for (size_t i = 0; i < p.total; i++)
    if (grpo_bf16_to_f32(grpo_f32_to_bf16(p.data[i])) != q.data[i]) bad++;
  CHECK_EQ_INT(bad, 0);
  model_params_free(&q);
  snprintf(cfg, sizeof cfg, "%s/config.json", out);
  model_config c;
  CHECK_EQ_INT(model_config_load(&c, cfg, &e), GRPO_OK);
  CHECK_STR(c.dtype, "bfloat16");
  model_params_free(&p);
}

TEST(save_hf_directory) {
  grpo_error e;
  model_params p, q;
  CHECK_EQ_INT(ckpt_hf_load("tests/fixtures/models/llama", &p, &e), GRPO_OK);
  char out[512];
  /* f32, sharded at 100 kB, tokenizer files from another dir */
  snprintf(out, sizeof out, "%s/saved_f32", tmpdir);
  CHECK_EQ_INT(ckpt_hf_save(&p, out, CKPT_ST_F32, 100000, "tests/safetensors/data/single_f16", &e), GRPO_OK);
  ckpt_st_model st;
  CHECK_EQ_INT(ckpt_st_open(&st, out, &e), GRPO_OK);
  CHECK(st.n_shards >= 4 && st.from_index);
  ckpt_st_close(&st);
  CHECK_EQ_INT(ckpt_hf_load(out, &q, &e), GRPO_OK);
  CHECK(memcmp(p.data, q.data, p.total * 4) == 0);
  CHECK(q.cfg.rope_type == MODEL_ROPE_LLAMA3 && q.cfg.rope_orig_max_pos == 64);
  model_params_free(&q);
  char a[600];
  snprintf(a, sizeof a, "%s/tokenizer_config.json", out);
  CHECK(same_file("tests/safetensors/data/single_f16/tokenizer_config.json", a));
  /* bf16 single file */
  snprintf(out, sizeof out, "%s/saved_bf16", tmpdir);
  CHECK_EQ_INT(ckpt_hf_save(&p, out, CKPT_ST_BF16, 0, NULL, &e), GRPO_OK);
  CHECK_EQ_INT(ckpt_hf_load(out, &q, &e), GRPO_OK);
  int bad = 0;
  for (size_t i = 0; i < p.total; i++)
    if (grpo_bf16_to_f32(grpo_f32_to_bf16(p.data[i])) != q.data[i]) bad++;
  CHECK_EQ_INT(bad, 0);
  model_params_free(&q);
  CHECK_EQ_INT(ckpt_hf_save(&p, out, CKPT_ST_F16, 0, NULL, &e), GRPO_EINVAL);
  model_params_free(&p);
}

TEST(errors) {
  grpo_error e;
  model_params p;
  char dir[512], path[600];
  /* config that does not match the weights: shape error names the tensor */
  snprintf(dir, sizeof dir, "%s/mismatch", tmpdir);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  copy_file("tests/fixtures/models/qwen2/model.safetensors", path);
  snprintf(path, sizeof path, "%s/config.json", dir);
  size_t n = 0;
  char *cfg = (char *)slurp("tests/fixtures/models/qwen2/config.json", &n);
  char *at = strstr(cfg, "\"intermediate_size\": 128");
  CHECK(at != NULL);
  if (at) memcpy(at, "\"intermediate_size\": 120", 24);
  FILE *f = fopen(path, "wb");
  fwrite(cfg, 1, n, f);
  fclose(f);
  free(cfg);
  CHECK_EQ_INT(ckpt_hf_load(dir, &p, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "gate_proj.weight") && strstr(e.msg, "[120, 64]"));
  snprintf(path, sizeof path, "%s/x.h5", tmpdir);
  CHECK_EQ_INT(ckpt_hf_to_h5(dir, path, &e), GRPO_EFORMAT);
  CHECK(strstr(e.msg, "mlp.gate_proj.weight") != NULL);
  /* a model with more layers than the file has: missing tensor */
  cfg = (char *)slurp("tests/fixtures/models/qwen2/config.json", &n);
  at = strstr(cfg, "\"num_hidden_layers\": 2");
  CHECK(at != NULL);
  if (at) at[strlen("\"num_hidden_layers\": ")] = '3';
  snprintf(path, sizeof path, "%s/config.json", dir);
  f = fopen(path, "wb");
  fwrite(cfg, 1, n, f);
  fclose(f);
  free(cfg);
  CHECK_EQ_INT(ckpt_hf_load(dir, &p, &e), GRPO_ENOTFOUND);
  CHECK(strstr(e.msg, "model.layers.2.") != NULL);
  /* no config.json */
  CHECK_EQ_INT(ckpt_hf_load(tmpdir, &p, &e), GRPO_ENOTFOUND);
  CHECK(strstr(e.msg, "config.json") != NULL);
  /* an untied model without lm_head.weight is tied, as HF does */
  snprintf(path, sizeof path, "%s/config.json", dir);
  cfg = (char *)slurp("tests/fixtures/models/qwen2/config.json", &n);
  at = strstr(cfg, "\"tie_word_embeddings\": true");
  CHECK(at != NULL);
  if (at) memcpy(at, "\"tie_word_embeddings\":false", 27);
  f = fopen(path, "wb");
  fwrite(cfg, 1, n, f);
  fclose(f);
  free(cfg);
  grpo_log_set_level(GRPO_LOG_ERROR);
  CHECK_EQ_INT(ckpt_hf_load(dir, &p, &e), GRPO_OK);
  grpo_log_set_level(GRPO_LOG_INFO);
  CHECK(p.cfg.tie_embeddings == 1 && p.lm_head == p.embed);
  model_params_free(&p);
  /* h52hf of a checkpoint without a model config */
  snprintf(path, sizeof path, "%s/empty.h5", tmpdir);
  ckpt_writer *w;
  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &e), GRPO_OK);
  CHECK_EQ_INT(ckpt_writer_finish(w, &e), GRPO_OK);
  snprintf(dir, sizeof dir, "%s/never", tmpdir);
  CHECK_EQ_INT(ckpt_h5_to_hf(path, dir, CKPT_HF_KEEP_DTYPE, &e), GRPO_ENOTFOUND);
  CHECK(strstr(e.msg, "model_config_json") && strstr(e.msg, "empty.h5"));
  /* a layout that tries to write outside OUT_DIR, or lists a missing tensor */
  static const char *layouts[] = {
    "{\"shards\":[{\"file\":\"../evil.safetensors\",\"tensors\":[]}]}",
    "{\"shards\":[{\"file\":\"..\",\"tensors\":[]}]}",
    "{\"shards\":[{\"file\":\"model.safetensors\",\"tensors\":[\"ghost\"]}]}",
    "{\"shards\":3}",
    "[",
  };
  static const int codes[] = {GRPO_EFORMAT, GRPO_EFORMAT, GRPO_ENOTFOUND, GRPO_EFORMAT, GRPO_EPARSE};
  size_t cn = 0;
  char *qcfg = (char *)slurp("tests/fixtures/models/qwen2/config.json", &cn);
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "%s/layout%d.h5", tmpdir, i);
    CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_writer_put_meta(w, "model_config_json", qcfg, &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_writer_put_meta(w, "safetensors_layout", layouts[i], &e), GRPO_OK);
    CHECK_EQ_INT(ckpt_writer_finish(w, &e), GRPO_OK);
    snprintf(dir, sizeof dir, "%s/layout_out%d", tmpdir, i);
    int rc = ckpt_h5_to_hf(path, dir, CKPT_HF_KEEP_DTYPE, &e);
    CHECK_MSG(rc == codes[i], "layout %d: rc %d: %s", i, rc, e.msg);
  }
  free(qcfg);
  struct stat st;
  snprintf(path, sizeof path, "%s/evil.safetensors", tmpdir);
  CHECK(stat(path, &st) != 0);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/grpo_hfio_XXXXXX", base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) return 1;
  RUN(load_fixtures_into_params);
  RUN(convert_round_trip_bit_exact);
  RUN(params_through_checkpoint);
  RUN(save_hf_directory);
  RUN(errors);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
  return test_summary();
}
