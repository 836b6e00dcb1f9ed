/* checkpoints/: bf16 rounding, write/read round trip, run state, errors for
 * missing / foreign / truncated / corrupt / wrong-version files, atomic
 * publish + rotation + resolve, and the inspect summary. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>

#include "ckpt_fixture.h"
#include "core/log.h"
#include "core/philox.h"
#include "test.h"

static char *g_dir;
#define ALL (CKPT_RESOLVE_VERIFY_ALL | CKPT_RESOLVE_CLEAN_TMP)

static const char *tmp_path(const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static uint16_t bits_to_bf16(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return grpo_f32_to_bf16(f);
}

/* The checkpoint relies on core/dtype.h's bf16 rounding; pin the cases it needs. */
TEST(bf16_round_to_nearest_even) {
  CHECK_EQ_INT(grpo_f32_to_bf16(1.0f), 0x3F80);
  CHECK_EQ_INT(grpo_f32_to_bf16(-2.0f), 0xC000);
  CHECK_EQ_INT(bits_to_bf16(0x3F808000u), 0x3F80); /* tie, kept bit even: down */
  CHECK_EQ_INT(bits_to_bf16(0x3F818000u), 0x3F82); /* tie, kept bit odd: up */
  CHECK_EQ_INT(bits_to_bf16(0x3F808001u), 0x3F81); /* above half: up */
  CHECK_EQ_INT(bits_to_bf16(0x3F807FFFu), 0x3F80); /* below half: down */
  CHECK_EQ_INT(bits_to_bf16(0x7F7FFFFFu), 0x7F80); /* FLT_MAX rounds to +Inf */
  CHECK_EQ_INT(bits_to_bf16(0x7F7F7FFFu), 0x7F7F);
  CHECK_EQ_INT(bits_to_bf16(0x7F800000u), 0x7F80); /* +Inf */
  CHECK_EQ_INT(bits_to_bf16(0xFF800000u), 0xFF80); /* -Inf */
  CHECK_EQ_INT(bits_to_bf16(0x80000000u), 0x8000); /* -0 */
  CHECK_EQ_INT(bits_to_bf16(0x00018000u), 0x0002); /* subnormal tie, odd: up */
  CHECK_EQ_INT(bits_to_bf16(0x00008000u), 0x0000); /* subnormal tie, even: down */
  /* NaN whose payload is only in the dropped half must stay NaN, not become Inf. */
  uint16_t n = bits_to_bf16(0x7F800001u);
  CHECK(isnan(grpo_bf16_to_f32(n)));
  CHECK(isnan(grpo_bf16_to_f32(bits_to_bf16(0xFFC00000u))));
  CHECK(grpo_bf16_to_f32(bits_to_bf16(0xFFC00000u)) != 0 && (bits_to_bf16(0xFFC00000u) & 0x8000));
  CHECK(grpo_bf16_to_f32(0x4049) == 3.140625f);
  CHECK(grpo_bf16_to_f32(0x3F80) == 1.0f);
}

