"""Whole sweeps against their best alternatives, and the engine CLI's cold and warm start.

Run as ``.venv/bin/python bench/sweeps.py`` (``--quick``: fewer repeats). One BLAS thread and one
torch thread throughout; every figure is the best of several repeats. Prints:

1. A 1,024-run Adam lr sweep on 2-D Rosenbrock from (-1.5, 2), 2,000 steps, every loss recorded:
   ``run_batch`` (results included, as a caller gets them) against one numba loop doing the same
   math (torch's Adam order) and recording the same loss curve — run-steps per second, the two
   taking turns each repeat, best of 9 (a repeat takes ~0.15 s; ``--rosenbrock``: this sweep
   alone). Issue 12's target:
   ≥ 10 M run-steps/s and ≥ 0.5 of the compiled loop.
2. A 64-run SGD-momentum lr sweep on MLP-digits ([64], relu, batch 64, 200 steps, float64) at
   equal work — the full training loss evaluated at the start and the end only, test metrics at
   the end — against torch as 64 stacked models under ``torch.func.vmap``; and the same sweep at
   the default ``eval_every`` with the share of its time spent evaluating. Targets: ≥ 4× faster
   than vmap; default cadence ≤ 25 % of the time in evaluation. The three take turns each repeat
   and are timed in wall and in CPU time (the work itself: steadier on a shared machine): the ratio
   to vmap is of those turns, best of 3 each; ours at the two cadences then take twice as many
   turns again for the share (best of 9: the share is a difference of two times, a fifth of the
   larger, and best of 3 swung from 15 to 27 % under load 3); the
   numbers of evaluations are those the results list (``--mlp``: this sweep alone).
   Beside them, the products floor: the sweep's matrix products alone, at the engine's shapes
   (inputs with a bias column, ``k1 = n_in + 1``; per run and step the forward ``x1·W₁`` and
   ``a1·W₂``, the backward ``∂W₂ = a1ᵀ·dz``, ``∂a = dz·W₂ᵀ`` without the bias row and
   ``∂W₁ = x1ᵀ·da``; and the evaluations' forward passes, over the training split at the start
   and the end and over the test split at the end), timed two ways: (a) their FLOPs at this CPU's
   best float64 product rate (a 1,024 × 1,024 NumPy product, best of 5), (b) the products
   themselves by ``np.matmul(..., out=...)`` at their shapes and layouts, taking turns with the
   contenders. ``vmap ÷ floor`` bounds ``vmap/ours``: no implementation doing these products can
   exceed (a)'s ratio on this CPU; (b)'s is the bound where NumPy's BLAS does them at these shapes
   (its Python calls included).
3. ``python -m engine run`` on the README example (examples/adam-vs-momentum.json) with an empty
   numba cache (cold: every kernel it uses is compiled) and again with the cache it left (warm).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.jit import njit
from engine.problems import build_problem
from engine.problems.network import row_blocks
from engine.runner import run_batch
from engine.spec import expand, parse_experiment
from engine.threads import limit_blas_threads

try:
    import torch
except ImportError:  # the bench extra is not installed: the torch column stays empty
    torch = None

ROOT = Path(__file__).resolve().parents[1]
ROSENBROCK = {
    "name": "bench-rosenbrock-1024",
    "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
    "optimizers": [{"name": "adam", "lr": np.geomspace(1e-4, 1e-1, 1024).tolist()}],
    "steps": 2000,
}
MLP = {
    "name": "bench-mlp-64",
    "problems": [{"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 64}],
    "optimizers": [{"name": "sgd", "lr": np.geomspace(1e-3, 1.0, 64).tolist(), "momentum": 0.9}],
    "steps": 200,
}


@njit
def adam_rosenbrock(x0, lrs, steps, b1, b2, eps, losses):
    """Adam on 2-D Rosenbrock for every run, recording the loss before each update and after the
    last (torch's operation order, bias corrections per step; the reference compiled loop)."""
    for r in range(x0.shape[0]):
        x, y = x0[r, 0], x0[r, 1]
        mx = my = vx = vy = 0.0
        lr = lrs[r]
        for t in range(steps):
            tt = y - x * x
            u = 1.0 - x
            losses[r, t] = 100.0 * (tt * tt) + u * u
            gx = -400.0 * x * tt - 2.0 * u
            gy = 200.0 * tt
            mx = mx + (1.0 - b1) * (gx - mx)
            my = my + (1.0 - b1) * (gy - my)
            vx = vx * b2 + ((1.0 - b2) * gx) * gx
            vy = vy * b2 + ((1.0 - b2) * gy) * gy
            bc1 = 1.0 - b1 ** (t + 1)
            bc2s = (1.0 - b2 ** (t + 1)) ** 0.5
            k = -(lr / bc1)
            x = x + (k * mx) / (np.sqrt(vx) / bc2s + eps)
            y = y + (k * my) / (np.sqrt(vy) / bc2s + eps)
        tt = y - x * x
        u = 1.0 - x
        losses[r, steps] = 100.0 * (tt * tt) + u * u


ROSENBROCK_REPEATS = 9


def rosenbrock_sweep(repeats: int) -> None:
    runs = expand(parse_experiment(ROSENBROCK))
    steps, n = ROSENBROCK["steps"], len(runs)
    lrs = np.array([r.optimizer.lr for r in runs])
    x0 = np.tile([-1.5, 2.0], (n, 1))
    losses = np.empty((n, steps + 1))
    adam_rosenbrock(x0[:1], lrs[:1], 2, 0.9, 0.999, 1e-8, losses[:1])  # compile
    run_batch(runs[:2])  # compile / load our kernels
    t = round_robin(
        repeats,
        {
            "ours": lambda: run_batch(runs),
            "loop": lambda: adam_rosenbrock(x0, lrs, steps, 0.9, 0.999, 1e-8, losses),
        },
    )
    ours, loop = t["ours"][0], t["loop"][0]
    ours_rate, loop_rate = n * steps / ours / 1e6, n * steps / loop / 1e6
    curve = run_batch(runs[:1])[0]["losses"]
    same = np.allclose(curve, losses[0], rtol=1e-9, atol=0)
    print(f"1. Rosenbrock 2-D, adam, {n} runs x {steps} steps, every loss recorded")
    print(f"   run_batch       {ours:8.3f} s  {ours_rate:7.2f} M run-steps/s")
    print(f"   compiled loop   {loop:8.3f} s  {loop_rate:7.2f} M run-steps/s   same curve: {same}")
    print(f"   ours/loop {ours_rate / loop_rate:.3f} (target ≥ 0.5; ≥ 10 M run-steps/s)\n")


def torch_mlp_vmap(eval_steps: int) -> Callable[[], None]:
    """64 stacked MLPs stepped by ``torch.func.vmap``: the same data, batches, shapes and rule."""
    from torch.func import functional_call, grad, vmap

    runs = expand(parse_experiment({**MLP, "eval_every": MLP["steps"]}))
    problem = build_problem(runs[0].problem, [r.seed for r in runs], np.float64)
    x_train = torch.from_numpy(problem.data.X_train.astype(np.float64))
    y_train = torch.from_numpy(problem.data.y_train.astype(np.int64))
    x_test = torch.from_numpy(problem.data.X_test.astype(np.float64))
    y_test = torch.from_numpy(problem.data.y_test.astype(np.int64))
    batches = [torch.from_numpy(problem.batch_indices(t).copy()) for t in range(MLP["steps"])]
    n_in, n_out, width, n = x_train.shape[1], int(y_train.max()) + 1, 64, len(runs)
    model = torch.nn.Sequential(
        torch.nn.Linear(n_in, width), torch.nn.ReLU(), torch.nn.Linear(width, n_out)
    ).double()
    gen = torch.Generator().manual_seed(0)
    params = {
        k: torch.randn((n, *v.shape), dtype=torch.float64, generator=gen) * 0.1
        for k, v in model.named_parameters()
    }
    lrs = torch.tensor([r.optimizer.lr for r in runs], dtype=torch.float64)

    def loss(p: dict[str, Any], x: Any, y: Any) -> Any:
        return torch.nn.functional.cross_entropy(functional_call(model, p, (x,)), y)

    grads = vmap(grad(loss))
    full_loss = vmap(loss, in_dims=(0, None, None))

    def sweep() -> None:
        p = {k: v.clone() for k, v in params.items()}
        bufs: dict[str, Any] = {}
        full_loss(p, x_train, y_train)
        for t, idx in enumerate(batches):
            g = grads(p, x_train[idx], y_train[idx])
            for k in p:
                if k in bufs:
                    bufs[k].mul_(0.9).add_(g[k])
                else:
                    bufs[k] = g[k].clone()
                p[k].sub_(lrs.view(-1, *[1] * (p[k].dim() - 1)) * bufs[k])
            if (t + 1) % eval_steps == 0:
                full_loss(p, x_train, y_train)
        full_loss(p, x_test, y_test)

    return sweep


def mlp_shapes() -> tuple[int, int, int, int, int, int, int]:
    """``(k1, hidden, classes, batch, n_train, n_test, rows)`` of the sweep's network as the
    engine builds it (``rows``: the row blocks its evaluations take the products in)."""
    runs = expand(parse_experiment({**MLP, "eval_every": MLP["steps"]}))
    problem = build_problem(runs[0].problem, [runs[0].seed], np.float64)
    net, data = problem.net, problem.data
    n_train, n_test = len(data.X_train), len(data.X_test)
    return (
        net.n_in + 1, net.hidden[0], net.n_out, MLP["problems"][0]["batch_size"],
        n_train, n_test, net.infer_rows or n_train,
    )  # fmt: skip


def mlp_flops(runs: int) -> float:
    """Floating-point operations of the sweep's matrix products (``2·m·n·k`` per product)."""
    k1, hidden, classes, batch, n_train, n_test, _ = mlp_shapes()
    width = hidden + 1
    forward = k1 * hidden + width * classes  # per example: x1·W₁, a1·W₂
    backward = width * classes + classes * hidden + k1 * hidden  # ∂W₂, ∂a, ∂W₁
    per_run = 2 * (MLP["steps"] * batch * (forward + backward) + (2 * n_train + n_test) * forward)
    return float(runs * per_run)


def dgemm_rate(repeats: int = 5, n: int = 1024) -> float:
    """This CPU's best float64 product rate in FLOP/s: NumPy's product of two ``n × n`` matrices
    on the caller's BLAS threads (one in this bench), best of ``repeats``. The rate has reached
    its plateau at 1,024: 2,048 and 4,096 ran within 3 % of it on the Zen 1 host (17.1, 17.4,
    17.7 GFLOP/s, one thread)."""
    a, b = np.random.default_rng(0).standard_normal((2, n, n))
    out = np.empty((n, n))
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times)


