"""Per-step time of our fused optimizer kernels against torch and a memory-pattern roofline.

Run as ``.venv/bin/python bench/optimizers.py`` (``--quick`` for a short run). For Adam, AdamW,
RMSprop, SGD with momentum and Adagrad at their defaults, on one flat vector (R = 1) of 1e4, 1e6
and 1e7 elements, it times per step, on one thread each:

- ours: ``Optimizer.fast_update_`` (the numba kernel the run loop calls);
- torch fused: ``torch.optim.<X>(fused=True)`` where torch has a fused CPU kernel (Adam, AdamW,
  SGD, Adagrad), else ``foreach=True`` (RMSprop, marked ``*``);
- torch foreach: ``foreach=True``;
- roofline: a numba kernel with the optimizer's memory pattern and no arithmetic to speak of —
  it reads params, grads and the state arrays once and writes params and state once (Adam/AdamW
  4 reads + 3 writes; the others 3 + 2): the time no single-pass kernel can beat;
- floor (the compute floor): our own fused kernel, the one ``ours`` reaches, stepping a buffer of
  4,096 elements that stays in cache, ``ceil(N / 4096)`` times in one compiled call (2,442 times,
  1.0e7 element-updates, for the 1e7 row), scaled to N elements: the time of the kernel's
  arithmetic alone, with memory out of the way. The kernel mutates its state, so no iteration's
  work can be hoisted out of the repeat loop, and the time grows with the count (Zen 1 host,
  Adam: 7.2, 14.6 and 29.4 ms for 1,221, 2,442 and 4,884 calls).
  ``attain = max(roofline, floor)`` is the time no single-pass kernel doing this arithmetic can
  beat on this CPU: a kernel is memory-bound where the roofline is the larger, compute-bound where
  the floor is.

A second table times the optimizers fused later (Rprop, ASGD, the schedule-free pair, LAMB,
LARS, Prodigy, a chain spelling AdamW) at 1e6 against their own NumPy references (``update_``)
and, where torch has them, ``foreach=True``: the speed-up the fused path brings, no roofline
target.

The timings rotate round-robin over the four contenders (the machine is shared: a burst of load
then hurts every contender alike) and keep the best of the repeats; the ratios are ratios of the
bests, and ``(median)`` is the median over the rounds of the roofline's time over ours in the same
round (the two run back to back, so a load burst slows both). At 1e6 and 1e7, where one call takes
milliseconds, each round times a single call and there are three times as many.
At 1e7 every round allocates every contender's arrays anew: whether they land on huge pages
(the kernel's ``madvise`` mode) moved one kernel's time by 20 % from one allocation to another.
Targets of issue 12, ratios printed per row: at 1e7 ``roof/ours ≥ 0.9``; at 1e6
``fused/ours ≥ 1``; at 1e4 ``fused/ours ≥ 2``. ``attain/ours`` beside ``roof/ours`` shows whether
the 1e7 target is within the arithmetic's reach here: where the floor exceeds 0.9 × the roofline
(a slow divide and square root, as on a 2.0 GHz Zen 1 with 128-bit FP units), no kernel doing the
optimizer's arithmetic can meet it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import cache, partial
from typing import Any

import numba
import numpy as np
from numba.core.dispatcher import Dispatcher

from engine.jit import njit
from engine.optimizers import build_optimizer, fused
from engine.optimizers.base import Optimizer, State
from engine.threads import limit_blas_threads

try:
    import torch
except ImportError:  # the bench extra is not installed: ours and the roofline only
    torch = None

# (label, our spec, torch class, torch kwargs, has a fused CPU kernel, state arrays)
CASES: list[tuple[str, dict[str, Any], str, dict[str, Any], bool, int]] = [
    ("adam", {"name": "adam"}, "Adam", {}, True, 2),
    ("adamw", {"name": "adamw"}, "AdamW", {}, True, 2),
    ("rmsprop", {"name": "rmsprop"}, "RMSprop", {}, False, 1),
    ("sgd(momentum=0.9)", {"name": "sgd", "momentum": 0.9}, "SGD", {"momentum": 0.9}, True, 1),
    ("adagrad", {"name": "adagrad"}, "Adagrad", {}, True, 1),
]
LR = 1e-6  # tiny: params stay put over thousands of steps
#: Elements of the compute floor's buffer: its 3 to 5 float32 arrays (48–80 KB) stay in cache.
FLOOR_N = 4096
#: More steps than any row's compute floor takes on one buffer (1e6: 28 rounds of 245 calls).
FLOOR_CHECK_STEPS = 10**4
# (label, our spec, torch class with a foreach kernel or None, torch kwargs)
MORE: list[tuple[str, dict[str, Any], str | None, dict[str, Any]]] = [
    ("rprop", {"name": "rprop"}, "Rprop", {}),
    ("asgd", {"name": "asgd"}, "ASGD", {}),
    ("schedule_free_adamw", {"name": "schedule_free_adamw"}, None, {}),
    ("schedule_free_sgd", {"name": "schedule_free_sgd"}, None, {}),
    ("lamb", {"name": "lamb", "weight_decay": 0.01}, None, {}),
    ("lars", {"name": "lars"}, None, {}),
    ("prodigy", {"name": "prodigy"}, None, {}),
    (
        "chain (adamw)",
        {
            "name": "chain",
            "transforms": [
                {"name": "scale_by_adam"},
                {"name": "add_decayed_weights"},
                {"name": "scale_by_learning_rate"},
            ],
        },
        None,
        {},
    ),
]


@njit
def roofline_1(p, g, s):
    """Reads p, g, s and writes p, s once each (3 reads + 2 writes)."""
    for i in range(p.shape[0]):
        gi = g[i]
        s[i] = s[i] + gi
        p[i] = p[i] - gi


@njit
def roofline_2(p, g, s, t):
    """Reads p, g, s, t and writes p, s, t once each (4 reads + 3 writes)."""
    for i in range(p.shape[0]):
        gi = g[i]
        s[i] = s[i] + gi
        t[i] = t[i] + gi
        p[i] = p[i] - gi


def prepared(
    spec: dict[str, Any], n: int, dtype: type
) -> tuple[Optimizer, np.ndarray, State, np.ndarray, np.ndarray]:
    """The optimizer, gradients, state, parameters and lr column of one run of ``n`` elements.

    Gradients and parameters are standard normal: stepped thousands of times with the same
    gradient, the states converge to normal numbers of the gradient's scale (Adam's and RMSprop's
    ``v`` to ``g²``, momentum's buffer to ``10·g``, Adagrad's sum grows as ``t·g²``), neither
    subnormal nor overflowing, so no step runs into the slow subnormal path
    (:func:`check_floor_state` holds the compute floor to that)."""
    rng = np.random.default_rng(0)
    opt = build_optimizer(spec)
    params = rng.standard_normal((1, n)).astype(dtype)
    grads = rng.standard_normal((1, n)).astype(dtype)
    state = opt.init(params)
    lr = np.full((1, 1), LR, dtype=dtype)  # the run loop's lr column
    return opt, grads, state, params, lr


def ours(spec: dict[str, Any], n: int, dtype: type, reference: bool = False) -> Callable[[], None]:
    """Our step: the fused kernel the run loop calls, or the NumPy reference (``update_``)."""
    opt, grads, state, params, lr = prepared(spec, n, dtype)
    update = opt.update_ if reference else opt.fast_update_
    return lambda: update(grads, state, params, lr)


@cache
def repeater(kernel: Dispatcher) -> Callable[..., None]:
    """A compiled ``repeat(calls, *args)`` that calls ``kernel(*args)`` ``calls`` times.

    One per kernel, the kernel a constant of its code: a single ``repeat(kernel, calls, args)``
    taking the kernel and a tuple of its arguments compiles as well, but numba then types the
    dispatcher and the tuple in Python at every call, ~20 µs against ~3 µs here (Zen 1 host) —
    more than the arithmetic of the 1e4 row's three calls. Not cached on disk: the entry would
    be keyed to this process's kernel object, found by no later process."""

    @numba.njit
    def repeat(calls, *args):
        for _ in range(calls):
            kernel(*args)

    return repeat


