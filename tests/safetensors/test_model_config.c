/* model/model_config and model/params against the HF-written fixtures
 * (tests/fixtures/models/, tools/make_model_fixtures.py) and hand-made configs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"
#include "model/model_config.h"
#include "model/params.h"
#include "test.h"

static const char *MODELS[] = {"qwen2", "qwen3", "llama"};

static int parse(model_config *c, const char *json, grpo_error *e) {
  return model_config_parse(c, json, strlen(json), "test.json", e);
}

TEST(fixture_configs) {
  grpo_error e;
  model_config c;
  /* qwen2: new spelling (rope_parameters, dtype), EOS list, tied */
  CHECK_EQ_INT(model_config_load(&c, "tests/fixtures/models/qwen2/config.json", &e), GRPO_OK);
  CHECK_EQ_INT(c.arch, MODEL_ARCH_QWEN2);
  CHECK_EQ_INT(c.hidden, 64);
  CHECK_EQ_INT(c.n_layers, 2);
  CHECK_EQ_INT(c.n_heads, 4);
  CHECK_EQ_INT(c.n_kv_heads, 2);
  CHECK_EQ_INT(c.head_dim, 16);
  CHECK_EQ_INT(c.ffn, 128);
  CHECK_EQ_INT(c.vocab, 300);
  CHECK_EQ_INT(c.qkv_bias, 1);
  CHECK_EQ_INT(c.o_bias, 0);
  CHECK_EQ_INT(c.qk_norm, 0);
  CHECK_EQ_INT(c.tie_embeddings, 1);
  CHECK_NEAR(c.rope_theta, 1e6, 0);
  CHECK_NEAR(c.rms_eps, 1e-6f, 0);
  CHECK_EQ_INT(c.n_eos, 2);
  CHECK_EQ_INT(c.eos_ids[0], 2);
  CHECK_EQ_INT(c.eos_ids[1], 3);
  CHECK_EQ_INT(c.bos_id, 1);
  CHECK_EQ_INT(c.pad_id, 0);
  CHECK_STR(c.dtype, "float32");
  CHECK_STR(c.architecture, "Qwen2ForCausalLM");
  /* qwen3: old spelling, explicit head_dim != H / nh, untied */
  CHECK_EQ_INT(model_config_load(&c, "tests/fixtures/models/qwen3/config.json", &e), GRPO_OK);
  CHECK_EQ_INT(c.arch, MODEL_ARCH_QWEN3);
  CHECK_EQ_INT(c.head_dim, 32);
  CHECK_EQ_INT(c.qk_norm, 1);
  CHECK_EQ_INT(c.qkv_bias, 0);
  CHECK_EQ_INT(c.tie_embeddings, 0);
  CHECK_EQ_INT(c.rope_type, MODEL_ROPE_DEFAULT);
  CHECK_EQ_INT(c.n_eos, 1);
  /* llama: old spelling with llama3 rope scaling */
  CHECK_EQ_INT(model_config_load(&c, "tests/fixtures/models/llama/config.json", &e), GRPO_OK);
  CHECK_EQ_INT(c.arch, MODEL_ARCH_LLAMA);
  CHECK_EQ_INT(c.rope_type, MODEL_ROPE_LLAMA3);
  CHECK_NEAR(c.rope_factor, 8, 0);
  CHECK_NEAR(c.rope_low_freq_factor, 1, 0);
  CHECK_NEAR(c.rope_high_freq_factor, 4, 0);
  CHECK_EQ_INT(c.rope_orig_max_pos, 64);
  CHECK_NEAR(c.rope_theta, 5e5, 0);
  CHECK_NEAR(c.rms_eps, 1e-5f, 0);
  CHECK_EQ_INT(c.ffn, 144);
}

/* inv_freq against HF's (model.rotary_emb.inv_freq) stored in each fixture */
TEST(rope_inv_freq_matches_hf) {
  for (int m = 0; m < 3; m++) {
    char path[256];
    grpo_error e;
    model_config c;
    snprintf(path, sizeof path, "tests/fixtures/models/%s/config.json", MODELS[m]);
    CHECK_EQ_INT(model_config_load(&c, path, &e), GRPO_OK);
    snprintf(path, sizeof path, "tests/fixtures/models/%s/causal.safetensors", MODELS[m]);
    ckpt_st_model st;
    CHECK_EQ_INT(ckpt_st_open(&st, path, &e), GRPO_OK);
    float want[64], got[64];
    CHECK_EQ_INT(ckpt_st_read_f32(&st, "expect.inv_freq", want, (size_t)c.head_dim / 2, &e), GRPO_OK);
    model_config_rope_inv_freq(&c, got);
    for (int j = 0; j < c.head_dim / 2; j++)
      CHECK_MSG(fabsf(got[j] - want[j]) <= 2e-7f * want[j], "%s inv_freq[%d] = %.9g, HF %.9g",
                MODELS[m], j, got[j], want[j]);
    ckpt_st_close(&st);
  }
}

