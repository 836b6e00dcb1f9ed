#!/usr/bin/env python3
"""Writes the tiny-model parity fixtures under tests/fixtures/models/.

For each of three tiny random models (Qwen2: QKV bias, tied embeddings;
Qwen3: q_norm/k_norm, head_dim != hidden/heads, untied; Llama: Llama-3 rope
scaling, untied) this builds the HF transformers model from its config with a
fixed seed, and writes

  <name>/config.json           HF config (qwen2 in the new v5 spelling, qwen3 and
                               llama rewritten to the old spelling, so the C loader
                               is tested on both)
  <name>/model.safetensors     f32 weights as save_pretrained writes them
  <name>/causal.safetensors    packed batch of 3 sequences + expected outputs/grads
  <name>/trie.safetensors      trie-packed batch (2 threads sharing a prefix)
  <name>/decode.safetensors    greedy decode: prompt, tokens, logits per step

Expected values are computed in float64 from the float32 weights (so the
reference carries no f32 rounding: the eager softmax and RMSNorm, which HF
runs in float32, are patched to run in the input dtype; RoPE's cos/sin stay
float32 as in HF), with HF's eager attention and the
packed attention given as an explicit 4D additive mask + position_ids. The
tool checks that the packed results equal running each sequence alone.
tests/fixtures/models/README.md describes every tensor.

Usage: python3 tools/make_model_fixtures.py [--out tests/fixtures/models]
Needs torch, transformers and safetensors (PyPI). Deterministic for a fixed
library version.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, LlamaConfig, Qwen2Config,
                          Qwen3Config)

VOCAB = 300
SEED = 1234


def eager_attention_full_precision(module, query, key, value, attention_mask, scaling,
                                   dropout=0.0, **kwargs):
    """HF's eager attention, except that the softmax runs in the input dtype:
    HF hard-codes float32 there, which would put f32 rounding into the
    float64 reference."""
    from transformers.models.llama.modeling_llama import repeat_kv
    k = repeat_kv(key, module.num_key_value_groups)
    v = repeat_kv(value, module.num_key_value_groups)
    w = torch.matmul(query, k.transpose(2, 3)) * scaling
    if attention_mask is not None:
        w = w + attention_mask
    w = torch.softmax(w, dim=-1)
    return torch.matmul(w, v).transpose(1, 2).contiguous(), w


def rms_norm_full_precision(self, x):
    """HF's RMSNorm without its cast to float32 (same reason)."""
    var = x.pow(2).mean(-1, keepdim=True)
    return self.weight * (x * torch.rsqrt(var + self.variance_epsilon))


def patch_full_precision():
    import transformers.models.llama.modeling_llama as ml
    import transformers.models.qwen2.modeling_qwen2 as mq2
    import transformers.models.qwen3.modeling_qwen3 as mq3
    for mod in (ml, mq2, mq3):
        mod.eager_attention_forward = eager_attention_full_precision
    ml.LlamaRMSNorm.forward = rms_norm_full_precision
    mq2.Qwen2RMSNorm.forward = rms_norm_full_precision
    mq3.Qwen3RMSNorm.forward = rms_norm_full_precision


def model_specs():
    common = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=256,
                  hidden_act="silu", bos_token_id=1, pad_token_id=0)
    return [
        ("qwen2", "new", Qwen2Config(**common, intermediate_size=128, rms_norm_eps=1e-6,
                                     rope_theta=1000000.0, tie_word_embeddings=True,
                                     eos_token_id=[2, 3])),
        ("qwen3", "old", Qwen3Config(**common, intermediate_size=128, head_dim=32,
                                     rms_norm_eps=1e-6, rope_theta=1000000.0,
                                     tie_word_embeddings=False, attention_bias=False,
                                     eos_token_id=2)),
        ("llama", "old", LlamaConfig(**common, intermediate_size=144, rms_norm_eps=1e-5,
                                     rope_theta=500000.0, tie_word_embeddings=False,
                                     rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                   "low_freq_factor": 1.0,
                                                   "high_freq_factor": 4.0,
                                                   "original_max_position_embeddings": 64},
                                     eos_token_id=2)),
    ]


