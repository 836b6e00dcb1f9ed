#!/usr/bin/env python3
"""Writes tests/fixtures/trl_grad/<case>.safetensors: TRL's GRPO loss on the
tiny Qwen2 fixture model (tests/fixtures/models/qwen2), end to end down to the
gradient of every parameter.

TRL's GRPOTrainer._compute_loss runs unchanged on a stand-in `self` whose
per-token log-prob function is TRL's recipe (logits of the completion
positions divided by the temperature, log-softmax, gather) on the real
transformers model; loss.backward() then gives the parameter gradients the
C trainer must reproduce (tests/trainer/test_trl_grad.c).

    python3 tools/make_trl_grad_fixtures.py     # torch, transformers, trl
"""
import json
import types
from collections import defaultdict

import torch
import trl
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
from trl.trainer.grpo_trainer import GRPOTrainer

MODEL = "tests/fixtures/models/qwen2"
OUT = "tests/fixtures/trl_grad"
B, P, T = 4, 4, 6
LENS = [6, 3, 5, 2]

CASES = {
    "dapo_offpolicy_kl": dict(loss_type="dapo", beta=0.04, eps_low=0.2, eps_high=0.28, temperature=0.8,
                              off_policy=True, max_len=T),
    "grpo_onpolicy": dict(loss_type="grpo", beta=0.0, eps_low=0.2, eps_high=0.2, temperature=1.0,
                          off_policy=False, max_len=T),
}


class Acc:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def main():
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager")
    model.train()
    vocab = model.config.vocab_size
    prompt_ids = torch.randint(0, 256, (B, P))
    completion_ids = torch.randint(0, 256, (B, T))
    mask = torch.zeros(B, T)
    for i, n in enumerate(LENS):
        mask[i, :n] = 1
    advantages = torch.tensor([0.9, -0.4, 0.3, -0.8])
    noise_old = 0.2 * torch.randn(B, T)
    noise_ref = 0.15 * torch.randn(B, T)

    for name, c in CASES.items():
        model.zero_grad(set_to_none=True)

        def per_token_logps(model_, input_ids, attention_mask, logits_to_keep, **kw):
            logits = model_(input_ids=input_ids, attention_mask=attention_mask).logits
            logits = logits[:, -logits_to_keep - 1:-1, :] / c["temperature"]
            lp = torch.log_softmax(logits.float(), dim=-1)
            logps = lp.gather(-1, input_ids[:, -logits_to_keep:].unsqueeze(-1)).squeeze(-1)
            ent = -(lp.exp() * lp).sum(-1)
            return logps, ent, None

        with torch.no_grad():
            ids = torch.cat([prompt_ids, completion_ids], 1)
            am = torch.cat([torch.ones(B, P), mask], 1)
            cur, _, _ = per_token_logps(model, ids, am, T)
        old = (cur + noise_old).detach() if c["off_policy"] else None
        ref = (cur + noise_ref).detach()

        self = types.SimpleNamespace()
        self.top_entropy_quantile = 1.0
        self.off_policy_mask_threshold = None
        self.importance_sampling_level = "token"
        self.beta = c["beta"]
        self.args = types.SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1)
        self.loss_type = c["loss_type"]
        self.epsilon_low = c["eps_low"]
        self.epsilon_high = c["eps_high"]
        self.use_vllm = False
        self.vllm_importance_sampling_correction = False
        self.model = model
        self.current_gradient_accumulation_steps = 1
        self.max_completion_length = c["max_len"]
        self.accelerator = Acc()
        self._entropy_bonus_enabled = False
        self.entropy_coef = 0.0
        self.use_adaptive_entropy = False
        self._metrics = {"train": defaultdict(list)}
        self.aux_loss_enabled = False
        self._get_per_token_logps_and_entropies = lambda m, ids_, am_, k, **kw: per_token_logps(m, ids_, am_, k)
        inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones(B, P), "completion_ids": completion_ids,
                  "completion_mask": mask, "advantages": advantages, "num_items_in_batch": mask.sum()}
        if old is not None:
            inputs["old_per_token_logps"] = old
        if c["beta"] != 0.0:
            inputs["ref_per_token_logps"] = ref
        loss = GRPOTrainer._compute_loss(self, model, inputs)
        loss.backward()
        t = {"prompt_ids": prompt_ids.to(torch.int32).contiguous(),
             "completion_ids": completion_ids.to(torch.int32).contiguous(),
             "lengths": torch.tensor(LENS, dtype=torch.int32), "advantages": advantages.contiguous(),
             "old_logp": (old if old is not None else cur).contiguous(), "ref_logp": ref.contiguous(),
             "loss": torch.tensor([loss.item()])}
        for pname, p in model.named_parameters():
            if p.grad is not None:
                t["grad." + pname] = p.grad.detach().contiguous()
        meta = {k: str(v) for k, v in c.items()}
        meta["trl_version"] = trl.__version__
        save_file(t, f"{OUT}/{name}.safetensors", metadata=meta)
        print(name, loss.item())


if __name__ == "__main__":
    main()
