"""Cosine annealing, without and with warm restarts (PyTorch's ``CosineAnnealingLR`` and
``CosineAnnealingWarmRestarts``, SGDR). ``eta_min`` is an absolute learning rate, as in PyTorch.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.schedules.base import SCHEDULES, ClosedForm
from engine.specbase import SpecModel, Sweep

PositiveInt = Annotated[int, Field(ge=1)]
EtaMin = Annotated[float, Field(ge=0)]


class CosineSpec(SpecModel):
    name: Literal["cosine"] = "cosine"
    T_max: Sweep[PositiveInt]
    eta_min: Sweep[EtaMin] = 0.0


class CosineWarmRestartsSpec(SpecModel):
    name: Literal["cosine_warm_restarts"] = "cosine_warm_restarts"
    T_0: Sweep[PositiveInt]
    T_mult: Sweep[PositiveInt] = 1
    eta_min: Sweep[EtaMin] = 0.0


def _anneal(lr: float, eta_min: float, t_cur: np.ndarray, period: np.ndarray | int) -> np.ndarray:
    return eta_min + (lr - eta_min) * (1 + np.cos(np.pi * t_cur / period)) / 2


@SCHEDULES.register("cosine", CosineSpec)
class Cosine(ClosedForm):
    """Half-cosine from ``lr`` to ``eta_min`` over ``T_max`` updates.

    ``lr_t = η_min + (lr − η_min) · (1 + cos(π t / T_max)) / 2``. Past ``T_max`` the formula is
    kept, so the lr rises back to ``lr`` at ``2 T_max`` (period ``2 T_max``), exactly as PyTorch's
    ``CosineAnnealingLR`` does when stepped beyond ``T_max``; ``cosine_warm_restarts`` jumps back
    to ``lr`` instead.
    """

    def __init__(self, lr: float, /, *, T_max: int, eta_min: float) -> None:
        if T_max < 1:
            raise ValueError(f"T_max must be >= 1, got {T_max}")
        self.lr, self.T_max, self.eta_min = float(lr), int(T_max), float(eta_min)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        return _anneal(self.lr, self.eta_min, t, self.T_max)


@SCHEDULES.register("cosine_warm_restarts", CosineWarmRestartsSpec)
class CosineWarmRestarts(ClosedForm):
    """Cosine annealing restarted at ``lr`` after each cycle; cycle ``i`` lasts ``T_0 · T_mult^i``.

    ``lr_t = η_min + (lr − η_min) · (1 + cos(π T_cur / T_i)) / 2`` where cycle ``i`` starts at
    ``S_i = T_0 (T_mult^i − 1) / (T_mult − 1)`` (``S_i = i T_0`` when ``T_mult = 1``),
    ``T_cur = t − S_i`` and ``T_i = T_0 T_mult^i``. The cycle is located with exact integer
    arithmetic (PyTorch's ``step(epoch)`` uses a floating-point logarithm that can misplace a
    cycle boundary; its ``step()`` counts, as here). Unlike ``cosine`` the lr never rises
    smoothly: it jumps back to ``lr`` at every ``S_i``.
    """

    def __init__(self, lr: float, /, *, T_0: int, T_mult: int, eta_min: float) -> None:
        if T_0 < 1 or T_mult < 1:
            raise ValueError(f"T_0 and T_mult must be >= 1, got T_0={T_0}, T_mult={T_mult}")
        self.lr, self.T_0, self.T_mult = float(lr), int(T_0), int(T_mult)
        self.eta_min = float(eta_min)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        if self.T_mult == 1:
            return _anneal(self.lr, self.eta_min, t % self.T_0, self.T_0)
        top = int(t.max(initial=0))
        starts = [0]
        period = self.T_0
        while starts[-1] <= top:
            starts.append(starts[-1] + period)
            period *= self.T_mult
        bounds = np.asarray(starts, dtype=np.int64)
        cycle = np.searchsorted(bounds, t, side="right") - 1
        lengths = self.T_0 * np.power(np.int64(self.T_mult), cycle)
        return _anneal(self.lr, self.eta_min, t - bounds[cycle], lengths)
