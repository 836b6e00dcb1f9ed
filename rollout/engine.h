/* The generation engine: groups of G samples per prompt over a fixed number
 * of KV-cache slots (continuous batching: a finished sequence frees its slot
 * for the next one).
 *
 * Prefix sharing: a prompt is prefilled once into one slot and its KV is
 * copied into the slots of the group's other samples, whose first tokens are
 * all drawn from that single prefill's logits. When fewer free slots than
 * samples remain, the group is admitted in parts, one prefill per part
 * (never per sample while at least G slots exist).
 *
 * A sample's token t is drawn with u = Philox(seed, step, prompt_index,
 * sample_index, t) (rollout/sampler.h), so completions do not depend on the
 * slot count, the batch composition or the rank that ran them. With budget
 * forcing the coordinate t counts every token the sample has emitted so far,
 * injected ones and removed end-of-thinking tokens included, so no uniform
 * is drawn twice; without it t is the token's index in the completion.
 *
 * Stops: a token in stop_ids (EOS; kept as the last token), a stop string in
 * the decoded text (the token completing it is kept), max_new_tokens, or the
 * slot's length limit (both "length", truncated). Tokens injected by budget
 * forcing never stop a sample by themselves (their text still joins the text
 * that later stop strings are matched in), but they count towards the
 * length limits. */
#ifndef GRPO_ROLLOUT_ENGINE_H
#define GRPO_ROLLOUT_ENGINE_H

#include <stdint.h>

#include "core/error.h"
#include "rollout/sampler.h"
#include "rollout/threads.h"

/* What the engine needs from a model. rollout_policy_from_model (policy.h)
 * wraps the transformer and its KV cache; tests use scripted policies. */
typedef struct rollout_policy {
  void *ctx;
  int vocab;     /* width of a logits row */
  int n_slots;   /* KV-cache slots */
  int max_len;   /* tokens a slot can hold */
  /* Empties a slot. */
  int (*reset)(void *ctx, int slot, grpo_error *err);
  /* Appends n tokens to a slot; logits of the last one into logits [vocab]. */
  int (*append)(void *ctx, int slot, const int32_t *ids, int n, float *logits, grpo_error *err);
  /* One token for each of n distinct slots; logits [n, vocab]. */
  int (*step)(void *ctx, int n, const int *slots, const int32_t *ids, float *logits,
              grpo_error *err);
  /* The first n_tokens of slot src into each dst slot. */
  int (*copy_prefix)(void *ctx, int src, const int *dst, int n_dst, int n_tokens, grpo_error *err);
  /* Optional (NULL = cannot): keeps the first n_tokens of a slot, dropping the
   * rest. Budget forcing needs it to take back a multi-token end of thinking. */
  int (*truncate)(void *ctx, int slot, int n_tokens, grpo_error *err);
  /* Optional (NULL = none): step, then sampling where the logits are (a
   * device: core/sample.h), so they never reach the host. Row i draws with
   * u[i] among the first `vocab` entries; out[i] gets the token and its
   * logprobs and entropy. The engine uses it for decode steps when the
   * sampling has no repetition penalty (which needs the history on the
   * host); prefills, and every step otherwise, go through append / step and
   * the host sampler. The same logits and draws give the same tokens as the
   * host sampler except within rounding of a filter or CDF boundary. */
  int (*step_sample)(void *ctx, int n, const int *slots, const int32_t *ids, int vocab,
                     const grpo_sample_params *p, const double *u, grpo_sample_result *out,
                     grpo_error *err);
} rollout_policy;

/* Turns a token into its text bytes (for stop strings); returns the length. */
typedef int (*rollout_piece_fn)(void *ctx, int32_t id, char *buf, int cap);

/* Budget forcing ("keep thinking", s1): bounds the thinking part of a
 * completion, i.e. its tokens before the first end_think sequence. The
 * prompt must leave the model thinking (e.g. end with "<think>"). The
 * delimiter is matched on token ids (Qwen3's single "</think>" token, or the
 * several tokens a byte-level tokenizer makes of it); the same text spelt
 * with other tokens is not seen as the end of thinking.
 * - Minimum: when a sample completes end_think after fewer than
 *   min_think_tokens thinking tokens, the delimiter is removed (its tokens
 *   leave the completion and the KV cache) and the continuation (e.g. the
 *   tokens of "Wait") is injected instead; sampling then goes on. At most
 *   max_continuations times per sample (0 = no cap). A continuation is only
 *   injected when at least one sampled token fits after it (before
 *   max_new_tokens, the slot length and max_think_tokens); otherwise the
 *   delimiter stands.
 * - Maximum: when the thinking reaches max_think_tokens tokens without the
 *   delimiter, force_end (default: end_think) is injected right after them,
 *   so it starts at completion index max_think_tokens; the answer is then
 *   sampled as usual.
 * Off when min_think_tokens and max_think_tokens are both 0 (the engine then
 * behaves exactly as without it). Only rollout_engine_generate supports it.
 * A removed multi-token delimiter needs policy->truncate. */
