"""The seed document's AdaGrad: the accumulator holds past gradients only."""

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


class AdagradSeedSpec(SpecModel):
    name: Literal["adagrad_seed"] = "adagrad_seed"
    lr: Sweep[Positive] = 1e-2
    weight_decay: Sweep[NonNegative] = 0.0
    initial_accumulator_value: Sweep[NonNegative] = 1.0
    eps: Sweep[Positive] = 1e-10


@OPTIMIZERS.register("adagrad_seed", AdagradSeedSpec)
def adagrad_seed(
    *,
    lr: HParam = 1e-2,
    weight_decay: HParam = 0.0,
    initial_accumulator_value: HParam = 1.0,
    eps: HParam = 1e-10,
) -> Optimizer:
    """AdaGrad as the seed document writes it: ``ΔW(t) = −η G(t)/(ε + √r(t))`` with
    ``r(t) = r₀ + G²(0) + … + G²(t−1)`` — the gradients *before* the current one.

    With ``g = grad + weight_decay·p``: ``p -= lr · g/(√r + ε)``, then ``r += g²`` (state ``sum``,
    starting at ``r₀ = initial_accumulator_value``). ``adagrad`` (``torch.optim.Adagrad``) adds
    ``g²`` first, so its step is never larger than ``lr`` per coordinate; here the current
    gradient is not in its own denominator, and a step can exceed ``lr`` when the gradient grows.
    With ``r₀ = 0`` the first step is ``lr·g/ε`` (the seed's formula taken literally), hence the
    default ``r₀ = 1``: the first update is a plain gradient step of size ``lr``. Torch's
    ``lr_decay`` has no counterpart in the seed and is left out.
    """
    wd, acc0, eps_ = hparam(weight_decay), hparam(initial_accumulator_value), hparam(eps)
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, wd, acc0, eps_)
        acc = np.empty_like(params)
        acc[...] = acc0
        state: State = {"t": counter(), "sum": acc}
        state |= buffers(params, ("g", "u", "d"), ("wd", "eps", "k"))
        put(state["_wd"], wd)
        put(state["_eps"], eps_)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        k = put(state["_k"], -f64(lr))
        wd_c, e = state["_wd"], state["_eps"]
        gw, u, d = state["_g"], state["_u"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, acc = params[:, cols], grads[:, cols], state["sum"][:, cols]
            if has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            ratio_step(p, g, root_plus(d[:, head], acc, e), k, u[:, head])
            np.square(g, out=u[:, head])
            acc += u[:, head]

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        put(state["_k"], -f64(lr))
        fused.adagrad_seed_step(
            params, grads, state["sum"], has_wd, state["_wd"], state["_eps"], state["_k"]
        )

    return Optimizer(init, update_, lr, fused_)
