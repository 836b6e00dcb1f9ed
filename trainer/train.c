#include "trainer/train.h"
#include "trainer/eval.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/hf_io.h"
#include <cjson/cJSON.h>

#include "core/fileio.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/sgemm_peak.h"
#include "optim/comm.h"
#include "optim/optim.h"
#include "reward/registry.h"
#include "rollout/worker.h"
#include "tasks/arith.h"
#include "tasks/dataset.h"
#include "trainer/advantage.h"
#include "trainer/allocate.h"
#include "trainer/loss.h"
#include "trainer/metrics.h"
#include "trainer/pack.h"
#include "trainer/session.h"

static volatile sig_atomic_t g_stop_signal;

static void on_signal(int sig) { g_stop_signal = sig; }

void trainer_install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* ---- prompts ------------------------------------------------------------------ */

typedef struct prompt_item {
  const char *question, *gold, *solution;
  uint64_t index;                /* global prompt index (RNG key, logs) */
  task_arith_problem arith;      /* storage for the synthetic task */
} prompt_item;

typedef struct prompt_source {
  int arithmetic;
  task_arith_options arith;
  uint64_t seed;
  task_split split;
  uint64_t counter;              /* arithmetic: next index */
  task_dataset ds;
  task_cursor cursor;
  int have_ds;
} prompt_source;

static int source_open_train(prompt_source *ps, const grpo_config *c, grpo_error *err) {
  memset(ps, 0, sizeof *ps);
  ps->seed = (uint64_t)c->seed;
  if (c->data.task == GRPO_CFG_TASK_ARITHMETIC) {
    ps->arithmetic = 1;
    ps->split = TASK_SPLIT_TRAIN;
    trainer_session_arith_options(c, &ps->arith);
    return task_arith_validate(&ps->arith, err);
  }
  if (!c->data.train_path[0])
    return GRPO_FAIL(err, GRPO_EINVAL, "data.train_path is required when data.task is jsonl");
  task_format fmt;
  trainer_session_layout(c, c->data.train_path, &fmt);
  int rc = task_dataset_load(&ps->ds, c->data.train_path, &fmt, err);
  if (rc) return rc;
  ps->have_ds = 1;
  if (c->data.num_train > 0 && (size_t)c->data.num_train < ps->ds.n) {
    for (size_t i = (size_t)c->data.num_train; i < ps->ds.n; i++) {
      free(ps->ds.items[i].id);
      free(ps->ds.items[i].question);
      free(ps->ds.items[i].gold);
      free(ps->ds.items[i].solution);
    }
    ps->ds.n = (size_t)c->data.num_train;
  }
  return task_cursor_init(&ps->cursor, ps->ds.n, ps->seed, c->data.shuffle);
}

/* data.sft_path: rows of {prompt_field (default "prompt"), completion_field}. */
static int source_open_sft(prompt_source *ps, const grpo_config *c, grpo_error *err) {
  memset(ps, 0, sizeof *ps);
  ps->seed = (uint64_t)c->seed;
  task_format fmt;
  memset(&fmt, 0, sizeof fmt);
  snprintf(fmt.name, sizeof fmt.name, "sft");
  snprintf(fmt.question_field, sizeof fmt.question_field, "%s", c->data.prompt_field[0] ? c->data.prompt_field : "prompt");
  snprintf(fmt.answer_field, sizeof fmt.answer_field, "%s", c->data.completion_field);
  snprintf(fmt.solution_field, sizeof fmt.solution_field, "%s", c->data.completion_field);
  fmt.gold_rule = TASK_GOLD_FIELD;
  int rc = task_dataset_load(&ps->ds, c->data.sft_path, &fmt, err);
  if (rc) return rc;
  ps->have_ds = 1;
  return task_cursor_init(&ps->cursor, ps->ds.n, ps->seed, c->data.shuffle);
}

static void source_close(prompt_source *ps) {
  if (ps->have_ds) {
    task_cursor_free(&ps->cursor);
    task_dataset_free(&ps->ds);
  }
  memset(ps, 0, sizeof *ps);
}

/* The next n prompts (every rank draws the same ones). */
static void source_next(prompt_source *ps, int n, prompt_item *out) {
  for (int i = 0; i < n; i++) {
    prompt_item *it = &out[i];
    if (ps->arithmetic) {
      it->index = ps->counter++;
      task_arith_generate(&ps->arith, ps->seed, ps->split, it->index, &it->arith);
      it->question = it->arith.question;
      it->gold = it->arith.answer;
      it->solution = it->arith.solution;
    } else {
      uint32_t k;
      it->index = (uint64_t)ps->cursor.epoch * ps->ds.n + ps->cursor.index;
      task_cursor_next(&ps->cursor, 1, &k);
      it->question = ps->ds.items[k].question;
      it->gold = ps->ds.items[k].gold;
      it->solution = ps->ds.items[k].solution;
    }
  }
}

/* ---- shared run state --------------------------------------------------------- */

typedef struct run {
  const grpo_config *cfg;
  MPI_Comm comm;
  int rank, world;
  trainer_session s;
  char out_dir[1024], ckpt_dir[1100];
  optim_adamw opt;
  optim_schedule sched;
  optim_comm *dp_comm;           /* the gradient all-reduce over comm (made at the first update) */
  optim_comm *weights_comm;      /* disaggregated, trainer 0 and the workers: the weight broadcast */
  trainer_packed pack;
  int mb_tokens;
  float *lp, *ent, *dlp, *dent, *old_buf;  /* per prediction of a micro-batch */
  int *mb_starts;                          /* planned once: loss bookkeeping per micro-batch */
  float *mb_adv, *mb_mask, *mb_isw, *mb_samp;
  /* trainer.top_entropy_quantile: a forward-only pass collects the trained
   * tokens' entropies (collect_entropy), the step's threshold is their
   * quantile over every rank, and the loss keeps the policy term of the
   * tokens at or above it (mb_emask) */
  float *mb_emask, *ent_all, ent_threshold;
  size_t n_ent_all, cap_ent_all;
  int collect_entropy, ent_mask_on;
  uint8_t *mb_maskbuf;
  int32_t *mb_tokbuf;
  int traj_cap;                            /* sequences of one trie-packed trajectory */
  const int32_t **traj_seqs;
  const uint8_t **traj_masks;
  int *traj_lens;
  reward_registry *reg;
  reward_scratch *rs;
  trainer_metrics metrics;
  double packed_tokens;          /* tokens through forward+backward this step (this rank) */
  /* one step off-policy: the data position before the next step's prompts
   * were drawn ahead, which a checkpoint written now must record */
  int rewind;
  uint64_t rewind_counter;
  uint32_t rewind_epoch, rewind_index;
  double peak_flops;             /* sum over the ranks of comm, for the mfu metric */
  double t_sync;                 /* seconds in gradient all-reduce and weight broadcast this step */
  long step;
  prompt_source src;
  trainer_eval_set *evals;
  FILE *completions;             /* rank 0: logging.log_completions */
  int n_evals;
  /* reference policy (beta > 0) */
  model_params ref_params;
  model_transformer *ref_model;
  float *ref_lp;
} run;

/* The FLOP/s the mfu metric divides by: logging.peak_tflops per rank, or
 * this rank's sgemm peak measured now (a quarter second). */
static int measure_peak(run *r, grpo_error *err) {
  double peak = r->cfg->logging.peak_tflops * 1e12;
  int rc = GRPO_OK;
  if (peak <= 0) {
    grpo_sgemm_peak p;
    rc = grpo_sgemm_peak_measure(384, 0.25, &p, err);
    peak = rc ? 0 : p.best_gflops * 1e9;
  }
  MPI_Allreduce(&peak, &r->peak_flops, 1, MPI_DOUBLE, MPI_SUM, r->comm);
  return rc;
}

/* Model FLOPs utilisation of the train phase: 6 N FLOPs per token through
 * forward and backward (N = the weights used in matmuls: the input
 * embedding is a lookup; attention's quadratic term is left out, as in
 * PaLM's definition; recomputation does not count). */
static void record_mfu(run *r, double seconds) {
  double tokens = r->packed_tokens;
  MPI_Allreduce(MPI_IN_PLACE, &tokens, 1, MPI_DOUBLE, MPI_SUM, r->comm);
  const model_config *mc = &r->s.params.cfg;
  double n = (double)r->s.params.total - (mc->tie_embeddings ? 0.0 : (double)mc->vocab * mc->hidden);
  double flops = 6.0 * n * tokens;
  trainer_metrics_set(&r->metrics, "train_tflops", seconds > 0 ? flops / seconds / 1e12 : 0);
  trainer_metrics_set(&r->metrics, "mfu", seconds > 0 && r->peak_flops > 0 ? flops / seconds / r->peak_flops : 0);
  r->packed_tokens = 0;
}

static int run_open(run *r, const grpo_config *cfg, MPI_Comm comm, int need_rewards, grpo_error *err) {
  memset(r, 0, sizeof *r);
  r->cfg = cfg;
  r->comm = comm;
  MPI_Comm_rank(comm, &r->rank);
  MPI_Comm_size(comm, &r->world);
  grpo_log_set_rank(r->rank, r->world);
  snprintf(r->out_dir, sizeof r->out_dir, "%s", cfg->output_dir);
  snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", r->out_dir);
  int rc = r->rank == 0 ? grpo_mkdirs(r->ckpt_dir, err) : GRPO_OK;
  MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
  if (rc) return rc ? rc : GRPO_EIO;
  r->mb_tokens = (int)cfg->trainer.max_tokens_per_microbatch;
  rc = trainer_session_open(&r->s, cfg, r->mb_tokens, err);
  if (rc) return rc;
  rc = measure_peak(r, err);
  if (rc) return rc;
  int P = r->mb_tokens;
  rc = trainer_packed_init(&r->pack, r->mb_tokens, P,
                           cfg->trainer.trie_labels == GRPO_CFG_TRIE_LABELS_SHIFTED ? TRAINER_LABELS_SHIFTED
                                                                                   : TRAINER_LABELS_PARENT,
                           err);
  if (rc) return rc;
  r->lp = malloc(sizeof(float) * (size_t)P);
  r->ent = malloc(sizeof(float) * (size_t)P);
  r->dlp = malloc(sizeof(float) * (size_t)P);
  r->dent = malloc(sizeof(float) * (size_t)P);
  r->old_buf = malloc(sizeof(float) * (size_t)P);
  r->ref_lp = malloc(sizeof(float) * (size_t)P);
  r->mb_starts = malloc(sizeof(int) * ((size_t)P + 1));
  r->mb_adv = malloc(sizeof(float) * ((size_t)P + 1));
  r->mb_mask = malloc(sizeof(float) * ((size_t)P + 1));
  r->mb_emask = malloc(sizeof(float) * ((size_t)P + 1));
  r->mb_isw = malloc(sizeof(float) * ((size_t)P + 1));
  r->mb_samp = malloc(sizeof(float) * ((size_t)P + 1));
  r->mb_maskbuf = malloc((size_t)r->mb_tokens + 1);
  r->mb_tokbuf = malloc(sizeof(int32_t) * ((size_t)r->mb_tokens + 1));
  r->traj_cap = 1 + (int)(cfg->rollout.max_parallel_blocks * cfg->rollout.max_threads);
  r->traj_seqs = malloc(sizeof *r->traj_seqs * (size_t)r->traj_cap);
  r->traj_masks = malloc(sizeof *r->traj_masks * (size_t)r->traj_cap);
  r->traj_lens = malloc(sizeof *r->traj_lens * (size_t)r->traj_cap);
  if (!r->traj_seqs || !r->traj_masks || !r->traj_lens) return GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory");
  if (!r->lp || !r->ent || !r->dlp || !r->dent || !r->old_buf || !r->ref_lp || !r->mb_starts ||
      !r->mb_adv || !r->mb_mask || !r->mb_emask || !r->mb_isw || !r->mb_samp || !r->mb_maskbuf || !r->mb_tokbuf)
    return GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory");
  rc = model_params_alloc_grad(&r->s.params, err);
  if (rc) return rc;
  /* optimizer groups from the parameter table */
  model_params *p = &r->s.params;
  optim_group *groups = malloc(sizeof *groups * (size_t)p->n);
  size_t *offs = malloc(sizeof *offs * (size_t)p->n), *cnts = malloc(sizeof *cnts * (size_t)p->n);
  const char **names = malloc(sizeof *names * (size_t)p->n);
  if (!groups || !offs || !cnts || !names) rc = GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory");
  for (int i = 0; !rc && i < p->n; i++) {
    offs[i] = p->info[i].offset;
    cnts[i] = p->info[i].numel;
    names[i] = p->info[i].name;
  }
  if (!rc) {
    optim_groups_from_names(offs, cnts, names, p->n, groups);
    rc = optim_adamw_init(&r->opt, r->s.be, p->total, groups, p->n, (float)cfg->optim.adam_beta1,
                          (float)cfg->optim.adam_beta2, (float)cfg->optim.adam_epsilon,
                          (float)cfg->optim.weight_decay, err);
  }
  free(groups);
  free(offs);
  free(cnts);
  free(names);
  if (rc) return rc;
  r->sched.kind = cfg->optim.schedule == GRPO_CFG_SCHEDULE_LINEAR   ? OPTIM_SCHEDULE_LINEAR
                  : cfg->optim.schedule == GRPO_CFG_SCHEDULE_COSINE ? OPTIM_SCHEDULE_COSINE
                                                                    : OPTIM_SCHEDULE_CONSTANT;
  r->sched.lr = cfg->optim.lr;
  r->sched.warmup_steps = cfg->optim.warmup_steps;
  r->sched.total_steps = cfg->trainer.max_steps;
  r->sched.min_lr_ratio = cfg->optim.min_lr_ratio;
  if (need_rewards) {
    const grpo_reward_fn_list *fl = &cfg->reward.functions;
    reward_spec specs[REWARD_MAX_FUNCTIONS];
    reward_option opts[REWARD_MAX_FUNCTIONS][24];
    char vals[REWARD_MAX_FUNCTIONS][2][32];
    int n = fl->n;
    if (n == 0) { /* the math verifier alone */
      fl = NULL;
      n = 1;
    } else if (n > REWARD_MAX_FUNCTIONS) {
      return GRPO_FAIL(err, GRPO_EINVAL, "reward.functions: at most %d functions", REWARD_MAX_FUNCTIONS);
    }
    for (int i = 0; i < n; i++) {
      const char *name = fl ? fl->items[i].name : "math";
      int no = 0;
      int given = fl ? (fl->items[i].n_options < 20 ? fl->items[i].n_options : 20) : 0;
      for (int k = 0; k < given; k++)
        opts[i][no++] = (reward_option){fl->items[i].options[k].key, fl->items[i].options[k].value};
      /* section-level keys become the function's options unless it sets them */
#define IMPLIED(opt_name, fmt, value)                                                \
  do {                                                                          \
    int set_ = 0;                                                               \
    for (int k_ = 0; k_ < given; k_++) set_ |= strcmp(opts[i][k_].key, opt_name) == 0; \
    if (!set_) {                                                                \
      snprintf(vals[i][nv], sizeof vals[i][nv], fmt, value);                    \
      opts[i][no++] = (reward_option){opt_name, vals[i][nv++]};                      \
    }                                                                           \
  } while (0)
      int nv = 0;
      if (strcmp(name, "overlong") == 0)
        IMPLIED("max_completion_length", "%ld", (long)cfg->rollout.max_completion_length);
#undef IMPLIED
      specs[i] = (reward_spec){name, fl ? fl->items[i].weight : 1.0, opts[i], no,
                               fl ? fl->items[i].where : NULL};
    }
    rc = reward_registry_create(&r->reg, specs, n, err);
    if (!rc) rc = reward_scratch_create(r->reg, &r->rs, err);
    if (rc) return rc;
  }
  char path[1200];
  char tb_dir[1200];
  snprintf(path, sizeof path, "%s/metrics.jsonl", r->out_dir);
  snprintf(tb_dir, sizeof tb_dir, "%s/tensorboard", r->out_dir);
  rc = trainer_metrics_open(&r->metrics, path, cfg->logging.tensorboard ? tb_dir : NULL, r->rank, err);
  if (!rc && r->rank == 0) {
    snprintf(path, sizeof path, "%s/config.yaml", r->out_dir);
    rc = grpo_config_write_file(cfg, path, err);
  }
  if (!rc) rc = trainer_eval_sets_from_config(cfg, &r->evals, &r->n_evals, err);
  return rc;
}

