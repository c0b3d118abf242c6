"""``reduce_on_plateau`` and loss-reading warm-ups: hand-traced sequences, the min_lr / eps / NaN
rules, the one-step-ahead ``lr_at`` contract, and per-instance state."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from engine.schedules import Schedule, ScheduleSpec, build_schedule

ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)


def build(doc: dict[str, Any], lr: float) -> Schedule:
    return build_schedule(ADAPTER.validate_python(doc), lr)


def drive(schedule: Schedule, losses: list[float]) -> list[float]:
    """The run loop: the lr of update t, then the loss at the point where update t started."""
    out = []
    for t, loss in enumerate(losses):
        out.append(schedule.lr_at(t))
        schedule.observe(loss)
    return out


def test_hand_traced_min_rel_with_cooldown() -> None:
    # improvement means loss < 0.9·best; patience 1: the second non-improving loss in a row
    # halves the lr; cooldown 1: the loss right after a reduction is not counted.
    doc = {
        "name": "reduce_on_plateau",
        "factor": 0.5,
        "patience": 1,
        "threshold": 0.1,
        "cooldown": 1,
    }
    losses = [10.0, 9.5, 9.2, 9.9, 9.9, 8.0, 7.5, 7.5, 1.0, 1.0]
    lrs = drive(build(doc, 1.0), losses)
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_hand_traced_max_abs() -> None:
    # improvement means loss > best + 0.5; patience 0: every non-improving loss reduces
    doc = {
        "name": "reduce_on_plateau",
        "mode": "max",
        "factor": 0.5,
        "patience": 0,
        "threshold": 0.5,
        "threshold_mode": "abs",
    }
    losses = [1.0, 1.4, 2.0, 2.6, 2.6, 3.2]
    lrs = drive(build(doc, 0.8), losses)
    assert lrs == [0.8, 0.8, 0.4, 0.4, 0.4, 0.2]


def test_min_lr_clamps_and_eps_blocks_tiny_reductions() -> None:
    clamp = {"name": "reduce_on_plateau", "factor": 0.1, "patience": 0, "min_lr": 0.05}
    assert drive(build(clamp, 1.0), [1.0] * 5) == [1.0, 1.0, 0.1, 0.05, 0.05]
    tiny = {"name": "reduce_on_plateau", "factor": 0.5, "patience": 0}
    lrs = drive(build(tiny, 1e-7), [1.0] * 8)
    # 1e-7 → 5e-8 → 2.5e-8 → 1.25e-8; halving again would lower it by 6.25e-9 ≤ eps = 1e-8
    assert lrs == [1e-7, 1e-7, 5e-8, 2.5e-8, 1.25e-8, 1.25e-8, 1.25e-8, 1.25e-8]


def test_nan_never_improves() -> None:
    doc = {"name": "reduce_on_plateau", "factor": 0.5, "patience": 1}
    assert drive(build(doc, 1.0), [1.0, math.nan, math.nan, 0.5]) == [1.0, 1.0, 1.0, 0.5]
    assert drive(build(doc, 1.0), [math.nan, math.nan, 5.0, 4.0, 3.0]) == [1.0, 1.0, 0.5, 0.5, 0.5]


def test_lr_at_answers_for_the_next_update_only() -> None:
    schedule = build({"name": "reduce_on_plateau", "patience": 0}, 0.3)
    assert schedule.reads_loss
    assert schedule.lr_at(0) == schedule.lr_at(0) == 0.3
    with pytest.raises(ValueError, match="t must be 0, got 1"):
        schedule.lr_at(1)
    schedule.observe(1.0)
    schedule.observe(2.0)
    assert schedule.lr_at(2) == pytest.approx(0.03, rel=1e-15)
    with pytest.raises(ValueError, match="t must be 2, got 0"):
        schedule.lr_at(0)


def test_preview_is_the_run_without_losses_whatever_was_observed() -> None:
    schedule = build({"name": "reduce_on_plateau", "patience": 0}, 0.3)
    drive(schedule, [1.0, 1.0, 1.0])
    assert schedule.lr_at(3) < 0.3
    np.testing.assert_array_equal(schedule.preview(5), [0.3] * 5)
    assert schedule.preview(0).shape == (0,)


def test_every_build_is_a_fresh_state() -> None:
    spec = ADAPTER.validate_python({"name": "reduce_on_plateau", "patience": 0})
    first, second = build_schedule(spec, 1.0), build_schedule(spec, 1.0)
    drive(first, [1.0, 1.0, 1.0])
    assert first.lr_at(3) < 1.0
    assert second.lr_at(0) == 1.0 and drive(second, [3.0, 2.0, 1.0]) == [1.0, 1.0, 1.0]


@settings(max_examples=40, deadline=None)
@given(
    warmup_steps=st.integers(1, 30),
    start=st.floats(0.0, 1.0),
    patience=st.integers(0, 4),
    losses=st.lists(st.sampled_from([1.0, 0.9, 0.5, 2.0, math.nan]), min_size=40, max_size=80),
)
def test_warmup_feeds_the_inner_schedule_only_post_warmup_losses(
    warmup_steps: int, start: float, patience: int, losses: list[float]
) -> None:
    inner = {"name": "reduce_on_plateau", "factor": 0.5, "patience": patience}
    wrapped = build(
        {"name": "warmup", "warmup_steps": warmup_steps, "start_factor": start, "then": inner}, 0.2
    )
    assert wrapped.reads_loss
    lrs = drive(wrapped, losses)
    ramp = [0.2 * (start + (1 - start) * t / warmup_steps) for t in range(warmup_steps)]
    alone = drive(build(inner, 0.2), losses[warmup_steps:])
    expected = (ramp + alone)[: len(losses)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    preview = wrapped.preview(len(losses))
    np.testing.assert_allclose(preview[:warmup_steps], expected[:warmup_steps], rtol=1e-15)
    assert np.all(preview[warmup_steps:] == 0.2)
