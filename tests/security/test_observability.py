"""``/metrics``, JSON logs with request ids, and the access log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.db import Database
from api.models import Run
from api.store import run_counts
from tests.conftest import SIMPLE_SPEC
from tests.security.conftest import bearer, owner_name


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_template_and_derive_runs_from_the_store(
    client: TestClient, db: Database, queue_length: Callable[[], int]
) -> None:
    exp = client.post("/v1/experiments", json=SIMPLE_SPEC).json()
    for _ in range(3):
        assert client.get(exp["links"]["self"]).status_code == 200
    assert client.get("/v1/experiments/" + "0" * 24).status_code == 404
    with db.writer() as session:
        run = session.query(Run).filter_by(experiment_id=exp["id"]).order_by(Run.position).first()
        assert run is not None
        run.status, run.steps_done, run.attempts, run.wall_time_s = "succeeded", 200, 3, 0.7
        session.commit()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    route = "/v1/experiments/{experiment_id}"
    assert (
        got[
            (
                "optbench_http_requests_total",
                (("method", "GET"), ("route", route), ("status", "200")),
            )
        ]
        == 3
    )
    assert (
        got[
            (
                "optbench_http_requests_total",
                (("method", "GET"), ("route", route), ("status", "404")),
            )
        ]
        == 1
    )
    assert (
        got[
            (
                "optbench_http_requests_total",
                (("method", "POST"), ("route", "/v1/experiments"), ("status", "202")),
            )
        ]
        == 1
    )
    assert (
        got[("optbench_http_request_duration_seconds_count", (("method", "GET"), ("route", route)))]
        == 4
    )
    # From the database: what the store says, independently counted here.
    with db.session() as session:
        counts = run_counts(session, [exp["id"]])[exp["id"]].by_status
    assert got[("optbench_runs", (("state", "queued"),))] == counts["queued"] == 2
    assert got[("optbench_runs", (("state", "succeeded"),))] == 1
    assert got[("optbench_run_steps_total", ())] == 200
    assert got[("optbench_run_reclaims_total", ())] == 2
    assert got[("optbench_run_wall_time_seconds_bucket", (("le", "0.5"),))] == 0
    assert got[("optbench_run_wall_time_seconds_bucket", (("le", "1.0"),))] == 1
    assert got[("optbench_run_wall_time_seconds_sum", ())] == pytest.approx(0.7)
    assert got[("optbench_queue_depth", ())] == queue_length() == 1


def test_metrics_need_an_admin_token_when_tokens_are_on(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str]
) -> None:
    client = secured()
    assert client.get("/metrics").status_code == 401
    assert (
        client.get("/metrics", headers=bearer(make_token(owner_name(), "write"))).status_code == 403
    )
    assert (
        client.get("/metrics", headers=bearer(make_token(owner_name(), "admin"))).status_code == 200
    )


def test_request_id_and_access_log(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    from api.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="optbench.access"):
        response = client.get("/v1/experiments", headers={"X-Request-ID": "abc-123"})
        made_up = client.get("/healthz").headers["x-request-id"]
        hostile = client.get("/healthz", headers={"X-Request-ID": "x\ny" * 40})
    assert response.headers["x-request-id"] == "abc-123"
    assert len(made_up) == 32 and made_up != "abc-123"
    assert "\n" not in hostile.headers["x-request-id"]
    records = [r for r in caplog.records if r.name == "optbench.access"]
    assert len(records) == 3
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "GET" and line["route"] == "/v1/experiments"
    assert line["status"] == 200 and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["logger"] == "optbench.access"