typedef struct rollout_budget_forcing {
  const int32_t *end_think;      /* the end-of-thinking sequence */
  int n_end_think;
  const int32_t *continuation;   /* injected instead of an early end_think */
  int n_continuation;
  const int32_t *force_end;      /* injected at max_think_tokens; NULL = end_think */
  int n_force_end;
  int min_think_tokens;          /* 0 = no minimum */
  int max_think_tokens;          /* 0 = no maximum */
  int max_continuations;         /* 0 = as many as min_think_tokens takes */
} rollout_budget_forcing;

typedef struct rollout_engine_options {
  rollout_sampling sampling;
  int max_new_tokens;
  uint64_t seed;
  uint32_t step;                 /* training step: part of the RNG key */
  const int32_t *stop_ids;       /* EOS and friends */
  int n_stop_ids;
  const char *const *stop_strings;
  int n_stop_strings;            /* each at most 64 bytes */
  rollout_piece_fn piece;        /* needed when n_stop_strings > 0 */
  void *piece_ctx;
  int vocab_limit;               /* tokenizer size (<= policy vocab); 0 = policy vocab */
  rollout_budget_forcing budget; /* all zero = off */
} rollout_engine_options;

typedef struct rollout_group {
  const int32_t *prompt;
  int n_prompt;
  int n_samples;
  uint32_t prompt_index;         /* global index: part of the RNG key */
  uint32_t first_sample;         /* sample indices (RNG key) start here: more
                                    samples of a prompt drawn later continue
                                    the same sequence */
} rollout_group;

/* One completion. ids / logprobs / sampler_logprobs / forced are caller
 * buffers of at least max_new_tokens entries (sampler_logprobs and forced may
 * be NULL). Tokens injected by budget forcing are not samples of the policy:
 * forced[t] = 1 marks them (so the trainer can leave them out of the loss),
 * 0 every sampled token, and their logprobs entries are 0. */
typedef struct rollout_output {
  int32_t *ids;
  float *logprobs;               /* full softmax at the temperature (see sampler.h) */
  float *sampler_logprobs;
  int n;
  rollout_finish finish;
  int truncated;                 /* ended by a length limit */
  uint32_t prompt_index, sample_index;
  uint8_t *forced;               /* optional: 1 = injected by budget forcing */
  int n_continuations;           /* budget forcing: continuations injected */
  int end_forced;                /* budget forcing: force_end injected at the maximum */
} rollout_output;

typedef struct rollout_engine_stats {
  long prefills;                 /* prefill calls */
  long prefill_tokens;
  long decode_steps;             /* batched step calls */
  long decode_tokens;
  double seconds;
} rollout_engine_stats;

typedef struct rollout_engine rollout_engine;

/* Plans every buffer for the policy's slots and vocabulary. */
int rollout_engine_create(rollout_engine **out, const rollout_policy *policy, grpo_error *err);
void rollout_engine_free(rollout_engine *e);

/* Generates n_samples completions for each group. outs has sum(n_samples)
 * entries, group by group, sample by sample. Budget forcing (opt->budget)
 * applies here. */
int rollout_engine_generate(rollout_engine *e, const rollout_engine_options *opt,
                            const rollout_group *groups, int n_groups, rollout_output *outs,
                            rollout_engine_stats *stats, grpo_error *err);

/* P-GRPO: n_samples ThreadWeaver trajectories per group (rollout/threads.h).
 * The threads of every trajectory decode concurrently in the same batch as
 * the main sequences; each thread starts from a copy of its trajectory's
 * main-sequence KV (prefill only of the thread header), and the main
 * sequence re-prefills the joined block after each join. One slot is always
 * kept for threads, so at least two slots are needed. Draws are keyed by
 * (seed, step, prompt, sample, position + (thread + 1) * 2^24), so
 * trajectories do not depend on the batch layout either. trajs has
 * sum(n_samples) entries, initialised here; free each with rollout_tw_free.
 * opt's stop strings are not used (the state machine sets them); its stop
 * ids end a segment as EOS. Budget forcing is rejected (GRPO_EINVAL). */
int rollout_engine_generate_parallel(rollout_engine *e, const rollout_engine_options *opt,
                                     const rollout_tw_options *tw_opt, const rollout_group *groups,
                                     int n_groups, rollout_tw *trajs, rollout_engine_stats *stats,
                                     grpo_error *err);

#endif
