"""The run state machine and the queries the API and the worker share.

A run moves ``queued → running → succeeded | failed | cancelled`` (and back to ``queued`` when its
lease expires). Every transition is a conditional UPDATE, so concurrent actors (a redelivered
task, the reconciler, a cancel request) cannot both win:

* a task *claims* runs that are ``queued`` (or ``running`` with an expired lease), stamping a
  fresh ``lease_token`` and bumping ``attempts``;
* every later write of that attempt — lease renewals, checkpoints, the final results — applies only
  to rows that still carry its token and are ``running``, so an attempt that lost its lease writes
  nothing;
* transactions that change run statuses lock the experiment row first (a fixed lock order, so
  PostgreSQL never deadlocks) and end by recomputing the experiment's status from its run counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from api.models import TERMINAL, Experiment, ExperimentTag, Run, RunCurve, utcnow
from engine.runner import CURVE_KEYS, METRIC_KEYS
from engine.spec import ExperimentSpec, RunSpec

#: Curves whose values are integers (packed as int64); all others are float64, NaN for ``None``.
INT_CURVES = frozenset({"eval_steps", "update_steps", "grad_evals"})
RUN_STATUS_KEYS = ("queued", "running", "succeeded", "failed", "cancelled")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def new_experiment_id() -> str:
    """24 hex digits: 48 bits of milliseconds since the epoch, then 48 random bits.

    Ids sort by creation time (to the millisecond), which keyset pagination relies on.
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(6).hex()}"


def run_row_id(experiment_id: str, engine_run_id: str) -> str:
    """Experiment-scoped and deterministic: the same run in one experiment always has this id."""
    return hashlib.sha256(f"{experiment_id}:{engine_run_id}".encode()).hexdigest()[:24]


# --------------------------------------------------------------------------- curve codec


#: A chunk is raw little-endian values (int64 for :data:`INT_CURVES`, float64 otherwise), or —
#: when its length in bytes is 1 more than a multiple of 8, which raw values never are — a tag
#: byte and the parameters of a chunk that is all one pattern (bit for bit):
#: ``AFFINE`` — int64 ``first + i·step`` (steps, gradient-evaluation counts), as first, step, n;
#: ``CONSTANT`` — n copies of one value (a constant schedule's lrs), as the value's 8 bytes, n.
#: A 1,000-run × 10,000-step sweep stores 3 of its 9 curves in 25 or 17 bytes instead of 80 kB.
AFFINE = b"a"
CONSTANT = b"c"
#: Chunks shorter than this stay raw (the encoding saves nothing there).
ENCODE_FROM = 4


def _dtype(name: str) -> str:
    return "<i8" if name in INT_CURVES else "<f8"


def pack_curve(name: str, values: Sequence[Any] | np.ndarray) -> bytes:
    try:
        arr = np.asarray(values, dtype=_dtype(name))
    except TypeError:  # a None (non-finite value) among them
        arr = np.asarray([math.nan if v is None else v for v in values], dtype="<f8")
    n = arr.size
    if n >= ENCODE_FROM:
        bits = arr.view("<i8")
        if name in INT_CURVES:
            # int64 arithmetic wraps alike in the check and in the decoding: exact either way
            steps = np.diff(bits)
            if (steps == steps[0]).all():
                return AFFINE + np.array([bits[0], steps[0], n], dtype="<i8").tobytes()
        elif (bits == bits[0]).all():
            return CONSTANT + arr[:1].tobytes() + np.array([n], dtype="<i8").tobytes()
    return arr.tobytes()


def decode_curve(name: str, data: bytes) -> np.ndarray:
    """One stored chunk as an array (int64 or float64; NaN where a value was not finite)."""
    if len(data) % 8 != 1:
        return np.frombuffer(data, dtype=_dtype(name))
    tag, body = data[:1], data[1:]
    if tag == AFFINE:
        first, step, n = np.frombuffer(body, dtype="<i8")
        return first + step * np.arange(n, dtype=np.int64)
    if tag == CONSTANT:
        (n,) = np.frombuffer(body[8:], dtype="<i8")
        return np.repeat(np.frombuffer(body[:8], dtype=_dtype(name)), n)
    raise ValueError(f"curve {name!r}: unknown chunk encoding {tag!r}")


