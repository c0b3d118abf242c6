"""Curves as drawn: a mean/median curve with its band across seeds, and 2-D loss landscapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.groups import Group
from analysis.records import AUC, Curve, auc_log_subopt, curve_of, floats, json_list, num_or_int

#: Points of a curve a summary keeps per run: a longer curve is read into this many buckets.
READ_POINTS = 2000
#: Curves that share a run's ``eval_steps`` (the x of the eval-aligned group).
EVAL_ALIGNED = ("grad_evals", "losses", "wall_times", "params_x", "params_y")


def bucket_ends(x: np.ndarray, steps: int, buckets: int) -> np.ndarray:
    """Indices of the first point and of the last point in each of ``buckets`` equal ranges of
    steps ``[0, steps]``: the same steps for every run of a budget, however far it got."""
    edges = np.linspace(0.0, steps + 1.0, buckets + 1)
    bucket = np.searchsorted(edges, np.asarray(x, dtype=np.float64), side="right")
    ends = np.flatnonzero(np.diff(bucket) != 0)
    return np.unique(np.concatenate([[0], ends, [x.size - 1]])).astype(np.int64)


def reduce_run(
    curves: Mapping[str, np.ndarray],
    steps: int,
    f_star: float | None,
    max_points: int = READ_POINTS,
) -> dict[str, np.ndarray | float | None]:
    """A run's curves with at most about ``max_points`` points each, whatever its steps.

    A group with more points (eval-aligned by ``eval_steps``; per-update ``lrs`` by update) keeps
    the first point and the last point of each of ``max_points`` equal ranges of steps (common
    to every run of the budget, so runs still line up point for point) — every curve of the
    group at those points; its loss (LR) curve also keeps each range's minimum and maximum, as
    ``losses_lo`` / ``losses_hi`` (``lrs_lo`` / ``lrs_hi``), so a band's envelope and a runtime
    ECDF still see what happened between kept points. ``auc_log_subopt`` is computed from the
    whole curve first. Shorter groups are returned whole, so a summary of runs within
    ``max_points`` is unchanged.
    """
    out: dict[str, np.ndarray | float | None] = dict(curves)
    x = curves.get("eval_steps")
    if x is not None and x.size > max_points:
        keep = bucket_ends(x, steps, max_points)
        if "losses" in curves:
            out[AUC] = auc_log_subopt(x, curves["losses"], f_star)
            out.update(_envelope("losses", floats(curves["losses"]), keep))
        out["eval_steps"] = x[keep]
        for name in EVAL_ALIGNED:
            if name in curves:
                out[name] = curves[name][keep]
    lrs = curves.get("lrs")
    if lrs is not None and lrs.size > max_points:
        keep = bucket_ends(np.arange(lrs.size), steps, max_points)
        out.update(_envelope("lrs", floats(lrs), keep))
        out["lrs"], out["update_steps"] = lrs[keep], keep
    return out


def _envelope(name: str, y: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The minimum and maximum of ``y`` over each range ``(keep[i-1], keep[i]]`` (NaN ignored)."""
    starts = np.concatenate([[0], keep[:-1] + 1])
    return {
        f"{name}_lo": np.fmin.reduceat(y, starts),
        f"{name}_hi": np.fmax.reduceat(y, starts),
    }


