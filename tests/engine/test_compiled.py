"""The compiled loop equals the general loop bit for bit (noise on and off), and steps only what
it supports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import compiled, runner
from engine.problems import build_problem
from engine.runner import CURVE_KEYS, METRIC_KEYS, run_batch
from engine.spec import RunSpec, expand, parse_experiment

CLOCK = ("wall_times", "wall_time_s", "batch_wall_time_s")
PROBLEMS = [
    {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]},
    {"name": "rosenbrock", "dim": 2},
    {"name": "beale"},
    {"name": "himmelblau"},
    {"name": "styblinski_tang", "dim": 2},
    {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0], "noise": 0.5},
    {"name": "himmelblau", "noise": 3.0},
]
#: Grids mix diverging and converging runs in one batch (large rates blow up or overflow).
OPTIMIZERS = [
    {"name": "adam", "lr": [1e-3, 0.05, 3.0], "betas": [[0.9, 0.999], [0.5, 0.9]]},
    {"name": "adam", "lr": [0.01, 0.5], "amsgrad": True, "weight_decay": [0.0, 0.1]},
    {"name": "adamw", "lr": [0.01, 0.3], "weight_decay": [0.0, 0.05]},
    {"name": "sgd", "lr": [1e-4, 1e-3, 0.05]},
    {"name": "sgd", "lr": [1e-4, 2e-3], "momentum": [0.0, 0.9], "dampening": [0.0, 0.3]},
    {"name": "sgd", "lr": [1e-4, 1e-2], "momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
    {"name": "rmsprop", "lr": [1e-3, 0.05], "alpha": [0.99, 0.3], "weight_decay": [0.0, 0.1]},
    {"name": "rmsprop", "lr": [1e-3, 0.2], "centered": True, "momentum": [0.0, 0.9]},
    {"name": "adagrad", "lr": [0.05, 5.0], "lr_decay": [0.0, 0.01]},
    {"name": "adagrad", "lr": 0.5, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
]
SCHEDULES = [
    {"name": "constant"},
    {"name": "cosine", "T_max": 60},
    {"name": "warmup", "warmup_steps": 10, "then": {"name": "step", "step_size": 20}},
    {"name": "one_cycle", "max_lr": 0.02, "total_steps": 80},
]


def runs_of(**doc: Any) -> list[RunSpec]:
    return expand(parse_experiment({"name": "t", "steps": 80, "seeds": [0, 1], **doc}))


def general(runs: list[RunSpec], monkeypatch: pytest.MonkeyPatch, **kw: Any) -> list[Any]:
    """The same runs through the general (per-update Python) loop."""
    with monkeypatch.context() as m:
        m.setattr(runner.compiled, "plan", lambda *args: None)
        return run_batch(runs, **kw)


def planned(runs: list[RunSpec]) -> bool:
    problem = build_problem(runs[0].problem, [r.seed for r in runs], np.dtype(runs[0].dtype))
    return compiled.plan(runs, problem, reads_loss=False) is not None


def assert_same(fast: dict[str, Any], plain: dict[str, Any]) -> None:
    """Equal bits in every curve and equal metrics, apart from the clock's."""
    for key in CURVE_KEYS:
        if key in CLOCK:
            continue
        assert (key in fast) == (key in plain), key
        if key in fast:
            assert fast[key].dtype == plain[key].dtype, key
            assert fast[key].tobytes() == plain[key].tobytes(), key
    for key in METRIC_KEYS:
        if key not in CLOCK:
            assert repr(fast[key]) == repr(plain[key]), key
    assert fast["spec"] == plain["spec"]