def decode_chunks(name: str, chunks: Sequence[bytes]) -> np.ndarray:
    """A curve's chunks, in order, as one array."""
    if all(len(data) % 8 != 1 for data in chunks):
        return np.frombuffer(b"".join(chunks), dtype=_dtype(name))
    return np.concatenate([decode_curve(name, data) for data in chunks])


def plain_values(name: str, arr: np.ndarray) -> list[Any]:
    """A decoded curve as JSON gives it: ``None`` where a value is not finite."""
    out: list[Any] = arr.tolist()
    if name not in INT_CURVES:
        for i in np.flatnonzero(~np.isfinite(arr)).tolist():
            out[i] = None
    return out


def unpack_curve(name: str, data: bytes) -> list[Any]:
    return plain_values(name, decode_curve(name, data))


def load_curves(session: Session, run_id: str) -> dict[str, list[Any]]:
    """Every stored curve of a run, chunks joined in order (a running run: its points so far)."""
    rows = session.execute(
        select(RunCurve.name, RunCurve.start, RunCurve.data)
        .where(RunCurve.run_id == run_id)
        .order_by(RunCurve.name, RunCurve.seq)
    ).all()
    parts: dict[str, list[np.ndarray]] = {}
    lengths: dict[str, int] = {}
    for name, start, data in rows:
        if start != lengths.get(name, 0):
            raise RuntimeError(f"run {run_id}: curve {name!r} has a gap at {start}")
        chunk = decode_curve(name, data)
        parts.setdefault(name, []).append(chunk)
        lengths[name] = start + chunk.size
    return {name: plain_values(name, np.concatenate(chunks)) for name, chunks in parts.items()}


# --------------------------------------------------------------------------- experiments


#: The nested specs whose names a run row carries as columns.
RUN_NAMES = ("problem", "optimizer", "schedule")


def create_experiment(
    session: Session,
    spec: ExperimentSpec,
    runs: Sequence[RunSpec],
    *,
    idempotency_key: str | None = None,
    owner: str = "",
    now: datetime | None = None,
) -> Experiment:
    """Insert an experiment and its runs (all ``queued``); the caller commits."""
    now = now or utcnow()
    spec_json = canonical_json(spec.model_dump(mode="json"))
    experiment = Experiment(
        id=new_experiment_id(),
        name=spec.name,
        description=spec.description,
        status="queued",
        spec=spec_json,
        spec_hash=hashlib.sha256(spec_json.encode()).hexdigest(),
        idempotency_key=idempotency_key,
        owner=owner,
        total_runs=len(runs),
        created_at=now,
        tags=[ExperimentTag(tag=t) for t in sorted(set(spec.tags))],
    )
    session.add(experiment)
    session.flush()
    rows = []
    for i, run in enumerate(runs):
        spec_json = run.canonical_json()
        names = {k: v["name"] for k, v in json.loads(spec_json).items() if k in RUN_NAMES}
        rows.append(
            {
                "id": run_row_id(experiment.id, run.run_id),
                "experiment_id": experiment.id,
                "position": i,
                "spec_hash": run.run_id,
                "spec": spec_json,
                **names,
                "steps": run.steps,
                "status": "queued",
                "steps_done": 0,
                "grad_evals_done": 0,
                "attempts": 0,
                "revision": 0,
                "created_at": now,
            }
        )
    if rows:
        session.execute(insert(Run), rows)
    return experiment


def spec_hash_of(spec: ExperimentSpec) -> str:
    return hashlib.sha256(canonical_json(spec.model_dump(mode="json")).encode()).hexdigest()


def lock_experiment(session: Session, experiment_id: str) -> Experiment | None:
    """The experiment row, locked for this transaction (first lock of every status change)."""
    return session.execute(
        select(Experiment).where(Experiment.id == experiment_id).with_for_update()
    ).scalar_one_or_none()


