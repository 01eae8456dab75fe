#!/usr/bin/env python3
"""Reference side of `afd bench train`: trains a nanoGPT-style decoder with PyTorch
eager, fp32 on the CPU unless told otherwise (--device, --dtype: bench/torch_device.py),
and prints ONE JSON line to stdout.

This script is a benchmark oracle only; it is not part of the product. The
TypeScript engine builds exactly the same model (see bench/README.md), so the
numbers here are the fp32 eager PyTorch baseline for the same work.

Usage:
    python3 bench/torch_gpt_train.py [--vocab 8192] [--d-model 512] [--layers 8]
        [--heads 8] [--seq 256] [--batch 8] [--steps 10] [--warmup 3]
        [--threads 2] [--seed 0] [--lr 3e-4] [--attention sdpa|manual] [--interleave]
        [--init FILE] [--device cpu|cuda|auto] [--dtype float32|bfloat16]

With --interleave the timed steps are driven from stdin, so that `afd bench train
--vs-torch` can alternate them with its own steps in the same minutes of machine time:
after the warm-up it prints {"ready": true, "losses": [the warm-up steps' losses]}, then
runs one timed step per "step" line (printing {"ms", "loss"}) and, at "done" or end of
input, prints the summary line.

With --init FILE (a safetensors file: the weights under Hugging Face GPT-2 names, linear
weights [in, out] as GPT-2's Conv1D stores them, and the batch as int64 `tokens` and
`targets` [batch, seq]) the model starts from those weights and trains on that batch
instead of its own random ones: `afd bench train --vs-torch` passes the engine's, so the
two sides' losses can be compared step by step.
"""