TEST(roundtrip_sample) {
  grpo_error err;
  grpo_error_clear(&err);
  const char *path = tmp_path("sample.h5");
  CHECK_EQ_INT(write_sample(path, &err), 0);
  ckpt_reader *r = NULL;
  CHECK_EQ_INT(ckpt_reader_open(&r, path, &err), 0);
  if (!r) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  CHECK_EQ_INT(ckpt_reader_step(r), SAMPLE_STEP);
  CHECK_EQ_INT(ckpt_reader_format_version(r), CKPT_FORMAT_VERSION);
  CHECK(strncmp(ckpt_reader_producer(r), "grpo ", 5) == 0);
  CHECK_EQ_INT(ckpt_reader_num_tensors(r), 7);
  CHECK_EQ_INT(ckpt_reader_count(r, CKPT_MODEL), 5);
  CHECK_EQ_INT(ckpt_reader_count(r, CKPT_OPTIM_M), 1);
  CHECK_EQ_INT(ckpt_reader_count(r, CKPT_OPTIM_V), 1);
  /* Write order is kept (not alphabetical). */
  CHECK_STR(ckpt_reader_tensor(r, 0)->name, "model.embed_tokens.weight");
  CHECK_STR(ckpt_reader_tensor(r, 3)->name, "lm_head.scale");

  const ckpt_tensor_info *e = ckpt_reader_find(r, CKPT_MODEL, "model.embed_tokens.weight");
  CHECK(e && e->dtype == CKPT_BF16 && e->ndim == 2 && e->shape[0] == 8 && e->shape[1] == 4 && e->numel == 32);
  uint16_t raw[32];
  float f[32];
  CHECK_EQ_INT(ckpt_reader_read(r, e, CKPT_BF16, raw, 32, &err), 0);
  for (int i = 0; i < 32; i++) CHECK_EQ_INT(raw[i], grpo_f32_to_bf16(sample_embed(i)));
  CHECK_EQ_INT(ckpt_reader_read(r, e, CKPT_F32, f, 32, &err), 0);
  for (int i = 0; i < 32; i++) CHECK(f[i] == sample_embed(i));

  const ckpt_tensor_info *q = ckpt_reader_find(r, CKPT_MODEL, "model.layers.0.self_attn.q_proj.weight");
  CHECK(q && q->dtype == CKPT_F32 && q->ndim == 2 && q->numel == 16);
  CHECK_EQ_INT(ckpt_reader_read_named(r, CKPT_MODEL, "model.layers.0.self_attn.q_proj.weight", CKPT_F32,
                                      f, 32, &err), 0);
  for (int i = 0; i < 16; i++) CHECK(f[i] == sample_q(i));
  CHECK_EQ_INT(ckpt_reader_read(r, q, CKPT_BF16, raw, 16, &err), 0);
  for (int i = 0; i < 16; i++) CHECK_EQ_INT(raw[i], grpo_f32_to_bf16(sample_q(i)));
  CHECK_EQ_INT(ckpt_reader_read_rows(r, q, 1, 2, CKPT_F32, f, 8, &err), 0);
  for (int i = 0; i < 8; i++) CHECK(f[i] == sample_q(4 + i));
  CHECK_EQ_INT(ckpt_reader_read_rows(r, q, 3, 2, CKPT_F32, f, 8, &err), GRPO_EINVAL);
  CHECK_EQ_INT(ckpt_reader_read(r, q, CKPT_F32, f, 15, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "q_proj") && strstr(err.msg, "15"));

  const ckpt_tensor_info *s = ckpt_reader_find(r, CKPT_MODEL, "lm_head.scale");
  CHECK(s && s->ndim == 0 && s->numel == 1);
  CHECK_EQ_INT(ckpt_reader_read(r, s, CKPT_F32, f, 1, &err), 0);
  CHECK(f[0] == 2.5f);
  const ckpt_tensor_info *z = ckpt_reader_find(r, CKPT_MODEL, "empty.bias");
  CHECK(z && z->ndim == 1 && z->shape[0] == 0 && z->numel == 0);
  CHECK_EQ_INT(ckpt_reader_read(r, z, CKPT_F32, f, 0, &err), 0);

  CHECK_EQ_INT(ckpt_reader_read_named(r, CKPT_OPTIM_M, "model.norm.weight", CKPT_F32, f, 4, &err), 0);
  for (int i = 0; i < 4; i++) CHECK(f[i] == sample_m(i));
  CHECK_EQ_INT(ckpt_reader_read_named(r, CKPT_OPTIM_V, "model.norm.weight", CKPT_F32, f, 4, &err), 0);
  for (int i = 0; i < 4; i++) CHECK(f[i] == sample_v(i));
  CHECK_EQ_INT(ckpt_reader_read_named(r, CKPT_OPTIM_V, "nope.weight", CKPT_F32, f, 4, &err), GRPO_ENOTFOUND);
  CHECK(strstr(err.msg, path) && strstr(err.msg, "/optim/v/nope.weight"));

  int64_t i64 = 0;
  double d = 0;
  CHECK_EQ_INT(ckpt_reader_get_i64(r, "data_cursor", &i64, &err), 0);
  CHECK_EQ_INT(i64, 123);
  CHECK_EQ_INT(ckpt_reader_get_f64(r, "reward_mean", &d, &err), 0);
  CHECK(d == 0.375);
  CHECK_EQ_INT(ckpt_reader_get_f64(r, "reward_std", &d, &err), 0);
  CHECK(d == -1.0e-300);
  CHECK_EQ_INT(ckpt_reader_get_i64(r, "reward_mean", &i64, &err), GRPO_EFORMAT);
  CHECK_EQ_INT(ckpt_reader_get_i64(r, "missing", &i64, &err), GRPO_ENOTFOUND);
  const ckpt_scalar *note = ckpt_reader_find_scalar(r, "note");
  CHECK(note && note->kind == CKPT_SCALAR_STR);
  if (note) CHECK_STR(note->str, "hello");
  CHECK_EQ_INT(ckpt_reader_num_scalars(r), 4);
  size_t nrng = 0;
  const uint64_t *rng = ckpt_reader_rng(r, &nrng);
  CHECK_EQ_INT(nrng, 3);
  if (nrng == 3) CHECK(rng[0] == 42 && rng[1] == 7 && rng[2] == 0xFFFFFFFFFFFFFFFFull);
  CHECK_STR(ckpt_reader_meta(r, "config_yaml"), SAMPLE_CONFIG);
  CHECK_STR(ckpt_reader_meta(r, "model_config_json"), SAMPLE_MODEL_JSON);
  CHECK_STR(ckpt_reader_meta(r, "tokenizer_hash"), SAMPLE_TOKHASH);
  CHECK(ckpt_reader_meta(r, "nothing") == NULL);
  ckpt_reader_close(r);
}

