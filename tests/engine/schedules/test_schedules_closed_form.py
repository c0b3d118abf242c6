"""Closed-form schedules: the vectorised preview equals the scalar ``lr_at`` bit for bit, agrees
with independent step-by-step (recursive / incremental) implementations, and behaves at the
boundary steps: the first, the last of a phase, and far past the end."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from engine.schedules import ClosedForm, Schedule, ScheduleSpec, build_schedule
from engine.schedules.base import powers

ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)
FAR = [10**6, 10**6 + 1, 123_456_789, 10**9]


def build(doc: dict[str, Any], lr: float = 0.1) -> Schedule:
    return build_schedule(ADAPTER.validate_python(doc), lr)


# One or more settings of every closed-form schedule (warm-ups around several inner schedules).
SAMPLES: list[dict[str, Any]] = [
    {"name": "constant"},
    {"name": "step", "step_size": 7, "gamma": 0.5},
    {"name": "multistep", "milestones": [3, 50, 51, 200], "gamma": 0.2},
    {"name": "exponential", "gamma": 0.97},
    {"name": "linear", "start_factor": 0.25, "end_factor": 0.0, "total_iters": 90},
    {"name": "polynomial", "total_iters": 120, "power": 1.7},
    {"name": "cosine", "T_max": 64, "eta_min": 0.002},
    {"name": "cosine_warm_restarts", "T_0": 6},
    {"name": "cosine_warm_restarts", "T_0": 4, "T_mult": 3, "eta_min": 1e-3},
    {"name": "cyclic", "max_lr": 1.0, "step_size_up": 13},
    {
        "name": "cyclic",
        "base_lr": 0.01,
        "max_lr": 0.3,
        "step_size_up": 5,
        "step_size_down": 11,
        "mode": "triangular2",
    },
    {"name": "cyclic", "max_lr": 0.6, "step_size_up": 9, "mode": "exp_range", "gamma": 0.995},
    {"name": "one_cycle", "total_steps": 150},
    {
        "name": "one_cycle",
        "max_lr": 2.0,
        "total_steps": 97,
        "anneal_strategy": "linear",
        "three_phase": True,
        "pct_start": 0.35,
    },
    {"name": "piecewise_linear", "total_steps": 180},
    {
        "name": "piecewise_linear",
        "total_steps": 77,
        "hold_fraction": 0.0,
        "decay_fraction": 1.0,
        "start_factor": 0.5,
        "end_factor": 2.0,
    },
    {"name": "sawtooth"},
    {"name": "sawtooth", "start_factor": 0.1, "end_factor": 1.0, "cycle_length": 9},
    {"name": "warmup", "warmup_steps": 17},
    {
        "name": "warmup",
        "warmup_steps": 9,
        "start_factor": 0.0,
        "then": {"name": "one_cycle", "total_steps": 100, "three_phase": True},
    },
    {
        "name": "warmup",
        "warmup_steps": 30,
        "then": {"name": "cosine_warm_restarts", "T_0": 5, "T_mult": 2},
    },
]


SAMPLES += [
    {"name": "constant_factor", "factor": 0.25, "total_iters": 17},
    {"name": "wsd", "stable_steps": 50, "decay_steps": 100},
    {
        "name": "wsd",
        "warmup_steps": 13,
        "stable_steps": 0,
        "decay_steps": 77,
        "decay": "cosine",
        "start_factor": 0.5,
        "end_factor": 0.1,
    },
    {"name": "wsd", "warmup_steps": 9, "stable_steps": 31, "decay_steps": 3, "decay": "sqrt"},
    {"name": "inverse_sqrt"},
    {"name": "inverse_sqrt", "warmup_steps": 40},
    {
        "name": "sequential",
        "schedulers": [
            {"name": "linear", "start_factor": 0.1, "total_iters": 10},
            {"name": "cosine_warm_restarts", "T_0": 7, "T_mult": 2},
            {"name": "wsd", "stable_steps": 5, "decay_steps": 50, "decay": "sqrt"},
        ],
        "milestones": [10, 130],
    },
]


def sample_id(doc: dict[str, Any]) -> str:
    inner = doc.get("then", {}).get("name")
    return doc["name"] + (f"+{inner}" if inner else "")


@pytest.mark.parametrize("doc", SAMPLES, ids=[sample_id(d) for d in SAMPLES])
def test_preview_equals_the_lr_at_loop_exactly(doc: dict[str, Any]) -> None:
    schedule = build(doc, 0.3)
    assert not schedule.reads_loss
    n = 400
    preview = schedule.preview(n)
    assert preview.shape == (n,) and preview.dtype == np.float64
    np.testing.assert_array_equal(preview, [schedule.lr_at(t) for t in range(n)])
    np.testing.assert_array_equal(schedule.preview(n), preview)  # querying changed nothing
    np.testing.assert_array_equal(schedule.preview(37), preview[:37])
    assert schedule.preview(0).shape == (0,)
    if isinstance(schedule, ClosedForm):
        far = np.array(FAR, dtype=np.int64)
        np.testing.assert_array_equal(schedule.lrs_at(far), [schedule.lr_at(t) for t in FAR])
    assert all(math.isfinite(schedule.lr_at(t)) and schedule.lr_at(t) >= 0 for t in FAR)


@pytest.mark.parametrize("doc", SAMPLES[:3], ids=[sample_id(d) for d in SAMPLES[:3]])
def test_negative_steps_are_rejected(doc: dict[str, Any]) -> None:
    schedule = build(doc)
    with pytest.raises(ValueError, match=">= 0"):
        schedule.lr_at(-1)
    with pytest.raises(ValueError, match=">= 0"):
        schedule.preview(-5)


# ---- independent step-by-step implementations ------------------------------------------------
# Each yields the lr of updates 0, 1, 2, … by carrying state from one step to the next, the way
# PyTorch's chainable schedulers do, instead of evaluating a closed form at t.


def rec_step(lr: float, step_size: int, gamma: float) -> Iterator[float]:
    t = 0
    while True:
        if t > 0 and t % step_size == 0:
            lr *= gamma
        yield lr
        t += 1


def rec_multistep(lr: float, milestones: list[int], gamma: float) -> Iterator[float]:
    t = 0
    while True:
        if t in milestones:
            lr *= gamma
        yield lr
        t += 1


def rec_linear(lr: float, start: float, end: float, total: int) -> Iterator[float]:
    lr *= start
    yield lr
    for t in range(1, total + 1):
        lr *= 1.0 + (end - start) / (total * start + (t - 1) * (end - start))
        yield lr
    while True:
        yield lr


def rec_polynomial(lr: float, total: int, power: float) -> Iterator[float]:
    yield lr
    for t in range(1, total + 1):
        lr *= ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** power
        yield lr
    while True:
        yield lr


def rec_cosine(lr: float, t_max: int, eta_min: float) -> Iterator[float]:
    base, t = lr, 0
    while True:
        yield lr
        t += 1
        if (t - 1 - t_max) % (2 * t_max) == 0:
            lr += (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        else:
            ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
            lr = eta_min + ratio * (lr - eta_min)


def rec_warm_restarts(lr: float, t_0: int, t_mult: int, eta_min: float) -> Iterator[float]:
    t_cur, t_i = 0, t_0
    while True:
        yield eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
        t_cur += 1
        if t_cur == t_i:
            t_cur, t_i = 0, t_i * t_mult


def rec_cyclic(base: float, peak: float, up: int, down: int, mode: str, gamma: float):
    """Walks up ``up`` steps and down ``down`` steps, counting whole cycles and total steps."""
    cycle, pos, t = 0, 0, 0
    while True:
        h = pos / up if pos <= up else (up + down - pos) / down
        scale = {"triangular": 1.0, "triangular2": 0.5**cycle, "exp_range": gamma**t}[mode]
        yield base + (peak - base) * h * scale
        pos, t = pos + 1, t + 1
        if pos == up + down:
            pos, cycle = 0, cycle + 1


def rec_one_cycle(
    peak: float, total: int, pct: float, strategy: str, div: float, final: float, three: bool
) -> Iterator[float]:
    """Walks the phase list, switching phase when the step passes the current phase's end."""
    initial = peak / div
    low = initial / final
    ends = (
        [pct * total - 1, 2 * pct * total - 2, total - 1] if three else [pct * total - 1, total - 1]
    )
    levels = [initial, peak, initial, low] if three else [initial, peak, low]
    phase, start_step = 0, 0.0
    for t in range(total):
        while t > ends[phase]:
            start_step, phase = ends[phase], phase + 1
        p = (t - start_step) / (ends[phase] - start_step)
        a, b = levels[phase], levels[phase + 1]
        yield (
            b + (a - b) * (1 + math.cos(math.pi * p)) / 2 if strategy == "cos" else a + (b - a) * p
        )
    while True:
        yield low if strategy == "cos" else levels[-1]


