"""Experiment use cases: submit (with limits and idempotency), read, list, cancel.

Submitting commits the experiment and all its runs first and only then publishes the tasks; a
failed publish leaves the runs unstamped for the reconciler rather than failing the request.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.config import Settings
from api.db import Database
from api.errors import ProblemError, not_found
from api.models import Experiment, ExperimentTag, utcnow
from api.quotas import Quotas
from api.services.queue import Publisher
from api.store import (
    RUN_STATUS_KEYS,
    Counts,
    cancel_experiment,
    create_experiment,
    lock_experiment,
    run_counts,
    run_row_id,
    spec_hash_of,
)
from engine.spec import ExperimentSpec, RunSpec, expand, expand_model

ID_PATTERN_LENGTH = 24


def valid_id(ident: str) -> bool:
    return len(ident) == ID_PATTERN_LENGTH and all(c in "0123456789abcdef" for c in ident)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def experiment_links(experiment_id: str) -> dict[str, str]:
    base = f"/v1/experiments/{experiment_id}"
    return {
        "self": base,
        "runs": f"{base}/runs",
        "summary": f"{base}/summary",
        "cancel": f"{base}/cancel",
    }


def experiment_dict(exp: Experiment, counts: Counts, *, with_spec: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": exp.id,
        "name": exp.name,
        "description": exp.description,
        "tags": [t.tag for t in exp.tags],
        "status": exp.status,
        "counts": {k: counts.by_status[k] for k in RUN_STATUS_KEYS},
        "total_runs": exp.total_runs,
        "progress": min(1.0, counts.done / exp.total_runs) if exp.total_runs else 1.0,
        "created_at": iso(exp.created_at),
        "started_at": iso(exp.started_at),
        "finished_at": iso(exp.finished_at),
        "cancel_requested_at": iso(exp.cancel_requested_at),
        "archived_at": iso(exp.archived_at),
        "links": experiment_links(exp.id),
    }
    if with_spec:
        out["spec"] = json.loads(exp.spec)
    return out


def _unstorable(value: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(value, float) and not math.isfinite(value):
        return [{"path": path, "message": f"must be a finite number, not {value}"}]
    if isinstance(value, str) and "\x00" in value:
        return [{"path": path, "message": "must not contain the NUL character (U+0000)"}]
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in _unstorable(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in _unstorable(v, f"{path}[{i}]")]
    return []


def check_storable(spec: ExperimentSpec) -> None:
    """Refuse (422, with field paths) values the spec models accept but JSON and PostgreSQL cannot
    hold: a non-finite number (Python's JSON parser reads the non-standard ``NaN``/``Infinity``
    literals) and a string with a NUL character (PostgreSQL text cannot contain U+0000)."""
    errors = _unstorable(spec.model_dump(mode="json"), "")
    if errors:
        raise ProblemError(
            422, "the request is invalid; see errors", kind="invalid-request", errors=errors
        )


def check_limits(spec: ExperimentSpec, settings: Settings) -> list[RunSpec]:
    """Expand the spec, refusing what exceeds this service's limits (422 with field paths).

    Every limit is checked by arithmetic on the spec as submitted before anything is expanded:
    the run count is a product of grid lengths (:meth:`ExperimentSpec.count_runs`), so a small
    body describing 10⁷ runs is refused in microseconds with no memory spent on its expansion.
    Only a spec within the run limit has its problems expanded (to count their parameters), and
    then there are at most ``max_runs_per_experiment`` variants.
    """
    errors: list[dict[str, Any]] = []
    if spec.steps > settings.max_steps_per_run:
        errors.append(
            {
                "path": "steps",
                "message": f"at most {settings.max_steps_per_run} steps per run on this service",
            }
        )
    count = spec.count_runs()
    if count > settings.max_runs_per_experiment:
        errors.append(
            {
                "path": "(body)",
                "message": f"expands to {count} runs; at most "
                f"{settings.max_runs_per_experiment} per experiment on this service",
            }
        )
    else:
        errors += _param_errors(spec, settings)
    if errors:
        raise ProblemError(
            422, "the experiment exceeds this service's limits", kind="limit", errors=errors
        )
    try:
        return expand(spec)
    except ValueError as exc:
        raise ProblemError(
            422, str(exc), kind="invalid-request", errors=[{"path": "(body)", "message": str(exc)}]
        ) from None


def _param_errors(spec: ExperimentSpec, settings: Settings) -> list[dict[str, Any]]:
    """The first problem variant over the parameter limit, per listed problem."""
    errors = []
    for i, problem in enumerate(spec.problems):
        for variant in expand_model(problem):
            n = int(variant.num_params())  # type: ignore[attr-defined]
            if n > settings.max_params_per_problem:
                errors.append(
                    {
                        "path": f"problems[{i}]",
                        "message": f"{n} parameters; at most {settings.max_params_per_problem} "
                        "per problem on this service",
                    }
                )
                break
    return errors


def dry_run(spec: ExperimentSpec, settings: Settings) -> dict[str, Any]:
    check_storable(spec)
    runs = check_limits(spec, settings)
    return {
        "run_count": len(runs),
        "runs": [{"run_id": r.run_id, **r.model_dump(mode="json")} for r in runs],
    }


def find(session: Session, experiment_id: str, owner: str | None) -> Experiment:
    """The experiment if ``owner`` may see it (None: anyone's), else the same 404 as a missing
    one — an id of someone else's experiment reveals nothing."""
    exp = session.get(Experiment, experiment_id) if valid_id(experiment_id) else None
    if exp is None or (owner is not None and exp.owner != owner):
        raise not_found("experiment", experiment_id)
    return exp


def _load(
    session: Session, experiment_id: str, owner: str | None = None, *, with_spec: bool = True
) -> dict[str, Any]:
    exp = find(session, experiment_id, owner)
    counts = run_counts(session, [exp.id])[exp.id]
    return experiment_dict(exp, counts, with_spec=with_spec)


def _replay(session: Session, key: str, spec_hash: str, owner: str) -> dict[str, Any] | None:
    exp = session.execute(
        select(Experiment).where(Experiment.idempotency_key == key, Experiment.owner == owner)
    ).scalar_one_or_none()
    if exp is None:
        return None
    if exp.spec_hash != spec_hash:
        raise ProblemError(
            422,
            "this Idempotency-Key was already used with a different request body",
            kind="idempotency-key-reused",
            errors=[{"path": "headers.Idempotency-Key", "message": "reused with another body"}],
        )
    counts = run_counts(session, [exp.id])[exp.id]
    return experiment_dict(exp, counts, with_spec=True)


def submit(
    db: Database,
    publisher: Publisher,
    settings: Settings,
    spec: ExperimentSpec,
    idempotency_key: str | None,
    *,
    owner: str = "",
    quotas: Quotas | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store and enqueue an experiment for ``owner``; returns (experiment, created).

    ``created`` is False when an ``Idempotency-Key`` replay (keys are per owner) returned the
    original experiment. With ``quotas``, the owner's backlog and daily run-steps are checked
    after the spec's limits and before anything is stored.
    """
    check_storable(spec)
    spec_hash = spec_hash_of(spec)
    if idempotency_key is not None:
        with db.session() as session:
            original = _replay(session, idempotency_key, spec_hash, owner)
        if original is not None:
            return original, False
    runs = check_limits(spec, settings)
    if quotas is not None:
        with db.session() as session:
            quotas.check_queued(session, owner, len(runs))
        quotas.charge_run_steps(owner, len(runs) * spec.steps)
    try:
        with db.writer() as session:
            exp = create_experiment(
                session, spec, runs, idempotency_key=idempotency_key, owner=owner
            )
            session.commit()
            experiment_id = exp.id
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent request with the same key won the insert.
        with db.session() as session:
            original = _replay(session, idempotency_key, spec_hash, owner)
        if original is None:
            raise
        return original, False
    publisher.enqueue(db, experiment_id, [(run_row_id(experiment_id, r.run_id), r) for r in runs])
    with db.session() as session:
        return _load(session, experiment_id), True


def get(db: Database, experiment_id: str, owner: str | None = None) -> dict[str, Any]:
    with db.session() as session:
        return _load(session, experiment_id, owner)


def list_page(
    db: Database,
    *,
    status: str | None,
    name: str | None,
    limit: int,
    cursor: str | None,
    tag: str | None = None,
    archived: bool = False,
    owner: str | None = None,
) -> dict[str, Any]:
    """Newest first (ids sort by creation time); keyset pagination on the id; only ``owner``'s
    experiments unless it is None.

    ``name`` matches a substring regardless of case, alike on SQLite and PostgreSQL (whose LIKE
    is case-sensitive); ``tag`` matches one tag exactly; ``archived`` lists the archived
    experiments instead of the others.
    """
    query = select(Experiment).order_by(Experiment.id.desc()).limit(limit + 1)
    query = query.where(
        Experiment.archived_at.is_not(None) if archived else Experiment.archived_at.is_(None)
    )
    if status is not None:
        query = query.where(Experiment.status == status)
    if owner is not None:
        query = query.where(Experiment.owner == owner)
    if name:
        query = query.where(Experiment.name.icontains(name, autoescape=True))
    if tag:
        tagged = select(ExperimentTag.experiment_id).where(ExperimentTag.tag == tag)
        query = query.where(Experiment.id.in_(tagged))
    if cursor is not None:
        query = query.where(Experiment.id < cursor)
    with db.session() as session:
        rows = list(session.execute(query).scalars().all())
        page = rows[:limit]
        counts = run_counts(session, [e.id for e in page])
    items = [experiment_dict(e, counts[e.id], with_spec=False) for e in page]
    next_cursor = page[-1].id if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def cancel(db: Database, experiment_id: str, owner: str | None = None) -> dict[str, Any]:
    with db.session() as session:
        find(session, experiment_id, owner)
    with db.writer() as session:
        exp = cancel_experiment(session, experiment_id, utcnow())
        if exp is None:
            raise not_found("experiment", experiment_id)
        session.commit()
    with db.session() as session:
        return _load(session, experiment_id)


def update(
    db: Database,
    experiment_id: str,
    *,
    tags: list[str] | None,
    description: str | None,
    archived: bool | None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Change what describes an experiment (tags, description, archived); never its runs."""
    with db.writer() as session:
        exp = find(session, experiment_id, owner)
        if tags is not None:
            exp.tags = [ExperimentTag(tag=t) for t in sorted(set(tags))]
        if description is not None:
            exp.description = description
        if archived is not None and archived != (exp.archived_at is not None):
            exp.archived_at = utcnow() if archived else None
        session.commit()
    with db.session() as session:
        return _load(session, experiment_id)


def remove(db: Database, experiment_id: str, owner: str | None = None) -> None:
    """Delete the experiment with its runs and curves, whatever its state.

    Queued runs never start (their tasks find no row to claim); a running run's worker finds its
    lease gone at the next checkpoint and stops without writing anything.
    """
    with db.session() as session:
        find(session, experiment_id, owner)
    with db.writer() as session:
        if lock_experiment(session, experiment_id) is None:
            raise not_found("experiment", experiment_id)
        session.execute(delete(Experiment).where(Experiment.id == experiment_id))
        session.commit()
