"""Rankings across solvers: performance profiles (Dolan–Moré) and runtime ECDFs (COCO).

Both are computed sparsely — a solver only has costs and runtimes on the problems it ran on — so
they are linear in the number of runs (times the number of plotted points), however many
problems and solvers an experiment has.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from analysis.groups import Group, problems_of
from analysis.records import (
    AUC,
    HIGHER_IS_BETTER,
    Curve,
    SummaryError,
    blocks,
    canonical,
    curve_of,
    floats,
    metric_value,
    num_or_int,
    run_state,
)

#: AlgoPerf integrates performance profiles over τ ∈ [1, 4].
TAU_MAX = 4.0
#: A suboptimality at or below this counts as solved: every solver there ties at ratio 1 (COCO's
#: finest target precision), so float noise near the optimum is not read as a factor between
#: solvers.
SOLVED_FLOOR = 1e-8
#: COCO's target precisions: ``Δf = 10^k`` above f*, k from 1 down to −8.
TARGET_TOP, TARGET_BOTTOM = 1.0, -8.0
#: 46 targets: k = 1, 0.8, …, −8 (COCO's 0.2 spacing).
DEFAULT_TARGETS = 46
#: The most values NumPy adds one after another, left to right, in a sum along a row: its
#: pairwise summation adds fewer than 8 values in a plain loop, 8 or more in 8 interleaved partial
#: sums, whose order differs from that of any shorter sum (a row of 8 with 4 ratios below τ_max
#: is ``(a₀ + a₁) + (a₂ + a₃)``, the 4 ratios alone ``((a₀ + a₁) + a₂) + a₃``).
IN_ORDER_SUM = 7


def performance_profile(
    costs: np.ndarray, tau_max: float = TAU_MAX
) -> tuple[list[float], list[list[float]], list[float]]:
    """Dolan–Moré profiles of a dense (instances × solvers) cost table; ``inf`` marks a failure.

    ``r[p, s] = c[p, s] / min_s c[p, s]`` and ``ρ_s(τ) = |{p : r[p, s] ≤ τ}| / n_p``: the share
    of instances solver ``s`` solves within a factor τ of the best solver. An instance that no
    solver solves stays in the denominator (ratio ∞ for all). Returns the breakpoints τ (1 and
    every finite ratio up to ``tau_max``, ascending — ρ is a right-continuous step function
    constant in between), ρ per solver at those τ, and each solver's AlgoPerf-style score
    ``(1 / (τ_max − 1)) ∫_1^τ_max ρ_s(τ) dτ`` (1 = best on every instance, 0 = never within τ_max).
    """
    c = np.asarray(costs, dtype=np.float64)
    best = c.min(axis=1)
    columns = {str(s): c[:, s].tolist() for s in range(c.shape[1])}
    taus, rho, scores = _profile(
        columns, {s: best.tolist() for s in columns}, c.shape[0], tau_max, max_points=None
    )
    return taus, [rho[s] for s in columns], [scores[s] for s in columns]


def _profile(
    costs: Mapping[str, list[float]],
    bests: Mapping[str, list[float]],
    instances: int,
    tau_max: float,
    max_points: int | None,
) -> tuple[list[float], dict[str, list[float]], dict[str, float]]:
    """The profile from each solver's costs and the best cost of the same instances, both in the
    same order (sparse: a solver lists only instances of the problems it ran on).

    When every solver has as many instances (a sweep on one problem set), their sorted ratios
    are one matrix: sorted along rows (each row as ``np.sort`` sorts the list), searched row by
    row, the scores summed along rows where a row holds at most :data:`IN_ORDER_SUM` ratios
    (NumPy adds such a row left to right, as it adds the ratios below τ_max alone, so the
    instances at or past τ_max, added as zeros after those, change no sum)."""
    ratio_lists = [
        [
            c / b if math.isfinite(c) and math.isfinite(b) else math.inf
            for c, b in zip(cs, bests[sid], strict=True)
        ]
        for sid, cs in costs.items()
    ]
    sizes = {len(r) for r in ratio_lists}
    table: np.ndarray | None = None
    if len(sizes) == 1:
        table = np.array(ratio_lists, dtype=np.float64).reshape(len(ratio_lists), -1)
        table.sort(axis=1)
        finite = table[np.isfinite(table)]
        rows = list(table)
    else:
        rows = [np.sort(r) for r in ratio_lists]
        finite = np.concatenate([r[np.isfinite(r)] for r in rows] or [np.empty(0)])
    taus = np.unique(np.concatenate([[1.0], finite[finite <= tau_max]]))
    if max_points is not None and taus.size > max_points:
        taus = taus[np.unique(np.linspace(0, taus.size - 1, max_points).round().astype(np.int64))]
    counts = np.empty((len(rows), taus.size), dtype=np.int64)
    for i, r in enumerate(rows):
        counts[i] = np.searchsorted(r, taus, side="right")
    rho = dict(zip(costs, (counts / instances).tolist(), strict=True))
    # ∫_1^τmax ρ dτ = Σ_p (τmax − max(r_p, 1)) / n over instances with r_p < τmax.
    scale = instances * (tau_max - 1)
    if table is not None and table.shape[1] <= IN_ORDER_SUM:
        areas = np.where(table < tau_max, tau_max - np.maximum(table, 1.0), 0.0).sum(axis=1)
        scores = dict(zip(costs, (areas / scale).tolist(), strict=True))
    else:
        scores = {
            sid: float(np.sum(tau_max - np.maximum(r[r < tau_max], 1.0)) / scale)
            for sid, r in zip(costs, rows, strict=True)
        }
    return taus.tolist(), rho, scores


def _cost(record: Mapping[str, Any], metric: str) -> float:
    """The cost a profile compares: steps to target (at least 1), or the suboptimality
    (``value − f*``, f* taken as 0 when unknown) floored at :data:`SOLVED_FLOOR`; ``inf`` for a
    failed run or a target never reached."""
    if run_state(record) == "failed":
        return math.inf
    if metric == "steps_to_target":
        v = record.get("steps_to_target")
        return math.inf if v is None else max(float(v), 1.0)
    value = metric_value(record, metric)
    if value is None:
        return math.inf
    if metric in ("final_loss", "best_loss"):
        value -= record.get("f_star") or 0.0
    return max(value, SOLVED_FLOOR)


def _profile_json(
    labels: Mapping[str, str],
    costs: Mapping[str, list[float]],
    bests: Mapping[str, list[float]],
    instances: int,
    max_points: int,
    series: Collection[str] | None,
) -> dict[str, Any]:
    taus, rho, scores = _profile(costs, bests, instances, TAU_MAX, max_points)
    return {
        "tau": taus,
        "instances": instances,
        "series": [
            {
                "solver_id": sid,
                "solver": labels[sid],
                "rho": rho[sid] if series is None or sid in series else None,
                "score": scores[sid],
            }
            for sid in costs
        ],
    }


def profiles(
    groups: Sequence[Group],
    metric: str,
    max_points: int = 200,
    series: Collection[str] | None = None,
) -> dict[str, Any]:
    """Performance profiles per problem (instances = seeds) and across problems (problem × seed),
    as :func:`performance_profile` defines them, over the solvers that ran on each; τ is kept in
    [1, τ_max] and thinned to ``max_points`` breakpoints (ρ exact at each). Every solver has its
    score; only those in ``series`` (all when ``None``) their ρ (else ``None``)."""
    if metric == AUC or metric in HIGHER_IS_BETTER:
        raise SummaryError(f"a performance profile needs a positive cost; {metric!r} is not one")
    labels = {g.solver_id: g.solver_label for g in groups}
    per_problem = []
    all_costs: dict[str, list[float]] = {}
    all_bests: dict[str, list[float]] = {}
    instances = 0
    for pid, plabel, pgroups in problems_of(groups):
        seeds = sorted({s for g in pgroups for s in g.seeds})
        best = dict.fromkeys(seeds, math.inf)
        costs: dict[str, dict[int, float]] = {}
        for g in pgroups:
            mine = costs.setdefault(g.solver_id, {})
            for rec in g.records:
                seed = int(rec["spec"]["seed"])
                mine[seed] = _cost(rec, metric)
                best[seed] = min(best[seed], mine[seed])
        # a solver without a run on a seed has failed that instance
        dense = {sid: [c.get(s, math.inf) for s in seeds] for sid, c in costs.items()}
        bests = {sid: [best[s] for s in seeds] for sid in costs}
        problem_labels = {sid: labels[sid] for sid in costs}
        per_problem.append(
            {
                "problem_id": pid,
                "problem": plabel,
                **_profile_json(problem_labels, dense, bests, len(seeds), max_points, series),
            }
        )
        for sid in labels:
            all_costs.setdefault(sid, []).extend(dense.get(sid, []))
            all_bests.setdefault(sid, []).extend(bests.get(sid, []))
        instances += len(seeds)
    overall = _profile_json(labels, all_costs, all_bests, instances, max_points, series)
    return {
        "metric": metric,
        "tau_max": TAU_MAX,
        "solved_floor": SOLVED_FLOOR,
        "rule": f"failure = ∞; a suboptimality ≤ {SOLVED_FLOOR:g} counts as solved (ratio 1)",
        "per_problem": per_problem,
        "overall": overall,
    }


def first_hits(steps: Curve, values: Curve, targets: np.ndarray) -> np.ndarray:
    """For each target, the first step whose value is ≤ it (``inf`` if none): a run's runtimes."""
    y = floats(values)
    x = np.asarray(steps, dtype=np.float64)
    if y.size == 0:
        return np.full(targets.shape, np.inf)
    running = np.fmin.accumulate(np.where(np.isfinite(y), y, np.inf))
    idx = np.searchsorted(-running, -targets, side="left")
    return np.where(idx < y.size, x[np.minimum(idx, y.size - 1)], np.inf)


