"""A live optbench service for client and browser tests: uvicorn + a Celery worker, real processes.

Built from the shared fixtures' pieces (the session's embedded Redis, :class:`WorkerProcess`,
``settings_env``) on a database of its own, so committed experiments never leak into the tests
that roll back on the shared SQLite file. One service per test module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.config import Settings
from api.launcher import api_command, migrate
from tests.conftest import ROOT, Broker, WorkerProcess, service_settings, settings_env, wait_for


@dataclass
class LiveService:
    url: str
    settings: Settings
    worker: WorkerProcess
    api_log: Path

    def logs(self) -> str:
        return self.api_log.read_text(errors="replace") + "\n" + self.worker.log()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the API exited early:\n{log.read_text(errors='replace')}")
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def live_settings(tmp: Path, broker: Broker, **overrides: object) -> Settings:
    """Settings of a live service on a fresh migrated SQLite file under ``tmp``, on ``broker``
    with a queue of its own, with short leases and checkpoints so tests see progress quickly."""
    database_url = f"sqlite:///{tmp / 'optbench.db'}"
    migrate(database_url)
    return service_settings(tmp, database_url, broker, **overrides)


@contextmanager
def running_service(settings: Settings) -> Iterator[LiveService]:
    """uvicorn (the launcher's own command) and one Celery worker on ``settings``, stopped after."""
    tmp = settings.data_dir
    worker = WorkerProcess(settings, tmp / "worker.log")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_log = tmp / "api.log"
    with api_log.open("wb") as log:
        api = subprocess.Popen(
            api_command("127.0.0.1", port),
            cwd=ROOT,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        worker.wait_ready()
        wait_for(lambda: _healthy(url, api, api_log), 30.0, "the API to answer", interval=0.1)
        yield LiveService(url, settings, worker, api_log)
    finally:
        if api.poll() is None:
            os.killpg(api.pid, signal.SIGTERM)
            try:
                api.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
                api.wait()
        worker.stop()


@pytest.fixture(scope="module")
def live_service(
    tmp_path_factory: pytest.TempPathFactory, embedded_broker: Broker
) -> Iterator[LiveService]:
    with running_service(live_settings(tmp_path_factory.mktemp("live"), embedded_broker)) as live:
        yield live


@contextmanager
def uvicorn_app(settings: Settings, log_path: Path) -> Iterator[str]:
    """A bare uvicorn serving ``create_app`` on ``settings`` (no worker); yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--port",
                f"{port}",
            ],
            cwd=ROOT,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _healthy(base, process, log_path), 30, "uvicorn", interval=0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)
