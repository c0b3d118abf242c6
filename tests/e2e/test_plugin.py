"""An installed plugin's optimizer and problem through the service: the API accepts and lists
them, a real Celery worker process (which loads the same entry points) runs them, and the results
equal ``python -m engine run`` on the same spec. The plugin (``examples/plugin``) is installed
into the virtual environment by ``make install``; nothing is uploaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from tests.conftest import Broker, WorkerProcess
from tests.e2e.helpers import all_runs, assert_matches_engine, engine_cli, wait_finished

pytestmark = pytest.mark.e2e

SPEC = {
    "name": "plugin-signum",
    "problems": [
        {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]},
        {"name": "mlp", "dataset": "iris", "hidden": [8], "batch_size": 30},
        {"name": "booth"},
    ],
    "optimizers": [{"name": "signum", "lr": [0.001, 0.01], "momentum": 0.9}, {"name": "adam"}],
    "seeds": [0, 1],
    "steps": 150,
}


@pytest.fixture
def api(
    make_settings: Callable[..., Settings], pg_url: str, redis_broker: Broker
) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings(database_url=pg_url, broker=redis_broker)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def test_a_plugin_optimizer_runs_through_the_service_on_a_real_worker(
    api: tuple[TestClient, Settings],
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    client, settings = api
    catalog = client.get("/v1/catalog").json()
    for kind, name in (("optimizers", "signum"), ("problems", "booth")):
        (entry,) = [e for e in catalog[kind] if e["name"] == name]
        assert entry["origin"].startswith("optbench-example-plugin "), kind
    start_worker(settings, concurrency=1)
    created = client.post("/v1/experiments", json=SPEC)
    assert created.status_code == 202, created.text
    experiment = wait_finished(client.get, created.json()["id"], 120)
    assert experiment["status"] == "succeeded"
    assert experiment["counts"]["succeeded"] == experiment["total_runs"] == 18
    reference = engine_cli(SPEC, tmp_path)
    runs = all_runs(client.get, experiment["id"])
    assert {r["spec_hash"] for r in runs} == set(reference)
    signum = 0
    for run in runs:
        full = client.get(run["links"]["self"]).json()
        assert_matches_engine(full, reference[run["spec_hash"]])
        if full["spec"]["optimizer"]["name"] == "signum":
            signum += 1
            assert full["metrics"]["final_loss"] < full["curves"]["losses"][0]
    assert signum == 12


def test_an_unknown_optimizer_is_a_422_naming_the_installed_ones(
    api: tuple[TestClient, Settings],
) -> None:
    client, _ = api
    doc = {**SPEC, "optimizers": [{"name": "signumm"}]}
    response = client.post("/v1/experiments", json=doc)
    assert response.status_code == 422
    assert "signum" in response.text
