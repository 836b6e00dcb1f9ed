#include "trainer/session.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mpi.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/hf_io.h"
#include "core/cuda/backend_cuda.h"
#include "core/log.h"
#include "tasks/arith.h"
#include "tasks/dataset.h"

static int is_dir(const char *p) {
  struct stat st;
  return p && *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_file(const char *dir, const char *name) {
  char path[1200];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return stat(path, &st) == 0;
}

static int open_tokenizer(trainer_session *s, grpo_error *err) {
  const grpo_config *c = s->cfg;
  const char *path = c->tokenizer.path;
  int kind = c->tokenizer.kind;
  if ((!path || !*path) && is_dir(c->model.path) &&
      (has_file(c->model.path, "tokenizer.json") || has_file(c->model.path, "vocab.json")))
    path = c->model.path;
  if (kind == GRPO_CFG_TOKENIZER_AUTO) kind = path && *path ? GRPO_CFG_TOKENIZER_HF : GRPO_CFG_TOKENIZER_BYTE;
  if (kind == GRPO_CFG_TOKENIZER_BYTE) {
    s->tokenizer_dir[0] = '\0';
    return model_tokenizer_byte_level(&s->tok, err);
  }
  if (!path || !*path)
    return GRPO_FAIL(err, GRPO_EINVAL,
                     "tokenizer.kind is hf but neither tokenizer.path nor an HF model.path gives the files");
  snprintf(s->tokenizer_dir, sizeof s->tokenizer_dir, "%s", path);
  return model_tokenizer_load(path, &s->tok, err);
}

static int choose_chat(trainer_session *s, grpo_error *err) {
  const grpo_config *c = s->cfg;
  memset(&s->chat, 0, sizeof s->chat);
  s->chat.enable_thinking = c->tokenizer.enable_thinking;
  s->chat.system = c->tokenizer.system_prompt && *c->tokenizer.system_prompt ? c->tokenizer.system_prompt : NULL;
  switch (c->tokenizer.chat_template) {
    case GRPO_CFG_CHAT_NONE: s->chat.kind = MODEL_CHAT_RAW; return GRPO_OK;
    case GRPO_CFG_CHAT_CHATML: s->chat.kind = MODEL_CHAT_CHATML; return GRPO_OK;
    case GRPO_CFG_CHAT_QWEN3: s->chat.kind = MODEL_CHAT_QWEN3; return GRPO_OK;
    case GRPO_CFG_CHAT_LLAMA3: s->chat.kind = MODEL_CHAT_LLAMA3; return GRPO_OK;
    default: break;
  }
  const char *jinja = model_tokenizer_chat_template(s->tok);
  if (!jinja) {
    s->chat.kind = MODEL_CHAT_RAW;
    return GRPO_OK;
  }
  int rc = model_chat_detect(jinja, &s->chat.kind, err);
  if (rc) grpo_error_prefix(err, "tokenizer.chat_template: auto");
  return rc;
}

/* The built-in model from the model section; its vocabulary covers the tokenizer. */
static int builtin_model(const trainer_session *s, model_params *p, grpo_error *err) {
  const grpo_config *c = s->cfg;
  model_config mc;
  model_arch arch = c->model.arch == GRPO_CFG_ARCH_QWEN3   ? MODEL_ARCH_QWEN3
                    : c->model.arch == GRPO_CFG_ARCH_LLAMA ? MODEL_ARCH_LLAMA
                                                            : MODEL_ARCH_QWEN2;
  model_config_defaults(&mc, arch);
  mc.hidden = (int)c->model.hidden_size;
  mc.n_layers = (int)c->model.num_layers;
  mc.n_heads = (int)c->model.num_heads;
  mc.n_kv_heads = (int)c->model.num_kv_heads;
  mc.head_dim = mc.hidden / mc.n_heads;
  mc.ffn = (int)c->model.intermediate_size;
  int32_t n_ids = model_tokenizer_n_ids(s->tok);
  mc.vocab = (n_ids + 63) / 64 * 64; /* padded rows are never sampled */
  mc.max_pos = (int)c->model.max_position_embeddings;
  mc.rope_theta = c->model.rope_theta;
  mc.tie_embeddings = c->model.tie_word_embeddings;
  int32_t eos = model_tokenizer_eos_id(s->tok);
  mc.n_eos = 0;
  if (eos >= 0) mc.eos_ids[mc.n_eos++] = eos;
  mc.pad_id = model_tokenizer_pad_id(s->tok);
  int rc = model_config_validate(&mc, "the model section of the config", err);
  if (!rc) rc = model_params_init(p, &mc, err);
  if (!rc) model_params_init_random(p, (uint64_t)c->seed, (float)c->model.init_std);
  return rc;
}

int trainer_session_load_weights(const trainer_session *s, const char *path, model_params *p, grpo_error *err) {
  if (!path || !*path) return builtin_model(s, p, err);
  char resolved[1400];
  if (is_dir(path)) {
    /* a grpo run or checkpoint directory: its latest checkpoint */
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/checkpoints", path);
    const char *dir = has_file(path, "latest") ? path : has_file(ck, "latest") ? ck : NULL;
    if (!dir) return ckpt_hf_load(path, p, err);
    int64_t step;
    int rc = ckpt_resolve(dir, 0, resolved, sizeof resolved, &step, err);
    if (rc) return grpo_error_prefix(err, "model.path");
    path = resolved;
  }
  ckpt_reader *r;
  int rc = ckpt_reader_open(&r, path, err);
  if (rc) return rc;
  rc = ckpt_load_params(r, p, err);
  ckpt_reader_close(r);
  return rc;
}

/* This process's index among the ranks on its node: the launcher's variable
 * (Open MPI, Slurm, MPICH/Hydra), else MPI_Comm_split_type(SHARED) over
 * MPI_COMM_WORLD (collective: every rank opens a session), else 0. */
static int node_local_rank(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
                                     "PMI_LOCAL_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v >= '0' && *v <= '9') return atoi(v);
  }
  int init = 0, fin = 0, world = 1, local = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (!init || fin) return 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world == 1) return 0;
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
  }
  return local;
}

