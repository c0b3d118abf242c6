"""Summary queries: an experiment's state for its ETag and its runs as :mod:`analysis` records.

The statistics themselves live in :mod:`analysis` and never see SQL; this module is the only
place the summary and export routes read the database.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from analysis.curves import reduce_run
from api.db import Database
from api.errors import not_found
from api.models import Experiment, Run, RunCurve
from api.services.experiments import valid_id
from api.store import decode_chunks
from engine.runner import METRIC_KEYS


def experiment_state(
    db: Database, experiment_id: str, owner: str | None = None
) -> tuple[str, int, int]:
    """(status, run count, revision sum): changes whenever anything the summary reads changes.

    A 404 unless ``owner`` may see the experiment (None: anyone's)."""
    if not valid_id(experiment_id):
        raise not_found("experiment", experiment_id)
    with db.session() as session:
        query = select(Experiment.status).where(Experiment.id == experiment_id)
        if owner is not None:
            query = query.where(Experiment.owner == owner)
        status = session.execute(query).scalar_one_or_none()
        if status is None:
            raise not_found("experiment", experiment_id)
        count, revisions = session.execute(
            select(func.count(), func.coalesce(func.sum(Run.revision), 0)).where(
                Run.experiment_id == experiment_id
            )
        ).one()
    return status, int(count), int(revisions)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic garbage collection held off while a summary is built.

    A 10,000-run summary allocates some 10^5 records, arrays and dicts, none in a reference cycle;
    each allocation burst triggers collections whose oldest generation walks every live object of
    the process — a sixth of the summary's CPU time for nothing. Reference counting still frees
    everything; collection resumes at the end if it was on at the start (a concurrent summary
    that found it off leaves it to the one that turned it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_records(
    session: Session, experiment_id: str, curves: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], list[Hashable]]:
    """The experiment's runs as engine-shaped records, in submission order: ``run_id`` is the
    API's run id (what ``/v1/runs/{id}`` accepts), ``spec_hash`` the engine's, ``status`` added;
    with each run's spec key (see :class:`SpecReader`) for :func:`~analysis.groups.group_runs`.

    ``curves`` are streamed run by run from one query, decoded into arrays (NaN where a value was
    not finite) and cut to at most about :data:`~analysis.curves.READ_POINTS` points each by
    :func:`~analysis.curves.reduce_run`, so memory stays bounded however many steps the runs
    have; a running run has the points written so far. Read in one snapshot session, runs and
    curves agree.
    """
    columns = [getattr(Run, key) for key in (*METRIC_KEYS, "id", "spec_hash", "status", "spec")]
    # plain column rows: executed on the session's connection, without the ORM's row processing
    runs = (
        session.connection()
        .execute(select(*columns).where(Run.experiment_id == experiment_id).order_by(Run.position))
        .all()
    )
    records = []
    keys = []
    by_id: dict[str, dict[str, Any]] = {}
    specs = SpecReader()
    for *metrics, run_id, spec_hash, status, spec in runs:
        record: dict[str, Any] = dict(zip(METRIC_KEYS, metrics, strict=True))
        record.update(run_id=run_id, spec_hash=spec_hash, status=status)
        record["spec"], key = specs.read(spec)
        records.append(record)
        keys.append(key)
        by_id[run_id] = record
    if curves:
        query = (
            select(RunCurve.run_id, RunCurve.name, RunCurve.data)
            .join(Run, Run.id == RunCurve.run_id)
            .where(Run.experiment_id == experiment_id, RunCurve.name.in_(curves))
            # the unique (experiment, position) index gives this order as it reads: ordered by
            # run id, SQLite sorted every row, blobs and all, in a temporary B-tree
            .order_by(Run.position, RunCurve.name, RunCurve.seq)
        )
        for run_id, found in _stream(session, query):
            record = by_id[run_id]
            record.update(reduce_run(found, int(record["spec"]["steps"]), record.get("f_star")))
    return records, keys


#: A top-level seed as the engine's canonical JSON writes it: an integer literal ending the field.
_SEED = re.compile(r'"seed":(-?(?:0|[1-9][0-9]*))(?=[,}])')


class SpecReader:
    """Stored run specs as dicts, each text without its seed parsed once.

    The runs of a group are stored as one text but for the digits of the seed, so each text is
    split around its last ``"seed":<int>`` into a (head, tail) template. The first text of a
    template is parsed whole, and parsed again with other digits: the template is used only if
    that changed the top-level ``seed`` by as much and nothing else, which proves those digits
    are the seed's value in every text of the template (a JSON text is parsed left to right, the
    head fixes where the digits stand). The next texts of the template are a copy of its dict
    with their seed (nested specs shared, read-only); any other text is parsed as it is.
    """

    def __init__(self) -> None:
        self.templates: dict[tuple[str, str], dict[str, Any] | None] = {}

    def read(self, text: str) -> tuple[dict[str, Any], Hashable]:
        """The spec and a key that is equal for two texts only if their specs agree but for the
        seed (:func:`~analysis.groups.group_runs`'s ``keys``)."""
        found = _SEED.match(text, max(text.rfind('"seed":'), 0))
        if found is None:
            return json.loads(text), text
        key = (text[: found.start(1)], text[found.end(1) :])
        if key not in self.templates:
            self.templates[key] = _template(text, *key, int(found.group(1)))
        template = self.templates[key]
        if template is None:
            return json.loads(text), text
        spec = dict(template)
        spec["seed"] = int(found.group(1))
        return spec, key


def _template(text: str, head: str, tail: str, seed: int) -> dict[str, Any] | None:
    """``text`` parsed, if ``head + <another seed> + tail`` parses to it with only its top-level
    seed changed (else ``None``)."""
    spec = json.loads(text)
    other = json.loads(f"{head}{seed + 1}{tail}")
    if not isinstance(spec, dict) or not isinstance(other, dict):
        return None
    if spec.get("seed") != seed or other.pop("seed", None) != seed + 1:
        return None
    return spec if other == {k: v for k, v in spec.items() if k != "seed"} else None


#: Run ids per ``IN (…)`` list: far below every backend's limit on bound parameters.
ID_CHUNK = 500
#: Curve rows fetched at a time (a server-side cursor on PostgreSQL).
CURVE_ROWS = 512


def read_curves(
    session: Session,
    budgets: Mapping[str, tuple[int, float | None]],
    curves: tuple[str, ...],
) -> dict[str, dict[str, Any]]:
    """The named curves of the runs in ``budgets`` (run id → (steps, f*)) as :func:`read_records`
    reads them (run id → name → array); a run without points of a curve has no entry for it."""
    out: dict[str, dict[str, Any]] = {}
    ids = list(budgets)
    for i in range(0, len(ids), ID_CHUNK):
        query = (
            select(RunCurve.run_id, RunCurve.name, RunCurve.data)
            .where(RunCurve.run_id.in_(ids[i : i + ID_CHUNK]), RunCurve.name.in_(curves))
            .order_by(RunCurve.run_id, RunCurve.name, RunCurve.seq)
        )
        for run_id, found in _stream(session, query):
            out[run_id] = reduce_run(found, *budgets[run_id])
    return out


def _stream(
    session: Session, query: Select[str, str, bytes]
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Rows of (run id, name, chunk) in (run, name, chunk) order as one run's decoded curves at
    a time: only one run is ever held whole."""
    current: str | None = None
    chunks: dict[str, list[bytes]] = {}
    rows = session.connection().execute(query.execution_options(yield_per=CURVE_ROWS))
    for run_id, name, data in rows:
        if run_id != current:
            if current is not None:
                yield current, {k: decode_chunks(k, v) for k, v in chunks.items()}
            current, chunks = run_id, {}
        chunks.setdefault(name, []).append(data)
    if current is not None:
        yield current, {k: decode_chunks(k, v) for k, v in chunks.items()}
