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

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, TypeAdapter

from engine.layout import Layout
from engine.optimizers import (  # noqa: F401 — importing a family registers it
    adadelta,
    adagrad,
    adagrad_seed,
    adam,
    chain,
    classic,
    factored,
    lbfgs,
    lion,
    prodigy,
    rmsprop,
    schedule_free,
    sgd,
    trust,
)
from engine.optimizers import partition as _partition  # noqa: F401 — routes the families above
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
    "steps_alone",
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
    return _key(_as_spec(spec))


def _key(model: BaseModel) -> tuple[Any, ...]:
    # a model's __dict__ holds its fields in declaration order (one lookup each, not two)
    fixed = tuple((n, v) for n, v in model.__dict__.items() if n != "name" and not _per_run(v))
    return (model.name, *fixed)  # type: ignore[attr-defined]


def _with_layout(name: str, kwargs: dict[str, Any], layout: Layout | None) -> Optimizer:
    """Call the factory of ``name``, passing ``layout`` if it is structure-aware."""
    factory = OPTIMIZERS.get(name).factory
    if layout is not None and "layout" in inspect.signature(factory).parameters:
        kwargs = {**kwargs, "layout": layout}
    return factory(**kwargs)


#: Families whose runs are stepped one at a time: each run's line search decides where, and how
#: often, its closure evaluates, so runs sharing a closure would evaluate each other's points.
STEPS_ALONE = frozenset({"lbfgs"})


def steps_alone(spec: BaseModel | Mapping[str, Any]) -> bool:
    """Whether runs of this optimizer are stepped alone (see :data:`STEPS_ALONE`)."""
    return _as_spec(spec).name in STEPS_ALONE  # type: ignore[attr-defined]


def build_optimizer(spec: BaseModel | Mapping[str, Any], layout: Layout | None = None) -> Optimizer:
    """The optimizer one grid-free spec (a model or its dict) describes, for rows of ``layout``
    (one vector when omitted; only structure-aware optimizers read it)."""
    model = _as_spec(spec)
    fields = [n for n in type(model).model_fields if n != "name"]
    return _with_layout(
        model.name,  # type: ignore[attr-defined]
        {n: getattr(model, n) for n in fields},
        layout,
    )


def _column(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_column(list(part)) for part in zip(*values, strict=True))
    if not _per_run(first) or all(v == first for v in values):
        return first
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def build_optimizer_batch(
    specs: Sequence[BaseModel | Mapping[str, Any]], layout: Layout | None = None
) -> Optimizer:
    """One optimizer for ``R`` runs: run ``r`` follows ``specs[r]`` on row ``r`` of the params.

    A float field that differs between the specs becomes an ``(R, 1)`` column (one equal in all
    of them stays a float); the specs must share :func:`batch_key`.
    """
    models = [_as_spec(s) for s in specs]
    if not models:
        raise ValueError("build_optimizer_batch needs at least one spec")
    keys = {_key(m) for m in models}
    if len(keys) > 1:
        raise ValueError(f"optimizer specs differ in fields that cannot vary per run: {keys}")
    fields = [n for n in type(models[0]).model_fields if n != "name"]
    kwargs = {n: _column([getattr(m, n) for m in models]) for n in fields}
    return _with_layout(models[0].name, kwargs, layout)  # type: ignore[attr-defined]