def build_model(cfg, seed):
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager",
                                             dtype=torch.float32)
    # HF's init (std 0.02, norms 1, biases 0) would hide a missing norm weight
    # or bias; re-draw everything so each parameter matters.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


def config_json(cfg, spelling):
    d = cfg.to_dict()
    d["architectures"] = [type(cfg).__name__.replace("Config", "ForCausalLM")]
    for noise in ("_attn_implementation", "_attn_implementation_autoset", "_name_or_path",
                  "id2label", "label2id", "chunk_size_feed_forward", "is_encoder_decoder",
                  "output_attentions", "output_hidden_states", "problem_type", "return_dict",
                  "layer_types"):
        d.pop(noise, None)
    if spelling == "old":
        rp = d.pop("rope_parameters", None) or {}
        d["rope_theta"] = rp.get("rope_theta", 10000.0)
        rest = {k: v for k, v in rp.items() if k != "rope_theta"}
        d["rope_scaling"] = rest if rest.get("rope_type", "default") != "default" else None
        if "dtype" in d:
            d["torch_dtype"] = d.pop("dtype")
        d["torch_dtype"] = "float32"
    else:
        d["dtype"] = "float32"
    return d


def causal_batch(rng, lens):
    ids, pos, tin, tout, rows, targets = [], [], [], [], [], []
    start = 0
    for n in lens:
        seq = rng.integers(0, VOCAB, size=n)
        for k in range(n):
            ids.append(int(seq[k]))
            pos.append(k)
            tin.append(start + k)
            tout.append(start + n - 1)
            if k > 0:
                rows.append(start + k - 1)
                targets.append(int(seq[k]))
        start += n
    return dict(ids=ids, pos=pos, tin=tin, tout=tout, pred_row=rows, pred_target=targets,
                seqs=[list(range(s, s + n)) for s, n in zip(np.cumsum([0] + lens[:-1]), lens)])


def trie_batch(rng, prefix, a, b):
    """Pre-order: prefix chain, then thread A, then thread B; pos = depth."""
    T = prefix + a + b
    ids = [int(x) for x in rng.integers(0, VOCAB, size=T)]
    pos = list(range(prefix)) + list(range(prefix, prefix + a)) + list(range(prefix, prefix + b))
    tin = list(range(T))
    tout = [T - 1] * prefix + [prefix + a - 1] * a + [T - 1] * b
    parent = [i - 1 for i in range(prefix + a)] + [prefix - 1] + \
        list(range(prefix + a, T - 1))
    rows = [parent[i] for i in range(1, T)]
    targets = [ids[i] for i in range(1, T)]
    seqs = [list(range(prefix + a)), list(range(prefix)) + list(range(prefix + a, T))]
    return dict(ids=ids, pos=pos, tin=tin, tout=tout, pred_row=rows, pred_target=targets,
                seqs=seqs)


def packed_mask(tin, tout, dtype):
    tin = torch.tensor(tin)
    tout = torch.tensor(tout)
    allowed = (tin[None, :] <= tin[:, None]) & (tin[:, None] <= tout[None, :])  # [i, j]
    m = torch.zeros(len(tin), len(tin), dtype=dtype)
    m[~allowed] = torch.finfo(dtype).min
    return m[None, None]


def classifier(logits, rows, targets, temperature):
    z = logits[rows] / temperature
    logp = torch.log_softmax(z, dim=-1)
    lp = logp[torch.arange(len(rows)), torch.tensor(targets)]
    ent = -(logp.exp() * logp).sum(-1)
    return lp, ent


