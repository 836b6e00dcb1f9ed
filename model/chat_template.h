/* Chat templates written in C (no Jinja): the few formats the supported
 * models use, byte-identical to transformers' apply_chat_template with their
 * tokenizer_config.json templates (golden test: tests/tokenizer/chat.json).
 *
 * A template is chosen by name (model_chat_kind_from_name), or detected from
 * the Jinja text of tokenizer_config.json's chat_template (by content), and a
 * plain prompt_template string with {question} always overrides both. */
#ifndef GRPO_MODEL_CHAT_TEMPLATE_H
#define GRPO_MODEL_CHAT_TEMPLATE_H

#include <stddef.h>

#include "core/error.h"
#include "model/tokenizer.h"

typedef enum model_chat_kind {
  MODEL_CHAT_RAW = 0,    /* no template: contents concatenated as they are */
  MODEL_CHAT_CHATML,     /* <|im_start|>role\ncontent<|im_end|>\n, no default system */
  MODEL_CHAT_QWEN2,      /* ChatML + "You are a helpful assistant." (Qwen2-Instruct) */
  MODEL_CHAT_QWEN2_BASE, /* Qwen2 base models: the assistant turn opens after every user turn */
  MODEL_CHAT_QWEN25,     /* ChatML + "You are Qwen, created by Alibaba Cloud. ..." */
  MODEL_CHAT_QWEN3,      /* ChatML, no default system, <think> handling, enable_thinking */
  MODEL_CHAT_LLAMA3,     /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
} model_chat_kind;

typedef struct model_chat_message {
  const char *role; /* "system", "user", "assistant", "tool" */
  const char *content;
} model_chat_message;

typedef struct model_chat_template {
  model_chat_kind kind;
  int enable_thinking;         /* Qwen3 only; 0 appends an empty <think> block */
  const char *prompt_template; /* when set, model_chat_prompt uses it ({question}) */
  const char *system;          /* model_chat_prompt: optional system message */
  const char *bos;             /* Llama 3 BOS text; NULL: "<|begin_of_text|>" */
} model_chat_template;

/* Names: raw, chatml, qwen2, qwen2-base, qwen2.5, qwen3, llama3. */
int model_chat_kind_from_name(const char *name, model_chat_kind *out, grpo_error *err);
const char *model_chat_kind_name(model_chat_kind kind);

/* Recognises a Jinja chat_template by its content; GRPO_EUNSUPPORTED when it
 * is none of the supported ones (then give a name or a prompt_template). */
int model_chat_detect(const char *jinja, model_chat_kind *out, grpo_error *err);

/* The kind for a config value: a name, or "auto"/NULL to detect it from the
 * tokenizer's chat_template (GRPO_ENOTFOUND when it has none). */
int model_chat_select(const model_tokenizer *tok, const char *name, model_chat_kind *out,
                      grpo_error *err);

/* Appends the rendered conversation to out. */
int model_chat_render(const model_chat_template *t, const model_chat_message *msgs, size_t n,
                      int add_generation_prompt, model_text *out, grpo_error *err);

/* The prompt for one question: prompt_template with every {question}
 * replaced, else [system?, user: question] rendered with the generation
 * prompt. Appends to out. */
int model_chat_prompt(const model_chat_template *t, const char *question, model_text *out,
                      grpo_error *err);

#endif
