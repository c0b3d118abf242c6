"""AdaGrad: per-coordinate steps scaled by the root of all squared gradients so far."""

from __future__ import annotations

from typing import Literal

import numpy as np

from engine.optimizers.base import (
    OPTIMIZERS,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    State,
    hparam,
)
from engine.optimizers.kernel import (
    buffers,
    check_params,
    column_blocks,
    counter,
    coupled_decay,
    f64,
    nonzero,
    put,
    ratio_step,
    root_plus,
    tick,
)
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
        state |= buffers(params, ("g", "u", "d"), ("wd", "eps", "k"))
        put(state["_wd"], wd)
        put(state["_eps"], eps_)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        k = put(state["_k"], -(f64(lr) / (1 + (t - 1) * decay)))
        wd_c, e = state["_wd"], state["_eps"]
        gw, u, d = state["_g"], state["_u"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, acc = params[:, cols], grads[:, cols], state["sum"][:, cols]
            if has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            np.square(g, out=u[:, head])
            acc += u[:, head]
            ratio_step(p, g, root_plus(d[:, head], acc, e), k, u[:, head])

    return Optimizer(init, update_, lr)
