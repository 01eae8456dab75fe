#!/usr/bin/env python3
"""The machine's matrix-product peak through PyTorch: the denominator of MFU in
`afd bench gpu` (a benchmark oracle only).

For each product shape (M x K x N; the training-shaped products of bench/README.md,
and on CUDA also large squares, where cuBLAS comes closest to the hardware's rate) and
each dtype: two warm-up products, then the median of timed ones (synchronized on CUDA);
the peak is the best median over the shapes. float32 runs with
`set_float32_matmul_precision("highest")` (no TF32), as the references' fp32 does.

Usage:
    python3 bench/torch_gemm_peak.py [--device cpu|cuda|auto] [--threads 2] [--runs 5]

Prints ONE JSON line: {"device", "gpu"?, "torch_version", "float32_gflops",
"bfloat16_gflops", "shapes": [{"m", "k", "n", "dtype", "gflops"}, ...]}.
"""

import argparse
import json
import sys
import time
from torch_device import resolve_device, synchronize

TRAINING_SHAPES = [(2048, 512, 1536), (2048, 512, 2048), (2048, 2048, 512), (2048, 1024, 1024)]
CUDA_SQUARES = [(4096, 4096, 4096), (8192, 8192, 8192)]


def main(argv):
    p = argparse.ArgumentParser(description="matrix-product peak through PyTorch, for afd bench gpu")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5, help="timed products per shape and dtype")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = resolve_device(torch, args)
    # On the CPU one training-shaped product is enough to read the rate and keeps the run short.
    shapes = TRAINING_SHAPES + CUDA_SQUARES if device.type == "cuda" else TRAINING_SHAPES[:1]
    results = []
    for dtype in ("float32", "bfloat16"):
        for m, k, n in shapes:
            g = torch.Generator(device="cpu").manual_seed(0)
            a = torch.rand(m, k, generator=g).to(device=device, dtype=getattr(torch, dtype))
            b = torch.rand(k, n, generator=g).to(device=device, dtype=getattr(torch, dtype))
            times = []
            for r in range(2 + args.runs):
                synchronize(torch, device)
                t0 = time.perf_counter()
                a @ b
                synchronize(torch, device)
                if r >= 2:
                    times.append(time.perf_counter() - t0)
            times.sort()
            results.append({"m": m, "k": k, "n": n, "dtype": dtype, "gflops": 2 * m * k * n / times[len(times) // 2] / 1e9})
    out = {"device": device.type, "torch_version": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    for dtype in ("float32", "bfloat16"):
        out[f"{dtype}_gflops"] = max(r["gflops"] for r in results if r["dtype"] == dtype)
    out["shapes"] = results
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
