"""The queue: the Celery configuration shared by the API (which publishes) and the worker.

Reliability choices (a killed worker must not lose or duplicate work):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its
  task returns, and a worker that dies mid-task gives the message back;
* ``worker_prefetch_multiplier=1``: a busy worker process holds no extra messages hostage;
* soft then hard time limits, with the broker's ``visibility_timeout`` longer than the hard limit
  (else Redis redelivers a task that is still running);
* ``unacked_restore_interval`` / ``unacked_restore_throttle``: how often abandoned messages are
  swept back (kombu's defaults make that about every 100 s);
* socket and connect timeouts plus health checks, so a vanished broker is noticed.

The broker can lose messages (a Redis restarted without persistence, the last second before a
crash with AOF, a worker that died holding a delivered message): :class:`BrokerView` reads which
runs the waiting and recently delivered messages name, so the reconciler can re-send exactly the
queued runs no message names (see :mod:`worker.reconciler`).

Sending work: runs are planned into chunks and each chunk becomes one task message carrying only
the experiment id and row ids. After a successful publish the runs are stamped ``enqueued_at``;
runs left unstamped (the publish failed) are picked up later by the reconciler. Used by the API
after an experiment is committed and by the worker's reconciler.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from celery import Celery

from api import logs
from api.config import Settings
from api.db import Database
from api.models import utcnow
from api.services.planning import plan_chunks
from api.store import mark_enqueued
from engine.spec import RunSpec

TASK_NAME = "optbench.run_chunk"
#: kombu's Redis transport keeps messages of priority p in ``queue + SEP + p`` (p = 0: in
#: ``queue``) and its workers pop the lists in the order 0, 3, 6, 9: on Redis, lower is sooner.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
#: New work waits in the priority-3 list; runs taken back from a dead worker are re-published
#: at priority 0 and start at the next free worker instead of behind the whole backlog.
NEW_PRIORITY = 3
RESUMED_PRIORITY = 0


def queue_keys(settings: Settings) -> list[str]:
    """The Redis lists holding the queue's waiting messages, in the order workers take them."""
    queue = f"{settings.broker_key_prefix}{settings.queue}"
    return [queue if p == 0 else f"{queue}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS]


def celery_config(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": settings.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        "socket_timeout": settings.broker_socket_timeout_s,
        "socket_connect_timeout": settings.broker_connect_timeout_s,
        "health_check_interval": settings.broker_health_check_interval_s,
    }
    if settings.broker_key_prefix:
        transport["global_keyprefix"] = settings.broker_key_prefix
    return {
        "broker_url": settings.resolved_broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": settings.broker_connect_timeout_s,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_hard_time_limit_s,
        "task_default_queue": settings.queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0.0,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        "worker_send_task_events": False,
    }


def create_celery_app(settings: Settings, *, with_tasks: bool = False) -> Celery:
    """A Celery app for ``settings``; ``with_tasks`` registers the task module (workers only)."""
    app = Celery("optbench", include=["worker.tasks"] if with_tasks else [])
    app.conf.update(celery_config(settings))
    return app


log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or create_celery_app(settings)

    def publish(
        self, experiment_id: str, chunks: Sequence[Sequence[str]], *, resumed: bool = False
    ) -> None:
        """Send one task per chunk; ``resumed`` runs (taken back from a dead attempt) go first.

        The current request id (if any) rides in each message's headers, for the worker's logs.
        """
        rid = logs.request_id.get()
        headers = {logs.TASK_HEADER: rid} if rid else None
        with self.app.producer_or_acquire() as producer:
            for chunk in chunks:
                self.app.send_task(
                    TASK_NAME,
                    args=[experiment_id, list(chunk)],
                    queue=self.settings.queue,
                    producer=producer,
                    priority=RESUMED_PRIORITY if resumed else NEW_PRIORITY,
                    headers=headers,
                )

    def plan(self, runs: Sequence[tuple[str, RunSpec]]) -> list[list[str]]:
        return plan_chunks(
            runs,
            max_cost=self.settings.task_max_cost,
            max_runs=self.settings.task_max_runs,
            parallelism=self.settings.worker_concurrency,
        )

    def enqueue(
        self, db: Database, experiment_id: str, runs: Sequence[tuple[str, RunSpec]]
    ) -> bool:
        """Plan, publish and stamp the runs; False (logged) if the broker could not be reached."""
        chunks = self.plan(runs)
        try:
            self.publish(experiment_id, chunks)
        except Exception:
            log.exception("publishing %d tasks of experiment %s failed", len(chunks), experiment_id)
            return False
        with db.writer() as session:
            mark_enqueued(session, [row_id for row_id, _ in runs], utcnow())
            session.commit()
        return True

    def ping(self) -> None:
        """Raise unless the broker accepts a connection within the connect timeout."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=5)
            conn.default_channel.client.ping()

    def close(self) -> None:
        self.app.close()


def broker_client(settings: Settings) -> redis.Redis:
    """A plain Redis client on the broker (keys are not prefixed for you)."""
    url = settings.resolved_broker_url
    if url.startswith("redis+socket://"):
        return redis.Redis(
            unix_socket_path=url.removeprefix("redis+socket://"),
            socket_timeout=settings.broker_socket_timeout_s,
            socket_connect_timeout=settings.broker_connect_timeout_s,
        )
    return redis.Redis.from_url(
        url,
        socket_timeout=settings.broker_socket_timeout_s,
        socket_connect_timeout=settings.broker_connect_timeout_s,
    )


def runs_named(payload: dict[str, Any]) -> list[str]:
    """The run ids a task message (kombu's JSON envelope) carries; [] for other tasks."""
    if payload.get("headers", {}).get("task") != TASK_NAME:
        return []
    body = payload["body"]
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return [str(run_id) for run_id in args[1]]


class BrokerView:
    """What the broker holds: its identity and the runs its messages name.

    Redis's ``run_id`` changes at every server start, persistence or not, so a changed value
    means messages may have been lost (AOF keeps all but about the last second).
    """

    PAGE = 500

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.broker_key_prefix
        self.client = broker_client(settings)

    def server_id(self) -> str:
        return str(self.client.info("server")["run_id"])

    def named_runs(self, *, delivered_since: float) -> set[str]:
        """Runs named by a message waiting in the queue, or delivered to a worker (unacked) at
        or after ``delivered_since`` (epoch seconds, kombu's delivery time). A message delivered
        earlier whose runs are still queued belongs to a worker that died or gave up."""
        named: set[str] = set()
        for key in queue_keys(self.settings):
            start = 0
            while batch := self.client.lrange(key, start, start + self.PAGE - 1):
                named.update(self._names(json.loads(raw) for raw in batch))
                start += self.PAGE
        tags = [
            tag
            for tag in self.client.zrangebyscore(
                f"{self.prefix}unacked_index", delivered_since, "+inf"
            )
            if isinstance(tag, bytes | str)
        ]
        for i in range(0, len(tags), self.PAGE):
            raws = self.client.hmget(f"{self.prefix}unacked", tags[i : i + self.PAGE])
            named.update(self._names(json.loads(raw)[0] for raw in raws if raw is not None))
        return named

    @staticmethod
    def _names(payloads: Iterable[dict[str, Any]]) -> set[str]:
        return {run_id for payload in payloads for run_id in runs_named(payload)}

    def close(self) -> None:
        self.client.close()