static void run_close(run *r) {
  optim_comm_destroy(r->dp_comm);
  optim_comm_destroy(r->weights_comm);
  trainer_metrics_close(&r->metrics);
  if (r->completions) fclose(r->completions);
  reward_scratch_free(r->rs);
  reward_registry_free(r->reg);
  optim_adamw_free(&r->opt);
  trainer_packed_free(&r->pack);
  free(r->lp);
  free(r->ent);
  free(r->dlp);
  free(r->dent);
  free(r->old_buf);
  free(r->ref_lp);
  free(r->mb_starts);
  free(r->mb_adv);
  free(r->mb_mask);
  free(r->mb_emask);
  free(r->ent_all);
  free(r->mb_isw);
  free(r->mb_samp);
  free(r->mb_maskbuf);
  free(r->mb_tokbuf);
  free(r->traj_seqs);
  free(r->traj_masks);
  free(r->traj_lens);
  model_transformer_free(r->ref_model);
  model_params_free(&r->ref_params);
  source_close(&r->src);
  trainer_eval_sets_close(r->evals, r->n_evals);
  trainer_session_close(&r->s);
}

/* ---- checkpoints ---------------------------------------------------------------- */

static int save_checkpoint(run *r, grpo_error *err) {
  int rc = GRPO_OK;
  if (r->rank == 0) {
    ckpt_writer *w;
    const model_params *p = &r->s.params;
    float *om = NULL, *ov = NULL; /* host views of the moments (staged from a device) */
    rc = model_params_to_host(&r->s.params, err);
    if (!rc && r->cfg->checkpoint.save_optimizer) rc = optim_adamw_moments_host(&r->opt, &om, &ov, err);
    if (rc) goto done;
    rc = ckpt_writer_begin(&w, r->ckpt_dir, r->step, (int)r->cfg->checkpoint.keep_last, err);
    if (rc) goto done;
    rc = ckpt_put_params(w, p, CKPT_F32, err);
    for (int i = 0; !rc && r->cfg->checkpoint.save_optimizer && i < p->n; i++) {
      const model_param_info *t = &p->info[i];
      rc = ckpt_writer_put_tensor(w, CKPT_OPTIM_M, t->name, CKPT_F32, t->ndim, t->shape,
                                  om + t->offset, err);
      if (!rc)
        rc = ckpt_writer_put_tensor(w, CKPT_OPTIM_V, t->name, CKPT_F32, t->ndim, t->shape,
                                    ov + t->offset, err);
    }
    if (!rc) rc = ckpt_writer_put_i64(w, "optim_step", r->opt.step, err);
    if (!rc) rc = ckpt_writer_put_i64(w, "data_counter", (int64_t)(r->rewind ? r->rewind_counter : r->src.counter), err);
    if (!rc) rc = ckpt_writer_put_i64(w, "data_epoch", r->rewind ? r->rewind_epoch : r->src.cursor.epoch, err);
    if (!rc) rc = ckpt_writer_put_i64(w, "data_cursor", r->rewind ? r->rewind_index : r->src.cursor.index, err);
    uint64_t rng[2] = {(uint64_t)r->cfg->seed, (uint64_t)r->step};
    if (!rc) rc = ckpt_writer_put_rng(w, rng, 2, err);
    char *yaml = NULL;
    if (!rc) rc = grpo_config_to_yaml(r->cfg, &yaml, NULL, err);
    if (!rc) rc = ckpt_writer_put_meta(w, "config_yaml", yaml, err);
    free(yaml);
    char fp[32];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)model_tokenizer_fingerprint(r->s.tok));
    if (!rc) rc = ckpt_writer_put_meta(w, "tokenizer_hash", fp, err);
    if (rc)
      ckpt_writer_abort(w);
    else
      rc = ckpt_writer_finish(w, err);
    if (!rc) GRPO_INFO("checkpoint: %s/step_%08ld.h5", r->ckpt_dir, r->step);
  }
done:
  MPI_Bcast(&rc, 1, MPI_INT, 0, r->comm);
  if (rc && r->rank != 0) GRPO_FAIL(err, rc, "rank 0 failed to write the checkpoint");
  return rc;
}

static int read_i64(ckpt_reader *rd, const char *name, int64_t *v, grpo_error *err) {
  return ckpt_reader_get_i64(rd, name, v, err);
}

/* checkpoint.resume: auto (latest in this run's directory, if any), never, or a path. */
static int maybe_resume(run *r, grpo_error *err) {
  const char *mode = r->cfg->checkpoint.resume;
  char path[1400];
  if (strcmp(mode, "never") == 0) return GRPO_OK;
  if (strcmp(mode, "auto") == 0) {
    int64_t st;
    grpo_error e2 = {0};
    if (ckpt_resolve(r->ckpt_dir, CKPT_RESOLVE_VERIFY_ALL | (r->rank == 0 ? CKPT_RESOLVE_CLEAN_TMP : 0),
                     path, sizeof path, &st, &e2))
      return GRPO_OK; /* nothing to resume */
  } else {
    snprintf(path, sizeof path, "%s", mode);
  }
  ckpt_reader *rd;
  int rc = ckpt_reader_open(&rd, path, err);
  if (rc) return rc;
  model_params *p = &r->s.params;
  model_params loaded;
  float *om = NULL, *ov = NULL; /* host views of the moments (pushed to a device below) */
  rc = ckpt_load_params(rd, &loaded, err);
  if (!rc) {
    rc = model_params_copy(p, &loaded, err); /* and to the device */
    model_params_free(&loaded);
  }
  if (!rc) rc = optim_adamw_moments_host(&r->opt, &om, &ov, err);
  for (int i = 0; !rc && i < p->n; i++) {
    const model_param_info *t = &p->info[i];
    if (ckpt_reader_find(rd, CKPT_OPTIM_M, t->name)) {
      rc = ckpt_reader_read_named(rd, CKPT_OPTIM_M, t->name, CKPT_F32, om + t->offset, t->numel, err);
      if (!rc) rc = ckpt_reader_read_named(rd, CKPT_OPTIM_V, t->name, CKPT_F32, ov + t->offset, t->numel, err);
    }
  }
  if (!rc) rc = optim_adamw_moments_to_device(&r->opt, err);
  int64_t v;
  if (!rc) r->step = ckpt_reader_step(rd);
  if (!rc && !read_i64(rd, "optim_step", &v, NULL)) r->opt.step = v;
  if (!rc && !read_i64(rd, "data_counter", &v, NULL)) r->src.counter = (uint64_t)v;
  if (!rc && r->src.have_ds) {
    int64_t ep = 0, ix = 0;
    read_i64(rd, "data_epoch", &ep, NULL);
    read_i64(rd, "data_cursor", &ix, NULL);
    task_cursor_seek(&r->src.cursor, (uint32_t)ep, (uint32_t)ix);
  }
  ckpt_reader_close(rd);
  if (rc) return grpo_error_prefix(err, "resuming from %s", path);
  GRPO_INFO("resumed from %s at step %ld", path, r->step);
  return GRPO_OK;
}

/* ---- training on packed micro-batches ------------------------------------------- */

typedef struct seq_ref {
  const int32_t *prompt;
  int n_prompt;
  const int32_t *completion;
  int n_completion;
  const float *sampler_lp;   /* per completion token, or NULL */
  const uint8_t *forced;     /* per completion token: 1 = injected by budget forcing (not trained), or NULL */
  float advantage;
  int trained;               /* 0: masked out (e.g. truncated with mask_truncated_completions) */
  const rollout_tw *traj;    /* P-GRPO: a whole ThreadWeaver trajectory instead of prompt+completion */
} seq_ref;

/* Completion tokens the loss sees: the budget-forcing injections are not policy samples. */
static int sampled_tokens(const uint8_t *forced, int n) {
  int k = n;
  for (int t = 0; forced && t < n; t++) k -= forced[t] != 0;
  return k;
}

typedef struct train_accum {
  trainer_loss_stats ls;
  double loss;
  double tokens;
} train_accum;

static trainer_loss_options loss_options(const grpo_config *c) {
  trainer_loss_options o = {0};
  o.loss_type = c->trainer.loss_type == GRPO_CFG_LOSS_GRPO      ? TRAINER_LOSS_GRPO
                : c->trainer.loss_type == GRPO_CFG_LOSS_BNPO    ? TRAINER_LOSS_BNPO
                : c->trainer.loss_type == GRPO_CFG_LOSS_DR_GRPO ? TRAINER_LOSS_DR_GRPO
                                                                : TRAINER_LOSS_DAPO;
  o.epsilon_low = (float)c->trainer.epsilon;
  o.epsilon_high = (float)(c->trainer.epsilon_high >= 0 ? c->trainer.epsilon_high : c->trainer.epsilon);
  o.delta = (float)c->trainer.delta;
  o.dual_clip_c = (float)c->trainer.dual_clip_c;
  o.sequence_level_is = c->trainer.importance_sampling_level == GRPO_CFG_IS_LEVEL_SEQUENCE;
  o.beta = (float)c->trainer.beta;
  o.kl = c->trainer.kl_estimator == GRPO_CFG_KL_K1   ? TRAINER_KL_K1
         : c->trainer.kl_estimator == GRPO_CFG_KL_K2 ? TRAINER_KL_K2
         : c->trainer.kl_estimator == GRPO_CFG_KL_K3 ? TRAINER_KL_K3
                                                     : TRAINER_KL_K3_PLUS;
  o.entropy_coef = (float)c->trainer.entropy_coef;
  o.max_completion_length = (int)c->rollout.max_completion_length;
  return o;
}

static trainer_is_mode is_mode(const grpo_config *c) {
  switch (c->trainer.importance_sampling_mode) {
    case GRPO_CFG_IS_TOKEN_TRUNCATE: return TRAINER_IS_TOKEN_TRUNCATE;
    case GRPO_CFG_IS_TOKEN_MASK: return TRAINER_IS_TOKEN_MASK;
    case GRPO_CFG_IS_SEQUENCE_TRUNCATE: return TRAINER_IS_SEQUENCE_TRUNCATE;
    default: return TRAINER_IS_SEQUENCE_MASK;
  }
}

