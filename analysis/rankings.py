"""Rankings across solvers: performance profiles (Dolan–Moré) and runtime ECDFs (COCO)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from analysis.groups import Group, problems_of, solvers_of
from analysis.records import (
    AUC,
    HIGHER_IS_BETTER,
    LOG_FLOOR,
    Curve,
    SummaryError,
    curve_of,
    floats,
    metric_value,
    num_or_int,
)

#: AlgoPerf integrates performance profiles over τ ∈ [1, 4].
TAU_MAX = 4.0


def performance_profile(
    costs: np.ndarray, tau_max: float = TAU_MAX
) -> tuple[list[float], list[list[float]], list[float]]:
    """Dolan–Moré profiles of a (instances × solvers) cost table; ``inf`` marks a failure.

    ``r[p, s] = c[p, s] / min_s c[p, s]`` and ``ρ_s(τ) = |{p : r[p, s] ≤ τ}| / n_p``: the share
    of instances solver ``s`` solves within a factor τ of the best solver. An instance that no
    solver solves stays in the denominator (ratio ∞ for all). Returns the breakpoints τ (1 and
    every finite ratio, ascending — ρ is a right-continuous step function constant in between),
    ρ per solver at those τ, and each solver's AlgoPerf-style score
    ``(1 / (τ_max − 1)) ∫_1^τ_max ρ_s(τ) dτ`` (1 = best on every instance, 0 = never within τ_max).
    """
    c = np.asarray(costs, dtype=np.float64)
    best = c.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(np.isfinite(best), c / best, np.inf)
    finite = ratios[np.isfinite(ratios)]
    taus = np.unique(np.concatenate([[1.0], finite]))
    n = c.shape[0]
    rho = [
        [float(np.count_nonzero(ratios[:, s] <= t)) / n for t in taus] for s in range(c.shape[1])
    ]
    scores = []
    for s in range(c.shape[1]):
        r = np.sort(ratios[:, s])
        # ∫_1^τmax ρ dτ = Σ_p (τmax − max(r_p, 1)) / n over instances with r_p < τmax.
        inside = r[r < tau_max]
        scores.append(float(np.sum(tau_max - np.maximum(inside, 1.0)) / (n * (tau_max - 1.0))))
    return [float(t) for t in taus], rho, scores


def _cost(record: Mapping[str, Any], metric: str) -> float:
    """The cost a profile compares: steps to target (at least 1), or a floored suboptimality."""
    if record.get("diverged"):
        return math.inf
    if metric == "steps_to_target":
        v = record.get("steps_to_target")
        return math.inf if v is None else max(float(v), 1.0)
    value = metric_value(record, metric)
    if value is None:
        return math.inf
    if metric in ("final_loss", "best_loss"):
        value -= record.get("f_star") or 0.0
    return max(value, LOG_FLOOR)


def _profile_json(solvers: Sequence[tuple[str, str]], costs: np.ndarray) -> dict[str, Any]:
    taus, rho, scores = performance_profile(costs)
    return {
        "tau": taus,
        "instances": int(costs.shape[0]),
        "series": [
            {"solver_id": sid, "solver": label, "rho": rho[i], "score": scores[i]}
            for i, (sid, label) in enumerate(solvers)
        ],
    }


def profiles(groups: Sequence[Group], metric: str) -> dict[str, Any]:
    """Performance profiles per problem (instances = seeds) and across problems (problem × seed)."""
    if metric == AUC or metric in HIGHER_IS_BETTER:
        raise SummaryError(f"a performance profile needs a positive cost; {metric!r} is not one")
    solvers = solvers_of(groups)
    sid_index = {sid: i for i, (sid, _) in enumerate(solvers)}
    per_problem = []
    all_rows: list[np.ndarray] = []
    for pid, plabel, pgroups in problems_of(groups):
        seeds = sorted({s for g in pgroups for s in g.seeds})
        table = np.full((len(seeds), len(solvers)), np.inf)
        row_of = {s: i for i, s in enumerate(seeds)}
        for g in pgroups:
            for rec in g.records:
                table[row_of[int(rec["spec"]["seed"])], sid_index[g.solver_id]] = _cost(rec, metric)
        all_rows.append(table)
        per_problem.append({"problem_id": pid, "problem": plabel, **_profile_json(solvers, table)})
    overall = _profile_json(solvers, np.vstack(all_rows))
    return {"metric": metric, "tau_max": TAU_MAX, "per_problem": per_problem, "overall": overall}


def first_hits(steps: Curve, values: Curve, targets: np.ndarray) -> np.ndarray:
    """For each target, the first step whose value is ≤ it (``inf`` if none): a run's runtimes."""
    y = floats(values)
    x = np.asarray(steps, dtype=np.float64)
    if y.size == 0:
        return np.full(targets.shape, np.inf)
    running = np.fmin.accumulate(np.where(np.isfinite(y), y, np.inf))
    idx = np.searchsorted(-running, -targets, side="left")
    return np.where(idx < y.size, x[np.minimum(idx, y.size - 1)], np.inf)


