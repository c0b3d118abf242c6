"""A summary bounded two ways: curves for a bounded number of groups, with an endpoint that
pages through the rest (everything it includes equals the unbounded summary, the curves fetched
later equal the ones the unbounded summary carries); and long runs read in buckets of steps
(bounded points per run, whatever its steps)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from analysis.curves import READ_POINTS, reduce_run
from analysis.groups import group_runs
from analysis.records import auc_log_subopt
from analysis.summary import ranked, summarize
from api.db import Database
from api.routes import summary as summary_routes
from engine.runner import run_batch
from engine.spec import expand, parse_experiment
from tests.summary.factory import record
from tests.summary.test_routes import finish, submit

ADAM = {"name": "adam", "lr": 0.001}
CURVES = ("eval_steps", "losses", "lrs", "wall_times")

SWEEP: dict[str, Any] = {
    "name": "bounded",
    "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
    "optimizers": [
        {"name": "adam", "lr": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]},
        {"name": "sgd", "lr": [1e-4, 3e-4]},
    ],
    "seeds": [0, 1, 2],
    "steps": 30,
    "target_loss": 1.0,
}
POINTS = 20  # below MIN_CURVE_POINTS: every group gets exactly this many, bounded or not


@pytest.fixture(scope="module")
def results() -> list[dict[str, Any]]:
    return run_batch(expand(parse_experiment(SWEEP)))


def plain(data: Any) -> Any:
    return json.loads(json.dumps(data))


def test_a_bounded_summary_equals_the_unbounded_one_on_what_it_includes(
    results: list[dict[str, Any]],
) -> None:
    groups = group_runs(results)
    best = [g.id for g in ranked(groups, "final_loss")]
    worst = next(g for g in groups if g.id == best[-1])  # the baseline: not among the best
    options: dict[str, Any] = {"max_points": POINTS, "baseline": worst.solver_label}
    full = plain(summarize(results, **options))
    part = plain(summarize(results, **options, curve_groups=3))
    (problem,) = part["problems"]
    assert problem["curve_group_ids"] == [*best[:3], worst.id]
    assert full["problems"][0]["curve_group_ids"] == best
    drawn = set(problem["curve_group_ids"])
    assert part["curve_groups"] == 3 and part["curve_points"] == full["curve_points"] == POINTS
    for g, h in zip(part["groups"], full["groups"], strict=True):
        assert g["curves"] == (h["curves"] if g["id"] in drawn else None)
        assert {**g, "curves": None} == {**h, "curves": None}
    for key in ("metric", "metrics", "n_runs", "solvers", "comparisons", "tuning"):
        assert part[key] == full[key]
    solvers = {g["solver_id"] for g in part["groups"] if g["id"] in drawn}
    for scope in ("overall", "per_problem"):
        mine, theirs = part["rankings"]["profile"][scope], full["rankings"]["profile"][scope]
        for a, b in zip(
            mine if scope == "per_problem" else [mine],
            theirs if scope == "per_problem" else [theirs],
            strict=True,
        ):
            assert a["tau"] == b["tau"]
            for s, t in zip(a["series"], b["series"], strict=True):
                assert s["score"] == t["score"]
                assert s["rho"] == (t["rho"] if s["solver_id"] in solvers else None)
        mine, theirs = part["rankings"]["ecdf"][scope], full["rankings"]["ecdf"][scope]
        for a, b in zip(
            mine if scope == "per_problem" else [mine],
            theirs if scope == "per_problem" else [theirs],
            strict=True,
        ):
            assert a["x"] == b["x"]
            assert a["series"] == [s for s in b["series"] if s["solver_id"] in solvers]


def test_the_curves_endpoint_pages_through_the_ranking(client: TestClient, db: Database) -> None:
    experiment_id = submit(client, SWEEP)
    finish(db, experiment_id)
    url = f"/v1/experiments/{experiment_id}/summary"
    full = client.get(url, params={"max_points": POINTS, "curve_groups": 10_000}).json()
    part = client.get(url, params={"max_points": POINTS, "curve_groups": 3}).json()
    (problem,) = part["problems"]
    ranking = full["problems"][0]["curve_group_ids"]
    assert problem["curve_group_ids"] == ranking[:3]
    assert sum(g["curves"] is not None for g in part["groups"]) == 3
    by_id = {g["id"]: g for g in full["groups"]}
    trajectories = {
        (t["group_id"], t["seed"]): t for t in full["problems"][0]["contour"]["trajectories"]
    }
    params = {"max_points": part["curve_points"], "offset": 3, "limit": 4}
    page = client.get(f"{url}/curves", params=params)
    assert page.status_code == 200
    body = page.json()
    assert (body["problem_id"], body["offset"], body["total"]) == (problem["id"], 3, 8)
    assert [g["id"] for g in body["groups"]] == ranking[3:7]
    assert [g["rank"] for g in body["groups"]] == [4, 5, 6, 7]
    for g in body["groups"]:
        assert g["curves"] == by_id[g["id"]]["curves"]
    # with room for all 31 points, the page's trajectories are the summary's whole paths
    roomy = client.get(f"{url}/curves", params={**params, "max_points": 40}).json()
    for g in roomy["groups"]:
        assert [(t["x"], t["y"]) for t in g["trajectories"]] == [
            (trajectories[g["id"], s]["x"], trajectories[g["id"], s]["y"]) for s in (0, 1, 2)
        ]
        assert len(g["trajectories"][0]["x"]) == 31
    last = client.get(f"{url}/curves", params={**params, "offset": 7}).json()
    assert [g["id"] for g in last["groups"]] == ranking[7:]
    named = client.get(f"{url}/curves", params={"group_id": [ranking[5], ranking[0]]}).json()
    assert [g["id"] for g in named["groups"]] == [ranking[5], ranking[0]]
    assert [g["rank"] for g in named["groups"]] == [6, 1]
    assert (
        client.get(
            f"{url}/curves", headers={"If-None-Match": page.headers["etag"]}, params=params
        ).status_code
        == 304
    )
    for bad, path in (
        ({"group_id": "0" * 12}, "query.group_id"),
        ({"problem": "nope"}, "query.problem"),
    ):
        answer = client.get(f"{url}/curves", params=bad)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["path"] == path


def long_run(seed: int, n: int, stop: int | None = None) -> dict[str, Any]:
    """A run with ``n`` eval points (steps 0 … n−1), noisy and spiky, cut at ``stop`` points."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    losses = 10.0 / (1.0 + steps) * np.exp(rng.normal(0.0, 0.3, n))
    losses[rng.integers(0, n, 5)] *= 1e3  # spikes between kept points
    stop = n if stop is None else stop
    return {
        "eval_steps": steps[:stop],
        "losses": losses[:stop],
        "wall_times": 1e-3 * steps[:stop],
        "lrs": np.linspace(0.1, 0.0, n)[:stop],
    }


