#!/usr/bin/env python3
"""Reference side of `afd bench train --model M --lora R --vs-torch`: LoRA supervised
fine-tuning of a Hugging Face causal LM with PyTorch eager and peft, fp32 on the CPU unless
told otherwise (--device, --dtype: bench/torch_device.py).

This script is a benchmark oracle only; it is not part of the product. It trains what
the SFT stage trains (see bench/README.md): LoRA adapters (rank, alpha, no dropout) on the
projections the engine adapted, the base model frozen, the mean cross-entropy of the
response tokens, AdamW on the adapters with global-norm clipping, a constant learning
rate.

Usage (driven by `afd bench train`, which writes the --init file):
    python3 bench/torch_lora_train.py --model DIR --init FILE --rank 8 --alpha 16
        [--lr 3e-4] [--weight-decay 0] [--clip 1] [--warmup 2] [--threads 2] [--interleave]
        [--device cpu|cuda|auto] [--dtype float32|bfloat16]

--init FILE is a safetensors file with the batch (int64 `tokens` and `targets` [B, T],
float32 `mask` [B, T], 1 where the target is a response token) and the adapters' initial
values under the engine's names: `<module>.lora_A` [in, r] and `<module>.lora_B` [r, out]
for each adapted module (e.g. model.layers.0.self_attn.q_proj); peft's weights are their
transposes. The adapted modules are exactly those.

Without --interleave it runs `--steps` timed steps after the warm-up. With --interleave the
timed steps are driven from stdin: after the warm-up it prints {"ready": true, "losses":
[...]}, then runs one timed step per "step" line (printing {"ms", "loss"}) and, at "done"
or end of input, prints the summary line.
"""

import argparse
import json
import platform
import resource
import sys
from torch_device import add_device_args, autocast, device_info, resolve_device
from torch_steps import run_steps


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch + peft LoRA SFT reference for afd bench train")
    p.add_argument("--model", required=True, help="a Hugging Face model folder (fp32 safetensors)")
    p.add_argument("--init", required=True, help="the batch and the adapters' initial values (see the module doc)")
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=1.0, help="global-norm clipping threshold (0: none)")
    p.add_argument("--steps", type=int, default=8, help="timed steps (without --interleave)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--interleave", action="store_true")
    add_device_args(p)
    a = p.parse_args(argv)
    if a.rank < 1 or a.threads < 1 or a.steps < 1 or a.warmup < 0:
        p.error("--rank, --threads and --steps must be >= 1, --warmup >= 0")
    return a


def peak_rss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def main(argv):
    args = parse_args(argv)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("PyTorch is not installed: pip install torch", file=sys.stderr)
        return 2
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    device = resolve_device(torch, args)

    init = load_file(args.init)
    tokens, targets, mask = init.pop("tokens").long(), init.pop("targets").long(), init.pop("mask").float()
    adapted = sorted({k[: -len(".lora_A")] for k in init if k.endswith(".lora_A")})
    if not adapted or len(init) != 2 * len(adapted):
        raise SystemExit(f"{args.init}: expected <module>.lora_A and <module>.lora_B pairs besides the batch, got {sorted(init)[:4]}...")

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.config.use_cache = False
    # Full module names, so that peft adapts exactly the modules the engine adapted.
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none", target_modules=adapted)
    model = get_peft_model(model, config)
    model.train()
    trained = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
                continue
            key = name.removeprefix("base_model.model.")
            a, b = init.get(f"{key}.lora_A"), init.get(f"{key}.lora_B")
            if a is None or b is None:
                raise SystemExit(f"peft adapted {key}, which {args.init} has no adapters for")
            module.lora_A["default"].weight.copy_(a.T)
            module.lora_B["default"].weight.copy_(b.T)
            trained[key] = module
    if sorted(trained) != adapted:
        raise SystemExit(f"peft adapted {len(trained)} modules, {args.init} has adapters for {len(adapted)}")
    model.to(device)
    tokens, targets, mask = tokens.to(device), targets.to(device), mask.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    # The mean over response tokens: padding and prompt targets are ignored.
    labels = targets.masked_fill(mask == 0, -100)
    B, T = tokens.shape

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(torch, device, args.dtype):
            logits = model(input_ids=tokens).logits
            loss = F.cross_entropy(logits.view(B * T, -1), labels.view(-1), ignore_index=-100)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        return loss.item()

    ran = run_steps(step, args.warmup, args.steps, args.interleave)
    if ran is None:
        return 2
    losses, times = ran

    total = sum(times)
    import peft

    print(json.dumps({
        "tokens_per_s": B * T * len(times) / total,
        "step_ms": total * 1000 / len(times),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "trainable_params": sum(p.numel() for p in params),
        "adapted_modules": len(adapted),
        "attention": model.config._attn_implementation,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "peft_version": peft.__version__,
        **device_info(torch, device, args.dtype),
        "machine": platform.machine(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