def run_packed(model, b, temperature=1.0, hidden=False):
    ids = torch.tensor([b["ids"]])
    pos = torch.tensor([b["pos"]])
    mask = packed_mask(b["tin"], b["tout"], torch.float64)
    out = model(input_ids=ids, position_ids=pos, attention_mask=mask, output_hidden_states=hidden)
    lp, ent = classifier(out.logits[0], b["pred_row"], b["pred_target"], temperature)
    return lp, ent, (out.hidden_states[-1][0] if hidden else None)


def run_separately(model, b):
    """Each sequence alone (plain causal); returns per-row logits for the packed stream."""
    T = len(b["ids"])
    logits = [None] * T
    for seq in b["seqs"]:
        ids = torch.tensor([[b["ids"][i] for i in seq]])
        pos = torch.tensor([[b["pos"][i] for i in seq]])
        assert pos[0].tolist() == list(range(len(seq)))
        out = model(input_ids=ids, position_ids=pos).logits[0]
        for k, i in enumerate(seq):
            if logits[i] is not None:
                assert torch.allclose(logits[i], out[k], rtol=0, atol=1e-10), "shared prefix differs"
            logits[i] = out[k]
    return torch.stack(logits)


def grads_of(model, loss):
    model.zero_grad()
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def i32(x):
    return torch.tensor(x, dtype=torch.int32)


def batch_tensors(model, b, rng, with_entropy_grad):
    n = len(b["pred_row"])
    w = torch.tensor(rng.normal(size=n), dtype=torch.float64)
    out = {
        "batch.ids": i32(b["ids"]), "batch.pos": i32(b["pos"]),
        "batch.tin": i32(b["tin"]), "batch.tout": i32(b["tout"]),
        "batch.pred_row": i32(b["pred_row"]), "batch.pred_target": i32(b["pred_target"]),
        "batch.weights": f32(w),
    }
    lp, ent, hid = run_packed(model, b, hidden=True)
    # the packed stream must reproduce each sequence run alone
    sep = run_separately(model, b)
    lp_s, ent_s = classifier(sep, b["pred_row"], b["pred_target"], 1.0)
    err = max((lp - lp_s).abs().max().item(), (ent - ent_s).abs().max().item())
    assert err < 1e-9, f"packed vs separate mismatch {err}"
    loss = (w * lp).sum()
    out["expect.logprob"] = f32(lp)
    out["expect.entropy"] = f32(ent)
    out["expect.loss"] = f32(loss.reshape(1))
    out["expect.hidden"] = f32(hid)
    g = grads_of(model, loss)
    # the same gradient from the separate runs (prefix predictions counted once)
    lp_s2, _ = classifier(run_separately(model, b), b["pred_row"], b["pred_target"], 1.0)
    g2 = grads_of(model, (w * lp_s2).sum())
    gerr = max(((g[k] - g2[k]).abs().max() / (g[k].abs().max() + 1e-30)).item() for k in g)
    if gerr >= 1e-9: print({k: ((g[k] - g2[k]).abs().max() / (g[k].abs().max() + 1e-30)).item() for k in g})
    assert gerr < 1e-9, f"packed vs separate gradient mismatch {gerr}"
    for k, v in g.items():
        out["grad." + k] = f32(v)
    # temperature variant (forward only)
    temp = 0.7
    lp_t, ent_t, _ = run_packed(model, b, temperature=temp)
    out["temp.value"] = torch.tensor([temp], dtype=torch.float32)
    out["temp.logprob"] = f32(lp_t)
    out["temp.entropy"] = f32(ent_t)
    if with_entropy_grad:
        u = torch.tensor(rng.normal(size=n), dtype=torch.float64)
        _, ent2, _ = run_packed(model, b)
        ge = grads_of(model, (u * ent2).sum())
        out["batch.ent_weights"] = f32(u)
        out["expect.ent_loss"] = f32((u * ent2).sum().reshape(1))
        for k, v in ge.items():
            out["grad_ent." + k] = f32(v)
    return out