def rec_sawtooth(lr: float, start: float, end: float, length: int) -> Iterator[float]:
    a, b = lr * start, lr * end
    pos = 0
    while True:
        yield a - (a - b) * pos / length
        pos = pos + 1 if pos + 1 < length else 0


def rec_piecewise(lr: float, total: int, hold: float, decay: float, start: float, end: float):
    c, d = int(hold * total), int(decay * total)
    a, b = lr * start, lr * end
    value = a
    for _ in range(c):
        yield a
    for _ in range(d):
        yield value
        value -= (a - b) / d
    while True:
        yield b


def rec_warmup(lr: float, steps: int, start: float, then: Iterator[float]) -> Iterator[float]:
    factor = start
    for _ in range(steps):
        yield lr * factor
        factor += (1.0 - start) / steps
    yield from then


def rec_constant_factor(lr: float, factor: float, total: int) -> Iterator[float]:
    for _ in range(total):
        yield lr * factor
    while True:
        yield lr


def rec_wsd(
    lr: float, warm: int, stable: int, decay: int, shape: str, start: float, end: float
) -> Iterator[float]:
    """Warm-up by increments, a flat stretch, then the decay's progress advanced one step at a
    time (the cosine by the angle-addition recursion of cos(π k/D))."""
    yield from rec_warmup(lr, warm, start, iter(()))
    for _ in range(stable):
        yield lr
    cos_k, sin_k = 1.0, 0.0
    c, s = math.cos(math.pi / decay), math.sin(math.pi / decay)
    for k in range(decay + 1):
        u = k / decay
        factor = {
            "linear": 1.0 - (1.0 - end) * u,
            "cosine": end + (1.0 - end) * (1.0 + cos_k) / 2,
            "sqrt": end + (1.0 - end) * (1.0 - math.sqrt(u)),
        }[shape]
        yield lr * factor
        cos_k, sin_k = cos_k * c - sin_k * s, sin_k * c + cos_k * s
    while True:
        yield lr * end


