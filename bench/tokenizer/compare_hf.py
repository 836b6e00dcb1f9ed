#!/usr/bin/env python3
"""Stress comparison of the C tokenizer with HF on many more texts than the
committed fixtures: every string field of every ../shared/data/*/*.jsonl,
random strings over tricky Unicode ranges, and a sweep of all code points
below U+30000 in runs of 7. Prints the first mismatches and a count.

    python3 bench/tokenizer/compare_hf.py [--bin build-tok/bench/tokenizer/bench_tokenizer] [--seed 0]
"""
import argparse
import glob
import json
import os
import random
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-tok", "bench", "tokenizer", "bench_tokenizer"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from transformers import AutoTokenizer
    tdir = os.path.join(args.shared, "tokenizers", "qwen2")
    tok = AutoTokenizer.from_pretrained(tdir)
    texts = []
    for fn in sorted(glob.glob(os.path.join(args.shared, "data", "*", "*.jsonl"))):
        for line in open(fn, encoding="utf-8"):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            texts += [v for v in row.values() if isinstance(v, str)]
    n_data = len(texts)
    rng = random.Random(args.seed)
    r = lambda a, b: list(range(a, b))
    pools = [r(0x20, 0x7f), [9, 10, 11, 12, 13, 0x1c, 0x1f, 0x85, 0xa0, 0x1680, 0x180e, 0x2000, 0x2007, 0x200b,
                             0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff],
             r(0x300, 0x370), r(0x370, 0x3ff), r(0x4e00, 0x4e40), r(0x1f300, 0x1f340), r(0x660, 0x66a),
             r(0xb2, 0xbf), r(0x2150, 0x2190), r(0xac00, 0xac20), r(0x1100, 0x1120), r(0x1160, 0x1170),
             r(0x900, 0x980), r(0xe00, 0xe60), r(0x10000, 0x10040), r(0xff00, 0xff70), r(0x2460, 0x24ff),
             r(0x1d400, 0x1d440), [ord(c) for c in "'sStTlLreEvdmM"],
             [0x10ffff, 0xe000, 0xfffd, 0xf8ff, 0x1f1e6, 0x1f1eb, 0x200d, 0xfe0f, 0x1f3fd]]
    for _ in range(20000):
        texts.append("".join(chr(rng.choice(rng.choice(pools))) for _ in range(rng.randint(1, 40))))
    cps = [c for c in range(1, 0x30000) if not 0xD800 <= c < 0xE000]
    for i in range(0, len(cps), 7):
        run = "".join(chr(c) for c in cps[i:i + 7])
        texts.append(run + " " + run[::-1])
    inp = "".join(t.encode("utf-8").hex() + "\n" for t in texts)
    out = subprocess.run([args.bin, "--ids", tdir], input=inp, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    bad = bad_data = 0
    for i, t in enumerate(texts):
        want = tok(t, add_special_tokens=False)["input_ids"]
        got = [int(x) for x in out[i].split()]
        if got != want:
            bad += 1
            bad_data += i < n_data
            if bad <= 20:
                j = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]),
                         min(len(got), len(want)))
                print(f"mismatch text {i} {t[:40]!r} at id {j}: got {got[j:j + 4]} want {want[j:j + 4]}")
    print(f"texts={len(texts)} (data {n_data}) mismatches={bad} (data {bad_data})")


if __name__ == "__main__":
    main()
