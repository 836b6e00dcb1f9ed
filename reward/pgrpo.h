/* ThreadWeaver P-GRPO: the parallel-structure (critical-path) parser and the
 * acceleration reward (arXiv 2512.07843 Eq. 5-8; reference/pgrpo.md §8.4).
 *
 * Input: the completion text (bytes, need not be NUL-terminated) plus the byte
 * offset at which each completion token starts. Lengths are counted in TOKENS:
 * every token is assigned to the region that holds its FIRST byte. When the
 * structure tags are single special tokens this is exactly the reference
 * parser (math_rewardv2.py::get_parallel_stats); when a tag is split over
 * several ordinary tokens, a token that straddles a region boundary counts
 * whole in the region where it starts. Without offsets (offsets == NULL) every
 * byte is one unit, so L_total = len and only the ratio is meaningful.
 *
 * Regions (one pass, no allocation, no recursion):
 *   outside a block           -> non_block   (includes <Parallel>, </Parallel>)
 *   in a block, not in thread -> blk_seq     (outlines, whitespace, the
 *                                             <Thread>/</Thread> tags)
 *   thread content            -> thread length
 *   per block: seq = blk_seq + Σ threads;  par = blk_seq + max thread
 *   L_total = non_block + Σ seq;  L_longest = non_block + Σ par
 *
 * Malformed structure is counted exactly as the reference parser counts it
 * (stray or nested tags are plain text, EOF flushes an open thread/block) and
 * also reported in `flags`; the reward then applies its `malformed` policy. */
#ifndef GRPO_REWARD_PGRPO_H
#define GRPO_REWARD_PGRPO_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Malformation bits (reward_pgrpo_stats.flags). */
enum {
  REWARD_PGRPO_UNCLOSED_BLOCK = 1u << 0,  /* EOF inside <Parallel> (block flushed) */
  REWARD_PGRPO_UNCLOSED_THREAD = 1u << 1, /* EOF inside <Thread> (thread flushed) */
  REWARD_PGRPO_STRAY_TAG = 1u << 2,       /* </Parallel>, <Thread>, <Outline>... where
                                             it cannot open/close anything (text) */
  REWARD_PGRPO_NESTED = 1u << 3,          /* <Parallel> inside a block (text) */
  REWARD_PGRPO_TAG_IN_THREAD = 1u << 4,   /* any tag but </Thread> inside a thread (text) */
  REWARD_PGRPO_NO_OUTLINES = 1u << 5,     /* a thread before any <Outlines> in its block */
  REWARD_PGRPO_MISMATCH = 1u << 6,        /* thread ids != de-duplicated outline ids, in
                                             order, or a missing "N:" id */
  REWARD_PGRPO_EMPTY_BLOCK = 1u << 7,     /* a block with no thread */
  REWARD_PGRPO_ORDER = 1u << 8,           /* <Outlines> after a thread, or twice, or an
                                             unclosed <Outlines>/<Outline> */
  REWARD_PGRPO_TOO_MANY = 1u << 9,        /* more than REWARD_PGRPO_MAX_OUTLINES ids */
  REWARD_PGRPO_NFLAGS = 10,
};

#define REWARD_PGRPO_MAX_OUTLINES 64

typedef struct reward_pgrpo_stats {
  int64_t total;          /* L_total: equals n_tokens (or len without offsets) */
  int64_t longest;        /* L_longest: the critical path */
  int64_t non_block;      /* units outside every block */
  int64_t parallel_total; /* Σ seq over blocks (parallel_ratio = this / total) */
  int32_t blocks;         /* <Parallel> blocks (closed or flushed at EOF) */
  int32_t threads;        /* threads over all blocks */
  int32_t max_threads;    /* most threads in one block */
  uint32_t flags;         /* REWARD_PGRPO_* bits; 0 = well-formed */
  int64_t first_error;    /* byte offset of the first malformation, -1 if none */
} reward_pgrpo_stats;

/* Parses `text[0..len)`. offsets: n_tokens start offsets, non-decreasing, each
 * in [0, len]; or NULL (byte units, n_tokens ignored). Returns GRPO_OK, or
 * GRPO_EINVAL naming the first bad offset. Malformed structure is not an
 * error: it is reported in stats->flags. */
int reward_pgrpo_parse(const char *text, size_t len, const int32_t *offsets, int32_t n_tokens,
                       reward_pgrpo_stats *stats, grpo_error *err);

/* Writes the names of the set flags, comma-separated ("unclosed_block,mismatch"),
 * or "ok"; returns buf. */
const char *reward_pgrpo_flags_str(uint32_t flags, char *buf, size_t cap);

typedef enum reward_pgrpo_form {
  REWARD_PGRPO_FORM_PAPER = 0, /* min(rho * eta, clip)   (paper Eq. 7, default) */
  REWARD_PGRPO_FORM_CODE = 1,  /* rho * min(eta, clip)   (public code) */
} reward_pgrpo_form;

typedef enum reward_pgrpo_malformed {
  REWARD_PGRPO_MALFORMED_ZERO = 0,    /* any flag -> bonus 0 (default: structure the
                                         orchestrator never produced was not run in
                                         parallel, so it earns nothing) */
  REWARD_PGRPO_MALFORMED_LENIENT = 1, /* use the counts as parsed (reference code) */
} reward_pgrpo_malformed;

typedef struct reward_pgrpo_options {
  double rho;       /* 0.5 */
  double clip;      /* 0.2 */
  int form;         /* reward_pgrpo_form */
  int malformed;    /* reward_pgrpo_malformed */
} reward_pgrpo_options;

void reward_pgrpo_defaults(reward_pgrpo_options *opt);
/* Sets one option from text: rho (finite, >= 0), clip (finite, >= 0),
 * form (paper|code), malformed (zero|lenient). Errors name the key and value. */
int reward_pgrpo_set(reward_pgrpo_options *opt, const char *key, const char *value,
                     grpo_error *err);

/* 1{correct} * bonus(eta), eta = 1 - longest/total (0 when total == 0). */
double reward_pgrpo_acceleration(const reward_pgrpo_options *opt, const reward_pgrpo_stats *s,
                                 int correct);

#endif
