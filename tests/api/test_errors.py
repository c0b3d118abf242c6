"""Every error is an RFC 9457 problem document: routes, methods, body size, crashes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import schemas
from api.config import Settings
from api.db import Database
from api.main import create_app
from tests.conftest import SIMPLE_SPEC


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