def test_a_short_run_is_read_whole() -> None:
    run = long_run(0, READ_POINTS)
    reduced = reduce_run(run, READ_POINTS - 1, 0.0)
    assert reduced.keys() == run.keys()
    assert all(reduced[k] is run[k] for k in run)


def test_a_long_run_keeps_bucket_ends_and_each_buckets_extremes() -> None:
    n, steps = 25_000, 24_999
    full = long_run(1, n)
    early = long_run(1, n, stop=9_000)  # the same run, stopped early: its points line up
    reduced = reduce_run(full, steps, 0.0)
    cut = reduce_run(early, steps, 0.0)
    x = reduced["eval_steps"]
    assert isinstance(x, np.ndarray) and len(x) <= READ_POINTS + 2
    assert x[0] == 0 and x[-1] == n - 1
    assert np.array_equal(cut["eval_steps"][:-1], x[: len(cut["eval_steps"]) - 1])
    assert cut["eval_steps"][-1] == 8_999
    # every eval-aligned curve at the kept points; the envelope is each range's min and max
    assert np.array_equal(reduced["losses"], full["losses"][x])
    assert np.array_equal(reduced["wall_times"], full["wall_times"][x])
    starts = np.concatenate([[0], x[:-1] + 1])
    for i in (0, 1, 500, len(x) - 1):
        segment = full["losses"][starts[i] : x[i] + 1]
        assert reduced["losses_lo"][i] == segment.min()
        assert reduced["losses_hi"][i] == segment.max()
    assert reduced["losses_hi"].max() == full["losses"].max()  # every spike survives
    assert reduced["auc_log_subopt"] == auc_log_subopt(full["eval_steps"], full["losses"], 0.0)
    lrs = reduced["update_steps"]
    assert len(lrs) <= READ_POINTS + 2 and np.array_equal(reduced["lrs"], full["lrs"][lrs])


def test_a_summary_of_long_runs_read_in_buckets() -> None:
    """Statistics from the stored metrics and the whole-curve AUC; bands on the kept points
    whose envelope still holds every run's extremes."""
    n = 25_000
    records = []
    for seed in range(3):
        curves = long_run(seed, n)
        losses = curves["losses"]
        records.append(
            {
                **record(ADAM, seed, losses.tolist(), steps=n - 1),
                "lrs": curves["lrs"].tolist(),
                "wall_times": curves["wall_times"].tolist(),
            }
        )
    whole = summarize(records, max_points=300)
    read = summarize(
        [
            {**r, **reduce_run({k: np.asarray(r[k]) for k in CURVES}, n - 1, r["f_star"])}
            for r in records
        ],
        max_points=300,
    )
    (g_whole,), (g_read,) = whole["groups"], read["groups"]
    assert g_read["metrics"] == g_whole["metrics"]  # the AUC included
    band, full_band = g_read["curves"]["loss"], g_whole["curves"]["loss"]
    assert len(band["x"]) <= 300 and band["x"][-1] == full_band["x"][-1] == n - 1
    assert band["mean"][-1] == full_band["mean"][-1]
    assert min(band["lo"]) == min(full_band["lo"]) and max(band["hi"]) == max(full_band["hi"])
    assert set(band["n"]) == {3}
    ecdf, full_ecdf = read["rankings"]["ecdf"]["overall"], whole["rankings"]["ecdf"]["overall"]
    assert ecdf["series"][0]["y"][-1] == full_ecdf["series"][0]["y"][-1]


def test_stored_long_runs_are_read_in_buckets(client: TestClient, db: Database) -> None:
    spec = {**SWEEP, "name": "long", "optimizers": [{"name": "adam", "lr": 0.01}], "steps": 4_500}
    experiment_id = submit(client, spec)
    results = finish(db, experiment_id)
    assert len(results[0]["losses"]) == 4_501 > READ_POINTS
    body = client.get(f"/v1/experiments/{experiment_id}/summary").json()
    whole = summarize(results)
    (group,), (expected,) = body["groups"], whole["groups"]
    assert group["metrics"] == expected["metrics"]  # the AUC from the whole curves
    band, full = group["curves"]["loss"], expected["curves"]["loss"]
    assert band["x"][-1] == 4_500 and band["mean"][-1] == full["mean"][-1]
    assert min(band["lo"]) == min(full["lo"]) and max(band["hi"]) == max(full["hi"])
    (version,) = [
        v for (eid, _), v in summary_routes._versions.items.items() if eid == experiment_id
    ]
    for run in version.groups[0].records:
        assert len(run["eval_steps"]) <= READ_POINTS + 2
        assert len(run["losses"]) == len(run["wall_times"]) == len(run["eval_steps"])
