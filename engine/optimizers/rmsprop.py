"""RMSprop: steps scaled by a root-mean-square of recent gradients — PyTorch's exponential form
and the seed document's sliding-window form.

``rmsprop`` averages the squared gradients with exponentially decaying weights over all past
steps; ``rmsprop_window`` takes the plain mean over the last ``L`` steps and mixes in the current
square once more, so a gradient older than ``L`` steps has no influence at all.
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
    WindowLength,
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
    scaled_step,
    square_trace,
    tick,
    trace,
)
from engine.optimizers.window import WindowStep, window_state
from engine.specbase import SpecModel, Sweep


class RMSpropSpec(SpecModel):
    name: Literal["rmsprop"] = "rmsprop"
    lr: Sweep[Positive] = 1e-2
    alpha: Sweep[Rate] = 0.99
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0
    momentum: Sweep[Rate] = 0.0
    centered: bool = False


@OPTIMIZERS.register("rmsprop", RMSpropSpec)
def rmsprop(
    *,
    lr: HParam = 1e-2,
    alpha: HParam = 0.99,
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
    momentum: HParam = 0.0,
    centered: bool = False,
) -> Optimizer:
    """RMSprop (Hinton): ``torch.optim.RMSprop``.

    With ``g = grad + weight_decay·p``: ``v = α·v + (1-α)·g²`` and ``d = √v + ε``; centered, also
    ``ḡ = α·ḡ + (1-α)·g`` and ``d = √(v - ḡ²) + ε`` (a variance instead of a second moment). The
    step is ``p -= lr·g/d``, or with momentum ``b = momentum·b + g/d`` and ``p -= lr·b``.
    The kernel keeps ``v`` and ``ḡ`` divided by ``1-α`` (see ``adam``), so ``alpha < 1``.
    """
    a, eps_, wd, mu = hparam(alpha), hparam(eps), hparam(weight_decay), hparam(momentum)
    has_wd, has_momentum = nonzero(wd), nonzero(mu)
    # √v = s·√ṽ with ṽ = v/(1-α), s = √(1-α); centered: v - ḡ² = (1-α)·(ṽ - (1-α)·ḡ̃²).
    s = np.sqrt(f64(1.0 - a))

    def init(params: np.ndarray) -> State:
        check_params(params, lr, a, eps_, wd, mu)
        state: State = {"t": counter(), "v": np.zeros_like(params)}
        if centered:
            state["g_avg"] = np.zeros_like(params)
        if has_momentum:
            state["momentum_buffer"] = np.zeros_like(params)
        state |= buffers(
            params, ("g", "u", "d"), ("alpha", "one_minus_alpha", "eps", "wd", "mu", "k")
        )
        put(state["_alpha"], a)
        put(state["_one_minus_alpha"], 1.0 - a)
        put(state["_eps"], eps_ / s)
        put(state["_wd"], wd)
        put(state["_mu"], mu)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        k = put(state["_k"], -f64(lr) / s)
        a_c, wd_c, mu_c, e = state["_alpha"], state["_wd"], state["_mu"], state["_eps"]
        gw, u, d = state["_g"], state["_u"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, v = params[:, cols], grads[:, cols], state["v"][:, cols]
            dh, uh = d[:, head], u[:, head]
            if has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            square_trace(v, g, a_c, uh)
            if centered:
                g_avg = state["g_avg"][:, cols]
                trace(g_avg, g, a_c)
                np.square(g_avg, out=dh)
                dh *= state["_one_minus_alpha"]
                np.subtract(v, dh, out=dh)
                root_plus(dh, dh, e)
            else:
                root_plus(dh, v, e)
            if has_momentum:
                b = state["momentum_buffer"][:, cols]
                np.divide(g, dh, out=uh)
                trace(b, uh, mu_c)
                scaled_step(p, b, k, uh)
            else:
                ratio_step(p, g, dh, k, uh)

    return Optimizer(init, update_, lr)


class RMSpropWindowSpec(SpecModel):
    name: Literal["rmsprop_window"] = "rmsprop_window"
    lr: Sweep[Positive] = 1e-2
    rho: Sweep[Rate] = 0.8
    window: Sweep[WindowLength] = 10
    eps: Sweep[Positive] = 1e-8


@OPTIMIZERS.register("rmsprop_window", RMSpropWindowSpec)
def rmsprop_window(
    *, lr: HParam = 1e-2, rho: HParam = 0.8, window: int = 10, eps: HParam = 1e-8
) -> Optimizer:
    """The seed document's RMSprop: a sliding-window mean of squared gradients.

    ``r(t) = ρ·(1/L)·Σ_(k=0..L-1) G²(t-k) + (1-ρ)·G²(t)`` and ``ΔW(t) = -η·G(t)/(ε + √r(t))``
    with ``L`` = ``window``. Before ``L`` gradients exist the mean runs over those seen so far
    (``t+1`` of them at 0-based step ``t``). With ``L = 1`` (or ``ρ = 0``) ``r = G²`` and the
    step is ``-η·G/(ε + |G|)``, nearly a sign step. Where ``rmsprop`` decays every past square
    geometrically, here each of the last ``L`` counts equally and older ones not at all.
    """
    rho_, eps_ = hparam(rho), hparam(eps)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, rho_, eps_)
        state: State = {"t": counter()} | window_state(params, "sq", window)
        state |= buffers(params, ("u", "d"), ("mean", "mix", "eps", "k"))
        put(state["_mix"], 1.0 - rho_)
        put(state["_eps"], eps_)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        sq = WindowStep(state, "sq")
        mean = put(state["_mean"], rho_ / sq.count_after)
        k = put(state["_k"], -f64(lr))
        mix, e = state["_mix"], state["_eps"]
        u, d = state["_u"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g = params[:, cols], grads[:, cols]
            dh, uh = d[:, head], u[:, head]
            g2 = np.square(g, out=sq.slot(cols))
            sq.push(cols)
            sq.total(cols, dh, pushed=True)
            dh *= mean
            np.multiply(g2, mix, out=uh)
            dh += uh
            ratio_step(p, g, root_plus(dh, dh, e), k, uh)
        sq.finish(state)

    return Optimizer(init, update_, lr)
