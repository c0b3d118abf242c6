"""``sequential``: schedules run one after another, switched at milestones (PyTorch's
``SequentialLR``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import numpy as np
from pydantic import AfterValidator, Field, model_validator

from engine.schedules.base import SCHEDULES, Schedule, build_schedule, step_index, sweep_points
from engine.schedules.decay import PositiveInt, _strictly_increasing
from engine.specbase import SpecModel, Sweep

if TYPE_CHECKING:
    from engine.schedules import ScheduleSpec

#: Switch points of ``sequential``: strictly increasing update indices (empty for one schedule).
Switches = Annotated[list[PositiveInt], AfterValidator(_strictly_increasing)]


class SequentialSpec(SpecModel):
    name: Literal["sequential"] = "sequential"
    schedulers: list[ScheduleSpec] = Field(
        min_length=1,
        description="The schedules in order; each one's step count starts at 0 at its milestone.",
    )
    milestones: Sweep[Switches] = Field(
        description="Update indices where the next schedule takes over (one fewer than schedules)."
    )

    @model_validator(mode="after")
    def _one_milestone_between_schedules(self) -> Self:
        for (milestones,) in sweep_points(self, "milestones"):
            if len(milestones) != len(self.schedulers) - 1:
                raise ValueError(
                    f"{len(self.schedulers)} schedulers need {len(self.schedulers) - 1} "
                    f"milestones, got {len(milestones)}"
                )
        return self


@SCHEDULES.register("sequential", SequentialSpec)
class Sequential(Schedule):
    """Schedule ``k`` drives the updates from milestone ``m_k`` to ``m_{k+1}``, on its own clock.

    With ``m_0 = 0`` and ``k`` the number of milestones ``≤ t``: ``lr_t = S_k.lr_at(t − m_k)``, as
    PyTorch's ``SequentialLR`` steps its next scheduler with ``step(0)`` at each milestone. Every
    schedule is relative to the same optimizer lr, so a milestone can jump (``warmup`` is the
    two-schedule case ``[linear ramp, then]`` whose ramp ends where ``then`` starts). A
    loss-reading schedule (PyTorch refuses one here) sees only the losses of its own updates.
    """

    def __init__(self, lr: float, /, *, schedulers: list[Any], milestones: list[int]) -> None:
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("sequential needs exactly one milestone between two schedules")
        self.starts = [0, *(int(m) for m in _strictly_increasing(list(milestones)))]
        if self.starts[1:] and self.starts[1] < 1:
            raise ValueError(f"milestones must be >= 1, got {milestones}")
        self.parts = [build_schedule(s, lr) for s in schedulers]
        self.reads_loss = any(p.reads_loss for p in self.parts)
        self.seen = 0

    def _part(self, t: int) -> int:
        return int(np.searchsorted(self.starts, t, side="right")) - 1

    def lr_at(self, t: int) -> float:
        k = self._part(step_index(t))
        return self.parts[k].lr_at(t - self.starts[k])

    def observe(self, loss: float) -> None:
        k = self._part(self.seen)
        self.parts[k].observe(loss)
        self.seen += 1

    def preview(self, n: int) -> np.ndarray:
        n = step_index(n)
        bounds = [*self.starts, max(n, self.starts[-1])]
        pieces = [
            part.preview(max(0, min(n, stop) - start))
            for part, start, stop in zip(self.parts, bounds[:-1], bounds[1:], strict=True)
        ]
        return np.concatenate(pieces)