/* model.device: cuda: one GPU per rank, the node-local rank modulo the
 * visible devices (CUDA_VISIBLE_DEVICES narrows what is visible; a launcher
 * that gives each rank one device makes this device 0). */
static grpo_backend *device_override;

void trainer_session_device_override(grpo_backend *be) { device_override = be; }

static int open_cuda(trainer_session *s, const grpo_config *c, grpo_error *err) {
  int n = grpo_backend_cuda_device_count();
  /* auto: bf16 activations and working weights, f32 master weights / grads / AdamW */
  grpo_cuda_options o = {.act_dtype = c->model.dtype == GRPO_CFG_DTYPE_FLOAT32 ? GRPO_F32 : GRPO_BF16};
  if (device_override) {
    if (device_override->act_dtype != o.act_dtype)
      return GRPO_FAIL(err, GRPO_EINVAL, "model.device: cuda: the stand-in backend %s computes in %s, "
                       "model.dtype asks for %s", device_override->name,
                       grpo_dtype_name(device_override->act_dtype), grpo_dtype_name(o.act_dtype));
    s->be = device_override;
    return GRPO_OK;
  }
  if (n > 0) o.device = node_local_rank() % n;
  int rc = grpo_backend_cuda_create(&o, &s->be, err);
  if (rc) {
    s->be = NULL;
    grpo_error_prefix(err, "model.device: cuda");
    return rc;
  }
  GRPO_INFO("model.device: cuda, device %d of %d visible (CUDA_VISIBLE_DEVICES=%s), %s activations",
            o.device, n, getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset",
            grpo_dtype_name(o.act_dtype));
  return GRPO_OK;
}