/* The llama3 band by hand: theta 10000, d = 8 -> inv_freq 1, .1, .01, .001;
 * wavelengths 6.28, 62.8, 628, 6283; orig 1000, low 1 (1000), high 4 (250):
 * j = 0, 1 kept, j = 2 interpolated, j = 3 divided by factor 8. */
TEST(rope_llama3_hand_computed) {
  model_config c;
  model_config_defaults(&c, MODEL_ARCH_LLAMA);
  c.hidden = 16;
  c.n_layers = 1;
  c.n_heads = c.n_kv_heads = 2;
  c.head_dim = 8;
  c.ffn = 8;
  c.vocab = 8;
  c.rope_theta = 10000;
  c.rope_type = MODEL_ROPE_LLAMA3;
  c.rope_factor = 8;
  c.rope_low_freq_factor = 1;
  c.rope_high_freq_factor = 4;
  c.rope_orig_max_pos = 1000;
  float f[4];
  model_config_rope_inv_freq(&c, f);
  CHECK_NEAR(f[0], 1.0, 1e-7);
  CHECK_NEAR(f[1], 0.1, 1e-8);
  double wl = 2 * 3.14159265358979 / 0.01, s = (1000.0 / wl - 1) / 3;
  CHECK_NEAR(f[2], (1 - s) * 0.01 / 8 + s * 0.01, 1e-8);
  CHECK_NEAR(f[3], 0.001 / 8, 1e-10);
}

TEST(defaults_and_spellings) {
  grpo_error e;
  model_config c;
  /* no num_key_value_heads -> MHA; no head_dim -> H / nh; rope_theta default */
  CHECK_EQ_INT(parse(&c, "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,"
                         "\"num_attention_heads\":8,\"intermediate_size\":32,\"vocab_size\":10,"
                         "\"eos_token_id\":null}", &e), GRPO_OK);
  CHECK_EQ_INT(c.n_kv_heads, 8);
  CHECK_EQ_INT(c.head_dim, 8);
  CHECK_EQ_INT(c.n_eos, 0);
  CHECK_NEAR(c.rope_theta, 10000, 0);
  /* qwen3 without head_dim: Qwen3Config's default 128 */
  CHECK_EQ_INT(parse(&c, "{\"model_type\":\"qwen3\",\"hidden_size\":64,\"num_hidden_layers\":1,"
                         "\"num_attention_heads\":8,\"num_key_value_heads\":null,"
                         "\"intermediate_size\":32,\"vocab_size\":10}", &e), GRPO_OK);
  CHECK_EQ_INT(c.head_dim, 128);
  CHECK_EQ_INT(c.n_kv_heads, 8);
  /* new spelling: rope_parameters wins; dtype wins over torch_dtype */
  CHECK_EQ_INT(parse(&c, "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,"
                         "\"num_attention_heads\":4,\"intermediate_size\":32,\"vocab_size\":10,"
                         "\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,"
                         "\"factor\":32,\"low_freq_factor\":1,\"high_freq_factor\":4,"
                         "\"original_max_position_embeddings\":8192},"
                         "\"torch_dtype\":\"float16\",\"dtype\":\"bfloat16\",\"mlp_bias\":true,"
                         "\"attention_bias\":true}", &e), GRPO_OK);
  CHECK_EQ_INT(c.rope_type, MODEL_ROPE_LLAMA3);
  CHECK_NEAR(c.rope_theta, 500000, 0);
  CHECK_NEAR(c.rope_factor, 32, 0);
  CHECK_EQ_INT(c.rope_orig_max_pos, 8192);
  CHECK_STR(c.dtype, "bfloat16");
  CHECK_EQ_INT(c.mlp_bias, 1);
  CHECK_EQ_INT(c.qkv_bias, 1);
  CHECK_EQ_INT(c.o_bias, 1);
  /* older "type" key inside rope_scaling */
  CHECK_EQ_INT(parse(&c, "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":1,"
                         "\"num_attention_heads\":4,\"intermediate_size\":32,\"vocab_size\":10,"
                         "\"rope_theta\":1000000.0,\"rope_scaling\":{\"type\":\"default\"},"
                         "\"attention_bias\":false,\"eos_token_id\":151645}", &e), GRPO_OK);
  CHECK_EQ_INT(c.qkv_bias, 1); /* Qwen2 always has q/k/v biases */
  CHECK_EQ_INT(c.n_eos, 1);
  CHECK_EQ_INT(c.eos_ids[0], 151645);
}

