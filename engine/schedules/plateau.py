"""``reduce_on_plateau``: the one schedule that reads the loss (PyTorch's ``ReduceLROnPlateau``)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.schedules.base import SCHEDULES, Schedule, step_index
from engine.specbase import SpecModel, Sweep

NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PlateauMode = Literal["min", "max"]
ThresholdMode = Literal["rel", "abs"]


class ReduceOnPlateauSpec(SpecModel):
    name: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    mode: Sweep[PlateauMode] = "min"
    factor: Sweep[Annotated[float, Field(gt=0, lt=1)]] = 0.1
    patience: Sweep[NonNegativeInt] = 10
    threshold: Sweep[NonNegativeFloat] = 1e-4
    threshold_mode: Sweep[ThresholdMode] = "rel"
    cooldown: Sweep[NonNegativeInt] = 0
    min_lr: Sweep[NonNegativeFloat] = 0.0
    eps: Sweep[NonNegativeFloat] = 1e-8


@SCHEDULES.register("reduce_on_plateau", ReduceOnPlateauSpec)
class ReduceOnPlateau(Schedule):
    """Multiply the lr by ``factor`` after more than ``patience`` updates without improvement.

    After each update the loss ``f`` is compared with the best so far: in ``min`` mode it improves
    when ``f < best·(1 − threshold)`` (``rel``) or ``f < best − threshold`` (``abs``); ``max``
    mode mirrors this (``best·(1 + threshold)``, ``best + threshold``). Non-improving updates are
    counted; when the count exceeds ``patience`` the lr becomes ``max(lr·factor, min_lr)`` —
    skipped if that lowers it by ``eps`` or less — the count resets and the next ``cooldown``
    updates are not counted. ``best`` starts at +∞ (−∞ in ``max`` mode); a NaN loss never
    improves.

    Unlike every other schedule the lr depends on the losses seen, so ``lr_at(t)`` answers only
    for the next update (``t`` equal to the number of losses observed) and ``preview(n)`` is the
    schedule of a run that reports no loss: the optimizer's lr throughout.
    """

    reads_loss = True

    def __init__(
        self,
        lr: float,
        /,
        *,
        mode: PlateauMode,
        factor: float,
        patience: int,
        threshold: float,
        threshold_mode: ThresholdMode,
        cooldown: int,
        min_lr: float,
        eps: float,
    ) -> None:
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"unknown mode {mode!r} / threshold_mode {threshold_mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.base_lr = float(lr)
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.lr = self.base_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad = 0
        self.cooldown_left = 0
        self.seen = 0

    def _improves(self, loss: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return loss < self.best * (1.0 - self.threshold)
            return loss < self.best - self.threshold
        if self.threshold_mode == "rel":
            return loss > self.best * (self.threshold + 1.0)
        return loss > self.best + self.threshold

    def observe(self, loss: float) -> None:
        loss = float(loss)
        self.seen += 1
        if self._improves(loss):
            self.best = loss
            self.num_bad = 0
        else:
            self.num_bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.num_bad = 0
        if self.num_bad > self.patience:
            reduced = max(self.lr * self.factor, self.min_lr)
            if self.lr - reduced > self.eps:
                self.lr = reduced
            self.cooldown_left = self.cooldown
            self.num_bad = 0

    def lr_at(self, t: int) -> float:
        if step_index(t) != self.seen:
            raise ValueError(
                f"reduce_on_plateau answers for the next update only: {self.seen} losses "
                f"observed, so t must be {self.seen}, got {t}"
            )
        return self.lr

    def preview(self, n: int) -> np.ndarray:
        return np.full(step_index(n), self.base_lr, dtype=np.float64)
