"""``/v1/experiments``: submission, dry runs, idempotency, limits, listing, reading, cancelling."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.config import Settings
from api.db import Database
from api.main import create_app
from api.models import Experiment, Run
from engine.spec import expand, parse_experiment
from tests.conftest import SIMPLE_SPEC


def submit(client: TestClient, spec: dict[str, Any] | None = None, **kw: Any) -> Any:
    return client.post("/v1/experiments", json=spec or SIMPLE_SPEC, **kw)


def test_submit_stores_runs_and_enqueues(
    client: TestClient, db: Database, queue_length: Callable[[], int]
) -> None:
    response = submit(client)
    assert response.status_code == 202
    body = response.json()
    schemas.Experiment.model_validate(body)
    assert response.headers["location"] == f"/v1/experiments/{body['id']}"
    assert body["status"] == "queued"
    assert body["total_runs"] == 3
    assert body["counts"] == {
        "queued": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert body["progress"] == 0.0
    assert body["started_at"] is None and body["finished_at"] is None
    assert body["created_at"].endswith("Z")
    assert body["links"]["runs"] == f"/v1/experiments/{body['id']}/runs"
    # The stored spec is the validated one, defaults resolved.
    assert body["spec"] == parse_experiment(SIMPLE_SPEC).model_dump(mode="json")
    # Three small runs of one problem: a single task message, published after the commit.
    assert queue_length() == 1
    with db.session() as session:
        runs = session.query(Run).filter_by(experiment_id=body["id"]).order_by(Run.position).all()
        engine_ids = [r.run_id for r in expand(parse_experiment(SIMPLE_SPEC))]
        assert [r.spec_hash for r in runs] == engine_ids
        expected = [
            hashlib.sha256(f"{body['id']}:{e}".encode()).hexdigest()[:24] for e in engine_ids
        ]
        assert [r.id for r in runs] == expected
        assert all(r.enqueued_at is not None and r.status == "queued" for r in runs)


def test_identical_runs_collapse(client: TestClient) -> None:
    spec = {**SIMPLE_SPEC, "optimizers": [{"name": "sgd", "lr": [0.01, 0.01]}], "seeds": [0, 0]}
    body = submit(client, spec).json()
    assert body["total_runs"] == 1


def test_dry_run_stores_nothing(client: TestClient, queue_length: Callable[[], int]) -> None:
    response = client.post("/v1/experiments?dry_run=true", json=SIMPLE_SPEC)
    assert response.status_code == 200
    body = response.json()
    runs = expand(parse_experiment(SIMPLE_SPEC))
    assert body == {
        "run_count": 3,
        "runs": [{"run_id": r.run_id, **r.model_dump(mode="json")} for r in runs],
    }
    assert client.get("/v1/experiments").json()["items"] == []
    assert queue_length() == 0


def test_idempotency_key_replays_and_refuses_other_bodies(
    client: TestClient, queue_length: Callable[[], int]
) -> None:
    first = submit(client, headers={"Idempotency-Key": "abc-1"})
    assert first.status_code == 202
    again = submit(client, headers={"Idempotency-Key": "abc-1"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    # The same spec written differently (defaults spelled out, keys reordered) is the same body.
    spelled = dict(reversed(list({**SIMPLE_SPEC, "seeds": [0], "dtype": "float64"}.items())))
    assert submit(client, spelled, headers={"Idempotency-Key": "abc-1"}).status_code == 200
    other = submit(client, {**SIMPLE_SPEC, "steps": 10}, headers={"Idempotency-Key": "abc-1"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:optbench:problem:idempotency-key-reused"
    assert queue_length() == 1
    assert len(client.get("/v1/experiments").json()["items"]) == 1


def test_without_key_each_post_is_new(client: TestClient) -> None:
    assert submit(client).json()["id"] != submit(client).json()["id"]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"steps": 101}, "steps", "at most 100 steps"),
        ({"seeds": list(range(4))}, "(body)", "expands to 12 runs; at most 10"),
        ({"problems": [{"name": "rosenbrock", "dim": 64}]}, "problems[0]", "64 parameters"),
    ],
)
def test_service_limits(
    make_settings: Callable[..., Settings],
    sqlite_url: str,
    embedded_broker: Any,
    db: Database,
    change: dict[str, Any],
    path: str,
    fragment: str,
) -> None:
    settings = make_settings(
        database_url=sqlite_url,
        broker=embedded_broker,
        max_steps_per_run=100,
        max_runs_per_experiment=10,
        max_params_per_problem=50,
    )
    with TestClient(create_app(settings, database=db)) as client:
        response = submit(client, {**SIMPLE_SPEC, "steps": 50, **change})
        # The per-field limits are in the document too (schema-valid requests pass them).
        spec = client.get("/openapi.json").json()["components"]["schemas"]["ExperimentSpec"]
    assert spec["properties"]["steps"]["maximum"] == 100
    assert spec["properties"]["seeds"]["maxItems"] == 10
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:optbench:problem:limit"
    [error] = problem["errors"]
    assert error["path"] == path
    assert fragment in error["message"]


def test_validation_errors_have_precise_paths(client: TestClient) -> None:
    bad = copy.deepcopy(SIMPLE_SPEC)
    bad["problems"][0]["dimm"] = 3
    bad["optimizers"].append({"name": "adamw2"})
    bad["steps"] = 0
    response = submit(client, bad)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"problems[0].dimm", "optimizers[2]", "steps"}
    assert "unknown field" in errors["problems[0].dimm"]
    assert "'adamw2'" in errors["optimizers[2]"] and "'adam'" in errors["optimizers[2]"]
    assert "greater than or equal to 1" in errors["steps"]


def test_rules_across_fields_have_their_own_problem_type(client: TestClient) -> None:
    """Each field valid as the schema describes it, but not together: ``inconsistent``; with an
    error the schema shows among them, the request is plainly invalid."""
    bad = copy.deepcopy(SIMPLE_SPEC)
    bad["problems"] = [{"name": "rosenbrock", "dim": 3, "init": [1.0, 2.0]}]
    problem = submit(client, bad).json()
    assert problem["type"] == "urn:optbench:problem:inconsistent"
    [error] = problem["errors"]
    assert error["path"] == "problems[0]" and "init has 2 values but dim is 3" in error["message"]
    bad["steps"] = 0
    problem = submit(client, bad).json()
    assert problem["type"] == "urn:optbench:problem:invalid-request"
    assert {e["path"] for e in problem["errors"]} == {"problems[0]", "steps"}


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/experiments", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "urn:optbench:problem:malformed-json"
    assert body["errors"][0]["path"] == "(body)"


def test_list_filters_and_paginates_newest_first(client: TestClient) -> None:
    ids = [submit(client, {**SIMPLE_SPEC, "name": f"exp-{i}"}).json()["id"] for i in range(5)]
    client.post(f"/v1/experiments/{ids[1]}/cancel")
    page = client.get("/v1/experiments?limit=2").json()
    schemas.ExperimentPage.model_validate(page)
    assert [e["id"] for e in page["items"]] == ids[::-1][:2]
    assert "spec" not in page["items"][0]
    seen = [e["id"] for e in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"/v1/experiments?limit=2&cursor={page['next_cursor']}").json()
        seen += [e["id"] for e in page["items"]]
    assert seen == ids[::-1]
    cancelled = client.get("/v1/experiments?status=cancelled").json()["items"]
    assert [e["id"] for e in cancelled] == [ids[1]]
    named = client.get("/v1/experiments?name=exp-3").json()["items"]
    assert [e["id"] for e in named] == [ids[3]]
    assert client.get("/v1/experiments?name=%25").json()["items"] == []


@pytest.mark.parametrize(
    ("query", "path"),
    [("limit=0", "query.limit"), ("limit=501", "query.limit"), ("status=done", "query.status")],
)
def test_list_query_validation(client: TestClient, query: str, path: str) -> None:
    response = client.get(f"/v1/experiments?{query}")
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == [path]


def test_cursors_are_ids_and_every_id_is_a_cursor(client: TestClient) -> None:
    ids = [submit(client, {**SIMPLE_SPEC, "name": f"exp-{i}"}).json()["id"] for i in range(3)]
    # Outside the schema's pattern: a 422 like any other malformed parameter.
    for cursor in ("not-hex!", "eyJ4IjoxfQ", ids[0][:-1]):
        response = client.get(f"/v1/experiments?cursor={cursor}")
        assert response.status_code == 422
        assert response.json()["errors"][0]["path"] == "query.cursor"
    # Any id continues after it, whether or not an experiment has it (ids sort by creation).
    after = client.get(f"/v1/experiments?cursor={ids[2]}").json()["items"]
    assert [e["id"] for e in after][:2] == [ids[1], ids[0]]
    assert client.get(f"/v1/experiments?cursor={'0' * 24}").json()["items"] == []
    newest = client.get(f"/v1/experiments?cursor={'f' * 24}").json()["items"]
    assert [e["id"] for e in newest][:3] == ids[::-1]


def test_get_with_etag(client: TestClient) -> None:
    created = submit(client).json()
    response = client.get(created["links"]["self"])
    assert response.status_code == 200
    assert response.json() == created
    etag = response.headers["etag"]
    assert client.get(created["links"]["self"], headers={"If-None-Match": etag}).status_code == 304
    assert client.get(created["links"]["self"], headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(created["links"]["self"], headers={"If-None-Match": '"x"'}).status_code == 200
    client.post(created["links"]["cancel"])
    changed = client.get(created["links"]["self"], headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_lists_carry_etags_for_polling(client: TestClient) -> None:
    created = submit(client).json()
    for url in ("/v1/experiments", created["links"]["runs"]):
        first = client.get(url)
        etag = first.headers["etag"]
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    listing = client.get("/v1/experiments")
    client.post(created["links"]["cancel"])
    after = client.get("/v1/experiments", headers={"If-None-Match": listing.headers["etag"]})
    assert after.status_code == 200 and after.json() != listing.json()


@pytest.mark.parametrize("ident", ["0" * 24, "nope", "x" * 5000, "ABCDEF0123456789abcdef01"])
def test_unknown_or_absurd_ids_are_404(client: TestClient, ident: str) -> None:
    for response in (
        client.get(f"/v1/experiments/{ident}"),
        client.get(f"/v1/experiments/{ident}/runs"),
        client.post(f"/v1/experiments/{ident}/cancel"),
    ):
        assert response.status_code == 404
        body = response.json()
        assert body["type"] == "urn:optbench:problem:not-found"
        assert len(body["detail"]) < 120


def test_cancel_queued_experiment(client: TestClient, db: Database) -> None:
    created = submit(client).json()
    response = client.post(created["links"]["cancel"])
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["counts"]["cancelled"] == 3 and body["counts"]["queued"] == 0
    assert body["finished_at"] is not None and body["progress"] == 1.0
    # Cancelling again changes nothing.
    again = client.post(created["links"]["cancel"]).json()
    assert again == body
    with db.session() as session:
        exp = session.get(Experiment, created["id"])
        assert exp is not None and exp.cancel_requested_at is not None


def test_openapi_documents_the_spec(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/v1/experiments"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ExperimentSpec")
    assert {"202", "200", "400", "413", "422"} <= set(post["responses"])
    # 200 is a dry run's expansion or, on an Idempotency-Key replay, the original experiment.
    replay = post["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert {s["$ref"].rsplit("/", 1)[1] for s in replay} == {"DryRun", "Experiment"}
    summary = doc["paths"]["/v1/experiments/{experiment_id}/summary"]["get"]["responses"]["200"]
    assert summary["content"]["application/json"]["schema"]["$ref"].endswith("/Summary")
    assert "/v1/runs/{run_id}" in doc["paths"]
    # A registry model's name is its union's tag: required, though the model has a default.
    components = doc["components"]["schemas"]
    assert "name" in components["AdamSpec"]["required"]
    assert "name" in components["RosenbrockSpec"]["required"]
    assert components["ExperimentSpec"]["properties"]["name"]["pattern"] == r"^[^\x00]*$"
    assert client.get("/docs").status_code == 200
    assert json.dumps(doc)  # serialisable
