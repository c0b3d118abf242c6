"""Curve views for clients: downsampling that keeps extremes, and "what is new since step K".

A run's curves come in two groups, each with its own x axis: the eval-aligned group
(``eval_steps`` with ``grad_evals``, ``losses``, ``wall_times`` and the 2-D trajectory
``params_x``/``params_y``) and the per-update group (``update_steps`` = 0, 1, … with ``lrs``,
``grad_norms``, ``update_norms``).
Both functions return both groups with their explicit x arrays. A curve is a list (``None`` for a
non-finite value, as JSON and the store give it) or a NumPy array (NaN there, as the engine's
results carry it); each y curve comes back in the form it came in, the x arrays as lists.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

EVAL_Y = ("grad_evals", "losses", "wall_times", "params_x", "params_y")
UPDATE_Y = ("lrs", "grad_norms", "update_norms")
#: Series whose extremes each bucket keeps (the others follow the kept indices).
_EXTREMES = {"eval": ("losses",), "update": UPDATE_Y}


def _groups(curves: dict[str, Any]) -> dict[str, tuple[str, np.ndarray, list[str]]]:
    n_updates = len(curves.get("lrs", []))
    update_x = curves.get("update_steps")
    if update_x is None:
        update_x = list(range(n_updates))
    return {
        "eval": (
            "eval_steps",
            np.asarray(curves.get("eval_steps", []), dtype=np.int64),
            [k for k in EVAL_Y if k in curves],
        ),
        "update": (
            "update_steps",
            np.asarray(update_x, dtype=np.int64),
            [k for k in UPDATE_Y if k in curves],
        ),
    }


def _as_float(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _take(values: Sequence[Any] | np.ndarray, idx: np.ndarray) -> list[Any] | np.ndarray:
    if isinstance(values, np.ndarray):
        return values[idx]
    return [values[i] for i in idx.tolist()]


def downsample(curves: dict[str, Any], max_points: int) -> dict[str, Any]:
    """At most ``max_points`` points per group, keeping each bucket's min, max and last point.

    The x range is cut into equal buckets of consecutive points; every bucket keeps the indices of
    the minimum and maximum of its extreme-carrying series (``losses``; or each per-update series)
    and its last point, so spikes, the best value and the final value all survive; the first point
    is always kept. Below ``1 + 2k + 1`` points (k extreme-carrying series) it falls back to
    evenly spaced points. A group already within ``max_points`` is returned whole.
    """
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    out: dict[str, Any] = {}
    for group, (xname, x, ynames) in _groups(curves).items():
        n = len(x)
        per_bucket = 2 * len([y for y in _EXTREMES[group] if y in ynames]) + 1
        buckets = (max_points - 1) // per_bucket
        if n <= max_points or buckets < 1:
            keep = np.arange(n) if n <= max_points else np.linspace(0, n - 1, max_points).round()
            keep = np.unique(keep.astype(np.int64))
        else:
            edges = np.linspace(0, n, buckets + 1).astype(np.int64)
            chosen: list[np.ndarray] = [np.array([0], dtype=np.int64), edges[1:] - 1]
            for yname in _EXTREMES[group]:
                if yname not in ynames:
                    continue
                y = _as_float(curves[yname])
                for lo, hi in itertools.pairwise(edges):
                    seg = y[lo:hi]
                    if np.isfinite(seg).any():
                        chosen.append(np.array([lo + np.nanargmin(seg), lo + np.nanargmax(seg)]))
            keep = np.unique(np.concatenate(chosen))
        out[xname] = x[keep].tolist()
        for yname in ynames:
            out[yname] = _take(curves[yname], keep)
    return out


def since(curves: dict[str, Any], step: int) -> dict[str, Any]:
    """Only the points at step ``step`` or later, in both groups."""
    out: dict[str, Any] = {}
    for xname, x, ynames in _groups(curves).values():
        start = int(np.searchsorted(x, step, side="left"))
        out[xname] = x[start:].tolist()
        for yname in ynames:
            values = curves[yname][start:]
            out[yname] = values if isinstance(values, np.ndarray) else list(values)
    return out
