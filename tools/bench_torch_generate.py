#!/usr/bin/env python3
"""transformers' generate on the 'bench' model of bench/rollout_cpu (random
weights, same shapes), for the side-by-side: P prompts of L tokens, G samples
each via num_return_sequences, N new tokens (EOS ignored), temperature 1.

    python3 tools/bench_torch_generate.py [P] [G] [L] [N] [threads]
"""
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

P, G, L, N = (int(a) for a in (sys.argv[1:5] + ["8", "8", "64", "256"][len(sys.argv[1:5]):]))
if len(sys.argv) > 5:
    torch.set_num_threads(int(sys.argv[5]))
cfg = Qwen2Config(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                  intermediate_size=1408, vocab_size=32000, max_position_embeddings=4096,
                  tie_word_embeddings=True)
torch.manual_seed(0)
model = Qwen2ForCausalLM(cfg).eval()
ids = torch.tensor([[(i * 7919) % 32000 for i in range(g * L, (g + 1) * L)] for g in range(P)])
with torch.inference_mode():
    t0 = time.time()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                         top_p=1.0, top_k=0, num_return_sequences=G, max_new_tokens=N, min_new_tokens=N,
                         pad_token_id=0)
    t = time.time() - t0
toks = (out.shape[1] - L) * out.shape[0]
print(f"transformers.generate: {P} prompts x G={G}, prompt {L}, {N} new tokens, "
      f"{torch.get_num_threads()} threads: {toks / t:.1f} tokens/s ({toks} tokens in {t:.2f} s)")