/* Forward, loss and backward of the micro-batch packed in r->pack. */
static int train_micro_batch(run *r, const seq_ref *seqs, const trainer_loss_norm *norm, int sft,
                             train_accum *acc, grpo_error *err) {
  trainer_packed *pk = &r->pack;
  if (!r->collect_entropy) r->packed_tokens += pk->n_tokens;
  model_batch b = {pk->n_tokens, pk->ids, pk->pos, pk->tin, pk->tout, pk->n_pred, pk->pred_row,
                   pk->pred_target, sft ? 1.0f : (float)r->cfg->rollout.temperature};
  if (b.temperature <= 0) b.temperature = 1.0f;
  const trainer_loss_options lo = loss_options(r->cfg);
  int rc = GRPO_OK;
  if (!sft && lo.beta != 0.0f && !r->collect_entropy) {
    rc = model_forward(r->ref_model, &b, r->ref_lp, NULL, NULL, err);
    if (rc) return rc;
  }
  rc = model_forward(r->s.model, &b, r->lp, r->ent, NULL, err);
  if (rc) return rc;
  if (sft) {
    for (int k = 0; k < pk->n_pred; k++) {
      acc->loss -= r->lp[k] / norm->n_tokens;
      r->dlp[k] = (float)(-1.0 / norm->n_tokens);
      acc->ls.entropy_sum += r->ent[k];
    }
    acc->tokens += pk->n_pred;
    return model_backward(r->s.model, &b, r->dlp, NULL, err);
  }
  /* predictions of one sequence (or trajectory) are contiguous, in order */
  int *starts = r->mb_starts;
  float *adv = r->mb_adv, *mask = r->mb_mask, *isw = r->mb_isw, *samp = r->mb_samp;
  int n_seq = 0, t = 0;
  for (int k = 0; k < pk->n_pred; k++) {
    int id = pk->pred_seq[k];
    if (k == 0 || id != pk->pred_seq[k - 1]) {
      starts[n_seq] = k;
      adv[n_seq] = seqs[id].advantage;
      n_seq++;
      t = 0;
    }
    const seq_ref *sq = &seqs[id];
    mask[k] = sq->trained && !(sq->forced && t < sq->n_completion && sq->forced[t]) ? 1.0f : 0.0f;
    samp[k] = sq->sampler_lp && t < sq->n_completion ? sq->sampler_lp[t] : r->lp[k];
    t++;
  }
  starts[n_seq] = pk->n_pred;
  if (r->collect_entropy) {
    for (int k = 0; k < pk->n_pred; k++) {
      if (mask[k] == 0.0f) continue;
      if (r->n_ent_all == r->cap_ent_all) {
        size_t cap = r->cap_ent_all ? 2 * r->cap_ent_all : 4096;
        float *g = realloc(r->ent_all, sizeof(float) * cap);
        if (!g) return GRPO_FAIL(err, GRPO_ENOMEM, "top_entropy_quantile: out of memory");
        r->ent_all = g;
        r->cap_ent_all = cap;
      }
      r->ent_all[r->n_ent_all++] = r->ent[k];
    }
    return GRPO_OK; /* forward only */
  }
  if (r->ent_mask_on)
    for (int k = 0; k < pk->n_pred; k++) r->mb_emask[k] = r->ent[k] >= r->ent_threshold ? 1.0f : 0.0f;
  const float *is_weight = NULL;
  if (r->cfg->trainer.importance_sampling_correction) {
    /* the trainer's own logprobs before this update are the "old" ones */
    trainer_is_weights(is_mode(r->cfg), (float)r->cfg->trainer.importance_sampling_clip_min,
                       (float)r->cfg->trainer.importance_sampling_clip_max, n_seq, starts, r->lp, samp,
                       mask, isw);
    is_weight = isw;
  }
  trainer_loss_batch lb = {n_seq, starts, adv, r->lp, NULL, lo.beta != 0.0f ? r->ref_lp : NULL,
                           is_weight, r->ent, mask, r->ent_mask_on ? r->mb_emask : NULL};
  acc->loss += trainer_grpo_loss(&lo, norm, &lb, r->dlp, r->dent, &acc->ls);
  return model_backward(r->s.model, &b, r->dlp, lo.entropy_coef != 0.0f ? r->dent : NULL, err);
}

/* The step's entropy threshold for trainer.top_entropy_quantile: a forward
 * pass over every micro-batch, then the (1 - q) quantile of the trained
 * tokens' entropies over all ranks, interpolated linearly as torch.quantile
 * does (TRL gathers the entropies across processes the same way). */
static int train_sequences(run *r, const seq_ref *seqs, int n, const trainer_loss_norm *norm, int sft,
                           train_accum *acc, grpo_error *err);
static int entropy_threshold(run *r, const seq_ref *seqs, int n, const trainer_loss_norm *norm, grpo_error *err) {
  train_accum unused = {0};
  r->n_ent_all = 0;
  r->collect_entropy = 1;
  int rc = train_sequences(r, seqs, n, norm, 0, &unused, err);
  r->collect_entropy = 0;
  int mine = rc ? 0 : (int)r->n_ent_all, *cnt = calloc((size_t)r->world, sizeof *cnt),
      *disp = calloc((size_t)r->world, sizeof *disp);
  if (!cnt || !disp) {
    free(cnt);
    free(disp);
    return rc ? rc : GRPO_FAIL(err, GRPO_ENOMEM, "top_entropy_quantile: out of memory");
  }
  MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, r->comm);
  size_t total = 0;
  for (int w = 0; w < r->world; w++) {
    disp[w] = (int)total;
    total += (size_t)cnt[w];
  }
  float *all = malloc(sizeof(float) * (total + 1));
  if (all) MPI_Allgatherv(r->ent_all, mine, MPI_FLOAT, all, cnt, disp, MPI_FLOAT, r->comm);
  else if (!rc) rc = GRPO_FAIL(err, GRPO_ENOMEM, "top_entropy_quantile: out of memory");
  r->ent_threshold = all ? trainer_entropy_threshold(all, total, r->cfg->trainer.top_entropy_quantile) : -INFINITY;
  r->ent_mask_on = 1;
  free(all);
  free(cnt);
  free(disp);
  return rc;
}

/* Tokens the model generated in a trajectory (each counted once). */
static int traj_trained_tokens(const rollout_tw *t) {
  int n = 0;
  for (int i = 0; i < t->combined.n; i++) n += t->combined.mask[i];
  for (int b = 0; b < t->n_branches; b++)
    for (int i = 0; i < t->branches[b].n; i++) n += t->branches[b].mask[i];
  return n;
}

/* Adds sequence i to the micro-batch being packed: prompt + completion, or a
 * P-GRPO trajectory as one trie or as one row per unit. */
static int pack_one(run *r, const seq_ref *sq, int i, grpo_error *err) {
  uint8_t *maskbuf = r->mb_maskbuf;
  int32_t *tokbuf = r->mb_tokbuf;
  if (!sq->traj) {
    int len = sq->n_prompt + sq->n_completion;
    if (len > r->mb_tokens)
      return GRPO_FAIL(err, GRPO_EINVAL,
                       "a sequence of %d tokens does not fit trainer.max_tokens_per_microbatch = %d", len,
                       r->mb_tokens);
    memcpy(tokbuf, sq->prompt, sizeof(int32_t) * (size_t)sq->n_prompt);
    memcpy(tokbuf + sq->n_prompt, sq->completion, sizeof(int32_t) * (size_t)sq->n_completion);
    memset(maskbuf, 0, (size_t)sq->n_prompt);
    memset(maskbuf + sq->n_prompt, 1, (size_t)sq->n_completion); /* predicted; the loss mask is separate */
    return trainer_pack_sequence(&r->pack, tokbuf, len, maskbuf, i, err);
  }
  const rollout_tw *t = sq->traj;
  if (r->cfg->trainer.pgrpo_packing == GRPO_CFG_PACK_TRIE) {
    const int32_t **seqs = r->traj_seqs;
    const uint8_t **masks = r->traj_masks;
    int *lens = r->traj_lens, n = 0;
    if (1 + t->n_branches > r->traj_cap)
      return GRPO_FAIL(err, GRPO_EINVAL, "a trajectory has %d branches; the plan allows %d", t->n_branches,
                       r->traj_cap - 1);
    seqs[n] = t->combined.ids, lens[n] = t->combined.n, masks[n] = t->combined.mask, n++;
    for (int b = 0; b < t->n_branches; b++)
      seqs[n] = t->branches[b].ids, lens[n] = t->branches[b].n, masks[n] = t->branches[b].mask, n++;
    int rc = trainer_pack_trajectory(&r->pack, seqs, lens, masks, n, i, err);
    if (rc == GRPO_EBUDGET && r->pack.n_tokens == 0)
      return GRPO_FAIL(err, GRPO_EINVAL,
                       "a P-GRPO trajectory does not fit trainer.max_tokens_per_microbatch = %d",
                       r->mb_tokens);
    return rc;
  }
  /* units: each trained run of the combined view with the context before it,
   * and each thread branch. All must fit together (a trajectory is not split). */
  size_t mark_tokens = (size_t)r->pack.n_tokens, mark_pred = (size_t)r->pack.n_pred;
  int rc = GRPO_OK;
  for (int a = 0; !rc && a < t->combined.n;) {
    if (!t->combined.mask[a]) {
      a++;
      continue;
    }
    int b = a;
    while (b < t->combined.n && t->combined.mask[b]) b++;
    memset(maskbuf, 0, (size_t)a);
    memset(maskbuf + a, 1, (size_t)(b - a));
    rc = trainer_pack_sequence(&r->pack, t->combined.ids, b, maskbuf, i, err);
    a = b;
  }
  for (int k = 0; !rc && k < t->n_branches; k++)
    rc = trainer_pack_sequence(&r->pack, t->branches[k].ids, t->branches[k].n, t->branches[k].mask, i, err);
  if (rc) { /* roll back this trajectory's units */
    r->pack.n_tokens = (int)mark_tokens;
    r->pack.n_pred = (int)mark_pred;
    if (rc == GRPO_EBUDGET && mark_tokens == 0)
      return GRPO_FAIL(err, GRPO_EINVAL,
                       "a P-GRPO trajectory's units do not fit trainer.max_tokens_per_microbatch = %d",
                       r->mb_tokens);
  }
  return rc;
}

/* Packs sequences into micro-batches and trains on each. */
static int train_sequences(run *r, const seq_ref *seqs, int n, const trainer_loss_norm *norm, int sft,
                           train_accum *acc, grpo_error *err) {
  int rc = GRPO_OK;
  trainer_packed_clear(&r->pack);
  for (int i = 0; !rc && i <= n; i++) {
    if (i < n && !seqs[i].prompt && !seqs[i].traj) continue; /* an empty slot */
    if (i < n) {
      grpo_error e2 = {0};
      int prc = pack_one(r, &seqs[i], i, &e2);
      if (prc == GRPO_OK) continue;
      if (prc != GRPO_EBUDGET || r->pack.n_tokens == 0) {
        *err = e2;
        rc = prc == GRPO_EBUDGET ? GRPO_EINVAL : prc;
        break;
      }
    }
    if (r->pack.n_tokens > 0) {
      rc = train_micro_batch(r, seqs, norm, sft, acc, err);
      trainer_packed_clear(&r->pack);
      if (i < n) i--; /* retry this sequence in the next micro-batch */
    }
  }
  return rc;
}

/* All-reduce, clip and step. Returns 1 when the step was skipped (non-finite). */
static int optimizer_step(run *r, double *grad_norm, double *lr, grpo_error *err) {
  model_params *p = &r->s.params;
  double t0 = grpo_now_seconds();
  /* backend memory (dev_* == the host buffers on the CPU); NCCL in place on
   * the devices when every rank can, else MPI (p->grad stages a device) */
  int rc = r->dp_comm ? GRPO_OK : optim_comm_create(&r->dp_comm, r->comm, r->s.be, "gradient all-reduce", err);
  if (!rc) rc = optim_comm_allreduce_sum(r->dp_comm, p->dev_grad, p->total, 0, p->grad, err);
  r->t_sync += grpo_now_seconds() - t0;
  if (rc) return -rc;
  double norm = optim_grad_norm(r->s.be, p->dev_grad, p->total);
  *grad_norm = norm;
  *lr = optim_lr_at(&r->sched, r->opt.step + 1);
  if (!isfinite(norm)) {
    model_params_zero_grad(p);
    return 1;
  }
  optim_adamw_step(&r->opt, p->dev_data, p->dev_grad, *lr, optim_clip_factor(norm, r->cfg->optim.max_grad_norm));
  model_params_sync_work(p); /* bf16 working weights follow the f32 masters */
  model_params_zero_grad(p);
  return 0;
}

/* ---- evaluation ----------------------------------------------------------------- */

/* Every eval set with trainer.eval_num_generations samples per problem:
 * accuracy (= pass@1), pass@k and maj@k at k = n, mean tokens and, for
 * P-GRPO, the critical path and speedup (trainer/eval.h). */
static int evaluate(run *r, double *mean_acc, grpo_error *err) {
  *mean_acc = -1;
  if (r->n_evals == 0) return GRPO_OK;
  const grpo_config *c = r->cfg;
  int n = (int)c->trainer.eval_num_generations;
  trainer_eval_options eo = {0};
  eo.n_samples = n;
  eo.ks = &n;
  eo.n_ks = 1;
  eo.seed = (uint64_t)c->seed + 7919;
  eo.temperature = (float)c->trainer.eval_temperature;
  double acc_sum = 0;
  int rc = GRPO_OK;
  for (int e = 0; !rc && e < r->n_evals; e++) {
    const trainer_eval_set *set = &r->evals[e];
    trainer_eval_result res;
    rc = trainer_eval_run(&r->s, r->comm, set, &eo, &res, err);
    if (rc) break;
    const trainer_eval_stats st = res.samples;
    char name[160];
#define EVAL_METRIC(key, value)                                         \
  do {                                                                  \
    snprintf(name, sizeof name, "eval/%s/" key, set->name);             \
    trainer_metrics_set(&r->metrics, name, (value));                    \
  } while (0)
    EVAL_METRIC("accuracy", st.pass1);
    EVAL_METRIC("mean_completion_tokens", st.mean_tokens);
    if (n > 1 && st.n_ks) {
      snprintf(name, sizeof name, "eval/%s/pass@%d", set->name, n);
      trainer_metrics_set(&r->metrics, name, st.pass_at_k[st.n_ks - 1]);
      snprintf(name, sizeof name, "eval/%s/maj@%d", set->name, n);
      trainer_metrics_set(&r->metrics, name, st.maj_at_k[st.n_ks - 1]);
    }
    if (c->rollout.parallel_threads) {
      EVAL_METRIC("critical_path_tokens", st.mean_critical);
      EVAL_METRIC("speedup", st.speedup);
    }
#undef EVAL_METRIC
    if (r->rank == 0)
      GRPO_INFO("eval %s: accuracy %.4f over %d problems x %d, %.1f tokens", set->name, st.pass1, st.problems, n,
                st.mean_tokens);
    acc_sum += st.pass1;
  }
  if (!rc) *mean_acc = acc_sum / r->n_evals;
  return rc;
}

static int stop_requested(run *r) {
  int flag = g_stop_signal != 0, any = 0;
  MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, r->comm);
  return any;
}

