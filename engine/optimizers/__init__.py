"""The optimizers: every family registered in :data:`OPTIMIZERS` (and those of installed plugins,
:mod:`engine.plugins`), their spec union, and builders.

:func:`build_optimizer` turns one grid-free spec into an :class:`Optimizer`;
:func:`build_optimizer_batch` turns ``R`` specs that agree on :func:`batch_key` into one optimizer
stepping ``(R, N)`` parameters, each run with its own hyper-parameters (``(R, 1)`` columns).
Float hyper-parameters (and pairs of them such as ``betas``) vary per run; booleans and integers
(``nesterov``, ``amsgrad``, ``centered``, ``window``, …) change the kernel or the shape of its
state, so runs that differ in one of them are stepped in separate batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter

from engine.optimizers import (  # noqa: F401 — importing a family registers it
    adadelta,
    adagrad,
    adagrad_seed,
    adam,
    lion,
    rmsprop,
    sgd,
)
from engine.optimizers.base import OPTIMIZERS, Optimizer, State
from engine.plugins import load_plugins
from engine.specbase import grid_fields, union_of

__all__ = [
    "OPTIMIZERS",
    "Optimizer",
    "OptimizerSpec",
    "State",
    "batch_key",
    "build_optimizer",
    "build_optimizer_batch",
]

load_plugins(OPTIMIZERS)
OptimizerSpec = union_of(OPTIMIZERS.specs())
_ADAPTER: TypeAdapter[Any] = TypeAdapter(OptimizerSpec)


def _as_spec(spec: BaseModel | Mapping[str, Any]) -> BaseModel:
    model = spec if isinstance(spec, BaseModel) else _ADAPTER.validate_python(dict(spec))
    grids = grid_fields(model)
    if grids:
        raise ValueError(f"optimizer spec has grids in {sorted(grids)}; expand it into runs first")
    return model


def _per_run(value: Any) -> bool:
    """Whether a field's value may differ between the runs of one batch."""
    if isinstance(value, tuple):
        return all(_per_run(v) for v in value)
    return isinstance(value, float)


def batch_key(spec: BaseModel | Mapping[str, Any]) -> tuple[Any, ...]:
    """The optimizer name and the fields that must agree for runs to share a batch."""
    model = _as_spec(spec)
    fixed = tuple(
        (name, getattr(model, name))
        for name in type(model).model_fields
        if name != "name" and not _per_run(getattr(model, name))
    )
    return (model.name, *fixed)  # type: ignore[attr-defined]


def build_optimizer(spec: BaseModel | Mapping[str, Any]) -> Optimizer:
    """The optimizer one grid-free spec (a model or its dict) describes."""
    model = _as_spec(spec)
    entry = OPTIMIZERS.get(model.name)  # type: ignore[attr-defined]
    return entry.factory(**model.model_dump(exclude={"name"}))


def _column(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_column(list(part)) for part in zip(*values, strict=True))
    if not _per_run(first) or all(v == first for v in values):
        return first
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def build_optimizer_batch(specs: Sequence[BaseModel | Mapping[str, Any]]) -> Optimizer:
    """One optimizer for ``R`` runs: run ``r`` follows ``specs[r]`` on row ``r`` of the params.

    A float field that differs between the specs becomes an ``(R, 1)`` column (one equal in all
    of them stays a float); the specs must share :func:`batch_key`.
    """
    models = [_as_spec(s) for s in specs]
    if not models:
        raise ValueError("build_optimizer_batch needs at least one spec")
    keys = {batch_key(m) for m in models}
    if len(keys) > 1:
        raise ValueError(f"optimizer specs differ in fields that cannot vary per run: {keys}")
    fields = [n for n in type(models[0]).model_fields if n != "name"]
    kwargs = {n: _column([getattr(m, n) for m in models]) for n in fields}
    return OPTIMIZERS.get(models[0].name).factory(**kwargs)  # type: ignore[attr-defined]
