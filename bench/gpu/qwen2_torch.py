"""Shared by the GPU peers (bench/gpu_train/peer_torch.py, bench/gpu_rollout/peer_generate.py).

- The model shapes of bench/gpu/bench_common.h (Qwen2.5-0.5B, or --tiny) and
  the same FLOP count as bench/gpu_train/gpu_train.c.
- A transformers Qwen2ForCausalLM of those shapes, when transformers imports.
- Qwen2Plain: a minimal Qwen2 decoder in plain torch (HF semantics: RMSNorm in
  f32, rotate_half RoPE, q/k/v bias, SwiGLU, tied lm_head, SDPA attention with
  GQA) with a static-KV-cache decode loop, the peer when transformers is missing
  (the GPU host has no network to install it).
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def shapes(tiny=False, layers=0):
    if tiny:
        s = dict(hidden=128, layers=2, heads=4, kv_heads=2, head_dim=32, ffn=384, vocab=4096)
    else:
        s = dict(hidden=896, layers=24, heads=14, kv_heads=2, head_dim=64, ffn=4864, vocab=151936)
    if layers:
        s["layers"] = layers
    s.update(rope_theta=1e6, eps=1e-6, max_pos=32768)
    return s


def layer_matmul_params(s):
    H, qd, kd = s["hidden"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    return s["layers"] * (H * qd + 2 * H * kd + qd * H + 3 * H * s["ffn"])


def num_params(s):
    """All parameters, tied lm_head counted once (biases and norms included)."""
    H, qd, kd = s["hidden"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    per_layer = H * qd + 2 * H * kd + qd * H + 3 * H * s["ffn"] + qd + 2 * kd + 2 * H
    return s["layers"] * per_layer + s["vocab"] * H + H


def train_flops(s, batch, seq):
    """gpu_train.c's model FLOPs per step: 6 N T + 6 V H T + 12 L qd pairs (causal);
    also the full-attention (PaLM) variant."""
    T = batch * seq
    qd = s["heads"] * s["head_dim"]
    pairs = batch * seq * (seq + 1) / 2
    dense = 6.0 * layer_matmul_params(s) * T + 6.0 * s["vocab"] * s["hidden"] * T
    return dense + 12.0 * s["layers"] * qd * pairs, dense + 12.0 * s["layers"] * qd * seq * T


def hf_model(s):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(hidden_size=s["hidden"], num_hidden_layers=s["layers"],
                      num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"],
                      intermediate_size=s["ffn"], vocab_size=s["vocab"],
                      max_position_embeddings=s["max_pos"], rms_norm_eps=s["eps"],
                      rope_theta=s["rope_theta"], tie_word_embeddings=True, use_cache=True,
                      attn_implementation="sdpa")
    try:
        cfg.head_dim = s["head_dim"]
    except Exception:
        pass
    return Qwen2ForCausalLM(cfg)


def have_transformers():
    try:
        import transformers  # noqa: F401
        return True
    except Exception:
        return False


def device_name(device):
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def versions():
    v = {"torch": torch.__version__}
    try:
        import transformers
        v["transformers"] = transformers.__version__
    except Exception:
        v["transformers"] = None
    return v


# ---- plain torch Qwen2 -----------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def _sdpa(q, k, v, causal):
    """q [B, nh, Tq, hd], k/v [B, nkv, Tk, hd]; GQA by enable_gqa or repeat."""
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:
        g = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(q, k.repeat_interleave(g, 1), v.repeat_interleave(g, 1),
                                              is_causal=causal)


class Layer(nn.Module):
    def __init__(self, s):
        super().__init__()
        H, nh, nkv, hd, I = s["hidden"], s["heads"], s["kv_heads"], s["head_dim"], s["ffn"]
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.input_layernorm = RMSNorm(H, s["eps"])
        self.q_proj = nn.Linear(H, nh * hd, bias=True)
        self.k_proj = nn.Linear(H, nkv * hd, bias=True)
        self.v_proj = nn.Linear(H, nkv * hd, bias=True)
        self.o_proj = nn.Linear(nh * hd, H, bias=False)
        self.post_attention_layernorm = RMSNorm(H, s["eps"])
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def qkv(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        return q.to(v.dtype), k.to(v.dtype), v

    def mlp(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    def forward(self, x, cos, sin, cache=None, pos=0):
        """cache: (K, V) of [B, nkv, max_len, hd] to write rows pos.. and attend over [0, pos+T)."""
        B, T, _ = x.shape
        q, k, v = self.qkv(self.input_layernorm(x), cos, sin)
        if cache is not None:
            K, V = cache
            K[:, :, pos:pos + T] = k
            V[:, :, pos:pos + T] = v
            k, v = K[:, :, :pos + T], V[:, :, :pos + T]
        # one query (decode) attends to every cached row: no mask needed
        a = _sdpa(q, k, v, causal=T > 1)
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, self.nh * self.hd))
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2Plain(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.embed_tokens = nn.Embedding(s["vocab"], s["hidden"])
        self.layers = nn.ModuleList(Layer(s) for _ in range(s["layers"]))
        self.norm = RMSNorm(s["hidden"], s["eps"])
        hd = s["head_dim"]
        inv = 1.0 / (s["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                nn.init.normal_(mod.weight, std=0.02)
            if isinstance(mod, nn.Linear) and mod.bias is not None:
                nn.init.zeros_(mod.bias)

    def rope(self, pos, dtype):
        f = pos[:, None].float() * self.inv_freq[None, :]
        e = torch.cat((f, f), dim=-1)
        return e.cos().to(dtype)[None, None], e.sin().to(dtype)[None, None]

    def hidden(self, ids, caches=None, pos=0):
        x = self.embed_tokens(ids)
        p = torch.arange(pos, pos + ids.shape[1], device=ids.device)
        cos, sin = self.rope(p, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i], pos)
        return self.norm(x)

    def logits(self, h):
        return F.linear(h, self.embed_tokens.weight)  # tied lm_head

    def forward(self, ids):
        return self.logits(self.hidden(ids))

    @torch.no_grad()
    def generate(self, ids, new_tokens, chunk=32):
        """Static-cache sampling loop at temperature 1 (no EOS stop). Returns (tokens
        [B, new], prefill seconds, decode seconds for new - 1 steps)."""
        s, (B, P) = self.s, ids.shape
        max_len = P + new_tokens
        dev, dt = ids.device, self.embed_tokens.weight.dtype
        caches = [(torch.empty(B, s["kv_heads"], max_len, s["head_dim"], device=dev, dtype=dt),
                   torch.empty(B, s["kv_heads"], max_len, s["head_dim"], device=dev, dtype=dt))
                  for _ in range(s["layers"])]
        dev_type = dev.type
        out = torch.empty(B, new_tokens, dtype=torch.long, device=dev)
        sync(dev_type)
        t0 = time.perf_counter()
        last = []
        for b0 in range(0, B, chunk):  # prefill in chunks of sequences (bounded activations)
            sub = [(K[b0:b0 + chunk], V[b0:b0 + chunk]) for K, V in caches]
            h = self.hidden(ids[b0:b0 + chunk], sub, 0)
            last.append(self.logits(h[:, -1]))
        z = torch.cat(last)
        out[:, 0] = torch.multinomial(torch.softmax(z.float(), -1), 1)[:, 0]
        sync(dev_type)
        t1 = time.perf_counter()
        for t in range(1, new_tokens):
            h = self.hidden(out[:, t - 1:t], caches, P + t - 1)
            z = self.logits(h[:, -1])
            out[:, t] = torch.multinomial(torch.softmax(z.float(), -1), 1)[:, 0]
        sync(dev_type)
        t2 = time.perf_counter()
        return out, t1 - t0, t2 - t1
