"""The regression gate: each group of a new set of runs against the same group of a baseline.

Groups are matched by their full resolved hyper-parameters (:func:`analysis.groups.group_runs`),
never by their display labels. :func:`mismatches` says, before anything runs, why a planned set
of runs cannot be compared with a baseline (a group on one side only, a different ``steps``,
``dtype`` or problem set); the client refuses to gate then unless told to compare what matches.

A group **regresses** when any of these holds (α = 0.05 by default):

1. its failure rate (diverged, failed or cancelled runs) is higher than the baseline's beyond
   chance: Fisher's exact test, one-sided, p ≤ α. When the run counts are too small for any
   outcome to reach α, any increase in failures is a regression (the reason says so);
2. with a target loss, its success rate (target reached) is lower, by the same test and rule;
3. on ``metric``, over the runs that did not fail: the 95 % Welch interval of the difference of
   the means (current − baseline, in the metric's bad direction) lies wholly above the margin
   ``max_regression · |baseline mean| + abs_tol`` — worse by more than the margin with both
   samples' spreads taken into account. With one run on a side, or no spread on either, there
   is no interval and the exact difference is compared (the detail says so).

It is **improved** when the interval of (3) lies wholly below −margin and nothing regressed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from analysis.groups import Group, group_runs
from analysis.records import BUDGET_FIELDS, canonical, direction_sign, run_state
from analysis.stats import CONFIDENCE, describe

ALPHA = 0.05
WELCH = "welch 95%"
POINT = "exact difference (n = 1 or no spread: no interval)"


@dataclass
class Verdict:
    """One group's verdict: ``ok``, ``improved``, ``regression``, ``new`` or ``missing``."""

    problem: str
    solver: str
    status: str
    reasons: list[str]
    current: dict[str, Any] | None
    baseline: dict[str, Any] | None
    detail: str = ""
    difference: dict[str, Any] | None = field(default=None)


