#!/usr/bin/env python3
"""Writes tests/fixtures/trl_grad/<case>.safetensors: TRL's GRPO step on the
tiny Qwen2 fixture model (tests/fixtures/models/qwen2), from rewards down to
the gradient of every parameter.

Two TRL methods run unchanged on a stand-in `self`:
- GRPOTrainer._generate_and_score_completions, with generation and reward
  calls replaced by fixed completions and rewards, gives the advantages
  (scale_rewards group | batch | none), the loss mask (with
  mask_truncated_completions, a completion whose last token is neither EOS nor
  pad is masked out) and num_items_in_batch;
- GRPOTrainer._compute_loss on its output, with the per-token log-prob
  function TRL's recipe (logits of the completion positions divided by the
  temperature, log-softmax, gather) on the real transformers model.
Off-policy cases then swap in old log-probs (the current ones plus noise),
and KL cases reference log-probs, as a later iteration or a reference model
would. loss.backward() gives the parameter gradients the C trainer must
reproduce (tests/trainer/test_trl_grad.c).

    python3 tools/make_trl_grad_fixtures.py     # torch, transformers, trl
"""
import types
from collections import defaultdict

import torch
import trl
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
from trl.trainer.grpo_trainer import GRPOTrainer

MODEL = "tests/fixtures/models/qwen2"
OUT = "tests/fixtures/trl_grad"
B, P, T, G = 4, 4, 6, 2
LENS = [6, 3, 5, 2]
EOS, PAD = 2, 0             # the fixture model's eos_token_id[0] and pad_token_id
ENDS_WITH_EOS = [False, True, False, True]  # completions 0 and 2 are truncated
REWARDS = [1.0, 0.25, 0.1, 0.5]             # two groups of G = 2

# scale: TRL scale_rewards; mask_trunc: mask_truncated_completions; max_len:
# max_completion_length (dr_grpo's constant, larger than T on purpose).
CASES = {
    "dapo_offpolicy_kl": dict(loss_type="dapo", beta=0.04, eps_low=0.2, eps_high=0.28, temperature=0.8,
                              off_policy=True, max_len=T, scale="group", mask_trunc=False),
    "grpo_onpolicy": dict(loss_type="grpo", beta=0.0, eps_low=0.2, eps_high=0.2, temperature=1.0,
                          off_policy=False, max_len=T, scale="group", mask_trunc=False),
    "bnpo_batch_masktrunc_kl": dict(loss_type="bnpo", beta=0.04, eps_low=0.2, eps_high=0.28, temperature=1.0,
                                    off_policy=True, max_len=T, scale="batch", mask_trunc=True),
    "dr_grpo_none": dict(loss_type="dr_grpo", beta=0.0, eps_low=0.2, eps_high=0.2, temperature=0.7,
                         off_policy=True, max_len=8, scale="none", mask_trunc=False),
    "grpo_masktrunc": dict(loss_type="grpo", beta=0.0, eps_low=0.2, eps_high=0.2, temperature=1.0,
                           off_policy=True, max_len=T, scale="group", mask_trunc=True),
    # the 80/20 rule: only the policy terms of the top half by entropy (KL kept)
    "dapo_topent_kl": dict(loss_type="dapo", beta=0.04, eps_low=0.2, eps_high=0.28, temperature=1.0,
                           off_policy=True, max_len=T, scale="group", mask_trunc=False, top_ent=0.5),
}


class Acc:
    num_processes = 1
    process_index = 0
    sync_gradients = True
    device = torch.device("cpu")

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x

    def pad_across_processes(self, x, dim=0, pad_index=0):
        return x


