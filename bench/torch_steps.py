"""The timed-steps protocol both PyTorch training references share (a benchmark oracle only).

Warm-up steps, then either `steps` timed steps in a row or, with `interleave`, one timed
step each time the benchmark writes 'step' on stdin (answered with its time and loss)
until it writes 'done', so that the two sides' steps alternate.
"""

import json
import sys
import time


def run_steps(step, warmup, steps, interleave):
    """Returns (losses, times in seconds), or None after writing why the protocol broke."""
    losses, times = [], []

    def timed_step():
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)

    for _ in range(warmup):
        losses.append(step())
    if not interleave:
        for _ in range(steps):
            timed_step()
        return losses, times
    print(json.dumps({"ready": True, "losses": losses}), flush=True)
    for line in sys.stdin:
        if line.strip() == "done":
            break
        if line.strip() != "step":
            print(f"unknown command {line.strip()!r} (expected 'step' or 'done')", file=sys.stderr)
            return None
        timed_step()
        print(json.dumps({"ms": times[-1] * 1000, "loss": losses[-1]}), flush=True)
    if not times:
        print("no timed step was requested", file=sys.stderr)
        return None
    return losses, times
