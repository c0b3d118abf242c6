"""The summary: everything the dashboard and ``optbench compare`` show, from run records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from analysis.compare import best_rule, compare, default_baseline
from analysis.curves import group_curves
from analysis.groups import Group, group_runs, problems_of, resolve_solvers, solvers_of
from analysis.rankings import DEFAULT_TARGETS, ecdfs, profiles
from analysis.records import GROUP_METRICS, check_metric, metric_value, succeeded
from analysis.stats import DETERMINISTIC_NOTE, describe, group_rates, is_deterministic
from analysis.tuning import tuning

#: Points of all groups' curves (and of all solvers' ranking series) in one summary together: with
#: many groups each curve gets fewer (never under :data:`MIN_CURVE_POINTS`), so a large sweep's
#: summary stays small.
CURVE_POINT_BUDGET = 4000
MIN_CURVE_POINTS = 64


def curve_points(max_points: int, n_curves: int) -> int:
    """Points per curve: ``max_points``, less when the budget is shared by many curves."""
    return min(max_points, max(MIN_CURVE_POINTS, CURVE_POINT_BUDGET // max(1, n_curves)))


#: Why a baseline picked from the runs it is then compared with needs saying.
SELECTION_NOTE = (
    "the baseline was picked from these runs by the rule above and is tested on the same runs, "
    "which favours it; name a baseline up front (?baseline= / --baseline) for an unbiased test"
)


def group_summary(group: Group, metrics: Sequence[str], max_points: int) -> dict[str, Any]:
    """One group: its spec, runs, success and divergence rates, and each metric's statistics."""
    deterministic = is_deterministic(group)
    return {
        "id": group.id,
        "problem_id": group.problem_id,
        "solver_id": group.solver_id,
        "problem": group.problem_label,
        "solver": group.solver_label,
        "spec": {
            "problem": group.problem,
            "optimizer": group.optimizer,
            "schedule": group.schedule,
            **{k: v for k, v in group.solver.items() if k not in ("optimizer", "schedule")},
        },
        "budget": group.budget,
        "seeds": group.seeds,
        "n_runs": len(group.records),
        "runs": [
            {
                "run_id": r.get("run_id"),
                "seed": r["spec"]["seed"],
                "status": r.get("status"),
                "steps_done": r.get("steps_done"),
                "diverged": bool(r.get("diverged")),
                "wall_time_s": r.get("wall_time_s"),
                "batch_size": r.get("batch_size"),
                "batch_wall_time_s": r.get("batch_wall_time_s"),
            }
            for r in group.records
        ],
        **group_rates(group),
        "deterministic": deterministic,
        "note": DETERMINISTIC_NOTE if deterministic else None,
        "metrics": {m: describe(group.values(m), m) for m in metrics},
        "curves": group_curves(group, max_points),
    }


def summarize(
    records: Iterable[Mapping[str, Any]],
    *,
    metric: str = "final_loss",
    baseline: str | None = None,
    max_points: int = 200,
    n_targets: int = DEFAULT_TARGETS,
    contour: Callable[[list[Group]], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Everything the dashboard and ``optbench compare`` show, from a list of run records.

    ``metric`` drives the comparisons, the tuning view and the default baseline; the performance
    profile's cost is steps-to-target when some run reached its target loss, else the final
    suboptimality. ``baseline`` names a solver (see :func:`~analysis.groups.resolve_solvers`);
    by default the best one by :func:`~analysis.compare.best_rule`, and the output says it was
    picked from the same runs. ``contour`` (optional) adds a 2-D loss surface per problem.
    Group curves share :data:`CURVE_POINT_BUDGET` among the groups, the rankings' series (one
    per solver) share it among the solvers (see :func:`curve_points`).
    """
    check_metric(metric)
    groups = group_runs(records)
    present = [
        m
        for m in GROUP_METRICS
        if any(metric_value(r, m) is not None for g in groups for r in g.records)
    ]
    metrics = list(dict.fromkeys([metric, *present]))
    reached = any(succeeded(r) for g in groups for r in g.records)
    profile_metric = "steps_to_target" if reached else "final_loss"
    if baseline:
        baseline_sids = resolve_solvers(groups, baseline)
        rule, note = f"named by the request: {baseline!r}", None
    else:
        chosen = default_baseline(groups, metric)
        baseline_sids = [chosen] if chosen else []
        rule, note = best_rule(metric), SELECTION_NOTE
    solvers = solvers_of(groups)
    ranking_points = curve_points(max_points, len(solvers))
    problems = []
    for pid, plabel, pgroups in problems_of(groups):
        entry: dict[str, Any] = {
            "id": pid,
            "label": plabel,
            "spec": pgroups[0].problem,
            "budget": pgroups[0].budget,
            "f_star": next(
                (
                    r.get("f_star")
                    for g in pgroups
                    for r in g.records
                    if r.get("f_star") is not None
                ),
                None,
            ),
            "group_ids": [g.id for g in pgroups],
            "contour": contour(pgroups) if contour else None,
        }
        problems.append(entry)
    return {
        "metric": metric,
        "metrics": metrics,
        "n_runs": sum(len(g.records) for g in groups),
        "problems": problems,
        "solvers": [{"id": sid, "label": label} for sid, label in solvers],
        "groups": [
            group_summary(g, metrics, curve_points(max_points, len(groups))) for g in groups
        ],
        "rankings": {
            "profile": profiles(groups, profile_metric, ranking_points) if groups else None,
            "ecdf": ecdfs(groups, n_targets=n_targets, max_points=ranking_points),
        },
        "baseline_solver_id": baseline_sids[0] if baseline_sids else None,
        "baseline_solver_ids": baseline_sids,
        "baseline_rule": rule,
        "baseline_note": note,
        "comparisons": compare(groups, baseline_sids, metric),
        "tuning": tuning(groups, metric),
    }