def mlp_products(runs: int) -> Callable[[], None]:
    """The sweep's matrix products alone by ``np.matmul``: each run's five per step, with the
    operands laid out as the engine's compiled step lays them (``out`` is ``(classes, B)``,
    ``dz`` its transpose), then the evaluations' forward products in the engine's row blocks.
    Each call's Python overhead counts too: ~2.6 µs, ~0.17 s of the ~1.8 s (Zen 1 host), where
    the products take 5–11 GFLOP/s at these shapes against 17 on the 1,024² product."""
    k1, hidden, classes, batch, n_train, n_test, rows = mlp_shapes()
    width = hidden + 1
    rng = np.random.default_rng(0)
    x1, a1 = rng.standard_normal((batch, k1)), rng.standard_normal((batch, width))
    w1, w2 = rng.standard_normal((runs, k1, hidden)), rng.standard_normal((runs, width, classes))
    z, da, out = np.empty((batch, hidden)), np.empty((batch, hidden)), np.empty((classes, batch))
    g1, g2 = np.empty((k1, hidden)), np.empty((width, classes))
    x_train, x_test = rng.standard_normal((n_train, k1)), rng.standard_normal((n_test, k1))
    zb, ab = np.empty((rows, hidden)), rng.standard_normal((rows, width))
    logits = np.empty((classes, n_train))

    def products() -> None:
        for _ in range(MLP["steps"]):
            for r in range(runs):
                np.matmul(x1, w1[r], out=z)
                np.matmul(w2[r].T, a1.T, out=out)
                np.matmul(a1.T, out.T, out=g2)
                np.matmul(out.T, w2[r, :hidden].T, out=da)
                np.matmul(x1.T, da, out=g1)
        for x in (x_train, x_train, x_test):
            for r in range(runs):
                for start, stop in row_blocks(len(x), rows):
                    np.matmul(x[start:stop], w1[r], out=zb[: stop - start])
                    np.matmul(w2[r].T, ab[: stop - start].T, out=logits[:, start:stop])

    return products


