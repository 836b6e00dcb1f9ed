#!/usr/bin/env python3
"""Writes tests/trainer/grpo_fixture.json: TRL's own GRPO loss code run on
fixed per-token log-probs, for every loss_type and a spread of options.

TRL's GRPOTrainer._compute_loss is called unchanged on a stand-in `self`
whose policy forward returns fixed leaf tensors, so the loss, its gradient
with respect to each token's log-prob and entropy, and the clip metrics are
TRL's. Advantages and the rollout importance weights follow TRL's code in
_generate_and_score_completions (reproduced below line for line, with TRL's
own nanstd).

    python3 tools/make_grpo_fixtures.py   # needs torch and trl from PyPI
"""
import json
import math
import types
from collections import defaultdict

import torch
import trl
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd

torch.manual_seed(11)
B, T, G = 6, 7, 3
MAX_LEN = 10
lengths = [7, 3, 5, 1, 6, 4]
mask = torch.zeros(B, T)
for i, n in enumerate(lengths):
    mask[i, :n] = 1.0
logp = -torch.rand(B, T) * 3.0 - 0.05
old = logp + 0.4 * torch.randn(B, T)
ref = logp + 0.2 * torch.randn(B, T)
sampler = old + 0.1 * torch.randn(B, T)
entropy = torch.rand(B, T) * 2.0
rewards_per_func = torch.tensor([[1.0, 0.2], [0.0, 0.1], [1.0, float("nan")],
                                 [0.0, 0.5], [1.0, 0.0], [float("nan"), float("nan")]])
weights = torch.tensor([1.0, 0.5])


def advantages(scale, aggregation):
    """TRL grpo_trainer.py, the advantage block of _generate_and_score_completions."""
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    if aggregation == "sum_then_normalize":
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        rewards[unscorable] = torch.nan
        mean_g = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0)
        if scale in ["group", "none"]:
            std_r = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0)
        else:
            std_r = nanstd(rewards).expand_as(rewards)
        adv = rewards - mean_g
        if scale != "none":
            adv = adv / (std_r + 1e-4)
    else:
        grouped = rewards_per_func.view(-1, G, rewards_per_func.shape[1])
        mean_k = torch.nanmean(grouped, dim=1, keepdim=True)
        std_k = nanstd(grouped, dim=1, keepdim=True)
        reward_k = ((grouped - mean_k) / (std_k + 1e-4)).view(-1, rewards_per_func.shape[1])
        rewards = (reward_k * weights.unsqueeze(0)).nansum(dim=1)
        rewards[unscorable] = torch.nan
        std_r = nanstd(rewards).expand_as(rewards)
        adv = (rewards - torch.nanmean(rewards)) / (std_r + 1e-4)
    adv = torch.nan_to_num(adv, nan=0.0)  # unscorable samples get advantage 0
    return rewards, adv


def is_weights(mode, lo, hi):
    """TRL grpo_trainer.py, the vLLM importance-sampling block."""
    diff = torch.nan_to_num((old - sampler) * mask, nan=0.0)
    d = diff.sum(dim=-1, keepdim=True) if mode.startswith("sequence") else diff
    r = torch.exp(d)
    if mode.endswith("truncate"):
        r = torch.clamp(r, min=lo, max=hi)
    else:
        r = r.masked_fill((r < lo) | (r > hi), 0.0)
    return r.expand(B, T).contiguous()


