"""Load on the API: GET and POST latency at 50 and 200 concurrent clients, and /healthz meanwhile.

Starts the real service pieces on loopback in a temporary directory — the embedded Redis, a
migrated SQLite file and one uvicorn process (no worker: submitted runs stay queued) — then,
per scenario, ``CLIENTS`` asyncio httpx clients send requests back to back until ``REQUESTS`` are
done or ``TIME_CAP_S`` passes, while one more client probes ``/healthz`` in a loop. Reported:
p50 / p99 of the scenario's requests, how many were shed (503 + Retry-After from admission
control), and the probes' p50 / p99 / max. The load generator shares the machine's cores with
the server, as a real co-located client would.

    python bench/load.py [--requests 1000] [--time-cap 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.embedded import EmbeddedRedis  # noqa: E402
from api.launcher import api_command, migrate  # noqa: E402

SPEC = {
    "name": "load",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [{"name": "adam", "lr": [0.001, 0.01]}, {"name": "sgd", "lr": 0.01}],
    "seeds": [0, 1],
    "steps": 100,
}


@dataclass
class Result:
    latencies: list[float]
    shed: int
    other_errors: int
    probes: list[float]


def probe(base: str, done: threading.Event, probes: list[float]) -> None:
    """``/healthz`` in a loop from a thread of its own (not queued behind the load's loop)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        while not done.is_set():
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            probes.append(time.perf_counter() - started)
            time.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def scenario(
    base: str, method: str, path: str, clients: int, total: int, time_cap: float
) -> Result:
    latencies: list[float] = []
    shed = other = 0
    probes: list[float] = []
    done = threading.Event()
    deadline = time.monotonic() + time_cap
    remaining = total
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:

        async def client() -> None:
            nonlocal remaining, shed, other
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                started = time.perf_counter()
                try:
                    if method == "GET":
                        response = await http.get(path)
                    else:
                        response = await http.post(path, json=SPEC)
                except httpx.TransportError:
                    other += 1
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code < 400:
                    latencies.append(elapsed)
                elif response.status_code == 503:
                    shed += 1
                else:
                    other += 1

        prober = threading.Thread(target=probe, args=(base, done, probes))
        prober.start()
        try:
            await asyncio.gather(*(client() for _ in range(clients)))
        finally:
            done.set()
            prober.join()
    return Result(latencies, shed, other, probes)


def start_service(tmp: Path, port: int) -> tuple[EmbeddedRedis, subprocess.Popen[bytes]]:
    redis_server = EmbeddedRedis(tmp)
    redis_server.start()
    database_url = f"sqlite:///{tmp / 'optbench.db'}"
    migrate(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_")}
    env |= {
        "OPTBENCH_DATA_DIR": str(tmp),
        "OPTBENCH_DATABASE_URL": database_url,
        "OPTBENCH_BROKER_URL": redis_server.url,
        "OPTBENCH_LOG_FORMAT": "json",
    }
    log = (tmp / "api.log").open("wb")
    api = subprocess.Popen(
        api_command("127.0.0.1", port, "--no-access-log", "--timeout-keep-alive", "60"),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return redis_server, api
        except httpx.TransportError:
            pass
        if api.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the API did not start:\n{(tmp / 'api.log').read_text()}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per scenario")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="optbench-load-") as tmp:
        redis_server, api = start_service(Path(tmp), port)
        try:
            experiment = httpx.post(f"{base}/v1/experiments", json=SPEC, timeout=30).json()
            get_path = experiment["links"]["self"]
            print(
                "load on one uvicorn process (SQLite, embedded Redis, no worker); "
                f"{args.requests} requests or {args.time_cap:.0f} s per scenario"
            )
            print(
                f"{'scenario':<16}{'ok':>6}{'503':>6}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}"
                f"{'healthz p50':>13}{'p99':>8}{'max':>8}"
            )
            for method, path in (("GET", get_path), ("POST", "/v1/experiments")):
                for clients in (50, 200):
                    r = asyncio.run(
                        scenario(base, method, path, clients, args.requests, args.time_cap)
                    )
                    ok = r.latencies or [float("nan")]
                    print(
                        f"{method + ' ×' + str(clients):<16}{len(r.latencies):>6}{r.shed:>6}"
                        f"{r.other_errors:>5}{pct(ok, 0.5):>9.1f}{pct(ok, 0.99):>9.1f}"
                        f"{pct(r.probes, 0.5):>13.1f}{pct(r.probes, 0.99):>8.1f}"
                        f"{max(r.probes) * 1000:>8.1f}"
                    )
        finally:
            api.terminate()
            api.wait(15)
            redis_server.stop()


if __name__ == "__main__":
    main()
