"""A summary that carries curves for a bounded number of groups, and the endpoint that pages
through the rest: everything it includes equals the unbounded summary, and the curves fetched
later equal the ones the unbounded summary carries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analysis.groups import group_runs
from analysis.summary import ranked, summarize
from api.db import Database
from engine.runner import run_batch
from engine.spec import expand, parse_experiment
from tests.summary.test_routes import finish, submit

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
