"""``python -m api.launcher`` (what ``make run`` starts): the whole service on one machine.

1. make the data directory; 2. unless ``OPTBENCH_BROKER_URL`` is set, start the embedded Redis
(unix socket under the data directory); 3. ``alembic upgrade head`` on the configured database
(default: SQLite under the data directory); 4. start the API (uvicorn) and a Celery worker as
child processes with the resolved URLs; 5. print the URL and wait. Ctrl-C / SIGTERM — or any
child exiting — stops the API, then the worker (a warm shutdown first: it finishes or abandons its
current task, which is then redelivered at the next start), then Redis.

Children get ``PR_SET_PDEATHSIG`` on Linux, so even a killed launcher takes them down.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from alembic import command
from alembic.config import Config
from pydantic import ValidationError

from api.config import Settings
from api.embedded import EmbeddedRedis, EmbeddedRedisError, die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def worker_command(queue: str, concurrency: int, *extra: str) -> list[str]:
    """The Celery worker process ``make run`` starts (tests start theirs the same way)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "worker.celery_app",
        "worker",
        "--concurrency",
        str(concurrency),
        "--queues",
        queue,
        "--without-gossip",
        "--without-mingle",
        *extra,
    ]


def api_command(host: str, port: int, *extra: str) -> list[str]:
    """The uvicorn process serving :func:`api.main.create_app`."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:create_app",
        "--host",
        host,
        "--port",
        str(port),
        *extra,
    ]


def migrate(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own process group: a terminal's Ctrl-C reaches only the launcher, which stops the
    # children in order.
    return subprocess.Popen(args, env=env, cwd=ROOT, process_group=0, preexec_fn=die_with_parent)


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals, timeout_s: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.launcher", description=__doc__)
    parser.add_argument("--host", help="API host (default: OPTBENCH_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default: OPTBENCH_PORT or 8000)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (OPTBENCH_WORKER_CONCURRENCY)"
    )
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "worker_concurrency": args.workers,
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"optbench: invalid settings:\n{exc}", file=sys.stderr)
        return 2

    settings.data_path.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    redis_server: EmbeddedRedis | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    code = 0
    try:
        if settings.embedded_broker:
            redis_server = EmbeddedRedis(settings.data_path, settings.redis_socket_path)
            redis_server.start()
        try:
            migrate(settings.resolved_database_url)
        except Exception as exc:
            print(f"optbench: migrating the database failed: {exc}", file=sys.stderr)
            code = 1
            raise _Stop("migration") from None
        env = {
            **os.environ,
            "OPTBENCH_DATA_DIR": str(settings.data_path),
            "OPTBENCH_DATABASE_URL": settings.resolved_database_url,
            "OPTBENCH_BROKER_URL": settings.resolved_broker_url,
        }
        children.append(
            (
                "worker",
                _spawn(
                    worker_command(
                        settings.queue, settings.worker_concurrency, "--loglevel", "INFO"
                    ),
                    env,
                ),
            )
        )
        children.append(
            (
                "api",
                _spawn(
                    api_command(settings.host, settings.port, "--log-level", "warning"),
                    env,
                ),
            )
        )
        print(
            f"optbench: API on http://{settings.host}:{settings.port} "
            f"(docs: /docs) — data in {settings.data_path}; Ctrl-C stops",
            flush=True,
        )
        while True:
            for name, process in children:
                if process.poll() is not None:
                    print(
                        f"optbench: {name} exited with code {process.returncode}", file=sys.stderr
                    )
                    code = 1
                    raise _Stop(name)
            time.sleep(0.5)
    except _Stop:
        pass
    except EmbeddedRedisError as exc:
        print(f"optbench: {exc}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(children):
            _stop(process, signal.SIGTERM, 15.0 if name == "worker" else 10.0)
        if redis_server is not None:
            redis_server.stop()
        print("optbench: stopped", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
