"""Response models: the API's documented shapes (OpenAPI), separate from the ORM tables.

Handlers build plain dicts (see :mod:`api.services`) and these models describe them; the tests
validate real responses against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.spec import Tag

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Counts(_Out):
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class ExperimentLinks(_Out):
    self: str
    runs: str
    summary: str
    cancel: str


class ExperimentItem(_Out):
    """An experiment as listed (no spec)."""

    id: str
    name: str
    description: str
    tags: list[str]
    status: Status
    counts: Counts
    total_runs: int
    progress: float = Field(ge=0, le=1, description="Finished runs plus running runs' done share")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    archived_at: datetime | None = Field(description="Set while archived (hidden from listings)")
    links: ExperimentLinks


class Experiment(ExperimentItem):
    spec: dict[str, Any] = Field(description="The validated spec, defaults filled in")


class ExperimentPatch(BaseModel):
    """What ``PATCH /v1/experiments/{id}`` may change; absent fields stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tags": ["lr-sweep", "paper"], "archived": True}]},
    )

    tags: list[Tag] | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=4000, pattern=r"^[^\x00]*$")
    archived: bool | None = None


class ExperimentPage(_Out):
    items: list[ExperimentItem]
    next_cursor: str | None


class DryRun(_Out):
    run_count: int
    runs: list[dict[str, Any]] = Field(description="Each resolved run spec with its run_id")


class Metrics(_Out):
    final_loss: float | None
    best_loss: float | None
    f_star: float | None
    suboptimality: float | None
    steps_to_target: int | None
    diverged: bool | None
    divergence_step: int | None
    divergence_reason: str | None
    test_loss: float | None
    test_accuracy: float | None
    wall_time_s: float | None = Field(
        description="The run's amortised time: its batch's time divided by the batch's runs"
    )
    batch_size: int | None = Field(description="Runs stepped together with this one (R)")
    batch_wall_time_s: float | None = Field(description="The whole batch's time for these steps")
    steps_done: int
    grad_evals_done: int = Field(description="Gradient evaluations the updates consumed")
    stopped: bool | None


class RunLinks(_Out):
    self: str


class Run(_Out):
    id: str
    experiment_id: str
    spec_hash: str = Field(description="The engine's run id (hash of the resolved run spec)")
    status: Status
    spec: dict[str, Any]
    metrics: Metrics
    steps_done: int
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: RunLinks


class Curves(_Out):
    """Two groups, each with its x axis: eval-aligned and per-update."""

    eval_steps: list[int]
    grad_evals: list[int] = Field(
        description="Gradient evaluations consumed by the updates before each eval step "
        "(an x axis next to eval_steps and wall_times; L-BFGS evaluates several times per update)"
    )
    losses: list[float | None]
    wall_times: list[float | None]
    params_x: list[float | None] | None = None
    params_y: list[float | None] | None = None
    update_steps: list[int]
    lrs: list[float | None]
    grad_norms: list[float | None]
    update_norms: list[float | None]


class RunWithCurves(Run):
    curves: Curves


class RunPage(_Out):
    items: list[Run]
    next_cursor: str | None


class FieldError(_Out):
    path: str
    message: str


class Problem(_Out):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None


class Health(_Out):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = Field(default_factory=dict)


class Limits(_Out):
    """This service's limits (``OPTBENCH_*`` settings of the same names)."""

    max_runs_per_experiment: int
    max_steps_per_run: int
    max_params_per_problem: int
    max_body_bytes: int
    rate_limit_per_minute: int
    max_queued_runs_per_owner: int
    max_run_steps_per_day: int
    auth_required: bool


