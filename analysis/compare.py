"""Solvers against a baseline solver, paired over seeds, and the rule that picks the best.

Per problem, each solver's runs are paired with the baseline's by seed (a failed run is the worst
value in the metric's direction, so a pair where only one side failed is a win for the other).
The test is Wilcoxon's signed-rank test from 6 pairs up, and below that the exact sign-flip
permutation test of the same statistic (all 2ⁿ sign assignments). No paired test can do better
than ``p = 2 / 2ⁿ`` (n = 3: 0.25), so when even that, Holm-corrected, cannot reach α the output
says so and how many seeds would. Effect size: the matched-pairs rank-biserial correlation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

from analysis.groups import Group, problems_of, solvers_of
from analysis.records import canonical, direction_sign, json_num
from analysis.stats import DETERMINISTIC_NOTE, badness_quantile, group_rates, is_deterministic

ALPHA = 0.05
#: Below this many pairs the exact sign-flip test replaces Wilcoxon's normal approximation.
EXACT_BELOW = 6
SIGN_FLIP = "exact sign-flip (signed ranks)"
WILCOXON = "wilcoxon signed-rank"


def best_rule(metric: str) -> str:
    return (
        f"highest success rate, then best median {metric} (failures count as the worst value), "
        "then label"
    )


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
    """Matched-pairs rank-biserial correlation ``(T⁺ − T⁻) / (T⁺ + T⁻)`` (:func:`signed_ranks`).

    The effect size that goes with the Wilcoxon signed-rank test, zeros dropped: +1 when every
    difference is positive, −1 when every one is negative. ``None`` when all differences are 0.
    """
    d = [v for v in differences if v != 0]
    return signed_ranks(d)[2] if d else None


def signed_ranks(d: Sequence[float]) -> tuple[list[float], float, float]:
    """The ranks of ``|dᵢ|`` (:func:`average_ranks`) of differences none of which is 0, the
    signed-rank statistic ``T = T⁺ − T⁻ = Σ sign(dᵢ)·rank|dᵢ|`` and the rank-biserial correlation
    ``T / (T⁺ + T⁻)``, where ``T±`` sum the ranks of the positive / negative differences (sums of
    half-integers: exact in any order). A NaN difference is neither positive nor negative: when
    every one is NaN the correlation is NaN."""
    ranks = average_ranks(np.abs(np.asarray(d, dtype=np.float64))).tolist()
    plus = sum(r for r, v in zip(ranks, d, strict=True) if v > 0)
    minus = sum(r for r, v in zip(ranks, d, strict=True) if v < 0)
    return ranks, plus - minus, (plus - minus) / (plus + minus) if plus + minus else math.nan


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1…n of ``values``, ties sharing the mean of their ranks (``scipy.stats.rankdata``'s
    default, without its per-call overhead: a summary ranks thousands of small samples)."""
    v = np.asarray(values, dtype=np.float64).tolist()
    order = sorted(range(len(v)), key=v.__getitem__)
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2.0 + 1.0
        i = j + 1
    return np.array(ranks, dtype=np.float64)