def decode_tensors(model, rng, prompt_len=5, steps=6):
    prompt = [int(x) for x in rng.integers(0, VOCAB, size=prompt_len)]
    ids = torch.tensor([prompt])
    out = model(input_ids=ids, use_cache=True)
    past = out.past_key_values
    logits = [out.logits[0, -1]]
    toks = []
    for s in range(steps):
        t = int(torch.argmax(logits[-1]))
        toks.append(t)
        if s == steps - 1:
            break
        out = model(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits.append(out.logits[0, -1])
    # KV-cache decode must equal a full forward over prompt + tokens
    full = model(input_ids=torch.tensor([prompt + toks[:-1]])).logits[0, prompt_len - 1:]
    assert torch.allclose(full, torch.stack(logits), rtol=0, atol=1e-9)
    return {"decode.prompt": i32(prompt), "decode.tokens": i32(toks),
            "decode.logits": f32(torch.stack(logits))}


def safetensors_data(out):
    """Small files for the safetensors reader tests (tests/safetensors/data/):
    dtypes.safetensors: the same values as F32, BF16 and F16 (torch's rounding)
      plus their exact f32 widenings as want.bf16 / want.f16, and I64 ids;
    sharded_bf16/: a tiny Qwen3 saved by save_pretrained in bfloat16 with a small
      max_shard_size, i.e. shards + model.safetensors.index.json as HF writes them;
    single_f16/: the same model saved in float16 as one model.safetensors."""
    os.makedirs(out, exist_ok=True)
    vals = torch.tensor([0.0, -0.0, 1.0, -1.5, 3.140625, 65504.0, 1e-3, -7.2e-5, 1e-8,
                         300.7, -123456.789, float("inf"), float("-inf"), 2.0 ** -20],
                        dtype=torch.float32)
    bf = vals.to(torch.bfloat16)
    hf = vals.to(torch.float16)
    save_file({"x.f32": vals, "x.bf16": bf, "x.f16": hf,
               "want.bf16": bf.to(torch.float32), "want.f16": hf.to(torch.float32),
               "ids.i64": torch.tensor([[0, 7, 299], [2**31 - 1, 5, 1]], dtype=torch.int64),
               "ids.i32": torch.tensor([3, -4, 5], dtype=torch.int32),
               "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4)},
              os.path.join(out, "dtypes.safetensors"), metadata={"format": "pt"})
    cfg = Qwen3Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=16, intermediate_size=48, vocab_size=64,
                      max_position_embeddings=64, tie_word_embeddings=True, eos_token_id=2)
    model = build_model(cfg, SEED + 7)
    for sub, dtype, shard in (("sharded_bf16", torch.bfloat16, "8KB"),
                              ("single_f16", torch.float16, "5GB")):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        model.to(dtype).save_pretrained(d, safe_serialization=True, max_shard_size=shard)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"model_max_length": 64, "note": "stand-in tokenizer file for convert tests \u00e9"}, f)
        model.to(torch.float32)


# Hub config.json files of released models (as published; transformers 4.x
# spelling) for the config loader tests: parameter counts and RoPE frequencies
# come from transformers, on the meta device (no weights).
REAL_CONFIGS = {
    "qwen2.5-0.5b": {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
                     "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
                     "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
                     "max_position_embeddings": 32768, "max_window_layers": 21,
                     "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
                     "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": None,
                     "rope_theta": 1000000.0, "sliding_window": 32768,
                     "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                     "transformers_version": "4.43.1", "use_cache": True,
                     "use_sliding_window": False, "vocab_size": 151936},
    "qwen3-0.6b": {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False,
                   "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
                   "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
                   "initializer_range": 0.02, "intermediate_size": 3072,
                   "max_position_embeddings": 40960, "max_window_layers": 28,
                   "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28,
                   "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": None,
                   "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
                   "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
                   "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
    "llama-3.2-1b": {"architectures": ["LlamaForCausalLM"], "attention_bias": False,
                     "attention_dropout": 0.0, "bos_token_id": 128000,
                     "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
                     "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
                     "intermediate_size": 8192, "max_position_embeddings": 131072,
                     "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32,
                     "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
                     "rms_norm_eps": 1e-05,
                     "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                                      "low_freq_factor": 1.0,
                                      "original_max_position_embeddings": 8192,
                                      "rope_type": "llama3"},
                     "rope_theta": 500000.0, "tie_word_embeddings": True,
                     "torch_dtype": "bfloat16", "transformers_version": "4.45.0.dev0",
                     "use_cache": True, "vocab_size": 128256},
}


