"""How an experiment's runs are cut into tasks.

Runs with equal :func:`engine.runner.batch_key` go to the same task where the cost cap allows, so
the engine steps them together along the run axis; small groups share a task; a group or run
whose cost exceeds the cap is split (a single run always forms a task of its own). Cost is
:func:`engine.runner.estimate_cost` (≈ steps × parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.runner import batch_key, estimate_cost
from engine.spec import RunSpec


def plan_chunks(
    runs: Sequence[tuple[str, RunSpec]], *, max_cost: float, max_runs: int
) -> list[list[str]]:
    """Group ``(row id, run spec)`` pairs into lists of row ids, one list per task.

    Every id appears in exactly one chunk; a chunk's summed cost stays within ``max_cost`` and
    its size within ``max_runs`` unless a single run alone exceeds them. Order follows the input
    within each batch key, and keys in order of first appearance.
    """
    groups: dict[tuple[object, ...], list[tuple[str, float]]] = {}
    for row_id, run in runs:
        groups.setdefault(batch_key(run), []).append((row_id, estimate_cost(run)))

    # Split each batch-key group into pieces that fit a task on their own.
    pieces: list[tuple[list[str], float]] = []
    for members in groups.values():
        ids: list[str] = []
        cost = 0.0
        for row_id, c in members:
            if ids and (cost + c > max_cost or len(ids) >= max_runs):
                pieces.append((ids, cost))
                ids, cost = [], 0.0
            ids.append(row_id)
            cost += c
        pieces.append((ids, cost))

    # Pack small pieces of different keys together.
    chunks: list[list[str]] = []
    current: list[str] = []
    current_cost = 0.0
    for ids, cost in pieces:
        if current and (current_cost + cost > max_cost or len(current) + len(ids) > max_runs):
            chunks.append(current)
            current, current_cost = [], 0.0
        current = current + ids
        current_cost += cost
    if current:
        chunks.append(current)
    return chunks