static void write_summary(run *r, const trainer_summary *s, const char *kind) {
  if (r->rank != 0) return;
  char path[1200];
  snprintf(path, sizeof path, "%s/summary.json", r->out_dir);
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f,
          "{\"kind\": \"%s\", \"final_step\": %ld, \"steps_done\": %ld, \"skipped_steps\": %ld,\n"
          " \"accuracy_first\": %.6f, \"accuracy_last\": %.6f, \"reward_first\": %.6f,\n"
          " \"reward_last\": %.6f, \"wall_seconds\": %.3f, \"stopped_by_signal\": %s}\n",
          kind, s->final_step, s->steps_done, s->skipped_steps, s->accuracy_first, s->accuracy_last,
          s->reward_first, s->reward_last, s->wall_seconds, s->stopped_by_signal ? "true" : "false");
  fclose(f);
}

/* ---- GRPO ----------------------------------------------------------------------- */

/* A step's per-group slots: prompt ids, groups, completions (or P-GRPO
 * trajectories) and reward rows. */
typedef struct step_slots {
  model_ids *pids;
  rollout_group *groups;
  rollout_output *outs;
  rollout_tw *trajs; /* NULL unless P-GRPO */
  float *rew;        /* [slots, G, F] */
  int G, F;
  int *drawn;        /* samples drawn per slot */
} step_slots;

/* Moves group slot `from` to slot `to` (the two swap). */
static void move_group(step_slots *s, int from, int to) {
  if (from == to) return;
  const int G = s->G;
  model_ids tp = s->pids[to];
  s->pids[to] = s->pids[from];
  s->pids[from] = tp;
  s->groups[to] = s->groups[from];
  s->groups[to].prompt = s->pids[to].ids;
  for (int j = 0; j < G; j++) {
    size_t a = (size_t)to * G + j, b = (size_t)from * G + j;
    rollout_output to_ = s->outs[a];
    s->outs[a] = s->outs[b];
    s->outs[b] = to_;
    if (s->trajs) {
      rollout_tw tt = s->trajs[a];
      s->trajs[a] = s->trajs[b];
      s->trajs[b] = tt;
    }
  }
  memmove(s->rew + (size_t)to * G * s->F, s->rew + (size_t)from * G * s->F, sizeof(float) * (size_t)G * s->F);
  if (s->drawn) s->drawn[to] = s->drawn[from];
}

/* Disaggregated placement: every trainer renders the B prompts (groups
 * and golds for the work item); trainer 0 has the workers generate and
 * score them; disagg_collect shares the results and keeps each trainer's
 * groups (r, r + T, ...) in slots 0.. */
static int disagg_prepare(run *r, const prompt_item *items, int B, int G, model_ids *pids, rollout_group *groups,
                          const char **golds, grpo_error *err) {
  const grpo_config *cfg = r->cfg;
  int rc = GRPO_OK;
  for (int i = 0; !rc && i < B; i++) {
    pids[i].n = 0;
    rc = trainer_session_prompt(&r->s, items[i].question, &pids[i], err);
    if (!rc && (long)pids[i].n > cfg->data.max_prompt_length) {
      size_t drop = pids[i].n - (size_t)cfg->data.max_prompt_length;
      memmove(pids[i].ids, pids[i].ids + drop, sizeof(int32_t) * (size_t)cfg->data.max_prompt_length);
      pids[i].n = (size_t)cfg->data.max_prompt_length;
    }
    groups[i] = (rollout_group){pids[i].ids, (int)pids[i].n, G, (uint32_t)items[i].index, 0};
    golds[i] = items[i].gold;
  }
  return rc;
}

/* The work item of a step's B groups: sampled with the weights of version
 * `version` (what the workers hold) and the RNG key of step `step`. */
static void disagg_work(run *r, int B, int max_new, uint32_t version, uint32_t step, const rollout_group *groups,
                        const char **golds, rollout_work *w) {
  rollout_engine_options eo;
  trainer_session_engine_options(&r->s, 0, 0, &eo);
  *w = (rollout_work){.weight_version = version, .step = step, .seed = (uint64_t)r->cfg->seed,
                      .sampling = eo.sampling, .max_new_tokens = max_new, .n_groups = B, .groups = groups,
                      .golds = golds, .parallel = r->cfg->rollout.parallel_threads};
}

/* Trainer 0's trajectories to the other trainers (the same bytes the
 * workers sent). */
static int bcast_trajectories(run *r, rollout_tw *t, int n, grpo_error *err) {
  int64_t total = 0;
  for (int q = 0; r->rank == 0 && q < n; q++) total += (int64_t)rollout_tw_packed_size(&t[q]);
  MPI_Bcast(&total, 1, MPI_INT64_T, 0, r->comm);
  unsigned char *buf = malloc((size_t)total + 1);
  int rc = buf ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory for %lld bytes of trajectories",
                                      (long long)total);
  int bad = rc != GRPO_OK, any = 0;
  MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, r->comm);
  if (any) {
    free(buf);
    return rc ? rc : GRPO_FAIL(err, GRPO_ENOMEM, "trainer: another rank is out of memory for trajectories");
  }
  size_t at = 0;
  for (int q = 0; r->rank == 0 && q < n; q++) {
    rollout_tw_pack(&t[q], buf + at);
    at += rollout_tw_packed_size(&t[q]);
  }
  for (int64_t off = 0; off < total; off += 1 << 30) {
    int len = (int)(total - off < (1 << 30) ? total - off : (1 << 30));
    MPI_Bcast(buf + off, len, MPI_BYTE, 0, r->comm);
  }
  at = 0;
  for (int q = 0; !rc && r->rank != 0 && q < n; q++) {
    size_t used = 0;
    rollout_tw_free(&t[q]);
    rc = rollout_tw_unpack(&t[q], buf + at, (size_t)total - at, &used, err);
    at += used;
  }
  free(buf);
  return rc;
}

/* rc: trainer 0's status collecting a round's B groups into slots base..
 * of outs / rew (base: this trainer's kept groups so far). Shares them with
 * every trainer (the whole stride G of every group). */
static int disagg_share(run *r, int rc, int B, int G, int F, int max_new, int base, rollout_output *outs,
                        rollout_tw *trajs, int32_t *tok, float *lps, float *slps, uint8_t *forced, float *rew,
                        grpo_error *err) {
  rollout_output *o = outs + (size_t)base * G;
  float *rw = rew + (size_t)base * G * F;
  int32_t *meta = malloc(sizeof(int32_t) * 3 * (size_t)B * G);
  if (!rc && !meta) rc = GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory");
  for (int q = 0; !rc && r->rank == 0 && q < B * G; q++) {
    meta[3 * q] = o[q].n;
    meta[3 * q + 1] = o[q].finish;
    meta[3 * q + 2] = o[q].truncated;
  }
  MPI_Bcast(&rc, 1, MPI_INT, 0, r->comm);
  if (rc) {
    if (r->rank != 0) GRPO_FAIL(err, rc, "trainer rank 0 failed to collect the rollouts");
    free(meta);
    return rc;
  }
  if (r->world > 1) {
    size_t n = (size_t)B * G * max_new, at = (size_t)base * G * max_new;
    MPI_Bcast(tok + at, (int)n, MPI_INT32_T, 0, r->comm);
    MPI_Bcast(lps + at, (int)n, MPI_FLOAT, 0, r->comm);
    MPI_Bcast(slps + at, (int)n, MPI_FLOAT, 0, r->comm);
    MPI_Bcast(forced + at, (int)n, MPI_UINT8_T, 0, r->comm);
    MPI_Bcast(meta, 3 * B * G, MPI_INT32_T, 0, r->comm);
    MPI_Bcast(rw, B * G * F, MPI_FLOAT, 0, r->comm);
    for (int q = 0; q < B * G; q++) {
      o[q].n = meta[3 * q];
      o[q].finish = (rollout_finish)meta[3 * q + 1];
      o[q].truncated = meta[3 * q + 2];
    }
    if (trajs) rc = bcast_trajectories(r, trajs + (size_t)base * G, B * G, err);
  }
  free(meta);
  return rc;
}

/* After disagg_share: keeps groups in global order until B are kept (with
 * dynamic sampling only those whose rewards differ), each trainer taking
 * the kept groups g with g % T == its rank into slots base, base + 1, ...
 * (as colocated ranks do). drawn[base + g]: samples group g holds (NULL:
 * all G). *n_new: the groups this trainer kept. */
static void disagg_keep(run *r, int B, int G, int F, int base, model_ids *pids, rollout_group *groups,
                        rollout_output *outs, rollout_tw *trajs, float *rew, int *drawn, int first_round, int dynamic,
                        int *kept_global, int *n_new, trainer_adv_stats *ast_all, double *len_sum, double *clipped,
                        const float *weights, float *adv_scratch, double *scratch) {
  *n_new = 0;
  rollout_output *o = outs + (size_t)base * G;
  float *rw = rew + (size_t)base * G * F;
  /* every trainer's metrics are summed later: count the completions once */
  for (int q = 0; r->rank == 0 && q < B * G; q++) {
    if (drawn && q % G >= drawn[base + q / G]) continue;
    *len_sum += o[q].n;
    *clipped += o[q].truncated;
  }
  trainer_adv_options ao0 = {TRAINER_SCALE_NONE, TRAINER_STD_UNBIASED, TRAINER_SUM_THEN_NORMALIZE, 0};
  if (first_round) trainer_advantages(rw, B, G, F, weights, &ao0, NULL, adv_scratch, scratch, ast_all);
  step_slots sl = {pids, groups, outs, trajs, rew, G, F, drawn};
  float *tot = adv_scratch; /* free until the step's advantages */
  for (int g = 0; g < B; g++) {
    for (int j = 0; j < G; j++) tot[j] = (float)trainer_total_reward(rw + ((size_t)g * G + j) * F, weights, F);
    if (*kept_global >= B || (dynamic && trainer_group_is_degenerate(tot, G))) continue;
    if ((*kept_global)++ % r->world != r->rank) continue;
    move_group(&sl, base + g, base + *n_new);
    (*n_new)++;
  }
}

static int disagg_collect(run *r, int rc, int B, int G, int F, int max_new, int base, model_ids *pids,
                          rollout_group *groups, rollout_output *outs, rollout_tw *trajs, int32_t *tok, float *lps,
                          float *slps, uint8_t *forced, float *rew, int first_round, int dynamic, int *kept_global,
                          int *n_new, trainer_adv_stats *ast_all, double *len_sum, double *clipped,
                          const float *weights, float *adv_scratch, double *scratch, grpo_error *err) {
  *n_new = 0;
  rc = disagg_share(r, rc, B, G, F, max_new, base, outs, trajs, tok, lps, slps, forced, rew, err);
  if (!rc)
    disagg_keep(r, B, G, F, base, pids, groups, outs, trajs, rew, NULL, first_round, dynamic, kept_global, n_new,
                ast_all, len_sum, clipped, weights, adv_scratch, scratch);
  return rc;
}

static int adaptive_group_sizes(run *r, const float *rew, int used, int G, int G0, int F, const float *weights,
                                int B, int shared, int *n0, int *c, int *size, grpo_error *err);

/* rank 0: has the workers generate groups[0..B) into the strided slots of
 * outs / rew (sample first_sample + j of group g at g * G + first_sample + j),
 * through the compact views tmp / tmp_rew. */
static int dispatch_strided(const rollout_cluster *cl, const rollout_work *w, int G, int F, rollout_output *outs,
                            float *rew, rollout_output *tmp, float *tmp_rew, rollout_engine_stats *est,
                            grpo_error *err) {
  /* groups that take no more samples are left out of the work */
  rollout_group *sub = malloc(sizeof *sub * (size_t)(w->n_groups + 1));
  const char **sub_gold = malloc(sizeof *sub_gold * (size_t)(w->n_groups + 1));
  int *at = malloc(sizeof *at * (size_t)(w->n_groups + 1));
  if (!sub || !sub_gold || !at) {
    free(sub);
    free(sub_gold);
    free(at);
    return GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory");
  }
  int n = 0, k = 0;
  for (int g = 0; g < w->n_groups; g++) {
    if (w->groups[g].n_samples <= 0) continue;
    sub[n] = w->groups[g];
    sub_gold[n] = w->golds ? w->golds[g] : NULL;
    at[n++] = g;
    for (int j = 0; j < w->groups[g].n_samples; j++) tmp[k++] = outs[(size_t)g * G + w->groups[g].first_sample + j];
  }
  rollout_work ws = *w;
  ws.groups = sub;
  ws.golds = sub_gold;
  ws.n_groups = n;
  rollout_results res = {tmp, tmp_rew, F, 0, 0, NULL};
  int rc = n ? rollout_dispatch(cl, &ws, &res, err) : GRPO_OK;
  est->decode_tokens += res.worker_tokens;
  est->seconds += res.worker_seconds;
  k = 0;
  for (int i = 0; !rc && i < n; i++)
    for (int j = 0; j < sub[i].n_samples; j++, k++) {
      size_t q = (size_t)at[i] * G + sub[i].first_sample + j;
      outs[q] = tmp[k];
      memcpy(rew + q * F, tmp_rew + (size_t)k * F, sizeof(float) * (size_t)F);
    }
  free(sub);
  free(sub_gold);
  free(at);
  return rc;
}

/* One on-policy disaggregated round into slots base..: prepare, dispatch,
 * collect. With adaptive group sizes (G0 > 0): a pilot of G0 samples per
 * group, shared, the sizes every trainer computes from it alike, then the
 * rest of each group. */