def hits_many(runs: Sequence[tuple[Curve, Curve]], targets: np.ndarray) -> list[np.ndarray]:
    """:func:`first_hits` of each (steps, values) run, equal to it: runs with as many points are
    stacked (a block at a time), their running minima taken in one NumPy call, each row searched
    as :func:`first_hits` searches its curve, and the steps at the hits gathered at once."""
    out: list[np.ndarray] = [np.empty(0)] * len(runs)
    by_size: dict[int, list[int]] = {}
    for i, (x, y) in enumerate(runs):
        if len(y) and len(x) == len(y):
            by_size.setdefault(len(y), []).append(i)
        else:
            out[i] = first_hits(x, y, targets)
    below = -targets
    for n, rows in ((n, block) for n, indices in by_size.items() for block in blocks(indices)):
        y = np.stack([floats(runs[i][1]) for i in rows])
        x = np.stack([np.asarray(runs[i][0], dtype=np.float64) for i in rows])
        running = np.fmin.accumulate(np.where(np.isfinite(y), y, np.inf), axis=1)
        idx = np.empty((len(rows), targets.size), dtype=np.int64)
        for j, row in enumerate(-running):
            idx[j] = np.searchsorted(row, below, side="left")
        at = np.take_along_axis(x, np.minimum(idx, n - 1), axis=1)
        found = np.where(idx < n, at, np.inf)
        for j, i in enumerate(rows):
            out[i] = found[j]
    return out


