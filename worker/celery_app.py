"""The Celery application, configured from :class:`api.config.Settings`.

Reliability choices (a killed worker must not lose or duplicate work):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its
  task returns, and a worker that dies mid-task gives the message back;
* ``worker_prefetch_multiplier=1``: a busy worker process holds no extra messages hostage;
* soft then hard time limits, with the broker's ``visibility_timeout`` longer than the hard limit
  (else Redis redelivers a task that is still running);
* ``unacked_restore_interval`` / ``unacked_restore_throttle``: how often abandoned messages are
  swept back (kombu's defaults make that about every 100 s);
* socket and connect timeouts plus health checks, so a vanished broker is noticed.

Tasks take ids only; the worker re-reads specs from the database. Results are not kept by Celery
(the database is the result store). ``celery -A worker.celery_app worker`` uses :data:`app`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from api.config import Settings, get_settings

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


app = create_celery_app(get_settings(), with_tasks=True)
