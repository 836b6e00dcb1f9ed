#!/usr/bin/env python3
"""Markdown for bench/RESULTS.md from the JSONs bench/gpu/run.sh writes.

  python3 bench/gpu/report.py DIR [--merged FILE]
      DIR holds device.json, gpu_train.json, peer_torch.json, gpu_rollout.json,
      peer_generate.json (any may be missing); prints the markdown; --merged also
      writes them all as one JSON object keyed by name.
"""
import json
import os
import sys


NAMES = ["device", "gpu_train", "peer_torch", "gpu_rollout", "peer_generate"]


def load(d, name):
    try:
        with open(os.path.join(d, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def gib(b):
    return f"{b / 2**30:.2f} GiB" if b else "n/a"


def main():
    args = sys.argv[1:]
    merged = None
    if "--merged" in args:
        i = args.index("--merged")
        merged = args[i + 1]
        del args[i:i + 2]
    d = args[0] if args else "."
    if merged:
        with open(merged, "w") as f:
            json.dump({k: load(d, k) for k in NAMES}, f, indent=1)
            f.write("\n")
    dev = load(d, "device") or {}
    tr, pt = load(d, "gpu_train"), load(d, "peer_torch")
    ro, pg = load(d, "gpu_rollout"), load(d, "peer_generate")
    name = dev.get("device_name", "unknown device")
    when = dev.get("date_utc", "?")
    commit = dev.get("commit", "unknown")
    out = [f"## GPU: {when} UTC, {name}, commit {commit}", ""]
    out.append(f"Peak used: {dev.get('peak_tflops', '?')} TFLOP/s dense bf16, HBM {dev.get('bw_tbs', '?')} TB/s. "
               "Commands: `bash bench/gpu/run.sh build train rollout report` "
               "(bench/gpu_train/README.md, bench/gpu_rollout/README.md).")
    out.append("")
    out += ["| what | result | target | where |", "|---|---|---|---|"]
    if tr:
        r = (f"{tr['tokens_per_s']:,.0f} tokens/s, {tr['step_ms_median']:.1f} ms/step, "
             f"{tr['tflops']:.1f} TFLOP/s = **MFU {100 * tr['mfu']:.1f}%** (causal attention FLOPs; "
             f"{100 * tr['mfu_full_attn']:.1f}% counting full S x S attention); act {tr['act']}")
        if pt:
            r += (f"; PyTorch ({pt['impl_desc']}) {pt['tokens_per_s']:,.0f} tokens/s, MFU {100 * pt['mfu']:.1f}%: "
                  f"**{tr['tokens_per_s'] / pt['tokens_per_s']:.2f}x**")
        else:
            r += "; PyTorch peer: no result"
        r += (f"; device memory {gib(tr['mem_steps_max_bytes'])} during the timed steps "
              f"({'flat' if tr['mem_flat'] else 'NOT flat'})")
        out.append(f"| training step, Qwen2.5-0.5B-shaped, {tr['batch']} x {tr['seq']} tokens "
                   f"({when}, {name}) | {r} | >= 40% MFU | `gpu_train/README.md` |")
    else:
        out.append(f"| training step, Qwen2.5-0.5B-shaped ({when}, {name}) | no result (see gpu_train.err) "
                   "| >= 40% MFU | `gpu_train/README.md` |")
    if ro:
        r = (f"{ro['decode_tokens_per_s']:,.0f} tokens/s = **{100 * ro['roofline_frac']:.1f}% of the HBM roofline** "
             f"({ro['roofline_tokens_per_s']:,.0f} at {ro['bw_tbs']} TB/s, mean ctx {ro['mean_ctx']:.0f}); "
             f"act {ro['act']}, sampler {ro['sampler']}")
        if pg:
            r += (f"; {pg['impl_desc']} {pg['decode_tokens_per_s']:,.0f} tokens/s: "
                  f"**{ro['decode_tokens_per_s'] / pg['decode_tokens_per_s']:.2f}x**")
        else:
            r += "; generate peer: no result"
        out.append(f"| decode, batch {ro['batch']}, prompt {ro['prompt']} + {ro['new']} new ({when}, {name}) "
                   f"| {r} | >= 50% of the roofline | `gpu_rollout/README.md` |")
    else:
        out.append(f"| decode, batch 256 ({when}, {name}) | no result (see gpu_rollout.err) "
                   "| >= 50% of the roofline | `gpu_rollout/README.md` |")
    out.append("")

    if tr or pt:
        out += ["### Training step (forward + backward + clip + AdamW)", "",
                "| | grpo (C/CUDA) | PyTorch peer |", "|---|---|---|"]

        def row(label, f, g=None):
            a = f(tr) if tr else "—"
            b = (g or f)(pt) if pt else "—"
            out.append(f"| {label} | {a} | {b} |")
        row("implementation", lambda x: f"bench_gpu_train, act {x['act']}", lambda x: x["impl_desc"])
        row("batch", lambda x: f"{x['batch']} x {x['seq']} = {x['tokens']} tokens")
        row("step (median / best)", lambda x: f"{x['step_ms_median']:.2f} / {x['step_ms_best']:.2f} ms")
        row("tokens/s", lambda x: f"{x['tokens_per_s']:,.0f}")
        row("model TFLOP/step", lambda x: f"{x['flops_per_step'] / 1e12:.3f}")
        row("achieved TFLOP/s", lambda x: f"{x['tflops']:.1f}")
        row("MFU (causal / full attention)", lambda x: f"{100 * x['mfu']:.1f}% / {100 * x['mfu_full_attn']:.1f}%")
        row("loss first -> last step", lambda x: f"{x['loss_first']:.4f} -> {x['loss_last']:.4f}")
        row("memory", lambda x: (f"device used {gib(x['mem_steps_min_bytes'])}..{gib(x['mem_steps_max_bytes'])} "
                                 f"in the timed steps ({'flat' if x['mem_flat'] else 'NOT flat'}); "
                                 f"workspace {gib(x['workspace_bytes'])}"),
            lambda x: f"torch max allocated {gib(x['mem_peak_bytes'])}")
        if tr and pt:
            out.append(f"| **ratio grpo / peer** | **{tr['tokens_per_s'] / pt['tokens_per_s']:.2f}x** tokens/s | |")
        out.append("")
    if ro or pg:
        out += ["### Decode (sampling at T = 1, no EOS stop)", "",
                "| | grpo (C/CUDA) | peer |", "|---|---|---|"]

        def row2(label, f, g=None):
            a = f(ro) if ro else "—"
            b = (g or f)(pg) if pg else "—"
            out.append(f"| {label} | {a} | {b} |")
        row2("implementation", lambda x: f"bench_gpu_rollout, act {x['act']}, sampler {x['sampler']}",
             lambda x: x["impl_desc"])
        row2("batch / prompts / prompt len / new", lambda x: f"{x['batch']} / {x['groups']} / {x['prompt']} / {x['new']}")
        row2("decode tokens/s", lambda x: f"{x['decode_tokens_per_s']:,.0f}")
        row2("decode time", lambda x: f"{x['decode_s']:.3f} s",
             lambda x: f"{x['decode_s']:.3f} s ({x['timed_tokens_per_seq']} tokens/seq)")
        if ro:
            out.append(f"| HBM roofline | {ro['roofline_tokens_per_s']:,.0f} tokens/s (W {ro['weight_bytes_bf16'] / 1e9:.3f} GB, "
                       f"{ro['kv_bytes_per_token_bf16']:.0f} B KV/token, mean ctx {ro['mean_ctx']:.0f}, "
                       f"{ro['bw_tbs']} TB/s) | |")
            out.append(f"| % of roofline | **{100 * ro['roofline_frac']:.1f}%** | "
                       + (f"{100 * pg['decode_tokens_per_s'] / ro['roofline_tokens_per_s']:.1f}%" if pg else "—") + " |")
            out.append(f"| KV cache | {gib(ro['kv_cache_bytes'])} | |")
        if ro and pg:
            out.append(f"| **ratio grpo / peer** | **{ro['decode_tokens_per_s'] / pg['decode_tokens_per_s']:.2f}x** | |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
