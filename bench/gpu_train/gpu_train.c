/* bench/gpu_train: training throughput and MFU of a Qwen2.5-0.5B-shaped model
 * (random weights) on one GPU: forward + backward + grad norm + AdamW step +
 * bf16 working-weight refresh, the optimizer step of trainer/train.c on one
 * rank (no all-reduce).
 *
 * Batch: B sequences x S tokens packed into one stream of plain causal
 * segments (tin = i, tout = the segment's last token); every token is a
 * prediction (n_pred = B*S; the last token of a segment predicts a random
 * id), loss = mean NLL (dlogprob = -1/n_pred).
 *
 * Model FLOPs per step (the MFU numerator; bias, norm, RoPE, SwiGLU, softmax
 * and optimizer FLOPs are not counted, recompute is not counted):
 *   6 * N * tokens                        N = matmul weights of the layers
 *                                         (q, k, v, o, gate, up, down)
 * + 6 * V * H * tokens                    the classifier (lm_head) on every token
 * + 12 * L * (nh*hd) * pairs              attention QK^T and PV, fwd + bwd, over
 *                                         the causal (i, j <= i) pairs:
 *                                         pairs = B * S (S + 1) / 2
 * (the causal count: half of the PaLM/Megatron "12 L H S per token", which
 * counts the full S x S score matrix; that variant is printed too). For a
 * tied model 6 N + 6 V H is 6 x all parameters (lm_head = the embedding,
 * counted once), the "6N" of model-and-io.md section 9.
 * MFU = model FLOPs / (step time * peak), peak = --peak-tflops (989.4: H100
 * SXM dense bf16; H200 the same).
 *
 *   bench_gpu_train [--device cuda|cpu] [--act bf16|f32] [--tiny] [--layers L]
 *                   [--seq S] [--batch B] [--steps N] [--warmup N] [--recompute]
 *                   [--lr X] [--peak-tflops X] [--json FILE]
 *
 * Defaults: cuda, bf16, 24 layers, S 1024, B 8, 10 timed steps after 3 warm-up.
 * --device cpu needs --act f32; --tiny is a small model (seconds on a CPU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gpu/bench_common.h"
#include "core/philox.h"
#include "core/runtime.h"
#include "model/params.h"
#include "model/transformer.h"
#include "optim/optim.h"

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--device cuda|cpu] [--act bf16|f32] [--tiny] [--layers L] [--seq S] [--batch B]\n"
          "          [--steps N] [--warmup N] [--recompute] [--lr X] [--peak-tflops X] [--json FILE]\n",
          argv0);
  exit(2);
}

static void die(const char *what, const grpo_error *err) {
  fprintf(stderr, "bench_gpu_train: %s: %s\n", what, err->msg);
  exit(1);
}

int main(int argc, char **argv) {
  grpo_runtime_init(argv);
  const char *device = "cuda", *act = NULL, *json = NULL;
  int tiny = 0, layers = 0, seq = 0, batch = 0, steps = 10, warmup = 3, recompute = 0;
  double peak_tflops = 989.4, lr = 1e-5;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--device") && more) device = argv[++i];
    else if (!strcmp(a, "--act") && more) act = argv[++i];
    else if (!strcmp(a, "--tiny")) tiny = 1;
    else if (!strcmp(a, "--layers") && more) layers = atoi(argv[++i]);
    else if (!strcmp(a, "--seq") && more) seq = atoi(argv[++i]);
    else if (!strcmp(a, "--batch") && more) batch = atoi(argv[++i]);
    else if (!strcmp(a, "--steps") && more) steps = atoi(argv[++i]);
    else if (!strcmp(a, "--warmup") && more) warmup = atoi(argv[++i]);
    else if (!strcmp(a, "--recompute")) recompute = 1;
    else if (!strcmp(a, "--lr") && more) lr = atof(argv[++i]);
    else if (!strcmp(a, "--peak-tflops") && more) peak_tflops = atof(argv[++i]);
    else if (!strcmp(a, "--json") && more) json = argv[++i];
    else usage(argv[0]);
  }
  if (!act) act = strcmp(device, "cpu") ? "bf16" : "f32";
  if (seq <= 0) seq = tiny ? 128 : 1024;
  if (batch <= 0) batch = tiny ? 2 : 8;
  if (steps < 1 || warmup < 0 || peak_tflops <= 0) usage(argv[0]);
  const int T = batch * seq;

  grpo_error err = {0};
  model_config cfg;
  if (bench_qwen_config(&cfg, tiny, layers, &err)) die("config", &err);
  grpo_backend *be = NULL;
  if (bench_backend(device, act, &be, &err)) die("backend", &err);
  char devname[256];
  bench_device_name(be, devname, sizeof devname);
  double mem_total = 0, mem_peak = 0;
  double mem_start = bench_mem_used(be, &mem_total);

  /* parameters: host master (random init), then the backend's copies */
  double t_setup = bench_now();
  model_params p;
  if (model_params_init(&p, &cfg, &err) || model_params_alloc_grad(&p, &err)) die("params", &err);
  bench_init_weights(&p, 7, 0.02f);
  if (model_params_bind(&p, be, &err)) die("bind", &err);
  double mem_params = bench_mem_used(be, &mem_total);

  model_plan_opts opts = {.max_tokens = T, .max_pred = T, .recompute = recompute};
  model_transformer *m = NULL;
  if (model_transformer_create(&m, model_params_device(&p), be, &opts, &err)) die("plan", &err);
  double mem_plan = bench_mem_used(be, &mem_total);

  /* AdamW as the trainer builds it: one group per tensor, no decay on
   * biases and norms */
  optim_group *groups = malloc(sizeof *groups * (size_t)p.n);
  size_t *offs = malloc(sizeof *offs * (size_t)p.n), *cnts = malloc(sizeof *cnts * (size_t)p.n);
  const char **names = malloc(sizeof *names * (size_t)p.n);
  if (!groups || !offs || !cnts || !names) return 1;
  for (int i = 0; i < p.n; i++) {
    offs[i] = p.info[i].offset;
    cnts[i] = p.info[i].numel;
    names[i] = p.info[i].name;
  }
  optim_groups_from_names(offs, cnts, names, p.n, groups);
  optim_adamw opt;
  if (optim_adamw_init(&opt, be, p.total, groups, p.n, 0.9f, 0.999f, 1e-8f, 0.01f, &err)) die("optimizer", &err);
  double mem_opt = bench_mem_used(be, &mem_total);
  t_setup = bench_now() - t_setup;

  /* the packed batch */
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)T), *pos = malloc(sizeof(int32_t) * (size_t)T);
  int32_t *tin = malloc(sizeof(int32_t) * (size_t)T), *tout = malloc(sizeof(int32_t) * (size_t)T);
  int32_t *row = malloc(sizeof(int32_t) * (size_t)T), *tgt = malloc(sizeof(int32_t) * (size_t)T);
  float *dlp = malloc(sizeof(float) * (size_t)T), *lp = malloc(sizeof(float) * (size_t)T);
  if (!ids || !pos || !tin || !tout || !row || !tgt || !dlp || !lp) return 1;
  grpo_rng_stream rs;
  grpo_rng_stream_init(&rs, 11, GRPO_RNG_TEST, 0, 0);
  for (int i = 0; i < T; i++) ids[i] = (int32_t)grpo_rng_stream_below(&rs, (uint32_t)cfg.vocab);
  for (int s = 0; s < batch; s++)
    for (int k = 0; k < seq; k++) {
      int i = s * seq + k;
      pos[i] = k;
      tin[i] = i;
      tout[i] = s * seq + seq - 1;
      row[i] = i;
      tgt[i] = k + 1 < seq ? ids[i + 1] : (int32_t)grpo_rng_stream_below(&rs, (uint32_t)cfg.vocab);
      dlp[i] = -1.0f / (float)T;
    }
  model_batch b = {.n_tokens = T, .ids = ids, .pos = pos, .tin = tin, .tout = tout, .n_pred = T,
                   .pred_row = row, .pred_target = tgt, .temperature = 1.0f};

  /* FLOPs */
  const double H = cfg.hidden, V = cfg.vocab, L = cfg.n_layers, qd = (double)cfg.n_heads * cfg.head_dim;
  const double N = bench_layer_matmul_params(&cfg);
  const double pairs = (double)batch * seq * (seq + 1.0) / 2.0;
  const double f_dense = 6.0 * N * T, f_cls = 6.0 * V * H * T;
  const double f_attn = 12.0 * L * qd * pairs, f_attn_full = 12.0 * L * qd * (double)seq * T;
  const double flops = f_dense + f_cls + f_attn, flops_full = f_dense + f_cls + f_attn_full;

  /* steps */
  double *t_step = calloc((size_t)steps, sizeof(double)), *t_fwd = calloc((size_t)steps, sizeof(double));
  double *mem_step = calloc((size_t)steps, sizeof(double));
  double loss_first = 0, loss_last = 0, norm_last = 0, t_warm = bench_now();
  if (!t_step || !t_fwd || !mem_step) return 1;
  for (int it = 0; it < warmup + steps; it++) {
    double t0 = bench_now();
    model_params_zero_grad(&p);
    if (model_forward(m, &b, lp, NULL, NULL, &err)) die("forward", &err); /* synchronises */
    double t1 = bench_now();
    if (model_backward(m, &b, dlp, NULL, &err)) die("backward", &err);
    double norm = optim_grad_norm(be, p.dev_grad, p.total); /* synchronises */
    optim_adamw_step(&opt, p.dev_data, p.dev_grad, lr, optim_clip_factor(norm, 1.0));
    model_params_sync_work(&p);
    if (be->sync(be, &err)) die("step", &err);
    double t2 = bench_now();
    double loss = 0;
    for (int i = 0; i < T; i++) loss -= lp[i];
    loss /= T;
    if (!isfinite(loss) || !isfinite(norm)) {
      fprintf(stderr, "bench_gpu_train: step %d: loss %g, grad norm %g (not finite)\n", it, loss, norm);
      return 1;
    }
    if (it == 0) loss_first = loss;
    loss_last = loss;
    norm_last = norm;
    double used = bench_mem_used(be, &mem_total);
    if (used > mem_peak) mem_peak = used;
    if (it == warmup - 1 || (warmup == 0 && it == 0)) t_warm = bench_now() - t_warm;
    if (it >= warmup) {
      t_step[it - warmup] = t2 - t0;
      t_fwd[it - warmup] = t1 - t0;
      mem_step[it - warmup] = used;
    }
  }
  if (be->kind == GRPO_DEVICE_CPU) mem_peak = bench_cpu_peak_rss();

  double med = bench_median(t_step, steps), fmed = bench_median(t_fwd, steps), best = t_step[0], sum = 0;
  double mem_min = mem_step[0], mem_max = mem_step[0];
  for (int i = 0; i < steps; i++) {
    sum += t_step[i];
    if (t_step[i] < best) best = t_step[i];
    if (mem_step[i] < mem_min) mem_min = mem_step[i];
    if (mem_step[i] > mem_max) mem_max = mem_step[i];
  }
  double mean = sum / steps, tok_s = T / med, peak = peak_tflops * 1e12;
  double tflops = flops / med / 1e12, mfu = flops / med / peak, mfu_full = flops_full / med / peak;
  double params_b = p.total * 4.0, ws_b = (double)model_transformer_workspace_bytes(m);
  /* the device counter is exact (cudaMalloc granularity); RSS moves with
   * the host allocator and OpenMP stacks: 4 MiB of slack there */
  int flat = mem_max - mem_min <= (be->kind == GRPO_DEVICE_CPU ? 4.0 * 1024 * 1024 : 0.0);

  printf("bench_gpu_train: %s, device %s (%s), act %s\n", tiny ? "qwen2.5-tiny" : "qwen2.5-0.5b-shaped", device,
         devname, act);
  printf("  model            H=%d L=%d nh=%d nkv=%d hd=%d I=%d V=%d tied, qkv bias; %.1f M params "
         "(%.1f M in layer matmuls)\n", cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim,
         cfg.ffn, cfg.vocab, model_config_num_params(&cfg) / 1e6, N / 1e6);
  printf("  batch            %d x %d = %d tokens packed, %d predictions, recompute %d\n", batch, seq, T, T,
         recompute);
  printf("  step             median %.2f ms (mean %.2f, best %.2f) over %d steps after %d warm-up; "
         "forward %.2f ms\n", 1e3 * med, 1e3 * mean, 1e3 * best, steps, warmup, 1e3 * fmed);
  printf("  tokens/s         %.0f\n", tok_s);
  printf("  model FLOPs/step %.3f TFLOP = 6N %.3f + classifier %.3f + causal attention %.3f\n", flops / 1e12,
         f_dense / 1e12, f_cls / 1e12, f_attn / 1e12);
  printf("  achieved         %.1f TFLOP/s -> MFU %.1f%% of %.1f TFLOP/s (full-attention count: %.1f%%)\n",
         tflops, 100 * mfu, peak_tflops, 100 * mfu_full);
  printf("  loss             %.4f at step 1 -> %.4f at step %d (ln V = %.4f); grad norm %.3g\n", loss_first,
         loss_last, warmup + steps, log(V), norm_last);
  printf("  memory (%s)  start %.2f GiB, +params/grads %.2f, +plan %.2f, +AdamW %.2f -> %.2f GiB; "
         "timed steps %.3f..%.3f GiB (%s); peak %.2f GiB of %.2f\n",
         be->kind == GRPO_DEVICE_CPU ? "RSS" : "device", mem_start / BENCH_GIB,
         (mem_params - mem_start) / BENCH_GIB, (mem_plan - mem_params) / BENCH_GIB,
         (mem_opt - mem_plan) / BENCH_GIB, mem_opt / BENCH_GIB, mem_min / BENCH_GIB, mem_max / BENCH_GIB,
         flat ? "flat" : "NOT flat", mem_peak / BENCH_GIB, mem_total / BENCH_GIB);
  printf("  analytic         f32 params %.2f GiB, grads %.2f, AdamW m+v %.2f, workspace %.2f GiB\n",
         params_b / BENCH_GIB, params_b / BENCH_GIB, 2 * params_b / BENCH_GIB, ws_b / BENCH_GIB);
  printf("  setup            %.1f s (init, bind, plan, optimizer); warm-up %.1f s\n", t_setup, t_warm);

  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) {
      fprintf(stderr, "bench_gpu_train: cannot write %s\n", json);
      return 1;
    }
    fprintf(f,
            "{\n  \"bench\": \"gpu_train\", \"impl\": \"grpo\", \"model\": \"%s\", \"device\": \"%s\",\n"
            "  \"device_name\": \"%s\", \"act\": \"%s\",\n"
            "  \"hidden\": %d, \"layers\": %d, \"heads\": %d, \"kv_heads\": %d, \"head_dim\": %d, \"ffn\": %d,"
            " \"vocab\": %d,\n"
            "  \"params\": %zu, \"layer_matmul_params\": %.0f,\n"
            "  \"batch\": %d, \"seq\": %d, \"tokens\": %d, \"recompute\": %d, \"steps\": %d, \"warmup\": %d,\n"
            "  \"step_ms_median\": %.4f, \"step_ms_mean\": %.4f, \"step_ms_best\": %.4f, \"fwd_ms_median\": %.4f,\n"
            "  \"tokens_per_s\": %.2f,\n"
            "  \"flops_per_step\": %.6e, \"flops_per_step_full_attn\": %.6e,\n"
            "  \"flop_formula\": \"6*N_layer_matmul*tokens + 6*V*H*tokens + 12*L*nh*hd*causal_pairs\",\n"
            "  \"tflops\": %.3f, \"peak_tflops\": %.1f, \"mfu\": %.5f, \"mfu_full_attn\": %.5f,\n"
            "  \"loss_first\": %.6f, \"loss_last\": %.6f,\n"
            "  \"mem_kind\": \"%s\", \"mem_start_bytes\": %.0f, \"mem_after_params_bytes\": %.0f,"
            " \"mem_after_plan_bytes\": %.0f, \"mem_after_optim_bytes\": %.0f,\n"
            "  \"mem_steps_min_bytes\": %.0f, \"mem_steps_max_bytes\": %.0f, \"mem_flat\": %s,"
            " \"mem_peak_bytes\": %.0f, \"mem_total_bytes\": %.0f, \"workspace_bytes\": %.0f\n}\n",
            tiny ? "qwen2.5-tiny" : "qwen2.5-0.5b-shaped", device, devname, act, cfg.hidden, cfg.n_layers,
            cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn, cfg.vocab, model_config_num_params(&cfg), N,
            batch, seq, T, recompute, steps, warmup, 1e3 * med, 1e3 * mean, 1e3 * best, 1e3 * fmed, tok_s, flops,
            flops_full, tflops, peak_tflops, mfu, mfu_full, loss_first, loss_last,
            be->kind == GRPO_DEVICE_CPU ? "rss" : "cudaMemGetInfo", mem_start, mem_params, mem_plan, mem_opt,
            mem_min, mem_max, flat ? "true" : "false", mem_peak, mem_total, ws_b);
    fclose(f);
  }

  optim_adamw_free(&opt);
  model_transformer_free(m);
  model_params_free(&p);
  bench_backend_free(be);
  free(groups);
  free(offs);
  free(cnts);
  free(names);
  free(ids);
  free(pos);
  free(tin);
  free(tout);
  free(row);
  free(tgt);
  free(dlp);
  free(lp);
  free(t_step);
  free(t_fwd);
  free(mem_step);
  return 0;
}
