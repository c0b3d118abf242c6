"""Results people act on: ``/v1/experiments/{id}/summary``, ``runs.csv`` / ``runs.json`` exports,
and the dashboard (``/`` serves ``web/index.html``; its assets are mounted at ``/static``).

The statistics are :mod:`analysis` over the experiment's runs as stored (read by
:mod:`api.services.summary`: metrics and curves, partial while running). Every response carries
an ETag derived from the runs' revisions (bumped by every write) and the query, so a poll of an
unchanged experiment is a ``304`` without loading a curve.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from threading import Lock
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from analysis.curves import problem_contour
from analysis.export import export_rows, to_csv
from analysis.rankings import DEFAULT_TARGETS
from analysis.records import GROUP_METRICS, SummaryError
from analysis.summary import summarize
from api import schemas
from api.auth import PrincipalDep
from api.db import Database
from api.deps import DatabaseDep, json_response, matches
from api.errors import ProblemError, json_body
from api.routes.experiments import GUARDED, PROBLEM
from api.services.summary import experiment_state, load_records

router = APIRouter(prefix="/v1/experiments", tags=["summary"])
dashboard = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
#: Bumped when the summary's shape or statistics change, so cached ETags stop matching.
SUMMARY_VERSION = 3
#: Curves the summary reads (the gradient and update norms are not summarised).
SUMMARY_CURVES = (
    "eval_steps",
    "grad_evals",
    "losses",
    "wall_times",
    "params_x",
    "params_y",
    "lrs",
)
Metric = Literal[GROUP_METRICS]  # type: ignore[valid-type]


def _etag(kind: str, experiment_id: str, state: tuple[str, int, int], *params: Any) -> str:
    key = json.dumps([SUMMARY_VERSION, kind, experiment_id, state, params])
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


class _Cache:
    """The last few summary bodies by ETag: a dashboard and a CLI asking for the same view share
    one computation."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.lock = Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            body = self.items.get(key)
            if body is not None:
                self.items.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        with self.lock:
            self.items[key] = body
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_cache = _Cache()


@router.get(
    "/{experiment_id}/summary",
    response_model=schemas.Summary,
    responses={
        304: {"description": "not modified"},
        404: PROBLEM,
        422: {**PROBLEM, "description": "an invalid query, or a `baseline` matching no solver"},
        **GUARDED,
    },
)
def get_summary(
    experiment_id: str,
    request: Request,
    principal: PrincipalDep,
    db: DatabaseDep,
    metric: Metric = "final_loss",
    baseline: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=300,
            description="baseline solver: its label, a unique part of it, or its id; one "
            "that matches no solver of the experiment, or several, is a `422`",
        ),
    ] = None,
    max_points: Annotated[int, Query(ge=2, le=5000)] = 200,
    targets: Annotated[
        int, Query(ge=1, le=200, description="targets per problem, 10^k above f* for k = 1 … −8")
    ] = DEFAULT_TARGETS,
) -> Response:
    """Per-group statistics over seeds, rankings (performance profiles, runtime ECDFs), pairwise
    comparisons against a baseline solver, the tuning view and, for 2-D problems, the loss
    landscape with each solver's trajectory. Partial while the experiment runs."""
    state = experiment_state(db, experiment_id, principal.owner_filter)
    etag = _etag("summary", experiment_id, state, metric, baseline, max_points, targets)
    if matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    body = _cache.get(etag)
    if body is None:
        records = load_records(db, experiment_id, curves=SUMMARY_CURVES)
        try:
            data = summarize(
                records,
                metric=metric,
                baseline=baseline,
                max_points=max_points,
                n_targets=targets,
                contour=lambda groups: problem_contour(groups, max_points=2 * max_points),
            )
        except SummaryError as exc:
            raise ProblemError(
                422,
                str(exc),
                kind="invalid-request",
                errors=[{"path": "query.baseline", "message": str(exc)}],
            ) from None
        data["experiment_id"] = experiment_id
        data["status"] = state[0]
        body = json_body(data)
        _cache.put(etag, body)
    return Response(body, 200, {"ETag": etag}, media_type="application/json")


def _export(
    request: Request,
    db: Database,
    experiment_id: str,
    kind: Literal["csv", "json"],
    owner: str | None,
) -> Response:
    state = experiment_state(db, experiment_id, owner)
    etag = _etag(f"runs.{kind}", experiment_id, state)
    if matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    columns, rows = export_rows(load_records(db, experiment_id, curves=("eval_steps", "losses")))
    filename = f"optbench-{experiment_id}.{kind}"
    headers = {"ETag": etag, "Content-Disposition": f'inline; filename="{filename}"'}
    if kind == "csv":
        return Response(to_csv(columns, rows), 200, headers, media_type="text/csv; charset=utf-8")
    return json_response(
        {"experiment_id": experiment_id, "columns": columns, "runs": rows}, headers=headers
    )


@router.get(
    "/{experiment_id}/runs.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "one row per run"},
        304: {"description": "not modified"},
        404: PROBLEM,
        **GUARDED,
    },
)
def export_csv(
    experiment_id: str, request: Request, principal: PrincipalDep, db: DatabaseDep
) -> Response:
    """One row per run: labels, the run spec with dotted hyper-parameter columns
    (``optimizer.lr`` …), every metric and ``auc_log_subopt``. Lists are JSON text; a missing
    value is an empty cell."""
    return _export(request, db, experiment_id, "csv", principal.owner_filter)


@router.get(
    "/{experiment_id}/runs.json",
    responses={304: {"description": "not modified"}, 404: PROBLEM, **GUARDED},
)
def export_json(
    experiment_id: str, request: Request, principal: PrincipalDep, db: DatabaseDep
) -> Response:
    """The same rows as ``runs.csv`` as JSON (``{"experiment_id", "columns", "runs": [...]}``),
    values typed; ``optbench gate --baseline`` reads this document."""
    return _export(request, db, experiment_id, "json", principal.owner_filter)


@dashboard.get("/", response_class=FileResponse)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@dashboard.get("/docs", response_class=FileResponse)
def docs() -> FileResponse:
    """Swagger UI from the vendored copy in ``web/vendor``: works with no network."""
    return FileResponse(WEB_DIR / "docs.html", headers={"Cache-Control": "no-cache"})


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard: ``/`` and its static files under ``/static``."""
    app.include_router(dashboard)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
