#include "rollout/threads.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char OUTLINE_RE[] = "<Outline>\\s*([0-9]+(?:\\.[0-9]+)*)\\s*:";

static int text_append(rollout_tw *t, const char *s, grpo_error *err) {
  int n = (int)strlen(s);
  if (t->text_len + n + 1 > t->text_cap) {
    int cap = t->text_cap ? t->text_cap : 4096;
    while (t->text_len + n + 1 > cap) cap *= 2;
    char *grown = realloc(t->text, (size_t)cap);
    if (!grown) return GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory for the text");
    t->text = grown;
    t->text_cap = cap;
  }
  memcpy(t->text + t->text_len, s, (size_t)n + 1);
  t->text_len += n;
  return GRPO_OK;
}

/* Appends tokens to the combined view; returns 0 when they do not fit. */
static int combined_append(rollout_tw *t, const int32_t *ids, const float *lp, int n, uint8_t trained) {
  if (t->combined.n + n > t->opt.max_len) return 0;
  memcpy(t->combined.ids + t->combined.n, ids, sizeof *ids * (size_t)n);
  memset(t->combined.mask + t->combined.n, trained, (size_t)n);
  for (int i = 0; i < n; i++) t->combined.logprob[t->combined.n + i] = trained && lp ? lp[i] : 0.0f;
  t->combined.n += n;
  return 1;
}

/* Orchestrator text: tokenized and appended untrained, to text and ids. */
static int append_orchestrated(rollout_tw *t, const char *s, grpo_error *err) {
  int32_t ids[64];
  int n = t->opt.encode(t->opt.encode_ctx, s, ids, 64);
  if (n < 0) return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout: cannot tokenize \"%s\"", s);
  if (!combined_append(t, ids, NULL, n, 0)) {
    t->truncated = 1;
    t->state = ROLLOUT_TW_DONE;
    t->finish = ROLLOUT_FINISH_LENGTH;
    return GRPO_OK;
  }
  return text_append(t, s, err);
}

int rollout_tw_init(rollout_tw *t, const rollout_tw_options *opt, const int32_t *prompt,
                    int n_prompt, grpo_error *err) {
  memset(t, 0, sizeof *t);
  t->opt = *opt;
  if (t->opt.max_threads <= 0) t->opt.max_threads = 16;
  if (t->opt.max_threads > ROLLOUT_TW_MAX_THREADS) t->opt.max_threads = ROLLOUT_TW_MAX_THREADS;
  if (t->opt.max_rounds <= 0) t->opt.max_rounds = 32;
  if (!opt->encode) return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout needs a tokenizer callback");
  if (n_prompt <= 0 || n_prompt >= opt->max_len)
    return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout: prompt of %d tokens does not fit max_len %d",
                     n_prompt, opt->max_len);
  t->combined.ids = malloc(sizeof(int32_t) * (size_t)opt->max_len);
  t->combined.mask = malloc((size_t)opt->max_len);
  t->combined.logprob = malloc(sizeof(float) * (size_t)opt->max_len);
  for (int k = 0; k < t->opt.max_threads; k++) {
    t->thread_out[k] = malloc(sizeof(int32_t) * (size_t)opt->max_len);
    t->thread_lp[k] = malloc(sizeof(float) * (size_t)opt->max_len);
  }
  int pcre_err;
  PCRE2_SIZE at;
  t->regex = pcre2_compile((PCRE2_SPTR)OUTLINE_RE, PCRE2_ZERO_TERMINATED, 0, &pcre_err, &at, NULL);
  t->match = t->regex ? pcre2_match_data_create_from_pattern(t->regex, NULL) : NULL;
  int ok = t->combined.ids && t->combined.mask && t->combined.logprob && t->regex && t->match;
  for (int k = 0; k < t->opt.max_threads; k++) ok = ok && t->thread_out[k] && t->thread_lp[k];
  if (!ok) {
    rollout_tw_free(t);
    return GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory");
  }
  combined_append(t, prompt, NULL, n_prompt, 0);
  t->n_prompt = n_prompt;
  t->state = ROLLOUT_TW_SEQ;
  return text_append(t, "", err);
}

void rollout_tw_free(rollout_tw *t) {
  free(t->combined.ids);
  free(t->combined.mask);
  free(t->combined.logprob);
  for (int i = 0; i < t->n_branches; i++) {
    free(t->branches[i].ids);
    free(t->branches[i].mask);
    free(t->branches[i].logprob);
  }
  free(t->branches);
  for (int k = 0; k < ROLLOUT_TW_MAX_THREADS; k++) {
    free(t->thread_out[k]);
    free(t->thread_lp[k]);
    free(t->thread_text[k]);
  }
  free(t->text);
  if (t->match) pcre2_match_data_free(t->match);
  if (t->regex) pcre2_code_free(t->regex);
  memset(t, 0, sizeof *t);
}

