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
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from analysis.curves import EVAL_ALIGNED, problem_contour
from analysis.export import export_group_rows, to_csv
from analysis.groups import Group, group_runs
from analysis.rankings import DEFAULT_TARGETS
from analysis.records import GROUP_METRICS, SummaryError
from analysis.summary import curve_page, ranked, summarize_groups
from api import schemas
from api.auth import PrincipalDep
from api.db import Database
from api.deps import DatabaseDep, json_response, matches
from api.errors import ProblemError, json_body
from api.routes.experiments import GUARDED, PROBLEM
from api.services.summary import experiment_state, gc_paused, read_curves, read_records

router = APIRouter(prefix="/v1/experiments", tags=["summary"])
dashboard = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
#: Bumped when the summary's shape or statistics change, so cached ETags stop matching.
SUMMARY_VERSION = 4
#: Curves read for every run: the statistics need them (AUC, ECDFs, determinism).
RUN_CURVES = ("eval_steps", "losses")
#: Curves read only for the groups a summary draws (bands on other x axes, trajectories, LRs;
#: the gradient and update norms are not summarised).
DRAWN_CURVES = ("grad_evals", "wall_times", "params_x", "params_y", "lrs")
#: Groups per problem whose curves the summary carries unless asked otherwise.
CURVE_GROUPS = 50
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


@dataclass
class _Version:
    """One version of an experiment's runs, grouped; ``drawn``: the runs whose
    :data:`DRAWN_CURVES` were added."""

    groups: list[Group]
    drawn: set[str] = field(default_factory=set)


class _Versions:
    """The grouped runs of the last few experiment versions: a summary for another metric or
    baseline, or a page of curves, reuses the records read and grouped for the first (a
    version's records never change, so the groups' memoised statistics stay valid)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, tuple[str, int, int]], _Version] = OrderedDict()
        self.lock = Lock()

    def get(self, db: Database, experiment_id: str, state: tuple[str, int, int]) -> _Version:
        key = (experiment_id, state)
        with self.lock:
            version = self.items.get(key)
            if version is not None:
                self.items.move_to_end(key)
                return version
        with db.snapshot() as session:
            version = _Version(group_runs(*read_records(session, experiment_id, RUN_CURVES)))
        with self.lock:
            self.items[key] = version
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return version


_versions = _Versions()


def _add_drawn_curves(db: Database, version: _Version, groups: list[Group]) -> None:
    """Add :data:`DRAWN_CURVES` to the runs of ``groups`` that do not have them yet.

    They are read in a later snapshot than the runs' losses: while a run is being written, an
    eval-aligned curve is cut (or NaN-padded) to the run's ``eval_steps``, so the two agree."""
    missing = [r for g in groups for r in g.records if str(r["run_id"]) not in version.drawn]
    if not missing:
        return
    budgets = {str(r["run_id"]): (int(r["spec"]["steps"]), r.get("f_star")) for r in missing}
    with db.snapshot() as session:
        # eval_steps again: a long run's buckets are found from its whole x axis
        found = read_curves(session, budgets, ("eval_steps", *DRAWN_CURVES))
    for record in missing:
        run_id = str(record["run_id"])
        n = len(record.get("eval_steps", ()))
        for name, values in found.get(run_id, {}).items():
            if name in EVAL_ALIGNED:
                record[name] = _fit(values, n)  # type: ignore[literal-required]
            elif name != "eval_steps":
                record[name] = values  # type: ignore[literal-required]
        version.drawn.add(run_id)


