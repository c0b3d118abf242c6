"""The regression gate: each group of a new set of runs against the same group of a baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.groups import group_runs
from analysis.records import HIGHER_IS_BETTER, check_metric
from analysis.stats import describe, rates


@dataclass
class Verdict:
    problem: str
    solver: str
    status: str  # "ok" | "regression" | "improved" | "new" | "missing"
    reasons: list[str]
    current: dict[str, Any] | None
    baseline: dict[str, Any] | None


def gate(
    current: Iterable[Mapping[str, Any]],
    baseline: Iterable[Mapping[str, Any]],
    *,
    metric: str = "final_loss",
    max_regression: float = 0.05,
    abs_tol: float = 0.0,
) -> list[Verdict]:
    """Compare each group of ``current`` with the same group (same problem, budget, optimizer with
    every hyper-parameter, schedule) of ``baseline``.

    A group **regresses** when any of these holds:

    1. more of its runs diverge than in the baseline;
    2. with a target loss: a smaller share of its runs reaches the target than in the baseline;
    3. on ``metric``: the whole 95 % bootstrap CI of the current mean lies on the wrong side of the
       tolerance threshold ``t = B + max_regression·|B| + abs_tol``, where B is the baseline's
       mean (mirrored for a higher-is-better metric) — i.e. the current runs are worse than the
       baseline by more than the tolerance beyond the spread of the seeds. With one run, or all
       runs equal, the CI is that value itself.

    It is **improved** when (3) holds the other way (``ci_high < B − max_regression·|B| −
    abs_tol``) and neither (1) nor (2) does; otherwise **ok**. Groups only in ``current`` are
    ``new``, groups only in the baseline ``missing``; neither fails the gate.
    """
    check_metric(metric)
    current, baseline = list(current), list(baseline)
    cur = {g.id: g for g in group_runs(current)}
    base = {g.id: g for g in group_runs(baseline)}
    # Labels from both sides together, so a group is named alike in either.
    for g in group_runs([*current, *baseline]):
        for side in (cur, base):
            if g.id in side:
                side[g.id].problem_label, side[g.id].solver_label = g.problem_label, g.solver_label
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
    verdicts = []
    for gid, g in cur.items():
        b = base.get(gid)
        cur_stats = describe(g.values(metric))
        if b is None:
            verdicts.append(Verdict(g.problem_label, g.solver_label, "new", [], cur_stats, None))
            continue
        base_stats = describe(b.values(metric))
        reasons: list[str] = []
        div_c = sum(bool(r.get("diverged")) for r in g.records)
        div_b = sum(bool(r.get("diverged")) for r in b.records)
        if div_c > div_b:
            reasons.append(f"{div_c} of {len(g.records)} runs diverged (baseline: {div_b})")
        rate_c, rate_b = rates(g)["success_rate"], rates(b)["success_rate"]
        if rate_c is not None and rate_b is not None and rate_c < rate_b:
            reasons.append(f"target reached by {rate_c:.0%} of runs (baseline: {rate_b:.0%})")
        improved = False
        bmean = base_stats["mean"]
        if bmean is not None and cur_stats["mean"] is not None:
            slack = max_regression * abs(bmean) + abs_tol
            low = cur_stats["ci_low"] if cur_stats["ci_low"] is not None else cur_stats["mean"]
            high = cur_stats["ci_high"] if cur_stats["ci_high"] is not None else cur_stats["mean"]
            worse_bound, better_bound = (low, high) if sign > 0 else (-high, -low)
            ref = sign * bmean
            if worse_bound > ref + slack:
                reasons.append(
                    f"{metric} mean {cur_stats['mean']:.6g} (95% CI {low:.6g}…{high:.6g}) is worse "
                    f"than the baseline's {bmean:.6g} by more than the tolerance ({slack:.3g})"
                )
            elif better_bound < ref - slack:
                improved = True
        status = "regression" if reasons else "improved" if improved else "ok"
        verdicts.append(
            Verdict(g.problem_label, g.solver_label, status, reasons, cur_stats, base_stats)
        )
    for gid, b in base.items():
        if gid not in cur:
            verdicts.append(
                Verdict(
                    b.problem_label, b.solver_label, "missing", [], None, describe(b.values(metric))
                )
            )
    return verdicts