/* No timestamps in the file: the same state always writes the same bytes. */
TEST(writes_are_deterministic) {
  grpo_error err;
  const char *a = tmp_path("det_a.h5"), *b = tmp_path("det_b.h5");
  CHECK_EQ_INT(write_sample(a, &err), 0);
  CHECK_EQ_INT(write_sample(b, &err), 0);
  size_t na = 0, nb = 0;
  unsigned char *da = slurp(a, &na), *db = slurp(b, &nb);
  CHECK(da && db && na == nb && memcmp(da, db, na) == 0);
  free(da);
  free(db);
  hid_t f = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT);
  const char *objs[] = {"/", "/model", "/model/model.norm.weight", "/optim/m/model.norm.weight", "/state/step"};
  for (int i = 0; i < 5; i++) {
    H5O_info_t info;
    CHECK(H5Oget_info_by_name2(f, objs[i], &info, H5O_INFO_TIME, H5P_DEFAULT) >= 0);
    CHECK_MSG(info.ctime == 0 && info.mtime == 0, "%s has timestamps", objs[i]);
  }
  H5Fclose(f);
}

/* A larger tensor goes to checksummed chunks; rows cross chunk boundaries. */
TEST(roundtrip_chunked) {
  grpo_error err;
  const char *path = tmp_path("big.h5");
  enum { R = 1000, C = 1100 }; /* 4.4 MB f32: more than one 4 MiB chunk */
  float *a = malloc(sizeof(float) * R * C), *b = malloc(sizeof(float) * R * C);
  uint16_t *h = malloc(sizeof(uint16_t) * R * C);
  for (int i = 0; i < R * C; i++) {
    a[i] = (float)i * 1e-3f - 7.0f;
    h[i] = grpo_f32_to_bf16(a[i]);
  }
  ckpt_writer *w;
  const int64_t shape[2] = {R, C};
  CHECK_EQ_INT(ckpt_writer_open(&w, path, 3, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "w.f32", CKPT_F32, 2, shape, a, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "w.bf16", CKPT_BF16, 2, shape, h, &err), 0);
  /* A text past the compact limit takes the contiguous path. */
  size_t tlen = 100000;
  char *text = malloc(tlen + 1);
  for (size_t i = 0; i < tlen; i++) text[i] = (char)('a' + i % 26);
  text[tlen] = '\0';
  CHECK_EQ_INT(ckpt_writer_put_meta(w, "config_yaml", text, &err), 0);
  CHECK_EQ_INT(ckpt_writer_finish(w, &err), 0);
  ckpt_reader *r = NULL;
  CHECK_EQ_INT(ckpt_reader_open(&r, path, &err), 0);
  if (r) {
    CHECK_EQ_INT(ckpt_reader_read_named(r, CKPT_MODEL, "w.f32", CKPT_F32, b, (size_t)R * C, &err), 0);
    CHECK(memcmp(a, b, sizeof(float) * R * C) == 0);
    CHECK_EQ_INT(ckpt_reader_read_named(r, CKPT_MODEL, "w.bf16", CKPT_F32, b, (size_t)R * C, &err), 0);
    int bad = 0;
    for (int i = 0; i < R * C; i++) bad += b[i] != grpo_bf16_to_f32(h[i]);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(ckpt_reader_read_rows(r, ckpt_reader_find(r, CKPT_MODEL, "w.f32"), 950, 50, CKPT_F32, b,
                                       (size_t)50 * C, &err), 0);
    CHECK(memcmp(a + 950 * C, b, sizeof(float) * 50 * C) == 0);
    CHECK_STR(ckpt_reader_meta(r, "config_yaml"), text);
    ckpt_reader_close(r);
  }
  int64_t step = 0;
  CHECK_EQ_INT(ckpt_verify(path, 1, &step, &err), 0);
  CHECK_EQ_INT(step, 3);
  free(a);
  free(b);
  free(h);
  free(text);
}

