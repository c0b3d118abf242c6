"""Readiness checks: can this process reach the database and the broker right now?"""

from __future__ import annotations

from api.db import Database
from api.services.queue import Publisher


def readiness(db: Database, publisher: Publisher) -> tuple[dict[str, str], bool]:
    checks: dict[str, str] = {}
    try:
        db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
    try:
        publisher.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable ({type(exc).__name__})"
    return checks, all(v == "ok" for v in checks.values())
