#!/usr/bin/env python3
"""PyTorch peer of bench/gpu_train: the same Qwen2.5-0.5B-shaped model (random
weights), the same tokens per step (B x S), one training step = forward +
backward + grad-norm clip + AdamW, mixed precision as usual in PyTorch: f32
master weights, autocast bf16, fused AdamW, SDPA attention.

Model: transformers' Qwen2ForCausalLM (attn_implementation sdpa, loss from
labels) when transformers imports, else bench/gpu/qwen2_torch.Qwen2Plain (the
same shapes in plain torch) -- the JSON's "impl" says which. The batch is
[B, S] with a causal mask: the same FLOPs as the C side's packed stream of B
segments. Model FLOPs and MFU use gpu_train.c's formula (qwen2_torch.train_flops).

  python3 bench/gpu_train/peer_torch.py [--device cuda|cpu] [--tiny] [--layers L] [--seq S]
        [--batch B] [--steps N] [--warmup N] [--impl auto|hf|plain] [--act bf16|f32]
        [--compile] [--peak-tflops X] [--json FILE]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
import qwen2_torch as q  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--seq", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--impl", default="auto", choices=["auto", "hf", "plain"])
    ap.add_argument("--act", default=None, choices=["bf16", "f32"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--peak-tflops", type=float, default=989.4)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    act = a.act or ("bf16" if a.device == "cuda" else "f32")
    seq = a.seq or (128 if a.tiny else 1024)
    batch = a.batch or (2 if a.tiny else 8)
    s = q.shapes(a.tiny, a.layers)
    impl = a.impl
    if impl == "auto":
        impl = "hf" if q.have_transformers() else "plain"
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = (q.hf_model(s) if impl == "hf" else q.Qwen2Plain(s)).to(dev)  # f32 master weights
    if impl == "hf":
        model.config.use_cache = False
    model.train()
    step_model = torch.compile(model) if a.compile else model
    fused = a.device == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                            fused=fused)
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(0, s["vocab"], (batch, seq), generator=g).to(dev)
    tgt = torch.cat([ids[:, 1:], torch.randint(0, s["vocab"], (batch, 1), generator=g).to(dev)], 1)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=a.device, dtype=torch.bfloat16, enabled=act == "bf16"):
            if impl == "hf":
                loss = step_model(input_ids=ids, labels=ids).loss
            else:
                z = step_model(ids)
                loss = F.cross_entropy(z.float().view(-1, s["vocab"]), tgt.view(-1))
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss, norm

    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for it in range(a.warmup + a.steps):
        q.sync(a.device)
        t0 = time.perf_counter()
        loss, norm = step()
        q.sync(a.device)
        t1 = time.perf_counter()
        losses.append(float(loss.detach()))
        if it >= a.warmup:
            times.append(t1 - t0)
    med = statistics.median(times)
    T = batch * seq
    flops, flops_full = q.train_flops(s, batch, seq)
    peak = a.peak_tflops * 1e12
    out = {
        "bench": "gpu_train", "impl": "torch-" + impl + ("-compile" if a.compile else ""),
        "impl_desc": ("transformers Qwen2ForCausalLM (sdpa)" if impl == "hf" else
                      "plain-torch Qwen2 (bench/gpu/qwen2_torch.py; transformers not installed)"
                      if a.impl == "auto" else "plain-torch Qwen2 (bench/gpu/qwen2_torch.py)")
                     + (", torch.compile" if a.compile else "") + f", autocast {act}, fused AdamW" * fused,
        "device": a.device, "device_name": q.device_name(a.device), "act": act, **q.versions(),
        "model": "qwen2.5-tiny" if a.tiny else "qwen2.5-0.5b-shaped", "layers": s["layers"],
        "params": sum(p.numel() for p in model.parameters()),
        "batch": batch, "seq": seq, "tokens": T, "steps": a.steps, "warmup": a.warmup,
        "step_ms_median": 1e3 * med, "step_ms_mean": 1e3 * statistics.mean(times), "step_ms_best": 1e3 * min(times),
        "tokens_per_s": T / med, "flops_per_step": flops, "tflops": flops / med / 1e12,
        "peak_tflops": a.peak_tflops, "mfu": flops / med / peak, "mfu_full_attn": flops_full / med / peak,
        "loss_first": losses[0], "loss_last": losses[-1],
        "mem_peak_bytes": torch.cuda.max_memory_allocated() if a.device == "cuda" else None,
    }
    print(f"peer_torch: {out['impl_desc']} on {out['device_name']}: {batch} x {seq} tokens, "
          f"step median {out['step_ms_median']:.2f} ms -> {out['tokens_per_s']:.0f} tokens/s, "
          f"{out['tflops']:.1f} TFLOP/s = MFU {100 * out['mfu']:.1f}% "
          f"(loss {losses[0]:.4f} -> {losses[-1]:.4f})", file=sys.stderr)
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
