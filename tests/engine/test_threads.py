"""Local entry points hold BLAS at one thread, as a worker process does, unless the environment
chose a count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info

import engine.runner
from engine.cli import run_with_progress
from engine.spec import expand, parse_experiment
from engine.threads import THREAD_ENV, limit_blas_threads

ROOT = Path(__file__).resolve().parents[2]


def blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.fixture
def no_thread_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in THREAD_ENV:
        monkeypatch.delenv(var, raising=False)


def test_limit_holds_every_blas_pool_at_one_thread(no_thread_env: None) -> None:
    assert blas_threads(), "numpy's BLAS is visible to threadpoolctl"
    with limit_blas_threads():
        assert set(blas_threads()) == {1}


def test_an_explicit_environment_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    before = blas_threads()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with limit_blas_threads():
        assert blas_threads() == before


def test_local_runs_step_with_one_blas_thread(
    no_thread_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    real = engine.runner.run_batch

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.runner, "run_batch", spying)
    spec = parse_experiment(
        {"name": "t", "problems": [{"name": "rosenbrock"}], "optimizers": [{"name": "adam"}],
         "steps": 5}
    )  # fmt: skip
    results = run_with_progress(expand(spec), source="spec", quiet=True)
    assert seen and set(seen[0]) == {1}
    assert results[0]["steps_done"] == 5


PROCESS_THREADS = (
    "import os\n"
    "from engine.process import run_command\n"
    "def entry():\n"
    "    from threadpoolctl import threadpool_info\n"
    "    import numpy, scipy.linalg\n"
    "    pools = sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'})\n"
    "    print(pools, [os.environ.get(v) for v in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS')])\n"
    "run_command(lambda: entry)\n"
)


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [({}, "[1] ['1', '1']"), ({"OMP_NUM_THREADS": "2"}, "[2] [None, '2']")],
)
def test_a_command_process_starts_its_pools_with_one_thread(
    chosen: dict[str, str], expected: str
) -> None:
    """NumPy's and SciPy's pools, as loaded (no limit applied): one thread unless the environment
    chose (then as it chose, the other variables left unset)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV} | chosen
    proc = subprocess.run(
        [sys.executable, "-c", PROCESS_THREADS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (0, expected + "\n"), proc.stderr