/* Combinations the backends do not offer: refused, never silently changed. */
static int reject_unimplemented(const grpo_config *c, grpo_error *err) {
  if (c->model.dtype == GRPO_CFG_DTYPE_BFLOAT16 && c->model.device != GRPO_CFG_DEVICE_CUDA)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED, "model.dtype: bfloat16 needs model.device: cuda (the "
                     "CPU backend computes in float32; use auto or float32)");
  return GRPO_OK;
}

/* Tokenizes a budget-forcing text into ids[64]; key names it in errors. */
static int bf_tokens(trainer_session *s, const char *text, const char *key, int32_t *ids, int *n,
                     grpo_error *err) {
  *n = 0;
  if (!text || !*text) return GRPO_OK;
  int got = trainer_encode_text(s->tok, text, ids, 64);
  if (got <= 0) return GRPO_FAIL(err, GRPO_EINVAL, "%s: \"%s\" does not tokenize into 1..64 tokens", key, text);
  *n = got;
  return GRPO_OK;
}

static int budget_forcing_ids(trainer_session *s, grpo_error *err) {
  const grpo_config *c = s->cfg;
  if (c->rollout.min_thinking_tokens == 0 && c->rollout.max_thinking_tokens == 0) return GRPO_OK;
  if (c->rollout.parallel_threads)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "rollout.min_thinking_tokens / max_thinking_tokens (budget forcing) do not combine with "
                     "rollout.parallel_threads");
  if (c->rollout.max_thinking_tokens > 0 && c->rollout.min_thinking_tokens > c->rollout.max_thinking_tokens)
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.min_thinking_tokens (%ld) is above rollout.max_thinking_tokens (%ld)",
                     (long)c->rollout.min_thinking_tokens, (long)c->rollout.max_thinking_tokens);
  int rc = bf_tokens(s, c->rollout.end_think, "rollout.end_think", s->bf_end, &s->n_bf_end, err);
  if (!rc && s->n_bf_end == 0) rc = GRPO_FAIL(err, GRPO_EINVAL, "rollout.end_think is empty but budget forcing is on");
  if (!rc && c->rollout.min_thinking_tokens > 0) {
    rc = bf_tokens(s, c->rollout.budget_continuation, "rollout.budget_continuation", s->bf_cont, &s->n_bf_cont, err);
    if (!rc && s->n_bf_cont == 0)
      rc = GRPO_FAIL(err, GRPO_EINVAL, "rollout.budget_continuation is empty but rollout.min_thinking_tokens is set");
  }
  if (!rc) rc = bf_tokens(s, c->rollout.budget_force_end, "rollout.budget_force_end", s->bf_force, &s->n_bf_force, err);
  return rc;
}

