"""The seed document's two hand-designed schedules: ``piecewise_linear`` and ``sawtooth``.

Both take their levels as factors of the optimizer's lr (``start_factor``, ``end_factor``), like
``linear``; the seed's examples use lr 1 so its start/end values are these factors.

Step convention: ``lr_at(t)`` is the seed's formula evaluated at ``epoch = t``, so update 0 uses
the start value. The seed's plots evaluate ``epoch = i + 1`` at index ``i``; their sequence of
``n`` values is ``lr_at(1), …, lr_at(n)``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from engine.schedules.base import SCHEDULES, ClosedForm, sweep_points
from engine.specbase import SpecModel, Sweep

PositiveInt = Annotated[int, Field(ge=1)]
Factor = Annotated[float, Field(ge=0)]


class PiecewiseLinearSpec(SpecModel):
    name: Literal["piecewise_linear"] = "piecewise_linear"
    total_steps: Sweep[PositiveInt]
    hold_fraction: Sweep[Annotated[float, Field(ge=0, lt=1)]] = 0.2
    decay_fraction: Sweep[Annotated[float, Field(gt=0, le=1)]] = 0.6
    start_factor: Sweep[Factor] = 1.0
    end_factor: Sweep[Factor] = 0.01

    @model_validator(mode="after")
    def _phases_fit(self) -> Self:
        for total_steps, hold, decay in sweep_points(
            self, "total_steps", "hold_fraction", "decay_fraction"
        ):
            piecewise_phases(total_steps, hold, decay)
        return self


class SawtoothSpec(SpecModel):
    name: Literal["sawtooth"] = "sawtooth"
    start_factor: Sweep[Factor] = 1.0
    end_factor: Sweep[Factor] = 0.1
    cycle_length: Sweep[PositiveInt] = 20


def piecewise_phases(
    total_steps: int, hold_fraction: float, decay_fraction: float
) -> tuple[int, int]:
    """``(hold, decay)`` step counts: ``⌊hold_fraction·T⌋`` and ``⌊decay_fraction·T⌋``.

    Raises ``ValueError`` when the fractions add up to more than 1 or the decay has no step.
    """
    if hold_fraction + decay_fraction > 1 + 1e-12:
        raise ValueError(
            f"hold_fraction + decay_fraction must be <= 1, got {hold_fraction} + {decay_fraction}"
        )
    hold, decay = int(hold_fraction * total_steps), int(decay_fraction * total_steps)
    if decay < 1:
        raise ValueError(
            f"decay_fraction · total_steps must be >= 1 step, got {decay_fraction} · {total_steps}"
        )
    return hold, decay


@SCHEDULES.register("piecewise_linear", PiecewiseLinearSpec)
class PiecewiseLinear(ClosedForm):
    """Constant, then a linear ramp, then constant again, with phases set by fractions of the run.

    With ``c = ⌊hold_fraction·T⌋``, ``d = ⌊decay_fraction·T⌋``, ``a = lr·start_factor`` and
    ``b = lr·end_factor``: ``lr_t = a`` for ``t < c``, ``a − (a − b)(t − c)/d`` for
    ``c ≤ t < c + d``, and ``b`` from ``t = c + d`` on (the seed's default: 20 % held, 60 % decay,
    1 → 0.01). The ramp starts at exactly ``a`` and its next step would land on ``b``, so neither
    phase boundary jumps. Unlike ``linear`` the decay is delayed by a plateau and both ends are
    fractions of the run rather than step counts.
    """

    def __init__(
        self,
        lr: float,
        /,
        *,
        total_steps: int,
        hold_fraction: float,
        decay_fraction: float,
        start_factor: float,
        end_factor: float,
    ) -> None:
        self.hold, self.decay = piecewise_phases(total_steps, hold_fraction, decay_fraction)
        self.start, self.end = float(lr) * start_factor, float(lr) * end_factor

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        a, b, c, d = self.start, self.end, self.hold, self.decay
        ramp = a - (a - b) * (t - c) / d
        return np.where(t < c, a, np.where(t < c + d, ramp, b))


@SCHEDULES.register("sawtooth", SawtoothSpec)
class Sawtooth(ClosedForm):
    """The seed's cyclic schedule: a linear ramp from start to end, reset every ``cycle_length``.

    ``lr_t = a − (a − b)·(t mod L)/L`` with ``a = lr·start_factor``, ``b = lr·end_factor``,
    ``L = cycle_length``: ``lr_0 = a`` and each cycle stops one step short of ``b`` before jumping
    back to ``a`` (seed default: 1 → 0.1 every 20). Unlike ``cyclic`` the return is a jump, not a
    ramp, and unlike ``cosine_warm_restarts`` the cycles neither grow nor curve.
    """

    def __init__(
        self, lr: float, /, *, start_factor: float, end_factor: float, cycle_length: int
    ) -> None:
        if cycle_length < 1:
            raise ValueError(f"cycle_length must be >= 1, got {cycle_length}")
        self.start, self.end = float(lr) * start_factor, float(lr) * end_factor
        self.cycle_length = int(cycle_length)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        a, b, n = self.start, self.end, self.cycle_length
        return a - (a - b) * (t % n) / n