def captured(spec: dict[str, Any], n: int, dtype: type) -> tuple[Dispatcher, tuple[Any, ...]]:
    """The compiled kernel that ``fast_update_`` hands a step to, with the arguments of one step
    (the arrays of :func:`prepared`, the coefficient columns of its second step).

    ``fast_update_`` looks its kernel up in :mod:`engine.optimizers.fused` as it calls it, so the
    second step runs with every kernel there wrapped in a recorder; the first step compiles (or
    loads) the kernels beforehand, while their module's names are their own."""
    opt, grads, state, params, lr = prepared(spec, n, dtype)
    opt.fast_update_(grads, state, params, lr)
    kernels = {name: k for name, k in vars(fused).items() if isinstance(k, Dispatcher)}
    calls: list[tuple[Dispatcher, tuple[Any, ...]]] = []

    def recorder(kernel: Dispatcher) -> Callable[..., Any]:
        def record(*args: Any) -> Any:
            calls.append((kernel, args))
            return kernel(*args)

        return record

    try:
        for name, kernel in kernels.items():
            setattr(fused, name, recorder(kernel))
        opt.fast_update_(grads, state, params, lr)
    finally:
        for name, kernel in kernels.items():
            setattr(fused, name, kernel)
    if len(calls) != 1:
        raise RuntimeError(f"{spec['name']}: a step made {len(calls)} kernel calls, not one")
    return calls[0]