static int disaggregated_round(run *r, const rollout_cluster *cl, const prompt_item *items, int B, int G,
                               int F, int max_new, int base, model_ids *pids, rollout_group *groups,
                               const char **golds, rollout_output *outs, rollout_tw *trajs, int32_t *tok, float *lps,
                               float *slps, uint8_t *forced, float *rew, int G0, int *drawn, rollout_output *tmp,
                               float *tmp_rew, int *alloc_n0, int *alloc_c, int *alloc_size, int first_round,
                               int dynamic, int *kept_global, int *n_new, rollout_engine_stats *est,
                               trainer_adv_stats *ast_all, double *len_sum, double *clipped, const float *weights,
                               float *adv_scratch, double *scratch, grpo_error *err) {
  *n_new = 0;
  int rc = disagg_prepare(r, items, B, G, pids + base, groups + base, golds, err);
  if (!G0) {
    if (!rc && r->rank == 0) {
      rollout_work w;
      disagg_work(r, B, max_new, (uint32_t)r->step, (uint32_t)r->step, groups + base, golds, &w);
      rollout_results res = {outs + (size_t)base * G, rew + (size_t)base * G * F, F, 0, 0,
                             trajs ? trajs + (size_t)base * G : NULL};
      rc = rollout_dispatch(cl, &w, &res, err);
      est->decode_tokens += res.worker_tokens;
      est->seconds += res.worker_seconds;
    }
    return disagg_collect(r, rc, B, G, F, max_new, base, pids, groups, outs, trajs, tok, lps, slps, forced, rew,
                          first_round, dynamic, kept_global, n_new, ast_all, len_sum, clipped, weights, adv_scratch,
                          scratch, err);
  }
  for (int g = 0; g < B; g++) groups[base + g].n_samples = G0;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      rc = adaptive_group_sizes(r, rew + (size_t)base * G * F, B, G, G0, F, weights, B, 1, alloc_n0, alloc_c,
                                alloc_size, err);
      if (rc) return rc; /* every trainer computed the same: all fail together */
      for (int g = 0; g < B; g++) {
        groups[base + g].first_sample = (uint32_t)G0;
        groups[base + g].n_samples = alloc_size[g] - G0;
      }
    }
    int rc0 = rc;
    if (!rc0 && r->rank == 0) {
      rollout_work w;
      disagg_work(r, B, max_new, (uint32_t)r->step, (uint32_t)r->step, groups + base, golds, &w);
      rc0 = dispatch_strided(cl, &w, G, F, outs + (size_t)base * G, rew + (size_t)base * G * F, tmp, tmp_rew, est, err);
    }
    rc = disagg_share(r, rc0, B, G, F, max_new, base, outs, trajs, tok, lps, slps, forced, rew, err);
    if (rc) return rc;
  }
  for (int g = 0; g < B; g++) {
    drawn[base + g] = alloc_size[g];
    for (int j = alloc_size[g]; j < G; j++)
      for (int k = 0; k < F; k++) rew[((size_t)(base + g) * G + j) * F + k] = NAN;
  }
  disagg_keep(r, B, G, F, base, pids, groups, outs, trajs, rew, drawn, first_round, dynamic, kept_global, n_new,
              ast_all, len_sum, clipped, weights, adv_scratch, scratch);
  return GRPO_OK;
}

/* A rollout worker's scorer: decode, then the reward registry. */
static int score_completion(void *ctx, const char *gold, const int32_t *ids, int n, int truncated,
                            float *rewards, grpo_error *err) {
  run *r = ctx;
  model_text text = {0};
  reward_input in;
  reward_input_init(&in);
  char *raw = NULL;
  size_t raw_cap = 0;
  int32_t *offs = NULL;
  int rc;
  if (r->cfg->rollout.parallel_threads) {
    /* the joined response as the colocated path scores it: raw bytes with
     * each token's offset (the acceleration reward counts tokens) */
    offs = malloc(sizeof(int32_t) * (size_t)(n + 1));
    rc = offs ? trainer_session_response_text(&r->s, ids, n, &raw, &raw_cap, offs, err)
              : GRPO_FAIL(err, GRPO_ENOMEM, "worker: out of memory");
    in.completion = raw ? raw : "";
    in.token_offsets = offs;
  } else {
    rc = model_tokenizer_decode(r->s.tok, ids, (size_t)n, 1, &text, err);
    in.completion = text.s ? text.s : "";
  }
  if (rc) {
    free(raw);
    free(offs);
    return rc;
  }
  in.n_tokens = n;
  in.gold = gold && *gold ? gold : NULL;
  in.truncated = truncated;
  reward_result res;
  rc = reward_registry_score(r->reg, r->rs, &in, &res, err);
  for (int k = 0; !rc && k < reward_registry_count(r->reg); k++) rewards[k] = (float)res.scores[k];
  model_text_free(&text);
  free(raw);
  free(offs);
  return rc;
}

/* A worker's broadcast weights, host -> the device it samples on (nothing
 * moves on the CPU backend). */
static int weights_to_device(void *ctx, grpo_error *err) { return model_params_to_device(ctx, err); }

/* The weight broadcast when trainer 0 and every worker run CUDA with NCCL
 * (r->weights_comm): the f32 master weights go from trainer 0's dev_data
 * straight into each worker's dev_data, and a worker refreshes its working
 * copy from them. No host copy on either side: trainer 0's host `data` is
 * brought up to date where it is read (checkpoints), and a worker's stays
 * as loaded at start (nothing on a worker reads it once the session is
 * open; the device view is what the engine samples with). */
static int weights_bcast_device(void *ctx, float *host, size_t n, grpo_error *err) {
  run *r = ctx;
  (void)host;
  int rc = optim_comm_bcast(r->weights_comm, r->s.params.dev_data, n, 0, NULL, err);
  if (rc) return grpo_error_prefix(err, "weight broadcast");
  if (optim_comm_rank(r->weights_comm) != 0) model_params_sync_work(&r->s.params);
  return GRPO_OK;
}

/* Worker ranks: serve generation requests until the trainer shuts them down. */
static int serve_rollouts(run *r, const rollout_cluster *cl, grpo_error *err) {
  rollout_engine_options eo;
  trainer_session_engine_options(&r->s, 0, 0, &eo);
  rollout_worker_options o = {.engine = r->s.engine,
                              .weights = r->s.params.data,
                              .n_weights = r->s.params.total,
                              .stop_ids = eo.stop_ids,
                              .n_stop_ids = eo.n_stop_ids,
                              .stop_strings = eo.stop_strings,
                              .n_stop_strings = eo.n_stop_strings,
                              .piece = eo.piece,
                              .piece_ctx = eo.piece_ctx,
                              .vocab_limit = eo.vocab_limit,
                              .score = score_completion,
                              .score_ctx = r,
                              .n_rewards = reward_registry_count(r->reg),
                              .budget = eo.budget};
  rollout_tw_options two;
  trainer_session_tw_options(&r->s, &two);
  if (r->cfg->rollout.parallel_threads) o.tw = &two;
  o.weights_received = weights_to_device;
  o.weights_ctx = &r->s.params;
  return rollout_worker_loop(cl, &o, err);
}

/* logging.log_completions / num_completions_to_print: the step's trained
 * completions with their rewards and advantages, as TRL logs them; every
 * rank's lines go to rank 0, which appends them to completions.jsonl and
 * prints the first few. */
static int log_completions(run *r, long step, const seq_ref *seqs, int n, const float *rew, int F,
                           grpo_error *err) {
  const grpo_config *c = r->cfg;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = GRPO_OK;
  for (int q = 0; !rc && q < n; q++) {
    const seq_ref *sq = &seqs[q];
    if (!sq->prompt && !sq->traj) continue;
    model_text prompt = {0}, comp = {0};
    const int32_t *ids = sq->traj ? sq->traj->combined.ids + sq->traj->n_prompt : sq->completion;
    int n_ids = sq->traj ? sq->traj->combined.n - sq->traj->n_prompt : sq->n_completion;
    rc = model_tokenizer_decode(r->s.tok, sq->prompt, (size_t)sq->n_prompt, 1, &prompt, err);
    if (!rc) rc = model_tokenizer_decode(r->s.tok, ids, (size_t)n_ids, 1, &comp, err);
    cJSON *o = rc ? NULL : cJSON_CreateObject(), *rw = o ? cJSON_CreateObject() : NULL;
    char *line = NULL;
    if (o && rw) {
      cJSON_AddNumberToObject(o, "step", (double)step);
      cJSON_AddStringToObject(o, "prompt", prompt.s ? prompt.s : "");
      cJSON_AddStringToObject(o, "completion", comp.s ? comp.s : "");
      for (int k = 0; k < F; k++) {
        float v = rew[(size_t)q * F + k];
        if (isnan(v))
          cJSON_AddNullToObject(rw, reward_registry_name(r->reg, k));
        else
          cJSON_AddNumberToObject(rw, reward_registry_name(r->reg, k), v);
      }
      cJSON_AddItemToObject(o, "rewards", rw);
      rw = NULL;
      cJSON_AddNumberToObject(o, "advantage", sq->advantage);
      cJSON_AddBoolToObject(o, "trained", sq->trained);
      line = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    cJSON_Delete(rw);
    model_text_free(&prompt);
    model_text_free(&comp);
    if (!rc && !line) rc = GRPO_FAIL(err, GRPO_ENOMEM, "log_completions: out of memory");
    if (!rc) {
      size_t l = strlen(line);
      if (len + l + 2 > cap) {
        char *nb = realloc(buf, 2 * (len + l + 2));
        if (!nb) rc = GRPO_FAIL(err, GRPO_ENOMEM, "log_completions: out of memory");
        else buf = nb, cap = 2 * (len + l + 2);
      }
      if (!rc) {
        memcpy(buf + len, line, l);
        len += l;
        buf[len++] = '\n';
      }
    }
    cJSON_free(line);
  }
  /* every rank reaches the gather, failed or not */
  int mine = rc ? 0 : (int)len, *cnt = NULL, *disp = NULL;
  char *all = NULL;
  if (r->rank == 0) {
    cnt = calloc((size_t)r->world, sizeof *cnt);
    disp = calloc((size_t)r->world, sizeof *disp);
  }
  MPI_Gather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, 0, r->comm);
  size_t total = 0;
  for (int w = 0; r->rank == 0 && cnt && w < r->world; w++) {
    disp[w] = (int)total;
    total += (size_t)cnt[w];
  }
  if (r->rank == 0) all = malloc(total + 1);
  MPI_Gatherv(buf, mine, MPI_CHAR, all, cnt, disp, MPI_CHAR, 0, r->comm);
  if (r->rank == 0 && all && !rc) {
    if (c->logging.log_completions) {
      if (!r->completions) {
        char path[1200];
        snprintf(path, sizeof path, "%s/completions.jsonl", r->out_dir);
        r->completions = fopen(path, "a");
        if (!r->completions) rc = GRPO_FAIL(err, GRPO_EIO, "cannot append to %s: %s", path, strerror(errno));
      }
      if (r->completions) {
        fwrite(all, 1, total, r->completions);
        fflush(r->completions);
      }
    }
    all[total] = 0;
    long shown = 0;
    for (char *l = all; *l && shown < c->logging.num_completions_to_print; shown++) {
      char *e = strchr(l, '\n');
      if (e) *e = 0;
      cJSON *o = cJSON_Parse(l);
      const cJSON *cp = cJSON_GetObjectItem(o, "completion"), *adv = cJSON_GetObjectItem(o, "advantage");
      GRPO_INFO("step %ld completion %ld: advantage %+.3f | %.200s", step, shown,
                cJSON_IsNumber(adv) ? adv->valuedouble : 0.0, cJSON_IsString(cp) ? cp->valuestring : "");
      cJSON_Delete(o);
      if (!e) break;
      l = e + 1;
    }
  }
  free(all);
  free(cnt);
  free(disp);
  free(buf);
  return rc;
}

/* Generates groups[0..n) into strided slots: sample first_sample + j of
 * group g goes to outs[g * stride + first_sample + j] (tmp: a compact view). */
static int generate_strided(run *r, const rollout_engine_options *eo, const rollout_group *groups, int n,
                            rollout_output *outs, int stride, rollout_output *tmp, rollout_engine_stats *rs,
                            grpo_error *err) {
  int k = 0;
  for (int g = 0; g < n; g++)
    for (int j = 0; j < groups[g].n_samples; j++) tmp[k++] = outs[(size_t)g * stride + groups[g].first_sample + j];
  int rc = rollout_engine_generate(r->s.engine, eo, groups, n, tmp, rs, err);
  k = 0;
  for (int g = 0; !rc && g < n; g++)
    for (int j = 0; j < groups[g].n_samples; j++) outs[(size_t)g * stride + groups[g].first_sample + j] = tmp[k++];
  return rc;
}

/* rollout.adaptive_group_size: group sizes in [G0, G] for the round's B
 * groups from their pilots (the first G0 samples, rewards in rew: this
 * rank's `used` groups), under a budget of B x num_generations samples
 * (trainer/allocate.h, Beta prior fitted to the batch). A pilot sample
 * counts as a success when its total reward is above the middle of the
 * batch's pilot rewards (correct / wrong for a 0-1 reward). Every rank
 * computes the same sizes; size[g] is global group g's (g on rank g % W). */
