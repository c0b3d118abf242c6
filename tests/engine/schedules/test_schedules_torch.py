"""Every schedule with a PyTorch counterpart against ``torch.optim.lr_scheduler``: the committed
reference sequences (``tests/data/schedules_torch.npz``, from ``tests/reference/gen_schedules.py``)
always, and — where torch is importable — freshly generated ones at the committed and at random
settings, plus the parameter names and defaults."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.schedules import SCHEDULES, Schedule, build_schedule

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "tests" / "data" / "schedules_torch.npz"
RTOL = 1e-10

with np.load(REFERENCE) as _data:
    DATA = {k: _data[k] for k in _data.files}
CASES: list[dict[str, Any]] = json.loads(str(DATA["cases"]))

TORCH_CLASSES = {
    "step": "StepLR",
    "multistep": "MultiStepLR",
    "exponential": "ExponentialLR",
    "linear": "LinearLR",
    "polynomial": "PolynomialLR",
    "cosine": "CosineAnnealingLR",
    "cosine_warm_restarts": "CosineAnnealingWarmRestarts",
    "cyclic": "CyclicLR",
    "one_cycle": "OneCycleLR",
    "reduce_on_plateau": "ReduceLROnPlateau",
    "constant_factor": "ConstantLR",
    "sequential": "SequentialLR",
}


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_schedules", ROOT / "tests/reference/gen_schedules.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(schedule: Schedule, steps: int, losses: np.ndarray | None) -> np.ndarray:
    """Our lrs over ``steps`` updates: the preview, or the run loop for a loss-reading schedule."""
    if losses is None:
        return schedule.preview(steps)
    out = np.empty(steps)
    for t in range(steps):
        out[t] = schedule.lr_at(t)
        schedule.observe(float(losses[t]))
    return out


def assert_matches(ours: np.ndarray, ref: np.ndarray) -> None:
    """≤ RTOL relative, with an absolute slack of 1e-15 of the sequence's scale near zero."""
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-15 * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_matches_the_committed_pytorch_sequence(case: dict[str, Any]) -> None:
    losses = DATA.get(f"losses__{case['id']}")
    ours = run(build_schedule(case["spec"], case["base_lr"]), case["steps"], losses)
    assert_matches(ours, DATA[f"lrs__{case['id']}"])


def test_the_reference_covers_every_setting_that_matters() -> None:
    specs = [c["spec"] for c in CASES]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in specs:
        by_name.setdefault(s["name"], []).append(s)
    assert set(TORCH_CLASSES) | {"constant", "warmup", "wsd"} <= set(by_name)
    assert {s["decay"] for s in by_name["wsd"]} == {"linear", "cosine", "sqrt"}
    assert {len(s["schedulers"]) for s in by_name["sequential"]} >= {1, 3, 4}
    assert all(len(by_name[n]) >= 2 for n in TORCH_CLASSES)
    assert all(c["steps"] >= 200 for c in CASES)
    assert {s["mode"] for s in by_name["cyclic"]} == {"triangular", "triangular2", "exp_range"}
    assert {s["base_lr"] is None for s in by_name["cyclic"]} == {True, False}
    assert {(s["anneal_strategy"], s["three_phase"]) for s in by_name["one_cycle"]} == {
        (a, p) for a in ("cos", "linear") for p in (False, True)
    }
    assert any(c["steps"] > 2 * c["spec"]["T_max"] for c in CASES if c["spec"]["name"] == "cosine")
    assert any(s["T_mult"] > 1 for s in by_name["cosine_warm_restarts"])
    plateau = by_name["reduce_on_plateau"]
    assert {(s["mode"], s["threshold_mode"]) for s in plateau} == {
        (m, t) for m in ("min", "max") for t in ("rel", "abs")
    }
    assert any(s["cooldown"] > 0 for s in plateau) and any(s["min_lr"] > 0 for s in plateau)
    for c in CASES:  # each plateau case reduces at least twice, and its losses improve again
        if c["spec"]["name"] == "reduce_on_plateau":
            lrs, losses = DATA[f"lrs__{c['id']}"], DATA[f"losses__{c['id']}"]
            assert len(np.unique(lrs)) >= 3, c["id"]
            assert np.isfinite(losses).sum() >= 200
    floors = [c for c in CASES if c["spec"]["name"] == "reduce_on_plateau" and c["spec"]["min_lr"]]
    assert any(DATA[f"lrs__{c['id']}"][-1] == c["spec"]["min_lr"] for c in floors)