@dataclass
class Counts:
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUN_STATUS_KEYS, 0))
    #: Finished runs plus the done fraction of running ones.
    done: float = 0.0


def run_counts(session: Session, experiment_ids: Iterable[str]) -> dict[str, Counts]:
    ids = list(experiment_ids)
    out = {i: Counts() for i in ids}
    if not ids:
        return out
    done = func.sum(
        case(
            (Run.status.in_(TERMINAL), 1.0),
            (Run.status == "running", Run.steps_done * 1.0 / Run.steps),
            else_=0.0,
        )
    )
    rows = session.execute(
        select(Run.experiment_id, Run.status, func.count(), done)
        .where(Run.experiment_id.in_(ids))
        .group_by(Run.experiment_id, Run.status)
    ).all()
    for experiment_id, status, n, fraction in rows:
        counts = out[experiment_id]
        counts.by_status[status] = int(n)
        counts.done += float(fraction or 0.0)
    return out


def refresh_experiment(session: Session, experiment: Experiment, now: datetime) -> None:
    """Derive the experiment's status and timestamps from its runs (under the experiment lock).

    ``cancelled`` as soon as a cancel was requested; otherwise ``queued`` until a run is claimed,
    ``running`` while any run is queued or running, then ``failed`` if any run failed, else
    ``succeeded``. ``finished_at`` is set once no run is queued or running.
    """
    session.flush()
    c = Counter(
        dict(
            session.execute(
                select(Run.status, func.count())
                .where(Run.experiment_id == experiment.id)
                .group_by(Run.status)
            ).all()
        )
    )
    active = c["queued"] + c["running"]
    touched = c["running"] + sum(c[s] for s in TERMINAL)
    if experiment.cancel_requested_at is not None:
        status = "cancelled"
    elif active == 0:
        status = "failed" if c["failed"] else "succeeded"
    elif touched:
        status = "running"
    else:
        status = "queued"
    experiment.status = status
    if touched and experiment.started_at is None and (c["running"] or c["succeeded"]):
        experiment.started_at = now
    if active == 0 and experiment.finished_at is None:
        experiment.finished_at = now


def cancel_experiment(session: Session, experiment_id: str, now: datetime) -> Experiment | None:
    """Request cancellation: queued runs are cancelled now, running ones stop at a checkpoint.

    A finished experiment is left as it is (cancelling is idempotent).
    """
    experiment = lock_experiment(session, experiment_id)
    if experiment is None:
        return None
    if experiment.finished_at is None and experiment.cancel_requested_at is None:
        experiment.cancel_requested_at = now
        session.execute(
            update(Run)
            .where(Run.experiment_id == experiment_id, Run.status == "queued")
            .values(status="cancelled", finished_at=now, revision=Run.revision + 1)
            .execution_options(synchronize_session=False)
        )
        refresh_experiment(session, experiment, now)
    return experiment


# --------------------------------------------------------------------------- task side


@dataclass
class Claim:
    #: Rows this attempt now holds: row id → run spec.
    runs: dict[str, RunSpec]
    #: Rows given up on (too many attempts) or cancelled instead of claimed.
    dropped: list[str]


_METRIC_RESET = dict.fromkeys(METRIC_KEYS)
_METRIC_RESET["steps_done"] = 0
_METRIC_RESET["grad_evals_done"] = 0


