"""Fault tests: one trial of each scenario (``make faults`` runs many and prints the table).

Each kills or restarts something mid-experiment and asserts that no run was lost, duplicated or
stranded and that every result equals ``python -m engine run`` on the same spec.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.e2e.helpers import engine_cli
from tests.faults.harness import FAULT_SPEC, RUNS, SCENARIOS, run_trial
from tests.faults.servers import PrivatePostgres

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server", "not installed")
    try:
        server = PrivatePostgres()
        server.start()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        unavailable("a private PostgreSQL server", exc)
    yield server
    server.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return engine_cli(FAULT_SPEC, tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_run_is_lost_duplicated_stranded_or_changed(
    scenario: str,
    private_postgres: PrivatePostgres,
    reference: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    outcome = run_trial(scenario, private_postgres, reference, tmp_path)
    assert (outcome.lost, outcome.duplicated, outcome.stranded, outcome.changed) == (0, 0, 0, 0)
    assert outcome.recovery_s is not None, "never recovered"
    assert outcome.claims >= RUNS