# ---- live comparisons (torch installed) -------------------------------------------------------


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    pytest.importorskip("torch")
    return load_generator()


def test_committed_data_is_what_the_generator_produces(gen: ModuleType) -> None:
    assert [c["id"] for c in gen.CASES] == [c["id"] for c in CASES]
    for fresh, stored in zip(gen.CASES, CASES, strict=True):
        spec = gen.resolved(fresh["spec"])
        assert spec == stored["spec"] and fresh["base_lr"] == stored["base_lr"]
        losses = gen.case_losses(fresh)
        if losses is not None:
            np.testing.assert_array_equal(losses, DATA[f"losses__{fresh['id']}"])
        live = gen.torch_lrs(spec, fresh["base_lr"], fresh["steps"], losses)
        np.testing.assert_allclose(live, DATA[f"lrs__{fresh['id']}"], rtol=1e-14, atol=0)


def test_parameter_names_and_defaults_are_pytorchs(gen: ModuleType) -> None:
    from torch.optim import lr_scheduler

    # deliberate differences: ours default to the optimizer's lr where PyTorch requires a value
    own_defaults = {("cyclic", "base_lr"), ("one_cycle", "max_lr")}
    for name, cls_name in TORCH_CLASSES.items():
        torch_params = inspect.signature(getattr(lr_scheduler, cls_name).__init__).parameters
        for field, info in SCHEDULES.get(name).spec.model_fields.items():
            if field == "name":
                continue
            assert field in torch_params, (name, field)
            theirs = torch_params[field].default
            if (name, field) in own_defaults or info.is_required():
                continue
            assert theirs is not inspect.Parameter.empty, (name, field)
            assert info.default == theirs, (name, field, info.default, theirs)


positive = st.floats(1e-4, 2.0)
unit = st.floats(0.05, 1.0)


@st.composite
def multistep(draw: st.DrawFn) -> dict[str, Any]:
    ms = draw(st.lists(st.integers(1, 250), min_size=1, max_size=6, unique=True))
    return {"name": "multistep", "milestones": sorted(ms), "gamma": draw(st.floats(0.05, 1.5))}


@st.composite
def one_cycle(draw: st.DrawFn) -> dict[str, Any]:
    total = draw(st.integers(20, 260))
    three = draw(st.booleans())
    hi = min(0.95, (total + 0.5) / (2 * total)) if three else 0.95
    pct = draw(st.floats(1.5 / total, hi))
    return {
        "name": "one_cycle",
        "total_steps": total,
        "pct_start": pct,
        "three_phase": three,
        "max_lr": draw(st.none() | positive),
        "anneal_strategy": draw(st.sampled_from(["cos", "linear"])),
        "div_factor": draw(st.floats(1.0, 100.0)),
        "final_div_factor": draw(st.floats(1.0, 1e4)),
    }


@st.composite
def wsd(draw: st.DrawFn) -> dict[str, Any]:
    """Positive warm-up and stable phases (PyTorch's pieces need them); a cosine decay ends by
    step 200, since past its end ``CosineAnnealingLR`` rises again while ``wsd`` holds."""
    warm, stable = draw(st.integers(1, 50)), draw(st.integers(1, 100))
    shape = draw(st.sampled_from(["linear", "cosine", "sqrt"]))
    decay = 200 - warm - stable if shape == "cosine" else draw(st.integers(1, 120))
    return {
        "name": "wsd",
        "warmup_steps": warm,
        "stable_steps": stable,
        "decay_steps": decay,
        "decay": shape,
        "start_factor": draw(unit),
        "end_factor": draw(st.floats(0.0, 1.0)),
    }


