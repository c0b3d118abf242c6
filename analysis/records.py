"""Run records: the one input of every statistic, whichever shape it arrived in.

A record is a run in the engine's result shape (``{"run_id", "spec", <metrics>, <curves>}``);
:func:`normalize` also accepts the API's run objects (``"spec"`` + ``"metrics"`` [+ ``"curves"``])
and flattened export rows. Numbers that cannot be computed (no runs, a diverged run's curve) are
``None``, never NaN, so every result is valid JSON.

Vocabulary used throughout :mod:`analysis`:

* **problem** — a problem spec under one budget (steps, target loss, eval cadence, dtype);
* **solver** — an optimizer with all its hyper-parameters plus an LR schedule;
* **group** — one (problem, solver) pair; its runs differ only by seed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar, cast

import numpy as np

T = TypeVar("T")

#: Floor under a suboptimality (or a loss, when f* is unknown) before taking its logarithm: below
#: ~1e-16 relative to a unit-scale loss the differences are float64 rounding, not progress.
LOG_FLOOR = 1e-16
#: Fields of the engine's run spec besides the three nested specs (export columns, in order).
RUN_FIELDS = ("seed", "steps", "target_loss", "eval_every", "dtype", "schedule_unit")
#: The budget: run-spec fields that belong to the problem side of a group (the rest of the spec
#: but the seed is the solver: optimizer, schedule, schedule_unit and any later field).
BUDGET_FIELDS = ("steps", "target_loss", "eval_every", "dtype")
NESTED = ("problem", "optimizer", "schedule")
#: The derived metric: mean log10 suboptimality over the run (see :func:`auc_log_subopt`).
AUC = "auc_log_subopt"
#: Every metric a group is summarised on, with its direction — declared here and nowhere else:
#: ``"min"`` when a smaller value is better, ``"max"`` when a larger one is. A failed run ranks as
#: the worst value in that direction (see :func:`outcome`).
DIRECTION: dict[str, Literal["min", "max"]] = {
    "final_loss": "min",
    "best_loss": "min",
    "suboptimality": "min",
    "steps_to_target": "min",
    AUC: "min",
    "test_loss": "min",
    "test_accuracy": "max",
    "wall_time_s": "min",
}
GROUP_METRICS = tuple(DIRECTION)
HIGHER_IS_BETTER = frozenset(m for m, d in DIRECTION.items() if d == "max")
#: Run statuses whose runs are not outcomes yet (left out of every statistic).
PENDING = frozenset({"queued", "running"})
#: Run statuses that are failures, like a diverged run.
FAILED = frozenset({"failed", "cancelled"})

#: A curve as stored or sent: a list (``None`` for a non-finite value) or a float array.
Curve = Sequence[Any] | np.ndarray


class RunRecord(TypedDict, total=False):
    """One run as every statistic reads it: the engine's result shape plus the stored status.

    ``run_id`` identifies the run; ``spec`` is the engine's run spec (``problem``, ``optimizer``,
    ``schedule``, ``seed`` and the budget). Metrics are ``None`` when unknown (a queued run, a
    diverged run's test accuracy); curves are lists (``None`` for a non-finite value) or arrays.
    """

    run_id: str | None
    spec_hash: str | None
    spec: dict[str, Any]
    status: str | None
    final_loss: float | None
    best_loss: float | None
    f_star: float | None
    suboptimality: float | None
    steps_to_target: int | None
    diverged: bool | None
    divergence_step: int | None
    divergence_reason: str | None
    test_loss: float | None
    test_accuracy: float | None
    wall_time_s: float | None
    batch_size: int | None
    batch_wall_time_s: float | None
    steps_done: int | None
    grad_evals_done: int | None
    stopped: bool | None
    auc_log_subopt: float | None
    eval_steps: Curve
    grad_evals: Curve
    losses: Curve
    wall_times: Curve
    params_x: Curve
    params_y: Curve
    update_steps: Curve
    lrs: Curve
    grad_norms: Curve
    update_norms: Curve
    #: A long run read in buckets (see :func:`analysis.curves.reduce_run`): each kept point's
    #: lowest and highest loss / LR since the previous kept point.
    losses_lo: Curve
    losses_hi: Curve
    lrs_lo: Curve
    lrs_hi: Curve


class SummaryError(ValueError):
    """Bad input to a statistic (an unknown metric or solver): a readable message for the user."""


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"))`` without building an encoder per
#: call (a summary encodes tens of thousands of small values; the encoder keeps no state between
#: calls).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))``; a finite float or an int
    written directly as the encoder writes it (its ``__repr__``), without the encoder's ~2 µs a
    call (labels compare some 10^4 scalar fields)."""
    kind = type(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return _CANONICAL.encode(value)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:12]


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys; lists and scalars stay values."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(flatten(item, f"{name}."))
        else:
            out[name] = item
    return out


def unflatten(row: Mapping[str, Any], prefixes: Iterable[str]) -> dict[str, Any]:
    """The mappings under ``prefixes`` rebuilt from dotted keys (inverse of :func:`flatten`)."""
    out: dict[str, Any] = {}
    heads = tuple(f"{p}." for p in prefixes)
    for key, value in row.items():
        if not key.startswith(heads):
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def normalize(item: Mapping[str, Any]) -> RunRecord:
    """One run record in the engine's result shape, whichever of the three shapes it came in.

    * engine result: returned as is (a shallow copy);
    * API run object (``"metrics"`` and optionally ``"curves"`` nested): flattened onto the top,
      ``run_id`` the API's run id (``id``), ``spec_hash`` the engine's;
    * export row (``"optimizer.name"`` …): the spec rebuilt from its dotted columns.
    """
    if "spec" in item and isinstance(item["spec"], Mapping):
        record = dict(item)
        metrics, curves = record.pop("metrics", None), record.pop("curves", None)
        record.update(metrics or {})
        record.update(curves or {})
        if "id" in item and "spec_hash" in item:
            record["run_id"] = item["id"]
        return cast(RunRecord, record)
    if "optimizer.name" in item:
        spec = unflatten(item, NESTED)
        # An empty cell of a field added later (schedule_unit) means the run predates it.
        spec.update(
            {
                k: item[k]
                for k in RUN_FIELDS
                if k in item and (item[k] is not None or k == "target_loss")
            }
        )
        record = {k: v for k, v in item.items() if "." not in k and k not in RUN_FIELDS}
        record["spec"] = spec
        return cast(RunRecord, record)
    raise SummaryError(
        "not a run record: expected an engine result or API run (with 'spec') "
        "or an export row (with 'optimizer.name')"
    )


def load_records(document: Any) -> list[RunRecord]:
    """Records from a results document: ``{"runs": [...]}`` (engine / export) or a bare list."""
    items = document.get("runs") if isinstance(document, Mapping) else document
    if not isinstance(items, list):
        raise SummaryError("a results document is a list of runs or an object with a 'runs' list")
    return [normalize(item) for item in items]


def finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Curve values as float64, ``None`` → NaN (arrays, e.g. decoded from storage, pass through)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def curve_of(record: Mapping[str, Any], key: str) -> Any:
    """The record's curve ``key`` when it has points, else ``None`` (lists or arrays alike)."""
    values = record.get(key)
    return values if values is not None and len(values) else None


def json_num(x: float | np.floating[Any] | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_list(values: np.ndarray) -> list[float | None]:
    """Floats as a JSON list, ``None`` where a value is not finite (vectorised :func:`json_num`)."""
    x = np.asarray(values, dtype=np.float64)
    out: list[float | None] = x.tolist()
    bad = np.flatnonzero(~np.isfinite(x))
    for i in bad:
        out[i] = None
    return out


def num_or_int(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def auc_log_subopt(eval_steps: Curve, losses: Curve, f_star: float | None) -> float | None:
    """Mean log10 suboptimality over the run: the area under the log curve per step.

    ``(1 / (s_K − s_0)) ∫ log10(max(f(s) − f*, LOG_FLOOR)) ds`` by the trapezoidal rule over the
    eval steps ``s_0 … s_K``; with f* unknown, ``f*`` is taken as 0 (log loss). One point gives its
    own log value. ``None`` when there is no point or a loss is not finite (a diverged run).
    """
    y = floats(losses)
    if y.size == 0 or not np.isfinite(y).all():
        return None
    logs = np.log10(np.maximum(y - (f_star or 0.0), LOG_FLOOR))
    x = np.asarray(eval_steps, dtype=np.float64)
    if y.size == 1 or x[-1] == x[0]:
        return float(logs[-1])
    return float(np.trapezoid(logs, x) / (x[-1] - x[0]))


#: Rows the batched functions stack at a time: their temporaries stay a few hundred kB, reused
#: from the heap (10,000 runs of 201 points at once made 16 MB arrays, mapped and faulted in
#: afresh: ~0.1 s of system time).
STACK_ROWS = 256


def blocks(items: Sequence[T], size: int = STACK_ROWS) -> list[Sequence[T]]:
    """``items`` in consecutive blocks of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def auc_many(runs: Sequence[tuple[Curve, Curve, float | None]]) -> list[float | None]:
    """:func:`auc_log_subopt` of each (eval steps, losses, f*), equal to it bit for bit: runs with
    as many points are stacked and reduced along rows in one NumPy call per block (the
    trapezoidal sum of a row of a C-ordered matrix is the pairwise sum of the 1-D curve,
    elementwise steps alike)."""
    out: list[float | None] = [None] * len(runs)
    by_size: dict[int, list[int]] = {}
    for i, (x, y, f_star) in enumerate(runs):
        if len(y) >= 2 and len(x) == len(y):
            by_size.setdefault(len(y), []).append(i)
        else:
            out[i] = auc_log_subopt(x, y, f_star)
    for rows in (block for indices in by_size.values() for block in blocks(indices)):
        ys = np.stack([floats(runs[i][1]) for i in rows])
        xs = np.stack([np.asarray(runs[i][0], dtype=np.float64) for i in rows])
        shift = np.array([runs[i][2] or 0.0 for i in rows], dtype=np.float64)
        with np.errstate(all="ignore"):  # rows with a non-finite loss or one step are not used
            logs = np.log10(np.maximum(ys - shift[:, None], LOG_FLOOR))
            areas = np.trapezoid(logs, xs, axis=1) / (xs[:, -1] - xs[:, 0])
        flat = xs[:, -1] == xs[:, 0]
        ok = np.isfinite(ys).all(axis=1)
        for j, i in enumerate(rows):
            if ok[j]:
                out[i] = float(logs[j, -1] if flat[j] else areas[j])
    return out


def outcomes(records: Sequence[Mapping[str, Any]], metric: str) -> list[float | None]:
    """:func:`outcome` of each record by the same rule (:func:`_outcomes`), the AUCs computed from
    curves batched by :func:`auc_many` (a sweep asks for 10^4 of each metric)."""
    if metric != AUC:
        return _outcomes(records, metric)
    todo = [
        i
        for i, r in enumerate(records)
        if run_state(r) == "done" and r.get(AUC) is None and "losses" in r and "eval_steps" in r
    ]
    aucs = auc_many(
        [(records[i]["eval_steps"], records[i]["losses"], records[i].get("f_star")) for i in todo]
    )
    return _outcomes(records, metric, dict(zip(todo, aucs, strict=True)))


def metric_value(record: Mapping[str, Any], metric: str) -> float | None:
    """A record's value of ``metric`` (``auc_log_subopt`` from its curve when it has one and no
    value computed from the whole curve already, see :func:`analysis.curves.reduce_run`)."""
    if metric == AUC:
        if record.get("diverged"):
            return None
        if record.get(AUC) is None and "losses" in record and "eval_steps" in record:
            return auc_log_subopt(record["eval_steps"], record["losses"], record.get("f_star"))
        return finite(record.get(AUC))
    if metric == "steps_to_target" and record.get("diverged"):
        return None
    return finite(record.get(metric))


def succeeded(record: Mapping[str, Any]) -> bool:
    """Target reached and not diverged (the success of a run with a target loss)."""
    return record.get("steps_to_target") is not None and not record.get("diverged")


def check_metric(metric: str) -> None:
    if metric not in GROUP_METRICS:
        raise SummaryError(f"unknown metric {metric!r}; known: {', '.join(GROUP_METRICS)}")


def direction_sign(metric: str) -> float:
    """+1 for a lower-is-better metric, −1 for a higher-is-better one: ``sign · value`` is a
    badness (smaller is better) for every metric."""
    check_metric(metric)
    return -1.0 if DIRECTION[metric] == "max" else 1.0


def run_state(record: Mapping[str, Any]) -> Literal["pending", "failed", "done"]:
    """``pending`` (queued or running: not an outcome yet), ``failed`` (diverged, failed or
    cancelled) or ``done``."""
    status = record.get("status")
    if status in PENDING:
        return "pending"
    if record.get("diverged") or status in FAILED:
        return "failed"
    return "done"


def outcome(record: Mapping[str, Any], metric: str) -> float | None:
    """The value of ``metric`` a statistic uses for this run.

    * a pending run, or a metric the run does not have (``test_accuracy`` of a problem without a
      test set): ``None`` — not counted;
    * a failed run (diverged, failed, cancelled), or a finished run that never reached its target
      for ``steps_to_target``: the worst value in the metric's direction (``+inf`` for a
      lower-is-better metric, ``−inf`` for a higher-is-better one), so it ranks last;
    * otherwise the run's finite value.
    """
    return _outcomes((record,), metric)[0]


def _outcomes(
    records: Sequence[Mapping[str, Any]],
    metric: str,
    known: Mapping[int, float | None] | None = None,
) -> list[float | None]:
    """:func:`outcome`'s rule, record by record: a finished run's value is ``known[i]`` where
    given (the i-th record's value computed beforehand), else :func:`metric_value`. The metric is
    checked at the first record that is not pending."""
    out: list[float | None] = []
    worst: float | None = None
    for i, record in enumerate(records):
        state = run_state(record)
        if state == "pending":
            out.append(None)
            continue
        if worst is None:
            worst = direction_sign(metric) * math.inf
        if state == "failed":
            out.append(worst)
            continue
        value = known[i] if known and i in known else metric_value(record, metric)
        if value is None and metric == "steps_to_target" and record["spec"].get("target_loss"):
            value = worst
        out.append(value)
    return out