def rec_inverse_sqrt(lr: float, warm: int) -> Iterator[float]:
    """Up by ``lr/W`` per step to the peak, then each step multiplies by ``√(n/(n+1))``."""
    value, n = 0.0, 0
    while n < warm:
        value += lr / warm
        n += 1
        yield value
    value = lr
    while True:
        value *= math.sqrt(n / (n + 1))
        n += 1
        yield value


def rec_sequential(parts: list[Iterator[float]], milestones: list[int]) -> Iterator[float]:
    bounds = [0, *milestones]
    for part, start, stop in zip(parts[:-1], bounds[:-1], milestones, strict=True):
        for _ in range(stop - start):
            yield next(part)
    yield from parts[-1]


ORACLES: list[tuple[dict[str, Any], Callable[[float], Iterator[float]]]] = [
    ({"name": "step", "step_size": 7, "gamma": 0.5}, lambda lr: rec_step(lr, 7, 0.5)),
    ({"name": "step", "step_size": 1, "gamma": 0.93}, lambda lr: rec_step(lr, 1, 0.93)),
    ({"name": "exponential", "gamma": 1.004}, lambda lr: rec_step(lr, 1, 1.004)),
    (
        {"name": "multistep", "milestones": [3, 50, 51, 200], "gamma": 0.2},
        lambda lr: rec_multistep(lr, [3, 50, 51, 200], 0.2),
    ),
    (
        {"name": "linear", "start_factor": 0.25, "end_factor": 0.0, "total_iters": 90},
        lambda lr: rec_linear(lr, 0.25, 0.0, 90),
    ),
    (
        {"name": "linear", "start_factor": 1.0, "end_factor": 0.4, "total_iters": 250},
        lambda lr: rec_linear(lr, 1.0, 0.4, 250),
    ),
    (
        {"name": "polynomial", "total_iters": 120, "power": 1.7},
        lambda lr: rec_polynomial(lr, 120, 1.7),
    ),
    ({"name": "cosine", "T_max": 64, "eta_min": 0.002}, lambda lr: rec_cosine(lr, 64, 0.002)),
    ({"name": "cosine", "T_max": 33}, lambda lr: rec_cosine(lr, 33, 0.0)),
    ({"name": "cosine_warm_restarts", "T_0": 6}, lambda lr: rec_warm_restarts(lr, 6, 1, 0.0)),
    (
        {"name": "cosine_warm_restarts", "T_0": 4, "T_mult": 3, "eta_min": 1e-3},
        lambda lr: rec_warm_restarts(lr, 4, 3, 1e-3),
    ),
    (
        {"name": "cosine_warm_restarts", "T_0": 1, "T_mult": 2},
        lambda lr: rec_warm_restarts(lr, 1, 2, 0.0),
    ),
    (
        {"name": "cyclic", "max_lr": 1.0, "step_size_up": 13},
        lambda lr: rec_cyclic(lr, 1.0, 13, 13, "triangular", 1.0),
    ),
    (
        {
            "name": "cyclic",
            "base_lr": 0.01,
            "max_lr": 0.3,
            "step_size_up": 5,
            "step_size_down": 11,
            "mode": "triangular2",
        },
        lambda lr: rec_cyclic(0.01, 0.3, 5, 11, "triangular2", 1.0),
    ),
    (
        {
            "name": "cyclic",
            "max_lr": 0.6,
            "step_size_up": 9,
            "step_size_down": 4,
            "mode": "exp_range",
            "gamma": 0.995,
        },
        lambda lr: rec_cyclic(lr, 0.6, 9, 4, "exp_range", 0.995),
    ),
    (
        {"name": "one_cycle", "total_steps": 150},
        lambda lr: rec_one_cycle(lr, 150, 0.3, "cos", 25.0, 1e4, False),
    ),
    (
        {
            "name": "one_cycle",
            "max_lr": 2.0,
            "total_steps": 97,
            "anneal_strategy": "linear",
            "three_phase": True,
            "pct_start": 0.35,
        },
        lambda lr: rec_one_cycle(2.0, 97, 0.35, "linear", 25.0, 1e4, True),
    ),
    (
        {"name": "one_cycle", "total_steps": 120, "three_phase": True, "div_factor": 4.0},
        lambda lr: rec_one_cycle(lr, 120, 0.3, "cos", 4.0, 1e4, True),
    ),
    (
        {"name": "sawtooth", "start_factor": 0.1, "end_factor": 1.0, "cycle_length": 9},
        lambda lr: rec_sawtooth(lr, 0.1, 1.0, 9),
    ),
    (
        {"name": "piecewise_linear", "total_steps": 180},
        lambda lr: rec_piecewise(lr, 180, 0.2, 0.6, 1.0, 0.01),
    ),
    (
        {
            "name": "piecewise_linear",
            "total_steps": 77,
            "hold_fraction": 0.1,
            "decay_fraction": 0.5,
            "start_factor": 0.5,
            "end_factor": 2.0,
        },
        lambda lr: rec_piecewise(lr, 77, 0.1, 0.5, 0.5, 2.0),
    ),
    (
        {
            "name": "warmup",
            "warmup_steps": 12,
            "start_factor": 0.1,
            "then": {"name": "cosine", "T_max": 100},
        },
        lambda lr: rec_warmup(lr, 12, 0.1, rec_cosine(lr, 100, 0.0)),
    ),
    (
        {"name": "constant_factor", "factor": 0.25, "total_iters": 17},
        lambda lr: rec_constant_factor(lr, 0.25, 17),
    ),
    (
        {"name": "wsd", "warmup_steps": 20, "stable_steps": 100, "decay_steps": 80},
        lambda lr: rec_wsd(lr, 20, 100, 80, "linear", 0.0, 0.0),
    ),
    (
        {
            "name": "wsd",
            "warmup_steps": 7,
            "stable_steps": 30,
            "decay_steps": 200,
            "decay": "cosine",
            "start_factor": 0.2,
            "end_factor": 0.01,
        },
        lambda lr: rec_wsd(lr, 7, 30, 200, "cosine", 0.2, 0.01),
    ),
    (
        {
            "name": "wsd",
            "stable_steps": 250,
            "decay_steps": 60,
            "decay": "sqrt",
            "end_factor": 0.3,
        },
        lambda lr: rec_wsd(lr, 0, 250, 60, "sqrt", 0.0, 0.3),
    ),
    ({"name": "inverse_sqrt"}, lambda lr: rec_inverse_sqrt(lr, 1)),
    ({"name": "inverse_sqrt", "warmup_steps": 64}, lambda lr: rec_inverse_sqrt(lr, 64)),
    (
        {
            "name": "sequential",
            "schedulers": [
                {"name": "constant_factor", "factor": 0.5, "total_iters": 3},
                {"name": "step", "step_size": 7, "gamma": 0.5},
                {"name": "cosine", "T_max": 64, "eta_min": 0.002},
            ],
            "milestones": [40, 150],
        },
        lambda lr: rec_sequential(
            [rec_constant_factor(lr, 0.5, 3), rec_step(lr, 7, 0.5), rec_cosine(lr, 64, 0.002)],
            [40, 150],
        ),
    ),
]


