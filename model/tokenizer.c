/* Byte-level BPE: encode, decode, stream decode. Loading is in
 * tokenizer_load.c; both share model/tokenizer_impl.h. */
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer.h"
#include "model/tokenizer_impl.h"

/* ---- growable buffers ----------------------------------------------------- */

void model_ids_free(model_ids *v) {
  free(v->ids);
  v->ids = NULL;
  v->n = v->cap = 0;
}

void model_text_free(model_text *t) {
  free(t->s);
  t->s = NULL;
  t->n = t->cap = 0;
}

int tok_ids_reserve(model_ids *v, size_t extra) {
  if (v->n + extra <= v->cap) return 0;
  size_t cap = v->cap ? v->cap : 64;
  while (cap < v->n + extra) cap *= 2;
  int32_t *p = realloc(v->ids, cap * sizeof *p);
  if (!p) return -1;
  v->ids = p;
  v->cap = cap;
  return 0;
}

int tok_text_append(model_text *t, const void *s, size_t n) {
  if (t->n + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->n + n + 1) cap *= 2;
    char *p = realloc(t->s, cap);
    if (!p) return -1;
    t->s = p;
    t->cap = cap;
  }
  if (n) memcpy(t->s + t->n, s, n);
  t->n += n;
  t->s[t->n] = '\0';
  return 0;
}

/* ---- UTF-8 repair (Unicode "maximal subpart" replacement) ------------------ */

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Length of the well-formed sequence a lead byte starts, and the allowed
 * range of its second byte (Unicode Table 3-7); 0 for a byte that never
 * starts one. */
static int utf8_lead(unsigned c, unsigned *lo, unsigned *hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return 2;
  if (c < 0xF0) {
    if (c == 0xE0) *lo = 0xA0;
    if (c == 0xED) *hi = 0x9F;
    return 3;
  }
  if (c < 0xF5) {
    if (c == 0xF0) *lo = 0x90;
    if (c == 0xF4) *hi = 0x8F;
    return 4;
  }
  return 0;
}

long model_utf8_repair(const unsigned char *s, size_t n, int final, model_text *out) {
  size_t i = 0, run = 0; /* run: start of pending valid bytes */
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    unsigned lo, hi;
    int len = utf8_lead(c, &lo, &hi);
    size_t j = i + 1;
    int ok = len > 0;
    for (int k = 1; ok && k < len; k++, j++) {
      if (j >= n) {
        if (!final) { /* incomplete tail: leave it for the next call */
          if (tok_text_append(out, s + run, i - run)) return -1;
          return (long)i;
        }
        ok = 0;
        break;
      }
      unsigned b = s[j];
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
        ok = 0;
        break;
      }
    }
    if (ok) {
      i = j;
      continue;
    }
    /* s[i..j) is a maximal ill-formed subpart (just s[i] for a bad lead). */
    if (len == 0) j = i + 1;
    if (tok_text_append(out, s + run, i - run) || tok_text_append(out, REPLACEMENT, 3)) return -1;
    i = j;
    run = j;
  }
  if (tok_text_append(out, s + run, n - run)) return -1;
  return (long)n;
}

/* 1 when s[0..n) is valid UTF-8. */
static int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) { /* ASCII fast path */
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    unsigned lo, hi;
    int len = utf8_lead(c, &lo, &hi);
    if (len == 0 || i + (size_t)len > n) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (int k = 2; k < len; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    i += (size_t)len;
  }
  return 1;
}

/* ---- hashing --------------------------------------------------------------- */

uint64_t tok_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, n);
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 32;
  return h;
}

int32_t tok_map_get(const model_tokenizer *tok, const void *bytes, size_t n) {
  if (!tok->map) return -1;
  uint64_t h = tok_hash_bytes(bytes, n);
  for (size_t i = h & tok->map_mask;; i = (i + 1) & tok->map_mask) {
    int32_t id = tok->map[i];
    if (id < 0) return -1;
    if (tok->tok_len[id] == n && memcmp(tok->pool + tok->tok_off[id], bytes, n) == 0) return id;
  }
}

static inline uint64_t pair_hash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 20; }

/* Rank and result of merging ids a,b; 0 when there is no such merge. */
static inline int pair_get(const model_tokenizer *tok, int32_t a, int32_t b, int32_t *rank,
                           int32_t *res) {
  if (!tok->pairs) return 0;
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  for (size_t i = pair_hash(key) & tok->pair_mask;; i = (i + 1) & tok->pair_mask) {
    const tok_pair *p = &tok->pairs[i];
    if (p->rank < 0) return 0;
    if (p->key == key) {
      *rank = p->rank;
      *res = p->result;
      return 1;
    }
  }
}

