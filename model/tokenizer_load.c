/* Loading tokenizers: tokenizer.json, vocab.json + merges.txt (+
 * tokenizer_config.json, added_tokens.json), and the built-in byte tokenizer. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "model/tokenizer_impl.h"

static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- GPT-2 byte <-> unicode alphabet --------------------------------------- */

/* The byte a code point of the alphabet stands for, or -1. Printable bytes
 * (33-126, 161-172, 174-255) are themselves; the other 68 (0-32, 127-160,
 * 173) map in order to U+0100..U+0143. */
static int alphabet_byte(int32_t c) {
  if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)) return c;
  int k = c - 256;
  if (k < 0 || k > 67) return -1;
  return k < 33 ? k : k < 67 ? 127 + (k - 33) : 173;
}

/* HF ByteLevel decoding of one token string: its bytes through the alphabet
 * when every character is in it, else its own UTF-8. */
static int token_bytes(const char *s, size_t n, model_text *out) {
  out->n = 0;
  utf8proc_ssize_t i = 0;
  while ((size_t)i < n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)n - i, &c);
    int byte = k > 0 ? alphabet_byte(c) : -1;
    if (byte < 0) {
      out->n = 0;
      return tok_text_append(out, s, n);
    }
    unsigned char b = (unsigned char)byte;
    if (tok_text_append(out, &b, 1)) return -1;
    i += k;
  }
  if (n == 0) return tok_text_append(out, "", 0);
  return 0;
}

/* ---- building -------------------------------------------------------------- */

static model_tokenizer *tok_new(void) {
  model_tokenizer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->eos_id = t->pad_id = -1;
  for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
  return t;
}

void model_tokenizer_free(model_tokenizer *t) {
  if (!t) return;
  free(t->flags);
  free(t->tok_off);
  free(t->tok_len);
  free(t->pool);
  free(t->map);
  free(t->pairs);
  if (t->md) pcre2_match_data_free(t->md);
  if (t->re) pcre2_code_free(t->re);
  for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
  free(t->added);
  free(t->added_order);
  free(t->chat_template);
  free(t->sym);
  free(t->heap);
  free(t->norm);
  tok_cache_free(t->cache);
  free(t);
}

enum { MAX_ID = 1 << 24 };

/* Sets the bytes of id (growing the tables). */
static int set_token(model_tokenizer *t, int32_t id, const void *bytes, size_t n, uint8_t flags) {
  if ((size_t)id >= t->ids_cap) {
    size_t cap = t->ids_cap ? t->ids_cap : 512;
    while (cap <= (size_t)id) cap *= 2;
    uint8_t *f = realloc(t->flags, cap);
    if (!f) return -1;
    t->flags = f;
    memset(f + t->ids_cap, 0, cap - t->ids_cap);
    uint32_t *o = realloc(t->tok_off, cap * sizeof *o);
    if (!o) return -1;
    t->tok_off = o;
    uint32_t *l = realloc(t->tok_len, cap * sizeof *l);
    if (!l) return -1;
    t->tok_len = l;
    t->ids_cap = cap;
  }
  if (t->pool_n + n + 1 > t->pool_cap) {
    size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
    while (cap < t->pool_n + n + 1) cap *= 2;
    char *p = realloc(t->pool, cap);
    if (!p) return -1;
    t->pool = p;
    t->pool_cap = cap;
  }
  memcpy(t->pool + t->pool_n, bytes, n);
  t->pool[t->pool_n + n] = '\0';
  t->tok_off[id] = (uint32_t)t->pool_n;
  t->tok_len[id] = (uint32_t)n;
  t->pool_n += n + 1;
  t->flags[id] |= (uint8_t)(TOK_PRESENT | flags);
  if (id >= t->n_ids) t->n_ids = id + 1;
  return 0;
}

