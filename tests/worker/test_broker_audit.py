"""Lost messages and unreachable servers: the broker audit, the reconciler's triggers, and a
task that cannot reach its database (real databases, the embedded Redis, a closed port)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.exceptions import Reject
from sqlalchemy.exc import OperationalError

from api.config import Settings
from api.db import Database, retry_unreachable
from api.models import utcnow
from api.services.queue import BrokerView, Publisher
from api.store import run_specs
from tests.conftest import SIMPLE_SPEC, Broker
from tests.worker.helpers import new_experiment, runs_of
from tests.worker.test_reconciler import cancel, expire, published, set_runs
from worker import runtime as runtime_module
from worker import tasks
from worker.reconciler import Reconciler, audit_broker
from worker.runtime import Runtime

#: Nothing listens here: connections are refused at once.
CLOSED_PG = "postgresql+psycopg://postgres@127.0.0.1:1/none"


def mine(broker: Broker, rt: Runtime, *experiment_ids: str) -> list[tuple[str, list[str]]]:
    """Messages for these experiments (the database is shared: others' runs may be re-sent), each
    with its run ids sorted: a re-sent message names its runs in the database's order."""
    return sorted((e, sorted(ids)) for e, ids in published(broker, rt) if e in experiment_ids)


def enqueue(rt: Runtime, publisher: Publisher, experiment_id: str, ids: list[str]) -> None:
    with rt.db.session() as session:
        specs = run_specs(session, ids)
    assert publisher.enqueue(rt.db, experiment_id, [(i, specs[i]) for i in ids])


def lose_messages(broker: Broker, rt: Runtime) -> None:
    with broker.client() as client:
        client.delete(*broker.queue_keys(rt.settings.queue))


def test_the_audit_resends_exactly_the_runs_no_message_names(
    rt: Runtime, embedded_broker: Broker
) -> None:
    publisher, view = Publisher(rt.settings), BrokerView(rt.settings)
    kept_id, kept = new_experiment(rt.db, SIMPLE_SPEC)
    lost_id, lost = new_experiment(rt.db, SIMPLE_SPEC)
    enqueue(rt, publisher, lost_id, lost)
    lose_messages(embedded_broker, rt)  # e.g. a Redis restarted without persistence
    enqueue(rt, publisher, kept_id, kept)
    with embedded_broker.client() as client:  # new work waits behind re-queued runs
        assert client.llen(embedded_broker.queue_keys(rt.settings.queue)[1]) == 1
    set_runs(rt, kept + lost, enqueued_at=utcnow() - timedelta(hours=5))  # a long backlog
    assert mine(embedded_broker, rt, kept_id, lost_id) == [(kept_id, sorted(kept))]

    assert audit_broker(rt, publisher, view) >= 3
    assert mine(embedded_broker, rt, kept_id, lost_id) == sorted(
        [(kept_id, sorted(kept)), (lost_id, sorted(lost))]
    )
    # Every queued run has its message now: a second audit sends nothing of these.
    audit_broker(rt, publisher, view)
    assert len(mine(embedded_broker, rt, kept_id, lost_id)) == 2
    cancel(rt, kept_id, lost_id)


def test_a_delivered_message_counts_until_its_worker_is_presumed_dead(
    rt: Runtime, embedded_broker: Broker
) -> None:
    publisher, view = Publisher(rt.settings), BrokerView(rt.settings)
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    enqueue(rt, publisher, experiment_id, ids)
    set_runs(rt, ids, enqueued_at=utcnow() - timedelta(minutes=5))
    with publisher.app.connection_for_read() as conn:
        # A consumer takes the message and holds it unacknowledged, as a worker does.
        message = conn.default_channel.basic_get(rt.settings.queue, no_ack=False)
        assert message is not None
        assert mine(embedded_broker, rt, experiment_id) == []
        audit_broker(rt, publisher, view)
        assert mine(embedded_broker, rt, experiment_id) == []
        # Delivered longer ago than a live task holds a message without claiming its runs.
        held_for = rt.settings.db_retry_s + rt.settings.lease_s + 1
        with embedded_broker.client() as client:
            tag = message.delivery_tag
            client.zadd(f"{embedded_broker.prefix}unacked_index", {tag: time.time() - held_for})
        audit_broker(rt, publisher, view)
        assert mine(embedded_broker, rt, experiment_id) == [(experiment_id, sorted(ids))]
        message.ack()
    cancel(rt, experiment_id)


def test_the_reconciler_audits_after_a_restart_or_an_unreachable_broker(
    rt: Runtime, embedded_broker: Broker
) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    reconciler = Reconciler(rt, Publisher(rt.settings), BrokerView(rt.settings))
    enqueue(rt, reconciler.publisher, experiment_id, ids)
    set_runs(rt, ids, enqueued_at=utcnow() - timedelta(minutes=5))
    reconciler.tick()  # first tick: audits, finds the messages
    assert reconciler.server_id is not None
    lose_messages(embedded_broker, rt)
    reconciler.tick()  # same server, audit not due: the loss is not seen yet
    assert mine(embedded_broker, rt, experiment_id) == []

    reconciler.server_id = "a-previous-server"  # as after a Redis restart
    reconciler.tick()
    assert mine(embedded_broker, rt, experiment_id) == [(experiment_id, sorted(ids))]

    lose_messages(embedded_broker, rt)
    set_runs(rt, ids, enqueued_at=utcnow() - timedelta(minutes=5))
    live_view = reconciler.view
    reconciler.view = BrokerView(
        rt.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1"})
    )
    reconciler.tick()
    assert reconciler.broker_down
    reconciler.view = live_view
    reconciler.tick()  # the broker answers again: audited at once
    assert not reconciler.broker_down
    assert mine(embedded_broker, rt, experiment_id) == [(experiment_id, sorted(ids))]
    cancel(rt, experiment_id)


def test_the_reconciler_audits_at_every_tick_after_the_database_returns_or_restarted(
    rt: Runtime, embedded_broker: Broker
) -> None:
    """A claim lost in a database crash leaves queued runs whose message was consumed: for a
    while after the database is back, each tick re-sends such runs instead of the periodic audit
    ``broker_audit_every_s`` later."""
    started = rt.db.server_start()
    assert started == rt.db.server_start()
    assert (started is None) == (rt.db.dialect == "sqlite")
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    reconciler = Reconciler(rt, Publisher(rt.settings), BrokerView(rt.settings))
    enqueue(rt, reconciler.publisher, experiment_id, ids)
    set_runs(rt, ids, enqueued_at=utcnow() - timedelta(minutes=5))
    reconciler.tick()  # first tick: audits, finds the messages
    lose_messages(embedded_broker, rt)  # as a task whose claim the crash swallowed acks its message
    reconciler.tick()
    assert mine(embedded_broker, rt, experiment_id) == []

    # A restart between two ticks: the reconciler never saw the database down.
    reconciler.db_server = "a-previous-server"
    reconciler.tick()
    assert reconciler.db_server == started
    assert reconciler.hold_expiry_until > time.monotonic()
    assert mine(embedded_broker, rt, experiment_id) == [(experiment_id, sorted(ids))]
    lose_messages(embedded_broker, rt)
    set_runs(rt, ids, enqueued_at=utcnow() - timedelta(minutes=5))
    reconciler.tick()  # still within the window: audited again
    assert mine(embedded_broker, rt, experiment_id) == [(experiment_id, sorted(ids))]

    lose_messages(embedded_broker, rt)
    set_runs(rt, ids, enqueued_at=utcnow() - timedelta(minutes=5))
    reconciler.audit_every_tick_until = 0.0  # the window is over: periodic audits only
    reconciler.tick()
    assert mine(embedded_broker, rt, experiment_id) == []

    # An outage the reconciler saw: audited at the first tick the database answers again.
    reconciler.rt = Runtime(rt.settings, Database.from_settings(Settings(database_url=CLOSED_PG)))
    reconciler.tick()
    assert reconciler.db_down
    reconciler.rt = rt
    reconciler.tick()
    assert not reconciler.db_down
    assert mine(embedded_broker, rt, experiment_id) == [(experiment_id, sorted(ids))]
    cancel(rt, experiment_id)


def test_expired_leases_wait_two_heartbeats_after_a_database_outage(rt: Runtime) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    expire(rt, ids)
    real = rt.db
    reconciler = Reconciler(rt, Publisher(rt.settings), BrokerView(rt.settings))
    reconciler.rt = Runtime(rt.settings, Database.from_settings(Settings(database_url=CLOSED_PG)))
    reconciler.tick()
    assert reconciler.db_down
    reconciler.rt = rt
    reconciler.tick()  # back: the leases lapsed during the outage, live attempts renew first
    assert not reconciler.db_down
    assert {r.status for r in runs_of(real, experiment_id)} == {"running"}
    reconciler.hold_expiry_until = 0.0  # two heartbeats later
    reconciler.tick()
    assert {r.status for r in runs_of(real, experiment_id)} == {"queued"}
    cancel(rt, experiment_id)


def test_retry_gives_up_after_its_window_and_passes_other_errors_at_once() -> None:
    down = Database.from_settings(Settings(database_url=CLOSED_PG))
    started = time.monotonic()
    with pytest.raises(OperationalError):
        retry_unreachable(down.ping, within_s=1.0, what="ping")
    assert time.monotonic() - started >= 1.0
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a connection problem")

    with pytest.raises(ValueError):
        retry_unreachable(broken, within_s=10.0, what="broken")
    assert calls == [1]


def test_a_task_that_cannot_reach_the_database_gives_its_message_back(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    settings = rt.settings.model_copy(update={"db_retry_s": 0.5})
    down = Runtime(settings, Database.from_settings(Settings(database_url=CLOSED_PG)))
    monkeypatch.setattr(runtime_module, "_runtime", down)
    with pytest.raises(Reject) as rejected:
        tasks.run_chunk(experiment_id, ids)
    assert rejected.value.requeue is True
    assert [(r.status, r.attempts) for r in runs_of(rt.db, experiment_id)] == [("queued", 0)] * 3
    # The same message, once the database answers, runs normally.
    monkeypatch.setattr(runtime_module, "_runtime", rt)
    assert tasks.run_chunk(experiment_id, ids)["written"] == 3
