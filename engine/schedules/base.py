"""The LR schedule interface.

A schedule maps the update index ``t`` (0-based: ``t = 0`` is the first optimizer step) to the
learning rate that update uses, relative to the optimizer's own ``lr`` (PyTorch's ``base_lr``)
unless its parameters are absolute (``cyclic``, ``one_cycle``).

Closed-form schedules are pure functions of ``t``: :meth:`Schedule.lr_at`. A schedule that reads
the loss (``reduce_on_plateau``, or a ``warmup`` wrapping one) has ``reads_loss = True``; the run
loop calls :meth:`Schedule.observe` once after every update with the loss evaluated at the
parameters that produced that update's gradient (the order of ``opt.step(); sched.step(loss)`` in
a PyTorch loop), and its ``lr_at`` answers for the next update only.

The ``t`` convention is PyTorch's: ``lr_at(t)`` is the value a ``torch.optim.lr_scheduler``
scheduler has set after ``t`` calls of ``scheduler.step()`` (its ``last_epoch == t``), which is
the learning rate of the optimizer's ``t``-th ``step()``.

Factories are called as ``factory(lr, **fields)``: ``lr`` (positional) is the optimizer's learning
rate and ``fields`` are the spec model's fields other than ``name`` (see :func:`build_schedule`).
"""

from __future__ import annotations

import itertools
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel

from engine.registry import Registry
from engine.specbase import grid_fields


class Schedule(ABC):
    reads_loss: bool = False

    @abstractmethod
    def lr_at(self, t: int) -> float:
        """Learning rate of update ``t``."""

    def observe(self, loss: float) -> None:  # noqa: B027 — closed-form schedules ignore the loss
        """Feed the loss of the update just taken (loss-reading schedules only)."""

    def preview(self, n: int) -> np.ndarray:
        """LRs of updates ``0 .. n-1`` without training (a loss-reading schedule sees no loss)."""
        return np.array([self.lr_at(t) for t in range(n)], dtype=np.float64)


class ClosedForm(Schedule):
    """A schedule that is a pure function of ``t``, evaluated for a whole array of steps at once.

    Subclasses define :meth:`lrs_at`; ``lr_at(t)`` and ``preview(n)`` both go through it, so the
    scalar query and the vectorised preview agree bit for bit.
    """

    @abstractmethod
    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        """LRs (float64) of the updates in ``t``, an int64 array of non-negative step indices."""

    def lr_at(self, t: int) -> float:
        return float(self.lrs_at(np.array([step_index(t)], dtype=np.int64))[0])

    def preview(self, n: int) -> np.ndarray:
        return self.lrs_at(np.arange(step_index(n), dtype=np.int64))


def step_index(t: int) -> int:
    """``t`` as a non-negative Python int (update indices and preview lengths)."""
    i = operator.index(t)
    if i < 0:
        raise ValueError(f"step index must be >= 0, got {i}")
    return i


def powers(gamma: float, k: np.ndarray) -> np.ndarray:
    """``γ^k`` for an int array ``k ≥ 0``, elementwise as ``np.power`` computes it.

    Where ``γ^k < 2^-1080`` (far below the smallest subnormal, so ``np.power`` returns 0) the 0 is
    written directly: libm's underflow path costs ~100× a normal ``pow``, and a decayed schedule
    spends most of a long run there.
    """
    if not 0 < gamma < 1:
        return np.power(gamma, k)
    live = k < math.ceil(-1080 / math.log2(gamma))
    if live.all():
        return np.power(gamma, k)
    out = np.zeros(k.shape, dtype=np.float64)
    out[live] = np.power(gamma, k[live])
    return out


def sweep_points(spec: BaseModel, *names: str) -> Iterator[tuple[Any, ...]]:
    """Every combination of the named fields' values, a grid field contributing each of its values.

    Cross-field checks in a spec model's validator run over these, so a grid is rejected at
    submission when any one of the runs it expands to would be invalid.
    """
    grids = grid_fields(spec)
    return itertools.product(*(grids.get(n, [getattr(spec, n)]) for n in names))


ScheduleFactory = Callable[..., Schedule]
SCHEDULES: Registry[ScheduleFactory] = Registry("schedule")


def build_schedule(spec: BaseModel | Mapping[str, Any], base_lr: float) -> Schedule:
    """Build the schedule a grid-free spec (model or dict) describes, at optimizer lr ``base_lr``.

    Builds a fresh instance each call: a loss-reading schedule keeps its state in the instance.
    """
    if isinstance(spec, BaseModel):
        model = spec
        entry = SCHEDULES.get(getattr(spec, "name", ""))
    else:
        entry = SCHEDULES.get(spec.get("name", ""))
        model = entry.spec.model_validate(spec)
    grids = grid_fields(model)
    if grids:
        raise ValueError(
            f"schedule {entry.name!r} has grid values in {sorted(grids)}; expand the experiment "
            "into runs before building a schedule"
        )
    return entry.factory(float(base_lr), **model.model_dump(exclude={"name"}))