static int add_added(model_tokenizer *t, const char *content, int32_t id, int special) {
  if (!content[0]) return 0; /* an empty token never matches */
  for (int i = 0; i < t->n_added; i++)
    if (strcmp(t->added[i].content, content) == 0) return 0; /* first definition wins */
  tok_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
  if (!a) return -1;
  t->added = a;
  a = &t->added[t->n_added];
  a->content = strdup(content);
  if (!a->content) return -1;
  a->len = strlen(content);
  a->id = id;
  a->special = special;
  t->n_added++;
  model_text b = {0};
  int rc = token_bytes(content, a->len, &b);
  if (!rc) rc = set_token(t, id, b.s, b.n, (uint8_t)(TOK_ADDED | (special ? TOK_SPECIAL : 0)));
  model_text_free(&b);
  return rc;
}

static int build_map(model_tokenizer *t) {
  size_t cap = 16;
  while (cap < (size_t)t->n_ids * 2) cap *= 2;
  free(t->map);
  t->map = malloc(cap * sizeof *t->map);
  if (!t->map) return -1;
  memset(t->map, 0xFF, cap * sizeof *t->map);
  t->map_mask = cap - 1;
  for (int32_t id = 0; id < t->n_ids; id++) {
    if (!(t->flags[id] & TOK_VOCAB)) continue;
    const char *s = t->pool + t->tok_off[id];
    size_t n = t->tok_len[id];
    size_t i = tok_hash_bytes(s, n) & t->map_mask;
    for (;; i = (i + 1) & t->map_mask) {
      int32_t o = t->map[i];
      if (o < 0) {
        t->map[i] = id;
        break;
      }
      if (t->tok_len[o] == n && memcmp(t->pool + t->tok_off[o], s, n) == 0) break;
    }
  }
  for (int b = 0; b < 256; b++) {
    unsigned char c = (unsigned char)b;
    t->byte_id[b] = tok_map_get(t, &c, 1);
  }
  return 0;
}

static int pairs_init(model_tokenizer *t, size_t n_merges) {
  size_t cap = 16;
  while (cap < n_merges * 2) cap *= 2;
  t->pairs = malloc(cap * sizeof *t->pairs);
  if (!t->pairs) return -1;
  for (size_t i = 0; i < cap; i++) t->pairs[i].rank = -1;
  t->pair_mask = cap - 1;
  return 0;
}

/* Registers merge `rank` of strings a, b. */
static int add_merge(model_tokenizer *t, const char *a, size_t na, const char *b, size_t nb,
                     int32_t rank, const char *file, grpo_error *err) {
  model_text x = {0}, y = {0};
  int rc = GRPO_OK;
  if (token_bytes(a, na, &x) || token_bytes(b, nb, &y) || tok_text_append(&x, y.s, y.n)) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", file);
    goto done;
  }
  int32_t ia = tok_map_get(t, x.s, x.n - y.n), ib = tok_map_get(t, y.s, y.n),
          ir = tok_map_get(t, x.s, x.n);
  if (ia < 0 || ib < 0 || ir < 0) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: merge %d (\"%.*s\" \"%.*s\"): %s is not in the vocabulary",
                   file, (int)rank, (int)na, a, (int)nb, b,
                   ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the merged token");
    goto done;
  }
  tok_pair_put(t, ia, ib, rank, ir);
done:
  model_text_free(&x);
  model_text_free(&y);
  return rc;
}

/* Unicode White_Space, which is what \s means to Oniguruma (HF). PCRE2's UCP
 * \s also matches U+180E (Mongolian vowel separator, Cf since Unicode 6.3),
 * so \s and \S are spelled out. */
