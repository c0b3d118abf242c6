"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: DB and broker)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api import schemas
from api.deps import DatabaseDep, PublisherDep, json_response
from api.errors import ProblemError
from api.services.health import readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=schemas.Health)
def healthz() -> Response:
    return json_response({"status": "ok", "checks": {}})


@router.get(
    "/readyz",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Problem, "content": {"application/problem+json": {}}}},
)
def readyz(db: DatabaseDep, publisher: PublisherDep) -> Response:
    checks, ok = readiness(db, publisher)
    if not ok:
        failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
        raise ProblemError(503, f"not ready — {failing}", kind="not-ready")
    return json_response({"status": "ready", "checks": checks})