def check(runs: list[RunSpec], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    assert planned(runs)
    fast = run_batch(runs)
    for a, b in zip(fast, general(runs, monkeypatch), strict=True):
        assert_same(a, b)
    return fast


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: str(sorted(o.items())))
def test_every_optimizer_and_problem_equals_the_general_loop(
    optimizer: dict[str, Any], dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for problem in PROBLEMS:
        results += check(
            runs_of(problems=[problem], optimizers=[optimizer], dtype=dtype), monkeypatch
        )
    assert any(not r["diverged"] for r in results)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_schedules_equal_the_general_loop(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = runs_of(
        problems=PROBLEMS[:1] + PROBLEMS[3:4],
        optimizers=[{"name": "adam", "lr": [0.01, 0.1]}, {"name": "sgd", "lr": 1e-3}],
        schedules=SCHEDULES,
        dtype=dtype,
    )
    for batch in _batches(runs):
        check(batch, monkeypatch)


def _batches(runs: list[RunSpec]) -> list[list[RunSpec]]:
    groups: dict[Any, list[RunSpec]] = {}
    for run in runs:
        groups.setdefault(runner.batch_key(run), []).append(run)
    return list(groups.values())


def test_every_way_of_diverging_is_recorded_as_the_general_loop_records_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        optimizers=[{"name": "sgd", "lr": [1e-4, 1e-3, 0.01, 0.1, 1.0, 1e3, 1e98, 1e307]}],
        steps=200,
    )
    results = check(runs, monkeypatch)
    reasons = {(r["divergence_reason"] or "").split(" ")[0] for r in results}
    assert reasons == {"", "loss", "parameters"}
    assert any(r["divergence_reason"].startswith("loss became") for r in results if r["diverged"])
    assert any("exceeded" in r["divergence_reason"] for r in results if r["diverged"])
    # every run of the batch stops: the loop ends after the last one, as the general loop does
    for lrs in ([1e3, 1e98], [1e98, 1e307], [1e307], [0.1, 1e307]):
        spec = {"name": "sgd", "lr": lrs}
        every = check(runs_of(problems=PROBLEMS[:1], optimizers=[spec], steps=50), monkeypatch)
        assert all(r["diverged"] for r in every)


def test_a_budget_ends_the_runs_where_the_general_loop_ends_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (result,) = check(
        runs_of(problems=PROBLEMS[:1], optimizers=[{"name": "adam"}], max_grad_evals=33, seeds=[0]),
        monkeypatch,
    )
    assert result["steps_done"] == 33 and result["eval_steps"][-1] == 33


def test_checkpoints_see_prefixes_and_a_stopped_run_is_a_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = runs_of(problems=PROBLEMS[-1:], optimizers=[{"name": "adam", "lr": 0.01}], steps=5000)
    seen: list[list[dict[str, Any]]] = []
    stopped = run_batch(
        runs,
        on_checkpoint=lambda partials: seen.append([dict(p) for p in partials]),
        checkpoint_every_s=0.0,
        should_stop=lambda: len(seen) >= 3,
    )
    full = general(runs, monkeypatch)
    assert len(seen) >= 3
    for partial, whole in zip(seen[0], full, strict=True):
        done = partial["steps_done"]
        assert 0 < done < 5000 and partial["eval_steps"].tolist() == list(range(done))
        for key in ("losses", "params_x", "lrs", "grad_norms", "update_norms"):
            assert partial[key].tobytes() == whole[key][: len(partial[key])].tobytes(), key
    for cut, whole in zip(stopped, full, strict=True):
        done = cut["steps_done"]
        assert cut["stopped"] and 0 < done < 5000
        assert cut["eval_steps"].tolist() == list(range(done + 1))
        for key in ("losses", "params_y", "grad_evals"):
            assert cut[key].tobytes() == whole[key][: done + 1].tobytes(), key
        for key in ("lrs", "update_norms"):
            assert cut[key].tobytes() == whole[key][:done].tobytes(), key


@pytest.mark.parametrize(
    ("problem", "optimizer", "schedule"),
    [
        ({"name": "rosenbrock", "dim": 3}, {"name": "adam"}, {"name": "constant"}),
        ({"name": "rastrigin", "dim": 2}, {"name": "adam"}, {"name": "constant"}),
        ({"name": "beale"}, {"name": "nadam"}, {"name": "constant"}),
        ({"name": "beale"}, {"name": "adam"}, {"name": "reduce_on_plateau"}),
    ],
)
def test_what_the_compiled_loop_does_not_support_takes_the_general_loop(
    problem: dict[str, Any],
    optimizer: dict[str, Any],
    schedule: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = runs_of(problems=[problem], optimizers=[optimizer], schedules=[schedule], steps=20)
    calls: list[int] = []
    for opt, real in list(compiled.KERNELS.items()):
        monkeypatch.setitem(
            compiled.KERNELS, opt, lambda *a, real=real: calls.append(1) or real(*a)
        )
    results = run_batch(runs)
    assert not calls and len(results) == len(runs)
    assert not planned(runs) or schedule["name"] == "reduce_on_plateau"