static int adaptive_group_sizes(run *r, const float *rew, int used, int G, int G0, int F, const float *weights,
                                int B, int shared, int *n0, int *c, int *size, grpo_error *err) {
  double lo = INFINITY, hi = -INFINITY;
  for (int q = 0; q < used * G; q++) {
    if (q % G >= G0) continue;
    double t = trainer_total_reward(rew + (size_t)q * F, weights, F);
    if (!isnan(t)) lo = fmin(lo, t), hi = fmax(hi, t);
  }
  double ext[2] = {-lo, hi};
  MPI_Allreduce(MPI_IN_PLACE, ext, 2, MPI_DOUBLE, MPI_MAX, r->comm);
  double mid = 0.5 * (ext[1] - ext[0]);
  int *mine = malloc(sizeof(int) * (size_t)(used + 1));
  int *gc = malloc(sizeof(int) * (size_t)r->world), *gd = malloc(sizeof(int) * (size_t)r->world);
  int *all = malloc(sizeof(int) * (size_t)B);
  int rc = mine && gc && gd && all ? GRPO_OK : GRPO_FAIL(err, GRPO_ENOMEM, "adaptive group size: out of memory");
  for (int l = 0; !rc && l < used; l++) {
    mine[l] = 0;
    for (int j = 0; j < G0; j++) {
      double t = trainer_total_reward(rew + ((size_t)l * G + j) * F, weights, F);
      mine[l] += !isnan(t) && ext[1] > -ext[0] && t > mid;
    }
  }
  for (int w = 0, at = 0; !rc && w < r->world; w++) {
    gc[w] = B / r->world + (w < B % r->world ? 1 : 0);
    gd[w] = at;
    at += gc[w];
  }
  /* shared: every trainer holds all B groups, in global order */
  if (!rc && !shared) MPI_Allgatherv(mine, used, MPI_INT, all, gc, gd, MPI_INT, r->comm);
  for (int g = 0; !rc && g < B; g++) {
    n0[g] = G0;
    c[g] = shared ? mine[g] : all[gd[g % r->world] + g / r->world];
  }
  trainer_alloc_prior prior;
  if (!rc) rc = trainer_alloc_fit_prior(n0, c, B, &prior, err);
  /* a few tiny pilots cannot tell a sharp prior from noise: cap its weight
   * at one pilot's, so a prompt's own samples always count */
  if (!rc && prior.a + prior.b > G0) {
    double k = G0 / (prior.a + prior.b);
    prior.a *= k;
    prior.b *= k;
  }
  if (!rc)
    rc = trainer_alloc_group_sizes(n0, c, B, &prior, (int64_t)B * r->cfg->rollout.num_generations, G0, G, size, err);
  if (rc) grpo_error_prefix(err, "rollout.adaptive_group_size");
  free(mine);
  free(gc);
  free(gd);
  free(all);
  return rc;
}