def compute_floor(spec: dict[str, Any], n: int, dtype: type) -> Callable[[], None]:
    """Our kernel stepping a :data:`FLOOR_N`-element buffer ``ceil(n / FLOOR_N)`` times in one
    compiled call: ``n`` elements' arithmetic (scaled by :func:`floor_scale`) without the memory
    traffic."""
    kernel, args = captured(spec, FLOOR_N, dtype)
    calls, repeat = -(-n // FLOOR_N), repeater(kernel)
    return lambda: repeat(calls, *args)


def floor_scale(n: int) -> float:
    """From the time of :func:`compute_floor`'s call to the time of ``n`` elements."""
    return n / (-(-n // FLOOR_N) * FLOOR_N)


def check_floor_state(spec: dict[str, Any], dtype: type) -> None:
    """Raise if the compute floor's element arrays leave the normal numbers (subnormal, inf or
    NaN) within :data:`FLOOR_CHECK_STEPS` steps: the floor would then time the slow path."""
    kernel, args = captured(spec, FLOOR_N, dtype)
    repeater(kernel)(FLOOR_CHECK_STEPS, *args)
    tiny = np.finfo(dtype).tiny
    for a in args:
        if isinstance(a, np.ndarray) and a.size == FLOOR_N:
            values = np.abs(a[a != 0])
            if not np.all(np.isfinite(values)) or np.any(values < tiny):
                raise RuntimeError(f"{spec['name']}: the compute floor's state left the normals")


def theirs(cls: str, kwargs: dict[str, Any], n: int, mode: str) -> Callable[[], None]:
    gen = torch.Generator().manual_seed(0)
    param = torch.randn(n, dtype=torch.float32, generator=gen).requires_grad_()
    param.grad = torch.randn(n, dtype=torch.float32, generator=gen)
    opt = getattr(torch.optim, cls)([param], lr=LR, **{mode: True}, **kwargs)
    return opt.step


def roofline(n: int, dtype: type, states: int) -> Callable[[], None]:
    arrays = [np.ones(n, dtype=dtype) * 1e-30 for _ in range(2 + states)]
    kernel = roofline_2 if states == 2 else roofline_1
    return lambda: kernel(*arrays)


def round_robin(
    makers: dict[str, Callable[[], Callable[[], None]]], calls: int, repeats: int, fresh: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Per contender (``makers`` build its step, arrays included), the best over ``repeats``
    rounds of the mean time of ``calls`` calls (contenders interleaved), and the median over the
    rounds of its time relative to the first contender's in the same round: a load burst slows the
    contenders of one round alike, so the median ratio is steadier than the ratio of two bests
    taken at different moments.

    ``fresh``: every round builds every contender anew, so each draws its memory again. At 1e7 a
    contender's arrays (40 MB each) land on huge pages or not as the kernel has them to give
    (``madvise`` mode): the same kernel on arrays allocated in another order measured 6.0 and
    7.7 ms in one process (Intel host), enough to move a ratio by 20 % if kept for every round."""
    steps = {name: make() for name, make in makers.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeats + 1):
        if fresh and round_:
            steps.clear()  # free the last round's arrays before drawing new ones
            steps.update((name, make()) for name, make in makers.items())
        for name, step in steps.items():
            if fresh or not round_:
                step()  # warm-up (compilation, first touch of the pages)
            if not round_:
                continue
            start = time.perf_counter()
            for _ in range(calls):
                step()
            times[name].append((time.perf_counter() - start) / calls)
    first = np.array(next(iter(times.values())))
    best = {name: min(t) for name, t in times.items()}
    return best, {name: float(np.median(np.array(t) / first)) for name, t in times.items()}


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    if torch is not None:
        torch.set_num_threads(1)
        print(f"torch {torch.__version__}, 1 thread; * = no fused CPU kernel, foreach instead")
    else:
        print("torch not installed: torch columns left empty")
    print(
        f"float32, R = 1; ms per step, best of {repeats} round-robin repeats"
        f" ({3 * repeats} single calls at 1e6 and 1e7, at 1e7 on arrays allocated anew each round);"
        " (median): of the rounds' roof/ours"
    )
    print(
        f"floor: our kernel's arithmetic alone ({FLOOR_N} elements in cache, stepped"
        f" ceil(N/{FLOOR_N}) times in one call, scaled to N); attain = max(roofline, floor);"
        " floor > roofline/0.9 puts roof/ours ≥ 0.9 beyond this CPU's arithmetic\n"
    )
    for _, spec, *_ in CASES:
        check_floor_state(spec, np.float32)
    header = (
        f"{'N':>6} {'optimizer':18} {'ours':>8} {'fused':>8} {'foreach':>8} {'roofline':>8}"
        f" {'floor':>8} {'fused/ours':>10} {'roof/ours':>9} {'(median)':>8} {'attain/ours':>11}"
    )
    print(header)
    print("-" * len(header))
    with limit_blas_threads():
        for n in (10**4, 10**6, 10**7):
            # Large N: single calls, three times the rounds (a load burst spoils one call of one
            # contender, not a block of calls; the best single call is the steadiest estimate).
            calls = max(1, min(2000, 10**7 // (20 * n)))
            rounds = repeats * 3 if calls == 1 else repeats
            for label, spec, cls, kwargs, has_fused, states in CASES:
                makers = {
                    "ours": partial(ours, spec, n, np.float32),
                    "roof": partial(roofline, n, np.float32, states),
                    "floor": partial(compute_floor, spec, n, np.float32),
                }
                if torch is not None:
                    mode = "fused" if has_fused else "foreach"
                    makers["fused"] = partial(theirs, cls, kwargs, n, mode)
                    makers["foreach"] = partial(theirs, cls, kwargs, n, "foreach")
                t, ratio = round_robin(makers, calls, rounds, fresh=n >= 10**7)
                fused, foreach = t.get("fused"), t.get("foreach")
                floor = t["floor"] * floor_scale(n)
                print(
                    f"{n:>6.0e} {label + ('' if has_fused else '*'):18} {fmt(t['ours'] * 1e3):>8}"
                    f" {fmt(None if fused is None else fused * 1e3):>8}"
                    f" {fmt(None if foreach is None else foreach * 1e3):>8}"
                    f" {fmt(t['roof'] * 1e3):>8} {fmt(floor * 1e3):>8}"
                    f" {fmt(None if fused is None else fused / t['ours'], 2):>10}"
                    f" {fmt(t['roof'] / t['ours'], 2):>9} {fmt(ratio['roof'], 2):>8}"
                    f" {fmt(max(t['roof'], floor) / t['ours'], 2):>11}"
                )
        more(repeats)


def more(repeats: int, n: int = 10**6) -> None:
    """The later-fused optimizers: fused vs their NumPy reference (and torch foreach)."""
    print(f"\nN = {n:.0e}, float32; ms per step\n")
    header = f"{'optimizer':20} {'fused':>8} {'numpy':>8} {'foreach':>8} {'numpy/fused':>11}"
    print(header)
    print("-" * len(header))
    for label, spec, cls, kwargs in MORE:
        makers = {
            "fused": partial(ours, spec, n, np.float32),
            "numpy": partial(ours, spec, n, np.float32, True),
        }
        if torch is not None and cls is not None:
            makers["foreach"] = partial(theirs, cls, kwargs, n, "foreach")
        t, _ = round_robin(makers, 10, repeats, fresh=False)
        foreach = t.get("foreach")
        print(
            f"{label:20} {fmt(t['fused'] * 1e3):>8} {fmt(t['numpy'] * 1e3):>8}"
            f" {fmt(None if foreach is None else foreach * 1e3):>8}"
            f" {fmt(t['numpy'] / t['fused'], 2):>11}"
        )


if __name__ == "__main__":
    main()
