"""The reconciler against real databases and the embedded broker's real queue."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from sqlalchemy import update

from api.models import Run, utcnow
from api.services.queue import TASK_NAME, Publisher
from api.store import cancel_experiment
from tests.conftest import SIMPLE_SPEC, Broker
from tests.worker.helpers import experiment, new_experiment, runs_of
from worker.reconciler import UNSENT_GRACE_S, reconcile_once
from worker.runtime import Runtime
from worker.tasks import execute_chunk


def published(broker: Broker, rt: Runtime) -> list[tuple[str, list[str]]]:
    """The (experiment id, run ids) argument pairs of the task messages waiting in the queue."""
    with broker.client() as client:
        raw = [m for key in broker.queue_keys(rt.settings.queue) for m in client.lrange(key, 0, -1)]
    out = []
    for message in raw:
        envelope = json.loads(message)
        assert envelope["headers"]["task"] == TASK_NAME
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        out.append((args[0], args[1]))
    return out


def set_runs(rt: Runtime, ids: list[str], **values: object) -> None:
    with rt.db.writer() as session:
        session.execute(update(Run).where(Run.id.in_(ids)).values(**values))
        session.commit()


def expire(rt: Runtime, ids: list[str], attempts: int = 1) -> None:
    set_runs(
        rt,
        ids,
        status="running",
        lease_token="d" * 32,
        lease_expires_at=utcnow() - timedelta(seconds=1),
        attempts=attempts,
        enqueued_at=utcnow(),
    )


def cancel(rt: Runtime, *experiment_ids: str) -> None:
    """Leave no queued run behind for later tests' reconcile passes (the database is shared)."""
    with rt.db.writer() as session:
        for experiment_id in experiment_ids:
            cancel_experiment(session, experiment_id, utcnow())
        session.commit()


def test_expired_runs_are_requeued_once_and_published(rt: Runtime, embedded_broker: Broker) -> None:
    publisher = Publisher(rt.settings)
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    set_runs(rt, ids, enqueued_at=utcnow())
    expire(rt, ids[:2])
    set_runs(
        rt,
        ids[2:],
        status="running",
        lease_token="l" * 32,
        lease_expires_at=utcnow() + timedelta(seconds=60),
    )
    assert reconcile_once(rt, publisher) == {"requeued": 2, "sent": 2}
    assert published(embedded_broker, rt) == [(experiment_id, ids[:2])]
    with embedded_broker.client() as client:  # the list workers pop first: ahead of new work
        assert client.llen(embedded_broker.queue_keys(rt.settings.queue)[0]) == 1
    runs = runs_of(rt.db, experiment_id)
    assert [r.status for r in runs] == ["queued", "queued", "running"]
    assert runs[0].lease_token is None and runs[2].lease_token == "l" * 32
    # A second pass finds nothing more to do.
    assert reconcile_once(rt, publisher) == {"requeued": 0, "sent": 0}
    # The re-queued runs are claimable again and finish normally.
    assert execute_chunk(rt, experiment_id, ids[:2])["written"] == 2
    assert [r.attempts for r in runs_of(rt.db, experiment_id)[:2]] == [2, 2]


def test_exhausted_and_cancelled_runs_are_not_requeued(rt: Runtime) -> None:
    publisher = Publisher(rt.settings)
    exhausted_id, exhausted = new_experiment(rt.db, SIMPLE_SPEC)
    expire(rt, exhausted, attempts=rt.settings.max_attempts)
    cancelled_id, cancelled = new_experiment(rt.db, SIMPLE_SPEC)
    expire(rt, cancelled)
    with rt.db.writer() as session:
        cancel_experiment(session, cancelled_id, utcnow())
        session.commit()
    assert reconcile_once(rt, publisher) == {"requeued": 0, "sent": 0}
    assert {r.status for r in runs_of(rt.db, exhausted_id)} == {"failed"}
    assert experiment(rt.db, exhausted_id).status == "failed"
    assert {r.status for r in runs_of(rt.db, cancelled_id)} == {"cancelled"}
    assert experiment(rt.db, cancelled_id).finished_at is not None


def test_unsent_runs_are_sent_after_the_grace(rt: Runtime, embedded_broker: Broker) -> None:
    publisher = Publisher(rt.settings)
    fresh_id, _fresh = new_experiment(rt.db, SIMPLE_SPEC)  # publish still in flight: left alone
    unsent_id, unsent = new_experiment(rt.db, SIMPLE_SPEC)
    set_runs(rt, unsent, created_at=utcnow() - timedelta(seconds=UNSENT_GRACE_S + 1))
    # Sent long ago and never claimed: a long backlog, not a lost message; not re-sent.
    waiting_id, waiting = new_experiment(rt.db, SIMPLE_SPEC)
    set_runs(rt, waiting, enqueued_at=utcnow() - timedelta(hours=5))
    assert reconcile_once(rt, publisher) == {"requeued": 0, "sent": 3}
    assert published(embedded_broker, rt) == [(unsent_id, unsent)]
    assert all(r.enqueued_at is None for r in runs_of(rt.db, fresh_id))
    assert reconcile_once(rt, publisher) == {"requeued": 0, "sent": 0}
    cancel(rt, fresh_id, waiting_id)


def test_a_failed_publish_is_retried_at_the_next_pass(rt: Runtime, embedded_broker: Broker) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    set_runs(
        rt, ids, created_at=utcnow() - timedelta(seconds=UNSENT_GRACE_S + 1), enqueued_at=utcnow()
    )
    expire(rt, ids[:2])
    # A real broker that cannot be reached (nothing listens on port 1).
    down = Publisher(rt.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    assert reconcile_once(rt, down) == {"requeued": 2, "sent": 0}
    runs = runs_of(rt.db, experiment_id)
    assert [(r.status, r.enqueued_at) for r in runs[:2]] == [("queued", None)] * 2
    assert published(embedded_broker, rt) == []
    # Marked unsent, they go out at the next pass instead of a visibility timeout later.
    assert reconcile_once(rt, Publisher(rt.settings)) == {"requeued": 0, "sent": 2}
    assert published(embedded_broker, rt) == [(experiment_id, ids[:2])]
