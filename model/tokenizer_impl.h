/* Private to model/tokenizer*.c: the tokenizer's tables. */
#ifndef GRPO_MODEL_TOKENIZER_IMPL_H
#define GRPO_MODEL_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <utf8proc.h>

#include "model/tokenizer.h"

enum { TOK_PRESENT = 1, TOK_SPECIAL = 2, TOK_ADDED = 4, TOK_VOCAB = 8 };

typedef struct tok_pair {
  uint64_t key;   /* left id << 32 | right id */
  int32_t rank;   /* -1: empty slot */
  int32_t result;
} tok_pair;

typedef struct tok_added {
  char *content;
  size_t len;
  int32_t id;
  int special;
} tok_added;

typedef struct tok_cache tok_cache;

struct model_tokenizer {
  int32_t n_ids;
  size_t ids_cap;
  uint8_t *flags;      /* TOK_* per id */
  uint32_t *tok_off;   /* decoded bytes of each id in pool */
  uint32_t *tok_len;
  char *pool;
  size_t pool_n, pool_cap;

  int32_t *map;        /* open addressing: vocab bytes -> id, -1 empty */
  size_t map_mask;
  tok_pair *pairs;     /* (left, right) -> (rank, result) */
  size_t pair_mask;
  int32_t byte_id[256];
  int ignore_merges, nfc;

  pcre2_code *re;      /* NULL: byte tokenizer, no pre-split */
  pcre2_match_data *md;
  int re_jit;

  tok_added *added;
  int n_added;
  int *added_order;    /* indices into added, longest content first */
  uint8_t added_first[256];

  uint64_t re_hash;     /* of the regex source */
  uint64_t fingerprint;
  int32_t eos_id, pad_id;
  char *chat_template;

  /* encode scratch */
  int32_t *sym;
  uint64_t *heap;
  size_t scratch_cap;
  utf8proc_int32_t *norm;
  size_t norm_cap;
  tok_cache *cache;
};

int tok_ids_reserve(model_ids *v, size_t extra);
int tok_text_append(model_text *t, const void *s, size_t n);
uint64_t tok_hash_bytes(const void *p, size_t n);
int32_t tok_map_get(const model_tokenizer *tok, const void *bytes, size_t n);
/* 1 inserted, 0 a repeat (its rank and result replaced). */
int tok_pair_put(model_tokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t res);
void tok_cache_free(tok_cache *c);

#endif
