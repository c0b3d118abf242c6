"""Limits are arithmetic on the submitted spec: a huge grid is refused before it is expanded."""

from __future__ import annotations

import tracemalloc

import pytest
from fastapi.testclient import TestClient

from api.db import Database
from engine.spec import parse_experiment
from tests.conftest import SIMPLE_SPEC

#: dim × condition_number × noise = 216 × 216 × 215 ≈ 10⁷ quadratic variants in a ~5 KB body.
HUGE_GRID = {
    **SIMPLE_SPEC,
    "problems": [
        {
            "name": "quadratic",
            "dim": list(range(1, 217)),
            "condition_number": [1.0 + i for i in range(216)],
            "noise": [0.001 * i for i in range(215)],
        }
    ],
    "optimizers": [{"name": "sgd", "lr": 0.01}],
}
HUGE_COUNT = 216 * 216 * 215


@pytest.mark.parametrize("query", ["", "?dry_run=true"])
def test_a_ten_million_run_grid_is_refused_with_flat_memory(
    client: TestClient, db: Database, query: str
) -> None:
    assert parse_experiment(HUGE_GRID).count_runs() == HUGE_COUNT
    tracemalloc.start()
    try:
        response = client.post(f"/v1/experiments{query}", json=HUGE_GRID)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["message"].startswith(f"expands to {HUGE_COUNT} runs")
    # One expanded quadratic variant alone is a pydantic model of ~1 KB: 10⁷ of them would be
    # gigabytes. Parsing the body and answering stays within a few megabytes.
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert client.get("/v1/experiments").json()["items"] == []
