"""One fault trial: a 40-run experiment on two workers, a fault in the middle, and the count.

Each trial gets a fresh database on the private PostgreSQL (with an audit trigger of the test's
own on ``runs``: every claim, every transition to a final state, every later change of a finished
run is logged with the server's clock), a fresh private Redis, two ``celery worker`` processes
(concurrency 1, default lease/heartbeat/reconcile settings) and the API in-process. Once a fifth
of the runs finished, the fault is injected:

* ``worker-child`` — SIGKILL of a pool process while it computes (Celery's parent survives);
* ``worker-parent`` — SIGKILL of one worker's main process while its pool process computes;
* ``redis`` / ``redis-aof`` — ``kill -9`` of Redis without persistence / with an append-only
  file, restarted after a second;
* ``postgres`` — ``pg_ctl stop -m immediate``, started again after three seconds.

Counted afterwards: **lost** — runs not ``succeeded``; **duplicated** — runs finished more than
once or changed after finishing; **stranded** — runs not finished 60 s after recovery;
**changed** — runs whose metrics or curves differ from ``python -m engine run`` on the same spec;
**recovery** — for a killed worker, from the kill until the last of its runs was claimed again;
for a server outage, from the server's return until every unfinished run is either held under a
live lease or named by a message in the broker (waiting, or delivered after the return) *and stays
so* until every run finished: a run whose final write the crash swallowed looks held at first,
under a lease nobody renews any more, and counts as recovered only once it was re-queued and
re-sent after that lease expired.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from api.config import Settings
from api.launcher import migrate
from api.main import create_app
from tests.conftest import WorkerProcess, wait_for
from tests.e2e.helpers import all_runs, assert_matches_engine
from tests.faults.servers import PrivatePostgres, PrivateRedis

SCENARIOS = ("worker-child", "worker-parent", "redis", "redis-aof", "postgres")
RUNS = 40
#: 40 small MLP runs (about a second each alone), two per task: 20 tasks for two workers.
FAULT_SPEC: dict[str, Any] = {
    "name": "faults",
    "problems": [{"name": "mlp", "dataset": "digits", "batch_size": 32, "hidden": [32]}],
    "optimizers": [
        {"name": "adam", "lr": [0.001, 0.003]},
        {"name": "sgd", "lr": [0.01, 0.03], "momentum": 0.9},
    ],
    "seeds": list(range(10)),
    "steps": 1500,
}
STRANDED_AFTER_S = 60.0
RECOVERY_CAP_S = 120.0
TERMINAL = ("succeeded", "failed", "cancelled")

AUDIT_SQL = [
    """CREATE TABLE fault_log (
        id bigserial PRIMARY KEY,
        run_id varchar(24) NOT NULL,
        event text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    """CREATE FUNCTION fault_log_runs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status = 'running' AND NEW.lease_token IS NOT NULL
         AND NEW.lease_token IS DISTINCT FROM OLD.lease_token THEN
        INSERT INTO fault_log (run_id, event) VALUES (NEW.id, 'claim');
      END IF;
      IF OLD.status IN ('succeeded', 'failed', 'cancelled') THEN
        IF (NEW.status, NEW.final_loss, NEW.steps_done, NEW.test_loss, NEW.started_at)
           IS DISTINCT FROM
           (OLD.status, OLD.final_loss, OLD.steps_done, OLD.test_loss, OLD.started_at) THEN
          INSERT INTO fault_log (run_id, event) VALUES (NEW.id, 'rewrite');
        END IF;
      ELSIF NEW.status IN ('succeeded', 'failed', 'cancelled') THEN
        INSERT INTO fault_log (run_id, event) VALUES (NEW.id, 'finish');
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER fault_log AFTER UPDATE ON runs
       FOR EACH ROW EXECUTE FUNCTION fault_log_runs()""",
]


@dataclass
class Outcome:
    scenario: str
    lost: int
    duplicated: int
    stranded: int
    changed: int
    recovery_s: float | None
    #: Claims over all runs (RUNS when every run was claimed once).
    claims: int
    max_attempts: int


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _busy_child(worker: WorkerProcess) -> int:
    """The worker's pool process, once it is seen computing (so that it holds runs)."""

    def computing() -> int | None:
        [child] = _children(worker.process.pid)
        before = _cpu_ticks(child)
        time.sleep(0.3)
        return child if _cpu_ticks(child) - before >= 5 else None

    child: int = wait_for(computing, 60, "the worker's pool process to compute", 0.0)
    return child


def _finished(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM runs WHERE status IN ('succeeded','failed','cancelled')")
            ).scalar_one()
        )


def _names(payload: dict[str, Any]) -> list[str]:
    body = json.loads(base64.b64decode(payload["body"]))
    return [str(run_id) for run_id in body[0][1]]


def _whole(engine: Engine, client: redis.Redis, queue: str, since: float) -> bool:
    """Every unfinished run is held under a live lease or named by a waiting message or by one
    delivered at or after ``since`` (epoch seconds)."""
    try:
        named: set[str] = set()
        for key in (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))):
            for raw in client.lrange(key, 0, -1):
                named.update(_names(json.loads(raw)))
        index = dict(client.zrange("unacked_index", 0, -1, withscores=True))
        for tag, raw in client.hgetall("unacked").items():
            if index.get(tag, 0.0) >= since:
                named.update(_names(json.loads(raw)[0]))
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, status, lease_expires_at > clock_timestamp() FROM runs "
                    "WHERE status IN ('queued', 'running')"
                )
            ).all()
    except Exception:  # the server is still coming back
        return False
    return all((status == "running" and live) or run_id in named for run_id, status, live in rows)