/* every error names the file and the field */
TEST(errors_name_field) {
  static const struct { const char *json, *field; int code; } cases[] = {
    {"{\"model_type\":\"llama\",\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10}", "hidden_size", GRPO_ENOTFOUND},
    {"{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"num_hidden_layers\":1,"
     "\"num_attention_heads\":4,\"intermediate_size\":32,\"vocab_size\":10}", "hidden_size", GRPO_EPARSE},
    {"{\"model_type\":\"llama\",\"hidden_size\":64.5,\"num_hidden_layers\":1,"
     "\"num_attention_heads\":4,\"intermediate_size\":32,\"vocab_size\":10}", "hidden_size", GRPO_EPARSE},
    {"{\"model_type\":\"gpt2\",\"hidden_size\":64}", "model_type", GRPO_EUNSUPPORTED},
    {"{\"hidden_size\":64}", "model_type", GRPO_ENOTFOUND},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"num_key_value_heads\":3,\"intermediate_size\":32,\"vocab_size\":10}", "num_key_value_heads", GRPO_EINVAL},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":0,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10}", "num_hidden_layers", GRPO_EINVAL},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}",
     "rope_scaling.rope_type", GRPO_EUNSUPPORTED},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10,\"rope_parameters\":{\"rope_type\":\"llama3\",\"factor\":4}}",
     "rope_parameters.low_freq_factor", GRPO_ENOTFOUND},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10,\"eos_token_id\":[1,\"x\"]}", "eos_token_id[1]", GRPO_EPARSE},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10,\"tie_word_embeddings\":1}", "tie_word_embeddings", GRPO_EPARSE},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10,\"hidden_act\":\"gelu\"}", "hidden_act", GRPO_EUNSUPPORTED},
    {"{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"intermediate_size\":32,\"vocab_size\":10,\"use_sliding_window\":true}", "use_sliding_window", GRPO_EUNSUPPORTED},
    {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
     "\"head_dim\":15,\"intermediate_size\":32,\"vocab_size\":10}", "head_dim", GRPO_EINVAL},
    {"{\"model_type\":\"llama\",", "JSON", GRPO_EPARSE},
    {"[1,2]", "object", GRPO_EPARSE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    grpo_error e;
    grpo_error_clear(&e);
    model_config c;
    int rc = parse(&c, cases[i].json, &e);
    CHECK_MSG(rc == cases[i].code, "case %zu: rc %d, want %d (%s)", i, rc, cases[i].code, e.msg);
    CHECK_MSG(strstr(e.msg, "test.json") != NULL, "case %zu: no file in \"%s\"", i, e.msg);
    CHECK_MSG(strstr(e.msg, cases[i].field) != NULL, "case %zu: no \"%s\" in \"%s\"", i,
              cases[i].field, e.msg);
  }
  grpo_error e;
  model_config c;
  CHECK_EQ_INT(model_config_load(&c, "tests/fixtures/models/nope/config.json", &e), GRPO_ENOTFOUND);
  CHECK(strstr(e.msg, "nope/config.json") != NULL);
}

static int config_equal(const model_config *a, const model_config *b) {
  return a->arch == b->arch && a->hidden == b->hidden && a->n_layers == b->n_layers &&
         a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
         a->ffn == b->ffn && a->vocab == b->vocab && a->max_pos == b->max_pos &&
         a->rms_eps == b->rms_eps && a->rope_theta == b->rope_theta && a->rope_type == b->rope_type &&
         a->rope_factor == b->rope_factor && a->rope_low_freq_factor == b->rope_low_freq_factor &&
         a->rope_high_freq_factor == b->rope_high_freq_factor &&
         a->rope_orig_max_pos == b->rope_orig_max_pos && a->qkv_bias == b->qkv_bias &&
         a->o_bias == b->o_bias && a->mlp_bias == b->mlp_bias && a->qk_norm == b->qk_norm &&
         a->tie_embeddings == b->tie_embeddings && a->bos_id == b->bos_id &&
         a->pad_id == b->pad_id && a->n_eos == b->n_eos &&
         memcmp(a->eos_ids, b->eos_ids, sizeof a->eos_ids) == 0 && strcmp(a->dtype, b->dtype) == 0 &&
         strcmp(a->architecture, b->architecture) == 0;
}