@lru_cache(maxsize=1024)
def initial_loss(problem_json: str) -> float | None:
    """The problem's noise-free loss at the start point of its seed-0 instance (the engine's own
    ``Problem.loss``): a fixed reference for a problem whose f* is unknown."""
    from pydantic import TypeAdapter, ValidationError

    from engine.problems import ProblemSpec, build_problem

    try:
        spec = TypeAdapter(ProblemSpec).validate_json(problem_json)
    except ValidationError:
        return None
    problem = build_problem(spec, [0], np.float64)
    with np.errstate(all="ignore"):
        value = float(problem.loss(problem.init_params())[0])
    return value if math.isfinite(value) and value > 0 else None


def coco_targets(
    problem: Mapping[str, Any], f_star: float | None, count: int
) -> tuple[np.ndarray, str] | None:
    """Fixed targets for a problem (on ``f − f*``, f* taken as 0 when unknown) and their rule.

    With f* known: ``10^k`` for ``count`` exponents k evenly from 1 down to −8 (COCO). Without
    it: ``f₀ · 10^k`` for k evenly in (0, −8], f₀ the problem's :func:`initial_loss`. Either way
    the targets depend on the problem alone, so the same problem has the same targets in every
    experiment. ``None`` when neither reference exists.
    """
    if f_star is not None:
        k = np.linspace(TARGET_TOP, TARGET_BOTTOM, count)
        return 10.0**k, f"f* + 10^k, k = {TARGET_TOP:g} … {TARGET_BOTTOM:g} ({count} targets)"
    f0 = initial_loss(canonical(problem))
    if f0 is None:
        return None
    k = np.linspace(0.0, TARGET_BOTTOM, count + 1)[1:]
    return f0 * 10.0**k, (
        f"f* unknown: f0 · 10^k, f0 = {f0:.6g} (initial loss, seed 0), k = "
        f"{k[0]:.3g} … {TARGET_BOTTOM:g} ({count} targets)"
    )


def _ecdf_x(hits: Iterable[np.ndarray], last_step: float, max_points: int) -> np.ndarray:
    finite = [h[np.isfinite(h)] for h in hits]
    x = np.unique(np.concatenate([[0.0, last_step], *finite]))
    if x.size > max_points:
        x = x[np.unique(np.linspace(0, x.size - 1, max_points).round().astype(np.int64))]
    return x