int tok_pair_put(model_tokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t res) {
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  for (size_t i = pair_hash(key) & tok->pair_mask;; i = (i + 1) & tok->pair_mask) {
    tok_pair *p = &tok->pairs[i];
    if (p->rank < 0) {
      p->key = key;
      p->rank = rank;
      p->result = res;
      return 1;
    }
    if (p->key == key) { /* a repeated merge keeps its last rank, as HF's HashMap collect does */
      p->rank = rank;
      p->result = res;
      return 0;
    }
  }
}

/* ---- BPE of one pre-token -------------------------------------------------- */

/* Heap of (rank << 32 | position): the lowest rank, then the leftmost, merges
 * first, which is HF's order. */
static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h[p] <= v) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
  uint64_t top = h[0], v = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] < h[c]) c++;
    if (h[c] >= v) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = v;
  return top;
}

static int scratch_reserve(model_tokenizer *tok, size_t n) {
  if (n <= tok->scratch_cap) return 0;
  size_t cap = tok->scratch_cap ? tok->scratch_cap : 256;
  while (cap < n) cap *= 2;
  int32_t *sym = realloc(tok->sym, cap * 3 * sizeof *sym);
  if (!sym) return -1;
  tok->sym = sym;
  uint64_t *heap = realloc(tok->heap, cap * 3 * sizeof *heap);
  if (!heap) return -1;
  tok->heap = heap;
  tok->scratch_cap = cap;
  return 0;
}

/* Appends the ids of one pre-token s[0..n) (raw bytes). */
static int bpe_piece(model_tokenizer *tok, const unsigned char *s, size_t n, model_ids *out) {
  if (tok->ignore_merges) {
    int32_t id = tok_map_get(tok, s, n);
    if (id >= 0) {
      if (tok_ids_reserve(out, 1)) return -1;
      out->ids[out->n++] = id;
      return 0;
    }
  }
  if (scratch_reserve(tok, n)) return -1;
  int32_t *id = tok->sym, *prev = tok->sym + tok->scratch_cap, *next = prev + tok->scratch_cap;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    int32_t b = tok->byte_id[s[i]];
    if (b < 0) continue; /* HF drops symbols missing from the vocabulary (no unk) */
    id[m] = b;
    prev[m] = (int32_t)m - 1;
    next[m] = (int32_t)m + 1;
    m++;
  }
  if (m == 0) return 0;
  next[m - 1] = -1;
  size_t hn = 0;
  int32_t rank, res;
  for (size_t i = 0; i + 1 < m; i++)
    if (pair_get(tok, id[i], id[i + 1], &rank, &res))
      heap_push(tok->heap, &hn, (uint64_t)rank << 32 | i);
  while (hn > 0) {
    uint64_t top = heap_pop(tok->heap, &hn);
    int32_t r = (int32_t)(top >> 32), i = (int32_t)(uint32_t)top;
    if (id[i] < 0 || next[i] < 0) continue; /* merged away */
    int32_t j = next[i];
    if (!pair_get(tok, id[i], id[j], &rank, &res) || rank != r) continue; /* stale */
    id[i] = res;
    id[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0 && pair_get(tok, id[prev[i]], id[i], &rank, &res))
      heap_push(tok->heap, &hn, (uint64_t)rank << 32 | (uint32_t)prev[i]);
    if (next[i] >= 0 && pair_get(tok, id[i], id[next[i]], &rank, &res))
      heap_push(tok->heap, &hn, (uint64_t)rank << 32 | (uint32_t)i);
  }
  if (tok_ids_reserve(out, m)) return -1;
  for (int32_t i = 0; i >= 0; i = next[i]) out->ids[out->n++] = id[i];
  return 0;
}

/* ---- pre-token cache (bounded: cleared when full) ------------------------- */

enum { CACHE_SLOTS = 1 << 15, CACHE_MAX_KEY = 48, CACHE_BYTES = 1 << 20, CACHE_IDS = 1 << 18 };

typedef struct tok_cache_slot {
  uint64_t hash;
  uint32_t key_off, ids_off;
  uint16_t key_len, n_ids; /* n_ids == 0: empty slot */
} tok_cache_slot;