#define WHITE_SPACE "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* Rewrites \s (inside or outside a class) and \S (outside a class). */
static char *rewrite_space_classes(const char *p) {
  model_text o = {0};
  int in_class = 0, fail = 0;
  for (size_t i = 0; p[i] && !fail; i++) {
    if (p[i] == '\\' && p[i + 1]) {
      char c = p[i + 1];
      if (c == 's') fail = in_class ? tok_text_append(&o, WHITE_SPACE, strlen(WHITE_SPACE))
                                    : tok_text_append(&o, "[" WHITE_SPACE "]", strlen(WHITE_SPACE) + 2);
      else if (c == 'S' && !in_class) fail = tok_text_append(&o, "[^" WHITE_SPACE "]", strlen(WHITE_SPACE) + 3);
      else fail = tok_text_append(&o, p + i, 2);
      i++;
      continue;
    }
    if (p[i] == '[' && !in_class) {
      in_class = 1;
      fail = tok_text_append(&o, p + i, 1);
      /* a leading ']' or '^]' is a literal */
      if (!fail && p[i + 1] == '^') fail = tok_text_append(&o, p + ++i, 1);
      if (!fail && p[i + 1] == ']') fail = tok_text_append(&o, p + ++i, 1);
      continue;
    }
    if (p[i] == ']' && in_class) in_class = 0;
    fail = tok_text_append(&o, p + i, 1);
  }
  if (fail) {
    model_text_free(&o);
    return NULL;
  }
  if (!o.s) return strdup("");
  return o.s;
}

static int compile_regex(model_tokenizer *t, const char *pattern, const char *file, grpo_error *err) {
  int code;
  PCRE2_SIZE off;
  t->re_hash = tok_hash_bytes(pattern, strlen(pattern));
  char *rewritten = rewrite_space_classes(pattern);
  if (!rewritten) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", file);
  t->re = pcre2_compile((PCRE2_SPTR)rewritten, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
  free(rewritten);
  if (!t->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                     file, (size_t)off, (const char *)msg);
  }
  t->re_jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
  t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
  if (!t->md) return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", file);
  return GRPO_OK;
}

static int finish_added(model_tokenizer *t) {
  free(t->added_order);
  t->added_order = malloc((size_t)(t->n_added ? t->n_added : 1) * sizeof(int));
  if (!t->added_order) return -1;
  memset(t->added_first, 0, sizeof t->added_first);
  /* insertion sort, longest first (few tokens); ties keep file order */
  for (int i = 0; i < t->n_added; i++) {
    int j = i;
    while (j > 0 && t->added[t->added_order[j - 1]].len < t->added[i].len) {
      t->added_order[j] = t->added_order[j - 1];
      j--;
    }
    t->added_order[j] = i;
    t->added_first[(unsigned char)t->added[i].content[0]] = 1;
  }
  return 0;
}

static uint64_t mix(uint64_t h, uint64_t x) {
  h = (h ^ x) * 0x100000001B3ull;
  return h ^ (h >> 31);
}

static void fingerprint(model_tokenizer *t) {
  uint64_t h = mix(0xCBF29CE484222325ull, (uint64_t)t->n_ids);
  h = mix(h, t->re_hash);
  h = mix(h, (uint64_t)(t->nfc | t->ignore_merges << 1 | (t->re != NULL) << 2));
  for (int32_t id = 0; id < t->n_ids; id++) {
    if (!(t->flags[id] & TOK_PRESENT)) continue;
    h = mix(h, (uint64_t)id << 8 | t->flags[id]);
    h = mix(h, tok_hash_bytes(t->pool + t->tok_off[id], t->tok_len[id]));
  }
  for (size_t i = 0; t->pairs && i <= t->pair_mask; i++)
    if (t->pairs[i].rank >= 0)
      h = mix(mix(h, t->pairs[i].key), (uint64_t)(uint32_t)t->pairs[i].rank << 32 | (uint32_t)t->pairs[i].result);
  for (int i = 0; i < t->n_added; i++) h = mix(h, tok_hash_bytes(t->added[i].content, t->added[i].len));
  t->fingerprint = h;
}

/* ---- files ----------------------------------------------------------------- */


