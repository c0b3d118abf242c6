"""``signum``: signSGD with momentum (Bernstein et al., 2018), as an installed plugin would add it.

The module follows the contract of the engine's own optimizer modules: a spec model whose fields
are the factory's keyword arguments (PyTorch-style names), and a factory returning an
:class:`~engine.optimizers.base.Optimizer` that steps ``(R, N)`` parameters in place with every
hyper-parameter a float or an ``(R, 1)`` column. It imports only ``engine.optimizers.base`` and
``engine.specbase`` (see :mod:`engine.plugins`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from engine.optimizers.base import (
    OPTIMIZERS,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    Rate,
    State,
    hparam,
)
from engine.specbase import SpecModel, Sweep


class SignumSpec(SpecModel):
    name: Literal["signum"] = "signum"
    lr: Sweep[Positive] = 1e-4
    momentum: Sweep[Rate] = 0.9
    weight_decay: Sweep[NonNegative] = 0.0


@OPTIMIZERS.register("signum", SignumSpec)
def signum(*, lr: HParam = 1e-4, momentum: HParam = 0.9, weight_decay: HParam = 0.0) -> Optimizer:
    """Signum: step by the sign of an exponential moving average of the gradients.

    ``m ← β m + (1 − β) g`` (``m₀ = 0``), then ``p ← p − lr·wd·p − lr·sign(m)``: every coordinate
    moves by exactly ``lr`` (or not at all where ``m = 0``), whatever the gradient's scale.
    ``momentum = 0`` is signSGD. Unlike ``lion`` the sign is taken of the same average that is
    carried forward (no separate interpolation ``β₁``), and the weight decay is decoupled.
    """
    beta, wd = hparam(momentum), hparam(weight_decay)
    decays = bool(np.any(wd))

    def init(params: np.ndarray) -> State:
        # "_u" is scratch: update_ allocates nothing after init, as the engine's contract asks
        return {
            "t": np.zeros((), dtype=np.int64),
            "m": np.zeros_like(params),
            "_u": np.empty_like(params),
        }

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        state["t"] += 1
        m, u = state["m"], state["_u"]
        m *= beta
        np.multiply(grads, 1.0 - beta, out=u)
        m += u
        if decays:
            np.multiply(params, lr * wd, out=u)
            params -= u
        np.sign(m, out=u)
        u *= lr
        params -= u

    return Optimizer(init, update_, lr)
