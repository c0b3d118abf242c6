"""The reconciler: puts abandoned work back on the queue.

It runs as a timer thread in every worker's main process (started when the worker is ready,
stopped at shutdown), so no separate beat process is needed and it lives exactly as long as there
is something to execute the work it re-queues. Each tick (every ``reconcile_every_s``):

1. runs whose lease expired (their attempt stopped renewing it: the worker was killed, hung past
   its hard time limit, or lost the database) go back to ``queued`` — or ``failed`` once they used
   up their attempts, or ``cancelled`` under a cancelled experiment — and are re-published ahead
   of the backlog (:data:`~api.services.queue.RESUMED_PRIORITY`);
2. queued runs never published (the publish failed) are published;
3. the broker audit (:func:`audit_broker`) — at once when the broker's server id changed (Redis
   restarted) or the broker was unreachable at the previous tick, at every tick for a while
   after the database came back (see below), else every ``broker_audit_every_s`` — re-sends the
   queued runs that no message in the broker names.

The audit is what keeps a long backlog from being flooded with duplicates: a run is re-sent only
when its message is demonstrably gone, never because it waited long. A duplicate that slips
through (a message moving from the queue to a worker while the audit reads) is harmless: the
second claim finds nothing to claim.

A live run cannot be double-run: its heartbeat renews the lease every ``heartbeat_s`` (at most half
the lease), the re-queue UPDATE re-checks the expiry, and if an attempt was merely slow, its next
renewal finds its token gone and it stops without writing. After the database was unreachable,
expired leases are left alone for two heartbeats, so that live attempts renew theirs before they
are judged. Several workers' reconcilers may tick at once; the conditional UPDATEs make each run
re-queued by at most one of them.

A database outage also loses messages without touching the broker. A crash can swallow commits it
had acknowledged (PostgreSQL with ``synchronous_commit=off``, or a fail-over to a replica that
lagged): a claim lost that way leaves queued runs whose message the claiming task consumed. That
task learns of it at its first heartbeat after the return (its token owns nothing), stops at its
next checkpoint and acknowledges its message, so the runs are unnamed ``heartbeat_s +
checkpoint_every_s`` (plus a final write) after the return. So after the database answers again —
or answers from a server that started since the previous tick (``pg_postmaster_start_time()``
changed: a restart between two ticks the reconciler never saw) — the audit runs at every tick for
``lease_s + checkpoint_every_s``, and such runs are re-sent a tick after their message is gone
instead of at the next periodic audit. The audits only re-send runs no message names, so this
window adds no duplicates to a backlog, only reads of the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import redis

from api.db import unreachable
from api.models import utcnow
from api.services.queue import BrokerView, Publisher
from api.store import (
    expired_runs,
    mark_enqueued,
    requeue_expired,
    run_specs,
    unnamed_queued_runs,
    unsent_runs,
)
from worker.runtime import Runtime

log = logging.getLogger(__name__)

#: A run whose publish never got stamped is sent after this long (the API's own publish,
#: with its retries, is over by then; a duplicate would be harmless anyway).
UNSENT_GRACE_S = 10.0
#: The audit leaves alone runs stamped sent this recently (clock skew between hosts).
AUDIT_GRACE_S = 2.0


def _send(
    rt: Runtime, publisher: Publisher, to_send: dict[str, list[str]], *, resumed: bool = False
) -> int:
    """Publish runs already stamped sent; a failed publish unstamps them for the next tick."""
    sent = 0
    for experiment_id, ids in to_send.items():
        with rt.db.session() as session:
            specs = run_specs(session, ids)
        chunks = publisher.plan([(row_id, specs[row_id]) for row_id in ids if row_id in specs])
        try:
            publisher.publish(experiment_id, chunks, resumed=resumed)
        except Exception:
            log.exception("reconciler: publishing runs of experiment %s failed", experiment_id)
            with rt.db.writer() as session:
                mark_enqueued(session, ids, None)
                session.commit()
            continue
        sent += len(ids)
    return sent


def reconcile_once(
    rt: Runtime, publisher: Publisher, *, requeue_expired_leases: bool = True
) -> dict[str, int]:
    """Steps 1 and 2 of a tick; returns how many runs it re-queued and sent."""
    settings, db = rt.settings, rt.db
    now = utcnow()
    resumed: dict[str, list[str]] = {}
    requeued = 0
    if requeue_expired_leases:
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
                resumed[experiment_id] = back
    sent = _send(rt, publisher, resumed, resumed=True)
    with db.writer() as session:
        unsent = unsent_runs(session, now, grace_s=UNSENT_GRACE_S)
        session.commit()
    sent += _send(rt, publisher, unsent)
    if requeued or sent:
        log.info("reconciler: %d runs re-queued, %d sent", requeued, sent)
    return {"requeued": requeued, "sent": sent}


def audit_broker(rt: Runtime, publisher: Publisher, view: BrokerView) -> int:
    """Re-send queued runs whose message is gone; returns how many.

    A message counts while it waits in the queue, or while a worker holds it for at most
    ``db_retry_s + lease_s`` (a live task claims its runs at once, or gives the message back
    after ``db_retry_s``); a message held longer belongs to a worker that died before claiming.
    """
    settings = rt.settings
    sent_before = utcnow() - timedelta(seconds=AUDIT_GRACE_S)
    named = view.named_runs(delivered_since=time.time() - settings.db_retry_s - settings.lease_s)
    with rt.db.writer() as session:
        lost = unnamed_queued_runs(session, utcnow(), sent_before=sent_before, named=named)
        session.commit()
    sent = _send(rt, publisher, lost)
    if lost:
        log.warning("reconciler: %d queued runs had no message in the broker, re-sent", sent)
    return sent


class Reconciler(threading.Thread):
    """The tick loop, with what it remembers between ticks: whether the database and the broker
    answered, their servers' identities, and when the broker was last (or is next) audited."""

    def __init__(self, rt: Runtime, publisher: Publisher, view: BrokerView) -> None:
        super().__init__(name="optbench-reconciler", daemon=True)
        self.rt = rt
        self.publisher = publisher
        self.view = view
        self._stop_event = threading.Event()
        self.db_down = False
        self.db_server: str | None = None
        self.hold_expiry_until = 0.0
        self.audit_every_tick_until = 0.0
        self.broker_down = False
        self.server_id: str | None = None
        self.next_audit = 0.0

    def tick(self) -> None:
        settings = self.rt.settings
        try:
            db_server = self.rt.db.server_start()
        except Exception as exc:
            if not unreachable(exc):
                raise
            if not self.db_down:
                log.warning("reconciler: database unreachable (%s)", type(exc).__name__)
            self.db_down = True
            return
        restarted = self.db_server is not None and db_server != self.db_server
        if self.db_down or restarted:
            log.warning("reconciler: database %s", "restarted" if restarted else "reachable again")
            self.db_down = False
            self.hold_expiry_until = time.monotonic() + 2 * settings.heartbeat_s
            self.audit_every_tick_until = (
                time.monotonic() + settings.lease_s + settings.checkpoint_every_s
            )
        self.db_server = db_server
        reconcile_once(
            self.rt,
            self.publisher,
            requeue_expired_leases=time.monotonic() >= self.hold_expiry_until,
        )
        try:
            server_id = self.view.server_id()
        except redis.RedisError as exc:
            if not self.broker_down:
                log.warning("reconciler: broker unreachable (%s)", type(exc).__name__)
            self.broker_down = True
            return
        now = time.monotonic()
        if (
            self.broker_down
            or server_id != self.server_id
            or now >= self.next_audit
            or now < self.audit_every_tick_until
        ):
            audit_broker(self.rt, self.publisher, self.view)
            self.broker_down = False
            self.server_id = server_id
            self.next_audit = time.monotonic() + settings.broker_audit_every_s

    def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("reconciler pass failed")
            if self._stop_event.wait(self.rt.settings.reconcile_every_s):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self.view.close()


_reconciler: Reconciler | None = None


def start_reconciler(rt: Runtime) -> None:
    global _reconciler
    if _reconciler is None:
        _reconciler = Reconciler(rt, Publisher(rt.settings), BrokerView(rt.settings))
        _reconciler.start()


def stop_reconciler() -> None:
    global _reconciler
    if _reconciler is not None:
        _reconciler.stop()
        _reconciler = None
