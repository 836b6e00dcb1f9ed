#include "reward/pgrpo.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reward/registry.h"

enum tag {
  T_NONE = -1,
  T_PAR_OPEN,
  T_PAR_CLOSE,
  T_OUTLINES_OPEN,
  T_OUTLINES_CLOSE,
  T_OUTLINE_OPEN,
  T_OUTLINE_CLOSE,
  T_THREAD_OPEN,
  T_THREAD_CLOSE,
};

static const struct {
  const char *s;
  size_t n;
} k_tags[] = {
    {"<Parallel>", 10}, {"</Parallel>", 11}, {"<Outlines>", 10}, {"</Outlines>", 11},
    {"<Outline>", 9},   {"</Outline>", 10},  {"<Thread>", 8},    {"</Thread>", 9},
};

static int match_tag(const char *p, size_t avail) {
  for (int i = 0; i < (int)(sizeof k_tags / sizeof k_tags[0]); i++)
    if (avail >= k_tags[i].n && memcmp(p, k_tags[i].s, k_tags[i].n) == 0) return i;
  return T_NONE;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses `\s*([0-9]+(\.[0-9]+)*)\s*:` at p (the header regex of the rollout
 * state machine). Returns 1 and the id span, or 0. */
static int parse_id(const char *text, size_t len, size_t p, size_t *id_at, size_t *id_len) {
  while (p < len && is_space(text[p])) p++;
  size_t start = p;
  if (p >= len || !is_digit(text[p])) return 0;
  for (;;) {
    while (p < len && is_digit(text[p])) p++;
    if (p + 1 < len && text[p] == '.' && is_digit(text[p + 1])) {
      p++;
      continue;
    }
    break;
  }
  size_t end = p;
  while (p < len && is_space(text[p])) p++;
  if (p >= len || text[p] != ':') return 0;
  *id_at = start;
  *id_len = end - start;
  return 1;
}

enum region { R_OUT, R_BLK, R_THR };

typedef struct parser {
  const char *text;
  size_t len;
  const int32_t *off;
  int32_t n_tok;
  int32_t tok;       /* next token not yet assigned */
  size_t flushed_at; /* byte position up to which units are assigned */
  int region;
  int in_block, in_thread, outlines_open, outline_open, saw_outlines;
  int64_t blk_seq, thr_sum, thr_max, cur_thr;
  int32_t blk_threads;
  int n_ids;
  size_t id_at[REWARD_PGRPO_MAX_OUTLINES], id_len[REWARD_PGRPO_MAX_OUTLINES];
  reward_pgrpo_stats *st;
} parser;

/* Assigns every unit starting before byte b (all remaining ones when b is
 * past the end) to the current region. */
static void flush(parser *ps, size_t b) {
  int64_t units;
  if (ps->off) {
    int32_t t0 = ps->tok;
    if (b > ps->len) {
      ps->tok = ps->n_tok;
    } else {
      while (ps->tok < ps->n_tok && (size_t)ps->off[ps->tok] < b) ps->tok++;
    }
    units = ps->tok - t0;
  } else {
    if (b > ps->len) b = ps->len;
    units = (int64_t)(b - ps->flushed_at);
  }
  if (b > ps->flushed_at) ps->flushed_at = b;
  switch (ps->region) {
    case R_OUT: ps->st->non_block += units; break;
    case R_BLK: ps->blk_seq += units; break;
    default: ps->cur_thr += units; break;
  }
}

static void flag(parser *ps, unsigned bit, size_t at) {
  if (!ps->st->flags) ps->st->first_error = (int64_t)at;
  ps->st->flags |= bit;
}

static void open_block(parser *ps) {
  ps->in_block = 1;
  ps->in_thread = ps->outlines_open = ps->outline_open = ps->saw_outlines = 0;
  ps->blk_seq = ps->thr_sum = ps->thr_max = ps->cur_thr = 0;
  ps->blk_threads = 0;
  ps->n_ids = 0;
  ps->region = R_BLK;
}

static void close_thread(parser *ps) {
  ps->thr_sum += ps->cur_thr;
  if (ps->cur_thr > ps->thr_max) ps->thr_max = ps->cur_thr;
  ps->cur_thr = 0;
  ps->blk_threads++;
  ps->in_thread = 0;
  ps->region = R_BLK;
}

static void close_block(parser *ps, size_t at) {
  reward_pgrpo_stats *st = ps->st;
  if (ps->outlines_open || ps->outline_open) flag(ps, REWARD_PGRPO_ORDER, at);
  if (ps->blk_threads == 0) flag(ps, REWARD_PGRPO_EMPTY_BLOCK, at);
  else if (ps->blk_threads != ps->n_ids) flag(ps, REWARD_PGRPO_MISMATCH, at);
  st->parallel_total += ps->blk_seq + ps->thr_sum;
  st->longest += ps->blk_seq + ps->thr_max;
  st->blocks++;
  st->threads += ps->blk_threads;
  if (ps->blk_threads > st->max_threads) st->max_threads = ps->blk_threads;
  ps->in_block = 0;
  ps->region = R_OUT;
}

static void add_outline_id(parser *ps, size_t at, size_t n) {
  for (int i = 0; i < ps->n_ids; i++)
    if (ps->id_len[i] == n && memcmp(ps->text + ps->id_at[i], ps->text + at, n) == 0) return;
  if (ps->n_ids == REWARD_PGRPO_MAX_OUTLINES) {
    flag(ps, REWARD_PGRPO_TOO_MANY, at);
    return;
  }
  ps->id_at[ps->n_ids] = at;
  ps->id_len[ps->n_ids] = n;
  ps->n_ids++;
}

/* Thread k (0-based) must carry outline id k. */
static void check_thread_id(parser *ps, size_t content_at, size_t tag_at) {
  size_t at, n;
  int k = ps->blk_threads;
  if (!parse_id(ps->text, ps->len, content_at, &at, &n) || k >= ps->n_ids ||
      ps->id_len[k] != n || memcmp(ps->text + ps->id_at[k], ps->text + at, n) != 0)
    flag(ps, REWARD_PGRPO_MISMATCH, tag_at);
}

static void on_tag(parser *ps, int tag, size_t p) {
  size_t end = p + k_tags[tag].n;
  if (ps->in_thread) {
    if (tag == T_THREAD_CLOSE) {
      flush(ps, p);
      close_thread(ps);
    } else {
      flag(ps, REWARD_PGRPO_TAG_IN_THREAD, p);
    }
    return;
  }
  if (!ps->in_block) {
    if (tag == T_PAR_OPEN) {
      flush(ps, end);
      open_block(ps);
    } else {
      flag(ps, REWARD_PGRPO_STRAY_TAG, p);
    }
    return;
  }
  switch (tag) {
    case T_PAR_OPEN: flag(ps, REWARD_PGRPO_NESTED, p); break;
    case T_PAR_CLOSE:
      flush(ps, p);
      close_block(ps, p);
      break;
    case T_OUTLINES_OPEN:
      if (ps->saw_outlines || ps->blk_threads > 0) flag(ps, REWARD_PGRPO_ORDER, p);
      ps->saw_outlines = ps->outlines_open = 1;
      break;
    case T_OUTLINES_CLOSE:
      if (!ps->outlines_open) flag(ps, REWARD_PGRPO_STRAY_TAG, p);
      else if (ps->outline_open) flag(ps, REWARD_PGRPO_ORDER, p);
      ps->outlines_open = ps->outline_open = 0;
      break;
    case T_OUTLINE_OPEN: {
      if (!ps->outlines_open) {
        flag(ps, REWARD_PGRPO_STRAY_TAG, p);
        break;
      }
      if (ps->outline_open) flag(ps, REWARD_PGRPO_ORDER, p);
      ps->outline_open = 1;
      size_t at, n;
      if (parse_id(ps->text, ps->len, end, &at, &n)) add_outline_id(ps, at, n);
      else flag(ps, REWARD_PGRPO_MISMATCH, p);
      break;
    }
    case T_OUTLINE_CLOSE:
      if (!ps->outline_open) flag(ps, REWARD_PGRPO_STRAY_TAG, p);
      ps->outline_open = 0;
      break;
    case T_THREAD_OPEN:
      if (!ps->saw_outlines) flag(ps, REWARD_PGRPO_NO_OUTLINES, p);
      if (ps->outlines_open || ps->outline_open) flag(ps, REWARD_PGRPO_ORDER, p);
      ps->outlines_open = ps->outline_open = 0;
      check_thread_id(ps, end, p);
      flush(ps, end);
      ps->in_thread = 1;
      ps->cur_thr = 0;
      ps->region = R_THR;
      break;
    case T_THREAD_CLOSE: flag(ps, REWARD_PGRPO_STRAY_TAG, p); break;
    default: break;
  }
}

int reward_pgrpo_parse(const char *text, size_t len, const int32_t *offsets, int32_t n_tokens,
                       reward_pgrpo_stats *stats, grpo_error *err) {
  memset(stats, 0, sizeof *stats);
  stats->first_error = -1;
  if (!text && len > 0) return GRPO_FAIL(err, GRPO_EINVAL, "pgrpo: text is NULL with len %zu", len);
  if (offsets) {
    if (n_tokens < 0)
      return GRPO_FAIL(err, GRPO_EINVAL, "pgrpo: token count %d is negative", (int)n_tokens);
    for (int32_t i = 0; i < n_tokens; i++) {
      if (offsets[i] < 0 || (size_t)offsets[i] > len)
        return GRPO_FAIL(err, GRPO_EINVAL,
                         "pgrpo: token_offsets[%d] = %d is outside the completion [0, %zu]",
                         (int)i, (int)offsets[i], len);
      if (i > 0 && offsets[i] < offsets[i - 1])
        return GRPO_FAIL(err, GRPO_EINVAL,
                         "pgrpo: token_offsets[%d] = %d is before token_offsets[%d] = %d",
                         (int)i, (int)offsets[i], (int)(i - 1), (int)offsets[i - 1]);
    }
  }
  parser ps;
  memset(&ps, 0, sizeof ps);
  ps.text = text;
  ps.len = len;
  ps.off = offsets;
  ps.n_tok = offsets ? n_tokens : 0;
  ps.region = R_OUT;
  ps.st = stats;

  size_t p = 0;
  while (p < len) {
    const char *lt = memchr(text + p, '<', len - p);
    if (!lt) break;
    p = (size_t)(lt - text);
    int tag = match_tag(lt, len - p);
    if (tag == T_NONE) {
      p++;
      continue;
    }
    on_tag(&ps, tag, p);
    p += k_tags[tag].n;
  }
  /* EOF: flush what is open, as the reference does. */
  flush(&ps, len + 1);
  if (ps.in_thread) {
    flag(&ps, REWARD_PGRPO_UNCLOSED_THREAD, len);
    close_thread(&ps);
  }
  if (ps.in_block) {
    flag(&ps, REWARD_PGRPO_UNCLOSED_BLOCK, len);
    close_block(&ps, len);
  }
  stats->total = stats->non_block + stats->parallel_total;
  stats->longest += stats->non_block;
  return GRPO_OK;
}

const char *reward_pgrpo_flags_str(uint32_t flags, char *buf, size_t cap) {
  static const char *names[REWARD_PGRPO_NFLAGS] = {
      "unclosed_block", "unclosed_thread", "stray_tag",  "nested",   "tag_in_thread",
      "no_outlines",    "mismatch",        "empty_block", "order",   "too_many_outlines",
  };
  if (!cap) return buf;
  buf[0] = '\0';
  if (!flags) {
    snprintf(buf, cap, "ok");
    return buf;
  }
  size_t used = 0;
  for (int i = 0; i < REWARD_PGRPO_NFLAGS; i++) {
    if (!(flags & (1u << i))) continue;
    int n = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", names[i]);
    if (n < 0 || (size_t)n >= cap - used) break;
    used += (size_t)n;
  }
  return buf;
}

void reward_pgrpo_defaults(reward_pgrpo_options *opt) {
  opt->rho = 0.5;
  opt->clip = 0.2;
  opt->form = REWARD_PGRPO_FORM_PAPER;
  opt->malformed = REWARD_PGRPO_MALFORMED_ZERO;
}

int reward_pgrpo_set(reward_pgrpo_options *opt, const char *key, const char *value,
                     grpo_error *err) {
  if (strcmp(key, "rho") == 0) return reward_parse_double(key, value, 0.0, HUGE_VAL, &opt->rho, err);
  if (strcmp(key, "clip") == 0) return reward_parse_double(key, value, 0.0, HUGE_VAL, &opt->clip, err);
  if (strcmp(key, "form") == 0) {
    static const char *const names[] = {"paper", "code", NULL};
    return reward_parse_enum(key, value, names, &opt->form, err);
  }
  if (strcmp(key, "malformed") == 0) {
    static const char *const names[] = {"zero", "lenient", NULL};
    return reward_parse_enum(key, value, names, &opt->malformed, err);
  }
  return GRPO_FAIL(err, GRPO_EINVAL, "unknown option '%s' (valid: rho, clip, form, malformed)",
                   key);
}

double reward_pgrpo_acceleration(const reward_pgrpo_options *opt, const reward_pgrpo_stats *s,
                                 int correct) {
  if (!correct || s->total <= 0) return 0.0;
  if (s->flags && opt->malformed == REWARD_PGRPO_MALFORMED_ZERO) return 0.0;
  double eta = 1.0 - (double)s->longest / (double)s->total;
  if (eta < 0.0) eta = 0.0;
  if (opt->form == REWARD_PGRPO_FORM_CODE) return opt->rho * fmin(eta, opt->clip);
  return fmin(opt->rho * eta, opt->clip);
}
