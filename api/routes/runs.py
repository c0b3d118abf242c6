"""``/v1/runs/{run_id}``: one run with its curves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api import schemas
from api.auth import PrincipalDep
from api.deps import DatabaseDep, json_response, matches
from api.routes.experiments import GUARDED, PROBLEM
from api.services import runs as service

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get(
    "/{run_id}",
    response_model=schemas.RunWithCurves,
    responses={304: {"description": "not modified"}, 404: PROBLEM, 422: PROBLEM, **GUARDED},
)
def get_run(
    run_id: str,
    request: Request,
    principal: PrincipalDep,
    db: DatabaseDep,
    max_points: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    since_step: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The run and its curves so far; ``since_step`` keeps points at or after that step and
    ``max_points`` downsamples each curve group (keeping each bucket's min, max and last)."""
    owner = principal.owner_filter
    etag = service.run_etag(db, run_id, max_points, since_step, owner)
    if matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    body, etag = service.get_with_curves(
        db, run_id, max_points=max_points, since_step=since_step, owner=owner
    )
    return json_response(body, headers={"ETag": etag})
