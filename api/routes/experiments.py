"""``/v1/experiments``: submit (or dry-run), list, read, list runs, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from api import schemas
from api.deps import DatabaseDep, PublisherDep, SettingsDep, cached_json, json_response
from api.services import experiments as service
from api.services import runs as run_service
from api.services.runs import SortKey
from engine.spec import ExperimentSpec

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

PROBLEM = {"model": schemas.Problem, "content": {"application/problem+json": {}}}


@router.post(
    "",
    status_code=202,
    response_model=schemas.Experiment,
    responses={
        200: {
            "model": schemas.DryRun | schemas.Experiment,
            "description": "a dry run's expansion, or the original experiment on an "
            "Idempotency-Key replay",
        },
        400: PROBLEM,
        413: PROBLEM,
        422: PROBLEM,
    },
)
def submit_experiment(
    spec: ExperimentSpec,
    settings: SettingsDep,
    db: DatabaseDep,
    publisher: PublisherDep,
    dry_run: bool = False,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> Response:
    """Queue every run of the spec. ``dry_run=true`` only expands it (nothing is stored).

    With an ``Idempotency-Key``, repeating the same body returns the original experiment
    (``200``); the same key with another body is a ``422``.
    """
    if dry_run:
        return json_response(service.dry_run(spec, settings))
    experiment, created = service.submit(db, publisher, settings, spec, idempotency_key)
    headers = {"Location": experiment["links"]["self"]}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(experiment, 202 if created else 200, headers)


@router.get(
    "",
    response_model=schemas.ExperimentPage,
    responses={304: {"description": "not modified"}, 400: PROBLEM, 422: PROBLEM},
)
def list_experiments(
    request: Request,
    db: DatabaseDep,
    status: schemas.Status | None = None,
    name: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[^\x00]*$", description="substring of the name, any case"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Newest first; ``ETag`` + ``304`` like a single experiment, for dashboards that poll."""
    return cached_json(
        request, service.list_page(db, status=status, name=name, limit=limit, cursor=cursor)
    )


@router.get(
    "/{experiment_id}",
    response_model=schemas.Experiment,
    responses={304: {"description": "not modified"}, 404: PROBLEM},
)
def get_experiment(experiment_id: str, request: Request, db: DatabaseDep) -> Response:
    return cached_json(request, service.get(db, experiment_id))


@router.get(
    "/{experiment_id}/runs",
    response_model=schemas.RunPage,
    responses={304: {"description": "not modified"}, 400: PROBLEM, 404: PROBLEM, 422: PROBLEM},
)
def list_runs(
    experiment_id: str,
    request: Request,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    status: schemas.Status | None = None,
    sort: SortKey | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """Runs without curves; ordered by ``sort`` (missing values last), else submission order."""
    return cached_json(
        request,
        run_service.list_page(
            db, experiment_id, limit=limit, cursor=cursor, status=status, sort=sort, order=order
        ),
    )


@router.post(
    "/{experiment_id}/cancel",
    status_code=202,
    response_model=schemas.Experiment,
    responses={404: PROBLEM},
)
def cancel_experiment(experiment_id: str, db: DatabaseDep) -> Response:
    """Queued runs are cancelled at once; running ones stop at their next checkpoint."""
    return json_response(service.cancel(db, experiment_id), 202)