int trainer_session_open(trainer_session *s, const grpo_config *cfg, int train_tokens,
                         grpo_error *err) {
  memset(s, 0, sizeof *s);
  int urc = reject_unimplemented(cfg, err);
  if (urc) return urc;
  s->cfg = cfg;
  s->be = grpo_backend_cpu();
  int rc = cfg->model.device == GRPO_CFG_DEVICE_CUDA ? open_cuda(s, cfg, err) : GRPO_OK;
  if (!rc) rc = open_tokenizer(s, err);
  if (!rc) rc = choose_chat(s, err);
  if (!rc) rc = trainer_session_load_weights(s, cfg->model.path, &s->params, err);
  /* the weights on the backend (CPU: the host buffers themselves, no copy) */
  if (!rc) rc = model_params_bind(&s->params, s->be, err);
  if (rc) {
    trainer_session_close(s);
    return rc;
  }
  if (model_tokenizer_n_ids(s->tok) > s->params.cfg.vocab) {
    rc = GRPO_FAIL(err, GRPO_EINVAL, "the tokenizer has %d ids but the model's vocabulary is %d",
                   model_tokenizer_n_ids(s->tok), s->params.cfg.vocab);
    trainer_session_close(s);
    return rc;
  }
  s->max_len = (int)(cfg->data.max_prompt_length + cfg->rollout.max_completion_length);
  int slots = (int)cfg->rollout.max_batch_size;
  model_plan_opts po = {0};
  po.max_tokens = (int)cfg->data.max_prompt_length;
  if (po.max_tokens < slots) po.max_tokens = slots;
  if (po.max_tokens < train_tokens) po.max_tokens = train_tokens;
  po.recompute = cfg->model.gradient_checkpointing;
  po.max_cache_len = s->max_len;
  rollout_model_plan_sampling(&po, s->be, slots); /* a device samples where the logits are */
  rc = model_transformer_create(&s->model, model_params_device(&s->params), s->be, &po, err);
  if (!rc)
    rc = rollout_model_policy_init_on(&s->mp, &s->policy, s->model, s->be, &s->params.cfg, slots,
                                      s->max_len, err);
  if (!rc) rc = rollout_engine_create(&s->engine, &s->policy, err);
  if (rc) {
    trainer_session_close(s);
    return rc;
  }
  /* stop ids: the tokenizer's EOS, the model's, and ChatML's end of turn */
  int32_t cand[MODEL_MAX_EOS + 3];
  int nc = 0;
  cand[nc++] = model_tokenizer_eos_id(s->tok);
  for (int i = 0; i < s->params.cfg.n_eos; i++) cand[nc++] = s->params.cfg.eos_ids[i];
  cand[nc++] = model_tokenizer_find(s->tok, "<|im_end|>");
  cand[nc++] = model_tokenizer_find(s->tok, "<|endoftext|>");
  for (int i = 0; i < nc; i++) {
    int dup = cand[i] < 0;
    for (int j = 0; j < s->n_stop_ids; j++) dup |= s->stop_ids[j] == cand[i];
    if (!dup) s->stop_ids[s->n_stop_ids++] = cand[i];
  }
  if (cfg->rollout.ignore_eos) s->n_stop_ids = 0;
  rc = budget_forcing_ids(s, err);
  if (rc) {
    trainer_session_close(s);
    return rc;
  }
  if (s->be->kind == GRPO_DEVICE_CPU) {
    /* results differ between BLAS kernels: name the ones this run uses */
    char cpu[512];
    grpo_backend_cpu_describe(cpu, sizeof cpu);
    GRPO_INFO("cpu backend: %s", cpu);
  }
  GRPO_INFO("model: %s, %d layers, hidden %d, vocab %d, %zu parameters; tokenizer: %s",
            s->params.cfg.model_type, s->params.cfg.n_layers, s->params.cfg.hidden,
            s->params.cfg.vocab, s->params.total, s->tokenizer_dir[0] ? s->tokenizer_dir : "byte-level");
  return GRPO_OK;
}

void trainer_session_close(trainer_session *s) {
  rollout_engine_free(s->engine);
  if (s->model) rollout_model_policy_free(&s->mp);
  model_transformer_free(s->model);
  model_params_free(&s->params);
  model_tokenizer_free(s->tok);
  /* last: everything above kept memory on it */
  if (s->be && s->be->kind == GRPO_DEVICE_CUDA && s->be != device_override)
    grpo_backend_cuda_destroy(s->be);
  memset(s, 0, sizeof *s);
}

int trainer_session_prompt(trainer_session *s, const char *question, model_ids *ids,
                           grpo_error *err) {
  return trainer_session_conversation(s, &question, 1, ids, err);
}

