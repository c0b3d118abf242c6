"""Run queries: the sortable, filterable run list of an experiment and one run with its curves."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from sqlalchemy import Boolean, ColumnElement, Integer, and_, or_, select
from sqlalchemy.orm import Session

from api.db import Database
from api.errors import not_found
from api.models import Experiment, Run
from api.services.experiments import (
    decode_cursor,
    encode_cursor,
    find,
    invalid_cursor,
    iso,
    valid_id,
)
from api.store import load_curves
from engine.curves import downsample, since
from engine.runner import METRIC_KEYS

#: Run fields a list can be sorted by (all real columns).
SortKey = Literal[
    "final_loss",
    "best_loss",
    "suboptimality",
    "steps_to_target",
    "diverged",
    "test_accuracy",
    "test_loss",
    "wall_time_s",
    "steps_done",
    "grad_evals_done",
    "attempts",
    "position",
]
CURVE_DEFAULTS = (
    "eval_steps",
    "grad_evals",
    "losses",
    "wall_times",
    "update_steps",
    "lrs",
    "grad_norms",
    "update_norms",
)


def run_dict(run: Run) -> dict[str, Any]:
    metrics = {key: getattr(run, key) for key in METRIC_KEYS}
    return {
        "id": run.id,
        "experiment_id": run.experiment_id,
        "spec_hash": run.spec_hash,
        "status": run.status,
        "spec": json.loads(run.spec),
        "metrics": metrics,
        "steps_done": run.steps_done,
        "attempts": run.attempts,
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "links": {"self": f"/v1/runs/{run.id}"},
    }


#: The range of the INTEGER columns (32-bit on PostgreSQL).
INT32 = (-(2**31), 2**31 - 1)


def _cursor_value_fits(key: str, value: Any) -> bool:
    """Whether ``value`` can be compared with the sort column ``key`` on every backend (a value of
    another type or out of the column's range is an error on PostgreSQL, not an empty page)."""
    if value is None:
        return True
    kind = Run.__table__.c[key].type
    if isinstance(kind, Boolean):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(kind, Integer):
        return isinstance(value, int) and INT32[0] <= value <= INT32[1]
    return isinstance(value, int | float) and math.isfinite(value)


def _after(column: Any, value: Any, last_id: str, descending: bool) -> ColumnElement[bool]:
    """Rows after ``(value, last_id)`` in ``ORDER BY column [DESC] NULLS LAST, id``."""
    tie = and_(column == value, Run.id > last_id)
    if value is None:
        return and_(column.is_(None), Run.id > last_id)
    beyond = column < value if descending else column > value
    return or_(beyond, tie, column.is_(None))


def list_page(
    db: Database,
    experiment_id: str,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
    sort: SortKey | None,
    order: str,
    names: dict[str, str] | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """A page of the experiment's runs; ``names`` keeps runs whose ``problem`` / ``optimizer`` /
    ``schedule`` name is the one given."""
    if not valid_id(experiment_id):
        raise not_found("experiment", experiment_id)
    key = sort or "position"
    column = getattr(Run, key)
    descending = order == "desc"
    ordering = (column.desc() if descending else column.asc()).nulls_last()
    query = (
        select(Run)
        .where(Run.experiment_id == experiment_id)
        .order_by(ordering, Run.id)
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(Run.status == status)
    for column_name, value in (names or {}).items():
        query = query.where(getattr(Run, column_name) == value)
    if cursor is not None:
        data = decode_cursor(cursor)
        if data.get("sort") != key or data.get("order") != order:
            raise invalid_cursor(
                "the cursor does not belong to this listing (sort and order must stay the same)"
            )
        if not (isinstance(data.get("id"), str) and valid_id(data["id"])) or (
            not _cursor_value_fits(key, data.get("value"))
        ):
            raise invalid_cursor()
        query = query.where(_after(column, data.get("value"), data["id"], descending))
    with db.session() as session:
        find(session, experiment_id, owner)
        rows = list(session.execute(query).scalars().all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(
            {"sort": key, "order": order, "value": getattr(last, key), "id": last.id}
        )
    return {"items": [run_dict(r) for r in page], "next_cursor": next_cursor}


def _find(session: Session, run_id: str, owner: str | None) -> Run:
    """The run if ``owner`` may see its experiment (None: anyone's), else a 404."""
    run = session.get(Run, run_id) if valid_id(run_id) else None
    if run is None or (
        owner is not None
        and session.execute(
            select(Experiment.owner).where(Experiment.id == run.experiment_id)
        ).scalar_one()
        != owner
    ):
        raise not_found("run", run_id)
    return run


def _etag(run: Run, max_points: int | None, since_step: int | None) -> str:
    """Strong ETag from the run's revision (bumped by every write) and the curve view asked for."""
    return f'"{run.id}.{run.revision}.{max_points or 0}.{since_step or 0}"'


def run_etag(
    db: Database,
    run_id: str,
    max_points: int | None,
    since_step: int | None,
    owner: str | None = None,
) -> str:
    with db.session() as session:
        return _etag(_find(session, run_id, owner), max_points, since_step)


def get_with_curves(
    db: Database,
    run_id: str,
    *,
    max_points: int | None,
    since_step: int | None,
    owner: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The run with its curves (both from one snapshot) and their ETag."""
    with db.snapshot() as session:
        run = _find(session, run_id, owner)
        out = run_dict(run)
        etag = _etag(run, max_points, since_step)
        curves = load_curves(session, run_id)
    view = since(curves, since_step or 0)
    if max_points is not None:
        view = downsample(view, max_points)
    for key in CURVE_DEFAULTS:
        view.setdefault(key, [])
    out["curves"] = view
    return out, etag
