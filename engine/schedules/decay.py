"""Monotone decays relative to the optimizer's lr: constant, constant_factor, step, multistep,
exponential, linear and polynomial (PyTorch's ``ConstantLR``, ``StepLR``, ``MultiStepLR``,
``ExponentialLR``, ``LinearLR`` and ``PolynomialLR``).

Each is the closed form of its PyTorch counterpart (``_get_closed_form_lr``); PyTorch's own
``step()`` multiplies the previous lr recursively, which agrees with these to rounding.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, Field

from engine.schedules.base import SCHEDULES, ClosedForm, powers
from engine.specbase import SpecModel, Sweep

PositiveInt = Annotated[int, Field(ge=1)]
Gamma = Annotated[float, Field(gt=0)]


def _strictly_increasing(milestones: list[int]) -> list[int]:
    if any(b <= a for a, b in itertools.pairwise(milestones)):
        raise ValueError(f"milestones must be strictly increasing, got {milestones}")
    return milestones


Milestones = Annotated[list[PositiveInt], Field(min_length=1), AfterValidator(_strictly_increasing)]


class ConstantSpec(SpecModel):
    name: Literal["constant"] = "constant"


class ConstantFactorSpec(SpecModel):
    name: Literal["constant_factor"] = "constant_factor"
    factor: Sweep[Annotated[float, Field(ge=0, le=1)]] = 1.0 / 3
    total_iters: Sweep[PositiveInt] = 5


class StepSpec(SpecModel):
    name: Literal["step"] = "step"
    step_size: Sweep[PositiveInt]
    gamma: Sweep[Gamma] = 0.1


class MultiStepSpec(SpecModel):
    name: Literal["multistep"] = "multistep"
    milestones: Sweep[Milestones]
    gamma: Sweep[Gamma] = 0.1


class ExponentialSpec(SpecModel):
    name: Literal["exponential"] = "exponential"
    gamma: Sweep[Gamma]


class LinearSpec(SpecModel):
    name: Literal["linear"] = "linear"
    start_factor: Sweep[Annotated[float, Field(gt=0, le=1)]] = 1.0 / 3
    end_factor: Sweep[Annotated[float, Field(ge=0, le=1)]] = 1.0
    total_iters: Sweep[PositiveInt] = 5


class PolynomialSpec(SpecModel):
    name: Literal["polynomial"] = "polynomial"
    total_iters: Sweep[PositiveInt] = 5
    power: Sweep[Annotated[float, Field(gt=0)]] = 1.0


@SCHEDULES.register("constant", ConstantSpec)
class Constant(ClosedForm):
    """The optimizer's lr at every update: ``lr_t = lr`` (no scheduler)."""

    def __init__(self, lr: float, /) -> None:
        self.lr = float(lr)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.lr, dtype=np.float64)


@SCHEDULES.register("constant_factor", ConstantFactorSpec)
class ConstantFactor(ClosedForm):
    """A lowered lr for the first ``total_iters`` updates: ``lr · factor`` for ``t < total_iters``,
    then ``lr`` (PyTorch's ``ConstantLR``).

    A one-step jump where ``linear`` ramps; ``warmup`` with ``start_factor = factor`` reaches the
    same end without the jump. ``factor = 0`` (a pause) is allowed; PyTorch's recursive
    ``step()`` divides by the factor there.
    """

    def __init__(self, lr: float, /, *, factor: float, total_iters: int) -> None:
        if total_iters < 1:
            raise ValueError(f"total_iters must be >= 1, got {total_iters}")
        self.lr, self.factor, self.total_iters = float(lr), float(factor), int(total_iters)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        return np.where(t < self.total_iters, self.lr * self.factor, self.lr)


@SCHEDULES.register("step", StepSpec)
class Step(ClosedForm):
    """Decay by ``gamma`` every ``step_size`` updates: ``lr_t = lr · γ^⌊t / step_size⌋``.

    The seed's step schedule ``η(t) = γ^t η`` counted in blocks of ``step_size`` updates;
    ``exponential`` is the case ``step_size = 1``, ``multistep`` puts the decays at chosen steps.
    """

    def __init__(self, lr: float, /, *, step_size: int, gamma: float) -> None:
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.lr, self.step_size, self.gamma = float(lr), int(step_size), float(gamma)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        return self.lr * powers(self.gamma, t // self.step_size)


@SCHEDULES.register("multistep", MultiStepSpec)
class MultiStep(ClosedForm):
    """Decay by ``gamma`` at each milestone: ``lr_t = lr · γ^k``, ``k = #{m ∈ milestones : m ≤ t}``.

    Unlike ``step`` the decays fall at arbitrary (strictly increasing) update indices.
    """

    def __init__(self, lr: float, /, *, milestones: list[int], gamma: float) -> None:
        self.milestones = np.asarray(_strictly_increasing(list(milestones)), dtype=np.int64)
        self.lr, self.gamma = float(lr), float(gamma)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        passed = np.searchsorted(self.milestones, t, side="right")
        return self.lr * powers(self.gamma, passed)


@SCHEDULES.register("exponential", ExponentialSpec)
class Exponential(ClosedForm):
    """Decay by ``gamma`` every update: ``lr_t = lr · γ^t`` — the seed's ``η(t) = γ^t η``."""

    def __init__(self, lr: float, /, *, gamma: float) -> None:
        self.lr, self.gamma = float(lr), float(gamma)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        return self.lr * powers(self.gamma, t)


@SCHEDULES.register("linear", LinearSpec)
class Linear(ClosedForm):
    """The factor moves linearly from ``start_factor`` to ``end_factor`` in ``total_iters`` updates.

    ``lr_t = lr · (s + (e − s) · min(t, total_iters) / total_iters)``, then held at ``lr · e``.
    ``polynomial`` with ``power = 1`` is the case ``s = 1, e = 0``.
    """

    def __init__(
        self, lr: float, /, *, start_factor: float, end_factor: float, total_iters: int
    ) -> None:
        if total_iters < 1:
            raise ValueError(f"total_iters must be >= 1, got {total_iters}")
        self.lr, self.total_iters = float(lr), int(total_iters)
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        s, e, n = self.start_factor, self.end_factor, self.total_iters
        return self.lr * (s + (e - s) * np.minimum(n, t) / n)


@SCHEDULES.register("polynomial", PolynomialSpec)
class Polynomial(ClosedForm):
    """Polynomial decay to zero: ``lr_t = lr · (1 − min(t, total_iters) / total_iters)^power``.

    Reaches exactly 0 at ``t = total_iters`` and stays there (``linear`` keeps ``lr · end_factor``).
    """

    def __init__(self, lr: float, /, *, total_iters: int, power: float) -> None:
        if total_iters < 1:
            raise ValueError(f"total_iters must be >= 1, got {total_iters}")
        self.lr, self.total_iters, self.power = float(lr), int(total_iters), float(power)

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        n = self.total_iters
        return self.lr * np.power(1.0 - np.minimum(n, t) / n, self.power)
