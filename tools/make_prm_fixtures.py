#!/usr/bin/env python3
"""Writes the process-reward-model parity fixture under tests/fixtures/prm/.

A tiny random model with the layout of Qwen2.5-Math-PRM
(`Qwen2ForProcessRewardModel`, remote code on the HF hub): the Qwen2 backbone
(`model.*`, no lm_head) and the head `score` =
Sequential(Linear(H, H), ReLU, Linear(H, 2)). A step's score is
softmax(head logits at the step separator token)[1], which is what the model
card's `make_step_rewards` reads.

  config.json         HF config (architectures ["Qwen2ForProcessRewardModel"],
                      num_labels 2; old rope_theta spelling)
  model.safetensors   f32 weights named as the hub checkpoint names them
  expect.json         {"sep_id", "cases": [{"ids", "scores", "logits"}]}: sequences with
                      several separators (one at the end, one back to back, one
                      with none), the step scores and the head logits at each
                      separator ([n_steps * 2], row-major), computed in float64

Usage: python3 tools/make_prm_fixtures.py [--out tests/fixtures/prm]
Needs torch, transformers and safetensors (PyPI). Deterministic for a fixed
library version.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import Qwen2Config, Qwen2Model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import patch_full_precision  # noqa: E402

VOCAB = 160
SEP = 151  # stands in for <extra_0> (151651 in the Qwen2.5 vocabulary)
SEED = 4321


class TinyPRM(torch.nn.Module):
    """Module tree of Qwen2ForProcessRewardModel, so state_dict names match the hub."""

    def __init__(self, cfg):
        super().__init__()
        self.model = Qwen2Model(cfg)
        h = cfg.hidden_size
        self.score = torch.nn.Sequential(torch.nn.Linear(h, h), torch.nn.ReLU(),
                                         torch.nn.Linear(h, 2))

    def forward(self, ids):
        hidden = self.model(input_ids=ids).last_hidden_state
        return self.score(hidden)


def build(cfg):
    torch.manual_seed(SEED)
    cfg._attn_implementation = "eager"
    m = TinyPRM(cfg)
    # HF init would hide a missing norm weight or bias; re-draw every tensor.
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.startswith("score."):
                # so the step scores spread over (0.05, 0.95) rather than ~0.5 or 0/1
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    m.eval()
    return m


def cases(rng):
    def steps(lens, trailing_sep=True):
        ids = []
        for k, n in enumerate(lens):
            ids += [int(x) for x in rng.integers(0, SEP, size=n)]
            if trailing_sep or k + 1 < len(lens):
                ids.append(SEP)
        return ids

    return [
        steps([7, 5, 9, 3]),               # four steps, separator last
        steps([4, 1, 6], trailing_sep=False) + [SEP, SEP],  # back-to-back separators
        [SEP] + steps([10, 8]),            # a separator first
        steps([12], trailing_sep=False),   # no separator: no scores
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "prm"))
    ap.add_argument("--vocab", type=int, default=VOCAB,
                    help="vocabulary size (320 covers grpo's byte-level tokenizer: tests/fixtures/prm_byte)")
    ap.add_argument("--max-positions", type=int, default=128)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    patch_full_precision()
    cfg = Qwen2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, vocab_size=args.vocab,
                      max_position_embeddings=args.max_positions, rms_norm_eps=1e-6, rope_theta=10000.0,
                      tie_word_embeddings=False, hidden_act="silu", bos_token_id=1,
                      eos_token_id=2, pad_token_id=0)
    m = build(cfg)
    sd = {k: v.detach().to(torch.float32).contiguous() for k, v in m.state_dict().items()}
    assert not any(k.startswith("lm_head") for k in sd)
    save_file(sd, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})

    d = cfg.to_dict()
    for noise in ("_attn_implementation", "_attn_implementation_autoset", "_name_or_path",
                  "id2label", "label2id", "chunk_size_feed_forward", "is_encoder_decoder",
                  "output_attentions", "output_hidden_states", "problem_type", "return_dict",
                  "layer_types", "dtype", "rope_parameters"):
        d.pop(noise, None)
    d["architectures"] = ["Qwen2ForProcessRewardModel"]
    d["num_labels"] = 2
    d["rope_theta"] = 10000.0
    d["rope_scaling"] = None
    d["torch_dtype"] = "float32"
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)
        f.write("\n")

    m64 = m.to(torch.float64)
    rng = np.random.default_rng(SEED)
    out = {"sep_id": SEP, "cases": []}
    with torch.no_grad():
        for ids in cases(rng):
            logits = m64(torch.tensor([ids]))[0]
            prob = torch.softmax(logits, dim=-1)[:, 1]
            mask = torch.tensor(ids) == SEP
            out["cases"].append({"ids": ids, "scores": prob[mask].tolist(),
                                 "logits": logits[mask].reshape(-1).tolist()})
    # the scores must actually vary, or the test could not catch a wrong head
    allv = [s for c in out["cases"] for s in c["scores"]]
    assert max(allv) - min(allv) > 0.2, allv
    with open(os.path.join(args.out, "expect.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(allv)} step scores in [{min(allv):.3f}, {max(allv):.3f}]")


if __name__ == "__main__":
    main()