class Acc:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def run_trl(case, adv, isw):
    lp = logp.clone().requires_grad_(True)
    ent = entropy.clone().requires_grad_(True)
    self = types.SimpleNamespace()
    self.top_entropy_quantile = 1.0
    self.off_policy_mask_threshold = None
    self.importance_sampling_level = case["is_level"]
    self.beta = case["beta"]
    self.args = types.SimpleNamespace(use_bias_correction_kl=case["kl_bias"], delta=case["delta"],
                                      steps_per_generation=1)
    self.loss_type = case["loss_type"]
    self.epsilon_low = case["eps_low"]
    self.epsilon_high = case["eps_high"]
    self.use_vllm = isw is not None
    self.vllm_importance_sampling_correction = isw is not None
    self.model = types.SimpleNamespace(training=True)
    self.current_gradient_accumulation_steps = 1
    self.max_completion_length = MAX_LEN
    self.accelerator = Acc()
    self._entropy_bonus_enabled = case["entropy_coef"] != 0.0
    self.entropy_coef = case["entropy_coef"]
    self.use_adaptive_entropy = False
    self._metrics = {"train": defaultdict(list)}
    self.aux_loss_enabled = False
    self._get_per_token_logps_and_entropies = lambda *a, **k: (lp, ent, None)
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1),
        "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
        "advantages": adv, "num_items_in_batch": mask.sum(),
    }
    if case["off_policy"]:
        inputs["old_per_token_logps"] = old
    if case["beta"] != 0.0:
        inputs["ref_per_token_logps"] = ref
    if isw is not None:
        inputs["importance_sampling_ratio"] = isw
    loss = GRPOTrainer._compute_loss(self, None, inputs)
    loss.backward()
    m = self._metrics["train"]
    return {
        "loss": loss.item(),
        "dlogp": (lp.grad * mask).flatten().tolist(),
        "dentropy": ((ent.grad if ent.grad is not None else torch.zeros(B, T)) * mask).flatten().tolist(),
        "clip_low": m["clip_ratio/low_mean"][0], "clip_high": m["clip_ratio/high_mean"][0],
        "clip_region": m["clip_ratio/region_mean"][0], "entropy": m["entropy"][0],
        "kl": m["kl"][0] if case["beta"] != 0.0 else 0.0,
    }


cases = []
for lt in ["grpo", "bnpo", "dr_grpo", "dapo"]:
    for variant in range(4):
        c = dict(loss_type=lt, is_level="token", beta=0.0, kl_bias=False, delta=None,
                 eps_low=0.2, eps_high=0.2, off_policy=False, entropy_coef=0.0,
                 scale="group", aggregation="sum_then_normalize", is_mode=None)
        if variant == 1:
            c.update(off_policy=True, eps_high=0.28, beta=0.04, scale="batch", is_mode="token_truncate")
        elif variant == 2:
            c.update(off_policy=True, is_level="sequence" if lt == "grpo" else "token", beta=0.1,
                     kl_bias=True, delta=1.5, scale="none", is_mode="sequence_mask")
        elif variant == 3:
            c.update(off_policy=True, entropy_coef=0.01, aggregation="normalize_then_sum",
                     is_mode="token_mask" if lt != "dapo" else "sequence_truncate")
        cases.append(c)

out = {"trl_version": trl.__version__, "B": B, "T": T, "G": G, "max_completion_length": MAX_LEN,
       "lengths": lengths, "mask": mask.flatten().tolist(), "logp": logp.flatten().tolist(),
       "old_logp": old.flatten().tolist(), "ref_logp": ref.flatten().tolist(),
       "sampler_logp": sampler.flatten().tolist(), "entropy": entropy.flatten().tolist(),
       "rewards": [[None if math.isnan(v) else v for v in row] for row in rewards_per_func.tolist()],
       "weights": weights.tolist(), "cases": []}
for c in cases:
    rewards, adv = advantages(c["scale"], c["aggregation"])
    isw = is_weights(c["is_mode"], 0.5, 1.5) if c["is_mode"] else None
    res = run_trl(c, adv, isw)
    res.update(c)
    res["advantages"] = adv.tolist()
    res["total_rewards"] = [None if math.isnan(v) else v for v in rewards.tolist()]
    res["is_weight"] = isw.flatten().tolist() if isw is not None else None
    out["cases"].append(res)
with open("tests/trainer/grpo_fixture.json", "w") as f:
    json.dump(out, f, indent=0)
print(f"wrote {len(out['cases'])} cases (trl {trl.__version__})")
