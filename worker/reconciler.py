"""The reconciler: puts abandoned work back on the queue.

It runs as a timer thread in every worker's main process (started when the worker is ready,
stopped at shutdown), so no separate beat process is needed and it lives exactly as long as there
is something to execute the work it re-queues. Each tick:

1. runs whose lease expired (their attempt stopped renewing it: the worker was killed, hung past
   its hard time limit, or lost the database) go back to ``queued`` — or ``failed`` once they used
   up their attempts, or ``cancelled`` under a cancelled experiment — and are re-published;
2. queued runs whose message is presumed lost (never published, or published longer ago than the
   broker's visibility timeout) are re-published.

A publish that fails (broker unreachable) leaves its runs marked unsent, so the next tick retries
them, and does not stop the pass for other experiments.

A live run cannot be double-run: its heartbeat renews the lease every ``heartbeat_s`` (at most half
the lease), the re-queue UPDATE re-checks the expiry, and if an attempt was merely slow, its next
renewal finds its token gone and it stops without writing. Several workers' reconcilers may tick
at once; the conditional UPDATEs make each run re-queued by at most one of them.
"""

from __future__ import annotations

import logging
import threading

from api.models import utcnow
from api.services.queue import Publisher
from api.store import (
    expired_runs,
    mark_enqueued,
    requeue_expired,
    run_specs,
    stale_queued_runs,
)
from worker.runtime import Runtime

log = logging.getLogger(__name__)

#: A run whose publish never got stamped is re-sent after this long.
UNSENT_GRACE_S = 30.0


def reconcile_once(rt: Runtime, publisher: Publisher) -> dict[str, int]:
    """One reconciler pass; returns how many runs it re-queued and re-sent."""
    settings, db = rt.settings, rt.db
    now = utcnow()
    to_send: dict[str, list[str]] = {}
    requeued = 0
    with db.session() as session:
        expired = expired_runs(session, now)
    for experiment_id, ids in expired.items():
        with db.writer() as session:
            back = requeue_expired(
                session, experiment_id, ids, now=now, max_attempts=settings.max_attempts
            )
            session.commit()
        requeued += len(back)
        if back:
            to_send.setdefault(experiment_id, []).extend(back)
    with db.writer() as session:
        stale = stale_queued_runs(
            session,
            now,
            unsent_grace_s=UNSENT_GRACE_S,
            resend_after_s=settings.visibility_timeout_s,
        )
        session.commit()
    for experiment_id, ids in stale.items():
        to_send.setdefault(experiment_id, []).extend(ids)
    sent = 0
    for experiment_id, ids in to_send.items():
        with db.session() as session:
            specs = run_specs(session, ids)
        chunks = publisher.plan([(row_id, specs[row_id]) for row_id in ids if row_id in specs])
        try:
            publisher.publish(experiment_id, chunks)
        except Exception:
            # Stamped as sent above: unstamp them, or they would wait a whole visibility timeout.
            log.exception("reconciler: publishing runs of experiment %s failed", experiment_id)
            with db.writer() as session:
                mark_enqueued(session, ids, None)
                session.commit()
            continue
        sent += len(ids)
    if requeued or sent:
        log.info("reconciler: %d runs re-queued, %d re-sent", requeued, sent)
    return {"requeued": requeued, "sent": sent}


class Reconciler(threading.Thread):
    def __init__(self, rt: Runtime, publisher: Publisher, every_s: float) -> None:
        super().__init__(name="optbench-reconciler", daemon=True)
        self.rt = rt
        self.publisher = publisher
        self.every_s = every_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                reconcile_once(self.rt, self.publisher)
            except Exception:
                log.exception("reconciler pass failed")
            if self._stop_event.wait(self.every_s):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


_reconciler: Reconciler | None = None


def start_reconciler(rt: Runtime) -> None:
    global _reconciler
    if _reconciler is None:
        _reconciler = Reconciler(rt, Publisher(rt.settings), rt.settings.reconcile_every_s)
        _reconciler.start()


def stop_reconciler() -> None:
    global _reconciler
    if _reconciler is not None:
        _reconciler.stop()
        _reconciler = None
