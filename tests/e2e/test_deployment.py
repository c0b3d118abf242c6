"""docker-compose.yml and the Dockerfile, checked without a Docker engine: structure,
health-gated start-up order, settings that exist, commands that resolve."""

from __future__ import annotations

import importlib
import re
import shlex
from typing import Any

import pytest
import yaml

from api.config import Settings
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_and_health_gated_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["restart"] == "no"
    # Scalable: no fixed container name or host port on the worker.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]


def with_defaults(value: str) -> str:
    """Compose's interpolation with nothing set: every ``${NAME:-default}`` is its default."""
    assert "${" not in re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", "", value), f"no default in {value!r}"
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_environment_names_real_settings(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name in ("migrate", "api", "worker"):
        env = compose["services"][name]["environment"]
        for key in env:
            assert key.startswith("OPTBENCH_") and key[9:].lower() in fields, key
        settings = Settings(**{k[9:].lower(): with_defaults(v) for k, v in env.items()})
        assert settings.resolved_database_url.startswith("postgresql+psycopg://")
        assert settings.resolved_broker_url == "redis://redis:6379/0"
        assert settings.auth_enabled


def test_credentials_come_from_the_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    url = services["api"]["environment"]["OPTBENCH_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:-" in url and "${POSTGRES_USER:-" in url
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")
    # Published on the host's loopback unless OPTBENCH_PUBLISH says otherwise.
    [port] = services["api"]["ports"]
    assert with_defaults(port) == "127.0.0.1:8000:8000"


def test_commands_resolve(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]["command"]
    module, factory = api[api.index("--factory") + 1].split(":")
    assert callable(getattr(importlib.import_module(module), factory))
    worker = compose["services"]["worker"]["command"]
    app = importlib.import_module(worker[worker.index("--app") + 1]).app
    app.loader.import_default_modules()  # what `celery worker` does at start-up
    assert "optbench.run_chunk" in app.tasks


def test_dockerfile_copies_what_the_commands_need() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copied = {shlex.split(line)[1] for line in lines if line.startswith("COPY ")}
    assert {"engine", "analysis", "api", "worker", "migrations", "alembic.ini"} <= copied
    assert any("pip install '.[server]'" in line for line in lines)  # the service's extra
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".data" in ignored
    # README.md is the project's readme (pyproject's `readme`), written alongside.
    assert all((ROOT / path).exists() for path in copied - {"README.md"})
