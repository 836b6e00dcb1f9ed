/* Everything a run needs, built from the resolved config once: the
 * tokenizer and chat template, the policy weights (HF directory, grpo HDF5
 * checkpoint, or the built-in model randomly initialised), the transformer
 * with its activation plan, and the generation engine over a KV cache.
 * `grpo train`, `grpo sft`, `grpo generate` and `grpo eval` all start here. */
#ifndef GRPO_TRAINER_SESSION_H
#define GRPO_TRAINER_SESSION_H

#include "core/backend.h"
#include "core/config.h"
#include "model/chat_template.h"
#include "model/params.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rollout/engine.h"
#include "rollout/policy.h"
#include "tasks/arith.h"
#include "tasks/dataset.h"

typedef struct trainer_session {
  const grpo_config *cfg;
  model_tokenizer *tok;
  model_chat_template chat;
  char tokenizer_dir[1024];     /* source of tokenizer files ("" for the byte tokenizer) */
  model_params params;          /* host master copy, bound to be (model_params_bind) */
  grpo_backend *be;             /* the CPU backend, or a CUDA backend the session owns
                                   (model.device: cuda; destroyed by close) */
  model_transformer *model;
  int max_len;                  /* prompt + completion tokens a sequence may hold */
  /* generation */
  rollout_model_policy mp;
  rollout_policy policy;
  rollout_engine *engine;
  int32_t stop_ids[MODEL_MAX_EOS + 4];
  int n_stop_ids;
  /* budget forcing: the rollout.end_think / budget_continuation /
   * budget_force_end texts as tokens (n = 0 when unused) */
  int32_t bf_end[64], bf_cont[64], bf_force[64];
  int n_bf_end, n_bf_cont, n_bf_force;
} trainer_session;

/* Opens a session. train_tokens: the largest packed training micro-batch
 * the transformer must plan for (0: generation only). */
int trainer_session_open(trainer_session *s, const grpo_config *cfg, int train_tokens,
                         grpo_error *err);
void trainer_session_close(trainer_session *s);

/* Test seam: while set (non-NULL), model.device: cuda opens `be` instead of
 * a GPU, and closing the session leaves it open; model.dtype must then match
 * be->act_dtype. The training, generation and checkpoint code then runs its
 * device paths on a stand-in backend in tests without a GPU
 * (tests/gpu/test_train_device.c). NULL restores the GPU. Not thread-safe:
 * set it before opening sessions. */
void trainer_session_device_override(grpo_backend *be);

/* Weights from path as model.path reads them (an HF directory, a grpo .h5
 * checkpoint, a run or checkpoints folder: its latest checkpoint) into p;
 * an empty path builds the built-in model, initialised from the seed, so
 * it gives the same initial weights every time. */
int trainer_session_load_weights(const trainer_session *s, const char *path, model_params *p, grpo_error *err);

/* The prompt for one question (prompt_template inside the chat template),
 * tokenized and appended to ids. */
int trainer_session_prompt(trainer_session *s, const char *question, model_ids *ids,
                           grpo_error *err);

/* A conversation prompt: msgs alternate user / assistant turns starting
 * with the user (the first user turn goes through prompt_template, as in
 * trainer_session_prompt); the generation prompt is appended. With no chat
 * template the turns are joined by blank lines. */
int trainer_session_conversation(trainer_session *s, const char *const *turns, int n_turns,
                                 model_ids *ids, grpo_error *err);

/* A response as the reward functions take it: the bytes of ids as a C
 * string (a NUL byte, which a model can emit, becomes U+FFFD) and, when
 * offsets is not NULL, each token's byte offset. *text / *cap grow as
 * needed; offsets has room for n entries. */
int trainer_session_response_text(const trainer_session *s, const int32_t *ids, int n, char **text,
                                  size_t *cap, int32_t *offsets, grpo_error *err);

/* Engine options from the config's rollout section and stop rules. */
void trainer_session_engine_options(const trainer_session *s, uint64_t seed, uint32_t step,
                                    rollout_engine_options *o);

/* The token-to-text callback for stop strings (ctx: the tokenizer). */
int trainer_token_piece(void *ctx, int32_t id, char *buf, int cap);

/* Orchestrator text to ids (ctx: the tokenizer), for the P-GRPO fork/join. */
int trainer_encode_text(void *ctx, const char *text, int32_t *out, int cap);

/* The synthetic arithmetic task's options from the data.arith_* keys. */
void trainer_session_arith_options(const grpo_config *c, task_arith_options *o);

/* A JSONL file's layout: the built-in one named by its folder or file stem
 * (.../gsm8k/test.jsonl, math500.jsonl), overridden by data.prompt_field /
 * data.answer_field; otherwise question/answer fields. */
void trainer_session_layout(const grpo_config *c, const char *path, task_format *fmt);

/* Fork/join limits from the config's rollout section. */
void trainer_session_tw_options(const trainer_session *s, rollout_tw_options *o);

#endif
