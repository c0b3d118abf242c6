"""Statistics people act on, as pure functions of run results.

The input is a list of run *records* in the engine's result shape (``{"run_id", "spec", <metrics>,
<curves>}``); :func:`normalize` also accepts the API's run objects (``"spec"`` + ``"metrics"``
[+ ``"curves"``]) and flattened export rows. Nothing here touches a database or the network, so the
summary route and the CLI's ``gate --local`` compute the same numbers from the same runs.

Vocabulary:

* **problem** — a problem spec under one budget (steps, target loss, eval cadence, dtype);
* **solver** — an optimizer with all its hyper-parameters plus an LR schedule;
* **group** — one (problem, solver) pair; its runs differ only by seed.

Every metric is lower-is-better except ``test_accuracy``. Numbers that cannot be computed
(no runs, a diverged run's curve) are ``None``, never NaN, so every result is valid JSON.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from engine.runner import METRIC_KEYS

#: Floor under a suboptimality (or a loss, when f* is unknown) before taking its logarithm: below
#: ~1e-16 relative to a unit-scale loss the differences are float64 rounding, not progress.
LOG_FLOOR = 1e-16
#: Fields of the engine's run spec besides the three nested specs.
RUN_FIELDS = ("seed", "steps", "target_loss", "eval_every", "dtype")
NESTED = ("problem", "optimizer", "schedule")
#: The derived metric: mean log10 suboptimality over the run (see :func:`auc_log_subopt`).
AUC = "auc_log_subopt"
#: Metrics aggregated per group (numbers where a smaller value is better, except test_accuracy).
GROUP_METRICS = (
    "final_loss",
    "best_loss",
    "suboptimality",
    "steps_to_target",
    AUC,
    "test_loss",
    "test_accuracy",
    "wall_time_s",
)
HIGHER_IS_BETTER = frozenset({"test_accuracy"})
#: AlgoPerf integrates performance profiles over τ ∈ [1, 4].
TAU_MAX = 4.0
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


#: A curve as stored or sent: a list (``None`` for a non-finite value) or a float array.
Curve = Sequence[Any] | np.ndarray


class SummaryError(ValueError):
    """Bad input to a statistic (an unknown metric or solver): a readable message for the user."""


# ---------------------------------------------------------------------------------------------
# Records


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:12]


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys; lists and scalars stay values."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(flatten(item, f"{name}."))
        else:
            out[name] = item
    return out


def unflatten(row: Mapping[str, Any], prefixes: Iterable[str]) -> dict[str, Any]:
    """The mappings under ``prefixes`` rebuilt from dotted keys (inverse of :func:`flatten`)."""
    out: dict[str, Any] = {}
    heads = tuple(f"{p}." for p in prefixes)
    for key, value in row.items():
        if not key.startswith(heads):
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def normalize(item: Mapping[str, Any]) -> dict[str, Any]:
    """One run record in the engine's result shape, whichever of the three shapes it came in.

    * engine result: returned as is (a shallow copy);
    * API run object (``"metrics"`` and optionally ``"curves"`` nested): flattened onto the top,
      ``run_id`` taken from ``spec_hash``;
    * export row (``"optimizer.name"`` …): the spec rebuilt from its dotted columns.
    """
    if "spec" in item and isinstance(item["spec"], Mapping):
        record = {k: v for k, v in item.items() if k not in ("metrics", "curves")}
        record.update(item.get("metrics") or {})
        record.update(item.get("curves") or {})
        if "spec_hash" in item:
            record["run_id"] = item["spec_hash"]
        return record
    if "optimizer.name" in item:
        spec = unflatten(item, NESTED)
        spec.update({k: item[k] for k in RUN_FIELDS if k in item})
        record = {k: v for k, v in item.items() if "." not in k and k not in RUN_FIELDS}
        record["spec"] = spec
        return record
    raise SummaryError(
        "not a run record: expected an engine result or API run (with 'spec') "
        "or an export row (with 'optimizer.name')"
    )


def load_records(document: Any) -> list[dict[str, Any]]:
    """Records from a results document: ``{"runs": [...]}`` (engine / export) or a bare list."""
    items = document.get("runs") if isinstance(document, Mapping) else document
    if not isinstance(items, list):
        raise SummaryError("a results document is a list of runs or an object with a 'runs' list")
    return [normalize(item) for item in items]


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Curve values as float64, ``None`` → NaN (arrays, e.g. decoded from storage, pass through)."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _curve(record: Mapping[str, Any], key: str) -> Any:
    """The record's curve ``key`` when it has points, else ``None`` (lists or arrays alike)."""
    values = record.get(key)
    return values if values is not None and len(values) else None