def band(
    xs: Sequence[Curve],
    ys: Sequence[Curve],
    max_points: int,
    extras: Mapping[str, Sequence[Curve]] | None = None,
    envelope: tuple[Sequence[Curve], Sequence[Curve]] | None = None,
) -> dict[str, list[Any]]:
    """Mean curve with a min–max band across runs, on the union of their x values.

    Runs that stopped early (diverged, still running) contribute only where they have points;
    ``n`` counts the runs behind each point. Beyond ``max_points`` the grid is cut into equal
    buckets of consecutive points: each keeps its last point (``x``, ``mean``, ``median``, ``n``
    exactly there) and the band becomes the envelope over the whole bucket, so a spike between
    kept points still shows. Each of ``extras`` (e.g. wall times, gradient evaluations: other x
    axes) is averaged across runs at the kept x and returned under its name. ``envelope`` (each
    run's lowest and highest value up to each of its points since the previous one, see
    :func:`reduce_run`) replaces the values in the band's min–max.
    """
    arrays = [np.asarray(x, dtype=np.float64) for x in xs]
    grid = np.unique(np.concatenate(arrays)) if arrays else np.empty(0)
    if grid.size == 0:
        return {"x": [], "mean": [], "median": [], "lo": [], "hi": [], "n": []}
    m = np.full((len(xs), grid.size), np.nan)
    es = {name: np.full((len(xs), grid.size), np.nan) for name in extras or {}}
    low, high = (m, m) if envelope is None else (np.full_like(m, np.nan), np.full_like(m, np.nan))
    for r, (x, y) in enumerate(zip(xs, ys, strict=True)):
        pos = np.searchsorted(grid, np.asarray(x, dtype=np.float64))
        m[r, pos] = floats(y)
        for name, e in es.items():
            e[r, pos] = floats((extras or {})[name][r])
        if envelope is not None:
            low[r, pos], high[r, pos] = floats(envelope[0][r]), floats(envelope[1][r])
    finite = np.isfinite(m)
    n = finite.sum(axis=0)
    with np.errstate(all="ignore"):
        safe = np.where(finite, m, 0.0)
        mean = np.where(n > 0, safe.sum(axis=0) / np.maximum(n, 1), np.nan)
        lo_pt = np.where(np.isfinite(low), low, np.inf).min(axis=0)
        hi_pt = np.where(np.isfinite(high), high, -np.inf).max(axis=0)
    if grid.size <= max_points:
        keep = np.arange(grid.size)
        lo, hi = lo_pt, hi_pt
    else:
        ends = np.linspace(0, grid.size - 1, max_points).round().astype(np.int64)
        keep = np.unique(ends)
        starts = np.concatenate([[0], keep[:-1] + 1])
        lo = np.minimum.reduceat(lo_pt, starts)
        hi = np.maximum.reduceat(hi_pt, starts)
    median = _column_median(m[:, keep])
    out: dict[str, list[Any]] = {
        "x": [num_or_int(v) for v in grid[keep]],
        "mean": json_list(mean[keep]),
        "median": json_list(median),
        "lo": json_list(lo),
        "hi": json_list(hi),
        "n": [int(v) for v in n[keep]],
    }
    for name, e in es.items():
        present = np.isfinite(e)
        with np.errstate(all="ignore"):
            avg = np.where(present, e, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
            avg = np.where(present.any(axis=0), avg, np.nan)
        out[name] = json_list(avg[keep])
    return out


def _column_median(m: np.ndarray) -> np.ndarray:
    """``np.nanmedian(m, axis=0)`` without its masked-array path (NaN for an empty column)."""
    ordered = np.sort(m, axis=0)  # NaN sorts last
    count = (~np.isnan(m)).sum(axis=0)
    cols = np.arange(m.shape[1])
    lo = ordered[np.maximum(count - 1, 0) // 2, cols]
    hi = ordered[np.maximum(count, 1) // 2 - (count == 0), cols]
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (lo + hi) / 2, np.nan)


def group_curves(group: Group, max_points: int) -> dict[str, Any] | None:
    """Loss band over eval steps (with the mean wall time and gradient evaluations per point, the
    other x axes) and LR band over updates."""
    with_curves = [r for r in group.records if curve_of(r, "eval_steps") is not None]
    if not with_curves:
        return None
    loss = band(
        [r["eval_steps"] for r in with_curves],
        [r["losses"] for r in with_curves],
        max_points,
        envelope=_envelopes(with_curves, "losses"),
        extras={
            axis: [
                c if (c := curve_of(r, curve)) is not None else [None] * len(r["eval_steps"])
                for r in with_curves
            ]
            for axis, curve in (("wall_time", "wall_times"), ("grad_evals", "grad_evals"))
        },
    )
    with_lrs = [r for r in with_curves if curve_of(r, "lrs") is not None]
    lr = band(
        [
            x if (x := curve_of(r, "update_steps")) is not None else np.arange(len(r["lrs"]))
            for r in with_lrs
        ],
        [r["lrs"] for r in with_lrs],
        max_points,
        envelope=_envelopes(with_lrs, "lrs"),
    )
    return {"loss": loss, "lr": lr}


def _envelopes(
    records: Sequence[Mapping[str, Any]], name: str
) -> tuple[list[Curve], list[Curve]] | None:
    """The runs' ``<name>_lo`` / ``<name>_hi`` (a run read whole: its values), or ``None`` when
    every run was read whole."""
    if not any(f"{name}_lo" in r for r in records):
        return None
    return (
        [r.get(f"{name}_lo", r[name]) for r in records],
        [r.get(f"{name}_hi", r[name]) for r in records],
    )


# ---------------------------------------------------------------------------------------------
# Loss landscapes of 2-D problems

#: Grid points per axis of a loss landscape.
SURFACE_POINTS = 64


def _subsample(values: Curve, max_points: int) -> list[float | None]:
    y = floats(values)
    if y.size > max_points:
        y = y[np.unique(np.linspace(0, y.size - 1, max_points).round().astype(np.int64))]
    return json_list(y)


def _span(points: np.ndarray, box: tuple[float, float] | None) -> tuple[float, float]:
    """The 1st–99th percentile range of ``points`` (an escaping run cannot stretch the view),
    joined with the problem's start box, padded by 5 % on each side."""
    finite = points[np.isfinite(points)]
    lo, hi = (
        (float(np.percentile(finite, 1.0)), float(np.percentile(finite, 99.0)))
        if finite.size
        else (-1.0, 1.0)
    )
    if box is not None:
        lo, hi = min(lo, box[0]), max(hi, box[1])
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def trajectory(group: Group, record: Mapping[str, Any], max_points: int) -> dict[str, Any]:
    """One run's path through a 2-D problem's parameters, at most ``max_points`` evenly spaced
    points of it (the first and last included)."""
    return {
        "group_id": group.id,
        "solver": group.solver_label,
        "seed": int(record["spec"]["seed"]),
        "x": _subsample(record["params_x"], max_points),
        "y": _subsample(record["params_y"], max_points),
    }


def group_trajectories(group: Group, max_points: int) -> list[dict[str, Any]]:
    """:func:`trajectory` of each of the group's runs that has one (2-D problems)."""
    return [
        trajectory(group, r, max_points)
        for r in group.records
        if curve_of(r, "params_x") is not None and curve_of(r, "params_y") is not None
    ]


#: Trajectory points of the landscape seed's runs, and of all other runs, each shared between them.
SEED_POINTS = 6_000
OTHER_SEED_POINTS = 4_000


def problem_contour(
    groups: Sequence[Group], max_points: int = 400, n: int = SURFACE_POINTS
) -> dict[str, Any] | None:
    """For a 2-D problem: its noise-free loss on an ``n × n`` grid, its known minimisers and the
    trajectory of every run.

    The landscape is the engine's own ``Problem.loss`` for the instance of the smallest seed (a
    seeded problem, e.g. the rotated quadratic, differs between seeds), evaluated row by row on a
    grid covering the trajectories of that seed and the problem's start box; ``z[j][i]`` is the
    loss at ``(x[i], y[j])``. Only evaluates the closed-form loss — no optimizer runs. That seed's
    trajectories share :data:`SEED_POINTS` (at most ``max_points`` each), the other seeds'
    :data:`OTHER_SEED_POINTS`, so the summary of a large sweep stays small. ``None`` for a
    problem that is not 2-D or has no trajectory yet.
    """
    from pydantic import TypeAdapter

    from engine.problems import ProblemSpec, build_problem

    first = groups[0]
    spec = TypeAdapter(ProblemSpec).validate_python(first.problem)
    if spec.num_params() != 2:
        return None
    seed = min(s for g in groups for s in g.seeds)
    drawn = [
        (g, r)
        for g in groups
        for r in g.records
        if curve_of(r, "params_x") is not None and curve_of(r, "params_y") is not None
    ]
    others = sum(int(r["spec"]["seed"]) != seed for _, r in drawn)
    budget = max(16, OTHER_SEED_POINTS // max(1, others))
    main_points = min(max_points, max(64, SEED_POINTS // max(1, len(drawn) - others)))
    trajectories = [
        trajectory(
            g, rec, main_points if int(rec["spec"]["seed"]) == seed else min(max_points, budget)
        )
        for g, rec in drawn
    ]
    if not any(t["seed"] == seed for t in trajectories):
        return None
    problem = build_problem(spec, [seed] * n, np.float64)
    bounds = getattr(problem, "plot_bounds", None) or (None, None)
    main = [t for t in trajectories if t["seed"] == seed]
    all_x = floats([v for t in main for v in t["x"]])
    all_y = floats([v for t in main for v in t["y"]])
    gx = np.linspace(*_span(all_x, bounds[0]), n)
    gy = np.linspace(*_span(all_y, bounds[1]), n)
    z = []
    with np.errstate(all="ignore"):
        for yj in gy:
            row = problem.loss(np.column_stack([gx, np.full(n, yj)]))
            z.append(json_list(row))
    minimizers = getattr(problem, "minimizers", None)
    return {
        "seed": seed,
        "x": gx.tolist(),
        "y": gy.tolist(),
        "z": z,
        "minimizers": [] if minimizers is None else np.asarray(minimizers()).tolist(),
        "trajectories": trajectories,
    }