def claim_runs(
    session: Session,
    experiment_id: str,
    run_ids: Sequence[str],
    *,
    token: str,
    now: datetime,
    lease_s: float,
    max_attempts: int,
) -> Claim:
    """Claim the claimable runs among ``run_ids`` for the attempt ``token``; the caller commits.

    Claimable: ``queued``, or ``running`` with an expired lease (its worker is presumed dead).
    An expired run that used up ``max_attempts`` is marked failed instead; under a cancelled
    experiment claimable runs are marked cancelled. Earlier attempts' partial curves are dropped.
    """
    experiment = lock_experiment(session, experiment_id)
    if experiment is None:
        return Claim({}, [])
    claimable = and_(
        Run.experiment_id == experiment_id,
        Run.id.in_(list(run_ids)),
        or_(
            Run.status == "queued",
            and_(Run.status == "running", Run.lease_expires_at < now),
        ),
    )
    dropped: list[str] = []
    if experiment.cancel_requested_at is not None:
        dropped += (
            session.execute(
                update(Run)
                .where(claimable)
                .values(
                    status="cancelled", finished_at=now, lease_token=None, revision=Run.revision + 1
                )
                .returning(Run.id)
                .execution_options(synchronize_session=False)
            )
            .scalars()
            .all()
        )
        refresh_experiment(session, experiment, now)
        return Claim({}, dropped)
    dropped += (
        session.execute(
            update(Run)
            .where(claimable, Run.attempts >= max_attempts)
            .values(
                status="failed",
                finished_at=now,
                lease_token=None,
                lease_expires_at=None,
                error=f"gave up after {max_attempts} attempts: the worker running it was lost "
                "(killed, out of memory or past the hard time limit)",
                revision=Run.revision + 1,
            )
            .returning(Run.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    claimed = session.execute(
        update(Run)
        .where(claimable, Run.attempts < max_attempts)
        .values(
            status="running",
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=Run.attempts + 1,
            started_at=now,
            finished_at=None,
            error=None,
            revision=Run.revision + 1,
            **_METRIC_RESET,
        )
        .returning(Run.id, Run.spec)
        .execution_options(synchronize_session=False)
    ).all()
    if claimed:
        session.execute(delete(RunCurve).where(RunCurve.run_id.in_([r[0] for r in claimed])))
    refresh_experiment(session, experiment, now)
    runs = {row_id: RunSpec.model_validate_json(spec) for row_id, spec in claimed}
    return Claim(runs, dropped)


def renew_lease(session: Session, token: str, *, now: datetime, lease_s: float) -> set[str]:
    """Extend the attempt's lease; returns the rows it still holds."""
    return set(
        session.execute(
            update(Run)
            .where(Run.lease_token == token, Run.status == "running")
            .values(lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(Run.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )


def cancel_requested(session: Session, experiment_id: str) -> bool:
    return (
        session.execute(
            select(Experiment.cancel_requested_at).where(Experiment.id == experiment_id)
        ).scalar_one_or_none()
        is not None
    )


def _metrics(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result.get(key) for key in METRIC_KEYS}


@dataclass
class CurveLog:
    """What one attempt has written of each curve so far: (row id, name) → (next seq, length)."""

    written: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    def append_rows(self, row_id: str, result: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for name in CURVE_KEYS:
            values = result.get(name)
            if values is None:
                continue
            seq, length = self.written.get((row_id, name), (0, 0))
            if len(values) <= length:
                continue
            rows.append(
                {
                    "run_id": row_id,
                    "name": name,
                    "seq": seq,
                    "start": length,
                    "length": len(values) - length,
                    "data": pack_curve(name, values[length:]),
                }
            )
            self.written[(row_id, name)] = (seq + 1, len(values))
        return rows


def save_checkpoint(
    session: Session,
    token: str,
    partials: dict[str, dict[str, Any]],
    log: CurveLog,
    *,
    now: datetime,
    lease_s: float,
) -> set[str]:
    """Store partial results (row id → engine result) of runs the attempt still holds.

    Metrics and ``steps_done`` are overwritten; curves get only their new tail appended. Returns
    the rows the attempt still holds (its lease renewed); the caller commits.
    """
    owned = renew_lease(session, token, now=now, lease_s=lease_s)
    mine = {row_id: res for row_id, res in partials.items() if row_id in owned}
    if not mine:
        return owned
    session.execute(update(Run), [{"id": row_id, **_metrics(res)} for row_id, res in mine.items()])
    _bump_revisions(session, list(mine))
    chunks = [row for row_id, res in mine.items() for row in log.append_rows(row_id, res)]
    if chunks:
        session.execute(insert(RunCurve), chunks)
    return owned


def _bump_revisions(session: Session, row_ids: list[str]) -> None:
    session.execute(
        update(Run)
        .where(Run.id.in_(row_ids))
        .values(revision=Run.revision + 1)
        .execution_options(synchronize_session=False)
    )


def _length(values: Sequence[Any] | None) -> int:
    return 0 if values is None else len(values)


def _stored_curves(session: Session, row_ids: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(row id, curve) → (chunks, values) as stored: what a :class:`CurveLog` should say."""
    counted = session.execute(
        select(RunCurve.run_id, RunCurve.name, func.count(), func.sum(RunCurve.length))
        .where(RunCurve.run_id.in_(row_ids))
        .group_by(RunCurve.run_id, RunCurve.name)
    ).all()
    return {(row_id, name): (int(n), int(length)) for row_id, name, n, length in counted}


def finish_runs(
    session: Session,
    experiment_id: str,
    token: str,
    results: dict[str, dict[str, Any]],
    *,
    now: datetime,
    errors: dict[str, str] | None = None,
    log: CurveLog | None = None,
) -> set[str]:
    """Write final results (row id → engine result) and failures in one transaction.

    Only rows still held by ``token`` change: a redelivered or superseded attempt writes nothing.
    A run the engine reports ``stopped`` ends ``cancelled`` (with its partial curves); a diverged
    run is a result like any other (``succeeded``, ``diverged: true``). Returns the rows written.

    ``log`` is what the attempt's checkpoints stored: a run whose stored chunks are exactly
    those gets only the tail of its curves appended (its points are written once, not again at
    the end); any other run's curves — no log, or a checkpoint whose commit was lost or
    half-seen — are deleted and written whole. ``log`` is advanced by what this writes.
    """
    experiment = lock_experiment(session, experiment_id)
    if experiment is None:
        return set()
    held = set(
        session.execute(
            select(Run.id).where(
                Run.lease_token == token,
                Run.status == "running",
                Run.experiment_id == experiment_id,
            )
        )
        .scalars()
        .all()
    )
    errors = errors or {}
    done = {row_id: res for row_id, res in results.items() if row_id in held}
    failed = {r: msg for r, msg in errors.items() if r in held and r not in done}
    updates = []
    for row_id, res in done.items():
        status = "cancelled" if res.get("stopped") else "succeeded"
        updates.append({"id": row_id, "status": status, **_metrics(res)})
    for row_id, message in failed.items():
        updates.append({"id": row_id, "status": "failed", "error": message})
    if not updates:
        return set()
    for row in updates:
        row.update(finished_at=now, lease_token=None, lease_expires_at=None)
    session.execute(update(Run), updates)
    _bump_revisions(session, [row["id"] for row in updates])
    if done:
        log = log if log is not None else CurveLog()
        stored = _stored_curves(session, list(done))
        expected = {key: value for key, value in log.written.items() if key[0] in done}
        stale = {row_id for row_id, _ in stored.keys() ^ expected.keys()} | {
            key[0] for key, value in stored.items() if expected.get(key) != value
        }
        # a curve the checkpoints stored longer than it ends is rewritten too
        stale |= {
            row_id
            for (row_id, name), (_, length) in expected.items()
            if _length(done[row_id].get(name)) < length
        }
        if stale:
            session.execute(delete(RunCurve).where(RunCurve.run_id.in_(list(stale))))
            for key in [key for key in log.written if key[0] in stale]:
                del log.written[key]
        chunks = [row for row_id, res in done.items() for row in log.append_rows(row_id, res)]
        if chunks:
            session.execute(insert(RunCurve), chunks)
    refresh_experiment(session, experiment, now)
    return set(done) | set(failed)


# --------------------------------------------------------------------------- reconciler


def _by_experiment(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for experiment_id, row_id in rows:
        out.setdefault(experiment_id, []).append(row_id)
    return out


def expired_runs(session: Session, now: datetime) -> dict[str, list[str]]:
    """Running runs whose lease expired, by experiment."""
    rows = session.execute(
        select(Run.experiment_id, Run.id)
        .where(Run.status == "running", Run.lease_expires_at < now)
        .order_by(Run.experiment_id, Run.position)
    ).all()
    return _by_experiment((e, r) for e, r in rows)


def requeue_expired(
    session: Session,
    experiment_id: str,
    run_ids: Sequence[str],
    *,
    now: datetime,
    max_attempts: int,
) -> list[str]:
    """Return abandoned runs to ``queued`` (or fail/cancel them); returns the rows to re-enqueue.

    The UPDATE re-checks the expiry, so a run whose attempt renewed its lease meanwhile is left
    alone, and two reconcilers never both re-enqueue the same run.
    """
    experiment = lock_experiment(session, experiment_id)
    if experiment is None:
        return []
    expired = and_(
        Run.experiment_id == experiment_id,
        Run.id.in_(list(run_ids)),
        Run.status == "running",
        Run.lease_expires_at < now,
    )
    common = {"lease_token": None, "lease_expires_at": None, "revision": Run.revision + 1}
    if experiment.cancel_requested_at is not None:
        session.execute(
            update(Run)
            .where(expired)
            .values(status="cancelled", finished_at=now, **common)
            .execution_options(synchronize_session=False)
        )
        refresh_experiment(session, experiment, now)
        return []
    session.execute(
        update(Run)
        .where(expired, Run.attempts >= max_attempts)
        .values(
            status="failed",
            finished_at=now,
            error=f"gave up after {max_attempts} attempts: the worker running it was lost "
            "(killed, out of memory or past the hard time limit)",
            **common,
        )
        .execution_options(synchronize_session=False)
    )
    requeued = list(
        session.execute(
            update(Run)
            .where(expired, Run.attempts < max_attempts)
            .values(status="queued", enqueued_at=now, **common)
            .returning(Run.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    refresh_experiment(session, experiment, now)
    return requeued


def unsent_runs(session: Session, now: datetime, *, grace_s: float) -> dict[str, list[str]]:
    """Queued runs never published (``enqueued_at`` unset ``grace_s`` after their creation or
    re-queue: the publish failed), marked as sent now; by experiment. The caller commits."""
    rows = session.execute(
        update(Run)
        .where(
            Run.status == "queued",
            Run.enqueued_at.is_(None),
            Run.created_at < now - timedelta(seconds=grace_s),
        )
        .values(enqueued_at=now)
        .returning(Run.experiment_id, Run.id)
        .execution_options(synchronize_session=False)
    ).all()
    return _by_experiment((e, r) for e, r in rows)


def unnamed_queued_runs(
    session: Session, now: datetime, *, sent_before: datetime, named: set[str]
) -> dict[str, list[str]]:
    """Queued runs published before ``sent_before`` that no broker message names (``named``):
    their message was lost. Marked as sent now; by experiment; the caller commits.

    ``named`` must have been read from the broker after ``sent_before``: a run published
    earlier either still has its message there, or was delivered (then it is claimed, or its
    message is among the recently delivered ones), or lost its message.
    """
    candidates = session.execute(
        select(Run.id).where(
            Run.status == "queued",
            Run.enqueued_at.is_not(None),
            Run.enqueued_at < sent_before,
        )
    ).scalars()
    lost = [row_id for row_id in candidates if row_id not in named]
    rows: list[tuple[str, str]] = []
    for i in range(0, len(lost), 1000):
        rows += session.execute(
            update(Run)
            .where(Run.id.in_(lost[i : i + 1000]), Run.status == "queued")
            .values(enqueued_at=now)
            .returning(Run.experiment_id, Run.id)
            .execution_options(synchronize_session=False)
        ).all()
    return _by_experiment(rows)


def mark_enqueued(session: Session, run_ids: Sequence[str], now: datetime | None) -> None:
    """Stamp queued runs as published at ``now``; ``None`` marks them unsent (a failed publish),
    so the reconciler re-sends them once they are older than its grace period."""
    session.execute(
        update(Run)
        .where(Run.id.in_(list(run_ids)), Run.status == "queued")
        .values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )


def run_specs(session: Session, run_ids: Sequence[str]) -> dict[str, RunSpec]:
    rows = session.execute(select(Run.id, Run.spec).where(Run.id.in_(list(run_ids)))).all()
    return {row_id: RunSpec.model_validate_json(spec) for row_id, spec in rows}