def stand_in(model, c, prompt_ids, completion_lists, per_token_logps):
    """The attributes of GRPOTrainer that the two methods read."""
    s = types.SimpleNamespace()
    s.accelerator = Acc()
    s.model = model
    s.environment_factories = None
    s.tools = []
    s.environments = None
    s._generate = lambda prompts: ([p.tolist() for p in prompt_ids], completion_lists, None, ["" for _ in prompts],
                                   None, None, None, None)
    s._tokenizer = types.SimpleNamespace(pad_token_id=PAD)
    s.processing_class = s._tokenizer
    s.pad_to_multiple_of = None
    s.eos_token_ids = [EOS]
    s.mask_truncated_completions = c["mask_trunc"]
    s.args = types.SimpleNamespace(per_device_train_batch_size=B, per_device_eval_batch_size=B,
                                   steps_per_generation=1, gradient_accumulation_steps=1,
                                   gradient_checkpointing_kwargs=None, use_bias_correction_kl=False, delta=None)
    s.num_iterations = 1
    s.use_vllm = False
    s.vllm_importance_sampling_correction = False
    s.beta = 0.0  # no reference forward here: KL cases supply ref log-probs afterwards
    s.ref_model = None
    s._get_per_token_logps_and_entropies = lambda m, ids_, am_, k, **kw: per_token_logps(m, ids_, am_, k)
    s._calculate_rewards = lambda inputs, prompts, completions, ids: torch.tensor(REWARDS).unsqueeze(1)
    s.num_generations = G
    s.num_generations_eval = G
    s.multi_objective_aggregation = "sum_then_normalize"
    s.reward_weights = torch.tensor([1.0])
    s.scale_rewards = c["scale"]
    s.reward_func_names = ["fixed"]
    s._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    s._logs = {"prompt": [], "completion": [], "rewards": defaultdict(list), "advantages": [],
               "extra": defaultdict(list), "images": []}
    s._pending_extra_logs = {}
    s._pending_metrics = {}
    s.log_multimodal = False
    s._is_vlm = False
    # _compute_loss
    s.top_entropy_quantile = c.get("top_ent", 1.0)
    s.get_high_entropy_mask = lambda e, m, t: GRPOTrainer.get_high_entropy_mask(s, e, m, t)
    s.off_policy_mask_threshold = None
    s.importance_sampling_level = "token"
    s.loss_type = c["loss_type"]
    s.epsilon_low = c["eps_low"]
    s.epsilon_high = c["eps_high"]
    s.current_gradient_accumulation_steps = 1
    s.max_completion_length = c["max_len"]
    s._entropy_bonus_enabled = False
    s.entropy_coef = 0.0
    s.use_adaptive_entropy = False
    s.aux_loss_enabled = False
    return s


def main():
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager")
    model.train()
    prompt_ids = torch.randint(4, 256, (B, P))
    completion_ids = torch.randint(4, 256, (B, T))  # 4..255: never EOS (2, 3) or pad (0)
    completion_lists = []
    for i, n in enumerate(LENS):
        ids = completion_ids[i, :n].tolist()
        if ENDS_WITH_EOS[i]:
            ids[-1] = EOS
        completion_lists.append(ids)
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

        self = stand_in(model, c, prompt_ids, completion_lists, per_token_logps)
        inputs = GRPOTrainer._generate_and_score_completions(self, [{"prompt": ""} for _ in range(B)])
        assert "old_per_token_logps" not in inputs  # on-policy as generated
        with torch.no_grad():
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
            am = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
            cur, _, _ = per_token_logps(model, ids, am, inputs["completion_ids"].size(1))
        old = (cur + noise_old).detach() if c["off_policy"] else None
        ref = (cur + noise_ref).detach()
        if old is not None:
            inputs["old_per_token_logps"] = old
        self.beta = c["beta"]
        if c["beta"] != 0.0:
            inputs["ref_per_token_logps"] = ref
        loss = GRPOTrainer._compute_loss(self, model, inputs)
        loss.backward()
        truncated = [not e for e in ENDS_WITH_EOS]
        t = {"prompt_ids": inputs["prompt_ids"].to(torch.int32).contiguous(),
             "completion_ids": inputs["completion_ids"].to(torch.int32).contiguous(),
             "lengths": torch.tensor(LENS, dtype=torch.int32),
             "truncated": torch.tensor(truncated, dtype=torch.int32),
             "rewards": torch.tensor(REWARDS),
             "advantages": inputs["advantages"].float().contiguous(),
             "loss_mask": inputs["completion_mask"].float().contiguous(),
             "old_logp": (old if old is not None else cur).contiguous(), "ref_logp": ref.contiguous(),
             "loss": torch.tensor([loss.item()])}
        for pname, p in model.named_parameters():
            if p.grad is not None:
                t["grad." + pname] = p.grad.detach().contiguous()
        meta = {k: str(v) for k, v in c.items()}
        meta["trl_version"] = trl.__version__
        save_file(t, f"{OUT}/{name}.safetensors", metadata=meta)
        print(name, "loss", loss.item(), "advantages", [round(a, 5) for a in inputs["advantages"].tolist()],
              "tokens", int(inputs["num_items_in_batch"]))


if __name__ == "__main__":
    main()
