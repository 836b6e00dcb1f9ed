#!/usr/bin/env python3
"""Writes tests/optim/adamw_expected.h: three AdamW steps of torch.optim.AdamW
on two parameter groups (one with weight decay, one without), with the
gradients clipped by torch.nn.utils.clip_grad_norm_ before each step.

    python3 tools/make_optim_fixtures.py > tests/optim/adamw_expected.h
"""
import torch

torch.manual_seed(0)
n_decay, n_plain = 7, 5
p_decay = torch.nn.Parameter(torch.randn(n_decay))
p_plain = torch.nn.Parameter(torch.randn(n_plain))
p0 = torch.cat([p_decay.detach(), p_plain.detach()]).clone()
opt = torch.optim.AdamW(
    [{"params": [p_decay], "weight_decay": 0.1}, {"params": [p_plain], "weight_decay": 0.0}],
    lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
lrs = [1e-2, 5e-3, 2e-2]
max_norm = 1.5
grads, norms = [], []
for step, lr in enumerate(lrs):
    for g in opt.param_groups:
        g["lr"] = lr
    g_all = torch.randn(n_decay + n_plain) * (1.0 + step)
    grads.append(g_all.clone())
    p_decay.grad = g_all[:n_decay].clone()
    p_plain.grad = g_all[n_decay:].clone()
    norms.append(float(torch.nn.utils.clip_grad_norm_([p_decay, p_plain], max_norm)))
    opt.step()
final = torch.cat([p_decay.detach(), p_plain.detach()])


def arr(t):
    return ", ".join(f"{float(x):.9g}f" for x in t)


print("/* Made by tools/make_optim_fixtures.py with torch %s. Do not edit. */" % torch.__version__)
print(f"#define ADAMW_N_DECAY {n_decay}\n#define ADAMW_N_PLAIN {n_plain}\n#define ADAMW_STEPS {len(lrs)}")
print(f"static const float ADAMW_P0[] = {{{arr(p0)}}};")
print("static const float ADAMW_GRADS[][%d] = {%s};" % (n_decay + n_plain, ", ".join("{" + arr(g) + "}" for g in grads)))
print(f"static const double ADAMW_LRS[] = {{{', '.join(repr(x) for x in lrs)}}};")
print(f"static const double ADAMW_NORMS[] = {{{', '.join(f'{x:.9g}' for x in norms)}}};")
print(f"static const double ADAMW_MAX_NORM = {max_norm};")
print(f"static const float ADAMW_FINAL[] = {{{arr(final)}}};")
