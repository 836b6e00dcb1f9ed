#!/usr/bin/env python3
"""Independent check of the checkpoint layout with h5py (run by test_ckpt_h5py).

usage: check_h5py.py SAMPLE.h5 CHUNKED.h5

SAMPLE.h5 is tests/ckpt/ckpt_fixture.h's write_sample(); the expected values
below are restated from its formulas, not read from the C code. CHUNKED.h5
holds one 300x256 f32 tensor x[i] = i * 0.5 stored in Fletcher-32 chunks.
Exits non-zero with a message on the first mismatch.
"""
import sys

import h5py
import numpy as np


def fail(msg):
    print("check_h5py: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def bf16_to_f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def check_sample(path):
    f = h5py.File(path, "r")
    datasets, attrs = {}, {}

    def visit(name, obj):
        for k, v in obj.attrs.items():
            attrs[name + "@" + k] = v
        if isinstance(obj, h5py.Dataset):
            datasets[name] = obj[()]  # reads every dataset, checksums included

    f.visititems(visit)
    for k, v in f.attrs.items():
        attrs["@" + k] = v

    want = {
        "model/model.embed_tokens.weight", "model/model.layers.0.self_attn.q_proj.weight",
        "model/model.norm.weight", "model/lm_head.scale", "model/empty.bias",
        "optim/m/model.norm.weight", "optim/v/model.norm.weight",
        "state/step", "state/rng", "state/data_cursor", "state/reward_mean", "state/reward_std",
        "state/note", "meta/config_yaml", "meta/model_config_json", "meta/tokenizer_hash",
    }
    expect(set(datasets) == want, "datasets differ: %s" % sorted(set(datasets) ^ want))

    i32 = np.arange(32, dtype=np.float32)
    e = f["model/model.embed_tokens.weight"]
    expect(e.dtype == np.uint16 and e.shape == (8, 4), "embed dtype/shape %s %s" % (e.dtype, e.shape))
    expect(e.attrs["dtype"] == b"bfloat16", "embed dtype attribute %r" % e.attrs["dtype"])
    expect(np.array_equal(bf16_to_f32(e[()]).ravel(), (i32 - 16) * 0.25), "embed values")

    q = f["model/model.layers.0.self_attn.q_proj.weight"]
    expect(q.dtype == np.float32 and q.shape == (4, 4), "q_proj dtype/shape")
    expect(q.attrs["dtype"] == b"float32", "q_proj dtype attribute")
    expect(np.array_equal(q[()].ravel(), np.arange(16, dtype=np.float32) * 0.5 - 3), "q_proj values")
    expect(np.array_equal(f["model/model.norm.weight"][()], [1, 2, 3, 4]), "norm values")
    expect(f["model/lm_head.scale"].shape == () and f["model/lm_head.scale"][()] == 2.5, "scalar tensor")
    expect(f["model/empty.bias"].shape == (0,), "empty tensor shape")
    expect(np.array_equal(f["optim/m/model.norm.weight"][()], np.arange(4) * 0.125), "optim m")
    expect(np.array_equal(f["optim/v/model.norm.weight"][()], np.arange(4) * 0.0625), "optim v")
    for name in datasets:
        if name.startswith(("model/", "optim/")):
            expect(f[name].attrs["dtype"] in (b"float32", b"bfloat16"), name + " has no dtype attribute")

    st = f["state"]
    expect(st["step"].dtype == np.int64 and st["step"][()] == 7, "step")
    expect(st["rng"].dtype == np.uint64 and list(st["rng"][()]) == [42, 7, 2**64 - 1], "rng")
    expect(st["data_cursor"][()] == 123, "data_cursor")
    expect(st["reward_mean"].dtype == np.float64 and st["reward_mean"][()] == 0.375, "reward_mean")
    expect(st["reward_std"][()] == -1e-300, "reward_std")
    expect(st["note"][()] == b"hello", "note %r" % st["note"][()])

    m = f["meta"]
    expect(m.attrs["format"] == b"grpo-checkpoint", "format attribute")
    expect(m.attrs["format_version"] == 1, "format_version attribute")
    expect(m.attrs["producer"].startswith(b"grpo "), "producer attribute")
    expect(m["config_yaml"][()].decode() == "seed: 42\ntrainer:\n  beta: 0.04\n  max_steps: 100\n", "config_yaml")
    expect(m["model_config_json"][()].decode() == '{"hidden_size": 4, "vocab_size": 8}', "model_config_json")
    expect(m["tokenizer_hash"][()] == b"sha256:0123abcd", "tokenizer_hash")
    expect(set(attrs) >= {"meta@format", "meta@format_version", "meta@producer"}, "meta attributes")
    f.close()


def check_chunked(path):
    with h5py.File(path, "r") as f:
        d = f["model/big.weight"]
        expect(d.chunks is not None and d.fletcher32, "big.weight should be chunked with fletcher32")
        expect(d.shape == (300, 256) and d.dtype == np.float32, "big.weight shape/dtype")
        expect(np.array_equal(d[()].ravel(), np.arange(300 * 256, dtype=np.float32) * 0.5), "big.weight values")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail(__doc__)
    check_sample(sys.argv[1])
    check_chunked(sys.argv[2])
    print("check_h5py: ok")
