"""Each defect the statistics had, reproduced as a new user met it, and shown fixed.

(The gate refusing changed hyper-parameters before running anything is in
tests/client/test_cli_local.py; per-run times of a batched sweep in tests/summary/test_routes.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis.compare import default_baseline
from analysis.groups import group_runs, resolve_solvers
from analysis.rankings import ecdfs, profiles
from analysis.summary import summarize
from analysis.tuning import tuning
from engine.runner import run_batch
from engine.spec import expand, parse_experiment
from tests.summary.factory import record

ROOT = Path(__file__).resolve().parents[2]


def engine_runs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**r, "status": "succeeded"} for r in run_batch(expand(parse_experiment(spec)))]


def test_an_all_diverged_group_is_worse_on_a_higher_is_better_metric() -> None:
    """MLP on iris (float32), SGD at an absurd lr: every run diverges and has no test accuracy.
    It used to rank as the best accuracy (effect +1, verdict "better")."""
    runs = engine_runs(
        {
            "name": "absurd-lr",
            "problems": [{"name": "mlp", "dataset": "iris", "hidden": [8], "batch_size": 16}],
            "optimizers": [{"name": "sgd", "lr": 1e4}, {"name": "adam", "lr": 0.01}],
            "seeds": list(range(8)),
            "steps": 40,
            "eval_every": 10,
            "dtype": "float32",
        }
    )
    assert all(r["diverged"] for r in runs if r["spec"]["optimizer"]["name"] == "sgd")
    out = summarize(runs, metric="test_accuracy", baseline="adam")
    ((pair,),) = [c["pairs"] for c in out["comparisons"]]
    assert pair["solver"].startswith("sgd") and pair["verdict"] == "worse"
    assert pair["effect"] == -1.0  # sgd − adam is below on every seed: worse for accuracy
    assert pair["p_holm"] == pytest.approx(2 / 2**8)
    sgd = next(g for g in out["groups"] if g["solver"].startswith("sgd"))
    acc = sgd["metrics"]["test_accuracy"]
    assert (acc["n"], acc["n_failed"], acc["mean"], acc["median"]) == (8, 8, None, None)
    assert acc["success_rate"] == 0.0 and sgd["success_rate"] == 0.0
    # unprompted, the best solver (the default baseline) is adam, and the output says how and why
    default = summarize(runs, metric="test_accuracy")
    assert default["comparisons"][0]["baseline"].startswith("adam")
    assert default["baseline_rule"].startswith("highest success rate")
    assert "picked from these runs" in default["baseline_note"]


def lr_sweep() -> list[dict[str, Any]]:
    """lr 0.1 diverges on 4 of 5 seeds and its survivor is excellent (0.01); lr 0.01 never
    diverges and reaches about 0.1."""
    runs = []
    for seed in range(5):
        wild = record({"name": "adam", "lr": 0.1}, seed, [1.0, 0.01 if seed == 0 else None])
        wild["diverged"] = seed != 0
        runs += [wild, record({"name": "adam", "lr": 0.01}, seed, [1.0, 0.1 + 0.001 * seed])]
    return runs


def test_a_majority_diverged_lr_is_never_the_best_setting_or_the_baseline() -> None:
    groups = group_runs(lr_sweep())
    (view,) = tuning(groups, "final_loss")
    assert view["best_x"] == 0.01
    assert view["best_rule"].startswith("highest success rate, then best median final_loss")
    steady = next(g for g in groups if g.optimizer["lr"] == 0.01)
    assert default_baseline(groups, "final_loss") == steady.solver_id
    wild = summarize(lr_sweep())["groups"][0]
    final = wild["metrics"]["final_loss"]
    # not "mean 0.01 over n = 1": no mean, failures counted, success rate beside it
    assert (final["mean"], final["n"], final["n_failed"]) == (None, 5, 4)
    assert final["median"] is None and final["success_rate"] == pytest.approx(0.2)
    assert final["success_ci_low"] < 0.2 < final["success_ci_high"]


def test_three_seeds_say_plainly_that_no_test_can_reach_alpha() -> None:
    runs = [
        record({"name": "adam", "lr": lr}, s, [1.0, v + 0.01 * s])
        for lr, v in ((0.001, 0.5), (0.01, 0.2), (0.1, 0.3))
        for s in range(3)
    ]
    out = summarize(runs, baseline="adam(lr=0.001)")
    (comp,) = out["comparisons"]
    for pair in comp["pairs"]:
        assert pair["test"] == "exact sign-flip (signed ranks)"
        assert pair["p_value"] == pytest.approx(0.25)  # 2 / 2³, the smallest possible
        assert pair["verdict"] == "n.s."
        assert pair["note"] == (
            "3 seeds cannot reach α = 0.05: the smallest possible p is 0.25 (× 2 comparisons, "
            "Holm); 7 seeds would be needed"
        )


def test_identical_seeds_are_called_deterministic() -> None:
    """A noise-free problem from a fixed start gives the same curve for every seed: the summary
    says so, and the comparison is the exact difference, not a test counting repeats."""
    runs = engine_runs(
        {
            "name": "fixed-start",
            "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
            "optimizers": [{"name": "adam", "lr": [0.01, 0.05]}],
            "seeds": [0, 1, 2, 3, 4, 5, 6],
            "steps": 50,
        }
    )
    out = summarize(runs, baseline="adam(lr=0.01)")
    assert all(g["deterministic"] for g in out["groups"])
    assert "seeds add nothing" in out["groups"][0]["note"]
    assert out["groups"][0]["metrics"]["final_loss"]["iqr"] == 0.0
    (pair,) = out["comparisons"][0]["pairs"]
    assert pair["p_value"] is None and pair["verdict"] == "better"
    assert "deterministic" in pair["note"]


def test_targets_are_fixed_by_the_problem_not_by_the_runs() -> None:
    """Two experiments on one problem reaching very different losses get the same targets, so
    their ECDFs can be compared (they used to be a ladder up to the best loss of each)."""
    good = [record({"name": "adam", "lr": 0.01}, s, [100.0, 1.0, 1e-6]) for s in range(3)]
    poor = [record({"name": "sgd", "lr": 0.01}, s, [100.0, 50.0, 20.0]) for s in range(3)]
    first = ecdfs(group_runs(good))["per_problem"][0]
    second = ecdfs(group_runs(poor))["per_problem"][0]
    assert first["targets"] == second["targets"]
    assert first["targets"][0] == pytest.approx(10.0) and first["targets"][-1] == pytest.approx(
        1e-8
    )
    assert "f* + 10^k" in first["target_rule"]


def test_suboptimalities_below_the_floor_count_as_solved() -> None:
    """1e-15 and 1e-12 above f* are both solved: a ratio of 1000 between them would be noise."""
    runs = [
        record({"name": "adam", "lr": 0.01}, 0, [1.0, 1e-15]),
        record({"name": "sgd", "lr": 0.01}, 0, [1.0, 1e-12]),
        record({"name": "rmsprop", "lr": 0.01}, 0, [1.0, None], diverged=True),
    ]
    out = profiles(group_runs(runs), "final_loss")
    series = {s["solver"].split(" ")[0]: s for s in out["overall"]["series"]}
    assert series["adam"]["rho"] == series["sgd"]["rho"] == [1.0]
    assert series["rmsprop"]["rho"] == [0.0]  # a failure is ∞
    assert out["solved_floor"] == 1e-8 and "counts as solved" in out["rule"]


@pytest.mark.parametrize("example", ["adam-vs-momentum.json", "seed-rules.json"])
def test_the_readme_baseline_reference_works_on_the_shipped_examples(example: str) -> None:
    """`optbench compare ID --baseline 'sgd(lr=0.01)'`: SGD's lr is not swept in either
    example, so no label shows it; the reference names it by its hyper-parameters, and SGD
    runs under two schedules there, so each schedule's SGD is the baseline of its own schedule."""
    spec = parse_experiment(json.loads((ROOT / "examples" / example).read_text()))
    planned = [{"spec": r.model_dump(mode="json"), "status": "queued"} for r in expand(spec)]
    groups = group_runs(planned)
    found = resolve_solvers(groups, "sgd(lr=0.01)")
    assert len(found) == 2
    labels = {g.solver_label for g in groups if g.solver_id in found}
    assert all(label.startswith("sgd") for label in labels)
    out = summarize(planned, baseline="sgd(lr=0.01)")
    schedules = {c["baseline"].rsplit(" / ", 1)[1] for c in out["comparisons"]}
    assert len(schedules) == 2
    for comp in out["comparisons"]:
        sched = comp["baseline"].rsplit(" / ", 1)[1]
        assert all(p["solver"].rsplit(" / ", 1)[1] == sched for p in comp["pairs"])
