"""Rprop and averaged SGD, as ``torch.optim.Rprop`` and ``torch.optim.ASGD``.

Both are older than the adaptive family and keep per-coordinate state of another kind: Rprop a
step size per coordinate that grows while the gradient keeps its sign and shrinks when it flips
(the gradient's magnitude is never used); ASGD a plain SGD iterate with a decaying rate, plus the
running (Polyak) average of its iterates.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    State,
    hparam,
)
from engine.optimizers.kernel import buffers, check_params, counter, f64, nonzero, put, tick
from engine.optimizers.tensors import typed
from engine.specbase import SpecModel, Sweep, grid_fields


def _column(value: HParam, rows: int) -> np.ndarray:
    """A float or ``(R, 1)`` hyper-parameter as an ``(R, 1)`` float64 column."""
    return np.broadcast_to(np.asarray(f64(value), dtype=np.float64), (rows, 1)).copy()


class RpropSpec(SpecModel):
    name: Literal["rprop"] = "rprop"
    lr: Sweep[Positive] = 1e-2
    etas: Sweep[tuple[Annotated[float, Field(gt=0, lt=1)], Annotated[float, Field(gt=1)]]] = (
        0.5,
        1.2,
    )
    step_sizes: Sweep[tuple[NonNegative, Positive]] = (1e-6, 50.0)

    @model_validator(mode="after")
    def _ordered_bounds(self) -> RpropSpec:
        for low, high in grid_fields(self).get("step_sizes", [self.step_sizes]):
            if low > high:
                raise ValueError("step_sizes must be (min, max) with min <= max")
        return self


@OPTIMIZERS.register("rprop", RpropSpec)
def rprop(
    *,
    lr: HParam = 1e-2,
    etas: tuple[HParam, HParam] = (0.5, 1.2),
    step_sizes: tuple[HParam, HParam] = (1e-6, 50.0),
) -> Optimizer:
    """Resilient backpropagation (Riedmiller & Braun): ``torch.optim.Rprop``.

    Per coordinate, with ``s = sign(g·g_prev)``: the step size ``η`` becomes ``η·eta_plus``
    (s > 0), ``η·eta_minus`` (s < 0) or stays (s = 0), clipped to ``step_sizes``; where the sign
    flipped the gradient is taken as 0 (no move now, and no sign to compare next time); then
    ``p -= sign(g)·η``. Step sizes start at the ``lr`` of the first update: as in torch, a
    schedule changes nothing after that.
    """
    eta_minus, eta_plus = (hparam(e) for e in etas)
    low, high = (hparam(s) for s in step_sizes)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, eta_minus, eta_plus, low, high)
        rows = params.shape[0]
        return {
            "t": counter(),
            "prev": np.zeros_like(params),
            "step_size": np.zeros_like(params),
            "_minus": _column(eta_minus, rows).astype(params.dtype),
            "_plus": _column(eta_plus, rows).astype(params.dtype),
            "_low": _column(low, rows).astype(params.dtype),
            "_high": _column(high, rows).astype(params.dtype),
            "_one": np.ones((rows, 1), dtype=params.dtype),
        }

    def first_step_size(state: State, params: np.ndarray, lr: HParam) -> None:
        if tick(state) == 1:
            state["step_size"][...] = np.asarray(f64(lr)).astype(params.dtype)

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        first_step_size(state, params, lr)
        minus = np.broadcast_to(state["_minus"], params.shape)
        factor = np.sign(grads * state["prev"])
        factor = np.where(factor > 0, state["_plus"], np.where(factor < 0, minus, 1.0))
        step = state["step_size"]
        step *= factor
        np.clip(step, state["_low"], state["_high"], out=step)
        g = np.where(factor == minus, 0.0, grads).astype(params.dtype)
        params -= np.sign(g) * step
        state["prev"][...] = g

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        first_step_size(state, params, lr)
        fused.rprop_step(
            params, grads, state["prev"], state["step_size"], state["_minus"], state["_plus"],
            state["_one"], state["_low"], state["_high"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)


class ASGDSpec(SpecModel):
    name: Literal["asgd"] = "asgd"
    lr: Sweep[Positive] = 1e-2
    lambd: Sweep[NonNegative] = 1e-4
    alpha: Sweep[NonNegative] = 0.75
    t0: Sweep[NonNegative] = 1e6
    weight_decay: Sweep[NonNegative] = 0.0


@OPTIMIZERS.register("asgd", ASGDSpec)
def asgd(
    *,
    lr: HParam = 1e-2,
    lambd: HParam = 1e-4,
    alpha: HParam = 0.75,
    t0: HParam = 1e6,
    weight_decay: HParam = 0.0,
) -> Optimizer:
    """Averaged SGD (Polyak & Juditsky; Bottou's rate schedule): ``torch.optim.ASGD``.

    With ``g = grad + weight_decay·p``: ``p = p·(1 - λ·η) - η·g``; the average ``ax`` (state)
    follows ``ax += μ·(p - ax)`` (a copy of ``p`` while ``μ = 1``); then, for the next update,
    ``η = lr/(1 + λ·lr·t)^α`` and ``μ = 1/max(1, t - t0)``. The first update uses ``η = lr``. As in
    torch the iterate ``p`` is what is stepped and evaluated; ``ax`` is kept in the state.
    """
    lambd_, alpha_, t0_, wd = (hparam(v) for v in (lambd, alpha, t0, weight_decay))
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, lambd_, alpha_, t0_, wd)
        rows = params.shape[0]
        state: State = {
            "t": counter(),
            "ax": np.zeros_like(params),
            "eta": np.zeros((rows, 1)),
            "mu": np.ones((rows, 1)),
        }
        state |= buffers(params, (), ("wd", "shrink", "eta", "mu"))
        state["_averaging"] = np.empty((rows, 1), dtype=np.bool_)
        put(state["_wd"], wd)
        return state

    def start(state: State, lr: HParam) -> int:
        """Ticks the step count; the first update sets ``η = lr``. Returns ``t``."""
        t = tick(state)
        if t == 1:
            state["eta"][...] = f64(lr)
        return t

    def schedule(state: State, lr: HParam, t: int) -> None:
        """``η`` and ``μ`` of the next update."""
        state["eta"][...] = f64(lr) / (1.0 + lambd_ * f64(lr) * t) ** alpha_
        state["mu"][...] = 1.0 / np.maximum(1.0, t - t0_)

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = start(state, lr)
        eta, mu, dt = state["eta"], state["mu"], params.dtype
        g = grads + typed(f64(wd), dt) * params if has_wd else grads
        params *= typed(1.0 - lambd_ * eta, dt)
        params -= g * typed(eta, dt)
        ax = state["ax"]
        averaging = mu != 1.0
        ax[...] = np.where(averaging, ax + (params - ax) * typed(mu, dt), params)
        schedule(state, lr, t)

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = start(state, lr)
        eta, mu = state["eta"], state["mu"]
        put(state["_shrink"], 1.0 - lambd_ * eta)
        put(state["_eta"], eta)
        put(state["_mu"], mu)
        np.not_equal(mu, 1.0, out=state["_averaging"])
        fused.asgd_step(
            params, grads, state["ax"], has_wd, state["_wd"], state["_shrink"], state["_eta"],
            state["_averaging"], state["_mu"],
        )  # fmt: skip
        schedule(state, lr, t)

    return Optimizer(init, update_, lr, fused_)