struct tok_cache {
  tok_cache_slot slots[CACHE_SLOTS];
  size_t used, bytes_used, ids_used;
  unsigned char bytes[CACHE_BYTES];
  int32_t ids[CACHE_IDS];
};

static int cached_piece(model_tokenizer *tok, const unsigned char *s, size_t n, model_ids *out) {
  if (n > CACHE_MAX_KEY) return bpe_piece(tok, s, n, out);
  if (!tok->cache) {
    tok->cache = calloc(1, sizeof *tok->cache);
    if (!tok->cache) return bpe_piece(tok, s, n, out);
  }
  tok_cache *c = tok->cache;
  uint64_t h = tok_hash_bytes(s, n);
  size_t i = h & (CACHE_SLOTS - 1);
  for (;; i = (i + 1) & (CACHE_SLOTS - 1)) {
    tok_cache_slot *sl = &c->slots[i];
    if (sl->n_ids == 0) break;
    if (sl->hash == h && sl->key_len == n && memcmp(c->bytes + sl->key_off, s, n) == 0) {
      if (tok_ids_reserve(out, sl->n_ids)) return -1;
      memcpy(out->ids + out->n, c->ids + sl->ids_off, sl->n_ids * sizeof(int32_t));
      out->n += sl->n_ids;
      return 0;
    }
  }
  size_t before = out->n;
  if (bpe_piece(tok, s, n, out)) return -1;
  size_t k = out->n - before;
  if (k == 0) return 0;
  if (c->used * 2 >= CACHE_SLOTS || c->bytes_used + n > CACHE_BYTES || c->ids_used + k > CACHE_IDS) {
    memset(c->slots, 0, sizeof c->slots);
    c->used = c->bytes_used = c->ids_used = 0;
    i = h & (CACHE_SLOTS - 1);
  }
  tok_cache_slot *sl = &c->slots[i];
  sl->hash = h;
  sl->key_off = (uint32_t)c->bytes_used;
  sl->key_len = (uint16_t)n;
  sl->ids_off = (uint32_t)c->ids_used;
  sl->n_ids = (uint16_t)k;
  memcpy(c->bytes + c->bytes_used, s, n);
  memcpy(c->ids + c->ids_used, out->ids + before, k * sizeof(int32_t));
  c->bytes_used += n;
  c->ids_used += k;
  c->used++;
  return 0;
}

void tok_cache_free(tok_cache *c) { free(c); }

/* ---- normalisation and pre-tokenisation ----------------------------------- */

/* NFC of s[0..n) (valid UTF-8) into tok->norm; returns its length or -1. */
static long nfc(model_tokenizer *tok, const unsigned char *s, size_t n, const unsigned char **res) {
  /* Code points below U+0300 (lead bytes < 0xCC) neither decompose nor
   * compose with each other, so such text is already NFC. */
  size_t i = 0;
  while (i < n && s[i] < 0xCC) i++;
  if (i == n) {
    *res = s;
    return (long)n;
  }
  utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  for (;;) {
    utf8proc_ssize_t k = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                            tok->norm, (utf8proc_ssize_t)tok->norm_cap, opt);
    if (k < 0) return -1;
    if ((size_t)k <= tok->norm_cap) {
      k = utf8proc_normalize_utf32(tok->norm, k, opt);
      if (k < 0) return -1;
      k = utf8proc_reencode(tok->norm, k, opt);
      if (k < 0) return -1;
      *res = (const unsigned char *)tok->norm;
      return (long)k;
    }
    size_t cap = (size_t)k + 64;
    utf8proc_int32_t *p = realloc(tok->norm, cap * sizeof *p);
    if (!p) return -1;
    tok->norm = p;
    tok->norm_cap = cap;
  }
}

/* Splits s[0..n) (normalised) by the regex, Isolated: matches and the gaps
 * between them are pre-tokens. Returns 0, 1 when out of memory, or a
 * (negative) PCRE2 error code. */
