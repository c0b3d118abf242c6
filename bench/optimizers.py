"""Per-step time of our optimizer kernels against ``torch.optim`` and the memory roofline.

Run as ``.venv/bin/python bench/optimizers.py`` (``--quick`` for a short run). For adam,
sgd(momentum=0.9) and rmsprop at their defaults, on one flat float32 / float64 vector of 1e4, 1e6
and 1e7 elements (R = 1), it prints our ``update_`` time per step, PyTorch's (``foreach=True``,
one tensor, ``torch.set_num_threads(1)``: both sides on one core), and the roofline: the time a
fused kernel would need to read params, grads and the state and write params and state back
(7 array transfers for Adam, 5 for SGD with momentum and RMSprop) at the bandwidth measured with an
in-place ``a += b`` (2 reads and 1 write per element, and like the fused kernel it writes where it
read, so no write-allocate traffic). Each time is the best of several repeats of a few steps.
Without torch installed the torch columns are left empty.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.optimizers import build_optimizer

try:
    import torch
except ImportError:  # the bench extra is not installed: ours and the roofline only
    torch = None

CASES: list[tuple[str, dict[str, Any], int]] = [
    # (label, our spec, array transfers of a fused step)
    ("adam", {"name": "adam"}, 7),
    ("sgd(momentum=0.9)", {"name": "sgd", "momentum": 0.9}, 5),
    ("rmsprop", {"name": "rmsprop"}, 5),
]


def best_time(step: Callable[[], None], steps: int, repeats: int) -> float:
    """Best over ``repeats`` of the mean time of ``steps`` calls (after one warm-up call)."""
    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def bandwidth(n: int, dtype: type, repeats: int) -> float:
    """Bytes per second of an in-place ``a += b`` over ``n`` elements (3 transfers each)."""
    a = np.ones(n, dtype=dtype)
    b = np.ones(n, dtype=dtype)
    seconds = best_time(lambda: np.add(a, b, out=a), 3, repeats)
    return 3 * a.nbytes / seconds


def ours(spec: dict[str, Any], n: int, dtype: type, steps: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    opt = build_optimizer(spec)
    params = rng.standard_normal((1, n)).astype(dtype)
    grads = rng.standard_normal((1, n)).astype(dtype)
    state = opt.init(params)
    lr = np.full((1, 1), 1e-6, dtype=dtype)  # the run loop's lr column; tiny: params stay put
    return best_time(lambda: opt.update_(grads, state, params, lr), steps, repeats)


def theirs(spec: dict[str, Any], n: int, dtype: type, steps: int, repeats: int) -> float | None:
    if torch is None:
        return None
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    gen = torch.Generator().manual_seed(0)
    param = torch.randn(n, dtype=tdtype, generator=gen).requires_grad_()
    param.grad = torch.randn(n, dtype=tdtype, generator=gen)
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    opt = cls[spec["name"]]([param], lr=1e-6, foreach=True, **kwargs)
    return best_time(opt.step, steps, repeats)


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    if torch is not None:
        torch.set_num_threads(1)
        print(f"torch {torch.__version__}: torch.optim, foreach=True, one tensor, 1 thread")
    else:
        print("torch not installed: torch columns left empty")
    print(f"numpy {np.__version__}; times are ms per step, best of {repeats} repeats\n")
    header = (
        f"{'dtype':8} {'N':>9} {'optimizer':18} {'ours':>9} {'torch':>9} "
        f"{'ours/torch':>10} {'roofline':>9} {'roof/ours':>9}"
    )
    print(header)
    print("-" * len(header))
    for dtype in (np.float32, np.float64):
        for n in (10**4, 10**6, 10**7):
            steps = max(3, min(200, 10**7 // (20 * n)))
            bw = bandwidth(n, dtype, repeats)
            itemsize = np.dtype(dtype).itemsize
            for label, spec, transfers in CASES:
                t_ours = ours(spec, n, dtype, steps, repeats)
                t_torch = theirs(spec, n, dtype, steps, repeats)
                roof = transfers * n * itemsize / bw
                ratio = None if t_torch is None else t_ours / t_torch
                print(
                    f"{np.dtype(dtype).name:8} {n:>9.0e} {label:18} {fmt(t_ours * 1e3):>9} "
                    f"{fmt(None if t_torch is None else t_torch * 1e3):>9} {fmt(ratio, 2):>10} "
                    f"{fmt(roof * 1e3):>9} {fmt(roof / t_ours, 2):>9}"
                )


if __name__ == "__main__":
    main()