static int budget_left(const rollout_tw *t, int context) {
  int by_budget = t->opt.max_new_tokens - t->generated;
  int by_len = t->opt.max_len - context;
  return by_budget < by_len ? by_budget : by_len;
}

int rollout_tw_pending(const rollout_tw *t, rollout_tw_request *reqs, int max) {
  if (t->state == ROLLOUT_TW_SEQ) {
    if (max < 1) return 1;
    reqs[0] = (rollout_tw_request){t->combined.ids, t->combined.n, NULL, 0, "</Outlines>",
                                   budget_left(t, t->combined.n), -1};
    return 1;
  }
  if (t->state != ROLLOUT_TW_FORK) return 0;
  int n = 0;
  for (int k = 0; k < t->n_threads; k++) {
    if (t->thread_done[k]) continue;
    if (n < max)
      reqs[n] = (rollout_tw_request){t->combined.ids, t->thread_base, t->thread_hdr[k],
                                     t->thread_hdr_n[k], "</Thread>",
                                     budget_left(t, t->thread_base + t->thread_hdr_n[k]), k};
    n++;
  }
  return n;
}

/* Outline ids in the text since the last "<Outlines>". */
static void parse_outlines(rollout_tw *t) {
  t->n_threads = 0;
  const char *from = t->text + t->outlines_at;
  size_t len = strlen(from), off = 0;
  while (off <= len && t->n_threads < t->opt.max_threads) {
    int rc = pcre2_match(t->regex, (PCRE2_SPTR)from, len, off, 0, t->match, NULL);
    if (rc < 2) break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->match);
    char id[24];
    size_t n = ov[3] - ov[2];
    if (n >= sizeof id) n = sizeof id - 1;
    memcpy(id, from + ov[2], n);
    id[n] = '\0';
    int dup = 0;
    for (int k = 0; k < t->n_threads; k++) dup |= strcmp(t->thread_ids[k], id) == 0;
    if (!dup) snprintf(t->thread_ids[t->n_threads++], sizeof t->thread_ids[0], "%s", id);
    off = ov[1] > off ? ov[1] : off + 1;
  }
}

static void finish(rollout_tw *t, rollout_finish fin, int truncated) {
  t->state = ROLLOUT_TW_DONE;
  t->finish = fin;
  t->truncated = truncated;
}

static int start_fork(rollout_tw *t, grpo_error *err) {
  t->thread_base = t->combined.n;
  for (int k = 0; k < t->n_threads; k++) {
    char hdr[64];
    snprintf(hdr, sizeof hdr, "\n<Thread>\n%s:", t->thread_ids[k]);
    int n = t->opt.encode(t->opt.encode_ctx, hdr, t->thread_hdr[k], 32);
    if (n < 0) return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout: cannot tokenize \"%s\"", hdr);
    t->thread_hdr_n[k] = n;
    t->thread_out_n[k] = 0;
    t->thread_done[k] = 0;
  }
  t->state = ROLLOUT_TW_FORK;
  t->rounds++;
  t->blocks++;
  return GRPO_OK;
}

static int record_branch(rollout_tw *t, int k, grpo_error *err) {
  if (t->n_branches == t->cap_branches) {
    int cap = t->cap_branches ? 2 * t->cap_branches : 8;
    rollout_tw_seq *grown = realloc(t->branches, sizeof *grown * (size_t)cap);
    if (!grown) return GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory");
    t->branches = grown;
    t->cap_branches = cap;
  }
  int n = t->thread_base + t->thread_hdr_n[k] + t->thread_out_n[k];
  rollout_tw_seq *b = &t->branches[t->n_branches];
  b->ids = malloc(sizeof(int32_t) * (size_t)n);
  b->mask = malloc((size_t)n);
  b->logprob = calloc((size_t)n, sizeof(float));
  if (!b->ids || !b->mask || !b->logprob) {
    free(b->ids);
    free(b->mask);
    free(b->logprob);
    return GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory");
  }
  memcpy(b->ids, t->combined.ids, sizeof(int32_t) * (size_t)t->thread_base);
  memcpy(b->ids + t->thread_base, t->thread_hdr[k], sizeof(int32_t) * (size_t)t->thread_hdr_n[k]);
  memcpy(b->ids + t->thread_base + t->thread_hdr_n[k], t->thread_out[k],
         sizeof(int32_t) * (size_t)t->thread_out_n[k]);
  memset(b->mask, 0, (size_t)(t->thread_base + t->thread_hdr_n[k]));
  memset(b->mask + t->thread_base + t->thread_hdr_n[k], 1, (size_t)t->thread_out_n[k]);
  memcpy(b->logprob + t->thread_base + t->thread_hdr_n[k], t->thread_lp[k],
         sizeof(float) * (size_t)t->thread_out_n[k]);
  b->n = n;
  t->n_branches++;
  return GRPO_OK;
}