static int pretokenize(model_tokenizer *tok, const unsigned char *s, size_t n, model_ids *out) {
  if (!tok->re) { /* byte tokenizer: every byte is its own token */
    if (tok_ids_reserve(out, n)) return 1;
    for (size_t i = 0; i < n; i++)
      if (tok->byte_id[s[i]] >= 0) out->ids[out->n++] = tok->byte_id[s[i]];
    return 0;
  }
  size_t pos = 0;
  while (pos < n) {
    int rc = tok->re_jit ? pcre2_jit_match(tok->re, s, n, pos, PCRE2_NO_UTF_CHECK, tok->md, NULL)
                         : pcre2_match(tok->re, s, n, pos, PCRE2_NO_UTF_CHECK, tok->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return rc;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tok->md);
    size_t a = ov[0], b = ov[1];
    if (a > pos && cached_piece(tok, s + pos, a - pos, out)) return 1;
    if (b > a) {
      if (cached_piece(tok, s + a, b - a, out)) return 1;
      pos = b;
    } else { /* empty match: step over one character */
      pos = a + 1;
      while (pos < n && (s[pos] & 0xC0) == 0x80) pos++;
      if (cached_piece(tok, s + a, pos - a, out)) return 1;
    }
  }
  if (pos < n && cached_piece(tok, s + pos, n - pos, out)) return 1;
  return 0;
}

static int encode_segment(model_tokenizer *tok, const unsigned char *s, size_t n, model_ids *out,
                          grpo_error *err) {
  if (n == 0) return GRPO_OK;
  const unsigned char *t = s;
  long m = (long)n;
  if (tok->nfc) {
    m = nfc(tok, s, n, &t);
    if (m < 0) return GRPO_FAIL(err, GRPO_ENOMEM, "tokenizer: NFC normalisation failed");
  }
  int rc = pretokenize(tok, t, (size_t)m, out);
  if (rc == 1) return GRPO_FAIL(err, GRPO_ENOMEM, "tokenizer: out of memory");
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return GRPO_FAIL(err, GRPO_EINVAL, "tokenizer: pre-tokenizer regex match failed: %s", (const char *)msg);
  }
  return GRPO_OK;
}

/* Leftmost-longest added token at or after pos; returns its index or -1. */
static int find_added(const model_tokenizer *tok, const unsigned char *s, size_t n, size_t pos,
                      size_t *at) {
  for (size_t i = pos; i < n; i++) {
    if (!tok->added_first[s[i]]) continue;
    for (int k = 0; k < tok->n_added; k++) { /* sorted by length, longest first */
      const tok_added *a = &tok->added[tok->added_order[k]];
      if (a->len <= n - i && (unsigned char)a->content[0] == s[i] &&
          memcmp(a->content, s + i, a->len) == 0) {
        *at = i;
        return tok->added_order[k];
      }
    }
  }
  return -1;
}

int model_tokenizer_encode(model_tokenizer *tok, const char *text, size_t len, model_ids *out,
                           grpo_error *err) {
  const unsigned char *s = (const unsigned char *)text;
  model_text fixed = {0};
  if (!utf8_valid(s, len)) {
    if (model_utf8_repair(s, len, 1, &fixed) < 0)
      return GRPO_FAIL(err, GRPO_ENOMEM, "tokenizer: out of memory");
    s = (const unsigned char *)fixed.s;
    len = fixed.n;
  }
  int rc = GRPO_OK;
  size_t pos = 0;
  while (pos < len && rc == GRPO_OK) {
    size_t at = len;
    int k = tok->n_added ? find_added(tok, s, len, pos, &at) : -1;
    rc = encode_segment(tok, s + pos, at - pos, out, err);
    if (k < 0 || rc) break;
    if (tok_ids_reserve(out, 1)) {
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "tokenizer: out of memory");
      break;
    }
    out->ids[out->n++] = tok->added[k].id;
    pos = at + tok->added[k].len;
  }
  model_text_free(&fixed);
  return rc;
}

/* ---- decoding -------------------------------------------------------------- */

static int token_ok(const model_tokenizer *tok, int32_t id) {
  return id >= 0 && id < tok->n_ids && (tok->flags[id] & TOK_PRESENT);
}

int model_tokenizer_decode(const model_tokenizer *tok, const int32_t *ids, size_t n,
                           int skip_special, model_text *out, grpo_error *err) {
  size_t start = out->n;
  for (size_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (!token_ok(tok, id)) {
      if (out->s) out->s[out->n = start] = '\0';
      return GRPO_FAIL(err, GRPO_EINVAL, "decode: token %zu has id %d, outside the vocabulary (%d ids)",
                       i, (int)id, (int)tok->n_ids);
    }
    if (skip_special && (tok->flags[id] & TOK_SPECIAL)) continue;
    if (tok_text_append(out, tok->pool + tok->tok_off[id], tok->tok_len[id])) {
      if (out->s) out->s[out->n = start] = '\0';
      return GRPO_FAIL(err, GRPO_ENOMEM, "decode: out of memory");
    }
  }
  size_t len = out->n - start;
  if (len == 0 || utf8_valid((const unsigned char *)out->s + start, len)) return GRPO_OK;
  /* rare: repair a copy of the bytes back into out */
  unsigned char *raw = malloc(len);
  if (!raw) return GRPO_FAIL(err, GRPO_ENOMEM, "decode: out of memory");
  memcpy(raw, out->s + start, len);
  out->n = start;
  long rc = model_utf8_repair(raw, len, 1, out);
  free(raw);
  if (rc < 0) return GRPO_FAIL(err, GRPO_ENOMEM, "decode: out of memory");
  return GRPO_OK;
}