def target_ladder(starts: Sequence[float], bests: Sequence[float], count: int) -> np.ndarray:
    """``count`` targets log-spaced (descending) from below the worst start value to the best value
    any run reached, both floored at :data:`LOG_FLOOR` (COCO's ladder, scaled to the problem)."""
    hi = max(max(starts), LOG_FLOOR)
    lo = min(max(min(bests), LOG_FLOOR), hi)
    return np.logspace(math.log10(hi), math.log10(lo), count + 1)[1:]


def _ecdf_x(hits: Iterable[np.ndarray], last_step: float, max_points: int) -> np.ndarray:
    finite = [h[np.isfinite(h)] for h in hits]
    x = np.unique(np.concatenate([[0.0, last_step], *finite]))
    if x.size > max_points:
        x = x[np.unique(np.linspace(0, x.size - 1, max_points).round().astype(np.int64))]
    return x


def ecdfs(groups: Sequence[Group], *, n_targets: int = 51, max_points: int = 200) -> dict[str, Any]:
    """Runtime ECDFs: the share of (run, target) pairs reached by each step, per solver.

    Targets per problem are :func:`target_ladder` on the suboptimality ``f − f*`` (the loss when
    f* is unknown). Per problem every (run, target) pair of a solver weighs the same — a run with
    no curve yet (queued) reaches none; across problems every problem weighs the same (the mean
    of the per-problem fractions). Needs the loss curves.
    """
    solvers = solvers_of(groups)
    per_problem = []
    runtimes: list[dict[str, tuple[np.ndarray, int]]] = []
    last_steps: list[float] = []
    for pid, plabel, pgroups in problems_of(groups):
        curves: dict[str, list[tuple[Curve, np.ndarray]]] = {}
        starts, bests, last = [], [], 0.0
        for g in pgroups:
            curves[g.solver_id] = []
            for rec in g.records:
                if curve_of(rec, "eval_steps") is None:
                    continue
                y = floats(rec["losses"]) - (rec.get("f_star") or 0.0)
                curves[g.solver_id].append((rec["eval_steps"], y))
                ok = y[np.isfinite(y)]
                if ok.size:
                    starts.append(float(ok[0]))
                    bests.append(float(ok.min()))
                last = max(last, float(rec["eval_steps"][-1]))
        if not starts:
            continue
        targets = target_ladder(starts, bests, n_targets)
        hits = {
            g.solver_id: (
                np.concatenate(
                    [first_hits(x, list(y), targets) for x, y in curves[g.solver_id]]
                    or [np.empty(0)]
                ),
                len(g.records) * targets.size,
            )
            for g in pgroups
        }
        runtimes.append(hits)
        last_steps.append(last)
        xs = _ecdf_x((h for h, _ in hits.values()), last, max_points)
        per_problem.append(
            {
                "problem_id": pid,
                "problem": plabel,
                "targets": [float(t) for t in targets],
                "x": [num_or_int(v) for v in xs],
                "series": [
                    {"solver_id": sid, "solver": label, "y": _ecdf_y(hits.get(sid), xs)}
                    for sid, label in solvers
                ],
            }
        )
    overall: dict[str, Any] = {"x": [], "series": []}
    if runtimes:
        xs = _ecdf_x((h for f in runtimes for h, _ in f.values()), max(last_steps), max_points)
        overall = {
            "x": [num_or_int(v) for v in xs],
            "series": [
                {
                    "solver_id": sid,
                    "solver": label,
                    "y": np.mean([_ecdf_y(f.get(sid), xs) for f in runtimes], axis=0).tolist(),
                }
                for sid, label in solvers
            ],
        }
    return {"n_targets": n_targets, "per_problem": per_problem, "overall": overall}


def _ecdf_y(hits: tuple[np.ndarray, int] | None, xs: np.ndarray) -> list[float]:
    """Fraction of the ``denominator`` (run, target) pairs whose runtime is ≤ each x."""
    if hits is None:
        return [0.0] * xs.size
    times, denominator = hits
    counts = np.searchsorted(np.sort(times[np.isfinite(times)]), xs, side="right")
    return [float(c) / denominator for c in counts]