def _json_num(x: float | np.floating[Any] | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def auc_log_subopt(
    eval_steps: Sequence[int], losses: Sequence[float | None], f_star: float | None
) -> float | None:
    """Mean log10 suboptimality over the run: the area under the log curve per step.

    ``(1 / (s_K − s_0)) ∫ log10(max(f(s) − f*, LOG_FLOOR)) ds`` by the trapezoidal rule over the
    eval steps ``s_0 … s_K``; with f* unknown, ``f*`` is taken as 0 (log loss). One point gives its
    own log value. ``None`` when there is no point or a loss is not finite (a diverged run).
    """
    y = _floats(losses)
    if y.size == 0 or not np.isfinite(y).all():
        return None
    logs = np.log10(np.maximum(y - (f_star or 0.0), LOG_FLOOR))
    x = np.asarray(eval_steps, dtype=np.float64)
    if y.size == 1 or x[-1] == x[0]:
        return float(logs[-1])
    return float(np.trapezoid(logs, x) / (x[-1] - x[0]))


def metric_value(record: Mapping[str, Any], metric: str) -> float | None:
    """A record's value of ``metric`` (``auc_log_subopt`` from its curve when it has one)."""
    if metric == AUC:
        if record.get("diverged"):
            return None
        if "losses" in record and "eval_steps" in record:
            return auc_log_subopt(record["eval_steps"], record["losses"], record.get("f_star"))
        return _finite(record.get(AUC))
    if metric == "steps_to_target" and record.get("diverged"):
        return None
    return _finite(record.get(metric))


def succeeded(record: Mapping[str, Any]) -> bool:
    """Target reached and not diverged (the success of a run with a target loss)."""
    return record.get("steps_to_target") is not None and not record.get("diverged")


# ---------------------------------------------------------------------------------------------
# Groups and labels


@dataclass
class Group:
    """The runs of one (problem, solver) pair, ordered by seed."""

    id: str
    problem_id: str
    solver_id: str
    problem: dict[str, Any]
    budget: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    problem_label: str = ""
    solver_label: str = ""

    @property
    def seeds(self) -> list[int]:
        return [int(r["spec"]["seed"]) for r in self.records]

    def values(self, metric: str) -> list[float | None]:
        return [metric_value(r, metric) for r in self.records]

    def by_seed(self, metric: str) -> dict[int, float | None]:
        return dict(zip(self.seeds, self.values(metric), strict=True))


def problem_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"problem": spec["problem"], **{k: spec.get(k) for k in RUN_FIELDS if k != "seed"}}


def solver_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"optimizer": spec["optimizer"], "schedule": spec["schedule"]}