int trainer_session_conversation(trainer_session *s, const char *const *turns, int n_turns,
                                 model_ids *ids, grpo_error *err) {
  const grpo_config *c = s->cfg;
  if (n_turns < 1 || n_turns % 2 == 0)
    return GRPO_FAIL(err, GRPO_EINVAL, "prompt: %d turns (need user, assistant, ..., user)", n_turns);
  size_t cap = strlen(c->tokenizer.prompt_template) + strlen(turns[0]) + 1;
  char *user = malloc(cap);
  model_chat_message *msgs = calloc((size_t)n_turns + 1, sizeof *msgs);
  if (!user || !msgs) {
    free(user);
    free(msgs);
    return GRPO_FAIL(err, GRPO_ENOMEM, "prompt: out of memory");
  }
  int rc = task_prompt_render(c->tokenizer.prompt_template, turns[0], user, cap, err) < 0 ? GRPO_EINVAL : GRPO_OK;
  if (rc) grpo_error_prefix(err, "tokenizer.prompt_template");
  model_text text = {0};
  if (!rc && s->chat.kind == MODEL_CHAT_RAW) {
    size_t len = strlen(user) + 1;
    for (int t = 1; t < n_turns; t++) len += strlen(turns[t]) + 2;
    char *joined = malloc(len);
    if (!joined) rc = GRPO_FAIL(err, GRPO_ENOMEM, "prompt: out of memory");
    if (!rc) {
      size_t at = (size_t)snprintf(joined, len, "%s", user);
      for (int t = 1; t < n_turns; t++) at += (size_t)snprintf(joined + at, len - at, "\n\n%s", turns[t]);
      rc = model_utf8_repair((const unsigned char *)joined, at, 1, &text) < 0 ? GRPO_ENOMEM : GRPO_OK;
    }
    free(joined);
  } else if (!rc) {
    size_t n = 0;
    if (s->chat.system) msgs[n++] = (model_chat_message){"system", s->chat.system};
    msgs[n++] = (model_chat_message){"user", user};
    for (int t = 1; t < n_turns; t++) msgs[n++] = (model_chat_message){t % 2 ? "assistant" : "user", turns[t]};
    rc = model_chat_render(&s->chat, msgs, n, c->tokenizer.add_generation_prompt, &text, err);
  }
  if (!rc) rc = model_tokenizer_encode(s->tok, text.s ? text.s : "", text.n, ids, err);
  model_text_free(&text);
  free(msgs);
  free(user);
  return rc;
}

int trainer_session_response_text(const trainer_session *s, const int32_t *ids, int n, char **text,
                                  size_t *cap, int32_t *offsets, grpo_error *err) {
  size_t need = 1;
  for (int k = 0; k < n; k++) {
    size_t len = 0;
    const char *b = model_tokenizer_token_bytes(s->tok, ids[k], &len);
    for (size_t c = 0; b && c < len; c++) need += b[c] ? 1 : 3;
  }
  if (need > *cap) {
    char *nt = realloc(*text, 2 * need);
    if (!nt) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory for a %d-token response", n);
    *text = nt;
    *cap = 2 * need;
  }
  size_t at = 0;
  for (int k = 0; k < n; k++) {
    size_t len = 0;
    const char *b = model_tokenizer_token_bytes(s->tok, ids[k], &len);
    if (offsets) offsets[k] = (int32_t)at;
    for (size_t c = 0; b && c < len; c++) {
      if (b[c]) {
        (*text)[at++] = b[c];
      } else {
        memcpy(*text + at, "\xEF\xBF\xBD", 3);
        at += 3;
      }
    }
  }
  (*text)[at] = '\0';
  return GRPO_OK;
}

int trainer_token_piece(void *ctx, int32_t id, char *buf, int cap) {
  size_t len = 0;
  const char *b = model_tokenizer_token_bytes((const model_tokenizer *)ctx, id, &len);
  if (!b) return 0;
  if (len > (size_t)cap) len = (size_t)cap;
  memcpy(buf, b, len);
  return (int)len;
}

