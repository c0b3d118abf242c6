"""Lion: sign steps of an interpolated momentum (no second moment at all)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    Betas,
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
    f64,
    nonzero,
    put,
    scaled_step,
    tick,
)
from engine.specbase import SpecModel, Sweep


class LionSpec(SpecModel):
    name: Literal["lion"] = "lion"
    lr: Sweep[Positive] = 1e-4
    betas: Sweep[Betas] = (0.9, 0.99)
    weight_decay: Sweep[NonNegative] = 0.0


@OPTIMIZERS.register("lion", LionSpec)
def lion(
    *,
    lr: HParam = 1e-4,
    betas: tuple[HParam, HParam] = (0.9, 0.99),
    weight_decay: HParam = 0.0,
) -> Optimizer:
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms").

    ``c = β1·m + (1-β1)·g``; ``p = p·(1 - lr·weight_decay) - lr·sign(c)``;
    ``m = β2·m + (1-β2)·g``. Every coordinate moves by exactly ``lr`` (or not at all where
    ``c = 0``): the step interpolates the momentum with ``β1`` but tracks it with ``β2``, and has
    no second moment, unlike the Adam family. Weight decay is decoupled, as in AdamW.
    """
    b1, b2 = (hparam(b) for b in betas)
    wd = hparam(weight_decay)
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, wd)
        state: State = {"t": counter(), "m": np.zeros_like(params)}
        state |= buffers(params, ("c", "u"), ("b1", "mix1", "b2", "mix2", "k", "decay"))
        put(state["_b1"], b1)
        put(state["_mix1"], 1.0 - f64(b1))
        put(state["_b2"], b2)
        put(state["_mix2"], 1.0 - f64(b2))
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        lr = f64(lr)
        k = put(state["_k"], -lr)
        decay = put(state["_decay"], 1.0 - lr * wd)
        b1_c, mix1, b2_c, mix2 = state["_b1"], state["_mix1"], state["_b2"], state["_mix2"]
        c, u = state["_c"], state["_u"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, m = params[:, cols], grads[:, cols], state["m"][:, cols]
            ch, uh = c[:, head], u[:, head]
            np.multiply(m, b1_c, out=ch)
            np.multiply(g, mix1, out=uh)
            ch += uh
            np.sign(ch, out=ch)
            if has_wd:
                p *= decay
            scaled_step(p, ch, k, uh)
            m *= b2_c
            np.multiply(g, mix2, out=uh)
            m += uh

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        put(state["_k"], -f64(lr))
        put(state["_decay"], 1.0 - f64(lr) * wd)
        fused.lion_step(
            params, grads, state["m"], has_wd, state["_decay"], state["_b1"], state["_mix1"],
            state["_b2"], state["_mix2"], state["_k"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)