def ecdfs(
    groups: Sequence[Group],
    *,
    n_targets: int = DEFAULT_TARGETS,
    max_points: int = 200,
    series: Collection[str] | None = None,
) -> dict[str, Any]:
    """Runtime ECDFs: the share of (run, target) pairs reached by each step, per solver.

    Targets per problem are the fixed :func:`coco_targets` on ``f − f*``. Per problem every
    (run, target) pair of a solver weighs the same — a run with no curve yet (queued) reaches
    none, a diverged run keeps the targets it reached before; across problems every problem
    weighs the same (the mean of the per-problem fractions, 0 where a solver did not run). Needs
    the loss curves; of a run read in buckets (:func:`~analysis.curves.reduce_run`), a target is
    reached at the end of the first bucket whose lowest loss reaches it. Only the solvers in
    ``series`` (all when ``None``) have their series (the x grid is the same either way).
    """
    labels = {
        g.solver_id: g.solver_label for g in groups if series is None or g.solver_id in series
    }
    per_problem = []
    runtimes: list[dict[str, tuple[np.ndarray, int]]] = []
    every_hit: list[np.ndarray] = []
    last_steps: list[float] = []
    for pid, plabel, pgroups in problems_of(groups):
        f_star = next(
            (r.get("f_star") for g in pgroups for r in g.records if r.get("f_star") is not None),
            None,
        )
        found = coco_targets(pgroups[0].problem, f_star, n_targets)
        if found is None or not any(
            curve_of(r, "eval_steps") is not None for g in pgroups for r in g.records
        ):
            continue
        targets, rule = found
        hits: dict[str, tuple[list[np.ndarray], int]] = {
            g.solver_id: ([], len(g.records) * targets.size) for g in pgroups
        }
        last = 0.0
        key = ("hits", n_targets, f_star)
        _fill_hits(pgroups, targets, f_star, key)
        for g in pgroups:
            hits[g.solver_id][0].extend(g.memo[key][0])
            last = max(last, g.memo[key][1])
        every = [
            (sid, (np.concatenate(h or [np.empty(0)]), denominator))
            for sid, (h, denominator) in hits.items()
        ]
        flat = {sid: h for sid, h in every if sid in labels}
        runtimes.append(flat)
        every_hit.extend(h for _, (h, _) in every)
        last_steps.append(last)
        xs = _ecdf_x((h for _, (h, _) in every), last, max_points)
        per_problem.append(
            {
                "problem_id": pid,
                "problem": plabel,
                "targets": [float(t) for t in targets],
                "target_rule": rule,
                "x": [num_or_int(v) for v in xs],
                "series": [
                    {"solver_id": sid, "solver": labels[sid], "y": _ecdf_y(h, xs).tolist()}
                    for sid, h in flat.items()
                ],
            }
        )
    overall: dict[str, Any] = {"x": [], "series": []}
    if runtimes:
        xs = _ecdf_x(every_hit, max(last_steps), max_points)
        sums = {sid: np.zeros(xs.size) for sid in labels}
        for f in runtimes:
            for sid, h in f.items():
                sums[sid] += _ecdf_y(h, xs)
        overall = {
            "x": [num_or_int(v) for v in xs],
            "series": [
                {"solver_id": sid, "solver": label, "y": (sums[sid] / len(runtimes)).tolist()}
                for sid, label in labels.items()
            ],
        }
    return {"n_targets": n_targets, "per_problem": per_problem, "overall": overall}


def _fill_hits(
    groups: Sequence[Group], targets: np.ndarray, f_star: float | None, key: tuple[Any, ...]
) -> None:
    """Memoise under ``key`` for each group: :func:`first_hits` of each of its runs that has a
    loss curve (all groups' runs in one :func:`hits_many`), and the last step any of them reached
    (a run read in buckets: each bucket's lowest loss at its last step)."""
    todo = [g for g in groups if key not in g.memo]
    runs = [(rec, g) for g in todo for rec in g.records if curve_of(rec, "eval_steps") is not None]
    found = hits_many(
        [
            (
                rec["eval_steps"],
                floats(rec.get("losses_lo", rec["losses"])) - (f_star or 0.0),  # type: ignore[arg-type]
            )
            for rec, _ in runs
        ],
        targets,
    )
    per_group: dict[str, tuple[list[np.ndarray], float]] = {g.id: ([], 0.0) for g in todo}
    for (rec, g), hits in zip(runs, found, strict=True):
        done, last = per_group[g.id]
        done.append(hits)
        per_group[g.id] = (done, max(last, float(rec["eval_steps"][-1])))
    for g in todo:
        g.memo[key] = per_group[g.id]


def _ecdf_y(hits: tuple[np.ndarray, int], xs: np.ndarray) -> np.ndarray:
    """Fraction of the ``denominator`` (run, target) pairs whose runtime is ≤ each x."""
    times, denominator = hits
    counts = np.searchsorted(np.sort(times[np.isfinite(times)]), xs, side="right")
    return counts / denominator
