"""Summary and export of a 10,000-run experiment: GET /summary and /runs.csv timed on SQLite.

Builds the experiment the way the service stores one — created, claimed, run by the engine (2,000
learning rates × 5 seeds of Adam on 2-D Rosenbrock, batched) and finished through ``api.store``
into a throwaway SQLite file — then times the routes through the app (cold, then a second metric
that misses the cache, then a conditional request that the ETag answers). Also times 1,000 and
3,000 groups, to show the cost grows linearly with the number of groups. Target: the summary of
the 10,000-run experiment in ≤ 2 s.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

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


def timed(client: TestClient, url: str, **kw: object) -> tuple[float, int, str]:
    start = time.perf_counter()
    response = client.get(url, **kw)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    assert response.status_code in (200, 304), response.text[:300]
    return elapsed, len(response.content), response.headers.get("etag", "")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        command.upgrade(alembic_config(url), "head")
        settings = Settings(database_url=url, data_dir=Path(tmp))
        db = Database.from_settings(settings)
        app = create_app(settings, database=db)
        print(
            f"{'groups':>6} {'runs':>6}  {'summary':>9} {'2nd metric':>10} {'304':>7}  "
            f"{'runs.csv':>9} {'runs.json':>9}  summary size"
        )
        worst = 0.0
        with TestClient(app) as client:
            for groups in (1000, 2000):
                experiment_id = build(db, groups)
                base = f"/v1/experiments/{experiment_id}"
                cold, size, etag = timed(client, f"{base}/summary")
                other, _, _ = timed(client, f"{base}/summary", params={"metric": "best_loss"})
                cached, _, _ = timed(client, f"{base}/summary", headers={"If-None-Match": etag})
                csv_s, _, _ = timed(client, f"{base}/runs.csv")
                json_s, _, _ = timed(client, f"{base}/runs.json")
                print(
                    f"{groups:>6} {groups * SEEDS:>6}  {cold:>8.2f}s {other:>9.2f}s "
                    f"{cached * 1e3:>5.1f}ms  {csv_s:>8.2f}s {json_s:>8.2f}s  {size / 1e6:.1f} MB"
                )
                worst = cold
        db.dispose()
    verdict = "ok" if worst <= TARGET_S else "OVER TARGET"
    print(f"10,000-run summary: {worst:.2f} s (target ≤ {TARGET_S:g} s): {verdict}")


if __name__ == "__main__":
    main()