int trainer_train(const grpo_config *cfg, MPI_Comm comm, trainer_summary *summary, grpo_error *err) {
  trainer_summary sum_local = {0};
  if (!summary) summary = &sum_local;
  memset(summary, 0, sizeof *summary);
  summary->accuracy_first = summary->accuracy_last = -1;
  double t0 = grpo_now_seconds();
  const int disagg = cfg->distributed.mode == GRPO_CFG_MODE_DISAGGREGATED;
  if (cfg->rollout.adaptive_group_size && cfg->rollout.parallel_threads)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "rollout.adaptive_group_size does not combine with rollout.parallel_threads yet");
  if (cfg->rollout.adaptive_group_size && cfg->distributed.off_policy_steps > 0)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "rollout.adaptive_group_size does not combine with distributed.off_policy_steps yet (the sizes "
                     "need the pilot of the step)");
  if (cfg->rollout.adaptive_group_size && cfg->rollout.adaptive_pilot > cfg->rollout.num_generations)
    return GRPO_FAIL(err, GRPO_EINVAL, "rollout.adaptive_pilot (%ld) is above rollout.num_generations (%ld)",
                     (long)cfg->rollout.adaptive_pilot, (long)cfg->rollout.num_generations);
  if (cfg->distributed.off_policy_steps > 0 && cfg->trainer.dynamic_sampling)
    return GRPO_FAIL(err, GRPO_EUNSUPPORTED,
                     "distributed.off_policy_steps does not combine with trainer.dynamic_sampling yet (a step may "
                     "need several generation rounds)");
  run r;
  int rc = run_open(&r, cfg, comm, 1, err);
  /* disaggregated: ranks [0, T) train, ranks [T, N) generate and score */
  rollout_cluster cl;
  memset(&cl, 0, sizeof cl);
  cl.weights_comm = MPI_COMM_NULL;
  MPI_Comm tcomm = MPI_COMM_NULL;
  if (!rc && disagg) {
    int T = r.world - (int)cfg->distributed.rollout_ranks;
    rc = rollout_cluster_init(&cl, comm, T, err);
    /* trainer 0 and the workers: NCCL between their devices when all can */
    if (!rc && cl.weights_comm != MPI_COMM_NULL)
      rc = optim_comm_create(&r.weights_comm, cl.weights_comm, r.s.be, "weight broadcast", err);
    if (!rc && optim_comm_is_nccl(r.weights_comm)) {
      cl.bcast = weights_bcast_device;
      cl.bcast_ctx = &r;
    }
    if (!rc) {
      MPI_Comm_split(comm, r.rank < T ? 0 : 1, r.rank, &tcomm);
      if (r.rank >= T) {
        rc = serve_rollouts(&r, &cl, err);
        MPI_Comm_free(&tcomm);
        rollout_cluster_free(&cl);
        run_close(&r);
        return rc;
      }
      r.comm = tcomm;
      MPI_Comm_rank(tcomm, &r.rank);
      MPI_Comm_size(tcomm, &r.world);
    }
  }
  if (!rc) rc = source_open_train(&r.src, cfg, err);
  if (!rc) rc = maybe_resume(&r, err);
  if (!rc && cfg->trainer.beta != 0.0) {
    /* the frozen reference: model.ref_path, else the policy as it started
     * (loaded again, so a resumed run keeps the same reference) */
    const char *ref = cfg->model.ref_path[0] ? cfg->model.ref_path : cfg->model.path;
    rc = trainer_session_load_weights(&r.s, ref, &r.ref_params, err);
    if (rc) grpo_error_prefix(err, "%s", cfg->model.ref_path[0] ? "model.ref_path" : "the reference model");
    if (!rc && r.ref_params.cfg.vocab != r.s.params.cfg.vocab)
      rc = GRPO_FAIL(err, GRPO_EINVAL, "model.ref_path: vocabulary %d, the policy's is %d (they must share a tokenizer)",
                     r.ref_params.cfg.vocab, r.s.params.cfg.vocab);
    if (!rc) rc = model_params_bind(&r.ref_params, r.s.be, err);
    model_plan_opts po = {.max_tokens = r.mb_tokens, .max_cache_len = 1};
    if (!rc) rc = model_transformer_create(&r.ref_model, model_params_device(&r.ref_params), r.s.be, &po, err);
  }
  /* rollout.adaptive_group_size: groups hold up to G = adaptive_max_group_size
   * samples (the stride of every per-sample array); each draws a pilot of G0,
   * then the step's budget of B x num_generations samples is shared out */
  const int adaptive = cfg->rollout.adaptive_group_size;
  const int G0 = (int)cfg->rollout.adaptive_pilot;
  const int B = (int)cfg->trainer.prompts_per_step;
  const int G = adaptive ? (int)(cfg->rollout.adaptive_max_group_size > 0 ? cfg->rollout.adaptive_max_group_size
                                                                          : 2 * cfg->rollout.num_generations)
                         : (int)cfg->rollout.num_generations;
  const int max_new = (int)cfg->rollout.max_completion_length;
  const int F = r.reg ? reward_registry_count(r.reg) : 1;
  /* this rank's prompts: rank r gets indices r, r + W, ... of the B */
  /* local slots for up to 2B groups: kept groups plus one more round */
  const int SL = 2 * B;
  prompt_item *items = calloc((size_t)B, sizeof *items);
  model_ids *pids = calloc((size_t)SL, sizeof *pids);
  rollout_group *groups = calloc((size_t)SL, sizeof *groups);
  const char **golds = calloc((size_t)B, sizeof *golds);
  /* distributed.off_policy_steps: the next step's prompts and work item */
  const int off_policy = disagg && cfg->distributed.off_policy_steps > 0;
  struct {
    prompt_item *items;
    model_ids *pids;
    rollout_group *groups;
    const char **golds;
    rollout_work w;
    rollout_dispatch_handle *h;
    rollout_results res;
    int pending, rc0;
  } next = {0};
  if (off_policy) {
    next.items = calloc((size_t)B, sizeof *next.items);
    next.pids = calloc((size_t)SL, sizeof *next.pids);
    next.groups = calloc((size_t)SL, sizeof *next.groups);
    next.golds = calloc((size_t)B, sizeof *next.golds);
    if (!next.items || !next.pids || !next.groups || !next.golds)
      rc = GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory for the off-policy batch");
  }
  rollout_output *outs = calloc((size_t)SL * G, sizeof *outs);
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)SL * G * max_new);
  float *lps = malloc(sizeof(float) * (size_t)SL * G * max_new);
  float *slps = malloc(sizeof(float) * (size_t)SL * G * max_new);
  rollout_output *gen_tmp = adaptive ? calloc((size_t)SL * G, sizeof *gen_tmp) : NULL;
  float *rew_tmp = adaptive && disagg ? malloc(sizeof(float) * ((size_t)SL * G * F + 1)) : NULL;
  int *drawn = calloc((size_t)SL, sizeof *drawn); /* samples drawn per group slot */
  int *alloc_n0 = calloc((size_t)B, sizeof *alloc_n0), *alloc_c = calloc((size_t)B, sizeof *alloc_c);
  int *alloc_size = calloc((size_t)B, sizeof *alloc_size);
  uint8_t *forced = calloc((size_t)SL * G * max_new, 1);
  float *rew_local = malloc(sizeof(float) * (size_t)SL * G * F);
  const int parallel = cfg->rollout.parallel_threads;
  rollout_tw *trajs = parallel ? calloc((size_t)SL * G, sizeof *trajs) : NULL;
  int n_trajs = 0; /* initialised trajectories to free */
  char *rtext = NULL;
  int32_t *roffs = NULL;
  size_t rtext_cap = 0, roffs_cap = 0;
  float *rew_all = malloc(sizeof(float) * (size_t)B * G * F);
  float *adv_all = malloc(sizeof(float) * (size_t)B * G);
  double *scratch = malloc(sizeof(double) * (size_t)B * G * (F + 1));
  float *weights = malloc(sizeof(float) * (size_t)F);
  seq_ref *seqs = calloc((size_t)SL * G, sizeof *seqs);
  int *counts = malloc(sizeof(int) * (size_t)r.world), *displs = malloc(sizeof(int) * (size_t)r.world);
  int *kcounts = malloc(sizeof(int) * (size_t)r.world), *kdispls = malloc(sizeof(int) * (size_t)r.world);
  if (!rc && (!items || !pids || !groups || !golds || !outs || !tok || !lps || !slps || !forced || !rew_local || !drawn ||
              !alloc_n0 || !alloc_c || !alloc_size || (adaptive && !gen_tmp) || (adaptive && disagg && !rew_tmp) || !rew_all ||
              !adv_all || !scratch || !weights || !seqs || !counts || !displs || !kcounts || !kdispls))
    rc = GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory for a batch of %d x %d", B, G);
  for (int i = 0; !rc && i < SL * G; i++) {
    outs[i].ids = tok + (size_t)i * max_new;
    outs[i].logprobs = lps + (size_t)i * max_new;
    outs[i].sampler_logprobs = slps + (size_t)i * max_new;
    outs[i].forced = forced + (size_t)i * max_new;
  }
  for (int k = 0; !rc && k < F; k++) weights[k] = r.reg ? (float)reward_registry_weight(r.reg, k) : 1.0f;
  for (int w = 0; !rc && w < r.world; w++) {
    counts[w] = (B / r.world + (w < B % r.world ? 1 : 0)) * G * F;
    displs[w] = w == 0 ? 0 : displs[w - 1] + counts[w - 1];
  }
  double acc0 = -1;
  if (!rc && cfg->trainer.eval_on_start) {
    rc = evaluate(&r, &acc0, err);
    summary->accuracy_first = acc0;
    if (!rc && r.n_evals) trainer_metrics_flush(&r.metrics, r.step);
  }
  if (!rc && disagg && r.rank == 0 && !cl.bcast) rc = model_params_to_host(&r.s.params, err);
  if (!rc && disagg && r.rank == 0)
    rc = rollout_broadcast_weights(&cl, (uint32_t)r.step, r.s.params.data, r.s.params.total, err);
  grpo_progress prog;
  grpo_progress_begin(&prog, NULL, "grpo", "step", (long)cfg->trainer.max_steps, -1);
  prog.enabled = r.rank == 0 && cfg->logging.progress;
  prog.plain_interval_s = 10.0;
  int bad_in_a_row = 0;
  int first_step = 1;
  while (!rc && r.step < cfg->trainer.max_steps) {
    double ts = grpo_now_seconds();
    r.rewind = 0; /* prompts drawn ahead are this step's now */
    /* 1-3. generation rounds: prompts (identical on every rank; rank r takes
     * groups r, r + W, ...), rollout, rewards. One round without dynamic
     * sampling; with it, rounds go on until B groups whose rewards differ are
     * kept (DAPO), at most trainer.max_num_gen_batches rounds. */
    const int dynamic = cfg->trainer.dynamic_sampling;
    const int max_rounds = dynamic ? (int)cfg->trainer.max_num_gen_batches : 1;
    int kept = 0, kept_global = 0, rounds = 0;
    double len_sum = 0, clipped = 0, t_rollout = 0, gen_n = 0;
    rollout_engine_stats est = {0};
    trainer_adv_stats ast_all = {0};
    for (int round = 0; !rc && round < max_rounds && kept_global < B; round++) {
      double tr = grpo_now_seconds();
      rounds++;
      if (disagg) {
        int n_new = 0, next_was_pending = next.pending;
        if (next.pending) {
          /* one step off-policy: these rollouts were generated during the
           * last update, with the weights from before it */
          next.pending = 0;
          est.decode_tokens += next.res.worker_tokens;
          est.seconds += next.res.worker_seconds;
          rc = disagg_collect(&r, next.rc0, B, G, F, max_new, 0, pids, groups, outs, trajs, tok, lps, slps, forced,
                              rew_local, 1, 0, &kept_global, &n_new, &ast_all, &len_sum, &clipped, weights, adv_all,
                              scratch, err);
        } else {
          source_next(&r.src, B, items);
          rc = disaggregated_round(&r, &cl, items, B, G, F, max_new, kept, pids, groups, golds, outs, trajs, tok, lps,
                                   slps, forced, rew_local, adaptive ? G0 : 0, drawn, gen_tmp, rew_tmp, alloc_n0,
                                   alloc_c, alloc_size, round == 0, dynamic, &kept_global, &n_new, &est, &ast_all,
                                   &len_sum, &clipped, weights, adv_all, scratch, err);
        }
        if (!adaptive)
          for (int l = kept; l < kept + n_new; l++) drawn[l] = G;
        /* generated this round (the same on every trainer) */
        for (int g = 0; g < B; g++) gen_n += adaptive && !next_was_pending ? alloc_size[g] : G;
        if (parallel && n_trajs < (kept + B) * G) n_trajs = (kept + B) * G; /* every slot of the round to free */
        kept += n_new;
        t_rollout += grpo_now_seconds() - tr;
        continue;
      }
      source_next(&r.src, B, items);
      int used = 0;
      for (int i = r.rank; i < B && !rc; i += r.world) {
        model_ids *pi = &pids[kept + used];
        pi->n = 0;
        rc = trainer_session_prompt(&r.s, items[i].question, pi, err);
        if (rc) break;
        if ((long)pi->n > cfg->data.max_prompt_length) {
          /* keep the batch shape: truncate from the left and log it */
          GRPO_WARN("prompt %llu has %zu tokens (data.max_prompt_length %ld): kept its last tokens",
                    (unsigned long long)items[i].index, pi->n, (long)cfg->data.max_prompt_length);
          size_t drop = pi->n - (size_t)cfg->data.max_prompt_length;
          memmove(pi->ids, pi->ids + drop, sizeof(int32_t) * (size_t)cfg->data.max_prompt_length);
          pi->n = (size_t)cfg->data.max_prompt_length;
        }
        groups[kept + used] = (rollout_group){pi->ids, (int)pi->n, adaptive ? G0 : G, (uint32_t)items[i].index, 0};
        drawn[kept + used] = 0;
        used++;
      }
      if (rc) break;
      rollout_engine_options eo;
      trainer_session_engine_options(&r.s, (uint64_t)cfg->seed, (uint32_t)r.step, &eo);
      rollout_engine_stats rs;
      /* adaptive: pass 0 draws the pilots, pass 1 the rest of each group */
      for (int pass = 0; !rc && pass < (adaptive ? 2 : 1); pass++) {
      if (pass == 1) {
        rc = adaptive_group_sizes(&r, rew_local + (size_t)kept * G * F, used, G, G0, F, weights, B, 0, alloc_n0,
                                  alloc_c, alloc_size, err);
        if (rc) break;
        for (int g = 0; g < used; g++) {
          groups[kept + g].first_sample = (uint32_t)G0;
          groups[kept + g].n_samples = alloc_size[r.rank + g * r.world] - G0;
        }
      }
      if (adaptive) {
        rc = generate_strided(&r, &eo, groups + kept, used, outs + (size_t)kept * G, G, gen_tmp, &rs, err);
      } else if (parallel) {
        rollout_tw_options two;
        trainer_session_tw_options(&r.s, &two);
        rc = rollout_engine_generate_parallel(r.s.engine, &eo, &two, groups + kept, used,
                                              trajs + (size_t)kept * G, &rs, err);
        if (!rc) n_trajs = (kept + used) * G;
      } else {
        rc = rollout_engine_generate(r.s.engine, &eo, groups + kept, used, outs + (size_t)kept * G, &rs, err);
      }
      if (rc) break;
      est.decode_tokens += rs.decode_tokens;
      est.seconds += rs.seconds;
      for (int g = 0; !rc && g < used; g++) {
        const prompt_item *it = &items[r.rank + g * r.world];
        int j_end = drawn[kept + g] + groups[kept + g].n_samples;
        /* samples never drawn are unscorable: no advantage, no training */
        for (int j = j_end; j < G; j++)
          for (int k = 0; k < F; k++) rew_local[((size_t)(kept + g) * G + j) * F + k] = NAN;
        for (int j = drawn[kept + g]; j < j_end && !rc; j++) {
          size_t q = (size_t)(kept + g) * G + j;
          model_text text = {0};
          reward_input in;
          reward_input_init(&in);
          in.prompt = it->question;
          in.gold = it->gold;
          if (parallel) {
            /* the joined response, tags kept, with each token's byte offset
             * (the acceleration reward counts tokens on the critical path) */
            const rollout_tw *t = &trajs[q];
            const int32_t *ids = t->combined.ids + t->n_prompt;
            int n = t->combined.n - t->n_prompt;
            if ((size_t)n + 1 > roffs_cap) {
              int32_t *no = realloc(roffs, sizeof(int32_t) * 2 * ((size_t)n + 1));
              if (!no) {
                rc = GRPO_FAIL(err, GRPO_ENOMEM, "trainer: out of memory for a response");
                break;
              }
              roffs = no;
              roffs_cap = 2 * ((size_t)n + 1);
            }
            rc = trainer_session_response_text(&r.s, ids, n, &rtext, &rtext_cap, roffs, err);
            if (rc) break;
            in.completion = rtext;
            in.n_tokens = n;
            in.token_offsets = roffs;
            in.truncated = t->truncated;
            len_sum += n;
            clipped += t->truncated;
          } else {
            rollout_output *o = &outs[q];
            rc = model_tokenizer_decode(r.s.tok, o->ids, (size_t)o->n, 1, &text, err);
            if (rc) break;
            in.completion = text.s ? text.s : "";
            in.n_tokens = o->n;
            in.truncated = o->truncated;
            len_sum += o->n;
            clipped += o->truncated;
          }
          reward_result res;
          rc = reward_registry_score(r.reg, r.rs, &in, &res, err);
          for (int k = 0; !rc && k < F; k++) rew_local[q * F + k] = (float)res.scores[k];
          model_text_free(&text);
        }
        gen_n += j_end - drawn[kept + g];
        drawn[kept + g] = j_end;
      }
      }
      if (rc) break;
      MPI_Allgatherv(rew_local + (size_t)kept * G * F, used * G * F, MPI_FLOAT, rew_all, counts, displs,
                     MPI_FLOAT, r.comm);
      if (round == 0) { /* the metrics describe what was generated, before any filtering */
        trainer_adv_options ao0 = {TRAINER_SCALE_NONE, TRAINER_STD_UNBIASED, TRAINER_SUM_THEN_NORMALIZE, 0};
        trainer_advantages(rew_all, B, G, F, weights, &ao0, NULL, adv_all, scratch, &ast_all);
      }
      /* keep groups in global order until B are kept: group g lives on rank
       * g % W as that rank's group g / W, in the rank-major gathered block */
      int n_new = 0;
      for (int g = 0; g < B; g++) {
        int w = g % r.world, l = g / r.world;
        const float *rw = rew_all + displs[w] + (size_t)l * G * F;
        float *tot = adv_all; /* free until the advantages below */
        for (int j = 0; j < G; j++) tot[j] = (float)trainer_total_reward(rw + (size_t)j * F, weights, F);
        int keep = kept_global < B && (!dynamic || !trainer_group_is_degenerate(tot, G));
        if (!keep) continue;
        kept_global++;
        if (w != r.rank) continue;
        /* compact: this rank's round-local group l moves to slot kept + n_new */
        step_slots sl = {pids, groups, outs, trajs, rew_local, G, F, drawn};
        move_group(&sl, kept + l, kept + n_new);
        n_new++;
      }
      kept += n_new;
      t_rollout += grpo_now_seconds() - tr;
    }
    if (rc) break;
    const int used = kept;
    /* 4. advantages over the kept groups (identical on every rank) */
    int my_count = used * G * F;
    MPI_Allgather(&my_count, 1, MPI_INT, kcounts, 1, MPI_INT, r.comm);
    for (int w = 0; w < r.world; w++) kdispls[w] = w == 0 ? 0 : kdispls[w - 1] + kcounts[w - 1];
    MPI_Allgatherv(rew_local, my_count, MPI_FLOAT, rew_all, kcounts, kdispls, MPI_FLOAT, r.comm);
    trainer_adv_options ao = {cfg->trainer.scale_rewards == GRPO_CFG_SCALE_BATCH  ? TRAINER_SCALE_BATCH
                              : cfg->trainer.scale_rewards == GRPO_CFG_SCALE_NONE ? TRAINER_SCALE_NONE
                                                                                  : TRAINER_SCALE_GROUP,
                              cfg->trainer.adv_std == GRPO_CFG_STD_POPULATION ? TRAINER_STD_POPULATION
                                                                              : TRAINER_STD_UNBIASED,
                              cfg->reward.multi_objective_aggregation == GRPO_CFG_AGG_NORMALIZE_THEN_SUM
                                  ? TRAINER_NORMALIZE_THEN_SUM
                                  : TRAINER_SUM_THEN_NORMALIZE,
                              cfg->trainer.adv_eps};
    trainer_adv_stats ast;
    trainer_advantages(rew_all, kept_global, G, F, weights, &ao, NULL, adv_all, scratch, &ast);
    const float *my_adv = adv_all + kdispls[r.rank] / F;
    /* 5. global normalisers */
    double counts_local[2] = {0, 0};
    for (int q = 0; q < used * G; q++) {
      if (q % G >= drawn[q / G]) {
        seqs[q] = (seq_ref){0}; /* never drawn (adaptive group size): not a sequence */
        continue;
      }
      int trained = !(cfg->trainer.mask_truncated_completions && outs[q].truncated);
      if (parallel) {
        const rollout_tw *t = &trajs[q];
        trained = !(cfg->trainer.mask_truncated_completions && t->truncated);
        seqs[q] = (seq_ref){groups[q / G].prompt, groups[q / G].n_prompt, NULL, 0, NULL, NULL, my_adv[q], trained, t};
        counts_local[1] += trained ? traj_trained_tokens(t) : 0;
      } else {
        seqs[q] = (seq_ref){groups[q / G].prompt, groups[q / G].n_prompt, outs[q].ids, outs[q].n,
                            outs[q].sampler_logprobs, outs[q].forced, my_adv[q], trained, NULL};
        counts_local[1] += trained ? sampled_tokens(outs[q].forced, outs[q].n) : 0;
      }
      counts_local[0] += 1;
    }
    MPI_Allreduce(MPI_IN_PLACE, counts_local, 2, MPI_DOUBLE, MPI_SUM, r.comm);
    trainer_loss_norm norm = {counts_local[0], counts_local[1]};
    if (cfg->logging.log_completions || cfg->logging.num_completions_to_print > 0) {
      rc = log_completions(&r, r.step + 1, seqs, used * G, rew_local, F, err);
      if (rc) break;
    }
    /* 5b. one step off-policy: the next step's rollouts are generated with
     * the current weights while this step trains. Not before a checkpoint,
     * so a resumed run continues exactly as an uninterrupted one. */
    const long ck_every = cfg->checkpoint.every_steps;
    if (off_policy && r.step + 1 < cfg->trainer.max_steps && !(ck_every > 0 && (r.step + 1) % ck_every == 0)) {
      r.rewind_counter = r.src.counter;
      r.rewind_epoch = r.src.cursor.epoch;
      r.rewind_index = r.src.cursor.index;
      r.rewind = 1;
      source_next(&r.src, B, next.items);
      rc = disagg_prepare(&r, next.items, B, G, next.pids, next.groups, next.golds, err);
      if (!rc && r.rank == 0) {
        disagg_work(&r, B, max_new, (uint32_t)r.step, (uint32_t)(r.step + 1), next.groups, next.golds, &next.w);
        rc = rollout_dispatch_begin(&cl, &next.w, 1, &next.h, err);
      }
      if (rc) break;
      next.pending = 1;
    }
    /* 6. train (num_iterations passes over the same rollouts) */
    double tt = grpo_now_seconds();
    train_accum acc = {0};
    double gnorm = 0, lr = 0;
    int skipped = 0;
    for (int it = 0; !rc && it < cfg->trainer.num_iterations; it++) {
      memset(&acc, 0, sizeof acc);
      /* the entropy mask follows the weights: new threshold each pass */
      if (cfg->trainer.top_entropy_quantile < 1.0) {
        rc = entropy_threshold(&r, seqs, used * G, &norm, err);
        if (rc) break;
      }
      rc = train_sequences(&r, seqs, used * G, &norm, 0, &acc, err);
      if (rc) break;
      int s = optimizer_step(&r, &gnorm, &lr, err);
      if (s < 0) {
        rc = -s;
        break;
      }
      skipped |= s;
    }
    if (rc) break;
    double t_train = grpo_now_seconds() - tt;
    for (int q = 0; q < n_trajs; q++) rollout_tw_free(&trajs[q]);
    n_trajs = 0;
    r.step++;
    if (next.pending) {
      /* collect the next step's rollouts (the workers are done with them
       * before the new weights go out); this step's buffers are free now */
      if (r.rank == 0) {
        next.res = (rollout_results){outs, rew_local, F, 0, 0, trajs};
        next.rc0 = rollout_dispatch_finish(&cl, next.h, &next.res, err);
        next.h = NULL;
      }
      prompt_item *ti = items;
      items = next.items, next.items = ti;
      model_ids *tp = pids;
      pids = next.pids, next.pids = tp;
      rollout_group *tg = groups;
      groups = next.groups, next.groups = tg;
      r.rewind = 0;
    }
    if (disagg && r.rank == 0) {
      double t0 = grpo_now_seconds();
      rc = cl.bcast ? GRPO_OK : model_params_to_host(&r.s.params, err);
      if (!rc) rc = rollout_broadcast_weights(&cl, (uint32_t)r.step, r.s.params.data, r.s.params.total, err);
      r.t_sync += grpo_now_seconds() - t0;
      if (rc) break;
    }
    if (skipped) {
      summary->skipped_steps++;
      bad_in_a_row++;
      GRPO_WARN("step %ld: non-finite gradient, update skipped (%d in a row)", r.step, bad_in_a_row);
      if (bad_in_a_row >= cfg->trainer.max_bad_steps) {
        rc = GRPO_FAIL(err, GRPO_ENUMERIC,
                       "%d non-finite updates in a row at step %ld; stopping (the last checkpoint is intact)",
                       bad_in_a_row, r.step);
        break;
      }
    } else {
      bad_in_a_row = 0;
    }
    /* 7. metrics (sums over ranks) */
    double m[8] = {acc.loss, acc.ls.kl_sum, acc.ls.entropy_sum, acc.ls.tokens, acc.ls.clip_low,
                   acc.ls.clip_high, acc.ls.clip_region, acc.ls.clip_count};
    double lens[3] = {len_sum, clipped, gen_n};
    MPI_Allreduce(MPI_IN_PLACE, m, 8, MPI_DOUBLE, MPI_SUM, r.comm);
    MPI_Allreduce(MPI_IN_PLACE, lens, disagg ? 2 : 3, MPI_DOUBLE, MPI_SUM, r.comm);
    double tok_n = m[3] > 0 ? m[3] : 1, clip_n = m[7] > 0 ? m[7] : 1;
    double seq_n = lens[2] > 0 ? lens[2] : 1; /* every generated completion */
    trainer_metrics *mt = &r.metrics;
    trainer_metrics_set(mt, "reward", ast_all.reward_mean);
    trainer_metrics_set(mt, "reward_std", ast_all.reward_std);
    for (int k = 0; k < F; k++) {
      double s = 0, c = 0;
      for (int q = 0; q < kept_global * G; q++) {
        float v = rew_all[(size_t)q * F + k];
        if (!isnan(v)) s += v, c += 1;
      }
      trainer_metrics_set(mt, reward_registry_metric(r.reg, k), c > 0 ? s / c : NAN);
    }
    trainer_metrics_set(mt, "frac_reward_zero_std", ast_all.frac_reward_zero_std);
    if (r.src.have_ds) trainer_metrics_set(mt, "data/skipped_rows", (double)r.src.ds.skipped);
    if (dynamic) {
      trainer_metrics_set(mt, "dynamic_sampling/rounds", rounds);
      trainer_metrics_set(mt, "dynamic_sampling/kept_groups", kept_global);
      trainer_metrics_set(mt, "reward_kept", ast.reward_mean);
    }
    trainer_metrics_set(mt, "loss", m[0]);
    if (cfg->trainer.beta != 0) trainer_metrics_set(mt, "kl", m[1] / tok_n);
    trainer_metrics_set(mt, "entropy", m[2] / tok_n);
    if (cfg->trainer.top_entropy_quantile < 1.0) trainer_metrics_set(mt, "entropy_threshold", r.ent_threshold);
    trainer_metrics_set(mt, "clip_ratio/low_mean", m[4] / clip_n);
    trainer_metrics_set(mt, "clip_ratio/high_mean", m[5] / clip_n);
    trainer_metrics_set(mt, "clip_ratio/region_mean", m[6] / clip_n);
    trainer_metrics_set(mt, "completions/mean_length", lens[0] / seq_n);
    trainer_metrics_set(mt, "rollout/samples", lens[2]);
    if (adaptive) {
      int gs[2] = {-G, 0}; /* -min, max over the kept groups */
      for (int g = 0; g < used; g++) {
        if (-drawn[g] > gs[0]) gs[0] = -drawn[g];
        if (drawn[g] > gs[1]) gs[1] = drawn[g];
      }
      MPI_Allreduce(MPI_IN_PLACE, gs, 2, MPI_INT, MPI_MAX, r.comm);
      trainer_metrics_set(mt, "rollout/group_size_min", -gs[0]);
      trainer_metrics_set(mt, "rollout/group_size_max", gs[1]);
    }
    trainer_metrics_set(mt, "completions/clipped_ratio", lens[1] / seq_n);
    trainer_metrics_set(mt, "grad_norm", gnorm);
    trainer_metrics_set(mt, "learning_rate", lr);
    trainer_metrics_set(mt, "num_tokens", norm.n_tokens);
    trainer_metrics_set(mt, "timing/rollout", t_rollout);
    trainer_metrics_set(mt, "timing/train", t_train);
    trainer_metrics_set(mt, "timing/sync", r.t_sync);
    r.t_sync = 0;
    trainer_metrics_set(mt, "rollout_tokens_per_second", est.seconds > 0 ? est.decode_tokens / est.seconds : 0);
    trainer_metrics_set(mt, "train_tokens_per_second", t_train > 0 ? norm.n_tokens / t_train : 0);
    record_mfu(&r, t_train);
    if (first_step) summary->reward_first = ast_all.reward_mean;
    first_step = 0;
    summary->reward_last = ast_all.reward_mean;
    /* 8. evaluation, checkpoint, signals */
    if (cfg->trainer.eval_steps > 0 && r.step % cfg->trainer.eval_steps == 0 && r.step < cfg->trainer.max_steps) {
      double a;
      rc = evaluate(&r, &a, err);
      if (rc) break;
      summary->accuracy_last = a;
    }
    trainer_metrics_set(mt, "step_time", grpo_now_seconds() - ts);
    char line[160];
    snprintf(line, sizeof line, "reward %.3f  len %.1f  kl %.4f  gnorm %.3f", ast_all.reward_mean,
             lens[0] / seq_n, cfg->trainer.beta != 0 ? m[1] / tok_n : 0.0, gnorm);
    trainer_metrics_flush(mt, r.step);
    grpo_progress_update(&prog, r.step, line);
    if (!prog.enabled && r.rank == 0 && r.step % cfg->logging.steps == 0)
      GRPO_INFO("step %ld/%ld  %s", r.step, (long)cfg->trainer.max_steps, line);
    summary->steps_done++;
    int stop = stop_requested(&r);
    if ((cfg->checkpoint.every_steps > 0 && r.step % cfg->checkpoint.every_steps == 0) || stop ||
        r.step == cfg->trainer.max_steps) {
      rc = save_checkpoint(&r, err);
      if (rc) break;
    }
    if (stop) {
      GRPO_INFO("signal received: checkpoint written at step %ld, stopping", r.step);
      summary->stopped_by_signal = 1;
      break;
    }
  }
  if (!rc && !summary->stopped_by_signal) {
    double a;
    rc = evaluate(&r, &a, err);
    if (!rc && a >= 0) {
      summary->accuracy_last = a;
      trainer_metrics_flush(&r.metrics, r.step);
    }
  }
  grpo_progress_end(&prog, NULL);
  summary->final_step = r.step;
  summary->wall_seconds = grpo_now_seconds() - t0;
  if (!rc) write_summary(&r, summary, "grpo");
  for (int i = 0; pids && i < SL; i++) model_ids_free(&pids[i]);
  for (int i = 0; next.pids && i < SL; i++) model_ids_free(&next.pids[i]);
  free(items);
  free(pids);
  free(groups);
  free(golds);
  free(next.items);
  free(next.pids);
  free(next.groups);
  free(next.golds);
  free(outs);
  free(tok);
  free(lps);
  free(slps);
  free(forced);
  free(gen_tmp);
  free(rew_tmp);
  free(drawn);
  free(alloc_n0);
  free(alloc_c);
  free(alloc_size);
  free(rew_local);
  free(rew_all);
  free(adv_all);
  free(scratch);
  free(weights);
  free(seqs);
  free(counts);
  free(displs);
  free(kcounts);
  free(kdispls);
  for (int q = 0; q < n_trajs; q++) rollout_tw_free(&trajs[q]);
  free(trajs);
  free(rtext);
  free(roffs);
  if (disagg) {
    grpo_error e2 = {0};
    if (r.rank == 0 && rollout_shutdown_workers(&cl, &e2) && !rc) {
      *err = e2;
      rc = e2.code;
    }
    rollout_cluster_free(&cl);
    if (tcomm != MPI_COMM_NULL) MPI_Comm_free(&tcomm);
  }
  run_close(&r);
  return rc;
}

