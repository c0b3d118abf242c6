"""AdaGrad: per-coordinate steps scaled by the root of all squared gradients so far."""

from __future__ import annotations

from typing import Literal

import numpy as np

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
from engine.specbase import SpecModel, Sweep


class AdagradSpec(SpecModel):
    name: Literal["adagrad"] = "adagrad"
    lr: Sweep[Positive] = 1e-2
    lr_decay: Sweep[NonNegative] = 0.0
    weight_decay: Sweep[NonNegative] = 0.0
    initial_accumulator_value: Sweep[NonNegative] = 0.0
    eps: Sweep[Positive] = 1e-10


@OPTIMIZERS.register("adagrad", AdagradSpec)
def adagrad(
    *,
    lr: HParam = 1e-2,
    lr_decay: HParam = 0.0,
    weight_decay: HParam = 0.0,
    initial_accumulator_value: HParam = 0.0,
    eps: HParam = 1e-10,
) -> Optimizer:
    """AdaGrad (Duchi et al.): ``torch.optim.Adagrad``.

    With ``g = grad + weight_decay·p``: ``s += g²`` (state ``sum``, starting at
    ``initial_accumulator_value``) and ``p -= lr_t · g/(√s + ε)`` with
    ``lr_t = lr/(1 + (t-1)·lr_decay)``. The sum includes the current gradient; the seed
    document's ``r(t) = G²(0) + … + G²(t-1)`` stops one step earlier (its first step would divide
    by ε alone). Unlike RMSprop the sum never forgets, so the effective rate only shrinks.
    PyTorch's operation order: ``p + (-lr_t·g)/(√s + ε)``.
    """
    decay, wd, acc0, eps_ = (
        hparam(lr_decay),
        hparam(weight_decay),
        hparam(initial_accumulator_value),
        hparam(eps),
    )
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, decay, wd, acc0, eps_)
        acc = np.empty_like(params)
        acc[...] = acc0
        state: State = {"t": counter(), "sum": acc}
        state |= buffers(params, (), ("wd", "eps", "k"))
        put(state["_wd"], wd)
        put(state["_eps"], eps_)
        return state

    def coefficients(state: State, lr: HParam) -> None:
        t = float(tick(state))
        put(state["_k"], -(f64(lr) / (1 + (t - 1) * decay)))

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        g = grads + state["_wd"] * params if has_wd else grads
        acc = state["sum"]
        acc += g * g
        params += (state["_k"] * g) / (np.sqrt(acc) + state["_eps"])

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        fused.adagrad_step(
            params, grads, state["sum"], has_wd, state["_wd"], state["_eps"], state["_k"]
        )

    return Optimizer(init, update_, lr, fused_)