def mismatches(
    planned: Iterable[Mapping[str, Any]], baseline: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Why ``planned`` runs (records or bare ``{"spec": …}`` entries, nothing run yet) cannot be
    gated against ``baseline``: each budget field (steps, dtype, …) or problem set that differs,
    then the groups on one side only. Empty when every group has its counterpart."""
    planned, baseline = list(planned), list(baseline)
    both = {g.id: g for g in group_runs([*planned, *baseline])}
    mine = {g.id for g in group_runs(planned)}
    theirs = {g.id for g in group_runs(baseline)}
    reasons = []
    for name in BUDGET_FIELDS:
        a = {canonical(both[i].budget.get(name)) for i in mine}
        b = {canonical(both[i].budget.get(name)) for i in theirs}
        if a != b:
            now_text, base_text = ", ".join(sorted(a)), ", ".join(sorted(b))
            reasons.append(f"{name} differs: {now_text} now, {base_text} in the baseline")
    problems_now = {both[i].problem_label for i in mine}
    problems_base = {both[i].problem_label for i in theirs}
    if problems_now != problems_base:
        reasons.append(
            "the problem set differs: "
            + _sides(sorted(problems_now - problems_base), sorted(problems_base - problems_now))
        )
    new = sorted(f"{both[i].problem_label} / {both[i].solver_label}" for i in mine - theirs)
    missing = sorted(f"{both[i].problem_label} / {both[i].solver_label}" for i in theirs - mine)
    if new or missing:
        reasons.append(
            f"{len(new) + len(missing)} groups are on one side only: " + _sides(new, missing)
        )
    return reasons


def _sides(now: Sequence[str], base: Sequence[str]) -> str:
    parts = []
    if now:
        parts.append("only now: " + "; ".join(now))
    if base:
        parts.append("only in the baseline: " + "; ".join(base))
    return " — ".join(parts)


def rate_worse(
    bad_now: int, n_now: int, bad_base: int, n_base: int, alpha: float = ALPHA
) -> str | None:
    """Why ``bad_now / n_now`` is worse than ``bad_base / n_base`` beyond chance, or ``None``.

    Fisher's exact test, one-sided (more bad outcomes now); when even the most extreme table
    (every run bad now, none in the baseline) cannot reach α, any increase counts.
    """
    if n_now == 0 or n_base == 0 or bad_now * n_base <= bad_base * n_now:
        return None
    table = [[bad_now, n_now - bad_now], [bad_base, n_base - bad_base]]
    p = float(stats.fisher_exact(table, alternative="greater").pvalue)
    if p <= alpha * (1 + 1e-9):  # p is a ratio of binomials: 1/20 must count as 0.05
        return f"Fisher exact one-sided p = {p:.3g} ≤ {alpha:g}"
    reachable = 1.0 / math.comb(n_now + n_base, n_now)
    if reachable > alpha:
        return (
            f"too few runs for any test to reach α = {alpha:g} (smallest p {reachable:.3g}): "
            "any increase fails"
        )
    return None


def difference(now: np.ndarray, base: np.ndarray, sign: float) -> dict[str, Any]:
    """``sign · (mean(now) − mean(base))`` with its 95 % Welch interval (``sign`` makes larger
    worse), or the exact difference when an interval does not exist."""
    d = sign * (float(now.mean()) - float(base.mean()))
    if now.size < 2 or base.size < 2 or (np.ptp(now) == 0 and np.ptp(base) == 0):
        return {"estimate": d, "low": d, "high": d, "method": POINT}
    ci = stats.ttest_ind(now, base, equal_var=False).confidence_interval(CONFIDENCE)
    low, high = sorted((sign * float(ci.low), sign * float(ci.high)))
    return {"estimate": d, "low": low, "high": high, "method": WELCH}


def gate(
    current: Iterable[Mapping[str, Any]],
    baseline: Iterable[Mapping[str, Any]],
    *,
    metric: str = "final_loss",
    max_regression: float = 0.05,
    abs_tol: float = 0.0,
    alpha: float = ALPHA,
) -> list[Verdict]:
    """A verdict per group of ``current`` and ``baseline`` (see the module docstring)."""
    sign = direction_sign(metric)
    current, baseline = list(current), list(baseline)
    both = {g.id: g for g in group_runs([*current, *baseline])}
    cur = {g.id: g for g in group_runs(current)}
    base = {g.id: g for g in group_runs(baseline)}
    verdicts = []
    for gid, g in cur.items():
        label = both[gid]
        now = describe(g.values(metric), metric)
        if gid not in base:
            verdicts.append(Verdict(label.problem_label, label.solver_label, "new", [], now, None))
            continue
        verdicts.append(_verdict(g, base[gid], label, metric, sign, max_regression, abs_tol, alpha))
    for gid, b in base.items():
        if gid not in cur:
            label = both[gid]
            then = describe(b.values(metric), metric)
            verdicts.append(
                Verdict(label.problem_label, label.solver_label, "missing", [], None, then)
            )
    return verdicts


def _counts(group: Group) -> tuple[int, int, int]:
    """(finished, failed, reached the target) over the group's finished runs."""
    finished = [r for r in group.records if run_state(r) != "pending"]
    failed = sum(run_state(r) == "failed" for r in finished)
    reached = sum(run_state(r) == "done" and r.get("steps_to_target") is not None for r in finished)
    return len(finished), failed, reached


def _verdict(
    g: Group,
    b: Group,
    label: Group,
    metric: str,
    sign: float,
    max_regression: float,
    abs_tol: float,
    alpha: float,
) -> Verdict:
    now, then = describe(g.values(metric), metric), describe(b.values(metric), metric)
    reasons: list[str] = []
    n_now, failed_now, reached_now = _counts(g)
    n_base, failed_base, reached_base = _counts(b)
    why = rate_worse(failed_now, n_now, failed_base, n_base, alpha)
    if why:
        reasons.append(f"failure rate {failed_now}/{n_now} vs {failed_base}/{n_base} ({why})")
    if any(r["spec"].get("target_loss") is not None for r in g.records):
        why = rate_worse(n_now - reached_now, n_now, n_base - reached_base, n_base, alpha)
        if why:
            reasons.append(
                f"target reached by {reached_now}/{n_now} vs {reached_base}/{n_base} ({why})"
            )
    x_now = np.array([v for v in g.values(metric) if v is not None and math.isfinite(v)])
    x_base = np.array([v for v in b.values(metric) if v is not None and math.isfinite(v)])
    diff, improved = None, False
    if x_now.size and x_base.size:
        diff = difference(x_now, x_base, sign)
        diff["margin"] = max_regression * abs(float(x_base.mean())) + abs_tol
        if diff["low"] > diff["margin"]:
            reasons.append(
                f"{metric} worse by {diff['estimate']:.4g} [{diff['low']:.4g}, {diff['high']:.4g}] "
                f"({diff['method']}), beyond the margin {diff['margin']:.4g}"
            )
        improved = diff["high"] < -diff["margin"]
    status = "regression" if reasons else "improved" if improved else "ok"
    detail = f"baseline {_stat_text(then)}; now {_stat_text(now)}"
    if diff is not None:
        detail += (
            f"; worse by {diff['estimate']:.4g} [{diff['low']:.4g}, {diff['high']:.4g}] "
            f"({diff['method']}), margin {diff['margin']:.4g}"
        )
    else:
        detail += f"; no {metric} to compare on one side (every run failed)"
    return Verdict(
        label.problem_label, label.solver_label, status, reasons, now, then, detail, diff
    )


def _stat_text(s: Mapping[str, Any]) -> str:
    """``mean 1.02 [0.98, 1.06] (student-t), 5/5 ok`` — or the median when the mean is undefined."""
    ok = f"{s['n'] - s['n_failed']}/{s['n']} ok"
    if s["mean"] is not None:
        ci = (
            f" [{s['ci_low']:.4g}, {s['ci_high']:.4g}] ({s['ci_method']})"
            if s["ci_low"] is not None
            else " (n = 1: no interval)"
        )
        return f"mean {s['mean']:.6g}{ci}, {ok}"
    if s["median"] is not None:
        return f"median {s['median']:.6g} (failures rank worst), {ok}"
    return f"no value, {ok}"
