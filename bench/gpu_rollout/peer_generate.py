#!/usr/bin/env python3
"""Peer of bench/gpu_rollout: batched sampling with the same Qwen2.5-0.5B-shaped
model (random weights, bf16), the same batch, prompt length and new tokens, at
temperature 1 with no top-k / top-p and no EOS stop.

- impl hf: transformers' model.generate(do_sample=True) on Qwen2ForCausalLM
  (sdpa; --cache dynamic (default) or static). Decode time = time of
  generate(new) - time of generate(1) on the same input (the prefill and the
  first token cancel), over new - 1 tokens per sequence.
- impl plain (when transformers is not installed): bench/gpu/qwen2_torch's
  static-KV-cache loop in eager torch (SDPA, torch.multinomial), timed around
  its decode steps only. Labelled as such in the JSON ("impl").

Prompts: G random prompts of P tokens, each repeated B/G times (the C side
prefills a group's prompt once; here every row is prefilled: prefill is not
in the decode time of either side).

  python3 bench/gpu_rollout/peer_generate.py [--device cuda|cpu] [--tiny] [--layers L]
        [--batch B] [--groups G] [--prompt P] [--new N] [--impl auto|hf|plain]
        [--cache dynamic|static] [--json FILE]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
import qwen2_torch as q  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--groups", type=int, default=0)
    ap.add_argument("--prompt", type=int, default=0)
    ap.add_argument("--new", type=int, default=0)
    ap.add_argument("--impl", default="auto", choices=["auto", "hf", "plain"])
    ap.add_argument("--cache", default="dynamic", choices=["dynamic", "static"])
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    B = a.batch or (16 if a.tiny else 256)
    G = a.groups or (4 if a.tiny else 16)
    P = a.prompt or (32 if a.tiny else 768)
    N = a.new or (32 if a.tiny else 512)
    assert B % G == 0 and N >= 2
    s = q.shapes(a.tiny, a.layers)
    impl = a.impl
    if impl == "auto":
        impl = "hf" if q.have_transformers() else "plain"
    torch.manual_seed(0)
    dev = torch.device(a.device)
    dt = torch.bfloat16 if a.device == "cuda" else torch.float32
    model = (q.hf_model(s) if impl == "hf" else q.Qwen2Plain(s)).to(dev, dt).eval()
    g = torch.Generator().manual_seed(5)
    prompts = torch.randint(0, s["vocab"], (G, P), generator=g)
    ids = prompts.repeat_interleave(B // G, 0).to(dev)

    if impl == "hf":
        gc = model.generation_config
        gc.eos_token_id = None
        gc.pad_token_id = 0
        gc.bos_token_id = None
        mask = torch.ones_like(ids)

        def gen(n):
            kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=n, min_new_tokens=n)
            if a.cache == "static":
                kw["cache_implementation"] = "static"
            q.sync(a.device)
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, **kw)
            q.sync(a.device)
            return out, time.perf_counter() - t0

        gen(2)  # warm-up (cuBLAS handles, SDPA kernels, caches)
        _, t1 = gen(1)
        out, tn = gen(N)
        assert out.shape == (B, P + N), out.shape
        prefill_s, decode_s = t1, tn - t1
        desc = f"transformers {q.versions()['transformers']} generate (do_sample, {a.cache} cache, sdpa)"
    else:
        model.generate(ids[:, :16], 2)  # warm-up
        out, prefill_s, decode_s = model.generate(ids, N)
        desc = ("plain-torch static-cache decode loop (bench/gpu/qwen2_torch.py"
                + ("; transformers not installed)" if a.impl == "auto" else ")"))
    tok_s = B * (N - 1) / decode_s
    res = {
        "bench": "gpu_rollout", "impl": "torch-" + impl + ("-static" if impl == "hf" and a.cache == "static" else ""),
        "impl_desc": desc, "device": a.device, "device_name": q.device_name(a.device),
        "dtype": str(dt).replace("torch.", ""), **q.versions(),
        "model": "qwen2.5-tiny" if a.tiny else "qwen2.5-0.5b-shaped", "layers": s["layers"],
        "params": sum(p.numel() for p in model.parameters()),
        "batch": B, "groups": G, "prompt": P, "new": N, "timed_tokens_per_seq": N - 1,
        "prefill_s": prefill_s, "decode_s": decode_s, "decode_tokens_per_s": tok_s,
        "mem_peak_bytes": torch.cuda.max_memory_allocated() if a.device == "cuda" else None,
    }
    print(f"peer_generate: {desc} on {res['device_name']}: B={B}, prompt {P}, {N} new: "
          f"decode {tok_s:.0f} tokens/s ({decode_s:.2f} s), prefill+1 {prefill_s:.2f} s", file=sys.stderr)
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
