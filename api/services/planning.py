"""How an experiment's runs are cut into tasks.

A task should carry whole engine batches: runs with equal :func:`engine.runner.batch_key` are
stepped together along the run axis, and a step of a batch costs a fixed Python overhead plus a
little per run, so a batch cut across two tasks pays that overhead twice. Cutting one is still
worth it to keep ``parallelism`` worker processes busy, or to stay within a task's caps:

* each batch-key group is cut into as few *near-equal* pieces as the caps allow — at most
  :func:`engine.runner.batch_capacity` and ``max_runs`` runs and ``max_cost`` of cost each —
  and as its *share* asks: the experiment's total cost ÷ ``parallelism``, but not below
  :data:`MIN_TASK_COST` (work that small ends sooner in one task than its overhead is shared).
  So a 1,000-run sweep becomes two tasks of 500 for two workers, not one task leaving a worker
  idle, nor four of 250 that step the same curves at twice the overhead;
* pieces of different keys then share a task while it stays within the share and ``max_runs``.

Cost is :func:`engine.runner.estimate_cost` (≈ steps × parameters); a single run always forms a
task of its own when it alone exceeds a cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.runner import batch_capacity, batch_key, estimate_cost
from engine.spec import RunSpec

#: The least cost worth a task of its own when cutting for parallelism: ~0.1 s of MLP-digits
#: work, or 1,000 Rosenbrock runs of 5,000 steps (whose steps are mostly Python overhead).
MIN_TASK_COST = 1e7


def _even_parts(ids: list[str], parts: int) -> list[list[str]]:
    """``ids`` in ``parts`` consecutive slices whose sizes differ by at most one."""
    size, extra = divmod(len(ids), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        out.append(ids[start:end])
        start = end
    return out


def plan_chunks(
    runs: Sequence[tuple[str, RunSpec]],
    *,
    max_cost: float,
    max_runs: int,
    parallelism: int = 1,
    min_cost: float = MIN_TASK_COST,
) -> list[list[str]]:
    """Group ``(row id, run spec)`` pairs into lists of row ids, one list per task.

    Every id appears in exactly one chunk; a chunk's summed cost stays within ``max_cost`` and
    its size within ``max_runs`` unless a single run alone exceeds them. Order follows the input
    within each batch key, and keys in order of first appearance. ``min_cost`` is the least
    cost cutting for ``parallelism`` goes down to (:data:`MIN_TASK_COST`).
    """
    groups: dict[tuple[object, ...], list[tuple[str, RunSpec]]] = {}
    for row_id, run in runs:
        groups.setdefault(batch_key(run), []).append((row_id, run))
    # Runs of one key cost the same (steps, parameters and batch size are in the key).
    unit = {key: estimate_cost(members[0][1]) for key, members in groups.items()}
    total = sum(unit[key] * len(members) for key, members in groups.items())
    # The share each of ``parallelism`` tasks should get, a soft cap; relative tolerances keep
    # an exact share (total ÷ parallelism) from rounding into one more piece.
    share = min(max_cost, max(total / parallelism, min_cost))

    pieces: list[tuple[list[str], float]] = []
    for key, members in groups.items():
        fits = max(1, math.floor(max_cost / unit[key] * (1 + 1e-9))) if unit[key] > 0 else 1
        size = min(max_runs, batch_capacity(members[0][1]), fits)
        by_share = math.ceil(unit[key] * len(members) / share * (1 - 1e-9))
        parts = min(len(members), max(by_share, -(-len(members) // size)))
        for ids in _even_parts([row_id for row_id, _ in members], parts):
            pieces.append((ids, unit[key] * len(ids)))

    chunks: list[list[str]] = []
    current: list[str] = []
    current_cost = 0.0
    for ids, cost in pieces:
        over = current_cost + cost > share * (1 + 1e-9) or len(current) + len(ids) > max_runs
        if current and over:
            chunks.append(current)
            current, current_cost = [], 0.0
        current = current + ids
        current_cost += cost
    if current:
        chunks.append(current)
    return chunks
