"""The engine's results as JSON gives them (curves as lists, ``None`` for non-finite values),
for tests that compare curves with lists, the CLI's output or the service's answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.runner import plain_result, run_batch
from engine.spec import RunSpec


def plain_batch(runs: Sequence[RunSpec], **kwargs: Any) -> list[dict[str, Any]]:
    return [plain_result(r) for r in run_batch(runs, **kwargs)]


def plain_one(run: RunSpec) -> dict[str, Any]:
    return plain_result(run_batch([run])[0])
