"""The LR schedule interface.

A schedule maps the update index ``t`` (0-based: ``t = 0`` is the first optimizer step) to the
learning rate that update uses, relative to the optimizer's own ``lr`` (PyTorch's ``base_lr``)
unless its parameters are absolute (``cyclic``, ``one_cycle``).

Closed-form schedules are pure functions of ``t``: :meth:`Schedule.lr_at`. A schedule that reads
the loss (``reduce_on_plateau``, or a ``warmup`` wrapping one) has ``reads_loss = True``; the run
loop calls :meth:`Schedule.observe` once after every update with the loss evaluated at the
parameters that produced that update's gradient (the order of ``opt.step(); sched.step(loss)`` in
a PyTorch loop), and its ``lr_at`` answers for the next update only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from engine.registry import Registry


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


ScheduleFactory = Callable[..., Schedule]
SCHEDULES: Registry[ScheduleFactory] = Registry("schedule")