void model_detok_stream_init(model_detok_stream *s, const model_tokenizer *tok, int skip_special) {
  memset(s, 0, sizeof *s);
  s->tok = tok;
  s->skip_special = skip_special;
}

int model_detok_stream_push(model_detok_stream *s, int32_t id, model_text *out, grpo_error *err) {
  const model_tokenizer *tok = s->tok;
  if (!token_ok(tok, id))
    return GRPO_FAIL(err, GRPO_EINVAL, "decode: id %d is outside the vocabulary (%d ids)", (int)id,
                     (int)tok->n_ids);
  if (s->skip_special && (tok->flags[id] & TOK_SPECIAL)) return GRPO_OK;
  const unsigned char *b = (const unsigned char *)tok->pool + tok->tok_off[id];
  size_t n = tok->tok_len[id];
  size_t start = 0; /* bytes of this token already consumed */
  if (s->npend) {
    /* Held-back bytes plus the first few of this token: a sequence is at
     * most 4 bytes, so this window settles everything that began before. */
    unsigned char win[8];
    size_t w = (size_t)s->npend, take = n < 4 ? n : 4, total = w + take;
    memcpy(win, s->pend, w);
    memcpy(win + w, b, take);
    long used = model_utf8_repair(win, total, 0, out);
    if (used < 0) return GRPO_FAIL(err, GRPO_ENOMEM, "decode: out of memory");
    if ((size_t)used < w) { /* still incomplete (short token): keep holding */
      memmove(s->pend, win + used, total - (size_t)used);
      s->npend = (int)(total - (size_t)used);
      return GRPO_OK;
    }
    start = (size_t)used - w;
  }
  long k = model_utf8_repair(b + start, n - start, 0, out);
  if (k < 0) return GRPO_FAIL(err, GRPO_ENOMEM, "decode: out of memory");
  size_t rest = n - start - (size_t)k;
  memcpy(s->pend, b + start + k, rest);
  s->npend = (int)rest;
  return GRPO_OK;
}

int model_detok_stream_finish(model_detok_stream *s, model_text *out, grpo_error *err) {
  if (s->npend && model_utf8_repair(s->pend, (size_t)s->npend, 1, out) < 0)
    return GRPO_FAIL(err, GRPO_ENOMEM, "decode: out of memory");
  s->npend = 0;
  return GRPO_OK;
}

/* ---- accessors ------------------------------------------------------------- */

int32_t model_tokenizer_n_ids(const model_tokenizer *tok) { return tok->n_ids; }

uint64_t model_tokenizer_fingerprint(const model_tokenizer *tok) { return tok->fingerprint; }

int model_tokenizer_is_special(const model_tokenizer *tok, int32_t id) {
  return token_ok(tok, id) && (tok->flags[id] & TOK_SPECIAL);
}

int32_t model_tokenizer_eos_id(const model_tokenizer *tok) { return tok->eos_id; }
int32_t model_tokenizer_pad_id(const model_tokenizer *tok) { return tok->pad_id; }
const char *model_tokenizer_chat_template(const model_tokenizer *tok) { return tok->chat_template; }

const char *model_tokenizer_token_bytes(const model_tokenizer *tok, int32_t id, size_t *len) {
  if (!token_ok(tok, id)) return NULL;
  if (len) *len = tok->tok_len[id];
  return tok->pool + tok->tok_off[id];
}

int32_t model_tokenizer_find(const model_tokenizer *tok, const char *text) {
  size_t n = strlen(text);
  for (int k = 0; k < tok->n_added; k++)
    if (tok->added[k].len == n && memcmp(tok->added[k].content, text, n) == 0) return tok->added[k].id;
  return tok_map_get(tok, text, n);
}