@pytest.mark.parametrize(("doc", "oracle"), ORACLES, ids=[sample_id(d) for d, _ in ORACLES])
def test_closed_form_agrees_with_the_step_by_step_form(
    doc: dict[str, Any], oracle: Callable[[float], Iterator[float]]
) -> None:
    lr, n = 0.2, 420
    stepped = oracle(lr)
    expected = np.array([next(stepped) for _ in range(n)])
    np.testing.assert_allclose(build(doc, lr).preview(n), expected, rtol=1e-11, atol=1e-15)


# ---- boundary steps -----------------------------------------------------------------------------


def test_first_steps_start_where_pytorch_starts() -> None:
    lr = 0.4
    assert build({"name": "constant"}, lr).lr_at(0) == lr
    assert build({"name": "step", "step_size": 5}, lr).lr_at(0) == lr
    assert build({"name": "exponential", "gamma": 0.5}, lr).lr_at(0) == lr
    assert build({"name": "multistep", "milestones": [1]}, lr).lr_at(0) == lr
    assert build({"name": "linear"}, lr).lr_at(0) == lr * (1.0 / 3)
    assert build({"name": "polynomial"}, lr).lr_at(0) == lr
    assert build({"name": "cosine", "T_max": 9, "eta_min": 0.1}, lr).lr_at(0) == lr
    assert build({"name": "cosine_warm_restarts", "T_0": 9}, lr).lr_at(0) == lr
    assert build({"name": "cyclic", "max_lr": 1.0}, lr).lr_at(0) == lr
    assert build({"name": "cyclic", "base_lr": 0.01, "max_lr": 1.0}, lr).lr_at(0) == 0.01
    # one_cycle's cosine anneal evaluates b + (a − b)/2·(1 + cos 0), as PyTorch does: a to rounding
    one_cycle = build({"name": "one_cycle", "total_steps": 100}, lr).lr_at(0)
    assert one_cycle == pytest.approx(lr / 25, rel=1e-15)
    one_cycle = build({"name": "one_cycle", "max_lr": 1.0, "total_steps": 10}, lr).lr_at(0)
    assert one_cycle == pytest.approx(0.04, rel=1e-15)
    assert build({"name": "warmup", "warmup_steps": 4, "start_factor": 0.0}, lr).lr_at(0) == 0.0


