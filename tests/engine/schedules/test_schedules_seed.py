"""The seed document's schedules: hand-computed values from its definitions, its step convention
(its plots evaluate epoch ``i + 1`` at index ``i``), and properties of ``sawtooth`` and
``piecewise_linear`` over random settings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from engine.schedules import ScheduleSpec, build_schedule
from engine.schedules.piecewise import PiecewiseLinear, Sawtooth

ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)


def build(doc: dict[str, Any], lr: float) -> Any:
    return build_schedule(ADAPTER.validate_python(doc), lr)


# ---- hand-computed values -----------------------------------------------------------------------
# Seed defaults at lr = 1: piecewise 20 % held at 1, 60 % linear to 0.01, then 0.01, over 100
# epochs (c = 20, d = 60, slope 0.99/60 = 0.0165 per step); sawtooth 1 → 0.1 every 20 epochs
# (0.045 per step).


def test_piecewise_linear_hand_values() -> None:
    pw = build({"name": "piecewise_linear", "total_steps": 100}, 1.0)
    expected = {0: 1.0, 19: 1.0, 20: 1.0, 21: 0.9835, 50: 0.505, 79: 0.0265, 80: 0.01, 99: 0.01}
    for t, value in expected.items():
        assert pw.lr_at(t) == pytest.approx(value, rel=1e-14), t


def test_sawtooth_hand_values() -> None:
    saw = build({"name": "sawtooth"}, 1.0)
    expected = {0: 1.0, 1: 0.955, 10: 0.55, 19: 0.145, 20: 1.0, 21: 0.955, 59: 0.145, 60: 1.0}
    for t, value in expected.items():
        assert saw.lr_at(t) == pytest.approx(value, rel=1e-14), t


def test_the_seed_plots_are_our_steps_one_to_n() -> None:
    """Plot index i shows epoch i + 1: the seed's first plotted point is our update 1."""
    pw = build({"name": "piecewise_linear", "total_steps": 100}, 1.0)
    plotted = pw.preview(101)[1:]
    assert plotted[0] == 1.0 and plotted[19] == 1.0  # epochs 1 and 20: still held
    assert plotted[20] == pytest.approx(0.9835, rel=1e-14)  # epoch 21: first decayed value
    assert plotted[78] == pytest.approx(0.0265, rel=1e-14) and plotted[79] == 0.01
    saw = build({"name": "sawtooth"}, 1.0)
    plotted = saw.preview(101)[1:]
    assert plotted[0] == pytest.approx(0.955, rel=1e-14)  # the plot never shows 1 at index 0
    assert plotted[18] == pytest.approx(0.145, rel=1e-14) and plotted[19] == 1.0


def test_levels_are_factors_of_the_optimizer_lr() -> None:
    doc = {"name": "piecewise_linear", "total_steps": 50, "start_factor": 2.0, "end_factor": 0.5}
    np.testing.assert_allclose(
        build(doc, 0.01).preview(60), 0.01 * build(doc, 1.0).preview(60), rtol=1e-14
    )
    saw = {"name": "sawtooth", "start_factor": 0.2, "end_factor": 1.0, "cycle_length": 4}
    np.testing.assert_allclose(build(saw, 0.5).preview(5), [0.1, 0.2, 0.3, 0.4, 0.1], rtol=1e-14)


def test_the_seed_step_schedule() -> None:
    """The seed's η(t) = γ^t η: ``exponential`` per update, ``step`` per block of updates."""
    exp = build({"name": "exponential", "gamma": 0.5}, 0.8)
    assert exp.preview(5).tolist() == [0.8, 0.4, 0.2, 0.1, 0.05]
    step = build({"name": "step", "step_size": 3, "gamma": 0.5}, 0.8)
    assert step.preview(7).tolist() == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]


# ---- properties ---------------------------------------------------------------------------------

factors = st.just(0.0) | st.floats(1e-6, 5.0)
lrs = st.floats(1e-5, 10.0)


@settings(max_examples=80, deadline=None)
@given(lr=lrs, a=factors, b=factors, length=st.integers(1, 60), k=st.integers(1, 10**6))
def test_sawtooth_is_periodic_and_bounded(
    lr: float, a: float, b: float, length: int, k: int
) -> None:
    saw = Sawtooth(lr, start_factor=a, end_factor=b, cycle_length=length)
    cycle = saw.preview(length)
    np.testing.assert_array_equal(saw.lrs_at(np.arange(length) + k * length), cycle)
    lo, hi = min(a, b) * lr, max(a, b) * lr
    assert np.all(cycle >= lo * (1 - 1e-15)) and np.all(cycle <= hi * (1 + 1e-15))
    assert cycle[0] == a * lr
    steps = np.diff(cycle)
    assert np.all(steps <= 0) if a >= b else np.all(steps >= 0)
    # every step within a cycle moves by (b − a)·lr / L
    np.testing.assert_allclose(steps, (b - a) * lr / length, rtol=1e-9, atol=4e-15 * hi)


@st.composite
def piecewise_settings(draw: st.DrawFn) -> dict[str, Any]:
    total = draw(st.integers(1, 400))
    decay = draw(st.floats(1.0 / total, 1.0).filter(lambda d: int(d * total) >= 1))
    hold = draw(st.floats(0.0, 1.0 - decay))
    return {
        "total_steps": total,
        "hold_fraction": hold,
        "decay_fraction": decay,
        "start_factor": draw(factors),
        "end_factor": draw(factors),
    }


@settings(max_examples=80, deadline=None)
@given(lr=lrs, p=piecewise_settings())
def test_piecewise_linear_plateaus_ramp_and_joins(lr: float, p: dict[str, Any]) -> None:
    pw = PiecewiseLinear(lr, **p)
    c, d = pw.hold, pw.decay
    assert c == int(p["hold_fraction"] * p["total_steps"])
    assert d == int(p["decay_fraction"] * p["total_steps"]) >= 1
    a, b = p["start_factor"] * lr, p["end_factor"] * lr
    values = pw.preview(c + d + 30)
    assert np.all(values[: c + 1] == a)  # held, and the ramp starts exactly at a
    assert np.all(values[c + d :] == b)  # held at b from c + d on
    ramp = values[c : c + d + 1]  # includes the first b: the ramp's next step lands on it
    steps = np.diff(ramp)
    if a >= b:
        assert np.all(steps <= 0)
    else:
        assert np.all(steps >= 0)
    # continuous: every step of the ramp, including the one onto the final plateau, is (b − a)/d
    np.testing.assert_allclose(steps, (b - a) / d, rtol=1e-9, atol=4e-15 * max(a, b))
    np.testing.assert_array_equal(pw.lrs_at(np.array([10**9])), [b])


@settings(max_examples=40, deadline=None)
@given(total=st.integers(1, 200), decay=st.floats(0.0, 0.99))
def test_piecewise_fractions_that_leave_no_decay_step_are_rejected(
    total: int, decay: float
) -> None:
    doc = {
        "name": "piecewise_linear",
        "total_steps": total,
        "hold_fraction": 0.0,
        "decay_fraction": max(decay, 1e-9),
    }
    if int(doc["decay_fraction"] * total) >= 1:
        assert build(doc, 1.0).lr_at(0) == 1.0
    else:
        with pytest.raises(ValueError, match=">= 1 step"):
            build(doc, 1.0)