def real_configs(out):
    from transformers import AutoConfig
    d = os.path.join(out, "configs")
    os.makedirs(d, exist_ok=True)
    expect = {}
    for name, cfg in REAL_CONFIGS.items():
        path = os.path.join(d, name + ".json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        c = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            m = AutoModelForCausalLM.from_config(c)
        expect[name + ".num_params"] = torch.tensor([sum(p.numel() for p in m.parameters())],
                                                    dtype=torch.int64)
        # the rotary buffer is on meta too: build the module again on the CPU
        with torch.device("cpu"):
            inv = type(m.model.rotary_emb)(config=c).inv_freq
        expect[name + ".inv_freq"] = inv.to(torch.float32).contiguous()
    save_file(expect, os.path.join(d, "expect.safetensors"), metadata={"format": "pt"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                   "fixtures", "models"))
    ap.add_argument("--st-data", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "safetensors", "data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    patch_full_precision()
    safetensors_data(args.st_data)
    real_configs(args.st_data)
    for idx, (name, spelling, cfg) in enumerate(model_specs()):
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        model = build_model(cfg, SEED + 100 * idx)
        # weights (f32) exactly as save_pretrained writes them
        model.save_pretrained(d, safe_serialization=True)
        for extra in ("generation_config.json",):
            p = os.path.join(d, extra)
            if os.path.exists(p):
                os.remove(p)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config_json(cfg, spelling), f, indent=2, sort_keys=True)
            f.write("\n")
        # the rewritten config must load into the same model
        re = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager",
                                                  dtype=torch.float32)
        for (k1, v1), (k2, v2) in zip(model.state_dict().items(), re.state_dict().items()):
            assert k1 == k2 and torch.equal(v1, v2), k1
        inv_a = model.model.rotary_emb.inv_freq
        inv_b = re.model.rotary_emb.inv_freq
        assert torch.equal(inv_a, inv_b), "rope differs after config round trip"

        m64 = copy.deepcopy(model).to(torch.float64)
        rng = np.random.default_rng(SEED + idx)
        rope = {"expect.inv_freq": f32(inv_a)}
        causal = batch_tensors(m64, causal_batch(rng, [7, 4, 9]), rng, name == "qwen2")
        causal.update(rope)
        trie = batch_tensors(m64, trie_batch(rng, 5, 4, 6), rng, False)
        trie.update(rope)
        save_file(causal, os.path.join(d, "causal.safetensors"), metadata={"format": "pt"})
        save_file(trie, os.path.join(d, "trie.safetensors"), metadata={"format": "pt"})
        save_file(decode_tensors(m64, rng), os.path.join(d, "decode.safetensors"),
                  metadata={"format": "pt"})
        print(f"{name}: {sum(p.numel() for p in model.parameters())} params, "
              f"causal n_pred={len(causal['batch.pred_row'])} loss={causal['expect.loss'].item():.6f}, "
              f"trie n_pred={len(trie['batch.pred_row'])} loss={trie['expect.loss'].item():.6f}")
    for root, _, files in list(os.walk(args.out)) + list(os.walk(args.st_data)):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    total = 0
    for root, _, files in os.walk(args.out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"total {total / 1e6:.2f} MB")
    if total > 5_000_000:
        sys.exit("fixtures exceed 5 MB")


if __name__ == "__main__":
    main()