TEST(write_back_round_trip) {
  for (int m = 0; m < 3; m++) {
    char path[256];
    grpo_error e;
    model_config a, b;
    snprintf(path, sizeof path, "tests/fixtures/models/%s/config.json", MODELS[m]);
    CHECK_EQ_INT(model_config_load(&a, path, &e), GRPO_OK);
    char *json = model_config_to_json(&a);
    CHECK(json != NULL);
    CHECK_EQ_INT(parse(&b, json, &e), GRPO_OK);
    CHECK_MSG(config_equal(&a, &b), "%s: config changed through to_json:\n%s", MODELS[m], json);
    free(json);
  }
}

/* the parameter table equals the tensors transformers saved (names and shapes),
 * and the parameter count equals the fixture's */
TEST(param_table_matches_hf_files) {
  static const size_t want_params[] = {93504, 137152, 118592}; /* make_model_fixtures output */
  for (int m = 0; m < 3; m++) {
    char path[256];
    grpo_error e;
    model_config c;
    snprintf(path, sizeof path, "tests/fixtures/models/%s/config.json", MODELS[m]);
    CHECK_EQ_INT(model_config_load(&c, path, &e), GRPO_OK);
    model_params p;
    CHECK_EQ_INT(model_params_init(&p, &c, &e), GRPO_OK);
    snprintf(path, sizeof path, "tests/fixtures/models/%s", MODELS[m]);
    ckpt_st_model st;
    CHECK_EQ_INT(ckpt_st_open(&st, path, &e), GRPO_OK);
    CHECK_EQ_INT(p.n, st.n);
    size_t count = 0, end = 0;
    for (int i = 0; i < p.n; i++) {
      const model_param_info *pi = &p.info[i];
      const ckpt_st_tensor *t = ckpt_st_find(&st, pi->name);
      CHECK_MSG(t != NULL, "%s: %s not in model.safetensors", MODELS[m], pi->name);
      if (t) {
        CHECK_EQ_INT(t->ndim, pi->ndim);
        CHECK_EQ_INT(t->shape[0], pi->shape[0]);
        if (pi->ndim == 2) CHECK_EQ_INT(t->shape[1], pi->shape[1]);
      }
      CHECK_EQ_INT(pi->offset % MODEL_PARAM_ALIGN, 0);
      CHECK(pi->offset >= end); /* increasing, no overlap */
      end = pi->offset + pi->numel;
      CHECK(model_params_find(&p, pi->name) == pi);
      count += pi->numel;
    }
    CHECK(end <= p.total);
    CHECK_EQ_INT(count, want_params[m]);
    CHECK_EQ_INT(model_config_num_params(&c), want_params[m]);
    /* lm_head aliasing */
    const model_param_info *lm = model_params_find(&p, "lm_head.weight");
    CHECK(lm != NULL);
    if (c.tie_embeddings) {
      CHECK(lm == model_params_find(&p, "model.embed_tokens.weight"));
      CHECK_EQ_INT(p.lm_head, p.embed);
    } else {
      CHECK(p.lm_head != p.embed);
      CHECK_EQ_INT(lm->offset, p.lm_head);
    }
    /* per-layer offsets agree with the named entries */
    CHECK_EQ_INT(p.layers[1].q_w, model_params_find(&p, "model.layers.1.self_attn.q_proj.weight")->offset);
    CHECK_EQ_INT(p.layers[0].down_w, model_params_find(&p, "model.layers.0.mlp.down_proj.weight")->offset);
    CHECK((p.layers[0].q_b != MODEL_NO_PARAM) == (c.qkv_bias != 0));
    CHECK((p.layers[0].q_norm != MODEL_NO_PARAM) == (c.qk_norm != 0));
    CHECK(model_params_find(&p, "model.layers.2.mlp.up_proj.weight") == NULL);
    CHECK(model_params_find(&p, "model.layers.0.mlp.up_proj") == NULL);
    CHECK(model_params_find(&p, "") == NULL);
    /* gradients: same layout, zeroed */
    CHECK(model_params_grad_tensor(&p, "model.norm.weight") == NULL);
    CHECK_EQ_INT(model_params_alloc_grad(&p, &e), GRPO_OK);
    CHECK(model_params_grad_tensor(&p, "model.norm.weight") - p.grad ==
          model_params_tensor(&p, "model.norm.weight") - p.data);
    CHECK(p.grad[p.total - 1] == 0.0f);
    ckpt_st_close(&st);
    model_params_free(&p);
  }
}

