"""Settings resolve the embedded defaults and refuse inconsistent reliability settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.config import Settings


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBENCH_DATA_DIR", str(tmp_path))
    for name in ("OPTBENCH_DATABASE_URL", "OPTBENCH_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.embedded_broker
    assert settings.resolved_database_url == f"sqlite:///{tmp_path}/optbench.db"
    assert settings.resolved_broker_url == f"redis+socket://{tmp_path}/redis.sock"
    assert settings.max_runs_per_experiment == 10_000
    assert settings.max_steps_per_run == 100_000


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBENCH_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("OPTBENCH_DATABASE_URL", "postgresql+psycopg://u@db/optbench")
    monkeypatch.setenv("OPTBENCH_MAX_STEPS_PER_RUN", "500")
    settings = Settings()
    assert not settings.embedded_broker
    assert settings.resolved_broker_url == "redis://redis:6379/0"
    assert settings.max_steps_per_run == 500


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"task_soft_time_limit_s": 100, "task_hard_time_limit_s": 90}, "must exceed task_soft"),
        ({"visibility_timeout_s": 3000}, "visibility_timeout_s must exceed"),
        ({"lease_s": 5, "heartbeat_s": 3}, "twice heartbeat_s"),
        ({"database_url": "mysql://x"}, "database_url"),
        ({"database_url": "postgresql+asyncpg://u@db/x"}, "No module named 'asyncpg'"),
        ({"database_url": "postgresql+psycopg://u@db:port/x"}, "database_url is unusable"),
        ({"broker_url": "amqp://x"}, "broker_url"),
        ({"data_dir": Path("/tmp") / ("d" * 120)}, "too deep"),
        ({"max_steps_per_run": 0}, "greater than or equal to 1"),
        ({"queue": "a b"}, "pattern"),
    ],
)
def test_bad_settings_fail_fast(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        Settings(**values)
