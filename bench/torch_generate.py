#!/usr/bin/env python3
"""Reference side of `afd bench generate`: times transformers' generate (KV cache,
greedy, fp32 on the CPU unless told otherwise: --device, --dtype, see bench/torch_device.py)
on a Hugging Face model folder (the same weights as the TypeScript side), on the same
prompts, and prints ONE JSON line to stdout.

A benchmark oracle only; the product never needs Python.

Usage:
    python3 bench/torch_generate.py --model DIR --prompts prompts.json
        [--batches 1,16] [--new-tokens 32] [--repeats 3] [--threads 2]
        [--device cpu|cuda|auto] [--dtype float32|bfloat16]
    python3 bench/torch_generate.py --interleave --model DIR --prompts prompts.json [--threads 2]
        [--device cpu|cuda|auto] [--dtype float32|bfloat16]
    python3 bench/torch_generate.py --cold --model DIR --prompt TEXT [--chat]
        [--new-tokens 1] [--threads 2]

prompts.json: {"prompts": [[token ids], ...]} with at least max(batches) rows of one
length; batch b uses the first b rows.

Protocol (the same on both sides): one warm-up generate of 2 tokens per batch size, then
`repeats` times generate(max_new_tokens=1) (t1: prefill and the first token) and
generate(max_new_tokens=N) (tN); the fastest of each (the machine is shared: the best
time is the one least disturbed by other work). prefill tokens/s = b * prompt_len / t1,
decode tokens/s = b * (N - 1) / (tN - t1).

--interleave: the same generate calls, one at a time on request, so that the caller can
alternate them with its own and both sides see the same load: after loading, one line
{"ready": true, ...versions}; then for each stdin line "B N" one generate of N tokens on
the first B prompts, answered by one line {"ms": ..., "tokens": [[...], ...]}; EOF ends it.

--cold: what a user's process does once, timed from the script's start: import torch and
transformers, load the tokenizer and the model, tokenize the prompt (with the chat
template under --chat) and generate --new-tokens tokens greedily, as one row with the
model's own EOS. The JSON line is printed as soon as generate returns; the caller times
the process from its spawn to that line. peak_rss_mb is the process's ru_maxrss then.
"""

import time

T0 = time.perf_counter()  # before the heavy imports: --cold counts them

import argparse
import json
import platform
import resource
import sys
from torch_device import add_device_args, device_info, resolve_device, synchronize


def parse_args(argv):
    p = argparse.ArgumentParser(description="transformers generate reference for afd bench generate")
    p.add_argument("--model", required=True, help="Hugging Face model folder (config.json, model.safetensors)")
    p.add_argument("--prompts", help="JSON file {\"prompts\": [[ids], ...]}")
    p.add_argument("--cold", action="store_true", help="one cold generate of --prompt (see above)")
    p.add_argument("--interleave", action="store_true", help="generate on request from stdin (see above)")
    p.add_argument("--prompt", help="prompt text for --cold")
    p.add_argument("--chat", action="store_true", help="apply the folder's chat template to --prompt")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    add_device_args(p)
    a = p.parse_args(argv)
    try:
        a.batches = [int(x) for x in a.batches.split(",") if x]
    except ValueError:
        p.error(f"--batches must be comma-separated whole numbers, got {a.batches!r}")
    if not a.batches or min(a.batches) < 1:
        p.error("--batches needs at least one batch size >= 1")
    if a.cold:
        if a.prompt is None:
            p.error("--cold needs --prompt")
        if a.new_tokens < 1:
            p.error("--new-tokens must be >= 1")
        return a
    if a.prompts is None:
        p.error("--prompts is required (or --cold with --prompt)")
    if a.interleave:
        return a
    if a.new_tokens < 2:
        p.error("--new-tokens must be >= 2 (decode speed is measured from tokens 2..N)")
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    return a


def main(argv):
    args = parse_args(argv)
    try:
        import torch
        from transformers import AutoModelForCausalLM
        import transformers
    except ImportError as e:
        print(f"PyTorch or transformers is not installed ({e}): pip install torch transformers safetensors", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    device = resolve_device(torch, args)
    if args.cold:
        return cold(args, torch, AutoModelForCausalLM)
    with open(args.prompts) as f:
        prompts = json.load(f)["prompts"]
    if (not args.interleave and len(prompts) < max(args.batches)) or len({len(p) for p in prompts}) != 1:
        print("prompts.json needs at least max(batches) prompts, all of one length", file=sys.stderr)
        return 2

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device)
    model.eval()
    # No EOS: every row generates exactly N tokens, as on the TypeScript side.
    gc = model.generation_config
    gc.eos_token_id = None
    gc.bos_token_id = None
    gc.pad_token_id = 0

    def generate(ids, n):
        with torch.inference_mode():
            return model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                use_cache=True,
            )

    def timed(ids, n):
        t0 = time.perf_counter()
        out = generate(ids, n)
        synchronize(torch, device)
        return (time.perf_counter() - t0) * 1000, out

    versions = {
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "threads": torch.get_num_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        **device_info(torch, device, args.dtype),
    }
    if args.interleave:
        print(json.dumps({"ready": True, **versions}), flush=True)
        for line in sys.stdin:
            b, n = (int(x) for x in line.split())
            if not 1 <= b <= len(prompts) or n < 1:
                print(f"asked for {n} tokens on {b} prompts, of the {len(prompts)} in {args.prompts}", file=sys.stderr)
                return 2
            ids = torch.tensor(prompts[:b], dtype=torch.long, device=device)
            ms, out = timed(ids, n)
            print(json.dumps({"ms": ms, "tokens": out[:, ids.shape[1]:].tolist()}), flush=True)
        return 0

    runs = []
    for b in args.batches:
        ids = torch.tensor(prompts[:b], dtype=torch.long, device=device)
        L, N = ids.shape[1], args.new_tokens
        generate(ids, 2)  # warm-up
        t1s, tns, out = [], [], None
        for _ in range(args.repeats):
            t1s.append(timed(ids, 1)[0])
            ms, out = timed(ids, N)
            tns.append(ms)
        t1, tn = min(t1s), min(tns)
        runs.append({
            "batch": b,
            "prompt_len": L,
            "new_tokens": N,
            "t1_ms": t1,
            "tn_ms": tn,
            "prefill_tokens_per_s": b * L / (t1 / 1000),
            "decode_tokens_per_s": b * (N - 1) / ((tn - t1) / 1000),
            "tokens": out[:, L:].tolist(),
        })
    print(json.dumps({
        **versions,
        **device_info(torch, device, args.dtype),
        "machine": platform.machine(),
        "runs": runs,
    }))
    return 0


def cold(args, torch, AutoModelForCausalLM):
    from transformers import AutoTokenizer

    t_imports = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.eval()
    t_load = time.perf_counter()
    if args.chat:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": args.prompt}], add_generation_prompt=True, return_tensors="pt")
        if not torch.is_tensor(ids):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
    else:
        ids = tokenizer(args.prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens, do_sample=False, use_cache=True)
    t_gen = time.perf_counter()
    print(json.dumps({
        "tokens": out[0, ids.shape[1]:].tolist(),
        "prompt_tokens": ids.shape[1],
        "imports_ms": (t_imports - T0) * 1000,
        "load_ms": (t_load - t_imports) * 1000,
        "generate_ms": (t_gen - t_load) * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_version": torch.__version__,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
