"""Statistics of one group over its seeds, with intervals whose coverage is checked by simulation.

Every run of a group counts. A failed run (diverged, failed, cancelled — and, for
``steps_to_target``, a run that never reached its target) is the worst outcome in the metric's
direction (:func:`analysis.records.outcome`): it ranks last in every quantile, and a mean over a
group with a failure is undefined (``None``) with the failure count beside it, never the mean of
the survivors. The success rate, with its interval, is reported next to every location statistic.

Intervals (95 %; the output names the method of each, and at n = 1 there is none):

* mean — Student-t, ``x̄ ± t_{0.975, n−1} · s / √n`` (exact for normal data);
* median — order statistics ``[x_(l), x_(n+1−l)]``, whose coverage ``1 − 2·P(B ≤ l − 1)``,
  ``B ~ Binomial(n, ½)``, holds for any continuous distribution. Below n = 6 no pair of order
  statistics reaches 95 % (n = 3: [min, max] covers 75 %), so the widest one is given with its
  exact level;
* success rate — Clopper–Pearson (exact binomial), never below its nominal level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from itertools import repeat
from typing import Any

import numpy as np
from scipy import stats

from analysis.groups import Group, fill_values
from analysis.records import (
    STACK_ROWS,
    blocks,
    curve_of,
    direction_sign,
    floats,
    json_list,
    json_num,
    run_state,
)

CONFIDENCE = 0.95
MEAN_METHOD = "student-t"
MEDIAN_METHOD = "order statistics (exact binomial)"
RATE_METHOD = "clopper-pearson"
NO_INTERVAL = "n = 1: no interval"
#: The runs a sweep's group usually has (3 to 5 seeds): :func:`fill_deterministic` stacks the
#: curves of ``STACK_ROWS // TYPICAL_SEEDS`` groups at a time, about :data:`STACK_ROWS` curves.
TYPICAL_SEEDS = 4


@lru_cache(maxsize=4096)
def _t_quantile(df: int, level: float) -> float:
    return float(stats.t.ppf(0.5 + level / 2, df))


#: A sample's mean, standard deviation (ddof = 1) and whether all its values are equal.
Moments = tuple[float, float, bool]


def moments(x: np.ndarray) -> Moments:
    """:data:`Moments` of at least two finite values."""
    # all equal: the std of equal floats can round to a tiny non-zero
    return float(x.mean()), float(x.std(ddof=1)), bool(np.ptp(x) == 0)


def mean_interval(x: np.ndarray, level: float = CONFIDENCE) -> tuple[float, float] | None:
    """Student-t interval of the mean of finite values; ``None`` for fewer than two; all-equal
    values give the exact point ``(v, v)``."""
    return _t_interval(moments(x), x.size, level) if x.size >= 2 else None


def _t_interval(m: Moments, n: int, level: float) -> tuple[float, float]:
    mean, sd, equal = m
    if equal:
        return mean, mean
    half = _t_quantile(n - 1, level) * sd / math.sqrt(n)
    return mean - half, mean + half


@lru_cache(maxsize=4096)
def median_rank(n: int, level: float = CONFIDENCE) -> tuple[int, float]:
    """The order-statistic interval of the median at n: (l, exact coverage) of
    ``[x_(l), x_(n+1−l)]`` — the largest l whose coverage reaches ``level``, else l = 1."""
    best = (1, 1.0 - 2.0 * float(stats.binom.cdf(0, n, 0.5)))
    for l_ in range(2, (n + 1) // 2 + 1):
        coverage = 1.0 - 2.0 * float(stats.binom.cdf(l_ - 1, n, 0.5))
        if coverage < level:
            break
        best = (l_, coverage)
    return best


@lru_cache(maxsize=65536)
def rate_interval(k: int, n: int, level: float = CONFIDENCE) -> tuple[float, float] | None:
    """Clopper–Pearson interval of a proportion k / n (``None`` for n = 0): the beta quantiles
    ``B(α/2; k, n − k + 1)`` and ``B(1 − α/2; k + 1, n − k)``, 0 and 1 at the ends."""
    if n == 0:
        return None
    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def badness_quantile(bad: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-quantile (linear interpolation, numpy's default) of ascending badness values where a
    failure is ``+inf``: a quantile that touches a failure is itself a failure."""
    pos = q * (len(bad) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    frac = pos - lo
    a, b = float(bad[lo]), float(bad[hi])
    if math.isinf(a) or (frac > 0 and math.isinf(b)):
        return math.inf
    return a + frac * (b - a)


def describe_many(samples: Sequence[Sequence[float | None]], metric: str) -> list[dict[str, Any]]:
    """:func:`describe` of each sample, equal to it bit for bit: the samples of at least two
    values, all finite, are described per sample size at once by :func:`_describe_rows` (a
    sweep's groups mostly share one size); the means and standard deviations of other samples
    without a failure come from one NumPy reduction per size (a row of a C-ordered matrix is
    reduced as the 1-D sample is)."""
    present = [[float(v) for v in values if v is not None] for values in samples]
    by_size: dict[int, list[int]] = {}
    for i, p in enumerate(present):
        if len(p) >= 2 and not any(math.isinf(v) for v in p):
            by_size.setdefault(len(p), []).append(i)
    found: list[Moments | None] = [None] * len(samples)
    out: list[dict[str, Any] | None] = [None] * len(samples)
    for n, rows in by_size.items():
        x = np.array([present[i] for i in rows], dtype=np.float64)
        finite = np.asarray(np.isfinite(x).all(axis=1))
        whole = [i for i, ok in zip(rows, finite.tolist(), strict=True) if ok]
        missing = [len(samples[i]) - n for i in whole]
        for i, described in zip(whole, _describe_rows(x[finite], missing, metric), strict=True):
            out[i] = described
        rest, x = [i for i in rows if out[i] is None], x[~finite]
        means, sds = x.mean(axis=1), x.std(axis=1, ddof=1)
        equal = x.max(axis=1) == x.min(axis=1)
        for j, i in enumerate(rest):
            found[i] = (float(means[j]), float(sds[j]), bool(equal[j]))
    return [
        d if d is not None else describe(v, metric, m)
        for d, v, m in zip(out, samples, found, strict=True)
    ]


def _row_quantile(bad: np.ndarray, q: float) -> np.ndarray:
    """:func:`badness_quantile` of each row of finite ascending values (its very arithmetic)."""
    pos = q * (bad.shape[1] - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    frac = pos - lo
    a, b = bad[:, lo], bad[:, hi]
    return a + frac * (b - a)


def _describe_rows(x: np.ndarray, missing: Sequence[int], metric: str) -> list[dict[str, Any]]:
    """:func:`describe` of each row of ``x`` (finite values, at least two a row; ``missing``: the
    values each row's sample left out), with the operations ``describe`` applies to one sample
    applied along the rows: a stable sort orders a row as ``sorted`` does (−0.0 and 0.0 kept in
    their order), the quantiles, order statistics and moments are the same float arithmetic.
    :func:`_description` makes each row's dict, as it does ``describe``'s."""
    sign = direction_sign(metric)
    n = x.shape[1]
    bad = np.sort(sign * x, axis=1, kind="stable")
    with np.errstate(over="ignore", invalid="ignore"):  # as describe's Python floats: silently
        q25, median, q75 = (_row_quantile(bad, q) for q in (0.25, 0.5, 0.75))
        iqr = q75 - q25
    lo_q, hi_q = (q25, q75) if sign > 0 else (q75, q25)
    least, most = (bad[:, 0], bad[:, -1]) if sign > 0 else (bad[:, -1], bad[:, 0])
    l_, level = median_rank(n)
    lo_b, hi_b = bad[:, l_ - 1], bad[:, n - l_]
    low, high = (lo_b, hi_b) if sign > 0 else (hi_b, lo_b)
    back = lambda b: json_list(sign * b)  # noqa: E731 — badness back to the metric's scale
    medians = zip(back(low), back(high), repeat(level, len(x)), strict=True)
    quartiles = zip(back(lo_q), back(hi_q), json_list(iqr), strict=True)
    ends = zip(back(least), back(most), strict=True)
    means = x.mean(axis=1)
    sds = x.std(axis=1, ddof=1).tolist()
    equal = (x.max(axis=1) == x.min(axis=1)).tolist()
    note = _median_note(n, level)
    out = []
    for mean, sd, eq, gone, shown, mid, median_ci, quartile, end in zip(
        means.tolist(),
        sds,
        equal,
        missing,
        json_list(means),
        back(median),
        medians,
        quartiles,
        ends,
        strict=True,
    ):
        ci = _t_interval((mean, sd, eq), n, CONFIDENCE)
        out.append(
            _description(
                n,
                0,
                gone,
                note,
                mean=shown,
                ci=(json_num(ci[0]), json_num(ci[1])),
                median=mid,
                median_ci=median_ci,
                quartiles=quartile,
                ends=end,
            )
        )
    return out


def _median_note(n: int, level: float) -> str | None:
    """Why the median interval of n values falls short of 95 % (``None`` where it does not)."""
    if level < CONFIDENCE:
        return f"median interval [min, max] covers {level:.0%} at n = {n}, not 95%"
    return None


#: ``(low, high)`` of an interval, each ``None`` where it is not finite.
Interval = tuple[float | None, float | None]
#: ``(low, high, exact level)`` of the median's order-statistic interval.
MedianInterval = tuple[float | None, float | None, float]


def _description(
    n: int,
    failed: int,
    missing: int,
    note: str | None,
    *,
    mean: float | None = None,
    ci: Interval | None = None,
    median: float | None = None,
    median_ci: MedianInterval | None = None,
    quartiles: tuple[float | None, float | None, float | None] = (None, None, None),
    ends: Interval = (None, None),
) -> dict[str, Any]:
    """:func:`describe`'s dict — its keys, in their order, are written here alone — from its
    numbers, already on the metric's scale (``None`` where not finite or not computed): the mean
    and its interval ``ci``; the median and ``median_ci`` (low, high, exact level); the
    ``quartiles`` (q25, q75, iqr) and ``ends`` (min, max). The success rate over the n runs, and
    its interval, follow from n and ``failed``; an interval given is named by its method."""
    rate_ci = rate_interval(n - failed, n)
    rate_low, rate_high = rate_ci or (None, None)
    low, high = ci or (None, None)
    median_low, median_high, level = median_ci or (None, None, None)
    return {
        "n": n,
        "n_failed": failed,
        "n_missing": missing,
        "success_rate": (n - failed) / n if n else None,
        "success_ci_low": rate_low,
        "success_ci_high": rate_high,
        "success_ci_method": RATE_METHOD if rate_ci else None,
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "ci_method": MEAN_METHOD if ci else None,
        "median": median,
        "median_ci_low": median_low,
        "median_ci_high": median_high,
        "median_ci_level": level,
        "median_ci_method": MEDIAN_METHOD if median_ci else None,
        "q25": quartiles[0],
        "q75": quartiles[1],
        "iqr": quartiles[2],
        "min": ends[0],
        "max": ends[1],
        "note": note,
    }


def describe(
    values: Sequence[float | None], metric: str, known: Moments | None = None
) -> dict[str, Any]:
    """A group's ``metric`` over its runs' :func:`~analysis.records.outcome` values.

    ``n`` counts the runs in the statistic (finished, failures included), ``n_failed`` the
    failures among them, ``n_missing`` the runs left out (pending, or without this metric).
    ``mean`` and its interval are ``None`` as soon as one run failed; quantiles, ``min`` and
    ``max`` are ``None`` where they land on a failure (the worst end). ``note`` says in words why
    something is missing.
    """
    sign = direction_sign(metric)
    present = [float(v) for v in values if v is not None]
    n = len(present)
    failed = sum(1 for v in present if math.isinf(v))
    missing = len(values) - n
    if n == 0:
        return _description(n, failed, missing, "no finished run")
    notes: list[str] = []
    bad = sorted(sign * v for v in present)  # ascending badness, failures (+inf) last
    back = lambda b: json_num(sign * b)  # noqa: E731 — badness back to the metric's scale
    q25, median, q75 = (badness_quantile(bad, q) for q in (0.25, 0.5, 0.75))
    lo_q, hi_q = (q25, q75) if sign > 0 else (q75, q25)
    mean: float | None = None
    ci: Interval | None = None
    if failed:
        notes.append(f"{failed} of {n} runs failed: no mean (failures rank worst)")
        if math.isinf(median):
            notes.append("the median is a failure")
    elif n == 1:
        mean = json_num(present[0])
    else:
        m = known or moments(np.asarray(present))
        mean = json_num(m[0])
        t = _t_interval(m, n, CONFIDENCE)
        ci = json_num(t[0]), json_num(t[1])
    median_ci: MedianInterval | None = None
    if n >= 2:
        l_, level = median_rank(n)
        lo_b, hi_b = float(bad[l_ - 1]), float(bad[n - l_])
        low, high = (lo_b, hi_b) if sign > 0 else (hi_b, lo_b)
        median_ci = back(low), back(high), level
        short = _median_note(n, level)
        if short:
            notes.append(short)
    else:
        notes.append(NO_INTERVAL)
    return _description(
        n,
        failed,
        missing,
        "; ".join(notes) or None,
        mean=mean,
        ci=ci,
        median=back(median),
        median_ci=median_ci,
        quartiles=(back(lo_q), back(hi_q), json_num(q75 - q25)),
        ends=(back(bad[0] if sign > 0 else bad[-1]), back(bad[-1] if sign > 0 else bad[0])),
    )


def describe_groups(groups: Sequence[Group], metrics: Sequence[str]) -> None:
    """Compute (:func:`describe_many`) what :func:`group_describe` returns for every group and
    metric at once."""
    for metric in metrics:
        todo = [g for g in groups if ("describe", metric) not in g.memo]
        fill_values(todo, metric)
        for g, out in zip(
            todo, describe_many([g.values(metric) for g in todo], metric), strict=True
        ):
            g.memo["describe", metric] = out


def group_describe(group: Group, metric: str) -> dict[str, Any]:
    """:func:`describe` of the group's outcomes of ``metric``, computed once per group."""
    key = ("describe", metric)
    if key not in group.memo:
        group.memo[key] = describe(group.values(metric), metric)
    return dict(group.memo[key])


def group_rates(group: Group) -> dict[str, Any]:
    """Success over the group's finished runs: not failed and, with a target loss, reaching it;
    ``diverged_rate`` over all its runs. With the success rate's Clopper–Pearson interval."""
    if "rates" not in group.memo:
        group.memo["rates"] = _group_rates(group)
    return dict(group.memo["rates"])


def _group_rates(group: Group) -> dict[str, Any]:
    finished = [r for r in group.records if run_state(r) != "pending"]
    has_target = any(r["spec"].get("target_loss") is not None for r in group.records)
    ok = [
        run_state(r) == "done" and (not has_target or r.get("steps_to_target") is not None)
        for r in finished
    ]
    n = len(finished)
    ci = rate_interval(sum(ok), n)
    return {
        "n_finished": n,
        "n_failed": sum(run_state(r) == "failed" for r in finished),
        "success_rate": sum(ok) / n if n else None,
        "success_ci_low": ci[0] if ci else None,
        "success_ci_high": ci[1] if ci else None,
        "diverged_rate": sum(bool(r.get("diverged")) for r in group.records) / len(group.records),
    }


def is_deterministic(group: Group) -> bool:
    """Whether every seed produced the very same run: at least two finished runs, none failed,
    identical loss curves (or, without curves, identical final and best losses). The spread is
    then zero by construction and more seeds add nothing."""
    if "deterministic" not in group.memo:
        group.memo["deterministic"] = _is_deterministic(group)
    return bool(group.memo["deterministic"])


def fill_deterministic(groups: Sequence[Group]) -> None:
    """:func:`is_deterministic` of every group at once, equal to it group by group: the loss
    curves of the groups' candidate runs (at least two finished, none failed) are stacked per
    length, a block of groups at a time, and each compared with its group's first (NaN equal to
    NaN) in one NumPy pass; a group whose curves are missing or differ in length is decided one
    by one."""
    todo = [g for g in groups if "deterministic" not in g.memo]
    by_size: dict[int, list[tuple[Group, list[np.ndarray]]]] = {}
    for g in todo:
        done = [r for r in g.records if run_state(r) != "pending"]
        if len(done) < 2 or any(run_state(r) == "failed" for r in done):
            g.memo["deterministic"] = False
            continue
        curves = [curve_of(r, "losses") for r in done]
        if any(c is None for c in curves) or len({len(c) for c in curves}) > 1:
            g.memo["deterministic"] = _is_deterministic(g)
            continue
        by_size.setdefault(len(curves[0]), []).append((g, [floats(c) for c in curves]))
    for entries in (b for e in by_size.values() for b in blocks(e, STACK_ROWS // TYPICAL_SEEDS)):
        y = np.stack([c for _, curves in entries for c in curves])
        sizes = np.array([len(c) for _, c in entries])
        first = np.repeat(np.cumsum(sizes) - sizes, sizes)  # each row's group's first row
        ref = y[first]
        same = ((y == ref) | (np.isnan(y) & np.isnan(ref))).all(axis=1)
        start = 0
        for g, curves in entries:
            g.memo["deterministic"] = bool(same[start : start + len(curves)].all())
            start += len(curves)


def _is_deterministic(group: Group) -> bool:
    done = [r for r in group.records if run_state(r) != "pending"]
    if len(done) < 2 or any(run_state(r) == "failed" for r in done):
        return False
    curves = [curve_of(r, "losses") for r in done]
    if all(c is not None for c in curves):
        first = floats(curves[0])
        return all(np.array_equal(first, floats(c), equal_nan=True) for c in curves[1:])
    keys = ("final_loss", "best_loss")
    return all(all(r.get(k) == done[0].get(k) for k in keys) for r in done[1:])


DETERMINISTIC_NOTE = (
    "all seeds produced the same curve (a deterministic problem and start): the spread is zero by "
    "construction and more seeds add nothing"
)