void trainer_session_engine_options(const trainer_session *s, uint64_t seed, uint32_t step,
                                    rollout_engine_options *o) {
  const grpo_config *c = s->cfg;
  memset(o, 0, sizeof *o);
  o->sampling.temperature = (float)c->rollout.temperature;
  o->sampling.top_p = (float)c->rollout.top_p;
  o->sampling.top_k = (int)c->rollout.top_k;
  o->sampling.min_p = (float)c->rollout.min_p;
  o->sampling.repetition_penalty = (float)c->rollout.repetition_penalty;
  o->max_new_tokens = (int)c->rollout.max_completion_length;
  o->seed = seed;
  o->step = step;
  o->stop_ids = s->stop_ids;
  o->n_stop_ids = s->n_stop_ids;
  o->stop_strings = (const char *const *)c->rollout.stop_strings.items;
  o->n_stop_strings = c->rollout.stop_strings.n;
  o->piece = trainer_token_piece;
  o->piece_ctx = s->tok;
  o->vocab_limit = model_tokenizer_n_ids(s->tok);
  if (s->n_bf_end) {
    o->budget.end_think = s->bf_end;
    o->budget.n_end_think = s->n_bf_end;
    o->budget.continuation = s->n_bf_cont ? s->bf_cont : NULL;
    o->budget.n_continuation = s->n_bf_cont;
    o->budget.force_end = s->n_bf_force ? s->bf_force : NULL;
    o->budget.n_force_end = s->n_bf_force;
    o->budget.min_think_tokens = (int)c->rollout.min_thinking_tokens;
    o->budget.max_think_tokens = (int)c->rollout.max_thinking_tokens;
    o->budget.max_continuations = (int)c->rollout.budget_max_continuations;
  }
}

int trainer_encode_text(void *ctx, const char *text, int32_t *out, int cap) {
  model_ids ids = {0};
  int n = -1;
  if (model_tokenizer_encode((model_tokenizer *)ctx, text, strlen(text), &ids, NULL) == GRPO_OK &&
      ids.n <= (size_t)cap) {
    memcpy(out, ids.ids, sizeof(int32_t) * ids.n);
    n = (int)ids.n;
  }
  model_ids_free(&ids);
  return n;
}

void trainer_session_tw_options(const trainer_session *s, rollout_tw_options *o) {
  const grpo_config *c = s->cfg;
  memset(o, 0, sizeof *o);
  o->max_threads = (int)c->rollout.max_threads;
  o->max_rounds = (int)c->rollout.max_parallel_blocks;
  o->max_len = s->max_len;
  o->join_close = c->rollout.join_mode == GRPO_CFG_JOIN_APPEND_CLOSE;
  o->encode = trainer_encode_text;
  o->encode_ctx = s->tok;
}

void trainer_session_arith_options(const grpo_config *c, task_arith_options *o) {
  task_arith_default_options(o);
  o->min_ops = (int)c->data.arith_min_ops;
  o->max_ops = (int)c->data.arith_max_ops;
  o->max_operand = (int)c->data.arith_max_operand;
  const char *ops = c->data.arith_ops;
  o->allow_sub = strchr(ops, '-') != NULL;
  o->allow_mul = strchr(ops, '*') != NULL;
  o->allow_div = strchr(ops, '/') != NULL;
  o->allow_negative = c->data.arith_allow_negative;
  o->max_abs_value = c->data.arith_max_abs_value;
  o->eval_bucket_per_mille = (int)c->data.arith_eval_per_mille;
}

void trainer_session_layout(const grpo_config *c, const char *path, task_format *fmt) {
  char buf[512], *stem, *dir;
  snprintf(buf, sizeof buf, "%s", path);
  char *slash = strrchr(buf, '/');
  stem = slash ? slash + 1 : buf;
  char *dot = strchr(stem, '.');
  if (dot) *dot = 0;
  int found = task_format_builtin(stem, fmt) == GRPO_OK;
  if (!found && slash) {
    *slash = 0;
    dir = strrchr(buf, '/');
    found = task_format_builtin(dir ? dir + 1 : buf, fmt) == GRPO_OK;
  }
  if (!found) {
    memset(fmt, 0, sizeof *fmt);
    snprintf(fmt->name, sizeof fmt->name, "jsonl");
    snprintf(fmt->question_field, sizeof fmt->question_field, "question");
    snprintf(fmt->answer_field, sizeof fmt->answer_field, "answer");
    fmt->gold_rule = TASK_GOLD_FIELD;
  }
  if (c->data.prompt_field[0]) snprintf(fmt->question_field, sizeof fmt->question_field, "%s", c->data.prompt_field);
  if (c->data.answer_field[0]) snprintf(fmt->answer_field, sizeof fmt->answer_field, "%s", c->data.answer_field);
}
