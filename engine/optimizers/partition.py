"""Routing: different optimizers for different tensors of the layout (optax's ``partition`` /
``multi_transform``, torch's parameter groups).

A ``partition`` spec lists groups; each tensor of the row goes to the first group whose filters
(``kinds``, and ``tensors`` — ``fnmatch`` patterns on the tensor names such as
``layers.*.weight``) it matches, and the last group must match whatever is left. ``no_weight_decay``
names tensor kinds whose tensors get their group's optimizer with ``weight_decay = 0`` (torch's
recipe of a second parameter group; a ``chain`` loses its ``add_decayed_weights``). Each group's
optimizer steps the gathered columns of its tensors, seeing them as a layout of their own; the
rows' columns never mix. The fused form (``fused_``) steps each group with its own fused path.

A schedule multiplies every group's ``lr`` (the partition's own ``lr`` is the unit 1.0): a
warm-up or a cosine decay scales Muon's and AdamW's rates together, as torch's schedulers scale
each parameter group's base rate.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from engine.layout import TENSOR_KINDS, Layout, TensorKind
from engine.optimizers.base import OPTIMIZERS, HParam, Optimizer, State
from engine.plugins import load_plugins
from engine.specbase import SpecModel, union_of

#: Optimizers a group cannot hold: they choose their own gradient points (closure or ``x``/``y``),
#: which one slice of the row cannot do while the others are stepped from one gradient.
UNROUTABLE = frozenset({"lbfgs", "schedule_free_adamw", "schedule_free_sgd"})

load_plugins(OPTIMIZERS)  # a group may hold an installed optimizer: load them before the union
_ROUTABLE = [s for s in OPTIMIZERS.specs() if s.model_fields["name"].default not in UNROUTABLE]
GroupOptimizer = union_of(_ROUTABLE)


class Group(SpecModel):
    kinds: Annotated[tuple[TensorKind, ...], Field(min_length=1)] | None = Field(
        default=None, description="Tensor kinds this group takes (default: every kind)."
    )
    tensors: (
        Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)] | None
    ) = Field(
        default=None,
        description="fnmatch patterns on tensor names, e.g. 'layers.*.weight' (default: all).",
    )
    optimizer: GroupOptimizer  # type: ignore[valid-type]

    def takes(self, name: str, kind: str) -> bool:
        return (self.kinds is None or kind in self.kinds) and (
            self.tensors is None or any(fnmatch.fnmatchcase(name, p) for p in self.tensors)
        )


class PartitionSpec(SpecModel):
    name: Literal["partition"] = "partition"
    groups: Annotated[tuple[Group, ...], Field(min_length=1, max_length=16)]
    no_weight_decay: tuple[TensorKind, ...] = ()

    @property
    def lr(self) -> float:
        """The unit rate a schedule scales (each group keeps its own ``lr``)."""
        return 1.0

    @model_validator(mode="after")
    def _last_group_takes_the_rest(self) -> PartitionSpec:
        last = self.groups[-1]
        if last.kinds is not None and (
            last.tensors is not None or set(last.kinds) != set(TENSOR_KINDS)
        ):
            covered = {k for g in self.groups if g.tensors is None for k in (g.kinds or ())}
            if covered != set(TENSOR_KINDS):
                raise ValueError(
                    "the groups must take every tensor: leave the last group without filters "
                    f"(kinds without a group: {sorted(set(TENSOR_KINDS) - covered)})"
                )
        return self


def _split(
    groups: tuple[Group, ...], no_weight_decay: tuple[str, ...], layout: Layout
) -> list[tuple[Any, list[int]]]:
    """``(optimizer spec, tensor indices)`` per non-empty group, decay-exempt tensors split off."""
    owners: dict[int, list[int]] = {}
    for i, tensor in enumerate(layout.tensors):
        g = next(g for g, group in enumerate(groups) if group.takes(tensor.name, tensor.kind))
        owners.setdefault(g, []).append(i)
    out: list[tuple[Any, list[int]]] = []
    for g, members in sorted(owners.items()):
        spec: BaseModel = groups[g].optimizer
        exempt = [i for i in members if layout.tensors[i].kind in no_weight_decay]
        undecayed = _without_decay(spec)
        if undecayed is not None and exempt:
            kept = [i for i in members if i not in exempt]
            if kept:
                out.append((spec, kept))
            out.append((undecayed, exempt))
        else:
            out.append((spec, members))
    return out


def _without_decay(spec: BaseModel) -> BaseModel | None:
    """``spec`` with its weight decay off (``weight_decay: 0``; a chain without its
    ``add_decayed_weights``), or ``None`` when it has none to remove."""
    if getattr(spec, "weight_decay", 0.0) != 0.0:
        return spec.model_copy(update={"weight_decay": 0.0})
    transforms = getattr(spec, "transforms", None)
    if transforms is not None:
        kept = tuple(t for t in transforms if t.name != "add_decayed_weights")
        if len(kept) < len(transforms):
            return spec.model_copy(update={"transforms": kept})
    return None


@OPTIMIZERS.register("partition", PartitionSpec)
def partition(
    *,
    groups: tuple[Group, ...],
    no_weight_decay: tuple[TensorKind, ...] = (),
    layout: Layout | None = None,
) -> Optimizer:
    """Each group's optimizer on its tensors (module docstring); ``lr`` scales every group."""
    from engine.optimizers import build_optimizer

    built: list[tuple[Optimizer, np.ndarray, str]] = []

    def plan(n: int) -> list[tuple[Optimizer, np.ndarray, str]]:
        if built:
            return built
        lay = layout if layout is not None else Layout.vector(n)
        for k, (spec, members) in enumerate(_split(groups, no_weight_decay, lay)):
            tensors = [lay.tensors[i] for i in members]
            cols = np.concatenate([np.arange(t.offset, t.stop) for t in tensors])
            sub = Layout.build([(t.name, t.shape, t.kind) for t in tensors])
            built.append((build_optimizer(spec, layout=sub), cols, f"{k}:"))
        return built

    def init(params: np.ndarray) -> State:
        state: State = {}
        for opt, cols, prefix in plan(params.shape[1]):
            sub = opt.init(np.ascontiguousarray(params[:, cols]))
            state.update({prefix + key: value for key, value in sub.items()})
        return state

    def step(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam, fast: bool) -> None:
        """Each group's ``update_`` (or, ``fast``, its ``fast_update_``) on its gathered columns."""
        for opt, cols, prefix in plan(params.shape[1]):
            sub_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            p = np.ascontiguousarray(params[:, cols])
            update = opt.fast_update_ if fast else opt.update_
            update(np.ascontiguousarray(grads[:, cols]), sub_state, p, _scaled(opt.lr, lr))
            params[:, cols] = p

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        step(grads, state, params, lr, fast=False)

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        step(grads, state, params, lr, fast=True)

    return Optimizer(init, update_, 1.0, fused_)


def _scaled(group_lr: HParam, factor: HParam) -> HParam:
    """A group's ``lr`` times the schedule's factor, in float64 (a column if either is one)."""
    if isinstance(factor, np.ndarray):
        return np.asarray(group_lr, dtype=np.float64) * factor.astype(np.float64)
    return group_lr * factor
