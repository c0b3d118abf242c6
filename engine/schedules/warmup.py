"""``warmup``: a linear warm-up in front of any other schedule (which may itself read the loss)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from engine.schedules.base import SCHEDULES, Schedule, build_schedule, step_index
from engine.schedules.decay import ConstantSpec
from engine.specbase import SpecModel, Sweep

if TYPE_CHECKING:
    from engine.schedules import ScheduleSpec


class WarmupSpec(SpecModel):
    name: Literal["warmup"] = "warmup"
    warmup_steps: Sweep[Annotated[int, Field(ge=1)]]
    start_factor: Sweep[Annotated[float, Field(ge=0, le=1)]] = 1.0 / 3
    then: ScheduleSpec = Field(
        default=ConstantSpec(),
        description="The schedule after warm-up; its step count starts at 0 when warm-up ends.",
    )


@SCHEDULES.register("warmup", WarmupSpec)
class Warmup(Schedule):
    """Linear warm-up over ``warmup_steps`` updates, then the ``then`` schedule restarted at step 0.

    ``lr_t = lr · (s + (1 − s) · t / W)`` for ``t < W`` (``s = start_factor``, ``W =
    warmup_steps``), then ``lr_t = then.lr_at(t − W)``: the inner schedule's clock starts at 0
    after warm-up, so a ``cosine`` with ``T_max = steps − W`` ends with the run, and a loss-reading
    inner schedule sees only the losses of post-warm-up updates. This is PyTorch's
    ``SequentialLR([LinearLR(start_factor=s, end_factor=1, total_iters=W), then], milestones=[W])``.
    ``warmup`` + ``constant`` equals ``linear`` with ``end_factor = 1`` and ``total_iters = W``.
    """

    def __init__(self, lr: float, /, *, warmup_steps: int, start_factor: float, then: Any) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        self.lr, self.warmup_steps = float(lr), int(warmup_steps)
        self.start_factor = float(start_factor)
        self.inner = build_schedule(then, lr)
        self.reads_loss = self.inner.reads_loss
        self.seen = 0

    def _ramp(self, t: np.ndarray) -> np.ndarray:
        s = self.start_factor
        return self.lr * (s + (1.0 - s) * t / self.warmup_steps)

    def lr_at(self, t: int) -> float:
        t = step_index(t)
        if t < self.warmup_steps:
            return float(self._ramp(np.array([t], dtype=np.int64))[0])
        return self.inner.lr_at(t - self.warmup_steps)

    def observe(self, loss: float) -> None:
        if self.seen >= self.warmup_steps:
            self.inner.observe(loss)
        self.seen += 1

    def preview(self, n: int) -> np.ndarray:
        n = step_index(n)
        ramp = self._ramp(np.arange(min(n, self.warmup_steps), dtype=np.int64))
        return np.concatenate([ramp, self.inner.preview(max(0, n - self.warmup_steps))])
