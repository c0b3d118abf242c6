"""Run listing (sort, filter, keyset pages) and one run with its curves (views, ETag)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.db import Database
from api.models import Run, utcnow
from api.store import claim_runs, finish_runs
from engine.curves import downsample, since
from engine.runner import plain_result, run_batch
from tests.conftest import SIMPLE_SPEC

GRID_SPEC: dict[str, Any] = {
    "name": "grid",
    "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
    "optimizers": [{"name": "sgd", "lr": [1e-4, 3e-4, 1e-3, 2e-3, 5.0], "momentum": 0.9}],
    "steps": 150,
    "target_loss": 1.0,
}


def complete(db: Database, experiment_id: str) -> dict[str, dict[str, Any]]:
    """Claim and run every run of the experiment in-process; returns results by row id."""
    with db.writer() as session:
        ids = [r.id for r in session.query(Run).filter_by(experiment_id=experiment_id)]
        claim = claim_runs(
            session, experiment_id, ids, token="t" * 32, now=utcnow(), lease_s=60, max_attempts=3
        )
        session.commit()
    rows = list(claim.runs)
    outputs = run_batch([claim.runs[r] for r in rows])
    results = dict(zip(rows, outputs, strict=True))
    with db.writer() as session:
        finish_runs(session, experiment_id, "t" * 32, results, now=utcnow())
        session.commit()
    return {row_id: plain_result(result) for row_id, result in results.items()}


@pytest.fixture
def finished(client: TestClient, db: Database) -> tuple[str, dict[str, dict[str, Any]]]:
    experiment_id = client.post("/v1/experiments", json=GRID_SPEC).json()["id"]
    return experiment_id, complete(db, experiment_id)


def test_runs_list_in_submission_order(client: TestClient, finished: Any) -> None:
    experiment_id, results = finished
    page = client.get(f"/v1/experiments/{experiment_id}/runs").json()
    schemas.RunPage.model_validate(page)
    assert page["next_cursor"] is None
    assert [r["spec"]["optimizer"]["lr"] for r in page["items"]] == [1e-4, 3e-4, 1e-3, 2e-3, 5.0]
    run = page["items"][0]
    assert "curves" not in run
    expected = results[run["id"]]
    for key in ("final_loss", "best_loss", "steps_to_target", "diverged", "steps_done"):
        assert run["metrics"][key] == expected[key]
    assert run["status"] == "succeeded" and run["attempts"] == 1
    assert run["links"]["self"] == f"/v1/runs/{run['id']}"


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_by_metric_with_missing_values_last(
    client: TestClient, finished: Any, order: str
) -> None:
    experiment_id, results = finished
    diverged = [r for r, res in results.items() if res["diverged"]]
    assert diverged, "lr 5.0 must diverge on Rosenbrock"
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = client.get(
            f"/v1/experiments/{experiment_id}/runs?sort=final_loss&order={order}&limit=2{cursor}"
        ).json()
        seen += page["items"]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    losses = [r["metrics"]["final_loss"] for r in seen]
    present = [x for x in losses if x is not None]
    assert present == sorted(present, reverse=order == "desc")
    assert losses[len(present) :] == [None] * (len(losses) - len(present))
    assert sorted(r["id"] for r in seen) == sorted(results)


def test_filter_by_status_and_a_cursor_continues_after_its_run(
    client: TestClient, finished: Any
) -> None:
    experiment_id, _ = finished
    runs = f"/v1/experiments/{experiment_id}/runs"
    assert client.get(f"{runs}?status=queued").json()["items"] == []
    page = client.get(f"{runs}?sort=best_loss&limit=1").json()
    # The cursor is the page's last run: another order continues after that run in its order.
    by_position = [r["id"] for r in client.get(runs).json()["items"]]
    after = client.get(f"{runs}?cursor={page['next_cursor']}").json()["items"]
    assert page["next_cursor"] == page["items"][0]["id"]
    assert [r["id"] for r in after] == by_position[by_position.index(page["next_cursor"]) + 1 :]
    # A run of no experiment, or of another one: a 404 naming the cursor.
    other_id = client.post("/v1/experiments", json=GRID_SPEC).json()["id"]
    other_run = client.get(f"/v1/experiments/{other_id}/runs").json()["items"][0]["id"]
    for cursor in ("0" * 24, other_run):
        missing = client.get(f"{runs}?cursor={cursor}")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["path"] == "query.cursor"
    bad_sort = client.get(f"{runs}?sort=spec")
    assert bad_sort.status_code == 422
    assert bad_sort.json()["errors"][0]["path"] == "query.sort"


def test_run_with_curves_round_trips_exactly(client: TestClient, finished: Any) -> None:
    _, results = finished
    for row_id, expected in results.items():
        response = client.get(f"/v1/runs/{row_id}")
        assert response.status_code == 200
        body = response.json()
        schemas.RunWithCurves.model_validate(body)
        curves = body["curves"]
        for key in ("eval_steps", "losses", "params_x", "params_y", "lrs", "grad_norms"):
            assert curves[key] == expected[key], key
        assert curves["update_steps"] == list(range(len(expected["lrs"])))
        assert body["metrics"]["final_loss"] == expected["final_loss"]


def test_curve_views(client: TestClient, finished: Any) -> None:
    _, results = finished
    row_id, expected = next(iter(results.items()))
    full = client.get(f"/v1/runs/{row_id}").json()["curves"]
    small = client.get(f"/v1/runs/{row_id}?max_points=20").json()["curves"]
    assert small == downsample(full, 20)
    assert len(small["losses"]) <= 20 and small["losses"][-1] == expected["losses"][-1]
    tail = client.get(f"/v1/runs/{row_id}?since_step=100").json()["curves"]
    assert tail == since(full, 100)
    assert tail["eval_steps"][0] == 100 and tail["update_steps"][0] == 100
    both = client.get(f"/v1/runs/{row_id}?since_step=100&max_points=9").json()["curves"]
    assert both == downsample(since(full, 100), 9)
    for query in ("max_points=0", "since_step=-1"):
        assert client.get(f"/v1/runs/{row_id}?{query}").status_code == 422


def test_run_etag_changes_with_each_write(client: TestClient, db: Database) -> None:
    experiment_id = client.post("/v1/experiments", json=SIMPLE_SPEC).json()["id"]
    run_id = client.get(f"/v1/experiments/{experiment_id}/runs").json()["items"][0]["id"]
    queued = client.get(f"/v1/runs/{run_id}")
    assert queued.json()["curves"]["losses"] == [] and queued.json()["status"] == "queued"
    etag = queued.headers["etag"]
    assert client.get(f"/v1/runs/{run_id}", headers={"If-None-Match": etag}).status_code == 304
    # The ETag covers the view: another max_points is another representation.
    assert (
        client.get(f"/v1/runs/{run_id}?max_points=5", headers={"If-None-Match": etag}).status_code
        == 200
    )
    complete(db, experiment_id)
    done = client.get(f"/v1/runs/{run_id}", headers={"If-None-Match": etag})
    assert done.status_code == 200 and done.headers["etag"] != etag
    assert done.json()["status"] == "succeeded"


def test_unknown_run_is_404(client: TestClient) -> None:
    for ident in ("f" * 24, "short", "z" * 1000):
        response = client.get(f"/v1/runs/{ident}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
