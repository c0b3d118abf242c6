"""The one task: run a chunk of an experiment's runs through :func:`engine.runner.run_batch`.

An attempt (one execution of a task message) claims its runs under a fresh lease token, keeps the
lease alive from a heartbeat thread, stores partial curves at every engine checkpoint and writes
each batch's final results in one transaction — every write fenced by the token (see
:mod:`api.store`). So a redelivered message, a reconciler re-queue or an overlapping attempt can
never run a live run twice or corrupt a finished one: runs already finished are simply not
claimable, and an attempt that lost its lease writes nothing and stops.

A task that cannot reach the database does not consume its message: its claim and its final write
are retried with backoff for ``db_retry_s`` (both are fenced, so a retry after a lost COMMIT
answer changes nothing), and if the database is still unreachable the message is rejected back to
the queue (``Reject(requeue=True)``; with ``task_acks_late`` Celery then neither acks nor fails it),
where this or another worker takes it again. Checkpoints and heartbeats that fail are skipped: the
next one carries the same data.

Cancellation: queued runs are cancelled by the API and never claimed; a running attempt sees the
request at its next checkpoint (or heartbeat), the engine stops, and the runs end ``cancelled``
with their partial curves.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_ready,
    worker_shutdown,
)

from api import logs
from api.config import get_settings
from api.db import retry_unreachable, unreachable
from api.models import utcnow
from api.services.queue import TASK_NAME
from api.store import (
    Claim,
    CurveLog,
    cancel_requested,
    claim_runs,
    finish_runs,
    renew_lease,
    save_checkpoint,
)
from engine.jit import initialise
from engine.runner import METRIC_KEYS, batch_key, run_batch
from engine.spec import RunSpec
from worker.celery_app import app
from worker.reconciler import start_reconciler, stop_reconciler
from worker.runtime import Runtime, runtime

log = logging.getLogger(__name__)


class Attempt:
    """One attempt's lease: renewed by a heartbeat thread, checked at every engine checkpoint."""

    def __init__(self, rt: Runtime, experiment_id: str, token: str, rows: set[str]) -> None:
        self.rt = rt
        self.experiment_id = experiment_id
        self.token = token
        self.rows = rows
        self.lost = False
        self.cancelled = False
        self.timed_out = False
        self.curves = CurveLog()
        self._halt = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{token[:8]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def release(self, rows: set[str]) -> None:
        """Stop expecting ``rows`` among the held ones (their final write is next)."""
        self.rows = self.rows - rows

    def should_stop(self) -> bool:
        return self._halt.is_set()

    def _note(self, owned: set[str], cancelled: bool) -> None:
        if not self.rows <= owned:
            self.lost = True
            self._halt.set()
        if cancelled:
            self.cancelled = True
            self._halt.set()

    def _beat(self) -> None:
        settings = self.rt.settings
        while not self._done.wait(settings.heartbeat_s):
            try:
                with self.rt.db.writer() as session:
                    owned = renew_lease(session, self.token, now=utcnow(), lease_s=settings.lease_s)
                    cancelled = cancel_requested(session, self.experiment_id)
                    session.commit()
            except Exception as exc:
                if not unreachable(exc):
                    log.exception("lease renewal failed (token %s)", self.token)
                continue
            self._note(owned, cancelled)

    def checkpoint(self, by_engine_id: dict[str, str], partials: list[dict[str, Any]]) -> None:
        """Store the partial results; notice a lost lease or a cancel request.

        A failed checkpoint is skipped (the next one carries the same points), except that the
        soft time limit propagates to end the batch. Either way its transaction rolled back, so
        the curve log forgets the chunks it had counted: the next checkpoint appends from where
        the stored curves really end (else they would have a gap and be unreadable).
        """
        rows = {by_engine_id[p["run_id"]]: p for p in partials}
        written = dict(self.curves.written)
        try:
            with self.rt.db.writer() as session:
                owned = save_checkpoint(
                    session,
                    self.token,
                    rows,
                    self.curves,
                    now=utcnow(),
                    lease_s=self.rt.settings.lease_s,
                )
                cancelled = cancel_requested(session, self.experiment_id)
                session.commit()
        except Exception as exc:
            self.curves.written = written
            if isinstance(exc, SoftTimeLimitExceeded):
                raise
            log.exception("checkpoint of experiment %s failed", self.experiment_id)
            return
        self._note(owned, cancelled)


def _groups(rows: Sequence[str], specs: dict[str, RunSpec]) -> list[list[str]]:
    groups: dict[tuple[Any, ...], list[str]] = {}
    for row_id in rows:
        groups.setdefault(batch_key(specs[row_id]), []).append(row_id)
    return list(groups.values())


def execute_chunk(rt: Runtime, experiment_id: str, run_ids: Sequence[str]) -> dict[str, int]:
    """Claim, run and store the given runs of one experiment; returns counts by outcome.

    Each batch-key group is stepped by one :func:`run_batch` call and its results are written in
    one transaction as soon as it ends, so one failing group does not fail the others.
    """
    settings = rt.settings
    token = uuid.uuid4().hex

    def claim_transaction() -> Claim:
        with rt.db.writer() as session:
            claim = claim_runs(
                session,
                experiment_id,
                run_ids,
                token=token,
                now=utcnow(),
                lease_s=settings.lease_s,
                max_attempts=settings.max_attempts,
            )
            session.commit()
        return claim

    claim = retry_unreachable(claim_transaction, within_s=settings.db_retry_s, what="claim")
    summary = {"claimed": len(claim.runs), "dropped": len(claim.dropped), "written": 0}
    if not claim.runs:
        return summary
    rows = [r for r in run_ids if r in claim.runs]
    attempt = Attempt(rt, experiment_id, token, set(rows))
    attempt.start()
    try:
        for group in _groups(rows, claim.runs):
            if attempt.lost:
                break
            summary["written"] += _run_group(rt, attempt, [(r, claim.runs[r]) for r in group])
            if attempt.timed_out:
                message = f"exceeded the task time limit of {settings.task_soft_time_limit_s:g} s"
                _finish(rt, attempt, {}, dict.fromkeys(rows, message))
                break
    finally:
        attempt.close()
    return summary


def _not_started(spec: RunSpec) -> dict[str, Any]:
    """The result of a run cancelled before its batch began: no steps, no curves."""
    return {
        **dict.fromkeys(METRIC_KEYS),
        "run_id": spec.run_id,
        "steps_done": 0,
        "grad_evals_done": 0,
        "stopped": True,
    }


def _run_group(rt: Runtime, attempt: Attempt, group: list[tuple[str, RunSpec]]) -> int:
    """Run one batch-key group and write its results in one transaction; returns rows written."""
    by_engine_id = {spec.run_id: row_id for row_id, spec in group}
    specs = [spec for _, spec in group]
    errors: dict[str, str] = {}
    outputs: list[dict[str, Any]] = []
    if attempt.cancelled:
        outputs = [_not_started(spec) for spec in specs]
    else:
        try:
            outputs = run_batch(
                specs,
                on_checkpoint=lambda partials: attempt.checkpoint(by_engine_id, partials),
                checkpoint_every_s=rt.settings.checkpoint_every_s,
                should_stop=attempt.should_stop,
            )
        except SoftTimeLimitExceeded:
            attempt.timed_out = True
            return 0
        except Exception as exc:
            log.exception("experiment %s: a batch failed", attempt.experiment_id)
            errors = {row_id: f"{type(exc).__name__}: {exc}" for row_id, _ in group}
    results = {by_engine_id[res["run_id"]]: res for res in outputs}
    if attempt.lost and not attempt.cancelled:
        # Stopped because another attempt took over (or the lease lapsed): leave these runs to
        # it or to the reconciler instead of recording a cancellation nobody asked for.
        results = {row_id: res for row_id, res in results.items() if not res.get("stopped")}
    attempt.release(set(by_engine_id.values()))
    return len(_finish(rt, attempt, results, errors))


def _finish(
    rt: Runtime, attempt: Attempt, results: dict[str, dict[str, Any]], errors: dict[str, str]
) -> set[str]:
    """The fenced final write, retried while the database is unreachable; it appends to the
    curves the attempt's checkpoints stored (see :func:`api.store.finish_runs`)."""

    def transaction() -> set[str]:
        logged = dict(attempt.curves.written)
        try:
            with rt.db.writer() as session:
                written = finish_runs(
                    session,
                    attempt.experiment_id,
                    attempt.token,
                    results,
                    now=utcnow(),
                    errors=errors,
                    log=attempt.curves,
                )
                session.commit()
        except Exception:
            attempt.curves.written = logged  # rolled back: a retry appends from the same place
            raise
        return written

    return retry_unreachable(transaction, within_s=rt.settings.db_retry_s, what="final write")


@app.task(name=TASK_NAME, bind=True)
def run_chunk(self: Task, experiment_id: str, run_ids: list[str]) -> dict[str, int]:
    """One chunk, logged (JSON) under the request id of the POST that published it, with its
    wall time (``duration_s``) and the CPU time its process spent meanwhile (``cpu_s``: steadier
    than wall time on a busy machine)."""
    token = logs.request_id.set(getattr(self.request, logs.TASK_HEADER, None))
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        outcome = execute_chunk(runtime(), experiment_id, run_ids)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        log.info(
            "experiment %s: task done in %.2f s",
            experiment_id,
            elapsed,
            extra={
                "experiment_id": experiment_id,
                "runs": len(run_ids),
                "duration_s": round(elapsed, 3),
                "cpu_s": round(cpu, 3),
                "outcome": outcome,
            },
        )
        return outcome
    except Exception as exc:
        if unreachable(exc):
            log.warning("experiment %s: database unreachable, message requeued", experiment_id)
            raise Reject(exc, requeue=True) from exc
        log.exception("experiment %s: task failed", experiment_id)
        raise
    finally:
        logs.request_id.reset(token)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(logger: logging.Logger, **_: Any) -> None:
    """Celery's own handlers write JSON lines too (unless ``OPTBENCH_LOG_FORMAT=text``)."""
    if get_settings().log_format == "json":
        logs.use_json(logger)


@worker_init.connect
def _initialise_numba(**_: Any) -> None:
    """In the main process, before the pool forks: no child pays numba's set-up in its first
    task (see :func:`engine.jit.initialise`)."""
    initialise()


@worker_ready.connect
def _start_reconciler(sender: Any = None, **_: Any) -> None:
    start_reconciler(runtime())


@worker_shutdown.connect
def _stop_reconciler(**_: Any) -> None:
    stop_reconciler()
