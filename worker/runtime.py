"""A worker process's settings and database handle, created lazily and again after a fork."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from celery.signals import worker_process_init

from api.config import Settings, get_settings
from api.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database


_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime (its own connection pool)."""
    global _runtime
    with _lock:
        if _runtime is None:
            settings = get_settings()
            _runtime = Runtime(settings, Database.from_settings(settings))
        return _runtime


@worker_process_init.connect
def _forget_parent_pool(**_: Any) -> None:
    """A forked pool process must not reuse the parent's pooled connections."""
    global _runtime
    if _runtime is not None:
        _runtime.db.dispose(close=False)
    _runtime = None