MEMBERS = [
    {"name": "constant"},
    {"name": "constant_factor", "factor": 0.2, "total_iters": 9},
    {"name": "exponential", "gamma": 0.98},
    {"name": "multistep", "milestones": [4, 30]},
    {"name": "linear", "start_factor": 0.1, "total_iters": 25},
    {"name": "cosine", "T_max": 40, "eta_min": 1e-4},
    {"name": "cosine_warm_restarts", "T_0": 6, "T_mult": 2},
    {"name": "cyclic", "max_lr": 0.9, "step_size_up": 7},
]


@st.composite
def sequential(draw: st.DrawFn) -> dict[str, Any]:
    parts = draw(st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=4))
    cuts = draw(st.lists(st.integers(1, 199), min_size=len(parts) - 1, max_size=len(parts) - 1))
    milestones = sorted(set(cuts))
    return {
        "name": "sequential",
        "schedulers": parts[: len(milestones) + 1],
        "milestones": milestones,
    }


def dicts(name: str, **fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"name": st.just(name), **fields})


LIVE: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "constant_factor": dicts(
        "constant_factor", factor=st.floats(0.01, 1.0), total_iters=st.integers(1, 300)
    ),
    "wsd": wsd(),
    "sequential": sequential(),
    "step": dicts("step", step_size=st.integers(1, 60), gamma=st.floats(0.05, 1.5)),
    "multistep": multistep(),
    "exponential": dicts("exponential", gamma=st.floats(0.9, 1.01)),
    "linear": dicts(
        "linear", start_factor=unit, end_factor=st.floats(0.0, 1.0), total_iters=st.integers(1, 300)
    ),
    "polynomial": dicts("polynomial", total_iters=st.integers(1, 300), power=st.floats(0.1, 3.0)),
    "cosine": dicts("cosine", T_max=st.integers(1, 300), eta_min=st.floats(0.0, 1e-3)),
    "cosine_warm_restarts": dicts(
        "cosine_warm_restarts",
        T_0=st.integers(1, 40),
        T_mult=st.integers(1, 4),
        eta_min=st.floats(0.0, 1e-3),
    ),
    "cyclic": dicts(
        "cyclic",
        base_lr=st.none() | positive,
        max_lr=positive,
        step_size_up=st.integers(1, 60),
        step_size_down=st.none() | st.integers(1, 60),
        mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
        gamma=st.floats(0.9, 1.0),
    ),
    "one_cycle": one_cycle(),
    "reduce_on_plateau": dicts(
        "reduce_on_plateau",
        mode=st.sampled_from(["min", "max"]),
        factor=st.floats(0.05, 0.95),
        patience=st.integers(0, 8),
        threshold=st.floats(0.0, 0.05),
        threshold_mode=st.sampled_from(["rel", "abs"]),
        cooldown=st.integers(0, 5),
        min_lr=st.floats(0.0, 1e-3),
        eps=st.sampled_from([0.0, 1e-8, 1e-4]),
    ),
    "warmup": dicts(
        "warmup",
        warmup_steps=st.integers(1, 50),
        start_factor=unit,
        then=st.sampled_from(
            [
                {"name": "constant"},
                {"name": "step", "step_size": 9},
                {"name": "cosine", "T_max": 80},
                {"name": "cyclic", "max_lr": 0.9, "step_size_up": 7},
            ]
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(LIVE))
def test_random_settings_match_pytorch_live(gen: ModuleType, name: str) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(doc=LIVE[name], lr=st.floats(1e-4, 1.0), seed=st.integers(0, 2**32 - 1))
    def check(doc: dict[str, Any], lr: float, seed: int) -> None:
        spec = gen.resolved(doc)
        steps = spec["total_steps"] if name == "one_cycle" else 200
        losses = None
        if name == "reduce_on_plateau":  # a random walk with flat stretches and a dip or two
            rng = np.random.default_rng(seed)
            moves = rng.normal(-0.01, 0.02, steps) * (rng.random(steps) < 0.5)
            losses = 1.0 + np.cumsum(moves)
            losses[rng.integers(0, steps)] = math.nan
        ours = run(build_schedule(spec, lr), steps, losses)
        assert_matches(ours, gen.torch_lrs(spec, lr, steps, losses))

    check()