def _whole_from(
    engine: Engine, client: redis.Redis, queue: str, since: float, cap_s: float
) -> float | None:
    """When the state became :func:`_whole` for the last time (epoch seconds), watched until every
    run finished or for ``cap_s``; ``None`` if it was not whole then."""
    whole_since: float | None = None
    deadline = time.time() + cap_s
    while True:
        now = time.time()
        if not _whole(engine, client, queue, since):
            whole_since = None
        elif whole_since is None:
            whole_since = now
        try:
            done = _finished(engine) >= RUNS
        except Exception:  # the server is still coming back
            done = False
        if done or now >= deadline:
            return whole_since
        time.sleep(0.2)


def _inject(
    scenario: str, workers: list[WorkerProcess], pg: PrivatePostgres, broker: PrivateRedis
) -> float:
    """Cause the fault; returns when it ended (epoch seconds)."""
    if scenario == "worker-child":
        os.kill(_busy_child(workers[0]), signal.SIGKILL)
    elif scenario == "worker-parent":
        _busy_child(workers[0])
        os.kill(workers[0].process.pid, signal.SIGKILL)
    elif scenario in ("redis", "redis-aof"):
        broker.kill()
        time.sleep(1.0)
        broker.start()
    elif scenario == "postgres":
        pg.stop_immediate()
        time.sleep(3.0)
        pg.start()
    else:
        raise ValueError(scenario)
    return time.time()


def _claims_after_kill(engine: Engine, killed_at: float) -> float | None:
    """Seconds from the kill to the re-claim of the last run the killed process held."""
    kill = datetime.fromtimestamp(killed_at, UTC)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT run_id, at FROM fault_log WHERE event = 'claim' ORDER BY at")
        ).all()
    claims: dict[str, list[datetime]] = {}
    for run_id, at in rows:
        claims.setdefault(run_id, []).append(at)
    delays = [
        (next(a for a in ats if a > kill) - kill).total_seconds()
        for ats in claims.values()
        if ats[0] < kill and ats[-1] > kill
    ]
    return max(delays) if delays else None


def run_trial(
    scenario: str, pg: PrivatePostgres, reference: dict[str, dict[str, Any]], workdir: Path
) -> Outcome:
    workdir.mkdir(parents=True, exist_ok=True)
    url = pg.create_database()
    migrate(url)
    engine = create_engine(url, pool_pre_ping=True)
    with engine.begin() as conn:
        for statement in AUDIT_SQL:
            conn.execute(text(statement))
    workers: list[WorkerProcess] = []
    broker = PrivateRedis(aof=scenario == "redis-aof")
    client = redis.Redis(port=broker.port, socket_timeout=2, socket_connect_timeout=1)
    settings = Settings(
        data_dir=workdir,
        database_url=url,
        broker_url=broker.url,
        queue=f"faults-{uuid.uuid4().hex[:8]}",
        task_max_runs=2,
    )
    try:
        broker.start()
        for i in range(2):
            workers.append(WorkerProcess(settings, workdir / f"worker{i}.log", concurrency=1))
        for worker in workers:
            worker.wait_ready(60)
        with TestClient(create_app(settings)) as api:
            created = api.post("/v1/experiments", json=FAULT_SPEC)
            assert created.status_code == 202, created.text
            experiment_id = created.json()["id"]
            wait_for(lambda: _finished(engine) >= RUNS // 5, 300, "a fifth of the runs", 0.1)
            fault_end = _inject(scenario, workers, pg, broker)
            if scenario.startswith("worker"):
                recovered_at: float | None = fault_end
            else:
                recovered_at = _whole_from(
                    engine, client, settings.queue, fault_end, RECOVERY_CAP_S
                )
            deadline = (recovered_at or fault_end) + STRANDED_AFTER_S
            while _finished(engine) < RUNS and time.time() < deadline:
                time.sleep(0.2)
            stranded = RUNS - _finished(engine)
            if scenario.startswith("worker"):
                delay = _claims_after_kill(engine, fault_end)
                recovery = delay if delay is not None else 0.0
            else:
                recovery = None if recovered_at is None else recovered_at - fault_end
            with engine.connect() as conn:
                events = conn.execute(text("SELECT run_id, event FROM fault_log")).all()
            runs = all_runs(api.get, experiment_id)
            changed = 0
            for run in runs:
                try:
                    assert run["status"] == "succeeded"
                    assert_matches_engine(
                        api.get(run["links"]["self"]).json(), reference[run["spec_hash"]]
                    )
                except (AssertionError, KeyError):
                    changed += 1
    finally:
        for worker in workers:
            worker.kill()
            worker.stop()
        client.close()
        broker.close()
        engine.dispose()
    finishes = Counter(run_id for run_id, event in events if event == "finish")
    rewritten = {run_id for run_id, event in events if event == "rewrite"}
    claims = Counter(run_id for run_id, event in events if event == "claim")
    return Outcome(
        scenario=scenario,
        lost=sum(1 for run in runs if run["status"] != "succeeded"),
        duplicated=len({r for r, n in finishes.items() if n > 1} | rewritten),
        stranded=stranded,
        changed=changed,
        recovery_s=recovery,
        claims=sum(claims.values()),
        max_attempts=max(claims.values(), default=0),
    )
