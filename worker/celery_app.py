"""The worker's Celery application: ``celery -A worker.celery_app worker`` uses :data:`app`.

Its configuration (acks late, rejection on worker loss, prefetch 1, time limits, visibility
timeout, broker socket timeouts) lives in :mod:`api.services.queue`, shared with the publisher.
Tasks take ids only; the worker re-reads specs from the database. Results are not kept by Celery
(the database is the result store).
"""

from __future__ import annotations

from api.config import get_settings
from api.services.queue import create_celery_app

app = create_celery_app(get_settings(), with_tasks=True)
