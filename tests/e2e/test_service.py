"""The service end to end on the machine's PostgreSQL and Redis, with real worker processes.

A run's curves from the API equal ``python -m engine run`` on the same spec exactly; cancelling
stops a running run at its next checkpoint and never starts a queued one; a worker killed with
SIGKILL mid-run has its run redelivered and finished exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from tests.conftest import SIMPLE_SPEC, Broker, WorkerProcess, wait_for
from tests.e2e.helpers import all_runs, assert_matches_engine, engine_cli, wait_finished

pytestmark = pytest.mark.e2e

LONG_STEPS = 100_000
#: About two seconds of work: long enough to kill mid-run, well inside the 10 s soft limit.
KILL_STEPS = 40_000


@pytest.fixture
def e2e_settings(
    make_settings: Callable[..., Settings], pg_url: str, redis_broker: Broker
) -> Settings:
    return make_settings(
        database_url=pg_url,
        broker=redis_broker,
        lease_s=2.0,
        heartbeat_s=0.5,
        reconcile_every_s=0.5,
        task_soft_time_limit_s=30.0,
        task_hard_time_limit_s=32.0,
        visibility_timeout_s=8.0 + 30.0,
        unacked_restore_interval_s=1.0,
        task_max_cost=1e5,
    )


@pytest.fixture
def api(e2e_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(e2e_settings)) as client:
        yield client


def test_results_match_the_engine_cli_exactly(
    api: TestClient,
    e2e_settings: Settings,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    start_worker(e2e_settings, concurrency=2)
    spec = {**SIMPLE_SPEC, "problems": [{"name": "rosenbrock", "dim": [2, 4]}], "seeds": [0, 1]}
    created = api.post("/v1/experiments", json=spec)
    assert created.status_code == 202
    experiment = wait_finished(api.get, created.json()["id"], 60)
    assert experiment["status"] == "succeeded"
    assert experiment["counts"]["succeeded"] == experiment["total_runs"] == 12
    assert experiment["progress"] == 1.0
    reference = engine_cli(spec, tmp_path)
    runs = all_runs(api.get, experiment["id"])
    assert {r["spec_hash"] for r in runs} == set(reference)
    for run in runs:
        full = api.get(run["links"]["self"]).json()
        assert full["attempts"] == 1
        assert_matches_engine(full, reference[run["spec_hash"]])


def test_cancel_stops_the_running_run_and_never_starts_the_queued_one(
    api: TestClient, e2e_settings: Settings, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(e2e_settings, concurrency=1)
    spec = {
        "name": "to-cancel",
        "problems": [{"name": "rosenbrock", "dim": [3, 4]}],  # 3-D and up: the general loop
        "optimizers": [{"name": "sgd", "lr": 1e-4}],
        "steps": LONG_STEPS,
    }
    experiment_id = api.post("/v1/experiments", json=spec).json()["id"]

    def first_running() -> dict[str, Any] | None:
        runs = all_runs(api.get, experiment_id)
        active = [r for r in runs if r["status"] == "running" and r["steps_done"] > 0]
        return active[0] if active else None

    running = wait_for(first_running, 30, "a run to checkpoint", interval=0.1)
    partial = api.get(running["links"]["self"]).json()
    assert partial["status"] == "running"
    assert 0 < len(partial["curves"]["lrs"]) < LONG_STEPS
    response = api.post(f"/v1/experiments/{experiment_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    experiment = wait_finished(api.get, experiment_id, 15)
    assert experiment["counts"]["cancelled"] == 2
    stopped, never = sorted(all_runs(api.get, experiment_id), key=lambda r: -r["steps_done"])
    assert stopped["id"] == running["id"]
    assert stopped["metrics"]["stopped"] is True
    assert running["steps_done"] <= stopped["steps_done"] < LONG_STEPS
    assert len(api.get(stopped["links"]["self"]).json()["curves"]["lrs"]) == stopped["steps_done"]
    assert never["attempts"] == 0 and never["steps_done"] == 0 and never["started_at"] is None


def test_sigkilled_worker_run_is_redelivered_and_finishes_exactly_once(
    api: TestClient,
    e2e_settings: Settings,
    redis_broker: Broker,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    settings = e2e_settings.model_copy(
        update={
            "task_soft_time_limit_s": 10.0,
            "task_hard_time_limit_s": 11.0,
            "visibility_timeout_s": 12.0,
        }
    )
    first = start_worker(settings, concurrency=1)
    spec = {
        "name": "to-kill",
        "problems": [{"name": "rosenbrock", "dim": 3, "init": [-1.5, 2.0, 1.0]}],
        "optimizers": [{"name": "adam", "lr": 1e-3}],
        "steps": KILL_STEPS,
    }
    experiment_id = api.post("/v1/experiments", json=spec).json()["id"]
    wait_for(
        lambda: any(r["steps_done"] > 0 for r in all_runs(api.get, experiment_id)),
        30,
        "the run to checkpoint",
        interval=0.05,
    )
    first.kill()
    [victim] = all_runs(api.get, experiment_id)
    assert victim["status"] == "running" and victim["steps_done"] < KILL_STEPS

    start_worker(settings, concurrency=1)
    experiment = wait_finished(api.get, experiment_id, 60)
    assert experiment["status"] == "succeeded"
    [run] = all_runs(api.get, experiment_id)
    assert run["attempts"] == 2

    # The killed attempt's message is still unacknowledged in Redis; once the broker restores
    # it, the new worker consumes it and finds nothing to claim.
    def broker_drained() -> bool:
        with redis_broker.client() as client:
            unacked = client.hlen(f"{redis_broker.prefix}unacked")
        return unacked == 0 and redis_broker.queue_length(settings.queue) == 0

    wait_for(broker_drained, 40, "the redelivered message to be consumed", interval=0.2)
    full = api.get(run["links"]["self"]).json()
    assert full["attempts"] == 2 and full["status"] == "succeeded"
    reference = engine_cli(spec, tmp_path)
    assert_matches_engine(full, reference[run["spec_hash"]])
