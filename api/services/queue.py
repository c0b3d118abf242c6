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

Sending work: runs are planned into chunks and each chunk becomes one task message carrying only
the experiment id and row ids. After a successful publish the runs are stamped ``enqueued_at``;
runs left unstamped (the publish failed) are picked up later by the reconciler. Used by the API
after an experiment is committed and by the worker's reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Celery

from api.config import Settings
from api.db import Database
from api.models import utcnow
from api.services.planning import plan_chunks
from api.store import mark_enqueued
from engine.spec import RunSpec

TASK_NAME = "optbench.run_chunk"


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

    def publish(self, experiment_id: str, chunks: Sequence[Sequence[str]]) -> None:
        with self.app.producer_or_acquire() as producer:
            for chunk in chunks:
                self.app.send_task(
                    TASK_NAME,
                    args=[experiment_id, list(chunk)],
                    queue=self.settings.queue,
                    producer=producer,
                )

    def plan(self, runs: Sequence[tuple[str, RunSpec]]) -> list[list[str]]:
        return plan_chunks(
            runs, max_cost=self.settings.task_max_cost, max_runs=self.settings.task_max_runs
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