static int read_json(const char *path, cJSON **out, grpo_error *err) {
  char *buf;
  size_t n;
  int rc = grpo_read_file(path, (size_t)1 << 30, &buf, &n, err);
  if (rc) return rc;
  const char *end = NULL;
  *out = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
  if (!*out) {
    size_t at = end && end >= buf ? (size_t)(end - buf) : 0, line = 1;
    for (size_t i = 0; i < at && i < n; i++) line += buf[i] == '\n';
    free(buf);
    return GRPO_FAIL(err, GRPO_EPARSE, "%s:%zu: invalid JSON (byte %zu)", path, line, at);
  }
  free(buf);
  return GRPO_OK;
}

static int is_true(const cJSON *o, const char *key) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key)); }

/* One added token object {id?, content, special, lstrip, rstrip, single_word}. */
static int load_added_obj(model_tokenizer *t, const cJSON *o, int32_t id, const char *file,
                          const char *where, grpo_error *err) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
  if (!cJSON_IsString(c))
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s: \"content\" must be a string", file, where);
  if (is_true(o, "lstrip") || is_true(o, "rstrip") || is_true(o, "single_word"))
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: %s (\"%s\"): lstrip/rstrip/single_word added tokens are not supported",
                     file, where, c->valuestring);
  if (add_added(t, c->valuestring, id, is_true(o, "special")))
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", file);
  return GRPO_OK;
}

static int parse_id(const cJSON *v, int32_t *id) {
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MAX_ID ||
      v->valuedouble != (double)(int32_t)v->valuedouble)
    return -1;
  *id = (int32_t)v->valuedouble;
  return 0;
}

static int load_vocab_obj(model_tokenizer *t, const cJSON *vocab, const char *file, const char *where,
                          grpo_error *err) {
  if (!cJSON_IsObject(vocab))
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s must be an object of token -> id", file, where);
  model_text b = {0};
  for (const cJSON *e = vocab->child; e; e = e->next) {
    int32_t id;
    if (parse_id(e, &id)) {
      model_text_free(&b);
      return GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s[\"%s\"]: id must be an integer in [0, %d)", file,
                       where, e->string, MAX_ID);
    }
    if (id < t->n_ids && (t->flags[id] & TOK_VOCAB)) {
      model_text_free(&b);
      return GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s[\"%s\"]: id %d is used twice", file, where,
                       e->string, (int)id);
    }
    if (token_bytes(e->string, strlen(e->string), &b) || set_token(t, id, b.s, b.n, TOK_VOCAB)) {
      model_text_free(&b);
      return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", file);
    }
  }
  model_text_free(&b);
  return GRPO_OK;
}

/* tokenizer_config.json: added_tokens_decoder, eos/pad, chat_template, class. */
static int load_config(model_tokenizer *t, const char *path, int slow, grpo_error *err) {
  cJSON *cfg;
  int rc = read_json(path, &cfg, err);
  if (rc) return rc;
  if (!cJSON_IsObject(cfg)) {
    cJSON_Delete(cfg);
    return GRPO_FAIL(err, GRPO_EFORMAT, "%s: expected a JSON object", path);
  }
  if (slow) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class");
    const char *c = cJSON_IsString(cls) ? cls->valuestring : "Qwen2Tokenizer";
    if (strncmp(c, "Qwen2Tokenizer", 14) == 0) {
      t->nfc = 1;
      rc = compile_regex(t, QWEN2_REGEX, path, err);
    } else if (strncmp(c, "GPT2Tokenizer", 13) == 0) {
      rc = compile_regex(t, GPT2_REGEX, path, err);
    } else {
      rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: tokenizer_class \"%s\" is not supported with vocab.json + merges.txt "
                     "(Qwen2Tokenizer, GPT2Tokenizer; or give a tokenizer.json)", path, c);
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
    for (const cJSON *e = dec ? dec->child : NULL; e && !rc; e = e->next) {
      char *end;
      long id = strtol(e->string, &end, 10);
      char where[96];
      snprintf(where, sizeof where, "added_tokens_decoder[\"%s\"]", e->string);
      if (*end || id < 0 || id >= MAX_ID)
        rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s: key must be a token id", path, where);
      else
        rc = load_added_obj(t, e, (int32_t)id, path, where, err);
    }
  }
  const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
  const char *tmpl = NULL;
  if (cJSON_IsString(ct)) tmpl = ct->valuestring;
  else if (cJSON_IsArray(ct)) /* [{name, template}]: the "default" one */
    for (const cJSON *e = ct->child; e; e = e->next) {
      const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
      const cJSON *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
      if (cJSON_IsString(nm) && cJSON_IsString(tp) && strcmp(nm->valuestring, "default") == 0)
        tmpl = tp->valuestring;
    }
  if (!rc && tmpl && !(t->chat_template = strdup(tmpl)))
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  /* eos/pad resolved after all added tokens are known */
  const char *keys[2] = {"eos_token", "pad_token"};
  for (int k = 0; k < 2 && !rc; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, keys[k]);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v)) continue;
    int32_t id = -1;
    for (int i = 0; i < t->n_added; i++)
      if (strcmp(t->added[i].content, v->valuestring) == 0) id = t->added[i].id;
    if (k == 0) t->eos_id = id;
    else t->pad_id = id;
  }
  cJSON_Delete(cfg);
  return rc;
}