def round_robin(repeats: int, fns: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each function, the functions taking turns every repeat.

    The CPU time (``time.process_time``, every thread of the process) is the work done; on a
    machine shared with other jobs the wall time also counts the time slices they take, so the
    CPU ratios are the steadier ones (both sides run one thread).
    """
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            cpus[name].append(time.process_time() - cpu)
            walls[name].append(time.perf_counter() - wall)
    return {k: (min(walls[k]), min(cpus[k])) for k in fns}


def mlp_sweep(repeats: int) -> None:
    equal = expand(parse_experiment({**MLP, "eval_every": MLP["steps"]}))
    default = expand(parse_experiment(MLP))
    run_batch(equal[:2])
    fns: dict[str, Callable[[], Any]] = {
        "equal": lambda: run_batch(equal),
        "default": lambda: run_batch(default),
        "products": mlp_products(len(equal)),
    }
    if torch is not None:
        fns["vmap"] = torch_mlp_vmap(MLP["steps"])
        fns["vmap"]()  # warm-up: vmap's first call traces
    t = round_robin(repeats, fns)
    more = round_robin(2 * repeats, {k: fns[k] for k in ("equal", "default")})
    best = {k: (min(t[k][0], v[0]), min(t[k][1], v[1])) for k, v in more.items()}
    evals_equal = len(run_batch(equal[:1])[0]["eval_steps"])
    evals = len(run_batch(default[:1])[0]["eval_steps"])
    print(f"2. MLP-digits [64], sgd momentum, {len(equal)} runs x {MLP['steps']} steps, float64")

    def row(label: str, key: str) -> None:
        print(f"   {label:<40} {t[key][0]:7.3f} s {t[key][1]:7.3f} s")

    # Against vmap, ours takes as many turns as vmap (the first round robin); the share of
    # evaluation, a difference of two of our own times, takes every turn of both cadences.

    print(f"   {'':<40} {'wall':>9} {'CPU':>9}")
    row(f"ours, {evals_equal} evaluations (start and end)", "equal")
    if "vmap" in t:
        row("torch vmap, same evaluations", "vmap")
        ratios = [t["vmap"][i] / t["equal"][i] for i in (0, 1)]
        print(f"   vmap/ours {ratios[0]:.2f} wall, {ratios[1]:.2f} CPU (target ≥ 4)")
    flops, rate = mlp_flops(len(equal)), dgemm_rate()
    floor = flops / rate
    print(
        f"   products floor: {flops / 1e9:.2f} GFLOP ({len(equal)} runs x {MLP['steps']} steps x 5"
        " products, and the forward passes of 2 training-loss and 1 test evaluations);"
        f" best DGEMM {rate / 1e9:.1f} GFLOP/s (1024², float64)"
    )
    print(f"   {'(a) FLOPs ÷ best DGEMM rate':<40} {floor:7.3f} s")
    row("(b) np.matmul at the sweep's shapes", "products")
    if "vmap" in t:
        ceiling = [t["vmap"][i] / floor for i in (0, 1)]
        by_shape = [t["vmap"][i] / t["products"][i] for i in (0, 1)]
        print(
            f"   ceiling on vmap/ours (vmap ÷ floor): (a) {ceiling[0]:.2f} wall, {ceiling[1]:.2f}"
            f" CPU; (b) {by_shape[0]:.2f} wall, {by_shape[1]:.2f} CPU — no implementation doing"
            " these products can exceed (a)'s ratio here"
        )
    shares = [max(0.0, best["default"][i] - best["equal"][i]) / best["default"][i] for i in (0, 1)]
    print(
        f"   ours, default eval_every={default[0].eval_every} ({evals} evaluations) "
        f"{best['default'][0]:7.3f} s {best['default'][1]:7.3f} s: {shares[0]:.0%} wall, "
        f"{shares[1]:.0%} CPU of the time evaluating (target ≤ 25 %)\n"
    )


def cold_warm() -> None:
    example = ROOT / "examples" / "adam-vs-momentum.json"
    cmd = [sys.executable, "-m", "engine", "run", str(example), "--quiet", "--out", os.devnull]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
    print(f"3. python -m engine run {example.relative_to(ROOT)}")
    print(f"   cold numba cache {times[0]:7.2f} s   warm {times[1]:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--rosenbrock", action="store_true", help="only sweep 1")
    parser.add_argument("--mlp", action="store_true", help="only sweep 2")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    if torch is not None:
        torch.set_num_threads(1)
    turns = f"{repeats} (sweep 2; {3 * repeats} for the evaluation share)"
    print(f"one BLAS thread, one torch thread; best of {ROSENBROCK_REPEATS} (sweep 1), {turns}\n")
    with limit_blas_threads():
        if not args.mlp:
            rosenbrock_sweep(ROSENBROCK_REPEATS)
        if args.rosenbrock:
            return
        mlp_sweep(repeats)
    if not args.mlp:
        cold_warm()


if __name__ == "__main__":
    main()
