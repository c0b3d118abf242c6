"""Schedules of language-model training: ``wsd`` (warm-up, stable, decay) and ``inverse_sqrt``.

Neither has a ``torch.optim.lr_scheduler`` class. ``wsd`` with a linear or cosine decay is
PyTorch's ``SequentialLR([LinearLR(s, 1, W), ConstantLR(1), LinearLR(1, e, D) |
CosineAnnealingLR(D, lr·e)], milestones=[W, W + S])`` and is computed with those schedulers'
closed forms (the reference data checks it against them).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.schedules.base import SCHEDULES, ClosedForm
from engine.specbase import SpecModel, Sweep

NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
Factor = Annotated[float, Field(ge=0, le=1)]
DecayShape = Literal["linear", "cosine", "sqrt"]


class WSDSpec(SpecModel):
    name: Literal["wsd"] = "wsd"
    warmup_steps: Sweep[NonNegativeInt] = 0
    stable_steps: Sweep[NonNegativeInt]
    decay_steps: Sweep[PositiveInt]
    decay: Sweep[DecayShape] = Field(
        default="linear", description="shape of the decay: linear, cosine or sqrt (1 − √u)"
    )
    start_factor: Sweep[Factor] = Field(
        default=0.0, description="warm-up starts at lr·start_factor"
    )
    end_factor: Sweep[Factor] = Field(default=0.0, description="decay ends at lr·end_factor")


class InverseSqrtSpec(SpecModel):
    name: Literal["inverse_sqrt"] = "inverse_sqrt"
    warmup_steps: Sweep[PositiveInt] = Field(
        default=1, description="updates of linear warm-up; the lr peaks at update warmup_steps − 1"
    )


@SCHEDULES.register("wsd", WSDSpec)
class WSD(ClosedForm):
    """Warm up linearly, hold ``lr``, then decay to ``lr·end_factor`` in ``decay_steps`` updates.

    With ``W, S, D`` the phase lengths, ``s, e`` the start and end factors and
    ``u = min(t − W − S, D)/D`` the decay's progress:

    - ``t < W``: ``lr·(s + (1 − s)·t/W)`` (``linear``'s ramp);
    - ``W ≤ t < W + S``: ``lr``;
    - after: ``lr·(1 + (e − 1)·u)`` (linear), ``lr·e + (lr − lr·e)·(1 + cos πu)/2`` (cosine),
      ``lr·(e + (1 − e)·(1 − √u))`` (sqrt, the "1 − sqrt" cool-down of Hägele et al. 2024),
      held at ``lr·e`` once ``u = 1``.

    Unlike ``piecewise_linear`` (fractions of a known run length) the phases are step counts, so a
    run can be extended and branched into cool-downs at any point of its stable phase.
    """

    def __init__(
        self,
        lr: float,
        /,
        *,
        warmup_steps: int,
        stable_steps: int,
        decay_steps: int,
        decay: DecayShape,
        start_factor: float,
        end_factor: float,
    ) -> None:
        if decay not in ("linear", "cosine", "sqrt"):
            raise ValueError(f"unknown decay shape {decay!r}")
        if warmup_steps < 0 or stable_steps < 0 or decay_steps < 1:
            raise ValueError(
                "wsd needs warmup_steps >= 0, stable_steps >= 0 and decay_steps >= 1, got "
                f"{warmup_steps}, {stable_steps}, {decay_steps}"
            )
        self.lr, self.decay = float(lr), decay
        self.W, self.S, self.D = int(warmup_steps), int(stable_steps), int(decay_steps)
        self.s, self.e = float(start_factor), float(end_factor)

    def _decayed(self, k: np.ndarray) -> np.ndarray:
        lr, e, D = self.lr, self.e, self.D
        done = np.minimum(D, k)
        if self.decay == "linear":
            return lr * (1.0 + (e - 1.0) * done / D)
        if self.decay == "cosine":
            eta_min = lr * e
            return eta_min + (lr - eta_min) * (1.0 + np.cos(math.pi * done / D)) / 2.0
        return lr * (e + (1.0 - e) * (1.0 - np.sqrt(done / D)))

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        W, S = self.W, self.S
        out = self._decayed(np.maximum(t - W - S, 0))
        out[(t >= W) & (t < W + S)] = self.lr
        if W:
            ramp = t < W
            out[ramp] = self.lr * (self.s + (1.0 - self.s) * t[ramp] / W)
        return out


@SCHEDULES.register("inverse_sqrt", InverseSqrtSpec)
class InverseSqrt(ClosedForm):
    """Linear warm-up, then decay as the inverse square root of the update count.

    With ``n = t + 1`` (the 1-based update number) and ``W = warmup_steps``:
    ``lr_t = lr · min(n/W, √(W/n))`` — ``lr·n/W`` up to the peak ``lr`` at ``n = W``, then
    ``lr·√(W/n)`` (the Transformer's "Noam" schedule scaled to peak at ``lr``). ``W = 1`` is the
    classical ``lr/√(t + 1)`` of stochastic-approximation theory. Unlike ``polynomial`` it never
    reaches zero and needs no run length.
    """

    def __init__(self, lr: float, /, *, warmup_steps: int) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        self.lr, self.W = float(lr), int(warmup_steps)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        n = t + 1.0
        return self.lr * np.where(n < self.W, n / self.W, np.sqrt(self.W / n))
