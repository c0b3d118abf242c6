"""``/v1/catalog``: every problem, optimizer and schedule a spec may name, with schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import cached_json
from engine.catalog import catalog

router = APIRouter(prefix="/v1", tags=["catalog"])


@cache
def _catalog() -> dict[str, Any]:
    return catalog()


@router.get("/catalog", responses={304: {"description": "not modified"}})
def get_catalog(request: Request) -> Response:
    return cached_json(request, _catalog())
