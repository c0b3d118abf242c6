"""Local entry points hold BLAS at one thread, as a worker process does, unless the environment
chose a count."""

from __future__ import annotations

from typing import Any

import pytest
from threadpoolctl import threadpool_info

import engine.runner
from engine.cli import run_with_progress
from engine.spec import expand, parse_experiment
from engine.threads import THREAD_ENV, limit_blas_threads


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