TEST(random_init_deterministic) {
  grpo_error e;
  model_config c;
  CHECK_EQ_INT(model_config_load(&c, "tests/fixtures/models/qwen2/config.json", &e), GRPO_OK);
  model_params a, b;
  CHECK_EQ_INT(model_params_init(&a, &c, &e), GRPO_OK);
  CHECK_EQ_INT(model_params_init(&b, &c, &e), GRPO_OK);
  model_params_init_random(&a, 42, 0.02f);
  model_params_init_random(&b, 42, 0.02f);
  CHECK(memcmp(a.data, b.data, a.total * sizeof(float)) == 0);
  model_params_init_random(&b, 43, 0.02f);
  CHECK(memcmp(a.data, b.data, a.total * sizeof(float)) != 0);
  /* embedding ~ N(0, 0.02^2); norms 1; biases 0; padding 0 */
  const model_param_info *emb = model_params_find(&a, "model.embed_tokens.weight");
  double s = 0, s2 = 0;
  for (size_t i = 0; i < emb->numel; i++) {
    double v = a.data[emb->offset + i];
    s += v;
    s2 += v * v;
  }
  double mean = s / (double)emb->numel, sd = sqrt(s2 / (double)emb->numel - mean * mean);
  CHECK_NEAR(mean, 0, 0.001);
  CHECK_NEAR(sd, 0.02, 0.001);
  CHECK(*model_params_tensor(&a, "model.layers.1.post_attention_layernorm.weight") == 1.0f);
  CHECK(*model_params_tensor(&a, "model.layers.0.self_attn.k_proj.bias") == 0.0f);
  const model_param_info *kb = model_params_find(&a, "model.layers.0.self_attn.k_proj.bias");
  for (size_t i = kb->offset + kb->numel; i % MODEL_PARAM_ALIGN; i++) CHECK(a.data[i] == 0.0f);
  model_params_free(&a);
  model_params_free(&b);
}

/* released models' hub configs: parameter counts and RoPE frequencies as
 * transformers computes them (tests/safetensors/data/configs/expect.safetensors) */
TEST(released_model_configs) {
  static const char *names[] = {"qwen2.5-0.5b", "qwen3-0.6b", "llama-3.2-1b"};
  static const int head_dim[] = {64, 128, 64};
  grpo_error e;
  ckpt_st_model st;
  CHECK_EQ_INT(ckpt_st_open(&st, "tests/safetensors/data/configs/expect.safetensors", &e), GRPO_OK);
  for (int i = 0; i < 3; i++) {
    char path[256], key[128];
    model_config c;
    snprintf(path, sizeof path, "tests/safetensors/data/configs/%s.json", names[i]);
    CHECK_MSG(model_config_load(&c, path, &e) == GRPO_OK, "%s", e.msg);
    CHECK_EQ_INT(c.head_dim, head_dim[i]);
    CHECK_EQ_INT(c.tie_embeddings, 1);
    CHECK_STR(c.dtype, "bfloat16");
    snprintf(key, sizeof key, "%s.num_params", names[i]);
    const ckpt_st_tensor *t = ckpt_st_find(&st, key);
    int64_t want = 0;
    CHECK(t != NULL);
    if (t) CHECK_EQ_INT(ckpt_st_read_raw(&st, t, &want, &e), GRPO_OK);
    CHECK_EQ_INT(model_config_num_params(&c), want);
    float hf[64], got[64];
    snprintf(key, sizeof key, "%s.inv_freq", names[i]);
    CHECK_EQ_INT(ckpt_st_read_f32(&st, key, hf, (size_t)c.head_dim / 2, &e), GRPO_OK);
    model_config_rope_inv_freq(&c, got);
    for (int j = 0; j < c.head_dim / 2; j++)
      CHECK_MSG(fabsf(got[j] - hf[j]) <= 2e-7f * hf[j], "%s inv_freq[%d] = %.9g, HF %.9g",
                names[i], j, got[j], hf[j]);
  }
  model_config c;
  CHECK_EQ_INT(model_config_load(&c, "tests/safetensors/data/configs/llama-3.2-1b.json", &e), GRPO_OK);
  CHECK_EQ_INT(c.n_eos, 3);
  CHECK_EQ_INT(c.eos_ids[2], 128009);
  CHECK_EQ_INT(c.rope_orig_max_pos, 8192);
  ckpt_st_close(&st);
}

int main(void) {
  RUN(fixture_configs);
  RUN(rope_inv_freq_matches_hf);
  RUN(rope_llama3_hand_computed);
  RUN(defaults_and_spellings);
  RUN(errors_name_field);
  RUN(write_back_round_trip);
  RUN(param_table_matches_hf_files);
  RUN(random_init_deterministic);
  RUN(released_model_configs);
  return test_summary();
}
