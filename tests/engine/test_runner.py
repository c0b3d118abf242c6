"""The run loop: recorded curves and metrics, batching, divergence, checkpoints, determinism."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine.optimizers import OPTIMIZERS, build_optimizer
from engine.problems import build_problem
from engine.runner import (
    BATCH_BYTES,
    CURVE_KEYS,
    METRIC_KEYS,
    RUN_BY_RUN_BATCH_BYTES,
    batch_capacity,
    batch_key,
)
from engine.schedules import SCHEDULES, build_schedule
from engine.schedules.plateau import ReduceOnPlateau
from engine.spec import describe_errors, expand, parse_experiment
from tests.engine.optimizers.examples import example
from tests.results import plain_batch, plain_one


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
    """The result without what depends on the clock or on how runs were batched."""
    times = ("wall_times", "wall_time_s", "batch_wall_time_s", "batch_size")
    return {k: v for k, v in result.items() if k not in times}


def test_sgd_on_rosenbrock_matches_a_hand_loop() -> None:
    (run,) = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        optimizers=[{"name": "sgd", "lr": 1e-4}],
        steps=30,
        target_loss=5.9,
    )
    res = plain_one(run)
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
    res = plain_one(run)
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
    a = [without_times(r) for r in plain_batch(runs)]
    b = [without_times(r) for r in plain_batch(runs)]
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
    batched = plain_batch(runs)
    alone = [plain_one(r) for r in runs]
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
    res = plain_one(run)
    assert res["eval_steps"] == [0, 5, 10, 15, 20, 23]
    assert len(res["losses"]) == 6 and len(res["lrs"]) == 23
    assert res["test_loss"] is not None and 0.0 <= res["test_accuracy"] <= 1.0


def test_divergence_stops_the_run_and_says_why() -> None:
    runs = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        optimizers=[{"name": "sgd", "lr": [1e-4, 0.05]}],
        steps=200,
    )
    ok, bad = plain_batch(runs)
    assert not ok["diverged"] and ok["steps_done"] == 200
    assert bad["diverged"] and bad["steps_done"] < 200
    assert bad["divergence_step"] == bad["steps_done"] == bad["eval_steps"][-1]
    assert bad["divergence_reason"]
    assert len(bad["lrs"]) == bad["steps_done"]
    last = bad["losses"][-1]
    assert last is None or last > 1e10


def test_checkpoints_report_partial_curves_and_stop_halts() -> None:
    runs = runs_of(  # rosenbrock in 3-D: the general loop (the compiled one: test_compiled)
        problems=[{"name": "rosenbrock", "dim": 3}, {"name": "beale"}],
        optimizers=[{"name": "adam"}],
        steps=100_000,
    )
    seen: list[list[dict[str, Any]]] = []
    results = plain_batch(
        runs,
        on_checkpoint=seen.append,
        checkpoint_every_s=0.05,
        should_stop=lambda: len(seen) >= 2,
    )
    assert len(seen) >= 2
    partial = seen[0][0]
    assert 0 < partial["steps_done"] < 100_000
    # a full-batch run's loss after its latest update is measured with the next gradient
    assert partial["eval_steps"].tolist() == list(range(partial["steps_done"]))
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
    res = plain_one(run)
    lrs = res["lrs"]
    assert lrs[0] == 1.5 and min(lrs) < 1.5
    assert all(b <= a for a, b in itertools.pairwise(lrs))
    # update t's lr is what the schedule says after seeing the losses where updates 0..t-1 started
    replay = ReduceOnPlateau(1.5, **run.schedule.model_dump(exclude={"name"}))
    expected = []
    for loss in res["losses"][:-1]:
        expected.append(replay.lr_at(len(expected)))
        replay.observe(loss)
    assert lrs == expected


def test_large_groups_step_in_cache_sized_batches() -> None:
    mlp = {"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 32}
    runs = runs_of(
        problems=[{**mlp, "activation": "tanh"}],
        optimizers=[{"name": "sgd", "lr": [0.01, 0.02, 0.05], "momentum": 0.9}],
        seeds=list(range(10)),
        steps=4,
        eval_every=2,
    )
    capacity = batch_capacity(runs[0])
    assert 1 < capacity < len(runs)
    assert capacity * runs[0].num_params() * 8 <= BATCH_BYTES
    sizes: list[int] = []
    # no timed checkpoint on a loaded machine: only each batch's final one
    batched = plain_batch(
        runs, on_checkpoint=lambda partials: sizes.append(len(partials)), checkpoint_every_s=1e9
    )
    assert sizes == [capacity] * (len(runs) // capacity) + [len(runs) % capacity]
    for i, (b, r) in enumerate(zip(batched, runs, strict=True)):
        assert b["run_id"] == r.run_id
        assert without_times(b) == without_times(plain_one(r))
        # times amortised over the batch the run was stepped in
        assert b["batch_size"] == (capacity if i < len(runs) - len(runs) % capacity else sizes[-1])
        assert b["wall_time_s"] == pytest.approx(b["batch_wall_time_s"] / b["batch_size"])
        assert b["wall_times"][-1] == pytest.approx(b["wall_time_s"])
    # runs stepped run by run (a one-hidden-layer ReLU classifier) go in larger batches
    relu = runs_of(problems=[mlp], optimizers=[{"name": "sgd", "lr": 0.1}], steps=4)[0]
    assert batch_capacity(relu) == RUN_BY_RUN_BATCH_BYTES // (relu.num_params() * 8) > capacity
    for variant in ({"batchnorm": True}, {"hidden": [64, 64]}, {"dataset": "diabetes"}):
        other = runs_of(problems=[{**mlp, **variant}], optimizers=[{"name": "sgd", "lr": 0.1}])
        assert batch_capacity(other[0]) == BATCH_BYTES // (other[0].num_params() * 8), variant
    as_float32 = runs_of(problems=[mlp], optimizers=[{"name": "sgd", "lr": 0.1}], dtype="float32")
    assert batch_capacity(as_float32[0]) == BATCH_BYTES // (as_float32[0].num_params() * 4)


def test_plateau_inside_warmup_reads_only_post_warmup_losses() -> None:
    # threshold 0.5 (rel): after its first loss, no loss of this slow run counts as an
    # improvement, so with patience 1 the lr halves after every second post-warm-up update
    (run,) = runs_of(
        problems=[{"name": "quadratic", "dim": 3}],
        optimizers=[{"name": "sgd", "lr": 0.01}],
        schedules=[
            {
                "name": "warmup",
                "warmup_steps": 3,
                "start_factor": 0.25,
                "then": {
                    "name": "reduce_on_plateau",
                    "patience": 1,
                    "factor": 0.5,
                    "threshold": 0.5,
                },
            }
        ],
        steps=10,
    )
    res = plain_one(run)
    ramp = [0.01 * (0.25 + 0.75 * t / 3) for t in range(3)]
    # losses observed from update 3 on: 3 improves, 4 and 5 do not -> halve for update 6;
    # 6 and 7 do not -> halve for update 8
    np.testing.assert_allclose(
        res["lrs"], [*ramp, 0.01, 0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025], rtol=1e-15
    )
    assert all(b < a for a, b in itertools.pairwise(res["losses"]))


def _schedule_docs() -> list[dict[str, Any]]:
    """One spec per registered schedule, with parameters that make it move within 6 updates."""
    required: dict[str, dict[str, Any]] = {
        "step": {"step_size": 2, "gamma": 0.5},
        "multistep": {"milestones": [1, 3], "gamma": 0.5},
        "exponential": {"gamma": 0.8},
        "linear": {"start_factor": 0.5, "total_iters": 4},
        "polynomial": {"total_iters": 8},
        "cosine": {"T_max": 4},
        "cosine_warm_restarts": {"T_0": 2, "T_mult": 2},
        "cyclic": {"max_lr": 0.02, "step_size_up": 2},
        "one_cycle": {"total_steps": 6},
        "reduce_on_plateau": {"patience": 0, "threshold": 0.5},
        "warmup": {"warmup_steps": 2, "then": {"name": "exponential", "gamma": 0.9}},
        "piecewise_linear": {"total_steps": 6},
        "sawtooth": {"cycle_length": 3},
        "constant_factor": {"factor": 0.5, "total_iters": 2},
        "sequential": {
            "schedulers": [{"name": "constant"}, {"name": "exponential", "gamma": 0.8}],
            "milestones": [2],
        },
        "wsd": {"warmup_steps": 1, "stable_steps": 1, "decay_steps": 3, "start_factor": 0.5},
    }
    return [{"name": name, **required.get(name, {})} for name in SCHEDULES.names()]


def step_by_hand(problem: Any, spec: Any, lrs: list[float]) -> tuple[list[float], list[float]]:
    """Losses (at the evaluation point) and update norms of ``spec`` stepped without the loop:
    through the closure where the optimizer takes one, from the gradient otherwise."""
    optimizer = build_optimizer(spec, layout=problem.layout)
    x = problem.init_params()
    state = optimizer.init(x)
    point = np.empty_like(x)

    def judged() -> np.ndarray:
        if optimizer.eval_params is None:
            return x
        optimizer.eval_params(state, x, point)
        return point

    losses, update_norms = [], []
    for t, lr in enumerate(lrs):
        losses.append(float(problem.loss_and_grad(judged(), t)[0][0]))
        before = x.copy()
        if optimizer.step_ is not None:
            optimizer.step_(lambda p, t=t: problem.loss_and_grad(p, t), state, x, lr)
        else:
            optimizer.update_(problem.loss_and_grad(x, t)[1], state, x, lr)
        update_norms.append(float(np.linalg.norm(x - before)))
    losses.append(float(problem.loss(judged())[0]))
    return losses, update_norms


def test_muon_runs_on_the_matrices_of_a_network_under_every_schedule() -> None:
    steps = 6
    muon = {
        "name": "partition",
        "groups": [
            {"kinds": ["matrix"], "tensors": ["layers.*"], "optimizer": {"name": "muon"}},
            {"optimizer": {"name": "adamw", "lr": 0.01}},
        ],
    }
    runs = runs_of(
        problems=[{"name": "mlp", "dataset": "iris", "hidden": [6]}],
        optimizers=[muon],
        schedules=_schedule_docs(),
        steps=steps,
    )
    for run, res in zip(runs, plain_batch(runs), strict=True):
        assert res["steps_done"] == steps and not res["diverged"], run.schedule.name
        problem = build_problem(run.problem, [run.seed])
        losses, _ = step_by_hand(problem, run.optimizer, res["lrs"])
        np.testing.assert_allclose(res["losses"], losses, rtol=1e-12)


def test_grad_evals_count_every_closure_call_and_bound_the_run() -> None:
    """L-BFGS evaluates several times per update: the curve counts each call, the budget stops
    the run before the update that would start beyond it; a plain optimizer counts one per
    update, so its grad_evals equal its eval_steps."""
    doc = {"problems": [{"name": "rosenbrock"}], "steps": 40}
    (plain,) = plain_batch(runs_of(optimizers=[{"name": "adam", "lr": 0.01}], **doc))
    assert plain["grad_evals"] == plain["eval_steps"] and plain["grad_evals_done"] == 40
    (full,) = plain_batch(runs_of(optimizers=[{"name": "lbfgs", "lr": 0.5, "max_iter": 5}], **doc))
    counts = np.diff(full["grad_evals"])
    assert counts.max() > 1 and (counts >= 1).all()
    # the counts are those of the optimizer stepped by hand through a counting closure
    problem = build_problem(runs_of(optimizers=[{"name": "adam"}], **doc)[0].problem, [0])
    opt = build_optimizer({"name": "lbfgs", "lr": 0.5, "max_iter": 5})
    x = problem.init_params()
    state, calls = opt.init(x), []
    for t in range(40):
        calls.append(0)

        def closure(p: np.ndarray, t: int = t) -> tuple[np.ndarray, np.ndarray]:
            calls[-1] += 1
            return problem.loss_and_grad(p, t)

        assert opt.step_ is not None
        opt.step_(closure, state, x, 0.5)
    assert counts.tolist() == calls
    budget = int(full["grad_evals"][10]) + 1
    (cut,) = plain_batch(
        runs_of(
            optimizers=[{"name": "lbfgs", "lr": 0.5, "max_iter": 5}],
            max_grad_evals=budget,
            **doc,
        )
    )
    assert cut["steps_done"] == 11 and not cut["stopped"]
    assert cut["grad_evals"][-2] < budget <= cut["grad_evals_done"] == cut["grad_evals"][-1]
    assert cut["losses"] == full["losses"][:12]


def test_run_ids_without_a_budget_are_unchanged() -> None:
    """Fields added later stay out of the hashed JSON while unset: the id of this run predates
    ``max_grad_evals``."""
    (run,) = runs_of(problems=[{"name": "rosenbrock"}], optimizers=[{"name": "adam"}], steps=10)
    assert run.run_id == "4323e104a44bf953"
    (budgeted,) = runs_of(
        problems=[{"name": "rosenbrock"}],
        optimizers=[{"name": "adam"}],
        steps=10,
        max_grad_evals=5,
    )
    assert budgeted.run_id != run.run_id


def test_every_optimizer_and_schedule_runs_through_the_loop() -> None:
    steps = 6
    runs = runs_of(
        problems=[{"name": "quadratic", "dim": 3}],
        # muon steps weight matrices only: it runs on the MLP below
        optimizers=[example(name) for name in OPTIMIZERS.names() if name != "muon"],
        schedules=_schedule_docs(),
        steps=steps,
    )
    assert len(runs) == (len(OPTIMIZERS.names()) - 1) * len(SCHEDULES.names())
    results = plain_batch(runs)
    moving: set[str] = set()
    for run, res in zip(runs, results, strict=True):
        label = f"{run.optimizer.name} × {run.schedule.name}"
        assert res["steps_done"] == steps and not res["diverged"], label
        assert res["eval_steps"] == list(range(steps + 1)), label
        schedule = build_schedule(run.schedule, base_lr=run.optimizer.lr)
        if not schedule.reads_loss:
            assert res["lrs"] == schedule.preview(steps).tolist(), label
        if len(set(res["lrs"])) > 1:
            moving.add(run.schedule.name)
        # the recorded curve is the optimizer stepped by hand at the recorded lrs
        problem = build_problem(run.problem, [run.seed])
        losses, update_norms = step_by_hand(problem, run.optimizer, res["lrs"])
        np.testing.assert_allclose(res["losses"], losses, rtol=1e-12, err_msg=label)
        np.testing.assert_allclose(res["update_norms"], update_norms, rtol=1e-9, err_msg=label)
        assert res["losses"][-1] < res["losses"][0], label
    assert moving == set(SCHEDULES.names()) - {"constant"}


def test_float32_runs_end_to_end() -> None:
    doc: dict[str, Any] = {
        "problems": [
            {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]},
            {"name": "mlp", "dataset": "iris", "hidden": [8], "batchnorm": True, "batch_size": 16},
            {"name": "logistic_regression", "dataset": "wine"},
        ],
        "optimizers": [{"name": "adam", "lr": [1e-3, 1e-2]}, {"name": "sgd", "momentum": 0.9}],
        "steps": 20,
        "eval_every": 5,
    }
    runs32 = runs_of(**doc, dtype="float32")
    runs64 = runs_of(**doc)
    single, double = plain_batch(runs32), plain_batch(runs64)
    for run, r32, r64 in zip(runs32, single, double, strict=True):
        label = f"{run.problem.name} {run.optimizer.name} {run.optimizer.lr}"
        assert r32["spec"]["dtype"] == "float32" and r32["run_id"] != r64["run_id"]
        assert r32["eval_steps"] == r64["eval_steps"] and not r32["diverged"], label
        # computed in float32: every recorded loss is a float32 value, and differs from float64
        assert all(np.float32(v) == v for v in r32["losses"]), label
        assert r32["losses"] != r64["losses"], label
        np.testing.assert_allclose(r32["losses"], r64["losses"], rtol=1e-2, err_msg=label)
        assert r32["lrs"] == r64["lrs"], label
        if run.problem.name != "rosenbrock":
            assert r32["test_loss"] == pytest.approx(r64["test_loss"], rel=1e-2), label
            assert r32["test_accuracy"] is not None, label
        assert without_times(r32) == without_times(plain_one(run)), label


def test_eval_every_beyond_the_budget_evaluates_start_and_end() -> None:
    mb, fb = runs_of(
        problems=[
            {"name": "mlp", "dataset": "iris", "hidden": [4], "batch_size": 10},
            {"name": "logistic_regression", "dataset": "iris"},
        ],
        optimizers=[{"name": "sgd", "lr": 0.05}],
        steps=7,
        eval_every=100,
    )
    assert (mb.eval_every, fb.eval_every) == (100, 1)
    minibatch, full = plain_one(mb), plain_one(fb)
    assert minibatch["eval_steps"] == [0, 7] and len(minibatch["lrs"]) == 7
    problem = build_problem(mb.problem, [mb.seed])
    assert minibatch["losses"][0] == problem.loss(problem.init_params())[0]
    assert minibatch["final_loss"] == minibatch["losses"][1] < minibatch["losses"][0]
    assert full["eval_steps"] == list(range(8)) and len(full["losses"]) == 8


def test_a_diverging_minibatch_run_stops_at_its_eval_and_matches_its_solo_run() -> None:
    runs = runs_of(
        problems=[{"name": "mlp", "dataset": "diabetes", "hidden": [16], "batch_size": 16}],
        optimizers=[{"name": "sgd", "lr": [0.01, 50.0]}],
        steps=60,
        eval_every=4,
    )
    ok, bad = plain_batch(runs)
    assert not ok["diverged"] and ok["steps_done"] == 60 and ok["eval_steps"][-1] == 60
    assert bad["diverged"] and bad["divergence_reason"].startswith("loss exceeded")
    step = bad["divergence_step"]
    assert step == bad["steps_done"] == bad["eval_steps"][-1] and 0 < step < 60 and step % 4 == 0
    assert len(bad["lrs"]) == len(bad["grad_norms"]) == step
    assert bad["final_loss"] == bad["losses"][-1] > 1e10 * max(1.0, bad["losses"][0])
    assert bad["best_loss"] == bad["losses"][0]
    # the batch steps on for the healthy run; the diverged one's numbers, test metrics included,
    # are those of the same run stepped alone (which ends where it diverged)
    for batched, alone in zip((ok, bad), (plain_one(r) for r in runs), strict=True):
        assert without_times(batched) == without_times(alone)
    assert bad["test_loss"] is not None and bad["test_loss"] > 1e10


def test_nan_or_infinite_start_points_are_rejected_with_their_path() -> None:
    text = (
        '{"name": "n", "steps": 5, "optimizers": [{"name": "sgd"}], '
        '"problems": [{"name": "rosenbrock", "init": [1.0, %s]}]}'
    )
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValidationError) as info:
            parse_experiment(json.loads(text % value))
        ((error,),) = [describe_errors(info.value)]
        assert error["path"] == "problems[0].init[1]", value
        assert "finite" in error["message"] and "'rosenbrock'" in error["message"], value


def test_the_point_measured_when_a_run_is_stopped_is_checked_for_divergence() -> None:
    # one huge step from the start: the loss at the first eval point is fine, the one measured
    # when the run is stopped right after that step has blown up
    (run,) = runs_of(
        problems=[{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        optimizers=[{"name": "sgd", "lr": 10.0}],
        steps=100,
    )
    (res,) = plain_batch([run], checkpoint_every_s=0.0, should_stop=lambda: True)
    assert res["stopped"] and res["eval_steps"] == [0, 1] and len(res["lrs"]) == 1
    assert res["losses"][1] > 1e10 * res["losses"][0]
    assert res["diverged"] and res["divergence_step"] == res["steps_done"] == 1


def test_epoch_schedules_hold_each_epochs_lr_for_all_its_updates() -> None:
    # iris: 150 examples, 120 for training; batches of 40 → 3 updates per epoch
    problem = {"name": "mlp", "dataset": "iris", "hidden": [4], "batch_size": 40}
    schedule = {"name": "step", "step_size": 2, "gamma": 0.5}
    doc: dict[str, Any] = {
        "problems": [problem],
        "optimizers": [{"name": "sgd", "lr": 0.1}],
        "schedules": [schedule],
        "steps": 14,
        "eval_every": 7,
    }
    (per_epoch,) = runs_of(**doc, schedule_unit="epoch")
    (per_step,) = runs_of(**doc)
    assert per_epoch.run_id != per_step.run_id
    # the id of a step-indexed run is the hash it had before schedule_unit existed
    later = ("schedule_unit", "max_grad_evals")
    earlier = {k: v for k, v in per_step.model_dump(mode="json").items() if k not in later}
    digest = hashlib.sha256(json.dumps(earlier, sort_keys=True, separators=(",", ":")).encode())
    assert per_step.run_id == digest.hexdigest()[:16]
    lrs = plain_one(per_epoch)["lrs"]
    epochs = [t // 3 for t in range(14)]  # the seed's η(epoch): γ^⌊epoch/2⌋ η
    assert lrs == [0.1 * 0.5 ** (e // 2) for e in epochs]
    assert plain_one(per_step)["lrs"] == [0.1 * 0.5 ** (t // 2) for t in range(14)]


def test_a_loss_reading_epoch_schedule_sees_each_epochs_mean_minibatch_loss() -> None:
    problem = build_problem(
        parse_experiment(
            {
                "name": "t",
                "steps": 1,
                "problems": [{"name": "mlp", "dataset": "iris", "hidden": [4], "batch_size": 40}],
                "optimizers": [{"name": "sgd"}],
            }
        ).problems[0],
        [0],
    )
    (run,) = runs_of(
        problems=[{"name": "mlp", "dataset": "iris", "hidden": [4], "batch_size": 40}],
        optimizers=[{"name": "sgd", "lr": 0.5}],
        schedules=[{"name": "reduce_on_plateau", "patience": 0, "threshold": 0.5}],
        steps=12,
        eval_every=12,
        schedule_unit="epoch",
    )
    res = plain_one(run)
    # replay by hand: the epoch mean of the minibatch losses decides the next epoch's lr
    optimizer = build_optimizer(run.optimizer)
    x = problem.init_params()
    state = optimizer.init(x)
    replay = ReduceOnPlateau(0.5, **run.schedule.model_dump(exclude={"name"}))
    expected, epoch_losses = [], []
    for t in range(12):
        lr = replay.lr_at(t // 3)
        expected.append(lr)
        loss, grad = problem.loss_and_grad(x, t)
        epoch_losses.append(float(loss[0]))
        optimizer.update_(grad, state, x, lr)
        if len(epoch_losses) == 3:
            replay.observe(sum(epoch_losses) / 3)
            epoch_losses = []
    np.testing.assert_allclose(res["lrs"], expected, rtol=1e-15)
    assert len(set(expected)) > 1 and all(len(set(expected[k : k + 3])) == 1 for k in (0, 3, 6, 9))