import argparse
import json
import math
import platform
import resource
import sys
from torch_device import add_device_args, autocast, device_info, resolve_device
from torch_steps import run_steps


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch eager training reference for afd bench train")
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps before the timed ones")
    p.add_argument("--interleave", action="store_true", help="run timed steps on request from stdin (see the module doc)")
    p.add_argument("--init", help="start from these weights and train on this batch (see the module doc)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument(
        "--attention",
        choices=["sdpa", "manual"],
        default="sdpa",
        help="sdpa: F.scaled_dot_product_attention(is_causal=True) (default, as nanoGPT); "
        "manual: explicit masked softmax (nanoGPT's slow path)",
    )
    add_device_args(p)
    a = p.parse_args(argv)
    for name in ("vocab", "d_model", "layers", "heads", "seq", "batch", "steps", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.warmup < 0:
        p.error("--warmup must be >= 0")
    if a.d_model % a.heads != 0:
        p.error(f"--d-model ({a.d_model}) must be divisible by --heads ({a.heads})")
    return a


def peak_rss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def load_init(model, path, batch_shape):
    """Copies the weights of an --init file into `model` (Linear weights transposed from
    Conv1D's [in, out]) and returns its batch (tokens, targets)."""
    import torch

    try:
        from safetensors.torch import load_file
    except ImportError:
        raise SystemExit("--init needs the safetensors package: pip install safetensors")
    init = load_file(path)
    with torch.no_grad():
        for name, p in model.named_parameters():
            key = f"transformer.{name}"
            if key not in init:
                raise SystemExit(f"{path} has no tensor {key}; write it from the same model config")
            value = init[key]
            if name.endswith("weight") and p.dim() == 2 and not name.endswith(("wte.weight", "wpe.weight")):
                value = value.T
            if tuple(value.shape) != tuple(p.shape):
                raise SystemExit(f"{path}: {key} is {list(init[key].shape)}, the model's {name} needs {list(p.shape)} (transposed for a Linear)")
            p.copy_(value)
    tokens, targets = init.get("tokens"), init.get("targets")
    if tokens is None or targets is None or tuple(tokens.shape) != batch_shape or tuple(targets.shape) != batch_shape:
        raise SystemExit(f"{path} needs int64 tokens and targets of shape {list(batch_shape)}")
    return tokens.long(), targets.long()


def main(argv):
    args = parse_args(argv)
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        print("PyTorch is not installed: pip install torch", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    # fp32 means fp32: no TF32 / bf16 downcast inside matmuls (resolve_device sees to it).
    device = resolve_device(torch, args)
    torch.manual_seed(args.seed)

    V, D, L, H, T, B = args.vocab, args.d_model, args.layers, args.heads, args.seq, args.batch
    hd = D // H

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(D, 3 * D, bias=True)
            self.c_proj = nn.Linear(D, D, bias=True)
            if args.attention == "manual":
                self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T), persistent=False)

        def forward(self, x):
            b, t, _ = x.size()
            q, k, v = self.c_attn(x).split(D, dim=2)
            q = q.view(b, t, H, hd).transpose(1, 2)
            k = k.view(b, t, H, hd).transpose(1, 2)
            v = v.view(b, t, H, hd).transpose(1, 2)
            if args.attention == "sdpa":
                # default scale of SDPA is 1/sqrt(head_dim) = 1/sqrt(D/H)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
                att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
                att = F.softmax(att, dim=-1)
                y = att @ v
            y = y.transpose(1, 2).contiguous().view(b, t, D)
            return self.c_proj(y)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(D, 4 * D, bias=True)
            self.c_proj = nn.Linear(4 * D, D, bias=True)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(D, eps=1e-5, elementwise_affine=True, bias=True)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(D, eps=1e-5, elementwise_affine=True, bias=True)
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlp(self.ln_2(x))
            return x

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, D)
            self.wpe = nn.Embedding(T, D)
            self.h = nn.ModuleList([Block() for _ in range(L)])
            self.ln_f = nn.LayerNorm(D, eps=1e-5, elementwise_affine=True, bias=True)
            self.apply(self._init_weights)
            # scaled init of the residual output projections (GPT-2 paper, nanoGPT)
            for name, prm in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(prm, mean=0.0, std=0.02 / math.sqrt(2 * L))

        @staticmethod
        def _init_weights(m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            # nn.LayerNorm keeps its default init: weight 1, bias 0

        def forward(self, idx, targets):
            b, t = idx.size()
            pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for blk in self.h:
                x = blk(x)
            x = self.ln_f(x)
            logits = F.linear(x, self.wte.weight)  # tied output head: x @ wte^T
            return F.cross_entropy(logits.view(-1, V), targets.view(-1))

    # Built on the CPU (the same random draws on every device), then moved.
    model = GPT().to(device)
    model.train()

    params = sum(p.numel() for p in model.parameters())
    params_no_wpe = params - model.wpe.weight.numel()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )

    if args.init:
        idx, targets = load_init(model, args.init, (B, T))
    else:
        # Fixed random batch (same every step), reproducible from the seed.
        g = torch.Generator().manual_seed(args.seed)
        idx = torch.randint(0, V, (B, T), generator=g, dtype=torch.long)
        targets = torch.randint(0, V, (B, T), generator=g, dtype=torch.long)
    idx, targets = idx.to(device), targets.to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(torch, device, args.dtype):
            loss = model(idx, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    ran = run_steps(step, args.warmup, args.steps, args.interleave)
    if ran is None:
        return 2
    losses, times = ran
    steps = len(times)

    total = sum(times)
    tokens_per_step = B * T
    # nanoGPT's estimate (estimate_mfu): 6 N per token for the matmuls with parameters
    # (N = all parameters but the position embedding) + 12 L D T per token for attention.
    flops_per_step = (6 * params_no_wpe + 12 * L * D * T) * tokens_per_step
    sorted_ms = sorted(t * 1000 for t in times)
    mid = len(sorted_ms) // 2
    median_ms = sorted_ms[mid] if len(sorted_ms) % 2 else 0.5 * (sorted_ms[mid - 1] + sorted_ms[mid])
    attention = (
        "F.scaled_dot_product_attention(is_causal=True)"
        if args.attention == "sdpa"
        else "manual (q@k^T*scale, causal mask, softmax, @v)"
    )
    out = {
        "tokens_per_s": tokens_per_step * steps / total,
        "step_ms": total * 1000 / steps,
        "step_ms_median": median_ms,
        "params": params,
        "params_flops": params_no_wpe,
        "flops_per_step": flops_per_step,
        "achieved_gflops": flops_per_step * steps / total / 1e9,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "attention": attention,
        **device_info(torch, device, args.dtype),
        "machine": platform.machine(),
        "config": {
            "vocab": V,
            "d_model": D,
            "layers": L,
            "heads": H,
            "seq": T,
            "batch": B,
            "steps": steps,
            "warmup": args.warmup,
            "seed": args.seed,
            "lr": args.lr,
            "betas": [0.9, 0.95],
            "eps": 1e-8,
            "weight_decay": 0.1,
            "grad_clip": 1.0,
        },
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
