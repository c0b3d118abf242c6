"""Run queries: the sortable, filterable run list of an experiment and one run with its curves."""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from api.db import Database
from api.errors import ProblemError, not_found
from api.models import Experiment, Run
from api.services.experiments import find, iso, valid_id
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
    with db.session() as session:
        find(session, experiment_id, owner)
        if cursor is not None:
            # The cursor is the last run of the previous page: continue after its sort value.
            last = session.execute(
                select(column).where(Run.id == cursor, Run.experiment_id == experiment_id)
            ).one_or_none()
            if last is None:
                raise ProblemError(
                    404,
                    f"the cursor names no run of experiment {experiment_id!r}",
                    kind="not-found",
                    errors=[{"path": "query.cursor", "message": "no such run in this experiment"}],
                )
            query = query.where(_after(column, last[0], cursor, descending))
        rows = list(session.execute(query).scalars().all())
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
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
