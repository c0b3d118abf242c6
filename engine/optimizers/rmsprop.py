"""RMSprop: steps scaled by a root-mean-square of recent gradients — PyTorch's exponential form
and the seed document's sliding-window form.

``rmsprop`` averages the squared gradients with exponentially decaying weights over all past
steps; ``rmsprop_window`` takes the plain mean over the last ``L`` steps and mixes in the current
square once more, so a gradient older than ``L`` steps has no influence at all.
"""

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
    f64,
    lerp,
    lerp_columns,
    nonzero,
    put,
    ratio_step,
    root_plus,
    tick,
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
    ``ḡ = ḡ.lerp(g, 1-α)`` and ``d = √(v - ḡ²) + ε`` (a variance instead of a second moment). The
    step is ``p -= lr·g/d``, or with momentum ``b = momentum·b + g/d`` and ``p -= lr·b`` (per run:
    a run with momentum 0 takes the plain step, as PyTorch does). PyTorch's operation order.
    """
    a, eps_, wd, mu = hparam(alpha), hparam(eps), hparam(weight_decay), hparam(momentum)
    has_wd, has_momentum = nonzero(wd), nonzero(mu)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, a, eps_, wd, mu)
        state: State = {"t": counter(), "v": np.zeros_like(params)}
        if centered:
            state["g_avg"] = np.zeros_like(params)
        if has_momentum:
            state["momentum_buffer"] = np.zeros_like(params)
        state |= lerp_columns(params, 1.0 - f64(a))
        state |= buffers(params, (), ("alpha", "one_minus_alpha", "eps", "wd", "mu", "k"))
        put(state["_alpha"], a)
        put(state["_one_minus_alpha"], 1.0 - f64(a))
        put(state["_eps"], eps_)
        put(state["_wd"], wd)
        put(state["_mu"], mu)
        state["_use_buf"] = state["_mu"] > 0
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        k = put(state["_k"], -f64(lr))
        g = grads + state["_wd"] * params if has_wd else grads
        v = state["v"]
        v *= state["_alpha"]
        v += (state["_one_minus_alpha"] * g) * g
        if centered:
            g_avg = state["g_avg"]
            g_avg[...] = lerp(g_avg, g, state)
            avg = np.sqrt(v - g_avg * g_avg)
        else:
            avg = np.sqrt(v)
        avg += state["_eps"]
        if not has_momentum:
            params += (k * g) / avg
            return
        buf, use_buf = state["momentum_buffer"], state["_use_buf"]
        np.copyto(buf, buf * state["_mu"] + g / avg, where=use_buf)
        np.copyto(params, np.where(use_buf, params + k * buf, params + (k * g) / avg))

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        put(state["_k"], -f64(lr))
        if not centered and not has_momentum:
            fused.rmsprop_plain_step(
                params, grads, state["v"], has_wd, state["_wd"], state["_alpha"],
                state["_one_minus_alpha"], state["_eps"], state["_k"],
            )  # fmt: skip
            return
        fused.rmsprop_step(
            params, grads, state["v"], state.get("g_avg", state["v"]),
            state.get("momentum_buffer", state["v"]), centered, has_wd, state["_wd"],
            state["_alpha"], state["_one_minus_alpha"], state["_w"], state["_w_small"],
            state["_w_rest"], state["_eps"], state["_use_buf"], state["_mu"], state["_k"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)


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

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        sq = WindowStep(state, "sq")
        put(state["_mean"], rho_ / sq.count_after)
        put(state["_k"], -f64(lr))
        fused.rmsprop_window_step(
            params, grads, state["sq_slots"], state["sq_back"], sq.pos, sq.pos_after,
            sq.full_after, state["_mean"], state["_mix"], state["_eps"], state["_k"],
        )  # fmt: skip
        sq.finish(state)

    return Optimizer(init, update_, lr, fused_)
