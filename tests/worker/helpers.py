"""Helpers for the worker tests: experiments created straight through the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from api.db import Database
from api.models import Experiment, Run
from api.store import create_experiment, load_curves
from engine.spec import expand, parse_experiment


def long_spec(steps: int = 30_000, dims: tuple[int, ...] = (3,)) -> dict[str, Any]:
    """Runs that take a while: Rosenbrock in 3-D and up goes through the general loop (the
    compiled loop steps a 2-D run's 30,000 updates in about a millisecond)."""
    return {
        "name": "long",
        "problems": [{"name": "rosenbrock", "dim": list(dims)}],
        "optimizers": [{"name": "sgd", "lr": 1e-4}],
        "steps": steps,
    }


def new_experiment(db: Database, spec: dict[str, Any]) -> tuple[str, list[str]]:
    parsed = parse_experiment(spec)
    with db.writer() as session:
        exp = create_experiment(session, parsed, expand(parsed))
        session.commit()
        ids = list(
            session.execute(
                select(Run.id).where(Run.experiment_id == exp.id).order_by(Run.position)
            ).scalars()
        )
    return exp.id, ids


def runs_of(db: Database, experiment_id: str) -> list[Run]:
    with db.session() as session:
        return list(
            session.execute(
                select(Run).where(Run.experiment_id == experiment_id).order_by(Run.position)
            ).scalars()
        )


def experiment(db: Database, experiment_id: str) -> Experiment:
    with db.session() as session:
        exp = session.get(Experiment, experiment_id)
        assert exp is not None
        return exp


def curves(db: Database, run_id: str) -> dict[str, list[Any]]:
    with db.session() as session:
        return load_curves(session, run_id)
