"""Where the PyTorch references run and in which precision (a benchmark oracle only).

Every reference takes `--device cpu|cuda|auto` [cpu] and `--dtype float32|bfloat16`
[float32]. float32 is plain fp32: `set_float32_matmul_precision("highest")` keeps TF32
out of CUDA's matrix products, as the engine's fp32 has none. bfloat16 is the usual mixed
precision: training runs its forward pass under `torch.autocast(bfloat16)` with fp32
weights and optimizer state; generation loads the weights in bfloat16. Timings on CUDA
are taken after `torch.cuda.synchronize()`.
"""

import contextlib


def add_device_args(parser):
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where the reference runs (auto: cuda when available)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="float32, or bfloat16 (autocast when training, bf16 weights when generating)")


def resolve_device(torch, args):
    """The torch.device of --device; raises SystemExit with a sentence when CUDA is asked for and absent."""
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    torch.set_float32_matmul_precision("highest")
    return torch.device(name)


def autocast(torch, device, dtype):
    """The context a training step's forward pass runs in: bf16 autocast, or nothing for fp32."""
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(torch, device):
    """Waits for the device's queued work, so that a timer read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_info(torch, device, dtype):
    """Fields every reference adds to its summary: where it ran, in what, and its GPU memory peak."""
    info = {"device": device.type, "dtype": dtype}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return info
