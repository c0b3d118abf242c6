"""The run loop: recorded curves and metrics, batching, divergence, checkpoints, determinism."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from engine.runner import (
    BATCH_BYTES,
    CURVE_KEYS,
    METRIC_KEYS,
    batch_capacity,
    batch_key,
    run_batch,
    run_one,
)
from engine.spec import expand, parse_experiment


def runs_of(**doc: Any):
    base: dict[str, Any] = {"name": "t", "steps": 50}
    base.update(doc)
    return expand(parse_experiment(base))


def rosenbrock(x: np.ndarray) -> float:
    return float(100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2)


def rosenbrock_grad(x: np.ndarray) -> np.ndarray:
    return np.array(
        [-400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0]), 200.0 * (x[1] - x[0] ** 2)]
    )


def without_times(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("wall_times", "wall_time_s")}


def test_sgd_on_rosenbrock_matches_a_hand_loop() -> None:
    (run,) = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        optimizers=[{"name": "sgd", "lr": 1e-4}],
        steps=30,
        target_loss=5.9,
    )
    res = run_one(run)
    x = np.array([-1.5, 2.0])
    losses, gnorms, unorms = [rosenbrock(x)], [], []
    for _ in range(30):
        g = rosenbrock_grad(x)
        gnorms.append(np.linalg.norm(g))
        step = -1e-4 * g
        unorms.append(np.linalg.norm(step))
        x = x + step
        losses.append(rosenbrock(x))
    np.testing.assert_allclose(res["losses"], losses, rtol=1e-13)
    np.testing.assert_allclose(res["grad_norms"], gnorms, rtol=1e-13)
    np.testing.assert_allclose(res["update_norms"], unorms, rtol=1e-9)
    assert res["lrs"] == [1e-4] * 30
    assert res["eval_steps"] == list(range(31))
    assert res["steps_done"] == 30 and not res["diverged"] and not res["stopped"]
    assert res["final_loss"] == res["losses"][-1]
    assert res["best_loss"] == min(res["losses"])
    assert res["f_star"] == 0.0 and res["suboptimality"] == res["final_loss"]
    first_hit = next(i for i, v in enumerate(losses) if v <= 5.9)
    assert res["steps_to_target"] == first_hit
    np.testing.assert_allclose(res["params_x"][-1], x[0], rtol=1e-13)
    assert set(METRIC_KEYS) <= set(res) and set(CURVE_KEYS) <= set(res)


def test_lr_trace_follows_the_schedule() -> None:
    (run,) = runs_of(
        problems=[{"name": "quadratic", "dim": 4}],
        optimizers=[{"name": "sgd", "lr": 0.1}],
        schedules=[{"name": "step", "step_size": 10, "gamma": 0.5}],
        steps=35,
    )
    res = run_one(run)
    expected = [0.1 * 0.5 ** (t // 10) for t in range(35)]
    np.testing.assert_allclose(res["lrs"], expected, rtol=1e-15)


def test_results_are_deterministic() -> None:
    runs = runs_of(
        problems=[{"name": "mlp", "dataset": "iris", "hidden": [8], "batch_size": 16}],
        optimizers=[{"name": "adam", "lr": 0.01}],
        seeds=[0, 1],
        steps=40,
        eval_every=7,
    )
    a = [without_times(r) for r in run_batch(runs)]
    b = [without_times(r) for r in run_batch(runs)]
    assert a == b
    assert a[0]["losses"] != a[1]["losses"]  # the seed matters


@pytest.mark.parametrize(
    "problem",
    [
        {"name": "rosenbrock", "dim": 2},
        {"name": "quadratic", "dim": 6, "condition_number": 50.0, "noise": 0.1},
        {"name": "mlp", "dataset": "digits", "hidden": [16], "batchnorm": True, "batch_size": 32},
        {"name": "logistic_regression", "dataset": "wine"},
    ],
)
def test_batched_equals_alone(problem: dict[str, Any]) -> None:
    runs = runs_of(
        problems=[problem],
        optimizers=[
            {"name": "adam", "lr": [1e-3, 1e-2]},
            {"name": "adam", "lr": 3e-3, "betas": [0.5, 0.9]},
        ],
        schedules=[{"name": "constant"}, {"name": "cosine", "T_max": 20}],
        seeds=[0, 1],
        steps=20,
        eval_every=5,
    )
    assert len({batch_key(r) for r in runs}) == 1
    batched = run_batch(runs)
    alone = [run_one(r) for r in runs]
    for b, a in zip(batched, alone, strict=True):
        for key in ("losses", "lrs", "grad_norms", "update_norms", "test_loss", "test_accuracy"):
            np.testing.assert_allclose(
                np.array(b[key], dtype=float), np.array(a[key], dtype=float), rtol=1e-12, atol=0
            )


def test_minibatch_eval_steps_include_start_and_end() -> None:
    (run,) = runs_of(
        problems=[{"name": "mlp", "dataset": "iris", "hidden": [4], "batch_size": 10}],
        optimizers=[{"name": "sgd", "lr": 0.05}],
        steps=23,
        eval_every=5,
    )
    res = run_one(run)
    assert res["eval_steps"] == [0, 5, 10, 15, 20, 23]
    assert len(res["losses"]) == 6 and len(res["lrs"]) == 23
    assert res["test_loss"] is not None and 0.0 <= res["test_accuracy"] <= 1.0


def test_divergence_stops_the_run_and_says_why() -> None:
    runs = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        optimizers=[{"name": "sgd", "lr": [1e-4, 0.05]}],
        steps=200,
    )
    ok, bad = run_batch(runs)
    assert not ok["diverged"] and ok["steps_done"] == 200
    assert bad["diverged"] and bad["steps_done"] < 200
    assert bad["divergence_step"] == bad["steps_done"] == bad["eval_steps"][-1]
    assert bad["divergence_reason"]
    assert len(bad["lrs"]) == bad["steps_done"]
    last = bad["losses"][-1]
    assert last is None or last > 1e10


def test_checkpoints_report_partial_curves_and_stop_halts() -> None:
    runs = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2}, {"name": "beale"}],
        optimizers=[{"name": "adam"}],
        steps=100_000,
    )
    seen: list[list[dict[str, Any]]] = []
    results = run_batch(
        runs,
        on_checkpoint=seen.append,
        checkpoint_every_s=0.05,
        should_stop=lambda: len(seen) >= 2,
    )
    assert len(seen) >= 2
    partial = seen[0][0]
    assert 0 < partial["steps_done"] < 100_000
    # a full-batch run's loss after its latest update is measured with the next gradient
    assert partial["eval_steps"] == list(range(partial["steps_done"]))
    assert len(partial["lrs"]) == partial["steps_done"]
    first, second = results
    assert first["stopped"] and 0 < first["steps_done"] < 100_000
    assert first["eval_steps"][-1] == first["steps_done"]
    assert second["stopped"] and second["steps_done"] == 0 and second["losses"] == []


def test_plateau_schedule_reads_the_loss() -> None:
    (run,) = runs_of(
        problems=[{"name": "quadratic", "dim": 3}],
        optimizers=[{"name": "sgd", "lr": 1.5}],
        schedules=[{"name": "reduce_on_plateau", "patience": 2, "factor": 0.5}],
        steps=60,
    )
    res = run_one(run)
    lrs = res["lrs"]
    assert lrs[0] == 1.5 and min(lrs) < 1.5
    assert all(b <= a for a, b in itertools.pairwise(lrs))


def test_large_groups_step_in_cache_sized_batches() -> None:
    runs = runs_of(
        problems=[{"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 32}],
        optimizers=[{"name": "sgd", "lr": [0.01, 0.02, 0.05], "momentum": 0.9}],
        seeds=list(range(10)),
        steps=4,
        eval_every=2,
    )
    capacity = batch_capacity(runs[0])
    assert 1 < capacity < len(runs)
    assert capacity * runs[0].num_params() * 8 <= BATCH_BYTES
    sizes: list[int] = []
    batched = run_batch(runs, on_checkpoint=lambda partials: sizes.append(len(partials)))
    assert sizes == [capacity] * (len(runs) // capacity) + [len(runs) % capacity]
    for b, r in zip(batched, runs, strict=True):
        assert b["run_id"] == r.run_id
        assert without_times(b) == without_times(run_one(r))
