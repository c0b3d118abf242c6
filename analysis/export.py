"""Flat exports: one row per run (``runs.csv`` / ``runs.json``)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analysis.groups import Group, full_spec, group_runs
from analysis.records import (
    AUC,
    NESTED,
    RUN_FIELDS,
    canonical,
    flatten,
    metric_value,
)
from engine.runner import METRIC_KEYS


def export_rows(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """One flat row per run: labels, the run spec with dotted hyper-parameter columns, metrics.

    Column order: ``run_id, spec_hash, status, problem, solver, seed, steps, target_loss,
    eval_every, dtype, schedule_unit``, the ``problem.*``, ``optimizer.*`` and ``schedule.*``
    columns (sorted), then the engine's metrics and ``auc_log_subopt``. ``run_id`` is the id the
    run has where it came from — the API's (``/v1/runs/{run_id}``) for a stored run, the
    engine's for a local one — and ``spec_hash`` the engine's hash of the run spec.
    :func:`~analysis.records.normalize` turns a row back into a record.
    """
    return export_group_rows(group_runs(records))


def export_group_rows(groups: Sequence[Group]) -> tuple[list[str], list[dict[str, Any]]]:
    """:func:`export_rows` of records already grouped by :func:`~analysis.groups.group_runs`."""
    rows = []
    spec_cols: set[str] = set()
    for g in groups:
        # runs of a group mostly differ only by seed: each distinct spec is expanded once
        body: dict[str, Any] | None = None
        for rec in g.records:
            seedless = {k: v for k, v in rec["spec"].items() if k != "seed"}
            if seedless != body:
                body, spec = seedless, full_spec(rec["spec"])
                nested = flatten({k: spec[k] for k in NESTED})
                spec_cols.update(nested)
            row = {
                "run_id": rec.get("run_id"),
                "spec_hash": rec.get("spec_hash") or rec.get("run_id"),
                "status": rec.get("status"),
                "problem": g.problem_label,
                "solver": g.solver_label,
                **{k: rec["spec"].get(k) if k == "seed" else spec.get(k) for k in RUN_FIELDS},
                **nested,
                **{k: rec.get(k) for k in METRIC_KEYS},
                AUC: metric_value(rec, AUC),
            }
            rows.append(row)
    columns = [
        "run_id",
        "spec_hash",
        "status",
        "problem",
        "solver",
        *RUN_FIELDS,
        *sorted(spec_cols, key=lambda c: (NESTED.index(c.split(".")[0]), c)),
        *METRIC_KEYS,
        AUC,
    ]
    return columns, rows


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """RFC 4180 CSV: lists as JSON text, booleans ``true``/``false``, missing values empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return canonical(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)
