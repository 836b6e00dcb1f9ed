#!/usr/bin/env python3
"""Single-thread encode throughput: HF tokenizers (Rust) vs grpo's C tokenizer,
same texts, same run.

    python3 bench/tokenizer/bench_tokenizer.py [--bin build-tok/bench/tokenizer/bench_tokenizer]
        [--tokenizer ../shared/tokenizers/qwen2] [--reps 5]

Texts: every question/answer of GSM8K test and problem/solution of MATH-500.
HF runs with RAYON_NUM_THREADS=1 (set before import) and is timed two ways:
encode() per text from Python (per-call overhead included) and encode_batch
(one call, one thread). Both keep their pre-token caches warm across passes,
as does the C side; the first pass is reported too. Checks the ids agree.
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def texts(shared):
    out = []
    for rel, fields in (("data/gsm8k/test.jsonl", ("question", "answer")),
                        ("data/math500/test.jsonl", ("problem", "solution"))):
        with open(os.path.join(shared, rel), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                out += [row[k] for k in fields]
    return out


def timed(fn, reps):
    secs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - t)
    return secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-tok", "bench", "tokenizer", "bench_tokenizer"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    tdir = args.tokenizer or os.path.join(args.shared, "tokenizers", "qwen2")

    import tokenizers
    from transformers import AutoTokenizer
    tx = texts(args.shared)
    nbytes = sum(len(t.encode()) for t in tx)
    t0 = time.perf_counter()
    hf = AutoTokenizer.from_pretrained(tdir).backend_tokenizer  # tokenizers.Tokenizer (Rust)
    load = time.perf_counter() - t0
    hf_ids = 0

    def one():
        nonlocal hf_ids
        hf_ids = sum(len(hf.encode(t, add_special_tokens=False).ids) for t in tx)

    def batch():
        hf.encode_batch(tx, add_special_tokens=False)

    rows = []
    s = timed(one, args.reps)
    rows.append(("HF tokenizers %s encode() loop" % tokenizers.__version__, s, load))
    s = timed(batch, args.reps)
    rows.append(("HF tokenizers %s encode_batch, 1 thread" % tokenizers.__version__, s, load))

    c = subprocess.run([args.bin, tdir, str(args.reps),
                        os.path.join(args.shared, "data/gsm8k/test.jsonl") + ":question,answer",
                        os.path.join(args.shared, "data/math500/test.jsonl") + ":problem,solution"],
                       check=True, capture_output=True, text=True).stdout
    kv = dict(p.split("=") for p in c.split()[1:])
    if int(kv["ids"]) != hf_ids or int(kv["bytes"]) != nbytes:
        sys.exit(f"mismatch: C ids={kv['ids']} bytes={kv['bytes']}, HF ids={hf_ids} bytes={nbytes}")
    print(f"texts={len(tx)} bytes={nbytes} ids={hf_ids} reps={args.reps}")
    print(f"{'implementation':45s} {'load s':>7s} {'first s':>8s} {'best s':>8s} {'MB/s':>7s}")
    for name, secs, ld in rows:
        print(f"{name:45s} {ld:7.3f} {secs[0]:8.4f} {min(secs):8.4f} {nbytes / min(secs) / 1e6:7.1f}")
    print(f"{'grpo C model_tokenizer_encode loop':45s} {float(kv['load_s']):7.3f} {float(kv['first_s']):8.4f} "
          f"{float(kv['best_s']):8.4f} {float(kv['MB_s']):7.1f}")


if __name__ == "__main__":
    main()
