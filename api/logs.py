"""Structured logs: one JSON object per line, with the request id of whatever caused the line.

The request id is taken from the client's ``X-Request-ID`` (when it is a short token) or made
up, answered in ``X-Request-ID``, travels in the headers of every task message the request
publishes, and is set again in the worker around each task: ``grep`` one id and you follow a
run from its POST to its last checkpoint. It lives in a context variable, so threads started
by the request handler's thread pool and the worker's task see their own.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

#: The id of the request (API) or of the request that published the task (worker).
request_id: ContextVar[str | None] = ContextVar("optbench_request_id", default=None)
#: A client-supplied id is kept only if it looks like an id (no log injection, bounded size).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Task message header carrying the request id.
TASK_HEADER = "optbench_request_id"
#: LogRecord attributes that are not extra fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def new_request_id(client_value: str | None) -> str:
    if client_value and _CLIENT_ID.match(client_value):
        return client_value
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id"?, ...extra, "exc"?}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring twice replaces it."""


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Root logging to stderr as JSON lines (or plain text); idempotent."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def use_json(logger: logging.Logger) -> None:
    """Give every handler of ``logger`` the JSON formatter (for Celery's own handlers)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
