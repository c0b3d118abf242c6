"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: DB and broker).

Both stay responsive while the API is saturated: they are exempt from admission control
(:class:`api.middleware.AdmissionMiddleware`), ``/healthz`` runs on the event loop itself, and
``/readyz`` checks on a thread of its own (not the request thread pool) at most once per
:data:`READY_TTL_S`; probes in between share the last answer.
"""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response

from api import schemas
from api.auth import AdminDep
from api.deps import json_response
from api.errors import ProblemError
from api.observability import CONTENT_TYPE
from api.services.health import readiness

router = APIRouter(tags=["health"])

#: Seconds one readiness check answers for.
READY_TTL_S = 1.0


@router.get("/healthz", response_model=schemas.Health)
async def healthz() -> Response:
    return json_response({"status": "ok", "checks": {}})


class ReadinessCache:
    """The last readiness result; one check at a time on a one-thread limiter of its own."""

    def __init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(1)
        self.lock = anyio.Lock()
        self.checked_at = -float("inf")
        self.result: tuple[dict[str, str], bool] = ({}, False)

    async def get(self, request: Request) -> tuple[dict[str, str], bool]:
        async with self.lock:
            if time.monotonic() - self.checked_at >= READY_TTL_S:
                state = request.app.state
                self.result = await anyio.to_thread.run_sync(
                    readiness, state.db, state.publisher, limiter=self.limiter
                )
                self.checked_at = time.monotonic()
            return self.result


@router.get(
    "/readyz",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Problem, "content": {"application/problem+json": {}}}},
)
async def readyz(request: Request) -> Response:
    checks, ok = await request.app.state.readiness.get(request)
    if not ok:
        failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
        raise ProblemError(
            503, f"not ready — {failing}", kind="not-ready", headers={"Retry-After": "1"}
        )
    return json_response({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        401: {"model": schemas.Problem, "content": {"application/problem+json": {}}},
        403: {"model": schemas.Problem, "content": {"application/problem+json": {}}},
    },
)
async def metrics(request: Request, _: AdminDep) -> Response:
    """Prometheus metrics (an ``admin`` token when authentication is on); see
    :mod:`api.observability`. Collected on a thread of its own, off the request pool."""
    body = await anyio.to_thread.run_sync(
        request.app.state.metrics.exposition, limiter=request.app.state.readiness.limiter
    )
    return Response(body, media_type=CONTENT_TYPE)
