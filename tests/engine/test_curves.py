"""Curve downsampling keeps first, min, max and last points; `since` returns only what is new."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.curves import downsample, since


def make_curves(losses: list[float | None], updates: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        "eval_steps": list(range(len(losses))),
        "losses": losses,
        "wall_times": [0.01 * i for i in range(len(losses))],
        "lrs": rng.random(updates).tolist(),
        "grad_norms": rng.random(updates).tolist(),
        "update_norms": rng.random(updates).tolist(),
    }


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite | st.none(), min_size=1, max_size=400), st.integers(3, 60))
def test_downsample_keeps_extremes_and_ends(losses: list[float | None], max_points: int) -> None:
    curves = make_curves(losses, updates=len(losses) - 1)
    out = downsample(curves, max_points)
    assert len(out["eval_steps"]) <= max(max_points, 1)
    assert len(out["losses"]) == len(out["eval_steps"]) == len(out["wall_times"])
    assert out["eval_steps"] == sorted(set(out["eval_steps"]))
    assert out["eval_steps"][0] == 0 and out["eval_steps"][-1] == len(losses) - 1
    for step, value in zip(out["eval_steps"], out["losses"], strict=True):
        assert curves["losses"][step] == value
    values = [v for v in losses if v is not None]
    if values and len(losses) > max_points >= 4:
        assert min(values) in out["losses"] and max(values) in out["losses"]
    assert len(out["update_steps"]) <= max_points
    for key in ("lrs", "grad_norms", "update_norms"):
        assert len(out[key]) == len(out["update_steps"])
        series = curves[key]
        if series and len(series) > max_points >= 8:
            assert min(series) in out[key] and max(series) in out[key]


def test_short_curves_come_back_whole() -> None:
    curves = make_curves([3.0, 2.0, 1.0], updates=2)
    out = downsample(curves, 10)
    assert out["losses"] == [3.0, 2.0, 1.0] and out["update_steps"] == [0, 1]


def test_since_returns_points_from_the_step_on() -> None:
    curves = make_curves([5.0, 4.0, 3.0, 2.0, 1.0], updates=4)
    out = since(curves, 3)
    assert out["eval_steps"] == [3, 4] and out["losses"] == [2.0, 1.0]
    assert out["update_steps"] == [3] and out["lrs"] == curves["lrs"][3:]
    assert since(curves, 99)["losses"] == [] and since(curves, 0)["losses"] == curves["losses"]