static int load_tokenizer_json(model_tokenizer *t, const char *path, grpo_error *err) {
  cJSON *root;
  int rc = read_json(path, &root, err);
  if (rc) return rc;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
  if (!cJSON_IsObject(model)) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: missing \"model\" object", path);
    goto done;
  }
  if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "BPE") == 0)) {
    rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: model.type %s is not supported (only BPE)", path,
                   cJSON_IsString(type) ? type->valuestring : "(not a string)");
    goto done;
  }
  if (is_true(model, "byte_fallback")) {
    rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: model.byte_fallback is not supported", path);
    goto done;
  }
  const char *strkeys[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int k = 0; k < 2; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, strkeys[k]);
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0])) {
      rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: model.%s is not supported", path, strkeys[k]);
      goto done;
    }
  }
  const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
  if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0)) {
    rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: model.dropout is not supported", path);
    goto done;
  }
  t->ignore_merges = is_true(model, "ignore_merges");
  if ((rc = load_vocab_obj(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), path, "model.vocab", err)))
    goto done;
  const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
  if (added && !cJSON_IsArray(added)) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: added_tokens must be an array", path);
    goto done;
  }
  int ai = 0;
  for (const cJSON *e = added ? added->child : NULL; e; e = e->next, ai++) {
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%d]", ai);
    int32_t id;
    if (parse_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id)) {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: %s.id must be an integer in [0, %d)", path, where, MAX_ID);
      goto done;
    }
    if ((rc = load_added_obj(t, e, id, path, where, err))) goto done;
  }
  if (build_map(t)) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
  if (!cJSON_IsArray(merges)) {
    rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: model.merges must be an array", path);
    goto done;
  }
  if (pairs_init(t, (size_t)cJSON_GetArraySize(merges))) {
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  int32_t rank = 0;
  for (const cJSON *m = merges->child; m; m = m->next, rank++) {
    if (cJSON_IsString(m)) { /* "a b" */
      const char *s = m->valuestring, *sp = strchr(s, ' ');
      if (!sp || strchr(sp + 1, ' ')) {
        rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: model.merges[%d] \"%s\" is not two tokens separated by one space",
                       path, (int)rank, s);
        goto done;
      }
      rc = add_merge(t, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), rank, path, err);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next)) { /* ["a", "b"] */
      const char *a = m->child->valuestring, *b = m->child->next->valuestring;
      rc = add_merge(t, a, strlen(a), b, strlen(b), rank, path, err);
    } else {
      rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: model.merges[%d] must be \"a b\" or [\"a\", \"b\"]", path, (int)rank);
    }
    if (rc) goto done;
  }
  /* normalizer: none or NFC */
  const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
  if (norm && !cJSON_IsNull(norm)) {
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(norm, "type");
    const char *ns = cJSON_IsString(nt) ? nt->valuestring : "";
    const cJSON *list = strcmp(ns, "Sequence") == 0 ? cJSON_GetObjectItemCaseSensitive(norm, "normalizers") : NULL;
    if (strcmp(ns, "NFC") == 0) t->nfc = 1;
    else if (list && cJSON_IsArray(list) && cJSON_GetArraySize(list) <= 1) {
      const cJSON *one = list->child ? cJSON_GetObjectItemCaseSensitive(list->child, "type") : NULL;
      if (one && !(cJSON_IsString(one) && strcmp(one->valuestring, "NFC") == 0)) {
        rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: normalizer.normalizers[0] is not supported (only NFC)", path);
        goto done;
      }
      t->nfc = one != NULL;
    } else {
      rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: normalizer type \"%s\" is not supported (only NFC or none)", path, ns);
      goto done;
    }
  }
  /* pre_tokenizer: Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)] or ByteLevel(use_regex) */
  const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
  const cJSON *pt = cJSON_GetObjectItemCaseSensitive(pre, "type");
  const char *ps = cJSON_IsString(pt) ? pt->valuestring : "";
  const cJSON *split = NULL, *bl = NULL;
  if (strcmp(ps, "ByteLevel") == 0) bl = pre;
  else if (strcmp(ps, "Sequence") == 0) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    int n = cJSON_GetArraySize(list);
    const cJSON *a = n == 2 ? list->child : NULL, *b = a ? a->next : NULL;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(a, "type"), *bt = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (cJSON_IsString(at) && cJSON_IsString(bt) && strcmp(at->valuestring, "Split") == 0 &&
        strcmp(bt->valuestring, "ByteLevel") == 0) {
      split = a;
      bl = b;
    }
  }
  if (!bl || is_true(bl, "add_prefix_space") || (split && is_true(bl, "use_regex")) ||
      (!split && !is_true(bl, "use_regex"))) {
    rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                   "%s: pre_tokenizer is not supported (need Sequence[Split(regex, Isolated), "
                   "ByteLevel(use_regex=false)] or ByteLevel(use_regex=true), add_prefix_space=false)", path);
    goto done;
  }
  if (split) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex");
    const cJSON *beh = cJSON_GetObjectItemCaseSensitive(split, "behavior");
    if (!cJSON_IsString(pat) || !cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0 ||
        is_true(split, "invert")) {
      rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "%s: pre_tokenizer Split must have a {\"Regex\": ...} pattern, behavior Isolated, invert false", path);
      goto done;
    }
    rc = compile_regex(t, pat->valuestring, path, err);
  } else {
    rc = compile_regex(t, GPT2_REGEX, path, err);
  }
  if (rc) goto done;
  const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(dec, "type");
  if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "ByteLevel") != 0) {
    rc = GRPO_FAIL(err, GRPO_EUNSUPPORTED, "%s: decoder must be ByteLevel", path);
    goto done;
  }