def _fit(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` as exactly ``n`` points: cut, or padded with NaN."""
    if values.size == n:
        return values
    out = np.full(n, np.nan)
    k = min(n, values.size)
    out[:k] = values[:k]
    return out


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
    curve_groups: Annotated[
        int,
        Query(
            ge=1,
            le=10_000,
            description="per problem, the best groups by `metric` whose curves, trajectories "
            "and rankings series the summary carries (the baseline's are added); every group "
            "keeps its statistics. The others: `GET …/summary/curves`",
        ),
    ] = CURVE_GROUPS,
) -> Response:
    """Per-group statistics over seeds, rankings (performance profiles, runtime ECDFs), pairwise
    comparisons against a baseline solver, the tuning view and, for 2-D problems, the loss
    landscape with each solver's trajectory. Partial while the experiment runs.

    Curves are bounded: per problem the `curve_groups` best groups (and the baseline's) carry
    them, listed best first in the problem's `curve_group_ids`; `curve_points` is the points per
    curve they got (the curve point budget shared among them)."""
    state = experiment_state(db, experiment_id, principal.owner_filter)
    etag = _etag(
        "summary", experiment_id, state, metric, baseline, max_points, targets, curve_groups
    )
    if matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    body = _cache.get(etag)
    if body is None:
        with gc_paused():
            body = _summary_body(
                db, experiment_id, state, metric, baseline, max_points, targets, curve_groups
            )
        _cache.put(etag, body)
    return Response(body, 200, {"ETag": etag}, media_type="application/json")


def _summary_body(
    db: Database,
    experiment_id: str,
    state: tuple[str, int, int],
    metric: str,
    baseline: str | None,
    max_points: int,
    targets: int,
    curve_groups: int,
) -> bytes:
    """The summary's JSON body, from the experiment version's grouped runs (read once)."""
    version = _versions.get(db, experiment_id, state)
    try:
        data = summarize_groups(
            version.groups,
            metric=metric,
            baseline=baseline,
            max_points=max_points,
            n_targets=targets,
            contour=lambda groups: problem_contour(groups, max_points=2 * max_points),
            curve_groups=curve_groups,
            load_curves=lambda groups: _add_drawn_curves(db, version, groups),
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
    return json_body(data)


@router.get(
    "/{experiment_id}/summary/curves",
    response_model=schemas.SummaryCurves,
    responses={
        304: {"description": "not modified"},
        404: PROBLEM,
        422: {
            **PROBLEM,
            "description": "an invalid query, or a `problem` or `group_id` "
            "that is not the experiment's",
        },
        **GUARDED,
    },
)
def get_summary_curves(
    experiment_id: str,
    request: Request,
    principal: PrincipalDep,
    db: DatabaseDep,
    metric: Metric = "final_loss",
    problem: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="a problem id (the summary's `problems[].id`); default: the first",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000, description="rank to start at (0 = best)")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = CURVE_GROUPS,
    group_id: Annotated[
        list[str] | None,
        Query(
            max_length=100,
            description="these groups (ids as the summary lists them) instead of a page of "
            "the ranking",
        ),
    ] = None,
    max_points: Annotated[
        int,
        Query(ge=2, le=1000, description="points per curve and per trajectory"),
    ] = 200,
) -> Response:
    """The curves of groups the summary leaves without: a page of a problem's groups ranked best
    first by `metric` (the summary's rule; its `curve_group_ids` are the first page), or the
    groups named by `group_id`. Each group has its loss and LR bands — equal to the summary's at
    the same points per curve (its `curve_points`) — and its runs' trajectories on 2-D
    problems."""
    state = experiment_state(db, experiment_id, principal.owner_filter)
    etag = _etag(
        "curves", experiment_id, state, metric, problem, offset, limit, group_id, max_points
    )
    if matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    version = _versions.get(db, experiment_id, state)
    groups = version.groups
    if group_id:
        by_id = {g.id: g for g in groups}
        unknown = [gid for gid in group_id if gid not in by_id]
        if unknown:
            raise _invalid("query.group_id", f"no group {unknown[0]!r} in this experiment")
        chosen = [by_id[gid] for gid in dict.fromkeys(group_id)]
        problem_id, total = None, len(chosen)
    else:
        problem_ids = list(dict.fromkeys(g.problem_id for g in groups))
        problem_id = problem or (problem_ids[0] if problem_ids else None)
        if problem is not None and problem not in problem_ids:
            raise _invalid("query.problem", f"no problem {problem!r} in this experiment")
        members = ranked([g for g in groups if g.problem_id == problem_id], metric)
        chosen, total = members[offset : offset + limit], len(members)
    _add_drawn_curves(db, version, chosen)
    data = {
        "experiment_id": experiment_id,
        "status": state[0],
        "metric": metric,
        "problem_id": problem_id,
        "offset": 0 if group_id else offset,
        "total": total,
        "curve_points": max_points,
        "groups": curve_page(groups, metric, chosen, max_points),
    }
    return Response(json_body(data), 200, {"ETag": etag}, media_type="application/json")


def _invalid(path: str, message: str) -> ProblemError:
    return ProblemError(
        422, message, kind="invalid-request", errors=[{"path": path, "message": message}]
    )


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
    columns, rows = export_group_rows(_versions.get(db, experiment_id, state).groups)
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