def group_runs(records: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Records grouped by (problem, solver), groups in first-seen order, runs sorted by seed.

    Labels name each spec by its registry name plus only the fields that vary among the specs of
    that name in this set of runs (``adam(lr=0.01)`` when Adam was swept over ``lr``), so they
    are short, unique and stable for a given experiment.
    """
    groups: dict[str, Group] = {}
    for raw in records:
        record = normalize(raw)
        spec = record["spec"]
        pkey, skey = problem_key(spec), solver_key(spec)
        pid, sid = _digest(pkey), _digest(skey)
        gid = _digest([pid, sid])
        group = groups.get(gid)
        if group is None:
            budget = {k: v for k, v in pkey.items() if k != "problem"}
            group = Group(
                gid, pid, sid, spec["problem"], budget, spec["optimizer"], spec["schedule"]
            )
            groups[gid] = group
        group.records.append(record)
    out = list(groups.values())
    for group in out:
        group.records.sort(key=lambda r: int(r["spec"]["seed"]))
    problems = _labels({g.problem_id: {**g.problem, **_varying_budget(out, g)} for g in out})
    optimizers = _labels({_digest(g.optimizer): g.optimizer for g in out})
    schedules = _labels({_digest(g.schedule): g.schedule for g in out})
    for group in out:
        group.problem_label = problems[group.problem_id]
        group.solver_label = (
            f"{optimizers[_digest(group.optimizer)]} / {schedules[_digest(group.schedule)]}"
        )
    return out


def _varying_budget(groups: Sequence[Group], group: Group) -> dict[str, Any]:
    """The budget fields that differ between problems (normally none within one experiment)."""
    return {
        k: v
        for k, v in group.budget.items()
        if len({_canonical(g.budget.get(k)) for g in groups}) > 1
    }


def _fmt(value: Any) -> str:
    return value if isinstance(value, str) else _canonical(value)


def _labels(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``name(k=v, …)`` per spec, listing the (dotted) fields that vary among same-named specs."""
    flat = {key: flatten(spec) for key, spec in specs.items()}
    by_name: dict[str, list[str]] = {}
    for key, f in flat.items():
        by_name.setdefault(str(f.get("name", "?")), []).append(key)
    labels: dict[str, str] = {}
    for name, keys in by_name.items():
        fields = sorted({k for key in keys for k in flat[key]} - {"name"})
        varying = [k for k in fields if len({_canonical(flat[key].get(k)) for key in keys}) > 1]
        for key in keys:
            parts = [f"{k}={_fmt(flat[key].get(k))}" for k in varying]
            labels[key] = f"{name}({', '.join(parts)})" if parts else name
    return labels


# ---------------------------------------------------------------------------------------------
# Descriptive statistics


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
        mean=_json_num(x.mean()),
        median=_json_num(median),
        q25=_json_num(q25),
        q75=_json_num(q75),
        iqr=_json_num(q75 - q25),
        min=_json_num(x.min()),
        max=_json_num(x.max()),
        ci_low=_json_num(ci[0]) if ci else None,
        ci_high=_json_num(ci[1]) if ci else None,
    )
    return out