done:
  cJSON_Delete(root);
  return rc;
}

static int load_merges_txt(model_tokenizer *t, const char *path, grpo_error *err) {
  char *buf;
  size_t n;
  int rc = grpo_read_file(path, (size_t)1 << 30, &buf, &n, err);
  if (rc) return rc;
  size_t lines = 1;
  for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
  if (pairs_init(t, lines)) {
    free(buf);
    return GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", path);
  }
  int32_t rank = 0;
  size_t lineno = 0;
  for (char *p = buf; p < buf + n && !rc;) {
    char *e = memchr(p, '\n', (size_t)(buf + n - p));
    char *next = e ? e + 1 : buf + n;
    if (!e) e = buf + n;
    lineno++;
    while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e > p && !(lineno == 1 && strncmp(p, "#version", 8) == 0)) {
      char *sp = memchr(p, ' ', (size_t)(e - p));
      if (!sp || memchr(sp + 1, ' ', (size_t)(e - sp - 1)) || sp == p || sp + 1 == e)
        rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s:%zu: a merge line must be two tokens separated by one space",
                       path, lineno);
      else {
        rc = add_merge(t, p, (size_t)(sp - p), sp + 1, (size_t)(e - sp - 1), rank, path, err);
        if (rc) grpo_error_prefix(err, "line %zu", lineno);
      }
      rank++;
    }
    p = next;
  }
  free(buf);
  return rc;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int model_tokenizer_load(const char *path, model_tokenizer **out, grpo_error *err) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0) return GRPO_FAIL(err, GRPO_ENOTFOUND, "%s: no such tokenizer file or directory", path);
  model_tokenizer *t = tok_new();
  if (!t) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  char p[4096], dir[4096];
  int rc = GRPO_OK;
  if (S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", path);
  else {
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
  }
  snprintf(p, sizeof p, "%s/tokenizer.json", dir);
  if (!S_ISDIR(st.st_mode) || exists(p)) {
    rc = load_tokenizer_json(t, S_ISDIR(st.st_mode) ? p : path, err);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    if (!rc && S_ISDIR(st.st_mode) && exists(p)) rc = load_config(t, p, 0, err);
  } else {
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    cJSON *v = NULL;
    rc = read_json(p, &v, err);
    if (!rc) rc = load_vocab_obj(t, v, p, "the top-level object", err);
    cJSON_Delete(v);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    if (!rc && exists(p)) rc = load_config(t, p, 1, err);
    else if (!rc) {
      t->nfc = 1; /* no config: Qwen2 */
      rc = compile_regex(t, QWEN2_REGEX, path, err);
    }
    snprintf(p, sizeof p, "%s/added_tokens.json", dir);
    if (!rc && exists(p)) {
      cJSON *a = NULL;
      rc = read_json(p, &a, err);
      for (const cJSON *e = a ? a->child : NULL; e && !rc; e = e->next) {
        int32_t id;
        if (parse_id(e, &id)) rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: \"%s\": id must be an integer", p, e->string);
        else if (add_added(t, e->string, id, 0)) rc = GRPO_FAIL(err, GRPO_ENOMEM, "%s: out of memory", p);
      }
      if (!rc && a && !cJSON_IsObject(a)) rc = GRPO_FAIL(err, GRPO_EFORMAT, "%s: expected an object", p);
      cJSON_Delete(a);
    }
    if (!rc && build_map(t)) rc = GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    if (!rc) rc = load_merges_txt(t, p, err);
  }
  if (!rc && finish_added(t)) rc = GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  if (!rc) {
    for (int32_t id = 0; id < t->n_ids; id++)
      if (!(t->flags[id] & TOK_PRESENT)) t->tok_off[id] = t->tok_len[id] = 0;
    fingerprint(t);
  }
  if (rc) {
    model_tokenizer_free(t);
    return rc;
  }
  *out = t;
  return GRPO_OK;
}

int model_tokenizer_byte_level(model_tokenizer **out, grpo_error *err) {
  *out = NULL;
  model_tokenizer *t = tok_new();
  if (!t) return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  int rc = 0;
  for (int b = 0; b < 256 && !rc; b++) {
    unsigned char c = (unsigned char)b;
    rc = set_token(t, b, &c, 1, TOK_VOCAB);
  }
  static const struct { const char *s; int special; } SPECIALS[] = {
      {"<|endoftext|>", 1}, {"<|im_start|>", 1}, {"<|im_end|>", 1}, {"<think>", 0}, {"</think>", 0}};
  for (int i = 0; i < 5 && !rc; i++) rc = add_added(t, SPECIALS[i].s, 256 + i, SPECIALS[i].special);
  if (!rc) rc = build_map(t);
  if (!rc) rc = finish_added(t);
  if (rc) {
    model_tokenizer_free(t);
    return GRPO_FAIL(err, GRPO_ENOMEM, "out of memory");
  }
  t->eos_id = 258;
  t->pad_id = 256;
  fingerprint(t);
  *out = t;
  return GRPO_OK;
}
