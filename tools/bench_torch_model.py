#!/usr/bin/env python3
"""PyTorch side of bench/model_cpu: the same 'bench' model, threads and batch.

Model: Qwen2-shaped, hidden 512, 8 layers, 8 heads / 2 KV heads, FFN 1408,
vocab 32000, tied embeddings, random init, f32.
Training step: a packed batch of 4096 tokens = 8 sequences x 512 (here as a
[8, 512] causal batch, the same FLOPs as the packed stream), loss =
sum_k w_k * logprob_k over every next-token prediction, forward + backward.
The classifier is chunked like the C side (no [4096 x 32000] logits at once).
Decode: 8 slots, prompt 128, 128 new tokens each with the HF KV cache.

  python3 tools/bench_torch_model.py --threads 2 [--iters 3] [--json out.json]
"""
import argparse
import json
import resource
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def bench_config():
    return Qwen2Config(hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                       num_key_value_heads=2, intermediate_size=1408, vocab_size=32000,
                       max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=1e6,
                       tie_word_embeddings=True, use_cache=True)


def train_step(model, ids, w, chunk):
    hidden = model.model(input_ids=ids).last_hidden_state  # [B, S, H]
    h = hidden[:, :-1, :].reshape(-1, hidden.shape[-1])
    tgt = ids[:, 1:].reshape(-1)
    loss = 0.0
    for s in range(0, h.shape[0], chunk):
        logits = model.lm_head(h[s:s + chunk])
        lp = torch.log_softmax(logits, dim=-1)
        tok = lp.gather(1, tgt[s:s + chunk, None])[:, 0]
        ent = -(lp.exp() * lp).sum(-1)
        loss = loss + (w[s:s + chunk] * tok).sum() + 0.0 * ent.sum()
    loss.backward()
    return float(loss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--seqs", type=int, default=8)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = bench_config()
    cfg._attn_implementation = "sdpa"
    model = Qwen2ForCausalLM(cfg).float()
    nparam = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, cfg.vocab_size, (a.seqs, a.seqlen))
    w = torch.randn(a.seqs * (a.seqlen - 1)) / (a.seqs * a.seqlen)

    model.train()
    train_step(model, ids, w, a.chunk)  # warm-up
    model.zero_grad(set_to_none=False)
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        train_step(model, ids, w, a.chunk)
        times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=False)
    tokens = a.seqs * a.seqlen
    best = min(times)

    model.eval()
    prompt = torch.randint(0, cfg.vocab_size, (a.slots, a.prompt))
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True)
        past = out.past_key_values
        nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        t0 = time.perf_counter()
        for _ in range(a.new):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        dt = time.perf_counter() - t0
    res = {
        "threads": a.threads, "params": nparam, "tokens": tokens,
        "fwd_bwd_s": best, "fwd_bwd_tok_s": tokens / best,
        "decode_tok_s": a.slots * a.new / dt, "decode_slots": a.slots,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
    }
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