/* ---- SFT ------------------------------------------------------------------------- */

typedef struct sft_example {
  model_ids prompt, completion;
} sft_example;

int trainer_sft(const grpo_config *cfg, MPI_Comm comm, trainer_summary *summary, grpo_error *err) {
  trainer_summary sum_local = {0};
  if (!summary) summary = &sum_local;
  memset(summary, 0, sizeof *summary);
  summary->accuracy_first = summary->accuracy_last = -1;
  double t0 = grpo_now_seconds();
  run r;
  int rc = run_open(&r, cfg, comm, 1, err);
  if (!rc) rc = cfg->data.sft_path[0] && cfg->data.task != GRPO_CFG_TASK_ARITHMETIC
                    ? source_open_sft(&r.src, cfg, err)
                    : source_open_train(&r.src, cfg, err);
  if (!rc) rc = maybe_resume(&r, err);
  /* an SFT source is a dataset with worked solutions, or the synthetic task */
  const int B = (int)cfg->trainer.sft_batch_size;
  long max_steps = cfg->trainer.sft_max_steps;
  if (!rc && max_steps == 0) {
    if (r.src.arithmetic)
      rc = GRPO_FAIL(err, GRPO_EINVAL, "trainer.sft_max_steps must be set for the synthetic task");
    else
      max_steps = (long)((r.src.ds.n * cfg->trainer.sft_epochs + (size_t)B - 1) / (size_t)B);
  }
  r.sched.total_steps = max_steps;
  r.sched.lr = cfg->trainer.sft_lr;
  prompt_item *items = calloc((size_t)B, sizeof *items);
  sft_example *ex = calloc((size_t)B, sizeof *ex);
  seq_ref *seqs = calloc((size_t)B, sizeof *seqs);
  if (!rc && (!items || !ex || !seqs)) rc = GRPO_FAIL(err, GRPO_ENOMEM, "sft: out of memory");
  int32_t eos = r.s.n_stop_ids > 0 ? r.s.stop_ids[0] : -1;
  grpo_progress prog;
  grpo_progress_begin(&prog, NULL, "sft", "step", max_steps, -1);
  prog.enabled = r.rank == 0 && cfg->logging.progress;
  prog.plain_interval_s = 10.0;
  while (!rc && r.step < max_steps) {
    double ts = grpo_now_seconds();
    source_next(&r.src, B, items);
    int n = 0;
    double tokens = 0;
    for (int i = r.rank; !rc && i < B; i += r.world) {
      if (!items[i].solution) continue;
      ex[n].prompt.n = ex[n].completion.n = 0;
      rc = trainer_session_prompt(&r.s, items[i].question, &ex[n].prompt, err);
      if (!rc) rc = model_tokenizer_encode(r.s.tok, items[i].solution, strlen(items[i].solution), &ex[n].completion, err);
      if (rc) break;
      if (eos >= 0) { /* the model learns to stop */
        model_ids *c = &ex[n].completion;
        if (c->n == c->cap) {
          size_t cap = c->cap ? 2 * c->cap : 16;
          int32_t *grown = realloc(c->ids, sizeof(int32_t) * cap);
          if (!grown) {
            rc = GRPO_FAIL(err, GRPO_ENOMEM, "sft: out of memory");
            break;
          }
          c->ids = grown;
          c->cap = cap;
        }
        c->ids[c->n++] = eos;
      }
      seqs[n] = (seq_ref){ex[n].prompt.ids, (int)ex[n].prompt.n, ex[n].completion.ids,
                          (int)ex[n].completion.n, NULL, NULL, 0.0f, 1, NULL};
      tokens += (double)ex[n].completion.n;
      n++;
    }
    if (rc) break;
    MPI_Allreduce(MPI_IN_PLACE, &tokens, 1, MPI_DOUBLE, MPI_SUM, r.comm);
    if (tokens == 0) {
      rc = GRPO_FAIL(err, GRPO_EINVAL, "sft: the data has no solutions to train on (data.sft_path / solution field)");
      break;
    }
    trainer_loss_norm norm = {(double)B, tokens};
    train_accum acc = {0};
    rc = train_sequences(&r, seqs, n, &norm, 1, &acc, err);
    if (rc) break;
    double gnorm, lr;
    int s = optimizer_step(&r, &gnorm, &lr, err);
    if (s < 0) {
      rc = -s;
      break;
    }
    r.step++;
    summary->skipped_steps += s;
    double loss = acc.loss;
    MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, r.comm);
    trainer_metrics_set(&r.metrics, "sft/loss", loss);
    trainer_metrics_set(&r.metrics, "grad_norm", gnorm);
    trainer_metrics_set(&r.metrics, "learning_rate", lr);
    trainer_metrics_set(&r.metrics, "num_tokens", tokens);
    record_mfu(&r, grpo_now_seconds() - ts);
    trainer_metrics_set(&r.metrics, "timing/sync", r.t_sync);
    r.t_sync = 0;
    trainer_metrics_set(&r.metrics, "step_time", grpo_now_seconds() - ts);
    trainer_metrics_flush(&r.metrics, r.step);
    char line[96];
    snprintf(line, sizeof line, "loss %.4f  gnorm %.3f", loss, gnorm);
    grpo_progress_update(&prog, r.step, line);
    if (!prog.enabled && r.rank == 0 && r.step % cfg->logging.steps == 0)
      GRPO_INFO("sft step %ld/%ld  %s", r.step, max_steps, line);
    summary->steps_done++;
    if (summary->steps_done == 1) summary->reward_first = -loss;
    summary->reward_last = -loss;
    int stop = stop_requested(&r);
    if ((cfg->checkpoint.every_steps > 0 && r.step % cfg->checkpoint.every_steps == 0) || stop ||
        r.step == max_steps) {
      rc = save_checkpoint(&r, err);
      if (rc) break;
    }
    if (stop) {
      summary->stopped_by_signal = 1;
      break;
    }
  }
  grpo_progress_end(&prog, NULL);
  if (!rc && !summary->stopped_by_signal) {
    double a;
    rc = evaluate(&r, &a, err);
    summary->accuracy_last = a;
    if (!rc && a >= 0) trainer_metrics_flush(&r.metrics, r.step);
  }
  summary->final_step = r.step;
  summary->wall_seconds = grpo_now_seconds() - t0;
  if (!rc) write_summary(&r, summary, "sft");
  for (int i = 0; ex && i < B; i++) {
    model_ids_free(&ex[i].prompt);
    model_ids_free(&ex[i].completion);
  }
  free(items);
  free(ex);
  free(seqs);
  run_close(&r);
  return rc;
}
