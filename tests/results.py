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


def float_bits(value: Any) -> Any:
    """A JSON value with every float as its bits, to compare decoded documents exactly (``==``
    takes ``-0.0`` for ``0.0``; the float's text may differ between encoders)."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return {k: float_bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [float_bits(v) for v in value]
    return value
