"""Quotas per owner, counted in the real Redis: requests per minute, queued runs, run-steps/day."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from engine.spec import parse_experiment
from tests.conftest import SIMPLE_SPEC
from tests.security.conftest import bearer, owner_name

RUNS = parse_experiment(SIMPLE_SPEC).count_runs()  # 3 runs of 200 steps


def assert_429(response: httpx.Response, fragment: str) -> int:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_requests_per_minute(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str]
) -> None:
    client = secured(rate_limit_per_minute=5)
    alice, bob = make_token(owner_name(), "read"), make_token(owner_name(), "read")
    statuses = [client.get("/v1/experiments", headers=bearer(alice)).status_code for _ in range(5)]
    assert statuses == [200] * 5
    retry_after = assert_429(
        client.get("/v1/experiments", headers=bearer(alice)), "5 requests per minute"
    )
    assert retry_after <= 60
    # Another owner has a budget of its own; probes are never counted.
    assert client.get("/v1/experiments", headers=bearer(bob)).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_queued_runs(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str]
) -> None:
    client = secured(max_queued_runs_per_owner=2 * RUNS)
    name = owner_name()
    token = make_token(name, "write")
    first = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(token))
    second = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(token))
    assert first.status_code == second.status_code == 202
    third = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(token))
    assert_429(third, f"{2 * RUNS} runs queued or running + {RUNS} new > {2 * RUNS}")
    # Cancelling frees the backlog.
    cancel = first.json()["links"]["cancel"]
    assert client.post(cancel, headers=bearer(token)).status_code == 202
    again = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(token))
    assert again.status_code == 202


def test_run_steps_per_day(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str]
) -> None:
    cost = RUNS * SIMPLE_SPEC["steps"]
    client = secured(max_run_steps_per_day=2 * cost)
    token = make_token(owner_name(), "write")
    for _ in range(2):
        assert (
            client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(token)).status_code
            == 202
        )
    retry_after = assert_429(
        client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(token)),
        f"{2 * cost} run-steps per day",
    )
    assert retry_after <= 24 * 3600
    # One experiment larger than a whole day's budget can never pass: a 422, not a 429.
    big = {**SIMPLE_SPEC, "steps": math.ceil(2 * cost / RUNS) + 1}
    response = client.post("/v1/experiments", json=big, headers=bearer(token))
    assert response.status_code == 422
    assert "per day" in response.json()["detail"]
