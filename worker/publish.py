"""Sending work to the queue: runs are planned into chunks and each chunk becomes one task message.

Used by the API after an experiment is committed and by the reconciler; a message carries only
the experiment id and row ids. After a successful publish the runs are stamped ``enqueued_at``;
runs left unstamped (the publish failed) are picked up later by the reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Celery

from api.config import Settings
from api.db import Database
from api.models import utcnow
from api.store import mark_enqueued
from engine.spec import RunSpec
from worker.celery_app import TASK_NAME, create_celery_app
from worker.planning import plan_chunks

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