static int join(rollout_tw *t, grpo_error *err) {
  int ended = 0;
  for (int k = 0; k < t->n_threads && t->state == ROLLOUT_TW_FORK; k++) {
    char hdr[64];
    snprintf(hdr, sizeof hdr, "\n<Thread>\n%s:", t->thread_ids[k]);
    /* thread 1 is trained in the combined view; the others in their branch */
    if (!combined_append(t, t->thread_hdr[k], NULL, t->thread_hdr_n[k], 0) ||
        !combined_append(t, t->thread_out[k], t->thread_lp[k], t->thread_out_n[k], k == 0)) {
      finish(t, ROLLOUT_FINISH_LENGTH, 1);
      break;
    }
    int rc = text_append(t, hdr, err);
    if (!rc) rc = text_append(t, t->thread_text[k], err);
    if (!rc && k > 0) rc = record_branch(t, k, err);
    if (rc) return rc;
    if (t->thread_fin[k] != ROLLOUT_FINISH_STOP) {
      ended = 1;
      if ((rc = append_orchestrated(t, "</Thread>", err))) return rc;
    }
  }
  if (t->state != ROLLOUT_TW_FORK) return GRPO_OK;
  if (t->opt.join_close) {
    int rc = append_orchestrated(t, "\n</Parallel>", err);
    if (rc || t->state != ROLLOUT_TW_FORK) return rc;
  }
  int out_of_budget = t->generated >= t->opt.max_new_tokens;
  if (ended || out_of_budget || t->rounds >= t->opt.max_rounds) {
    int eos = 0;
    for (int k = 0; k < t->n_threads; k++) eos |= t->thread_fin[k] == ROLLOUT_FINISH_EOS;
    finish(t, eos ? ROLLOUT_FINISH_EOS : ROLLOUT_FINISH_LENGTH, !eos);
  } else {
    t->state = ROLLOUT_TW_SEQ;
  }
  return GRPO_OK;
}

int rollout_tw_complete(rollout_tw *t, int thread, const int32_t *ids, const float *logprobs, int n,
                        rollout_finish fin, const char *text, grpo_error *err) {
  if (n < 0) return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout: negative token count");
  if (thread < 0) {
    if (t->state != ROLLOUT_TW_SEQ)
      return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout: main-sequence result while forked");
    t->generated += n;
    if (!combined_append(t, ids, logprobs, n, 1)) {
      finish(t, ROLLOUT_FINISH_LENGTH, 1);
      return GRPO_OK;
    }
    int rc = text_append(t, text ? text : "", err);
    if (rc) return rc;
    t->rounds++;
    if (fin != ROLLOUT_FINISH_STOP) {
      finish(t, fin, fin == ROLLOUT_FINISH_LENGTH);
      return GRPO_OK;
    }
    /* stopped at "</Outlines>": find the block's "<Outlines>" and its ids */
    const char *open = NULL;
    for (const char *p = strstr(t->text, "<Outlines>"); p; p = strstr(p + 1, "<Outlines>")) open = p;
    t->outlines_at = open ? (int)(open - t->text) : t->text_len;
    parse_outlines(t);
    if (t->n_threads == 0 || t->rounds >= t->opt.max_rounds) {
      /* no outline ids: keep decoding the main sequence */
      if (t->rounds >= t->opt.max_rounds) finish(t, ROLLOUT_FINISH_LENGTH, 1);
      return GRPO_OK;
    }
    return start_fork(t, err);
  }
  if (t->state != ROLLOUT_TW_FORK || thread >= t->n_threads || t->thread_done[thread])
    return GRPO_FAIL(err, GRPO_EINVAL, "parallel rollout: unexpected result for thread %d", thread);
  int cap = t->opt.max_len;
  if (n > cap) n = cap;
  memcpy(t->thread_out[thread], ids, sizeof *ids * (size_t)n);
  for (int i = 0; i < n; i++) t->thread_lp[thread][i] = logprobs ? logprobs[i] : 0.0f;
  t->thread_out_n[thread] = n;
  t->thread_fin[thread] = fin;
  t->thread_done[thread] = 1;
  t->generated += n;
  free(t->thread_text[thread]);
  t->thread_text[thread] = strdup(text ? text : "");
  if (!t->thread_text[thread]) return GRPO_FAIL(err, GRPO_ENOMEM, "parallel rollout: out of memory");
  for (int k = 0; k < t->n_threads; k++)
    if (!t->thread_done[k]) return GRPO_OK;
  return join(t, err);
}