def test_decays_hit_their_milestones_exactly() -> None:
    step = build({"name": "step", "step_size": 10, "gamma": 0.5}, 0.8)
    assert [step.lr_at(t) for t in (0, 9, 10, 19, 20, 29, 30)] == [
        0.8,
        0.8,
        0.4,
        0.4,
        0.2,
        0.2,
        0.1,
    ]
    multi = build({"name": "multistep", "milestones": [2, 5], "gamma": 0.5}, 1.0)
    assert multi.preview(7).tolist() == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    exp = build({"name": "exponential", "gamma": 0.5}, 0.8)
    assert exp.preview(4).tolist() == [0.8, 0.4, 0.2, 0.1]
    assert exp.lr_at(10**9) == 0.0  # underflows cleanly
    lin = build({"name": "linear", "start_factor": 0.5, "end_factor": 1.0, "total_iters": 4}, 1.0)
    assert lin.preview(7).tolist() == [0.5, 0.625, 0.75, 0.875, 1.0, 1.0, 1.0]
    assert lin.lr_at(10**9) == 1.0


def test_polynomial_reaches_zero_at_total_iters_and_stays() -> None:
    poly = build({"name": "polynomial", "total_iters": 4, "power": 2.0}, 1.0)
    assert poly.preview(6).tolist() == [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    assert poly.lr_at(10**9) == 0.0


def test_cosine_reaches_eta_min_at_t_max_and_rises_again_past_it() -> None:
    cos = build({"name": "cosine", "T_max": 10, "eta_min": 0.01}, 0.11)
    assert cos.lr_at(10) == pytest.approx(0.01, abs=1e-17)
    assert cos.lr_at(5) == pytest.approx(0.06, rel=1e-15)
    np.testing.assert_allclose(
        cos.lrs_at(np.arange(11, 21)), cos.lrs_at(np.arange(9, -1, -1)), rtol=1e-14
    )  # mirror image: period 2·T_max
    assert cos.lr_at(20) == pytest.approx(0.11, rel=1e-15)
    assert cos.lr_at(2 * 10 * 50_000_000) == pytest.approx(0.11, rel=1e-12)


def test_warm_restarts_jump_back_at_exact_integer_cycle_starts() -> None:
    # T_0 = 1, T_mult = 3: cycles start at 0, 1, 4, 13, 40, 121, 364, …  PyTorch's step(epoch)
    # path finds the cycle with int(log(...)), and log(243, 3) rounds to 4.999…: it would put
    # t = 121 at the end of the previous cycle. The counting (and our) answer is a restart.
    assert int(math.log(121 / 1 * (3 - 1) + 1, 3)) == 4
    sgdr = build({"name": "cosine_warm_restarts", "T_0": 1, "T_mult": 3}, 0.5)
    starts = [0, 1, 4, 13, 40, 121, 364, 1093, 3280]
    assert all(sgdr.lr_at(s) == 0.5 for s in starts)
    for i, s in enumerate(starts[1:]):  # the last step of cycle i (length 3^i)
        length = 3**i
        expected = 0.5 * (1 + math.cos(math.pi * (length - 1) / length)) / 2
        assert sgdr.lr_at(s - 1) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    # in the middle of cycle i (length 3^i) the lr is exactly half way
    assert sgdr.lr_at(121 + 243 // 2) == pytest.approx(0.25, rel=1e-2)
    big = 10**12
    assert 0.0 <= sgdr.lr_at(big) <= 0.5


def test_cyclic_corners() -> None:
    tri = build(
        {"name": "cyclic", "base_lr": 0.1, "max_lr": 0.5, "step_size_up": 4, "step_size_down": 2},
        1.0,
    )
    expected = [0.1, 0.2, 0.3, 0.4, 0.5, 0.3, 0.1, 0.2]
    np.testing.assert_allclose(tri.preview(8), expected, rtol=1e-15)
    tri2 = build(
        {
            "name": "cyclic",
            "base_lr": 0.0625,
            "max_lr": 1.0625,
            "step_size_up": 2,
            "mode": "triangular2",
        },
        1.0,
    )
    peaks = [tri2.lr_at(2 + 4 * k) for k in range(4)]
    assert peaks == [1.0625, 0.5625, 0.3125, 0.1875]
    assert tri2.lr_at(4 * 5000 + 2) == 0.0625  # amplitude halved to nothing, no overflow
    exp = build(
        {
            "name": "cyclic",
            "base_lr": 0.25,
            "max_lr": 1.25,
            "step_size_up": 1,
            "mode": "exp_range",
            "gamma": 0.5,
        },
        1.0,
    )
    assert exp.preview(6).tolist() == [0.25, 0.75, 0.25, 0.375, 0.25, 0.28125]  # peaks · γ^t


def test_one_cycle_phases_and_the_end() -> None:
    oc = build(
        {
            "name": "one_cycle",
            "max_lr": 1.0,
            "total_steps": 101,
            "pct_start": 0.5,
            "anneal_strategy": "linear",
            "div_factor": 10.0,
            "final_div_factor": 10.0,
        },
        9.9,
    )
    # phase 1 ends at pct·T − 1 = 49.5, phase 2 at T − 1 = 100
    assert oc.lr_at(0) == 0.1
    assert oc.lr_at(49) == pytest.approx(0.1 + 0.9 * 49 / 49.5, rel=1e-15)
    assert oc.lr_at(50) == pytest.approx(1.0 + (0.01 - 1.0) * 0.5 / 50.5, rel=1e-15)
    last = oc.lr_at(100)
    assert last == pytest.approx(0.01, rel=1e-14)
    assert oc.preview(400)[100:].tolist() == [last] * 300
    assert oc.lr_at(10**9) == last
    three = build(
        {
            "name": "one_cycle",
            "max_lr": 1.0,
            "total_steps": 200,
            "pct_start": 0.25,
            "three_phase": True,
        },
        0.1,
    )
    lrs = three.preview(200)
    assert int(np.argmax(lrs)) == 49 and lrs[49] == pytest.approx(1.0, rel=1e-3)
    assert lrs[98] == pytest.approx(0.04, rel=1e-12)  # back at initial after 2·pct·T − 2
    assert lrs[199] == 0.04 / 1e4
    np.testing.assert_allclose(lrs[:49], lrs[98:49:-1], rtol=1e-12)  # first two phases mirror


def test_piecewise_and_sawtooth_far_past_the_end() -> None:
    pw = build({"name": "piecewise_linear", "total_steps": 100}, 0.5)
    assert pw.lr_at(10**9) == 0.5 * 0.01
    saw = build({"name": "sawtooth", "cycle_length": 20}, 0.5)
    assert saw.lr_at(20 * 10**8) == 0.5
    assert saw.lr_at(20 * 10**8 + 10) == pytest.approx(0.5 * 0.55, rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    doc=st.sampled_from(SAMPLES),
    lr=st.floats(1e-6, 10.0),
    ts=st.lists(st.integers(0, 10**7), min_size=1, max_size=20),
)
def test_any_steps_in_any_order_match_the_scalar_queries(
    doc: dict[str, Any], lr: float, ts: list[int]
) -> None:
    schedule = build(doc, lr)
    ordered = np.array(ts, dtype=np.int64)
    if isinstance(schedule, ClosedForm):
        np.testing.assert_array_equal(schedule.lrs_at(ordered), [schedule.lr_at(t) for t in ts])
    values = [schedule.lr_at(t) for t in ts]
    assert values == [schedule.lr_at(t) for t in ts]  # pure: asking twice gives the same
    assert all(v >= 0 and math.isfinite(v) for v in values)


@settings(max_examples=60, deadline=None)
@given(gamma=st.floats(1e-3, 1.0), scale=st.integers(1, 10**6))
def test_powers_equal_numpy_power_through_the_underflow(gamma: float, scale: int) -> None:
    """The fast decay powers skip libm's underflow path but return exactly ``np.power``'s values."""
    k = np.concatenate([np.arange(0, 3000), np.arange(0, 2000) * scale, [10**12]]).astype(np.int64)
    np.testing.assert_array_equal(powers(gamma, k), np.power(gamma, k))


def test_warmup_then_constant_is_linear_to_one() -> None:
    warm = build({"name": "warmup", "warmup_steps": 23, "start_factor": 0.2}, 0.7)
    lin = build({"name": "linear", "start_factor": 0.2, "end_factor": 1.0, "total_iters": 23}, 0.7)
    np.testing.assert_allclose(warm.preview(80), lin.preview(80), rtol=1e-15)


def test_wsd_phase_boundaries() -> None:
    doc = {"name": "wsd", "warmup_steps": 10, "stable_steps": 20, "decay_steps": 30}
    for shape in ("linear", "cosine", "sqrt"):
        lrs = build({**doc, "decay": shape, "end_factor": 0.1}, 2.0).preview(100)
        assert lrs[0] == 0.0 and lrs[5] == 1.0  # warm-up from 0: lr·t/W
        assert np.all(lrs[10:31] == 2.0)  # stable, and the decay's first value is lr itself
        assert np.all(np.diff(lrs[30:61]) < 0)
        np.testing.assert_allclose(lrs[60:], 0.2, rtol=1e-15)
    sqrt = build({**doc, "decay": "sqrt"}, 1.0).preview(61)
    assert sqrt[30 + 30 // 4 + 0] == 1.0 - math.sqrt((30 // 4) / 30)


def test_inverse_sqrt_peaks_at_warmup_and_never_reaches_zero() -> None:
    lrs = build({"name": "inverse_sqrt", "warmup_steps": 25}, 0.5).preview(10_001)
    assert lrs.argmax() == 24 and lrs[24] == 0.5 and lrs[0] == 0.5 / 25
    assert lrs[99] == 0.5 * math.sqrt(25 / 100) and lrs[-1] > 0
    plain = build({"name": "inverse_sqrt"}, 1.0).preview(4)
    np.testing.assert_allclose(plain, [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 0.5], rtol=1e-15)


def test_sequential_of_a_ramp_and_then_equals_warmup() -> None:
    seq = build(
        {
            "name": "sequential",
            "schedulers": [
                {"name": "linear", "start_factor": 0.1, "end_factor": 1.0, "total_iters": 12},
                {"name": "cosine", "T_max": 90},
            ],
            "milestones": [12],
        },
        0.3,
    )
    warm = build(
        {
            "name": "warmup",
            "warmup_steps": 12,
            "start_factor": 0.1,
            "then": {"name": "cosine", "T_max": 90},
        },
        0.3,
    )
    np.testing.assert_array_equal(seq.preview(200), warm.preview(200))


def test_sequential_routes_losses_to_the_schedule_that_is_running() -> None:
    doc = {
        "name": "sequential",
        "schedulers": [
            {"name": "constant_factor", "factor": 0.5, "total_iters": 100},
            {"name": "reduce_on_plateau", "patience": 1, "factor": 0.5},
        ],
        "milestones": [5],
    }
    schedule = build(doc, 1.0)
    assert schedule.reads_loss
    seen = []
    for t in range(12):
        seen.append(schedule.lr_at(t))
        schedule.observe(1.0)  # never improves after the first loss the plateau sees
    # 5 updates at 0.5; the plateau starts fresh at t = 5: best set at t = 5, bad at 6, 7 → halve
    assert seen == [0.5] * 5 + [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
