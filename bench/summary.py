"""Summary and export of a 10,000-run experiment: GET /summary and /runs.csv timed on SQLite.

Builds the experiment the way the service stores one — created, claimed, run by the engine (2,000
learning rates × 5 seeds of Adam on 2-D Rosenbrock, batched) and finished through ``api.store``
into a throwaway SQLite file — then times the routes through the app (cold, then a second metric
that misses the body cache but reuses the grouped runs, then a conditional request that the ETag
answers, a page of the curves the summary leaves out, the exports). 1,000 and 2,000 groups show
how the cost grows with the number of groups. Target: the summary of the 10,000-run experiment
in ≤ 2 s.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic import command  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api import store  # noqa: E402
from api.config import Settings  # noqa: E402
from api.db import Database  # noqa: E402
from api.launcher import alembic_config  # noqa: E402
from api.main import create_app  # noqa: E402
from api.models import Run, utcnow  # noqa: E402
from api.observability import access_log  # noqa: E402
from api.routes import summary as summary_routes  # noqa: E402
from engine.runner import run_batch  # noqa: E402
from engine.spec import expand, parse_experiment  # noqa: E402

SEEDS = 5
STEPS = 200
TARGET_S = 2.0


def build(db: Database, groups: int) -> str:
    spec = parse_experiment(
        {
            "name": f"bench-summary-{groups}",
            "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
            "optimizers": [{"name": "adam", "lr": np.geomspace(1e-4, 1e-1, groups).tolist()}],
            "seeds": list(range(SEEDS)),
            "steps": STEPS,
            "target_loss": 1e-2,
        }
    )
    runs = expand(spec)
    with db.writer() as session:
        experiment_id = store.create_experiment(session, spec, runs).id
        session.commit()
    with db.writer() as session:
        rows = [r.id for r in session.query(Run).filter_by(experiment_id=experiment_id)]
        claimed = store.claim_runs(
            session,
            experiment_id,
            rows,
            token="bench",
            now=utcnow(),
            lease_s=600.0,
            max_attempts=3,
        )
        session.commit()
    results = run_batch(list(claimed.runs.values()))
    with db.writer() as session:
        store.finish_runs(
            session,
            experiment_id,
            "bench",
            dict(zip(claimed.runs, results, strict=True)),
            now=utcnow(),
        )
        session.commit()
    return experiment_id


def timed(client: TestClient, url: str, **kw: object) -> tuple[float, float, int, str]:
    """Wall and CPU seconds of one request (the app runs in this process: its CPU time is what
    the request cost, which other jobs on a loaded machine inflate far less than the wall
    time), the body's size and its ETag."""
    start, cpu = time.perf_counter(), time.process_time()
    response = client.get(url, **kw)  # type: ignore[arg-type]
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    assert response.status_code in (200, 304), response.text[:300]
    return elapsed, used, len(response.content), response.headers.get("etag", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--groups",
        type=int,
        nargs="+",
        choices=(1000, 2000),
        default=[1000, 2000],
        help="experiment sizes to build and time (2000: the 10,000-run target)",
    )
    sizes = sorted(set(parser.parse_args().groups))
    # The app logs every request at INFO (its access log, and httpx's line per test-client
    # request) to stderr, between the table's lines: the bench keeps their warnings only.
    for logger in (access_log, logging.getLogger("httpx")):
        logger.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        command.upgrade(alembic_config(url), "head")
        settings = Settings(database_url=url, data_dir=Path(tmp))
        db = Database.from_settings(settings)
        app = create_app(settings, database=db)
        print("seconds wall / CPU; load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))
        print(
            f"{'groups':>6} {'runs':>6}  {'summary':>11} {'2nd metric':>11} {'304':>7}  "
            f"{'curves page':>11} {'runs.csv':>11} {'runs.json':>11} {'csv, cold':>11}  "
            "summary size"
        )
        largest: tuple[float, float] | None = None
        with TestClient(app) as client:
            if sizes[0] != 1000:  # what the 1,000-group run warms: imports, caches of the app
                client.get(f"/v1/experiments/{build(db, 10)}/summary")
            for groups in sizes:
                experiment_id = build(db, groups)
                base = f"/v1/experiments/{experiment_id}"
                cold, cold_cpu, size, etag = timed(client, f"{base}/summary")
                other = timed(client, f"{base}/summary", params={"metric": "best_loss"})
                cached = timed(client, f"{base}/summary", headers={"If-None-Match": etag})
                page = timed(client, f"{base}/summary/curves", params={"offset": 50})
                csv_s = timed(client, f"{base}/runs.csv")
                json_s = timed(client, f"{base}/runs.json")
                summary_routes._versions.items.clear()  # an export before any summary
                csv_cold = timed(client, f"{base}/runs.csv", headers={"If-None-Match": "-"})
                cells = (
                    " ".join(f"{t[0]:>5.2f}/{t[1]:<5.2f}" for t in ((cold, cold_cpu), other))
                    + f" {cached[0] * 1e3:>5.1f}ms  "
                    + " ".join(
                        f"{t[0]:>5.2f}/{t[1]:<5.2f}" for t in (page, csv_s, json_s, csv_cold)
                    )
                )
                print(f"{groups:>6} {groups * SEEDS:>6}  {cells}  {size / 1e6:.1f} MB")
                if groups == 2000:
                    largest = (cold, cold_cpu)
        db.dispose()
    if largest is not None:
        verdict = "ok" if largest[0] <= TARGET_S else "OVER TARGET"
        print(
            f"10,000-run summary: {largest[0]:.2f} s wall, {largest[1]:.2f} s CPU "
            f"(target ≤ {TARGET_S:g} s): {verdict}"
        )


if __name__ == "__main__":
    main()
