"""Descriptive statistics of one group and paired tests of a solver against a baseline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from analysis.groups import Group, problems_of, solvers_of
from analysis.records import HIGHER_IS_BETTER, check_metric, json_num, succeeded

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap 95 % CI of the mean (scipy.stats.bootstrap, fixed seed → deterministic).

    The percentile method rather than scipy's default BCa: with the handful of seeds a benchmark
    has, BCa's jackknife acceleration is unstable and undefined for tied values, while the
    percentile interval always lies within [min, max] of the data. ``None`` for fewer than two
    values; all-equal values give the exact degenerate interval ``(v, v)``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=resamples,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def describe(values: Sequence[float | None]) -> dict[str, Any]:
    """n, mean, median, quartiles, IQR, min, max and the bootstrap CI of the mean.

    Computed over the values that exist (``None`` — a diverged run's loss, a target never reached
    — is left out; ``n_missing`` counts them).
    """
    present = [float(v) for v in values if v is not None]
    out: dict[str, Any] = {"n": len(present), "n_missing": len(values) - len(present)}
    if not present:
        keys = ("mean", "median", "q25", "q75", "iqr", "min", "max", "ci_low", "ci_high")
        out.update(dict.fromkeys(keys))
        return out
    x = np.asarray(present)
    q25, median, q75 = np.percentile(x, [25.0, 50.0, 75.0])
    ci = bootstrap_ci(x)
    out.update(
        mean=json_num(x.mean()),
        median=json_num(median),
        q25=json_num(q25),
        q75=json_num(q75),
        iqr=json_num(q75 - q25),
        min=json_num(x.min()),
        max=json_num(x.max()),
        ci_low=json_num(ci[0]) if ci else None,
        ci_high=json_num(ci[1]) if ci else None,
    )
    return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (``None`` entries are not tests and stay ``None``).

    With the m p-values sorted ascending, ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``;
    rejecting where ``p̃ ≤ α`` controls the family-wise error rate at α.
    """
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def rank_biserial(differences: Sequence[float]) -> float | None:
    """Matched-pairs rank-biserial correlation ``(T⁺ − T⁻) / (T⁺ + T⁻)``.

    ``T±`` are the sums of the (average) ranks of ``|d|`` over the positive / negative differences,
    zeros dropped — the effect size that goes with the Wilcoxon signed-rank test: +1 when every
    difference is positive, −1 when every one is negative. ``None`` when all differences are 0.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return None
    ranks = stats.rankdata(np.abs(d))
    plus, minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((plus - minus) / (plus + minus))


def paired_test(
    group: Mapping[int, float | None], baseline: Mapping[int, float | None]
) -> dict[str, Any]:
    """Wilcoxon signed-rank test of ``group − baseline`` over the seeds both have.

    A seed where exactly one side has no value (diverged, target never reached) counts as that side
    being worse: its difference is ±∞, which ranks as the largest magnitude. Seeds missing on both
    sides are dropped. All-zero differences give p = 1 (identical runs).
    """
    diffs: list[float] = []
    for seed in sorted(set(group) & set(baseline)):
        a, b = group[seed], baseline[seed]
        if a is None and b is None:
            continue
        diffs.append(math.inf if a is None else -math.inf if b is None else a - b)
    out: dict[str, Any] = {"n_pairs": len(diffs), "median_diff": None, "statistic": None}
    out.update(p_value=None, effect=rank_biserial(diffs) if diffs else None)
    if not diffs:
        return out
    d = np.asarray(diffs)
    out["median_diff"] = json_num(np.median(d))
    if np.all(d == 0):
        out.update(statistic=0.0, p_value=1.0)
        return out
    # The test uses only the signs and the ranks of |d|: an infinite difference becomes twice the
    # largest finite magnitude, which keeps every rank (and tie) as it was.
    big = 2.0 * np.abs(d[np.isfinite(d)]).max(initial=0.5)
    d = np.where(np.isfinite(d), d, np.sign(d) * big)
    res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="auto")
    out.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    return out


def compare(groups: Sequence[Group], baseline_solver: str, metric: str) -> list[dict[str, Any]]:
    """Every solver against the baseline solver, per problem, Holm-corrected within each problem.

    ``effect`` is the rank-biserial correlation of ``solver − baseline`` (for a lower-is-better
    metric, negative = the solver is better); ``verdict`` is ``better`` / ``worse`` when the
    Holm-adjusted p is below 0.05, else ``n.s.``.
    """
    check_metric(metric)
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
    out = []
    for pid, plabel, pgroups in problems_of(groups):
        base = next((g for g in pgroups if g.solver_id == baseline_solver), None)
        if base is None:
            continue
        base_values = base.by_seed(metric)
        pairs = []
        for g in pgroups:
            if g is base:
                continue
            result = paired_test(g.by_seed(metric), base_values)
            pairs.append(
                {"group_id": g.id, "solver_id": g.solver_id, "solver": g.solver_label, **result}
            )
        for pair, adjusted in zip(pairs, holm([p["p_value"] for p in pairs]), strict=True):
            pair["p_holm"] = adjusted
            effect = pair["effect"]
            if adjusted is not None and adjusted < 0.05 and effect:
                pair["verdict"] = "worse" if sign * effect > 0 else "better"
            else:
                pair["verdict"] = "n.s."
        out.append(
            {
                "problem_id": pid,
                "problem": plabel,
                "baseline_group_id": base.id,
                "baseline": base.solver_label,
                "pairs": pairs,
            }
        )
    return out


def default_baseline(groups: Sequence[Group], metric: str) -> str | None:
    """The solver with the best mean rank of its group median over the problems."""
    solvers = solvers_of(groups)
    if not solvers:
        return None
    ranks: dict[str, list[float]] = {sid: [] for sid, _ in solvers}
    for _, _, pgroups in problems_of(groups):
        medians = [median_or_worst(g, metric) for g in pgroups]
        order = stats.rankdata(medians)
        for g, r in zip(pgroups, order, strict=True):
            ranks[g.solver_id].append(float(r))
    return min(solvers, key=lambda s: (np.mean(ranks[s[0]]) if ranks[s[0]] else math.inf, s[1]))[0]


def median_or_worst(group: Group, metric: str) -> float:
    values = [v for v in group.values(metric) if v is not None]
    if not values:
        return math.inf
    m = float(np.median(values))
    return -m if metric in HIGHER_IS_BETTER else m


def rates(group: Group) -> dict[str, Any]:
    n = len(group.records)
    has_target = any(r["spec"].get("target_loss") is not None for r in group.records)
    return {
        "success_rate": sum(succeeded(r) for r in group.records) / n if has_target else None,
        "diverged_rate": sum(bool(r.get("diverged")) for r in group.records) / n,
    }
