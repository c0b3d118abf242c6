"""``/v1/catalog``: every problem, optimizer and schedule a spec may name, with schemas; and
``/v1/limits``: what one experiment and one owner may ask of this service."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api import schemas
from api.auth import authenticate
from api.deps import SettingsDep, cached_json
from api.routes.experiments import GUARDED
from engine.catalog import catalog

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(authenticate)])


@cache
def _catalog() -> dict[str, Any]:
    return catalog()


@router.get("/catalog", responses={304: {"description": "not modified"}, **GUARDED})
def get_catalog(request: Request) -> Response:
    return cached_json(request, _catalog())


@router.get(
    "/limits",
    response_model=schemas.Limits,
    responses={304: {"description": "not modified"}, **GUARDED},
)
def get_limits(request: Request, settings: SettingsDep) -> Response:
    """Per-experiment limits (exceeding one is a ``422``) and per-owner quotas (a ``429``;
    enforced when authentication is on)."""
    return cached_json(
        request,
        {
            "max_runs_per_experiment": settings.max_runs_per_experiment,
            "max_steps_per_run": settings.max_steps_per_run,
            "max_params_per_problem": settings.max_params_per_problem,
            "max_body_bytes": settings.max_body_bytes,
            "rate_limit_per_minute": settings.rate_limit_per_minute,
            "max_queued_runs_per_owner": settings.max_queued_runs_per_owner,
            "max_run_steps_per_day": settings.max_run_steps_per_day,
            "auth_required": settings.auth_enabled,
        },
    )
