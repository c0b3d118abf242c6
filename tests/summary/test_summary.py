"""Groups, rankings, comparisons, tuning, export and the regression gate on hand-made runs."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np
import pytest

from analysis.export import export_rows, to_csv
from analysis.gate import gate
from analysis.groups import group_runs, resolve_solvers
from analysis.rankings import ecdfs, profiles
from analysis.records import SummaryError, load_records
from analysis.summary import CURVE_POINT_BUDGET, MIN_CURVE_POINTS, summarize
from analysis.tuning import tuning
from tests.summary.factory import record

ADAM = {"name": "adam", "lr": 0.001}
SGD = {"name": "sgd", "lr": 0.01, "momentum": 0.9}
STEP = {"name": "step", "step_size": 100, "gamma": 0.5}
QUAD = {"name": "quadratic", "dim": 2, "condition_number": 10.0}


def test_groups_are_labelled_by_the_fields_that_vary() -> None:
    recs = [
        record({"name": "adam", "lr": lr}, seed, [1.0, 0.5], schedule=sched)
        for lr in (0.001, 0.01)
        for sched in ({"name": "constant"}, STEP)
        for seed in (1, 0)
    ] + [record(SGD, 0, [1.0, 0.9])]
    groups = group_runs(recs)
    assert [g.solver_label for g in groups] == [
        "adam(lr=0.001) / constant",
        "adam(lr=0.001) / step",
        "adam(lr=0.01) / constant",
        "adam(lr=0.01) / step",
        "sgd / constant",
    ]
    assert all(g.problem_label == "rosenbrock" for g in groups)
    assert groups[0].seeds == [0, 1]
    assert len({g.id for g in groups}) == 5 and len({g.problem_id for g in groups}) == 1
    two_problems = group_runs([record(ADAM, 0, [1.0]), record(ADAM, 0, [1.0], problem=QUAD)])
    assert [g.problem_label for g in two_problems] == ["rosenbrock", "quadratic"]
    rosen_dims = group_runs(
        [
            record(ADAM, 0, [1.0], problem={"name": "rosenbrock", "dim": d, "init": None})
            for d in (2, 10)
        ]
    )
    assert [g.problem_label for g in rosen_dims] == ["rosenbrock(dim=2)", "rosenbrock(dim=10)"]


def test_group_summary_aggregates_over_seeds() -> None:
    recs = [
        record(ADAM, 0, [100.0, 10.0, 1.0], target=5.0),
        record(ADAM, 1, [100.0, 50.0, 10.0], target=5.0),
        record(ADAM, 2, [100.0, 1e3, None], target=5.0, diverged=True),
    ]
    out = summarize(recs)
    (g,) = out["groups"]
    assert g["n_runs"] == 3 and g["seeds"] == [0, 1, 2]
    assert g["success_rate"] == pytest.approx(1 / 3)
    assert g["diverged_rate"] == pytest.approx(1 / 3)
    final = g["metrics"]["final_loss"]
    # the diverged run counts, as the worst final loss: no mean, the median is the middle run
    assert (final["n"], final["n_failed"], final["mean"]) == (3, 1, None)
    assert (final["median"], final["min"], final["max"]) == (10.0, 1.0, None)
    assert final["success_rate"] == pytest.approx(2 / 3)
    # steps to target: seed 1 never reached 5 and seed 2 diverged — both the worst
    steps = g["metrics"]["steps_to_target"]
    assert (steps["n_failed"], steps["median"], steps["min"]) == (2, None, 2.0)
    # AUC of log10 loss: seed 0 → (1.5 + 0.5)/2 = 1; seed 1 → (log 100 + 2 log 50 + 1)/4
    auc1 = (2 + 2 * 1.6989700043360187 + 1) / 4
    assert g["metrics"]["auc_log_subopt"]["median"] == pytest.approx(auc1)
    assert g["metrics"]["auc_log_subopt"]["mean"] is None
    loss = g["curves"]["loss"]
    assert loss["x"] == [0, 1, 2]
    assert loss["mean"] == pytest.approx([100.0, (10 + 50 + 1e3) / 3, 5.5])
    assert loss["lo"] == [100.0, 10.0, 1.0] and loss["hi"] == [100.0, 1e3, 10.0]
    assert loss["n"] == [3, 3, 2]
    assert loss["wall_time"] == pytest.approx([0.0, 0.01, 0.02])
    assert g["curves"]["lr"]["mean"] == [0.001, 0.001]
    json.dumps(out, allow_nan=False)


def two_problem_runs() -> list[dict[str, Any]]:
    return [
        record(ADAM, 0, [100.0, 10.0, 1.0], target=5.0),
        record(SGD, 0, [100.0, 50.0, 10.0], target=5.0),
        record(ADAM, 0, [10.0, 1.0, 0.1], problem=QUAD, target=5.0),
        record(SGD, 0, [10.0, 10.0, 10.0], problem=QUAD, target=5.0),
    ]


def test_runtime_ecdfs_by_hand() -> None:
    out = ecdfs(group_runs(two_problem_runs()), n_targets=10)
    rosen, quad = out["per_problem"]
    # f* = 0 on both: the fixed targets 10^k, k = 1, 0, …, −8, whatever the runs reached
    assert rosen["targets"] == pytest.approx([10.0**k for k in range(1, -9, -1)])
    assert quad["targets"] == rosen["targets"]
    assert rosen["x"] == [0, 1, 2]
    # adam 100 → 10 → 1 reaches 10 at step 1 and 1 at step 2; sgd reaches 10 at step 2
    assert np.array([s["y"] for s in rosen["series"]]) == pytest.approx(
        np.array([[0.0, 0.1, 0.2], [0.0, 0.0, 0.1]])
    )
    # adam 10 → 1 → 0.1: three targets by step 2; sgd stays at 10 (one target, at step 0)
    assert np.array([s["y"] for s in quad["series"]]) == pytest.approx(
        np.array([[0.1, 0.2, 0.3], [0.1, 0.1, 0.1]])
    )
    # across problems: the mean of the per-problem fractions
    assert np.array([s["y"] for s in out["overall"]["series"]]) == pytest.approx(
        np.array([[0.05, 0.15, 0.25], [0.05, 0.05, 0.1]])
    )


def test_profiles_use_steps_to_target_per_problem_and_overall() -> None:
    runs = [*two_problem_runs(), record(SGD, 1, [100.0, 4.0, 3.0], target=5.0)]
    out = profiles(group_runs(runs), "steps_to_target")
    rosen = out["per_problem"][0]
    # seed 0: adam 2, sgd ∞; seed 1: sgd 1 (adam has no run: ∞)
    assert rosen["instances"] == 2 and rosen["tau"] == [1.0]
    assert [s["rho"] for s in rosen["series"]] == [[0.5], [0.5]]
    overall = out["overall"]
    # quadratic: adam reaches 5 at step 1 (sgd never) → three instances
    assert overall["instances"] == 3
    assert [s["rho"] for s in overall["series"]] == [[2 / 3], [1 / 3]]
    assert [s["score"] for s in overall["series"]] == pytest.approx([2 / 3, 1 / 3])


def test_without_any_run_at_its_target_the_profile_ranks_final_suboptimality() -> None:
    runs = [
        record(ADAM, 0, [10.0, 2.0], target=1.0),
        record(SGD, 0, [10.0, 4.0], target=1.0),
    ]
    profile = summarize(runs)["rankings"]["profile"]
    assert profile["metric"] == "final_loss"
    assert profile["overall"]["tau"] == [1.0, 2.0]
    assert [s["rho"] for s in profile["overall"]["series"]] == [[1.0, 1.0], [0.0, 1.0]]
    runs.append(record(ADAM, 1, [10.0, 0.5], target=1.0))
    assert summarize(runs)["rankings"]["profile"]["metric"] == "steps_to_target"


def comparison_runs() -> list[dict[str, Any]]:
    seeds = range(8)
    better = [record({"name": "adam", "lr": 0.01}, s, [1.0, 0.5 - 0.01 * s]) for s in seeds]
    base = [record({"name": "adam", "lr": 0.001}, s, [1.0, 0.8 - 0.02 * s]) for s in seeds]
    same = [record(SGD, s, [1.0, 0.8 - 0.02 * s]) for s in seeds]
    return better + base + same


def test_pairwise_comparison_with_holm_inside_each_problem() -> None:
    out = summarize(comparison_runs(), baseline="adam(lr=0.001)")
    (comp,) = out["comparisons"]
    assert comp["baseline"] == "adam(lr=0.001) / constant"
    better, same = comp["pairs"]
    assert better["solver"] == "adam(lr=0.01) / constant"
    # eight negative differences: exact two-sided p = 2 / 2^8, Holm × 2
    assert better["p_value"] == pytest.approx(2 / 256)
    assert better["p_holm"] == pytest.approx(4 / 256)
    assert better["effect"] == -1.0 and better["verdict"] == "better"
    assert same["p_value"] == 1.0 and same["p_holm"] == 1.0 and same["verdict"] == "n.s."
    # the default baseline is the best-ranked solver
    assert summarize(comparison_runs())["comparisons"][0]["baseline"].startswith("adam(lr=0.01)")


def test_resolving_a_solver_reference() -> None:
    groups = group_runs(comparison_runs())
    sgd = groups[2].solver_id
    assert resolve_solvers(groups, "sgd / constant") == [sgd]
    assert resolve_solvers(groups, sgd[:6]) == [sgd]
    assert resolve_solvers(groups, groups[2].id) == [sgd]
    assert resolve_solvers(groups, "rosenbrock / sgd / constant") == [sgd]  # a group label
    assert resolve_solvers(groups, "SGD") == [sgd]
    # hyper-parameters the label does not show (sgd's lr is not swept) still name it
    assert resolve_solvers(groups, "sgd(lr=0.01)") == [sgd]
    assert resolve_solvers(groups, "sgd(lr=1e-2, momentum=0.9) / constant") == [sgd]
    assert resolve_solvers(groups, "adam(lr=0.001)") == [groups[1].solver_id]
    with pytest.raises(SummaryError, match=r"no solver matches 'sgd\(lr=0.1\)'"):
        resolve_solvers(groups, "sgd(lr=0.1)")
    with pytest.raises(SummaryError, match="several solvers"):
        resolve_solvers(groups, "adam")
    with pytest.raises(SummaryError, match="no solver matches 'rmsprop'; known: adam"):
        resolve_solvers(groups, "rmsprop")
    # one optimizer under two schedules: both are baselines, each for its own schedule
    two = group_runs([record(SGD, 0, [1.0, 0.5]), record(SGD, 0, [1.0, 0.4], schedule=STEP)])
    assert resolve_solvers(two, "sgd(lr=0.01)") == [g.solver_id for g in two]


def test_tuning_view_marks_the_best_setting() -> None:
    runs = [
        record({"name": "adam", "lr": lr}, s, [1.0, v])
        for lr, values in ((0.1, (None, None)), (0.001, (0.5, 0.7)), (0.01, (0.1, 0.2)))
        for s, v in enumerate(values)
    ]
    for r in runs[:2]:
        r["diverged"] = True
    runs += [record(SGD, 0, [1.0, 0.3])]  # one setting only: no tuning entry
    (view,) = tuning(group_runs(runs), "final_loss")
    assert (view["optimizer"], view["param"], view["log_x"]) == ("adam", "lr", True)
    assert view["best_x"] == 0.01
    (series,) = view["series"]
    assert series["label"] == ""
    assert [p["x"] for p in series["points"]] == [0.001, 0.01, 0.1]
    assert [p["median"] for p in series["points"]] == pytest.approx([0.6, 0.15, None])
    assert [p["diverged_rate"] for p in series["points"]] == [0.0, 0.0, 1.0]
    assert view["best_group_id"] == series["points"][1]["group_id"]


def test_tuning_series_split_by_the_other_varying_fields() -> None:
    runs = [
        record({"name": "sgd", "lr": lr, "momentum": m}, 0, [1.0, lr * m], schedule=sched)
        for lr in (0.01, 0.1)
        for m in (0.5, 0.9)
        for sched in ({"name": "constant"}, STEP)
    ]
    views = tuning(group_runs(runs), "final_loss")
    assert [v["param"] for v in views] == ["lr", "momentum"]
    assert [s["label"] for s in views[0]["series"]] == [
        "momentum=0.5, constant",
        "momentum=0.5, step",
        "momentum=0.9, constant",
        "momentum=0.9, step",
    ]
    assert [s["label"] for s in views[1]["series"]][:2] == ["lr=0.01, constant", "lr=0.01, step"]
    assert views[0]["best_x"] == 0.01 and views[1]["best_x"] == 0.5
    assert views[1]["log_x"] is False


def test_export_rows_flatten_the_spec_and_round_trip() -> None:
    runs = two_problem_runs()
    runs[0]["status"] = "succeeded"
    columns, rows = export_rows(runs)
    assert columns[:11] == [
        "run_id",
        "spec_hash",
        "status",
        "problem",
        "solver",
        "seed",
        "steps",
        "target_loss",
        "eval_every",
        "dtype",
        "schedule_unit",
    ]
    assert (
        columns.index("problem.name")
        < columns.index("optimizer.lr")
        < columns.index("schedule.name")
        < columns.index("final_loss")
    )
    assert rows[0]["optimizer.lr"] == 0.001 and rows[0]["problem.init"] == [-1.5, 2.0]
    assert rows[0]["auc_log_subopt"] == pytest.approx(1.0)
    parsed = list(csv.reader(io.StringIO(to_csv(columns, rows))))
    assert parsed[0] == columns
    first = dict(zip(columns, parsed[1], strict=True))
    assert first["problem.init"] == "[-1.5,2.0]" and first["diverged"] == "false"
    assert first["status"] == "succeeded" and first["test_loss"] == ""
    assert first["final_loss"] == "1.0" and first["optimizer.momentum"] == ""
    # rows rebuild the records: same groups, same statistics
    back = load_records({"runs": json.loads(json.dumps(rows))})
    assert [g.id for g in group_runs(back)] == [g.id for g in group_runs(runs)]
    assert {v.status for v in gate(back, runs, metric="auc_log_subopt")} == {"ok"}


def gate_runs(final: list[float | None], **kw: Any) -> list[dict[str, Any]]:
    return [
        record(ADAM, s, [10.0, v], target=kw.get("target"), diverged=v is None)
        for s, v in enumerate(final)
    ]


@pytest.mark.parametrize(
    ("current", "status"),
    [
        ([1.0, 1.01, 1.02], "ok"),
        ([1.1, 1.111, 1.122], "regression"),  # every seed 10 % worse
        ([1.0, 1.04, 1.08], "ok"),  # within 5 %
        ([1.0, 1.01, 1.5], "ok"),  # one noisy seed: the CI reaches below the threshold
        ([0.5, 0.505, 0.51], "improved"),
    ],
)
def test_gate_on_the_metric(current: list[float], status: str) -> None:
    (verdict,) = gate(gate_runs(current), gate_runs([1.0, 1.01, 1.02]), max_regression=0.05)
    assert verdict.status == status
    assert verdict.solver == "adam / constant"


def test_gate_flags_failure_and_miss_rates_beyond_chance() -> None:
    base = gate_runs([1.0, 1.0, 1.0], target=1.5)
    # 1 of 3 diverged against 0 of 3: Fisher one-sided p = 0.5, within chance
    (one,) = gate(gate_runs([1.0, 1.0, None], target=1.5), base)
    assert one.status == "ok"
    # 3 of 3 against 0 of 3: p = 1 / C(6, 3) = 0.05
    (all_,) = gate(gate_runs([None, None, None], target=1.5), base)
    assert all_.status == "regression"
    assert all_.reasons[0] == "failure rate 3/3 vs 0/3 (Fisher exact one-sided p = 0.05 ≤ 0.05)"
    assert "no final_loss to compare" in all_.detail
    (missed,) = gate(gate_runs([1.6, 1.6, 1.6], target=1.5), base, max_regression=1.0)
    assert missed.status == "regression"
    assert missed.reasons == [
        "target reached by 0/3 vs 3/3 (Fisher exact one-sided p = 0.05 ≤ 0.05)"
    ]
    # two seeds cannot reach α (smallest p 1/6): any increase in failures then fails
    (small,) = gate(gate_runs([1.0, None]), gate_runs([1.0, 1.0]))
    assert small.status == "regression" and "any increase fails" in small.reasons[0]


def test_gate_tolerance_is_absolute_plus_relative_and_mirrors_for_accuracy() -> None:
    base = gate_runs([1e-20, 1e-20])
    cur = gate_runs([3e-20, 3e-20])
    assert gate(cur, base)[0].status == "regression"
    assert gate(cur, base, abs_tol=1e-12)[0].status == "ok"
    acc_base = gate_runs([1.0, 1.0, 1.0])
    acc_cur = gate_runs([1.0, 1.0, 1.0])
    for r, acc in zip(acc_base, (0.9, 0.91, 0.92), strict=True):
        r["test_accuracy"] = acc
    for r, acc in zip(acc_cur, (0.8, 0.81, 0.82), strict=True):
        r["test_accuracy"] = acc
    assert gate(acc_cur, acc_base, metric="test_accuracy")[0].status == "regression"
    assert gate(acc_base, acc_cur, metric="test_accuracy")[0].status == "improved"


def test_gate_reports_new_and_missing_groups() -> None:
    cur = [*gate_runs([1.0]), record(SGD, 0, [10.0, 2.0])]
    base = [*gate_runs([1.0]), record({"name": "adam", "lr": 0.5}, 0, [10.0, 2.0])]
    statuses = {(v.solver, v.status) for v in gate(cur, base)}
    assert statuses == {
        ("adam(lr=0.001) / constant", "ok"),
        ("sgd / constant", "new"),
        ("adam(lr=0.5) / constant", "missing"),
    }


def test_unknown_metric_and_bad_documents_are_readable_errors() -> None:
    with pytest.raises(SummaryError, match="unknown metric 'loss'; known: final_loss"):
        summarize(gate_runs([1.0]), metric="loss")
    with pytest.raises(SummaryError, match="'runs' list"):
        load_records({"results": []})
    with pytest.raises(SummaryError, match="not a run record"):
        load_records([{"final_loss": 1.0}])


def test_summary_is_deterministic_and_valid_json() -> None:
    runs = comparison_runs() + two_problem_runs()
    first = json.dumps(summarize(runs), allow_nan=False, sort_keys=True)
    assert first == json.dumps(summarize(runs), allow_nan=False, sort_keys=True)


def test_a_large_sweep_shares_one_curve_budget() -> None:
    """Few groups keep max_points per curve; 100 groups share CURVE_POINT_BUDGET between them,
    each curve still reaching its last step."""
    losses = [1.0 / (1 + k) for k in range(1001)]
    few = [record({"name": "sgd", "lr": lr}, 0, losses) for lr in (0.1, 0.2)]
    many = [record({"name": "sgd", "lr": 0.001 * (i + 1)}, 0, losses) for i in range(100)]
    shared = max(MIN_CURVE_POINTS, CURVE_POINT_BUDGET // 100)
    for records, expected in ((few, 300), (many, shared)):
        summary = summarize(records, max_points=300)
        for g in summary["groups"]:
            x = g["curves"]["loss"]["x"]
            assert expected - 2 <= len(x) <= expected and x[-1] == 1000


def test_group_curves_carry_gradient_evaluations_as_an_x_axis() -> None:
    """L-BFGS evaluates the gradient several times per update: the loss band carries the mean
    count across seeds at each eval step (the dashboard's third x axis)."""
    from engine.runner import run_batch
    from engine.spec import expand, parse_experiment

    spec = {
        "name": "lbfgs",
        "steps": 8,
        "seeds": [0, 1, 2],
        "problems": [{"name": "rosenbrock"}],
        "optimizers": [{"name": "lbfgs", "lr": 0.5, "max_iter": 4}],
    }
    results = run_batch(expand(parse_experiment(spec)))
    (group,) = summarize(results)["groups"]
    loss = group["curves"]["loss"]
    counts = np.array([r["grad_evals"] for r in results], dtype=float)
    assert loss["x"] == results[0]["eval_steps"].tolist()
    np.testing.assert_allclose(loss["grad_evals"], counts.mean(axis=0), rtol=1e-15)
    assert loss["grad_evals"][-1] > 8  # several evaluations per update
    assert summarize([record(ADAM, 0, [1.0, 0.5])])["groups"][0]["curves"]["loss"][
        "grad_evals"
    ] == [
        None,
        None,
    ]  # records from before the count existed
