"""Managing experiments: tags, archive, delete, run-list filters by name, gzip, offline docs."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi.testclient import TestClient

from api import schemas
from api.db import Database
from api.models import Run, RunCurve, utcnow
from api.routes.experiments import SPEC_EXAMPLES
from api.store import claim_runs
from tests.api.test_runs import complete
from tests.conftest import SIMPLE_SPEC

MIXED: dict[str, Any] = {
    "name": "mixed",
    "tags": ["sweep", "paper"],
    "problems": [{"name": "rosenbrock", "dim": 2}, {"name": "quadratic", "dim": 2}],
    "optimizers": [{"name": "sgd", "lr": [1e-3, 1e-2]}, {"name": "adam", "lr": 0.01}],
    "schedules": [{"name": "constant"}, {"name": "cosine", "T_max": 20}],
    "steps": 20,
}


def ids(page: dict[str, Any]) -> list[str]:
    return [e["id"] for e in page["items"]]


def test_tags_are_set_at_submit_filtered_and_patched(client: TestClient) -> None:
    tagged = client.post("/v1/experiments", json=MIXED).json()
    plain = client.post("/v1/experiments", json=SIMPLE_SPEC).json()
    assert tagged["tags"] == ["paper", "sweep"] and plain["tags"] == []
    assert ids(client.get("/v1/experiments?tag=sweep").json()) == [tagged["id"]]
    assert ids(client.get("/v1/experiments?tag=swe").json()) == []  # exact, not a substring
    patched = client.patch(
        f"/v1/experiments/{plain['id']}", json={"tags": ["sweep"], "description": "now tagged"}
    )
    assert patched.status_code == 200
    schemas.Experiment.model_validate(patched.json())
    assert patched.json()["description"] == "now tagged"
    assert ids(client.get("/v1/experiments?tag=sweep").json()) == [plain["id"], tagged["id"]]
    bad = client.post("/v1/experiments", json={**MIXED, "tags": ["has space"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "tags[0]"
    unknown = client.patch(f"/v1/experiments/{plain['id']}", json={"status": "succeeded"})
    assert unknown.status_code == 422


def test_archived_experiments_leave_the_default_listing(client: TestClient) -> None:
    first = client.post("/v1/experiments", json=SIMPLE_SPEC).json()["id"]
    second = client.post("/v1/experiments", json=SIMPLE_SPEC).json()["id"]
    archived = client.patch(f"/v1/experiments/{first}", json={"archived": True}).json()
    assert archived["archived_at"] is not None
    assert ids(client.get("/v1/experiments").json()) == [second]
    assert ids(client.get("/v1/experiments?archived=true").json()) == [first]
    assert client.get(f"/v1/experiments/{first}").status_code == 200  # still readable
    client.patch(f"/v1/experiments/{first}", json={"archived": False})
    assert ids(client.get("/v1/experiments").json()) == [second, first]


def test_delete_removes_everything_and_queued_runs_never_start(
    client: TestClient, db: Database
) -> None:
    done = client.post("/v1/experiments", json=MIXED).json()["id"]
    complete(db, done)
    queued = client.post("/v1/experiments", json=SIMPLE_SPEC).json()["id"]
    with db.session() as session:
        queued_runs = [r.id for r in session.query(Run).filter_by(experiment_id=queued)]
        assert session.query(RunCurve).join(Run).filter(Run.experiment_id == done).count() > 0
    for experiment_id in (done, queued):
        assert client.delete(f"/v1/experiments/{experiment_id}").status_code == 204
        assert client.get(f"/v1/experiments/{experiment_id}").status_code == 404
        assert client.delete(f"/v1/experiments/{experiment_id}").status_code == 404
    with db.session() as session:
        assert session.query(Run).count() == 0
        assert session.query(RunCurve).count() == 0
    # The task already published for the queued runs finds nothing to claim.
    with db.writer() as session:
        claim = claim_runs(
            session, queued, queued_runs, token="t" * 32, now=utcnow(), lease_s=60, max_attempts=3
        )
    assert claim.runs == {} and claim.dropped == []


def test_runs_filter_by_names_and_sort_within(client: TestClient, db: Database) -> None:
    experiment_id = client.post("/v1/experiments", json=MIXED).json()["id"]
    results = complete(db, experiment_id)
    base = f"/v1/experiments/{experiment_id}/runs"
    page = client.get(f"{base}?problem=quadratic&optimizer=sgd&sort=final_loss").json()
    items = page["items"]
    expected = {
        r
        for r, res in results.items()
        if res["spec"]["problem"]["name"] == "quadratic"
        and res["spec"]["optimizer"]["name"] == "sgd"
    }
    assert {i["id"] for i in items} == expected and len(expected) == 4
    losses = [i["metrics"]["final_loss"] for i in items]
    assert losses == sorted(losses)
    cosine = client.get(f"{base}?schedule=cosine").json()["items"]
    assert len(cosine) == 6 and {i["spec"]["schedule"]["name"] for i in cosine} == {"cosine"}
    assert client.get(f"{base}?optimizer=lion").json()["items"] == []


def test_large_json_is_gzipped_when_asked(client: TestClient, db: Database) -> None:
    experiment_id = client.post("/v1/experiments", json=MIXED).json()["id"]
    complete(db, experiment_id)
    url = f"/v1/experiments/{experiment_id}/summary"
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    raw = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert zipped.json() == raw.json()
    assert len(gzip.compress(raw.content)) < len(raw.content) / 3
    small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_docs_are_served_from_this_service(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    for asset in ("static/vendor/swagger-ui/swagger-ui-bundle.js", "static/docs.js"):
        assert f'src="{asset}"' in page.text
        assert client.get(f"/{asset}").status_code == 200
    assert "<script>" not in page.text  # no inline script: a strict CSP can serve it


def test_request_examples_are_valid_specs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/experiments"]["post"]["requestBody"]["content"]
    assert body["application/json"]["examples"].keys() == SPEC_EXAMPLES.keys()
    for example in SPEC_EXAMPLES.values():
        response = client.post("/v1/experiments?dry_run=true", json=example["value"])
        assert response.status_code == 200, response.json()
