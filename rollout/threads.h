/* ThreadWeaver fork/join for one parallel-reasoning trajectory (P-GRPO).
 *
 * The machine does no decoding itself: it says what to decode next
 * (rollout_tw_pending) and takes each result back (rollout_tw_complete), so
 * the engine can batch the threads of many trajectories together.
 *
 *   SEQ   decode the main sequence until "</Outlines>" or EOS
 *   PARSE find the outline ids, <Outline> N: ..., in the text since the last
 *         "<Outlines>" (de-duplicated, in order of appearance; none: back to SEQ)
 *   FORK  one request per id: main context + "\n<Thread>\n{id}:", stop "</Thread>"
 *   JOIN  main += header + output for every thread in id order ("</Thread>"
 *         appended where a thread ended without it), then "</Parallel>" when
 *         join_close (the paper's join; 0 lets the model close the block);
 *         SEQ again, or DONE when a thread hit EOS or the budget
 *
 * The result is what the trainer packs (trainer_pack_trajectory): the
 * combined sequence (prompt + the joined response, the autoregressive view)
 * and one branch sequence per thread after the first (main context at the
 * fork + header + that thread's output), each with a mask of the tokens the
 * model generated in that view. Thread 1's branch equals the combined path,
 * so it needs no copy. Orchestrator text (headers, forced closes) is context,
 * never trained.
 *
 * Limits: at most max_threads threads per block (further outline ids are
 * ignored), at most max_rounds SEQ/FORK rounds, and a budget of generated
 * tokens counted over all branches; each request may use the whole remaining
 * budget, so the last join can overshoot it, and the trajectory then ends
 * (truncated). */
#ifndef GRPO_ROLLOUT_THREADS_H
#define GRPO_ROLLOUT_THREADS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum rollout_finish {
  ROLLOUT_FINISH_STOP = 0,   /* the requested stop string */
  ROLLOUT_FINISH_EOS = 1,    /* an end-of-sequence token */
  ROLLOUT_FINISH_LENGTH = 2, /* max_new reached */
} rollout_finish;

/* Tokenizes orchestrator text; returns the number of ids or -1. */
typedef int (*rollout_encode_fn)(void *ctx, const char *text, int32_t *out, int cap);

typedef struct rollout_tw_options {
  int max_threads;      /* per block (default 16) */
  int max_rounds;       /* SEQ + FORK rounds (default 32) */
  int max_new_tokens;   /* generated tokens over all branches */
  int max_len;          /* longest sequence (context + completion) the model takes */
  int join_close;       /* 1: append "</Parallel>" at the join */
  rollout_encode_fn encode;
  void *encode_ctx;
} rollout_tw_options;

#define ROLLOUT_TW_MAX_THREADS 64

/* Decode from prefix ++ suffix. prefix is the trajectory's main sequence
 * (shared by every thread of a block, so the engine can reuse its KV cache);
 * suffix is the thread header (empty for the main sequence). Pointers stay
 * valid until the next rollout_tw_complete. */
typedef struct rollout_tw_request {
  const int32_t *prefix;
  int n_prefix;
  const int32_t *suffix;
  int n_suffix;
  const char *stop;        /* "</Outlines>" (main) or "</Thread>" (thread) */
  int max_new;
  int thread;              /* -1 main sequence, else 0-based thread slot */
} rollout_tw_request;

typedef struct rollout_tw_seq {
  int32_t *ids;
  uint8_t *mask;           /* 1: generated in this view (trained) */
  float *logprob;          /* sampler logprob of generated tokens, 0 elsewhere */
  int n;
} rollout_tw_seq;

typedef enum rollout_tw_state { ROLLOUT_TW_SEQ, ROLLOUT_TW_FORK, ROLLOUT_TW_DONE } rollout_tw_state;

typedef struct rollout_tw {
  rollout_tw_options opt;
  rollout_tw_state state;
  int n_prompt;
  rollout_tw_seq combined;  /* capacity opt.max_len */
  rollout_tw_seq *branches; /* threads 2.. of every block, each allocated at its join */
  int n_branches, cap_branches;
  char *text;               /* the response text so far (main view) */
  int text_len, text_cap;
  int outlines_at;          /* text offset of the last "<Outlines>" seen */
  /* the block being forked */
  int n_threads;
  char thread_ids[ROLLOUT_TW_MAX_THREADS][24];
  int thread_base;          /* combined length at the fork */
  int32_t thread_hdr[ROLLOUT_TW_MAX_THREADS][32];  /* "\n<Thread>\n{id}:" as tokens */
  int thread_hdr_n[ROLLOUT_TW_MAX_THREADS];
  int32_t *thread_out[ROLLOUT_TW_MAX_THREADS];      /* capacity opt.max_len each */
  float *thread_lp[ROLLOUT_TW_MAX_THREADS];
  int thread_out_n[ROLLOUT_TW_MAX_THREADS];
  char *thread_text[ROLLOUT_TW_MAX_THREADS];        /* decoded output, kept until the join */
  int thread_done[ROLLOUT_TW_MAX_THREADS];
  rollout_finish thread_fin[ROLLOUT_TW_MAX_THREADS];
  int generated;            /* tokens generated over all branches */
  int rounds, blocks;
  int truncated;            /* ended by the budget, the length limit or the round limit */
  rollout_finish finish;
  void *regex;              /* compiled outline pattern */
  void *match;
} rollout_tw;

int rollout_tw_init(rollout_tw *t, const rollout_tw_options *opt, const int32_t *prompt,
                    int n_prompt, grpo_error *err);
void rollout_tw_free(rollout_tw *t);

/* Fills up to max requests; returns how many are outstanding (0 = done). */
int rollout_tw_pending(const rollout_tw *t, rollout_tw_request *reqs, int max);

/* Hands back the result of request `thread` (-1 for the main sequence):
 * the generated ids (the stop string's tokens included), their logprobs (may
 * be NULL), how it ended, and the decoded text. */
int rollout_tw_complete(rollout_tw *t, int thread, const int32_t *ids, const float *logprobs, int n,
                        rollout_finish fin, const char *text, grpo_error *err);

/* A finished trajectory as bytes, for shipping between ranks: what the
 * trainer packs (prompt length, the combined and branch views with masks and
 * logprobs) and how it ended. rollout_tw_pack writes rollout_tw_packed_size
 * bytes; rollout_tw_unpack rebuilds a DONE trajectory (it decodes no
 * further; rollout_tw_free releases it) and says how many bytes it read.
 * Malformed bytes are an error, never an out-of-bounds read. */
size_t rollout_tw_packed_size(const rollout_tw *t);
void rollout_tw_pack(const rollout_tw *t, unsigned char *out);
int rollout_tw_unpack(rollout_tw *t, const unsigned char *in, size_t n, size_t *used, grpo_error *err);


#endif
