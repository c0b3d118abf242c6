"""Benchmark problems: every module (and installed plugin, :mod:`engine.plugins`) registers its
entries in :data:`PROBLEMS`.

``ProblemSpec`` is the discriminated union (on ``name``) of the registered spec models;
:func:`build_problem` turns one grid-free spec into a run-batched :class:`Problem` for a list of
run seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from engine.plugins import load_plugins
from engine.problems import analytic, conv, learning, matrix, nqm
from engine.problems.base import PROBLEMS, Problem
from engine.specbase import grid_fields, union_of

load_plugins(PROBLEMS)
ProblemSpec = union_of(PROBLEMS.specs())


def build_problem(
    spec: BaseModel, seeds: Sequence[int], dtype: np.dtype | type | str = np.float64
) -> Problem:
    """One :class:`Problem` holding ``len(seeds)`` runs of ``spec`` (which must hold no grid)."""
    grids = grid_fields(spec)
    if grids:
        raise ValueError(f"expand the grid fields {sorted(grids)} before building a problem")
    entry = PROBLEMS.get(getattr(spec, "name"))  # noqa: B009
    return entry.factory(seeds, np.dtype(dtype), **spec.model_dump(exclude={"name"}))


__all__ = [
    "PROBLEMS",
    "Problem",
    "ProblemSpec",
    "analytic",
    "build_problem",
    "conv",
    "learning",
    "matrix",
    "nqm",
]
