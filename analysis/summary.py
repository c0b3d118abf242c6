"""The summary: everything the dashboard and ``optbench compare`` show, from run records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from analysis.compare import best_key, best_rule, compare, default_baseline
from analysis.curves import group_curves, group_trajectories
from analysis.groups import Group, group_runs, problems_of, resolve_solvers, solvers_of
from analysis.rankings import DEFAULT_TARGETS, ecdfs, profiles
from analysis.records import GROUP_METRICS, check_metric, metric_value, succeeded
from analysis.stats import (
    DETERMINISTIC_NOTE,
    describe_groups,
    fill_deterministic,
    group_describe,
    group_rates,
    is_deterministic,
)
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


def ranked(groups: Sequence[Group], metric: str) -> list[Group]:
    """Groups best first by :func:`~analysis.compare.best_rule` (success, median, label)."""
    return sorted(groups, key=lambda g: best_key(g, metric))


def curve_selection(
    groups: Sequence[Group], metric: str, baseline_sids: Sequence[str], per_problem: int | None
) -> dict[str, list[str]]:
    """Per problem, the ids of the groups whose curves a summary draws: the ``per_problem``
    best by :func:`ranked` (all when ``None``), then the baseline's groups not among them."""
    out: dict[str, list[str]] = {}
    for pid, _, pgroups in problems_of(groups):
        best = ranked(pgroups, metric)[:per_problem]
        chosen = {g.id for g in best}
        base = [g for g in pgroups if g.solver_id in baseline_sids and g.id not in chosen]
        out[pid] = [g.id for g in (*best, *base)]
    return out


def group_summary(
    group: Group, metrics: Sequence[str], max_points: int, *, curves: bool = True
) -> dict[str, Any]:
    """One group: its spec, runs, success and divergence rates, each metric's statistics and,
    with ``curves``, its loss and LR bands (else ``None``)."""
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
        "metrics": {m: group_describe(group, m) for m in metrics},
        "curves": group_curves(group, max_points) if curves else None,
    }


def summarize(records: Iterable[Mapping[str, Any]], **options: Any) -> dict[str, Any]:
    """:func:`summarize_groups` of the records grouped by :func:`~analysis.groups.group_runs`."""
    return summarize_groups(group_runs(records), **options)


def summarize_groups(
    groups: list[Group],
    *,
    metric: str = "final_loss",
    baseline: str | None = None,
    max_points: int = 200,
    n_targets: int = DEFAULT_TARGETS,
    contour: Callable[[list[Group]], dict[str, Any] | None] | None = None,
    curve_groups: int | None = None,
    load_curves: Callable[[list[Group]], None] | None = None,
) -> dict[str, Any]:
    """Everything the dashboard and ``optbench compare`` show, from the groups of run records.

    ``metric`` drives the comparisons, the tuning view and the default baseline; the performance
    profile's cost is steps-to-target when some run reached its target loss, else the final
    suboptimality. ``baseline`` names a solver (see :func:`~analysis.groups.resolve_solvers`);
    by default the best one by :func:`~analysis.compare.best_rule`, and the output says it was
    picked from the same runs. ``contour`` (optional) adds a 2-D loss surface per problem.
    Group curves share :data:`CURVE_POINT_BUDGET` among the groups, the rankings' series (one
    per solver) share it among the solvers (see :func:`curve_points`).

    ``curve_groups`` bounds what grows with the number of groups times points: per problem only
    the ``curve_groups`` best groups (:func:`curve_selection`, listed best first in the problem's
    ``curve_group_ids``) and the baseline's carry curves, trajectories and rankings series; every
    group keeps its statistics, every solver its profile score. Everything else equals the
    unbounded summary's (``None``: every group). ``load_curves`` is called with the groups that
    carry curves before they are drawn, so a caller can read their other curves (wall times,
    trajectories, LRs) for those runs only.
    """
    check_metric(metric)
    present = [
        m
        for m in GROUP_METRICS
        if any(metric_value(r, m) is not None for g in groups for r in g.records)
    ]
    metrics = list(dict.fromkeys([metric, *present]))
    describe_groups(groups, metrics)
    fill_deterministic(groups)
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
    selection = curve_selection(groups, metric, baseline_sids, curve_groups)
    drawn = {gid for ids in selection.values() for gid in ids}
    if load_curves is not None:
        load_curves([g for g in groups if g.id in drawn])
    drawn_solvers = {g.solver_id for g in groups if g.id in drawn}
    ranking_points = curve_points(max_points, len(drawn_solvers))
    points = curve_points(max_points, len(drawn))
    problems = []
    for pid, plabel, pgroups in problems_of(groups):
        shown = [g for g in pgroups if g.id in drawn]
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
            "curve_group_ids": selection[pid],
            "contour": contour(shown) if contour and shown else None,
        }
        problems.append(entry)
    return {
        "metric": metric,
        "metrics": metrics,
        "n_runs": sum(len(g.records) for g in groups),
        "problems": problems,
        "solvers": [{"id": sid, "label": label} for sid, label in solvers],
        "curve_groups": curve_groups,
        "curve_points": points,
        "groups": [group_summary(g, metrics, points, curves=g.id in drawn) for g in groups],
        "rankings": {
            "profile": profiles(groups, profile_metric, ranking_points, series=drawn_solvers)
            if groups
            else None,
            "ecdf": ecdfs(
                groups, n_targets=n_targets, max_points=ranking_points, series=drawn_solvers
            ),
        },
        "baseline_solver_id": baseline_sids[0] if baseline_sids else None,
        "baseline_solver_ids": baseline_sids,
        "baseline_rule": rule,
        "baseline_note": note,
        "comparisons": compare(groups, baseline_sids, metric),
        "tuning": tuning(groups, metric),
    }


def curve_page(
    groups: Sequence[Group],
    metric: str,
    chosen: Sequence[Group],
    max_points: int,
) -> list[dict[str, Any]]:
    """The curves a summary draws for ``chosen`` groups, ``max_points`` per curve: each group's
    loss and LR bands (as :func:`group_summary` has them at that many points) and its runs'
    trajectories (2-D problems, evenly subsampled to ``max_points``), with the group's rank
    (1 = best) by :func:`ranked` within its problem."""
    check_metric(metric)
    rank: dict[str, int] = {}
    for _, _, pgroups in problems_of(groups):
        rank.update((g.id, i + 1) for i, g in enumerate(ranked(pgroups, metric)))
    return [
        {
            "id": g.id,
            "problem_id": g.problem_id,
            "solver_id": g.solver_id,
            "solver": g.solver_label,
            "rank": rank[g.id],
            "curves": group_curves(g, max_points),
            "trajectories": group_trajectories(g, max_points),
        }
        for g in chosen
    ]