# --------------------------------------------------------------------------- the summary
# The summary's statistics are computed by the analysis package; these models document its
# shape. Plot-ready arrays (curves, profiles, ECDFs, contours) stay loosely typed, and every
# level admits keys added later.


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MetricStats(_Open):
    """A metric over a group's seeds. Failed runs (diverged, failed, cancelled) count as the
    worst value: no mean when one failed, quantiles rank them last (``None`` where a quantile is
    a failure). ``note`` says why a value or interval is missing."""

    n: int = Field(description="Finished runs in the statistic, failures included")
    n_failed: int
    n_missing: int = Field(description="Runs left out: pending, or without this metric")
    success_rate: float | None
    success_ci_low: float | None = Field(description="Clopper–Pearson 95 % interval")
    success_ci_high: float | None
    success_ci_method: str | None
    mean: float | None
    ci_low: float | None = Field(description="Student-t 95 % interval of the mean")
    ci_high: float | None
    ci_method: str | None
    median: float | None
    median_ci_low: float | None = Field(description="Order-statistic (binomial) interval")
    median_ci_high: float | None
    median_ci_level: float | None = Field(description="Exact coverage of the median interval")
    median_ci_method: str | None
    q25: float | None
    q75: float | None
    iqr: float | None
    min: float | None
    max: float | None
    note: str | None


class SummaryProblem(_Open):
    id: str
    label: str
    spec: dict[str, Any]
    budget: dict[str, Any]
    f_star: float | None
    group_ids: list[str]
    curve_group_ids: list[str] = Field(
        description="The groups that carry curves: the `curve_groups` best by the metric, best "
        "first, then the baseline's"
    )
    contour: dict[str, Any] | None = Field(
        description="2-D problems: loss surface, trajectories of the groups that carry curves"
    )


class SummarySolver(_Open):
    id: str
    label: str


class GroupRun(_Open):
    run_id: str | None
    seed: int
    status: Status | None
    steps_done: int | None
    diverged: bool
    wall_time_s: float | None = Field(default=None, description="Amortised per-run time")
    batch_size: int | None = None
    batch_wall_time_s: float | None = None


class SummaryGroup(_Open):
    """One (problem, solver) pair aggregated over its seeds."""

    id: str
    problem_id: str
    solver_id: str
    problem: str
    solver: str
    spec: dict[str, Any]
    budget: dict[str, Any]
    seeds: list[int]
    n_runs: int
    runs: list[GroupRun]
    n_finished: int
    n_failed: int
    success_rate: float | None = Field(
        description="Finished runs that neither failed nor missed the target loss"
    )
    success_ci_low: float | None
    success_ci_high: float | None
    diverged_rate: float
    deterministic: bool = Field(description="Every seed produced the same curve")
    note: str | None
    metrics: dict[str, MetricStats]
    curves: dict[str, Any] | None = Field(
        description="Loss and LR bands; `None` before any point, or for a group beyond the "
        "problem's `curve_group_ids` (see `GET …/summary/curves`)"
    )


class Summary(_Open):
    experiment_id: str
    status: Status
    metric: str
    metrics: list[str]
    n_runs: int
    problems: list[SummaryProblem]
    solvers: list[SummarySolver]
    curve_groups: int | None = Field(description="Groups per problem that carry curves")
    curve_points: int = Field(description="Points per group curve")
    groups: list[SummaryGroup]
    rankings: dict[str, Any] = Field(description="Performance profiles and ECDFs, plot-ready")
    baseline_solver_id: str | None
    baseline_solver_ids: list[str]
    baseline_rule: str = Field(description="How the baseline was chosen")
    baseline_note: str | None
    comparisons: list[dict[str, Any]] = Field(description="Paired tests against the baseline")
    tuning: list[dict[str, Any]]


class SummaryCurveGroup(_Open):
    id: str
    problem_id: str
    solver_id: str
    solver: str
    rank: int = Field(description="1 = best in its problem by the metric (the summary's rule)")
    curves: dict[str, Any] | None = Field(description="Loss and LR bands, as in the summary")
    trajectories: list[dict[str, Any]] = Field(description="Each run's path (2-D problems)")


class SummaryCurves(_Open):
    experiment_id: str
    status: Status
    metric: str
    problem_id: str | None = Field(description="The ranked problem; `None` for `group_id`")
    offset: int
    total: int = Field(description="Groups in the ranking (or named by `group_id`)")
    curve_points: int
    groups: list[SummaryCurveGroup]