TEST(writer_rejects_bad_input) {
  grpo_error err;
  const char *path = tmp_path("bad.h5");
  ckpt_writer *w;
  float x[2] = {1, 2};
  const int64_t s2[1] = {2}, sneg[1] = {-1};
  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &err), 0);
  const char *bad_names[] = {"", "a/b", ".", ".."};
  for (int i = 0; i < 4; i++) {
    CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, bad_names[i], CKPT_F32, 1, s2, x, &err), GRPO_EINVAL);
    CHECK(strstr(err.msg, path) != NULL);
  }
  ckpt_writer_abort(w);
  CHECK(access(path, F_OK) != 0);

  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "a.b", CKPT_F32, 1, s2, x, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "a.b", CKPT_F32, 1, s2, x, &err), GRPO_EINVAL);
  CHECK(strstr(err.msg, "/model/a.b written twice") != NULL);
  CHECK_EQ_INT(ckpt_writer_finish(w, &err), GRPO_EINVAL); /* poisoned: nothing is kept */
  CHECK(strstr(err.msg, "checkpoint not written") != NULL);
  CHECK(access(path, F_OK) != 0);

  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "neg", CKPT_F32, 1, sneg, x, &err), GRPO_EINVAL);
  ckpt_writer_abort(w);
  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "deep", CKPT_F32, 9, s2, x, &err), GRPO_EINVAL);
  ckpt_writer_abort(w);
  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_i64(w, "step", 5, &err), GRPO_EINVAL); /* reserved */
  ckpt_writer_abort(w);
  char big[CKPT_STR_MAX + 1];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK_EQ_INT(ckpt_writer_open(&w, path, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_str(w, "long", big, &err), GRPO_EINVAL);
  ckpt_writer_abort(w);
  CHECK_EQ_INT(ckpt_writer_open(&w, "/nonexistent_dir_grpo/x.h5", 1, &err), GRPO_EIO);
  CHECK(strstr(err.msg, "/nonexistent_dir_grpo/x.h5") != NULL);
}

static int open_fails_naming(const char *path, int code, const char *needle) {
  grpo_error err;
  grpo_error_clear(&err);
  ckpt_reader *r = NULL;
  int rc = ckpt_reader_open(&r, path, &err);
  if (r) ckpt_reader_close(r);
  int ok = rc != GRPO_OK && strstr(err.msg, path) && (!code || rc == code) &&
           (!needle || strstr(err.msg, needle));
  if (!ok) fprintf(stderr, "  open(%s) -> %d '%s' (want %d, '%s')\n", path, rc, err.msg, code, needle ? needle : "");
  return ok;
}