/* ---- shipping a finished trajectory ------------------------------------------------ */

static size_t seq_bytes(int n) { return sizeof(int32_t) + (size_t)n * (sizeof(int32_t) + 1 + sizeof(float)); }

size_t rollout_tw_packed_size(const rollout_tw *t) {
  size_t s = 5 * sizeof(int32_t) + seq_bytes(t->combined.n);
  for (int b = 0; b < t->n_branches; b++) s += seq_bytes(t->branches[b].n);
  return s;
}

static unsigned char *put_seq(unsigned char *o, const rollout_tw_seq *q) {
  int32_t n = q->n;
  memcpy(o, &n, sizeof n), o += sizeof n;
  memcpy(o, q->ids, sizeof(int32_t) * (size_t)n), o += sizeof(int32_t) * (size_t)n;
  memcpy(o, q->mask, (size_t)n), o += n;
  memcpy(o, q->logprob, sizeof(float) * (size_t)n), o += sizeof(float) * (size_t)n;
  return o;
}

void rollout_tw_pack(const rollout_tw *t, unsigned char *out) {
  int32_t hdr[5] = {t->n_prompt, t->n_branches, (int32_t)t->finish, t->truncated, t->generated};
  memcpy(out, hdr, sizeof hdr);
  unsigned char *o = put_seq(out + sizeof hdr, &t->combined);
  for (int b = 0; b < t->n_branches; b++) o = put_seq(o, &t->branches[b]);
}

/* Reads one view into q (exact-size arrays); 0 when the bytes run short. */
static int get_seq(const unsigned char **p, const unsigned char *end, rollout_tw_seq *q) {
  int32_t n;
  if ((size_t)(end - *p) < sizeof n) return 0;
  memcpy(&n, *p, sizeof n);
  if (n < 0 || (size_t)(end - *p - (ptrdiff_t)sizeof n) / (sizeof(int32_t) + 1 + sizeof(float)) < (size_t)n) return 0;
  *p += sizeof n;
  size_t m = (size_t)n ? (size_t)n : 1;
  q->ids = malloc(sizeof(int32_t) * m);
  q->mask = malloc(m);
  q->logprob = malloc(sizeof(float) * m);
  if (!q->ids || !q->mask || !q->logprob) return -1;
  memcpy(q->ids, *p, sizeof(int32_t) * (size_t)n), *p += sizeof(int32_t) * (size_t)n;
  memcpy(q->mask, *p, (size_t)n), *p += n;
  memcpy(q->logprob, *p, sizeof(float) * (size_t)n), *p += sizeof(float) * (size_t)n;
  q->n = n;
  return 1;
}

int rollout_tw_unpack(rollout_tw *t, const unsigned char *in, size_t n, size_t *used, grpo_error *err) {
  memset(t, 0, sizeof *t);
  const unsigned char *p = in, *end = in + n;
  int32_t hdr[5];
  if (n < sizeof hdr) return GRPO_FAIL(err, GRPO_EFORMAT, "trajectory: %zu bytes, too short", n);
  memcpy(hdr, p, sizeof hdr);
  p += sizeof hdr;
  if (hdr[0] <= 0 || hdr[1] < 0 || hdr[1] > 1 << 20)
    return GRPO_FAIL(err, GRPO_EFORMAT, "trajectory: bad header (prompt %d, branches %d)", hdr[0], hdr[1]);
  int ok = get_seq(&p, end, &t->combined);
  if (ok == 1 && hdr[1] > 0) {
    t->branches = calloc((size_t)hdr[1], sizeof *t->branches);
    ok = t->branches ? 1 : -1;
    t->cap_branches = hdr[1];
    for (int b = 0; ok == 1 && b < hdr[1]; b++) {
      ok = get_seq(&p, end, &t->branches[b]);
      t->n_branches = b + (ok != 0); /* what rollout_tw_free must release */
    }
  }
  if (ok == 1 && hdr[0] > t->combined.n) ok = 0;
  if (ok != 1) {
    rollout_tw_free(t);
    return ok < 0 ? GRPO_FAIL(err, GRPO_ENOMEM, "trajectory: out of memory")
                  : GRPO_FAIL(err, GRPO_EFORMAT, "trajectory: bytes end inside a view, or the prompt is longer than it");
  }
  t->n_prompt = hdr[0];
  t->finish = (rollout_finish)hdr[2];
  t->truncated = hdr[3];
  t->generated = hdr[4];
  t->state = ROLLOUT_TW_DONE;
  if (used) *used = (size_t)(p - in);
  return GRPO_OK;
}
