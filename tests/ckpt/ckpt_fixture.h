/* Shared by the checkpoint tests: a small sample checkpoint whose every value
 * follows a closed formula (checked again independently by check_h5py.py),
 * and temp-directory helpers. */
#ifndef GRPO_TESTS_CKPT_FIXTURE_H
#define GRPO_TESTS_CKPT_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "checkpoints/ckpt.h"

#define SAMPLE_STEP 7
#define SAMPLE_CONFIG "seed: 42\ntrainer:\n  beta: 0.04\n  max_steps: 100\n"
#define SAMPLE_MODEL_JSON "{\"hidden_size\": 4, \"vocab_size\": 8}"
#define SAMPLE_TOKHASH "sha256:0123abcd"

/* Values of the sample tensors; exactly representable in bf16 where stored so. */
static inline float sample_embed(int i) { return (float)(i - 16) * 0.25f; }      /* bf16 [8,4] */
static inline float sample_q(int i) { return (float)i * 0.5f - 3.0f; }           /* f32 [4,4] */
static inline float sample_norm(int i) { return 1.0f + (float)i; }               /* f32 [4] */
static inline float sample_m(int i) { return 0.125f * (float)i; }                /* f32 [4] */
static inline float sample_v(int i) { return 0.0625f * (float)i; }               /* f32 [4] */

static inline int write_sample_to(ckpt_writer *w, grpo_error *err) {
  uint16_t embed[32];
  float q[16], norm[4], m[4], v[4], scale = 2.5f;
  for (int i = 0; i < 32; i++) embed[i] = grpo_f32_to_bf16(sample_embed(i));
  for (int i = 0; i < 16; i++) q[i] = sample_q(i);
  for (int i = 0; i < 4; i++) {
    norm[i] = sample_norm(i);
    m[i] = sample_m(i);
    v[i] = sample_v(i);
  }
  const int64_t s_embed[2] = {8, 4}, s_q[2] = {4, 4}, s_norm[1] = {4}, s_empty[1] = {0};
  const uint64_t rng[3] = {42, 7, 0xFFFFFFFFFFFFFFFFull};
  int rc = 0;
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "model.embed_tokens.weight", CKPT_BF16, 2, s_embed, embed, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "model.layers.0.self_attn.q_proj.weight", CKPT_F32, 2, s_q, q, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "model.norm.weight", CKPT_F32, 1, s_norm, norm, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "lm_head.scale", CKPT_F32, 0, NULL, &scale, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_MODEL, "empty.bias", CKPT_F32, 1, s_empty, NULL, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_OPTIM_M, "model.norm.weight", CKPT_F32, 1, s_norm, m, err);
  rc |= ckpt_writer_put_tensor(w, CKPT_OPTIM_V, "model.norm.weight", CKPT_F32, 1, s_norm, v, err);
  rc |= ckpt_writer_put_rng(w, rng, 3, err);
  rc |= ckpt_writer_put_i64(w, "data_cursor", 123, err);
  rc |= ckpt_writer_put_f64(w, "reward_mean", 0.375, err);
  rc |= ckpt_writer_put_f64(w, "reward_std", -1.0e-300, err);
  rc |= ckpt_writer_put_str(w, "note", "hello", err);
  rc |= ckpt_writer_put_meta(w, "config_yaml", SAMPLE_CONFIG, err);
  rc |= ckpt_writer_put_meta(w, "model_config_json", SAMPLE_MODEL_JSON, err);
  rc |= ckpt_writer_put_meta(w, "tokenizer_hash", SAMPLE_TOKHASH, err);
  return rc;
}

static inline int write_sample(const char *path, grpo_error *err) {
  ckpt_writer *w;
  int rc = ckpt_writer_open(&w, path, SAMPLE_STEP, err);
  if (rc) return rc;
  if (write_sample_to(w, err) != 0) {
    ckpt_writer_abort(w);
    return 1;
  }
  return ckpt_writer_finish(w, err);
}

static inline char *make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[1024];
  snprintf(tmpl, sizeof tmpl, "%s/grpo_ckpt_XXXXXX", base && base[0] ? base : "/tmp");
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

/* Removes dir and the plain files in it (tests create no subfolders). */
static inline void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char p[2048];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static inline unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
  *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
  fclose(f);
  return buf;
}

static inline int spit(const char *path, const unsigned char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t put = fwrite(data, 1, n, f);
  return fclose(f) == 0 && put == n ? 0 : -1;
}

#endif
