/* Byte-level BPE tokenizer (GPT-2 / Qwen2 / Llama 3 family), identical to HF
 * `tokenizers` on the supported configurations.
 *
 * Encoding: invalid UTF-8 is first replaced by U+FFFD (one per maximal
 * ill-formed subpart, as Python's bytes.decode(errors="replace")), then added
 * tokens are split out (leftmost-longest match on the raw text), and each
 * piece in between is NFC-normalised (when the model says so), pre-split by
 * the model's regex (PCRE2, Unicode properties), mapped to the GPT-2
 * byte-to-unicode alphabet and merged by rank. No BOS/EOS is added (HF
 * add_special_tokens=False); templates add what they need as text.
 *
 * Decoding concatenates the tokens' bytes and replaces invalid UTF-8 by U+FFFD
 * (HF ByteLevel decoder, from_utf8_lossy). The stream decoder emits the same
 * text incrementally, holding back an incomplete UTF-8 sequence.
 *
 * Supported files: tokenizer.json (BPE model, merges as "a b" strings or
 * ["a","b"] pairs, NFC or no normalizer, Split(regex, Isolated) + ByteLevel
 * or ByteLevel(use_regex) pre-tokenizer, ByteLevel decoder, ignore_merges),
 * or vocab.json + merges.txt (+ tokenizer_config.json, added_tokens.json) for
 * Qwen2Tokenizer (Qwen2 regex + NFC) and GPT2Tokenizer. Anything else is
 * rejected with an error naming the file and field. Added tokens'
 * lstrip/rstrip/single_word flags are rejected when set; all added tokens
 * match the raw text (HF matches normalized=true ones after normalisation,
 * which differs only if NFC changes the token's own text). The
 * post_processor is ignored.
 *
 * Regex: \s and \S are rewritten to Unicode White_Space (Oniguruma's \s; PCRE2
 * adds U+180E). Characters whose Unicode properties changed after PCRE2's
 * tables (Unicode 14 in 10.42) can split differently from HF; no such
 * character occurs in the project's data (bench/tokenizer/RESULTS.md).
 *
 * Thread safety: encode uses per-tokenizer scratch and a cache, so one
 * tokenizer must not encode from two threads at once; decode is read-only. */
#ifndef GRPO_MODEL_TOKENIZER_H
#define GRPO_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct model_tokenizer model_tokenizer;

/* Growable id and text buffers; zero-initialise, append, free. */
typedef struct model_ids {
  int32_t *ids;
  size_t n, cap;
} model_ids;

typedef struct model_text {
  char *s;  /* NUL-terminated when non-NULL */
  size_t n, cap;
} model_text;

void model_ids_free(model_ids *v);
void model_text_free(model_text *t);

/* Loads from a tokenizer.json file, or from a directory holding tokenizer.json
 * (preferred) or vocab.json + merges.txt. For a directory, tokenizer_config.json
 * (eos/pad, chat_template, added_tokens_decoder) and added_tokens.json are
 * read when present. Errors name the file and field at fault. */
int model_tokenizer_load(const char *path, model_tokenizer **out, grpo_error *err);

/* Byte tokenizer with no merges: id b (0..255) is byte b, then the specials
 * <|endoftext|> (256, special), <|im_start|> (257, special), <|im_end|> (258,
 * special), <think> (259), </think> (260). No normalisation; the input splits
 * into single bytes. For the built-in quickstart model and tests. */
int model_tokenizer_byte_level(model_tokenizer **out, grpo_error *err);

void model_tokenizer_free(model_tokenizer *tok);

/* One more than the largest id. */
int32_t model_tokenizer_n_ids(const model_tokenizer *tok);
/* Id of an added token by its content, else of a vocabulary token by its
 * text (e.g. "hello", " world"); -1 when there is none. */
int32_t model_tokenizer_find(const model_tokenizer *tok, const char *text);
/* Hash of everything that decides encoding and decoding (tokens, flags,
 * merges, regex, normalisation): equal fingerprints, same ids. For
 * checkpoint metadata. */
uint64_t model_tokenizer_fingerprint(const model_tokenizer *tok);
/* 1 for added tokens marked special (dropped by skip_special). */
int model_tokenizer_is_special(const model_tokenizer *tok, int32_t id);
/* eos_token / pad_token from tokenizer_config.json (built-in: <|im_end|>,
 * <|endoftext|>); -1 when unknown. */
int32_t model_tokenizer_eos_id(const model_tokenizer *tok);
int32_t model_tokenizer_pad_id(const model_tokenizer *tok);
/* The chat_template string of tokenizer_config.json, or NULL. */
const char *model_tokenizer_chat_template(const model_tokenizer *tok);
/* The raw bytes a token decodes to (before UTF-8 repair); NULL for a bad id. */
const char *model_tokenizer_token_bytes(const model_tokenizer *tok, int32_t id, size_t *len);

/* Appends the ids of text[0..len) to out. */
int model_tokenizer_encode(model_tokenizer *tok, const char *text, size_t len, model_ids *out,
                           grpo_error *err);

/* Appends the text of ids to out (invalid UTF-8 -> U+FFFD). An id outside
 * the vocabulary is an error naming its position. */
int model_tokenizer_decode(const model_tokenizer *tok, const int32_t *ids, size_t n,
                           int skip_special, model_text *out, grpo_error *err);

/* Incremental decoder for generation: push ids one at a time; the text it
 * appends is always valid UTF-8 and, after finish, the concatenation equals
 * model_tokenizer_decode of all ids. */
typedef struct model_detok_stream {
  const model_tokenizer *tok;
  int skip_special;
  int npend;
  unsigned char pend[4];
} model_detok_stream;

void model_detok_stream_init(model_detok_stream *s, const model_tokenizer *tok, int skip_special);
int model_detok_stream_push(model_detok_stream *s, int32_t id, model_text *out, grpo_error *err);
/* Flushes a held-back incomplete sequence as U+FFFD. */
int model_detok_stream_finish(model_detok_stream *s, model_text *out, grpo_error *err);

/* Replaces invalid UTF-8 in s[0..n) like Python's errors="replace" and
 * appends to out. With final == 0 an incomplete but valid-so-far tail is not
 * consumed; returns the number of input bytes consumed, or -1 on ENOMEM. */
long model_utf8_repair(const unsigned char *s, size_t n, int final, model_text *out);

#endif