TEST(reader_errors_name_the_file) {
  grpo_error err;
  CHECK(open_fails_naming(tmp_path("does_not_exist.h5"), GRPO_ENOTFOUND, "No such file"));
  CHECK(open_fails_naming(g_dir, GRPO_EINVAL, "is a directory"));
  const char *text = tmp_path("text.h5");
  spit(text, (const unsigned char *)"seed: 1\nnot hdf5 at all\n", 24);
  CHECK(open_fails_naming(text, GRPO_EFORMAT, "not an HDF5 file"));
  const char *empty = tmp_path("empty.h5");
  spit(empty, (const unsigned char *)"", 0);
  CHECK(open_fails_naming(empty, GRPO_EFORMAT, NULL));

  /* Truncated: every cut of a valid file is refused, with HDF5's reason. */
  const char *full = tmp_path("full.h5");
  CHECK_EQ_INT(write_sample(full, &err), 0);
  size_t n = 0;
  unsigned char *data = slurp(full, &n);
  CHECK(data && n > 1000);
  const char *cut = tmp_path("cut.h5");
  size_t cuts[] = {n - 1, n / 2, 2048, 600, 100, 8};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    spit(cut, data, cuts[i]);
    CHECK(open_fails_naming(cut, GRPO_EFORMAT, NULL));
  }
  spit(cut, data, n / 2);
  CHECK(open_fails_naming(cut, GRPO_EFORMAT, "(HDF5: truncated file: eof = "));
  free(data);

  /* Wrong version and foreign HDF5 files, made with HDF5 directly. */
  const char *ver = tmp_path("ver.h5");
  CHECK_EQ_INT(write_sample(ver, &err), 0);
  hid_t f = H5Fopen(ver, H5F_ACC_RDWR, H5P_DEFAULT);
  /* Rewriting the attribute in place trips an HDF5 1.10 bug; replace it. */
  CHECK(H5Adelete_by_name(f, "/meta", "format_version", H5P_DEFAULT) >= 0);
  hid_t sp0 = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(f, "/meta", "format_version", H5T_STD_I64LE, sp0, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
  int64_t v99 = 99;
  CHECK(H5Awrite(a, H5T_NATIVE_INT64, &v99) >= 0);
  H5Aclose(a);
  H5Sclose(sp0);
  H5Fclose(f);
  CHECK(open_fails_naming(ver, GRPO_EFORMAT, "format_version 99 is not supported"));
  CHECK(open_fails_naming(ver, GRPO_EFORMAT, "newer grpo"));

  const char *foreign = tmp_path("foreign.h5");
  f = H5Fcreate(foreign, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[1] = {3};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t ds = H5Dcreate2(f, "weights", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Fclose(f);
  CHECK(open_fails_naming(foreign, GRPO_EFORMAT, "not a grpo checkpoint"));
  CHECK_EQ_INT(ckpt_verify(foreign, 0, NULL, &err), GRPO_EFORMAT);
}

/* Everything a checkpoint holds, as one comparable record. */
typedef struct loaded {
  int rc;
  char msg[1024];
  float *data; /* all tensors, as f32, concatenated */
  size_t n;
  char text[8192];
} loaded;

static void load_all(const char *path, loaded *out) {
  grpo_error err;
  grpo_error_clear(&err);
  memset(out, 0, sizeof *out);
  ckpt_reader *r = NULL;
  out->rc = ckpt_reader_open(&r, path, &err);
  size_t len = 0;
  for (int i = 0; out->rc == 0 && i < ckpt_reader_num_tensors(r); i++) {
    const ckpt_tensor_info *t = ckpt_reader_tensor(r, i);
    out->data = realloc(out->data, sizeof(float) * (out->n + (size_t)t->numel + 1));
    out->rc = ckpt_reader_read(r, t, CKPT_F32, out->data + out->n, (size_t)t->numel, &err);
    out->n += (size_t)t->numel;
    len += (size_t)snprintf(out->text + len, sizeof out->text - len, "%d %s %d;", (int)t->group, t->name,
                            (int)t->dtype);
  }
  if (out->rc == 0) {
    len += (size_t)snprintf(out->text + len, sizeof out->text - len, "step %lld v %lld %s;",
                            (long long)ckpt_reader_step(r), (long long)ckpt_reader_format_version(r),
                            ckpt_reader_producer(r));
    for (int i = 0; i < ckpt_reader_num_scalars(r); i++) {
      const ckpt_scalar *s = ckpt_reader_scalar(r, i);
      len += (size_t)snprintf(out->text + len, sizeof out->text - len, "%s=%lld/%a/%s;", s->name,
                              (long long)s->i64, s->f64, s->str ? s->str : "");
    }
    size_t nrng;
    const uint64_t *rng = ckpt_reader_rng(r, &nrng);
    for (size_t i = 0; i < nrng; i++)
      len += (size_t)snprintf(out->text + len, sizeof out->text - len, "%llx,", (unsigned long long)rng[i]);
    for (int i = 0; i < ckpt_reader_num_meta(r); i++)
      len += (size_t)snprintf(out->text + len, sizeof out->text - len, "%s=%s;", ckpt_reader_meta_key(r, i),
                              ckpt_reader_meta(r, ckpt_reader_meta_key(r, i)));
  }
  snprintf(out->msg, sizeof out->msg, "%s", err.msg);
  if (r) ckpt_reader_close(r);
}

/* Flipped bytes anywhere are either reported (naming the file) or provably
 * harmless (everything reads back identical): never silently wrong data. */
static void flip_trials(const char *src, int trials, uint32_t seed_tag, int *detected, int *harmless) {
  size_t n = 0;
  unsigned char *orig = slurp(src, &n);
  unsigned char *copy = malloc(n);
  loaded ref, got;
  load_all(src, &ref);
  CHECK_EQ_INT(ref.rc, 0);
  grpo_rng_stream rs;
  grpo_rng_stream_init(&rs, 2026, GRPO_RNG_TEST, seed_tag, 0);
  const char *dst = tmp_path("flipped.h5");
  for (int t = 0; t < trials; t++) {
    memcpy(copy, orig, n);
    int flips = 1 + (int)grpo_rng_stream_below(&rs, 4);
    for (int k = 0; k < flips; k++) copy[grpo_rng_stream_below(&rs, (uint32_t)n)] ^= (unsigned char)(1 + grpo_rng_stream_below(&rs, 255));
    spit(dst, copy, n);
    load_all(dst, &got);
    if (got.rc != 0) {
      (*detected)++;
      CHECK_MSG(strstr(got.msg, dst) != NULL, "error does not name the file: %s", got.msg);
    } else {
      (*harmless)++;
      CHECK_MSG(got.n == ref.n && memcmp(got.data, ref.data, sizeof(float) * ref.n) == 0 &&
                    strcmp(got.text, ref.text) == 0,
                "trial %d: corrupt file read back different data without an error", t);
    }
    free(got.data);
  }
  free(ref.data);
  free(orig);
  free(copy);
}

TEST(corruption_is_detected) {
  grpo_error err;
  /* A flip in the middle of a 1 MB tensor: metadata intact, so the file opens,
   * and the Fletcher-32 chunk checksum refuses the data. */
  const char *big = tmp_path("mid.h5");
  enum { N = 512 * 512 };
  float *x = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) x[i] = (float)i;
  ckpt_writer *w;
  const int64_t shape[2] = {512, 512};
  CHECK_EQ_INT(ckpt_writer_open(&w, big, 1, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "model.big.weight", CKPT_F32, 2, shape, x, &err), 0);
  CHECK_EQ_INT(ckpt_writer_finish(w, &err), 0);
  size_t n = 0;
  unsigned char *data = slurp(big, &n);
  for (size_t i = n / 2; i < n / 2 + 16; i++) data[i] ^= 0x5A;
  const char *bad = tmp_path("mid_bad.h5");
  spit(bad, data, n);
  free(data);
  ckpt_reader *r = NULL;
  CHECK_EQ_INT(ckpt_reader_open(&r, bad, &err), 0);
  if (r) {
    CHECK(ckpt_reader_read_named(r, CKPT_MODEL, "model.big.weight", CKPT_F32, x, N, &err) != 0);
    CHECK(strstr(err.msg, bad) && strstr(err.msg, "/model/model.big.weight"));
    CHECK_MSG(strstr(err.msg, "Fletcher32 checksum") != NULL, "%s", err.msg);
    ckpt_reader_close(r);
  }
  CHECK(ckpt_verify(bad, 1, NULL, &err) != 0);
  CHECK(strstr(err.msg, bad) != NULL);
  free(x);

  int detected = 0, harmless = 0;
  flip_trials(tmp_path("sample.h5"), 150, 1, &detected, &harmless);
  flip_trials(big, 30, 2, &detected, &harmless);
  printf("random byte flips: %d detected, %d in unused bytes (data identical)\n", detected, harmless);
  CHECK(detected > 100);
}

static void write_step(const char *dir, int64_t step, int keep) {
  grpo_error err;
  ckpt_writer *w;
  float x[4];
  for (int i = 0; i < 4; i++) x[i] = (float)(step * 10 + i);
  const int64_t shape[1] = {4};
  CHECK_EQ_INT(ckpt_writer_begin(&w, dir, step, keep, &err), 0);
  CHECK_EQ_INT(ckpt_writer_put_tensor(w, CKPT_MODEL, "x", CKPT_F32, 1, shape, x, &err), 0);
  CHECK_EQ_INT(ckpt_writer_finish(w, &err), 0);
}

static int exists_in_dir(const char *dir, const char *name) {
  char p[2048];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static void read_text(const char *dir, const char *name, char *buf, size_t cap) {
  char p[2048];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  size_t n = 0;
  unsigned char *d = slurp(p, &n);
  snprintf(buf, cap, "%.*s", d ? (int)n : 0, d ? (const char *)d : "");
  free(d);
}

TEST(publish_rotate_resolve) {
  grpo_error err;
  char dir[1024], path[2048], text[256];
  snprintf(dir, sizeof dir, "%s/run/checkpoints", g_dir); /* parents are created */
  int64_t step = -1;
  CHECK_EQ_INT(ckpt_resolve(dir, ALL, path, sizeof path, &step, &err), GRPO_ENOTFOUND);
  for (int s = 1; s <= 5; s++) write_step(dir, s, 3);
  CHECK(!exists_in_dir(dir, "step_00000001.h5") && !exists_in_dir(dir, "step_00000002.h5"));
  CHECK(exists_in_dir(dir, "step_00000003.h5") && exists_in_dir(dir, "step_00000005.h5"));
  CHECK(!exists_in_dir(dir, "step_00000005.h5.tmp") && !exists_in_dir(dir, "latest.tmp"));
  read_text(dir, "latest", text, sizeof text);
  CHECK_STR(text, "step_00000005.h5\n");
  CHECK_EQ_INT(ckpt_resolve(dir, ALL, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 5);
  CHECK(strstr(path, "/step_00000005.h5") != NULL);

  /* An aborted writer leaves nothing behind. */
  ckpt_writer *w;
  CHECK_EQ_INT(ckpt_writer_begin(&w, dir, 6, 3, &err), 0);
  CHECK(exists_in_dir(dir, "step_00000006.h5.tmp"));
  ckpt_writer_abort(w);
  CHECK(!exists_in_dir(dir, "step_00000006.h5.tmp") && !exists_in_dir(dir, "step_00000006.h5"));
  /* A failed put means finish publishes nothing and leaves latest alone. */
  CHECK_EQ_INT(ckpt_writer_begin(&w, dir, 6, 3, &err), 0);
  CHECK(ckpt_writer_put_tensor(w, CKPT_MODEL, "a/b", CKPT_F32, 0, NULL, text, &err) != 0);
  CHECK(ckpt_writer_finish(w, &err) != 0);
  CHECK(!exists_in_dir(dir, "step_00000006.h5") && !exists_in_dir(dir, "step_00000006.h5.tmp"));
  read_text(dir, "latest", text, sizeof text);
  CHECK_STR(text, "step_00000005.h5\n");

  grpo_log_level old = grpo_log_get_level();
  grpo_log_set_level(GRPO_LOG_ERROR); /* the fallbacks below warn on purpose */
  /* latest names a truncated file: fall back to the newest valid one. */
  char p5[2048];
  snprintf(p5, sizeof p5, "%s/step_00000005.h5", dir);
  spit(p5, (const unsigned char *)"\x89HDF\r\n\x1a\n", 8);
  CHECK_EQ_INT(ckpt_resolve(dir, ALL, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 4);
  /* latest missing, stale temporaries around: they are deleted and ignored. */
  read_text(dir, "latest", text, sizeof text);
  char pl[2048];
  snprintf(pl, sizeof pl, "%s/latest", dir);
  unlink(pl);
  char stale[2048];
  snprintf(stale, sizeof stale, "%s/step_00000009.h5.tmp", dir);
  spit(stale, (const unsigned char *)"partial", 7);
  snprintf(stale, sizeof stale, "%s/latest.tmp", dir);
  spit(stale, (const unsigned char *)"step_00000009.h5\n", 17);
  CHECK_EQ_INT(ckpt_resolve(dir, CKPT_RESOLVE_VERIFY_ALL, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 4);
  CHECK(exists_in_dir(dir, "step_00000009.h5.tmp")); /* without CLEAN_TMP a live writer is left alone */
  CHECK_EQ_INT(ckpt_resolve(dir, ALL, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 4);
  CHECK(!exists_in_dir(dir, "step_00000009.h5.tmp") && !exists_in_dir(dir, "latest.tmp"));
  /* A file whose content disagrees with its name is not trusted. */
  char p4[2048], p8[2048];
  snprintf(p4, sizeof p4, "%s/step_00000004.h5", dir);
  snprintf(p8, sizeof p8, "%s/step_00000008.h5", dir);
  size_t n;
  unsigned char *d4 = slurp(p4, &n);
  spit(p8, d4, n);
  free(d4);
  CHECK_EQ_INT(ckpt_resolve(dir, ALL, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 4);
  CHECK(strstr(path, "step_00000004.h5") != NULL);
  unlink(p8);
  /* latest with garbage in it. */
  spit(pl, (const unsigned char *)"../../etc/passwd\n", 17);
  CHECK_EQ_INT(ckpt_resolve(dir, CKPT_RESOLVE_CLEAN_TMP, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 4);
  grpo_log_set_level(old);

  /* Rotation never deletes the file latest names, even when it is old. */
  write_step(dir, 10, 0);
  write_step(dir, 11, 0);
  spit(pl, (const unsigned char *)"step_00000003.h5\n", 17);
  CHECK_EQ_INT(ckpt_rotate(dir, 1, &err), 0);
  CHECK(exists_in_dir(dir, "step_00000011.h5") && exists_in_dir(dir, "step_00000003.h5"));
  CHECK(!exists_in_dir(dir, "step_00000010.h5") && !exists_in_dir(dir, "step_00000004.h5"));
  CHECK_EQ_INT(ckpt_resolve(dir, ALL, path, sizeof path, &step, &err), 0);
  CHECK_EQ_INT(step, 3); /* latest wins while it is valid */
  char missing[2048];
  snprintf(missing, sizeof missing, "%s/nope", g_dir);
  CHECK_EQ_INT(ckpt_resolve(missing, ALL, path, sizeof path, &step, &err), GRPO_ENOTFOUND);
  CHECK(strstr(err.msg, missing) != NULL);
  remove_tree(dir);
  snprintf(path, sizeof path, "%s/run", g_dir);
  rmdir(path);
}

TEST(summary_text) {
  grpo_error err;
  const char *path = tmp_path("summary.h5");
  CHECK_EQ_INT(write_sample(path, &err), 0);
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  CHECK_EQ_INT(ckpt_summary(path, out, &err), 0);
  fclose(out);
  CHECK(strstr(text, "step            7\n") != NULL);
  CHECK(strstr(text, "format_version  1\n") != NULL);
  CHECK(strstr(text, "model: 5 tensors, 53 parameters") != NULL);
  CHECK(strstr(text, "optimizer state: present (m: 1 tensors, v: 1 tensors)") != NULL);
  CHECK(strstr(text, "data_cursor              123\n") != NULL);
  CHECK(strstr(text, "reward_mean              0.375\n") != NULL);
  CHECK(strstr(text, "note                     \"hello\"") != NULL);
  CHECK(strstr(text, "tokenizer_hash           " SAMPLE_TOKHASH) != NULL);
  CHECK(strstr(text, "config:\n" SAMPLE_CONFIG) != NULL);
  /* Norms computed here from the formulas: sqrt(sum x^2). */
  double se = 0, sq = 0, sn = 0;
  for (int i = 0; i < 32; i++) se += (double)sample_embed(i) * sample_embed(i);
  for (int i = 0; i < 16; i++) sq += (double)sample_q(i) * sample_q(i);
  for (int i = 0; i < 4; i++) sn += (double)sample_norm(i) * sample_norm(i);
  char line[256];
  snprintf(line, sizeof line, "%-48s [8, 4]             bfloat16  norm %.6g\n", "model.embed_tokens.weight", sqrt(se));
  CHECK_MSG(strstr(text, line) != NULL, "missing line '%s' in:\n%s", line, text);
  snprintf(line, sizeof line, "[4, 4]             float32   norm %.6g\n", sqrt(sq));
  CHECK(strstr(text, line) != NULL);
  snprintf(line, sizeof line, "model.norm.weight%*s [4]                float32   norm %.6g\n", 31, "", sqrt(sn));
  CHECK(strstr(text, line) != NULL);
  CHECK(strstr(text, "lm_head.scale") && strstr(text, "norm 2.5\n"));
  CHECK(strstr(text, "empty.bias") && strstr(text, "[0]"));
  free(text);

  text = NULL;
  out = open_memstream(&text, &len);
  const char *gone = tmp_path("gone.h5");
  CHECK_EQ_INT(ckpt_summary(gone, out, &err), GRPO_ENOTFOUND);
  fclose(out);
  CHECK(strstr(err.msg, gone) != NULL);
  free(text);
}

int main(void) {
  g_dir = make_tmpdir();
  if (!g_dir) {
    fprintf(stderr, "cannot create a temp directory\n");
    return 1;
  }
  RUN(bf16_round_to_nearest_even);
  RUN(roundtrip_sample);
  RUN(writes_are_deterministic);
  RUN(roundtrip_chunked);
  RUN(writer_rejects_bad_input);
  RUN(reader_errors_name_the_file);
  RUN(corruption_is_detected);
  RUN(publish_rotate_resolve);
  RUN(summary_text);
  remove_tree(g_dir);
  free(g_dir);
  return test_summary();
}