@lru_cache(maxsize=EXACT_BELOW)
def _sign_patterns(n: int) -> np.ndarray:
    """All 2ⁿ sign assignments of n pairs, one per row."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    return np.where(bits == 1, 1.0, -1.0)


def sign_flip_p(d: np.ndarray) -> tuple[float, float]:
    """The exact two-sided sign-flip test of the signed-rank sum ``T = Σ sign(dᵢ)·rank|dᵢ|``
    (zeros dropped): the share of all 2ⁿ sign assignments whose ``|T|`` reaches the observed one.
    Returns (T, p)."""
    d = d[d != 0]
    ranks, observed, _ = signed_ranks(d.tolist())
    null = np.abs(_sign_patterns(d.size) @ np.array(ranks))
    return observed, float(np.mean(null >= abs(observed) - 1e-9))


def seeds_needed(m: int, alpha: float = ALPHA) -> int:
    """The fewest pairs whose smallest two-sided p, ``2 / 2ⁿ``, times m (Holm's factor for the
    smallest of m p-values) is ≤ α."""
    return max(1, math.ceil(1.0 + math.log2(max(m, 1) / alpha)))


def paired_test(
    group: Mapping[int, float | None], baseline: Mapping[int, float | None]
) -> dict[str, Any]:
    """Paired test of ``group − baseline`` over the seeds both have (see the module docstring).

    Values are outcomes (a failure is ±inf, the metric's worst); a seed where both failed, or
    either has no value, is dropped. An infinite difference ranks as the largest magnitude.
    """
    diffs = _differences(group, baseline)
    d = np.asarray(diffs, dtype=np.float64)
    out: dict[str, Any] = {"n_pairs": int(d.size), "median_diff": None, "statistic": None}
    out.update(p_value=None, test=None, effect=rank_biserial(diffs) if diffs else None)
    if not diffs:
        return out
    out["median_diff"] = json_num(float(np.median(d)))
    if np.all(d == 0):
        out.update(statistic=0.0, p_value=1.0, test=SIGN_FLIP)
        return out
    # Only the signs and the ranks of |d| matter: an infinite difference becomes twice the
    # largest finite magnitude, which keeps every rank (and tie) as it was.
    big = 2.0 * np.abs(d[np.isfinite(d)]).max(initial=0.5)
    d = np.where(np.isfinite(d), d, np.sign(d) * big)
    if d.size < EXACT_BELOW:
        statistic, p = sign_flip_p(d)
        out.update(statistic=statistic, p_value=p, test=SIGN_FLIP)
    else:
        res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="auto")
        out.update(statistic=float(res.statistic), p_value=float(res.pvalue), test=WILCOXON)
    return out


def _differences(
    group: Mapping[int, float | None], baseline: Mapping[int, float | None]
) -> list[float]:
    """``group − baseline`` per common seed, in seed order, without the seeds where either has
    no value or both failed."""
    diffs: list[float] = []
    for seed in sorted(set(group) & set(baseline)):
        a, b = group[seed], baseline[seed]
        if a is None or b is None or (math.isinf(a) and a == b):
            continue
        diffs.append(a - b)
    return diffs


def paired_tests(
    pairs: Sequence[tuple[Mapping[int, float | None], Mapping[int, float | None]]],
) -> list[dict[str, Any]]:
    """:func:`paired_test` of each (group, baseline) pair, equal to it.

    A pair of 1 to :data:`EXACT_BELOW` − 1 differences, none zero or NaN (a sweep's usual pair),
    is tested here: the ranks of ``|d|`` are taken once, for the effect and for the test (an
    infinite difference ranks last either way), the median is the middle of the sorted
    differences (what ``np.median`` selects and averages), and the sign-flip nulls of all such
    pairs with as many differences come from one product of the sign patterns with their
    stacked ranks — sums of half-integers, exact in any order, as are the counts behind each p.
    Any other pair is :func:`paired_test` itself."""
    out: list[dict[str, Any]] = []
    by_size: dict[int, list[tuple[int, np.ndarray, float]]] = {}
    for group, baseline in pairs:
        diffs = _differences(group, baseline)
        if not 0 < len(diffs) < EXACT_BELOW or any(v == 0 or math.isnan(v) for v in diffs):
            out.append(paired_test(group, baseline))
            continue
        n = len(diffs)
        ranks, statistic, effect = signed_ranks(diffs)
        ordered = sorted(diffs)
        median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
        by_size.setdefault(n, []).append((len(out), np.array(ranks), abs(statistic)))
        out.append(
            {
                "n_pairs": n,
                "median_diff": json_num(median),
                "statistic": statistic,
                "p_value": None,
                "test": SIGN_FLIP,
                "effect": effect,
            }
        )
    for n, tests in by_size.items():
        nulls = np.abs(np.stack([r for _, r, _ in tests]) @ _sign_patterns(n).T)
        observed = np.array([o for _, _, o in tests])
        p = np.mean(nulls >= observed[:, None] - 1e-9, axis=1)
        for (k, _, _), value in zip(tests, p.tolist(), strict=True):
            out[k]["p_value"] = value
    return out


def _schedule_side(group: Group) -> str:
    return canonical({k: v for k, v in group.solver.items() if k != "optimizer"})


def compare(
    groups: Sequence[Group], baseline_solvers: Sequence[str], metric: str
) -> list[dict[str, Any]]:
    """Every solver against the baseline, per problem, Holm-corrected within each comparison set.

    With one baseline solver every other group of the problem is compared with it; with several
    (one optimizer under several schedules, see :func:`analysis.groups.resolve_solvers`) each
    group is compared with the baseline under the same schedule. ``effect`` is the rank-biserial
    correlation of ``solver − baseline`` (for a lower-is-better metric, negative = the solver is
    better); ``verdict`` is ``better`` / ``worse`` when the Holm-adjusted p is below α, ``n.s.``
    otherwise, and ``equal`` / ``better`` / ``worse`` from the exact difference when both groups
    are deterministic (every seed the same run: a test would count repeats as evidence).
    """
    sign = direction_sign(metric)
    base_set = set(baseline_solvers)
    out = []
    for pid, plabel, pgroups in problems_of(groups):
        for base in (g for g in pgroups if g.solver_id in base_set):
            others = [
                g
                for g in pgroups
                if g.solver_id not in base_set
                and (len(base_set) == 1 or _schedule_side(g) == _schedule_side(base))
            ]
            out.append(_comparison(pid, plabel, base, others, metric, sign))
    return out


def _comparison(
    pid: str, plabel: str, base: Group, others: Sequence[Group], metric: str, sign: float
) -> dict[str, Any]:
    base_values = base.by_seed(metric)
    base_det = is_deterministic(base)
    pairs = []
    results = paired_tests([(g.by_seed(metric), base_values) for g in others])
    for g, result in zip(others, results, strict=True):
        rates = group_rates(g)
        pairs.append(
            {
                "group_id": g.id,
                "solver_id": g.solver_id,
                "solver": g.solver_label,
                "success_rate": rates["success_rate"],
                "deterministic": base_det and is_deterministic(g),
                **result,
            }
        )
    tested = [p for p in pairs if not p["deterministic"]]
    for pair, adjusted in zip(tested, holm([p["p_value"] for p in tested]), strict=True):
        pair["p_holm"] = adjusted
        effect = pair["effect"]
        significant = adjusted is not None and adjusted < ALPHA and effect
        pair["verdict"] = ("worse" if sign * effect > 0 else "better") if significant else "n.s."
        n, m = pair["n_pairs"], len(tested)
        if n and m * 2.0 ** (1 - n) > ALPHA:
            pair["note"] = (
                f"{n} seed{'s' if n > 1 else ''} cannot reach α = {ALPHA:g}: the smallest "
                "possible p is "
                f"{2.0 ** (1 - n):.3g}{f' (× {m} comparisons, Holm)' if m > 1 else ''}; "
                f"{seeds_needed(m)} seeds would be needed"
            )
        else:
            pair["note"] = None
    for pair in pairs:
        if pair["deterministic"]:
            diff = pair["median_diff"]
            worse = diff is not None and sign * diff > 0
            pair.update(p_value=None, p_holm=None, test=None, note=DETERMINISTIC_NOTE)
            pair["verdict"] = "equal" if diff == 0 else "worse" if worse else "better"
    return {
        "problem_id": pid,
        "problem": plabel,
        "baseline_group_id": base.id,
        "baseline": base.solver_label,
        "baseline_success_rate": group_rates(base)["success_rate"],
        "alpha": ALPHA,
        "pairs": pairs,
    }


def best_key(group: Group, metric: str) -> tuple[float, float, str]:
    """Sort key of :func:`best_rule`: (−success rate, median badness, label)."""
    key = ("best_key", metric)
    if key not in group.memo:
        group.memo[key] = _best_key(group, metric)
    return tuple(group.memo[key])  # type: ignore[return-value]


def _best_key(group: Group, metric: str) -> tuple[float, float, str]:
    values = [v for v in group.values(metric) if v is not None]
    rate = group_rates(group)["success_rate"]
    median = (
        badness_quantile(np.sort(direction_sign(metric) * np.asarray(values)), 0.5) if values else 0
    )
    return (-(rate or 0.0), median if values else math.inf, group.solver_label)


def default_baseline(groups: Sequence[Group], metric: str) -> str | None:
    """The best solver by :func:`best_rule` over the problems: highest mean success rate, then
    the best mean rank of its groups' medians (failures worst) within each problem, then label."""
    solvers = solvers_of(groups)
    if not solvers:
        return None
    rates: dict[str, list[float]] = {sid: [] for sid, _ in solvers}
    ranks: dict[str, list[float]] = {sid: [] for sid, _ in solvers}
    for _, _, pgroups in problems_of(groups):
        keys = [best_key(g, metric) for g in pgroups]
        order = stats.rankdata([k[1] for k in keys])
        for g, k, r in zip(pgroups, keys, order, strict=True):
            rates[g.solver_id].append(-k[0])
            ranks[g.solver_id].append(float(r))
    return min(
        solvers,
        key=lambda s: (-float(np.mean(rates[s[0]])), float(np.mean(ranks[s[0]])), s[1]),
    )[0]
