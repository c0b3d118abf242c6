"""The Celery app carries the reliability settings (see worker/celery_app.py)."""

from __future__ import annotations

from api.config import Settings
from api.services.queue import create_celery_app


def test_reliability_settings() -> None:
    settings = Settings(
        broker_url="redis://127.0.0.1:6379/13",
        broker_key_prefix="p:",
        task_soft_time_limit_s=100,
        task_hard_time_limit_s=110,
        visibility_timeout_s=130,
        unacked_restore_interval_s=3,
    )
    conf = create_celery_app(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (100, 110)
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_always_eager is False
    assert conf.task_ignore_result is True
    assert conf.task_default_queue == "optbench"
    transport = conf.broker_transport_options
    assert transport["visibility_timeout"] == 130 > conf.task_time_limit
    assert transport["unacked_restore_interval"] == 3
    assert transport["unacked_restore_throttle"] == 1
    assert transport["global_keyprefix"] == "p:"
    for key in ("socket_timeout", "socket_connect_timeout", "health_check_interval"):
        assert transport[key] > 0
