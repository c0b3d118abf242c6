"""The summary and export routes over stored runs, and the dashboard's static files.

Runs are stored the way the worker stores them (claim, checkpoint, finish through ``api.store``),
with results computed by the engine in this process, so each route can be checked against the
pure functions applied to the very same results.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analysis.curves import problem_contour
from analysis.export import export_rows
from analysis.summary import summarize
from api import store
from api.db import Database
from api.models import Run, utcnow
from api.routes.summary import CURVE_GROUPS
from api.services.summary import gc_paused
from engine.runner import run_batch

SPEC: dict[str, Any] = {
    "name": "summary-route",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [{"name": "adam", "lr": [0.01, 0.05]}, {"name": "sgd", "lr": 0.001}],
    "seeds": [0, 1, 2],
    "steps": 60,
    "target_loss": 0.5,
}


def submit(client: TestClient, spec: dict[str, Any] = SPEC) -> str:
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def claim(db: Database, experiment_id: str, token: str = "t1") -> store.Claim:
    with db.writer() as session:
        row_ids = [r.id for r in session.query(Run).filter_by(experiment_id=experiment_id).all()]
        claimed = store.claim_runs(
            session,
            experiment_id,
            row_ids,
            token=token,
            now=utcnow(),
            lease_s=60.0,
            max_attempts=3,
        )
        session.commit()
    return claimed


def finish(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """Run every run here and store the results as a worker would; results in run order."""
    claimed = claim(db, experiment_id)
    results = run_batch(list(claimed.runs.values()))
    with db.writer() as session:
        store.finish_runs(
            session,
            experiment_id,
            "t1",
            dict(zip(claimed.runs, results, strict=True)),
            now=utcnow(),
        )
        session.commit()
    # as the API shows them: its own run id, the engine's as the spec hash
    return [
        {**r, "run_id": row, "spec_hash": r["run_id"], "status": "succeeded"}
        for row, r in zip(claimed.runs, results, strict=True)
    ]


def test_summary_equals_the_statistics_of_the_stored_results(
    client: TestClient, db: Database
) -> None:
    experiment_id = submit(client)
    results = finish(db, experiment_id)
    response = client.get(f"/v1/experiments/{experiment_id}/summary")
    assert response.status_code == 200
    expected = summarize(
        results,
        contour=lambda g: problem_contour(g, max_points=400),
        curve_groups=CURVE_GROUPS,
    )
    expected.update(experiment_id=experiment_id, status="succeeded")
    # Curves round-trip bit-exactly through storage, so every number agrees to the last digit.
    assert response.json() == json.loads(json.dumps(expected))
    body = response.json()
    assert [s["label"] for s in body["solvers"]] == [
        "adam(lr=0.01) / constant",
        "adam(lr=0.05) / constant",
        "sgd / constant",
    ]
    assert body["tuning"][0]["param"] == "lr"


def test_summary_options_and_conditional_requests(client: TestClient, db: Database) -> None:
    experiment_id = submit(client)
    url = f"/v1/experiments/{experiment_id}/summary"
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.json()["groups"][0]["curves"] is None  # queued: nothing yet
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    finish(db, experiment_id)
    second = client.get(url, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    body = client.get(
        url, params={"metric": "best_loss", "baseline": "sgd", "max_points": 5}
    ).json()
    assert body["metric"] == "best_loss"
    assert all(c["baseline"] == "sgd / constant" for c in body["comparisons"])
    assert all(len(g["curves"]["loss"]["x"]) <= 5 for g in body["groups"])
    assert body["groups"][0]["curves"]["loss"]["x"][-1] == 60


def test_summary_of_a_running_experiment_shows_partial_curves(
    client: TestClient, db: Database
) -> None:
    experiment_id = submit(client)
    claimed = claim(db, experiment_id)
    partials: list[list[dict[str, Any]]] = []
    run_batch(list(claimed.runs.values()), on_checkpoint=partials.append, checkpoint_every_s=0.0)
    # every run as it was after six updates (runs of different optimizers are separate batches)
    early = {r["run_id"]: r for batch in partials for r in batch if r["steps_done"] == 6}
    with db.writer() as session:
        store.save_checkpoint(
            session,
            "t1",
            {row: early[spec.run_id] for row, spec in claimed.runs.items()},
            store.CurveLog(),
            now=utcnow(),
            lease_s=60.0,
        )
        session.commit()
    body = client.get(f"/v1/experiments/{experiment_id}/summary").json()
    assert body["status"] == "running"
    for group in body["groups"]:
        # six updates done; the loss after the sixth is evaluated with the seventh gradient
        assert group["curves"]["loss"]["x"] == list(range(6))
        assert {r["status"] for r in group["runs"]} == {"running"}
        # running runs are not outcomes yet: curves show, statistics wait
        final = group["metrics"]["final_loss"]
        assert (final["n"], final["n_missing"], final["mean"]) == (0, 3, None)


def test_exports_list_every_run_with_flattened_hyperparameters(
    client: TestClient, db: Database
) -> None:
    experiment_id = submit(client)
    results = finish(db, experiment_id)
    columns, rows = export_rows(results)
    got = client.get(f"/v1/experiments/{experiment_id}/runs.json")
    assert got.status_code == 200
    assert got.json() == json.loads(
        json.dumps({"experiment_id": experiment_id, "columns": columns, "runs": rows})
    )
    text = client.get(f"/v1/experiments/{experiment_id}/runs.csv")
    assert text.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text.text)))
    assert len(table) == 9 and list(table[0]) == columns
    by_id = {r["run_id"]: r for r in results}
    for row in table:
        result = by_id[row["run_id"]]
        assert float(row["final_loss"]) == result["final_loss"]
        assert float(row["optimizer.lr"]) == result["spec"]["optimizer"]["lr"]
        assert row["status"] == "succeeded"
        # one id per run everywhere: the export's run_id is the one /v1/runs/{id} accepts
        run = client.get(f"/v1/runs/{row['run_id']}").json()
        assert (run["id"], run["spec_hash"]) == (row["run_id"], row["spec_hash"])
    summary = client.get(f"/v1/experiments/{experiment_id}/summary").json()
    assert {r["run_id"] for g in summary["groups"] for r in g["runs"]} == set(by_id)
    etag = text.headers["etag"]
    again = client.get(f"/v1/experiments/{experiment_id}/runs.csv", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_loss_landscape_is_the_problem_loss_on_a_grid(client: TestClient, db: Database) -> None:
    experiment_id = submit(client)
    results = finish(db, experiment_id)
    (problem,) = client.get(f"/v1/experiments/{experiment_id}/summary").json()["problems"]
    contour = problem["contour"]
    assert contour["seed"] == 0 and len(contour["x"]) == len(contour["y"]) == 64
    for j, i in ((0, 0), (17, 40), (63, 63)):
        x, y = contour["x"][i], contour["y"][j]
        assert contour["z"][j][i] == pytest.approx(100 * (y - x * x) ** 2 + (1 - x) ** 2, rel=1e-12)
    assert contour["minimizers"] == [[1.0, 1.0]]  # Rosenbrock's valley floor
    # Every run's trajectory, by seed; the grid covers the landscape seed's trajectories.
    by_seed = sorted((t["seed"], t["x"][0], t["y"][-1]) for t in contour["trajectories"])
    expected = sorted((r["spec"]["seed"], r["params_x"][0], r["params_y"][-1]) for r in results)
    assert by_seed == expected
    xs = [v for t in contour["trajectories"] if t["seed"] == 0 for v in t["x"]]
    assert contour["x"][0] <= min(xs) and max(xs) <= contour["x"][-1]


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/v1/experiments/0123456789abcdef01234567/summary", 404, "no experiment"),
        ("/v1/experiments/" + "z" * 500 + "/runs.csv", 404, "no experiment"),
        ("/v1/experiments/{id}/summary?metric=loss", 422, "the request is invalid"),
        ("/v1/experiments/{id}/summary?baseline=rmsprop", 422, "no solver matches 'rmsprop'"),
        ("/v1/experiments/{id}/summary?max_points=1", 422, "the request is invalid"),
    ],
)
def test_errors_are_problem_documents(
    client: TestClient, path: str, status: int, detail: str
) -> None:
    experiment_id = submit(client)
    response = client.get(path.replace("{id}", experiment_id))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(detail)


def test_the_dashboard_is_served_without_a_build_step(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<main id="app">' in page.text
    for asset in ("static/app.js", "static/plots.js", "static/vendor/uPlot.iife.min.js"):
        assert asset in page.text
        response = client.get("/" + asset)
        assert response.status_code == 200, asset
        assert "javascript" in response.headers["content-type"]
    assert client.get("/static/vendor/uPlot.LICENSE").text.startswith("The MIT License")
    assert client.get("/static/nope.js").status_code == 404


def test_a_batched_sweep_reports_amortised_per_run_times(client: TestClient, db: Database) -> None:
    """16 runs stepped as one batch: each run's time is a 16th of the batch's, so the summary's
    per-run times add up to the batch's time — at most the time the whole sweep took, measured
    here from outside — instead of each run reporting the whole batch."""
    spec = {
        "name": "batched-sweep",
        "problems": [{"name": "rosenbrock", "dim": 2}],
        "optimizers": [{"name": "adam", "lr": [0.001, 0.003, 0.01, 0.03]}],
        "seeds": [0, 1, 2, 3],
        "steps": 400,
    }
    experiment_id = submit(client, spec)
    started = time.perf_counter()
    finish(db, experiment_id)
    elapsed = time.perf_counter() - started
    body = client.get(f"/v1/experiments/{experiment_id}/summary").json()
    runs = [r for g in body["groups"] for r in g["runs"]]
    assert len(runs) == 16
    assert {r["batch_size"] for r in runs} == {16}
    batch_time = runs[0]["batch_wall_time_s"]
    assert all(r["batch_wall_time_s"] == batch_time for r in runs)  # no run diverged
    total = sum(r["wall_time_s"] for r in runs)
    assert total == pytest.approx(batch_time, rel=1e-12)
    assert 0 < total <= elapsed  # 16× the batch's time would exceed the sweep's own duration
    # The wall-time axis of the curves is the per-run time too.
    wall_axis = [g["curves"]["loss"]["wall_time"][-1] for g in body["groups"]]
    assert wall_axis == pytest.approx([batch_time / 16] * 4, rel=1e-12)
    listed = client.get(f"/v1/experiments/{experiment_id}/runs.json").json()["runs"]
    assert sum(r["wall_time_s"] for r in listed) == pytest.approx(batch_time, rel=1e-12)
    assert {r["batch_size"] for r in listed} == {16}


def test_gc_paused_restores_the_collector_state() -> None:
    """Collection is off inside, back on after (also when the body raises), and left off when it
    was off before (a concurrent summary or the caller turned it off)."""
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
