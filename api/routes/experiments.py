"""``/v1/experiments``: submit (or dry-run), list, read, list runs, cancel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from api import schemas
from api.auth import LOCAL, PrincipalDep
from api.deps import DatabaseDep, PublisherDep, SettingsDep, cached_json, json_response
from api.services import experiments as service
from api.services import runs as run_service
from api.services.experiments import ID_PATTERN_LENGTH
from api.services.runs import SortKey
from engine.spec import ExperimentSpec

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

#: A page cursor: the id of the last item of the previous page (its ``next_cursor``); the page
#: continues after that item in the listing's order. Every value of the pattern is a valid cursor.
Cursor = Annotated[
    str | None,
    Query(
        min_length=ID_PATTERN_LENGTH,
        max_length=ID_PATTERN_LENGTH,
        pattern=f"^[0-9a-f]{{{ID_PATTERN_LENGTH}}}$",
        description="`next_cursor` of the previous page: the id of its last item; the page "
        "continues after that item (for runs: a run of this experiment, else a `404`)",
    ),
]

PROBLEM = {"model": schemas.Problem, "content": {"application/problem+json": {}}}
#: Request examples shown (and runnable) in /docs.
SPEC_EXAMPLES: dict[str, Any] = {
    "small": {
        "summary": "Adam at two learning rates against SGD with momentum",
        "value": {
            "name": "adam-vs-momentum",
            "tags": ["demo"],
            "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
            "optimizers": [
                {"name": "adam", "lr": [0.01, 0.1]},
                {"name": "sgd", "lr": 0.001, "momentum": 0.9},
            ],
            "seeds": [0, 1, 2],
            "steps": 300,
            "target_loss": 0.01,
        },
    },
    "lr-grid": {
        "summary": "An LR grid with a warm-up cosine schedule on an MLP",
        "value": {
            "name": "mlp-lr-grid",
            "description": "Which learning rate suits AdamW on digits?",
            "problems": [{"name": "mlp", "dataset": "digits", "hidden": [32], "batch_size": 64}],
            "optimizers": [{"name": "adamw", "lr": [0.0003, 0.001, 0.003, 0.01]}],
            "schedules": [
                {"name": "warmup", "warmup_steps": 20, "then": {"name": "cosine", "T_max": 180}}
            ],
            "seeds": [0, 1],
            "steps": 200,
        },
    },
}
#: What every route may answer when authentication is on, or the caller is over a rate.
GUARDED: dict[int | str, dict[str, object]] = {
    401: {**PROBLEM, "description": "no token, or an unknown or revoked one"},
    403: {**PROBLEM, "description": "the token's scope does not allow this"},
    429: {**PROBLEM, "description": "over a quota; Retry-After says when to retry"},
}


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
        415: PROBLEM,
        422: {
            **PROBLEM,
            "description": "invalid (`invalid-request`); or valid as the schema describes each "
            "field but refused for what JSON Schema cannot state: over a limit computed from "
            "the whole spec (`limit`: at most `max_runs_per_experiment` runs, the product of "
            "every grid's length × seeds, counted before expanding; at most "
            "`max_params_per_problem` parameters per problem; the current values are in "
            "`GET /v1/limits`), rules JSON Schema cannot state (`inconsistent`: "
            "fields valid alone but not together, e.g. `init` must have `dim` values and "
            "`n_samples` applies to synthetic data sets only; pairs in order; increasing "
            "milestones), "
            "or an `Idempotency-Key` already used with another body (`idempotency-key-reused`). "
            "The per-field limits (`steps`, the number of seeds) are in the schema.",
        },
        **GUARDED,
    },
)
def submit_experiment(
    spec: Annotated[ExperimentSpec, Body(openapi_examples=SPEC_EXAMPLES)],
    request: Request,
    principal: PrincipalDep,
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
    experiment, created = service.submit(
        db,
        publisher,
        settings,
        spec,
        idempotency_key,
        owner=principal.name,
        quotas=None if principal is LOCAL else request.app.state.quotas,
    )
    headers = {"Location": experiment["links"]["self"]}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(experiment, 202 if created else 200, headers)


@router.get(
    "",
    response_model=schemas.ExperimentPage,
    responses={304: {"description": "not modified"}, 400: PROBLEM, 422: PROBLEM, **GUARDED},
)
def list_experiments(
    request: Request,
    principal: PrincipalDep,
    db: DatabaseDep,
    status: schemas.Status | None = None,
    name: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[^\x00]*$", description="substring of the name, any case"),
    ] = None,
    tag: Annotated[str | None, Query(max_length=40, description="one tag, exactly")] = None,
    archived: Annotated[
        bool, Query(description="list archived experiments instead of the others")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> Response:
    """Newest first; ``ETag`` + ``304`` like a single experiment, for dashboards that poll."""
    page = service.list_page(
        db,
        status=status,
        name=name,
        tag=tag,
        archived=archived,
        limit=limit,
        cursor=cursor,
        owner=principal.owner_filter,
    )
    return cached_json(request, page)


@router.get(
    "/{experiment_id}",
    response_model=schemas.Experiment,
    responses={304: {"description": "not modified"}, 404: PROBLEM, **GUARDED},
)
def get_experiment(
    experiment_id: str, request: Request, principal: PrincipalDep, db: DatabaseDep
) -> Response:
    return cached_json(request, service.get(db, experiment_id, principal.owner_filter))


@router.patch(
    "/{experiment_id}",
    response_model=schemas.Experiment,
    responses={404: PROBLEM, 415: PROBLEM, 422: PROBLEM, **GUARDED},
)
def patch_experiment(
    experiment_id: str, patch: schemas.ExperimentPatch, principal: PrincipalDep, db: DatabaseDep
) -> Response:
    """Set tags, the description, or archive (``"archived": true``) / restore it."""
    return json_response(
        service.update(
            db,
            experiment_id,
            tags=patch.tags,
            description=patch.description,
            archived=patch.archived,
            owner=principal.owner_filter,
        )
    )


@router.delete("/{experiment_id}", status_code=204, responses={404: PROBLEM, **GUARDED})
def delete_experiment(experiment_id: str, principal: PrincipalDep, db: DatabaseDep) -> Response:
    """Delete the experiment, its runs and curves, in any state. Queued runs never start; running
    ones stop at their next checkpoint and write nothing (their lease is gone)."""
    service.remove(db, experiment_id, principal.owner_filter)
    return Response(status_code=204)


@router.get(
    "/{experiment_id}/runs",
    response_model=schemas.RunPage,
    responses={
        304: {"description": "not modified"},
        400: PROBLEM,
        404: PROBLEM,
        422: PROBLEM,
        **GUARDED,
    },
)
def list_runs(
    experiment_id: str,
    request: Request,
    principal: PrincipalDep,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
    status: schemas.Status | None = None,
    problem: Annotated[str | None, Query(max_length=64, description="a problem name")] = None,
    optimizer: Annotated[str | None, Query(max_length=64, description="an optimizer name")] = None,
    schedule: Annotated[str | None, Query(max_length=64, description="a schedule name")] = None,
    sort: SortKey | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """Runs without curves; ordered by ``sort`` (missing values last), else submission order.
    ``problem``, ``optimizer`` and ``schedule`` keep the runs with that name, so a sort ranks
    runs within one problem (or optimizer) rather than across losses of different scales."""
    names = {"problem": problem, "optimizer": optimizer, "schedule": schedule}
    return cached_json(
        request,
        run_service.list_page(
            db,
            experiment_id,
            limit=limit,
            cursor=cursor,
            status=status,
            names={k: v for k, v in names.items() if v is not None},
            sort=sort,
            order=order,
            owner=principal.owner_filter,
        ),
    )


@router.post(
    "/{experiment_id}/cancel",
    status_code=202,
    response_model=schemas.Experiment,
    responses={404: PROBLEM, 415: PROBLEM, **GUARDED},
)
def cancel_experiment(experiment_id: str, principal: PrincipalDep, db: DatabaseDep) -> Response:
    """Queued runs are cancelled at once; running ones stop at their next checkpoint."""
    return json_response(service.cancel(db, experiment_id, principal.owner_filter), 202)
