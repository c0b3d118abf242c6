"""Overload, then probe: a burst far beyond the thread pool and the DB pool must not wedge the API.

FastAPI issue #3205: with a ``yield`` session dependency, the pool and the thread pool starved
each other under back-to-back load and the server stopped answering for good. Here a real uvicorn
serves a PostgreSQL-backed app whose pool (2 connections, no overflow) is far smaller than its
40-thread pool; 200 requests from 100 threads go in, then the server must still answer at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.config import Settings
from tests.client.live import uvicorn_app
from tests.conftest import SIMPLE_SPEC, Broker


@pytest.fixture
def server(
    make_settings: Callable[..., Settings], pg_url: str, redis_broker: Broker, tmp_path: Path
) -> Iterator[str]:
    # Admission control off (limit above the burst): this test is about the pools, and the 503s
    # admission control gives by design are tested in tests/security/test_admission.py.
    settings = make_settings(
        database_url=pg_url,
        broker=redis_broker,
        db_pool_size=2,
        db_max_overflow=0,
        max_concurrent_requests=1000,
    )
    with uvicorn_app(settings, tmp_path / "uvicorn.log") as base:
        yield base


def test_overload_then_probe(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as http:
        experiment_id = http.post("/v1/experiments", json=SIMPLE_SPEC).json()["id"]
    paths = [
        f"/v1/experiments/{experiment_id}",
        "/v1/experiments",
        f"/v1/experiments/{experiment_id}/runs",
    ]

    def hit(i: int) -> int:
        with httpx.Client(base_url=server, timeout=60) as http:
            return http.get(paths[i % len(paths)]).status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(hit, range(200)))
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 195

    started = time.monotonic()
    with httpx.Client(base_url=server, timeout=10) as http:
        assert http.get("/readyz").status_code == 200
        assert http.get(f"/v1/experiments/{experiment_id}").json()["id"] == experiment_id
    assert time.monotonic() - started < 2
