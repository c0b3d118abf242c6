"""Every error is an RFC 9457 problem document: routes, methods, body size, crashes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import schemas
from api.config import Settings
from api.db import Database
from api.main import create_app
from api.models import Experiment, utcnow
from api.store import cancel_experiment
from tests.conftest import SIMPLE_SPEC, Broker


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    schemas.Problem.model_validate(body)
    assert body["status"] == status
    return body


def test_unknown_route(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/nothing/here"), 404)
    assert body["instance"] == "/v1/nothing/here"
    assert body["title"] == "Not Found"


def test_method_not_allowed_keeps_allow_header(client: TestClient) -> None:
    response = client.delete("/healthz")
    body = assert_problem(response, 405)
    assert "DELETE" in body["detail"]
    assert response.headers["allow"] == "GET"


@pytest.fixture
def small_body_client(app_settings: Settings, db: Database) -> Iterator[TestClient]:
    settings = app_settings.model_copy(update={"max_body_bytes": 2000})
    with TestClient(create_app(settings, database=db)) as client:
        yield client


def test_body_too_large_by_declared_length(small_body_client: TestClient) -> None:
    spec = {**SIMPLE_SPEC, "description": "x" * 3000}
    body = assert_problem(small_body_client.post("/v1/experiments", json=spec), 413)
    assert body["type"] == "urn:optbench:problem:body-too-large"
    assert small_body_client.post("/v1/experiments", json=SIMPLE_SPEC).status_code == 202


def test_body_too_large_when_streamed(small_body_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(30):
            yield b"y" * 100
        yield b'"}'

    response = small_body_client.post(
        "/v1/experiments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


def test_unhandled_exception_is_a_bare_500(app_settings: Settings, db: Database) -> None:
    app = create_app(app_settings, database=db)

    def explode() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route("/v1/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/explode")
    body = assert_problem(response, 500)
    assert body["detail"] == "internal server error"
    assert "secret" not in response.text and "Traceback" not in response.text


def test_bad_header_value(client: TestClient) -> None:
    response = client.post(
        "/v1/experiments", json=SIMPLE_SPEC, headers={"Idempotency-Key": "k" * 201}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["path"] == "header.Idempotency-Key"


@pytest.fixture
def backend_client(
    make_settings: Callable[..., Settings], db_url: str, real_db: Database, embedded_broker: Broker
) -> Iterator[TestClient]:
    """The app on a committing SQLite or PostgreSQL database; what the test submitted is
    cancelled afterwards, so no queued run is left for other tests' reconcilers to find."""
    settings = make_settings(database_url=db_url, broker=embedded_broker)
    started = utcnow()
    with TestClient(create_app(settings, database=real_db), raise_server_exceptions=False) as c:
        yield c
    with real_db.writer() as session:
        mine = select(Experiment.id).where(Experiment.created_at >= started)
        for experiment_id in session.execute(mine).scalars().all():
            cancel_experiment(session, experiment_id, utcnow())
        session.commit()


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [
        (b'{"target_loss": Infinity}', "target_loss", "finite number"),
        (b'{"name": "a\\u0000b"}', "name", "NUL"),
        (b'{"description": "\\u0000"}', "description", "NUL"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_values_no_database_can_store_are_a_422(
    backend_client: TestClient, body: bytes, path: str, fragment: str, dry_run: bool
) -> None:
    """Python's JSON parser reads ``Infinity`` and PostgreSQL text cannot hold U+0000."""
    spec = json.dumps(SIMPLE_SPEC).encode()[:-1] + b", " + body[1:]
    response = backend_client.post(
        f"/v1/experiments?dry_run={str(dry_run).lower()}",
        content=spec,
        headers={"content-type": "application/json"},
    )
    problem = assert_problem(response, 422)
    [error] = problem["errors"]
    assert error["path"] == path and fragment in error["message"]


def test_hostile_queries_and_cursors_are_client_errors(backend_client: TestClient) -> None:
    experiment_id = backend_client.post("/v1/experiments", json=SIMPLE_SPEC).json()["id"]
    runs = f"/v1/experiments/{experiment_id}/runs"
    problem = assert_problem(backend_client.get("/v1/experiments", params={"name": "a\0"}), 422)
    assert problem["errors"][0]["path"] == "query.name"
    for hostile in ("a\0", "0" * 23 + "\0", "0" * 23 + "g", "0" * 25, "eyJiZWZvcmUiOjV9"):
        for path in ("/v1/experiments", runs):
            problem = assert_problem(backend_client.get(path, params={"cursor": hostile}), 422)
            assert problem["errors"][0]["path"] == "query.cursor"
    # A well-formed id pages on every backend, whatever the sort column's type.
    first = backend_client.get(runs, params={"limit": 1}).json()["next_cursor"]
    for sort in ("final_loss", "diverged", "steps_to_target", "wall_time_s"):
        assert backend_client.get(runs, params={"sort": sort, "cursor": first}).status_code == 200
    page = backend_client.get(runs, params={"cursor": first}).json()
    assert len(page["items"]) == 2 and first not in [r["id"] for r in page["items"]]
    assert_problem(backend_client.get(runs, params={"cursor": "0" * 24}), 404)


def test_name_filter_ignores_case_on_both_backends(backend_client: TestClient) -> None:
    created = backend_client.post("/v1/experiments", json={**SIMPLE_SPEC, "name": "Mixed-Case_%"})
    experiment_id = created.json()["id"]

    def found(name: str) -> bool:
        items = backend_client.get("/v1/experiments", params={"name": name}).json()["items"]
        return experiment_id in [e["id"] for e in items]

    assert found("mixed-CASE") and found("case_%")
    assert not found("case_x")  # % and _ are literal characters, not LIKE wildcards
