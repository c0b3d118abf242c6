"""Admission control: past the concurrency limit the API answers 503 + Retry-After at once, and
the probes keep answering (they are exempt and stay off the request thread pool)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.config import Settings
from tests.client.live import uvicorn_app
from tests.conftest import Broker

#: ~4,000 runs: expanding and storing it keeps a request busy for a while.
BIG = {
    "name": "busy",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [{"name": "sgd", "lr": [0.001 * (i + 1) for i in range(100)]}],
    "seeds": list(range(40)),
    "steps": 10,
}


@pytest.fixture
def server(
    make_settings: Callable[..., Settings],
    sqlite_commit_url: str,
    redis_broker: Broker,
    tmp_path: Path,
) -> Iterator[str]:
    settings = make_settings(
        database_url=sqlite_commit_url,
        broker=redis_broker,
        max_concurrent_requests=2,
        admission_wait_s=0.0,
    )
    with uvicorn_app(settings, tmp_path / "uvicorn.log") as base:
        yield base


def test_saturated_api_sheds_load_and_probes_answer(server: str) -> None:
    stop = threading.Event()
    probes: list[int] = []

    def probe() -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            while not stop.is_set():
                probes.append(http.get("/healthz").status_code)
                probes.append(http.get("/readyz").status_code)

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=server, timeout=120) as http:
            return http.post("/v1/experiments?dry_run=true", json=BIG)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(submit, range(12)))
    finally:
        stop.set()
        prober.join()
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    shed = next(r for r in responses if r.status_code == 503)
    assert shed.headers["retry-after"] == "1"
    assert shed.headers["content-type"] == "application/problem+json"
    assert shed.json()["type"] == "urn:optbench:problem:overloaded"
    assert probes and set(probes) == {200}
    with httpx.Client(base_url=server, timeout=30) as http:
        assert http.post("/v1/experiments?dry_run=true", json=BIG).status_code == 200