def band(
    xs: Sequence[Curve],
    ys: Sequence[Curve],
    max_points: int,
    extra: Sequence[Curve] | None = None,
) -> dict[str, list[Any]]:
    """Mean curve with a min–max band across runs, on the union of their x values.

    Runs that stopped early (diverged, still running) contribute only where they have points;
    ``n`` counts the runs behind each point. Beyond ``max_points`` the grid is cut into equal
    buckets of consecutive points: each keeps its last point (``x``, ``mean``, ``median``, ``n``
    exactly there) and the band becomes the envelope over the whole bucket, so a spike between
    kept points still shows. ``extra`` (e.g. wall times) is averaged across runs at the kept x.
    """
    arrays = [np.asarray(x, dtype=np.float64) for x in xs]
    grid = np.unique(np.concatenate(arrays)) if arrays else np.empty(0)
    if grid.size == 0:
        return {"x": [], "mean": [], "median": [], "lo": [], "hi": [], "n": []}
    m = np.full((len(xs), grid.size), np.nan)
    e = np.full((len(xs), grid.size), np.nan) if extra is not None else None
    for r, (x, y) in enumerate(zip(xs, ys, strict=True)):
        pos = np.searchsorted(grid, np.asarray(x, dtype=np.float64))
        m[r, pos] = _floats(y)
        if e is not None and extra is not None:
            e[r, pos] = _floats(extra[r])
    finite = np.isfinite(m)
    n = finite.sum(axis=0)
    with np.errstate(all="ignore"):
        safe = np.where(finite, m, 0.0)
        mean = np.where(n > 0, safe.sum(axis=0) / np.maximum(n, 1), np.nan)
        lo_pt = np.where(finite, m, np.inf).min(axis=0)
        hi_pt = np.where(finite, m, -np.inf).max(axis=0)
    if grid.size <= max_points:
        keep = np.arange(grid.size)
        lo, hi = lo_pt, hi_pt
    else:
        ends = np.linspace(0, grid.size - 1, max_points).round().astype(np.int64)
        keep = np.unique(ends)
        starts = np.concatenate([[0], keep[:-1] + 1])
        lo = np.minimum.reduceat(lo_pt, starts)
        hi = np.maximum.reduceat(hi_pt, starts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column no run has reached yet
        median = np.nanmedian(m[:, keep], axis=0)
    out: dict[str, list[Any]] = {
        "x": [_num_or_int(v) for v in grid[keep]],
        "mean": [_json_num(v) for v in mean[keep]],
        "median": [_json_num(v) for v in median],
        "lo": [_json_num(v) for v in lo],
        "hi": [_json_num(v) for v in hi],
        "n": [int(v) for v in n[keep]],
    }
    if e is not None:
        present = np.isfinite(e)
        with np.errstate(all="ignore"):
            avg = np.where(present, e, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
            avg = np.where(present.any(axis=0), avg, np.nan)
        out["extra"] = [_json_num(v) for v in avg[keep]]
    return out


def _num_or_int(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def group_curves(group: Group, max_points: int) -> dict[str, Any] | None:
    """Loss band over eval steps (with mean wall time per point) and LR band over updates."""
    with_curves = [r for r in group.records if _curve(r, "eval_steps") is not None]
    if not with_curves:
        return None
    loss = band(
        [r["eval_steps"] for r in with_curves],
        [r["losses"] for r in with_curves],
        max_points,
        extra=[
            w if (w := _curve(r, "wall_times")) is not None else [None] * len(r["eval_steps"])
            for r in with_curves
        ],
    )
    loss["wall_time"] = loss.pop("extra")
    with_lrs = [r for r in with_curves if _curve(r, "lrs") is not None]
    lr = band(
        [
            x if (x := _curve(r, "update_steps")) is not None else np.arange(len(r["lrs"]))
            for r in with_lrs
        ],
        [r["lrs"] for r in with_lrs],
        max_points,
    )
    return {"loss": loss, "lr": lr}


# ---------------------------------------------------------------------------------------------
# Loss landscapes of 2-D problems

#: Grid points per axis of a loss landscape.
SURFACE_POINTS = 64


def _subsample(values: Sequence[Any], max_points: int) -> list[float | None]:
    y = _floats(values)
    if y.size > max_points:
        y = y[np.unique(np.linspace(0, y.size - 1, max_points).round().astype(np.int64))]
    return [_json_num(v) for v in y]


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


def problem_contour(
    groups: Sequence[Group], max_points: int = 400, n: int = SURFACE_POINTS
) -> dict[str, Any] | None:
    """For a 2-D problem: its noise-free loss on an ``n × n`` grid and one trajectory per group.

    The landscape is the engine's own ``Problem.loss`` for the instance of the smallest seed (a
    seeded problem, e.g. the rotated quadratic, differs between seeds), evaluated row by row on a
    grid covering the trajectories of that seed and the problem's start box; ``z[j][i]`` is the
    loss at ``(x[i], y[j])``. Only evaluates the closed-form loss — no optimizer runs. ``None``
    for a problem that is not 2-D or has no trajectory yet.
    """
    from pydantic import TypeAdapter

    from engine.problems import ProblemSpec, build_problem

    first = groups[0]
    spec = TypeAdapter(ProblemSpec).validate_python(first.problem)
    if spec.num_params() != 2:
        return None
    seed = min(s for g in groups for s in g.seeds)
    trajectories = []
    for g in groups:
        rec = next((r for r in g.records if int(r["spec"]["seed"]) == seed), None)
        if rec is None or _curve(rec, "params_x") is None or _curve(rec, "params_y") is None:
            continue
        xs, ys = _subsample(rec["params_x"], max_points), _subsample(rec["params_y"], max_points)
        trajectories.append({"group_id": g.id, "solver": g.solver_label, "x": xs, "y": ys})
    if not trajectories:
        return None
    problem = build_problem(spec, [seed] * n, np.float64)
    bounds = getattr(problem, "plot_bounds", None) or (None, None)
    all_x = _floats([v for t in trajectories for v in t["x"]])
    all_y = _floats([v for t in trajectories for v in t["y"]])
    gx = np.linspace(*_span(all_x, bounds[0]), n)
    gy = np.linspace(*_span(all_y, bounds[1]), n)
    z = []
    with np.errstate(all="ignore"):
        for yj in gy:
            row = problem.loss(np.column_stack([gx, np.full(n, yj)]))
            z.append([_json_num(v) for v in row])
    return {
        "seed": seed,
        "x": gx.tolist(),
        "y": gy.tolist(),
        "z": z,
        "trajectories": trajectories,
    }


# ---------------------------------------------------------------------------------------------
# Rankings: performance profiles (Dolan–Moré) and runtime ECDFs (COCO)


def _check_metric(metric: str) -> None:
    if metric not in GROUP_METRICS:
        raise SummaryError(f"unknown metric {metric!r}; known: {', '.join(GROUP_METRICS)}")


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
    solvers = _solvers(groups)
    sid_index = {sid: i for i, (sid, _) in enumerate(solvers)}
    per_problem = []
    all_rows: list[np.ndarray] = []
    for pid, plabel, pgroups in _problems(groups):
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


def first_hits(
    steps: Sequence[float], values: Sequence[float | None], targets: np.ndarray
) -> np.ndarray:
    """For each target, the first step whose value is ≤ it (``inf`` if none): a run's runtimes."""
    y = _floats(values)
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
    solvers = _solvers(groups)
    per_problem = []
    runtimes: list[dict[str, tuple[np.ndarray, int]]] = []
    last_steps: list[float] = []
    for pid, plabel, pgroups in _problems(groups):
        curves: dict[str, list[tuple[list[float], np.ndarray]]] = {}
        starts, bests, last = [], [], 0.0
        for g in pgroups:
            curves[g.solver_id] = []
            for rec in g.records:
                if _curve(rec, "eval_steps") is None:
                    continue
                y = _floats(rec["losses"]) - (rec.get("f_star") or 0.0)
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
                "x": [_num_or_int(v) for v in xs],
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
            "x": [_num_or_int(v) for v in xs],
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


def _solvers(groups: Sequence[Group]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for g in groups:
        seen.setdefault(g.solver_id, g.solver_label)
    return list(seen.items())


def _problems(groups: Sequence[Group]) -> list[tuple[str, str, list[Group]]]:
    out: dict[str, tuple[str, list[Group]]] = {}
    for g in groups:
        out.setdefault(g.problem_id, (g.problem_label, []))[1].append(g)
    return [(pid, label, gs) for pid, (label, gs) in out.items()]


# ---------------------------------------------------------------------------------------------
# Pairwise comparisons


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
    out["median_diff"] = _json_num(np.median(d))
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
    _check_metric(metric)
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
    out = []
    for pid, plabel, pgroups in _problems(groups):
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


def resolve_solver(groups: Sequence[Group], query: str) -> str:
    """A solver id from a user's reference: a solver or group id (or a unique prefix of one),
    or a solver label (exact, else a unique case-insensitive substring)."""
    solvers = _solvers(groups)
    by_group = {g.id: g.solver_id for g in groups}
    exact = [sid for sid, label in solvers if query in (sid, label)]
    if not exact and query in by_group:
        exact = [by_group[query]]
    prefix = [sid for sid, _ in solvers if sid.startswith(query)]
    prefix += [by_group[gid] for gid in by_group if gid.startswith(query)]
    within = [sid for sid, label in solvers if query.lower() in label.lower()]
    for candidates in (exact, sorted(set(prefix)), within):
        if len(set(candidates)) == 1:
            return candidates[0]
        if len(set(candidates)) > 1:
            raise SummaryError(
                f"{query!r} matches several solvers: "
                + ", ".join(label for sid, label in solvers if sid in candidates)
            )
    known = ", ".join(label for _, label in solvers)
    raise SummaryError(f"no solver matches {query!r}; known: {known}")


def default_baseline(groups: Sequence[Group], metric: str) -> str | None:
    """The solver with the best mean rank of its group median over the problems."""
    solvers = _solvers(groups)
    if not solvers:
        return None
    ranks: dict[str, list[float]] = {sid: [] for sid, _ in solvers}
    for _, _, pgroups in _problems(groups):
        medians = [_median_or_worst(g, metric) for g in pgroups]
        order = stats.rankdata(medians)
        for g, r in zip(pgroups, order, strict=True):
            ranks[g.solver_id].append(float(r))
    return min(solvers, key=lambda s: (np.mean(ranks[s[0]]) if ranks[s[0]] else math.inf, s[1]))[0]


def _median_or_worst(group: Group, metric: str) -> float:
    values = [v for v in group.values(metric) if v is not None]
    if not values:
        return math.inf
    m = float(np.median(values))
    return -m if metric in HIGHER_IS_BETTER else m


# ---------------------------------------------------------------------------------------------
# Tuning view


def tuning(groups: Sequence[Group], metric: str) -> list[dict[str, Any]]:
    """Metric vs each swept numeric hyper-parameter, per problem and optimizer (DeepOBS-style).

    A hyper-parameter is swept when it takes more than one value among the groups of that
    optimizer on that problem. Each series holds the groups that agree on every other varying
    field (other hyper-parameters, the schedule); each point carries the group's mean, median and
    CI of the metric and its success / divergence rates. ``best`` is the group with the best median
    among all of that optimizer's groups on the problem.
    """
    _check_metric(metric)
    out = []
    for pid, plabel, pgroups in _problems(groups):
        by_opt: dict[str, list[Group]] = {}
        for g in pgroups:
            by_opt.setdefault(str(g.optimizer.get("name")), []).append(g)
        for opt_name, ogroups in by_opt.items():
            flats = [flatten({"optimizer": g.optimizer, "schedule": g.schedule}) for g in ogroups]
            keys = sorted({k for f in flats for k in f})
            varying = [k for k in keys if len({_canonical(f.get(k)) for f in flats}) > 1]
            numeric = [
                k
                for k in varying
                if k.startswith("optimizer.")
                and all(
                    isinstance(f.get(k), int | float) and not isinstance(f.get(k), bool)
                    for f in flats
                )
            ]
            if not numeric:
                continue
            best = min(ogroups, key=lambda g: _median_or_worst(g, metric))
            has_best = math.isfinite(_median_or_worst(best, metric))
            for param in numeric:
                others = [k for k in varying if k != param and k.startswith("optimizer.")]
                schedules_vary = any(k.startswith("schedule.") for k in varying)
                series: dict[str, list[dict[str, Any]]] = {}
                for g, f in zip(ogroups, flats, strict=True):
                    parts = [f"{k.removeprefix('optimizer.')}={_fmt(f.get(k))}" for k in others]
                    if schedules_vary:
                        parts.append(g.solver_label.rsplit(" / ", 1)[1])
                    label = ", ".join(parts)
                    stats_ = describe(g.values(metric))
                    series.setdefault(label, []).append(
                        {
                            "x": f[param],
                            "group_id": g.id,
                            "mean": stats_["mean"],
                            "median": stats_["median"],
                            "ci_low": stats_["ci_low"],
                            "ci_high": stats_["ci_high"],
                            **_rates(g),
                        }
                    )
                xs = [float(f[param]) for f in flats]
                ordered: list[dict[str, Any]] = [
                    {"label": label, "points": sorted(points, key=lambda p: float(p["x"]))}
                    for label, points in series.items()
                ]
                out.append(
                    {
                        "problem_id": pid,
                        "problem": plabel,
                        "optimizer": opt_name,
                        "param": param.split(".", 1)[1],
                        "log_x": min(xs) > 0 and max(xs) / min(xs) >= 10,
                        "best_group_id": best.id if has_best else None,
                        "best_x": best.optimizer.get(param.split(".", 1)[1]) if has_best else None,
                        "series": ordered,
                    }
                )
    return out


def _rates(group: Group) -> dict[str, Any]:
    n = len(group.records)
    has_target = any(r["spec"].get("target_loss") is not None for r in group.records)
    return {
        "success_rate": sum(succeeded(r) for r in group.records) / n if has_target else None,
        "diverged_rate": sum(bool(r.get("diverged")) for r in group.records) / n,
    }


# ---------------------------------------------------------------------------------------------
# The summary


def group_summary(group: Group, metrics: Sequence[str], max_points: int) -> dict[str, Any]:
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
            }
            for r in group.records
        ],
        **_rates(group),
        "metrics": {m: describe(group.values(m)) for m in metrics},
        "curves": group_curves(group, max_points),
    }


def summarize(
    records: Iterable[Mapping[str, Any]],
    *,
    metric: str = "final_loss",
    baseline: str | None = None,
    max_points: int = 200,
    n_targets: int = 51,
    contour: Callable[[list[Group]], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Everything the dashboard and ``optbench compare`` show, from a list of run records.

    ``metric`` drives the comparisons, the tuning view and the default baseline; the performance
    profile's cost is steps-to-target when some run reached its target loss, else the final
    suboptimality. ``baseline`` names a solver (see :func:`resolve_solver`); by default the
    best-ranked one. ``contour`` (optional) adds a 2-D loss surface per problem.
    """
    _check_metric(metric)
    groups = group_runs(records)
    present = [m for m in GROUP_METRICS if any(v is not None for g in groups for v in g.values(m))]
    metrics = list(dict.fromkeys([metric, *present]))
    reached = any(succeeded(r) for g in groups for r in g.records)
    profile_metric = "steps_to_target" if reached else "final_loss"
    baseline_sid = (
        resolve_solver(groups, baseline) if baseline else default_baseline(groups, metric)
    )
    problems = []
    for pid, plabel, pgroups in _problems(groups):
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
        "solvers": [{"id": sid, "label": label} for sid, label in _solvers(groups)],
        "groups": [group_summary(g, metrics, max_points) for g in groups],
        "rankings": {
            "profile": profiles(groups, profile_metric) if groups else None,
            "ecdf": ecdfs(groups, n_targets=n_targets, max_points=max_points),
        },
        "baseline_solver_id": baseline_sid,
        "comparisons": compare(groups, baseline_sid, metric) if baseline_sid else [],
        "tuning": tuning(groups, metric),
    }


# ---------------------------------------------------------------------------------------------
# Export


def export_rows(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """One flat row per run: labels, the run spec with dotted hyper-parameter columns, metrics.

    Column order: ``run_id, status, problem, solver, seed, steps, target_loss, eval_every,
    dtype``, the ``problem.*``, ``optimizer.*`` and ``schedule.*`` columns (sorted), then the
    engine's metrics and ``auc_log_subopt``. :func:`normalize` turns a row back into a record.
    """
    groups = group_runs(records)
    rows = []
    spec_cols: set[str] = set()
    for g in groups:
        for rec in g.records:
            spec = rec["spec"]
            nested = flatten({k: spec[k] for k in NESTED})
            spec_cols.update(nested)
            row = {
                "run_id": rec.get("run_id"),
                "status": rec.get("status"),
                "problem": g.problem_label,
                "solver": g.solver_label,
                **{k: spec.get(k) for k in RUN_FIELDS},
                **nested,
                **{k: rec.get(k) for k in METRIC_KEYS},
                AUC: metric_value(rec, AUC),
            }
            rows.append(row)
    columns = [
        "run_id",
        "status",
        "problem",
        "solver",
        *RUN_FIELDS,
        *sorted(spec_cols, key=lambda c: (NESTED.index(c.split(".")[0]), c)),
        *METRIC_KEYS,
        AUC,
    ]
    return columns, rows


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """RFC 4180 CSV: lists as JSON text, booleans ``true``/``false``, missing values empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return _canonical(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


# ---------------------------------------------------------------------------------------------
# Regression gate


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
    _check_metric(metric)
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
        rate_c, rate_b = _rates(g)["success_rate"], _rates(b)["success_rate"]
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
