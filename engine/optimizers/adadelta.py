"""AdaDelta: steps whose size is a root-mean-square of past *updates* over one of past gradients,
so the step carries the parameters' units — PyTorch's exponential form and the seed document's
sliding-window form.

``adadelta`` keeps exponential averages of both squares with ε inside the roots (Zeiler's form);
``adadelta_window`` takes sliding-window means as the seed's RMSprop does, and adds ε outside the
gradients' root as the seed writes it.
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
    nonzero,
    put,
    root_plus,
    tick,
)
from engine.optimizers.window import WindowStep, window_state
from engine.specbase import SpecModel, Sweep


class AdadeltaSpec(SpecModel):
    name: Literal["adadelta"] = "adadelta"
    lr: Sweep[Positive] = 1.0
    rho: Sweep[Rate] = 0.9
    eps: Sweep[Positive] = 1e-6
    weight_decay: Sweep[NonNegative] = 0.0


@OPTIMIZERS.register("adadelta", AdadeltaSpec)
def adadelta(
    *, lr: HParam = 1.0, rho: HParam = 0.9, eps: HParam = 1e-6, weight_decay: HParam = 0.0
) -> Optimizer:
    """AdaDelta (Zeiler): ``torch.optim.Adadelta``.

    With ``g = grad + weight_decay·p``: ``v = ρ·v + (1-ρ)·g²``,
    ``δ = √(u + ε)/√(v + ε) · g``, ``u = ρ·u + (1-ρ)·δ²`` and ``p -= lr·δ`` (``lr`` is a plain
    multiplier, 1 by default), in PyTorch's operation order.
    """
    rho_, eps_, wd = hparam(rho), hparam(eps), hparam(weight_decay)
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, rho_, eps_, wd)
        state: State = {"t": counter(), "v": np.zeros_like(params), "u": np.zeros_like(params)}
        state |= buffers(params, (), ("rho", "one_minus_rho", "eps", "wd", "k"))
        put(state["_rho"], rho_)
        put(state["_one_minus_rho"], 1.0 - f64(rho_))
        put(state["_eps"], eps_)
        put(state["_wd"], wd)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        k = put(state["_k"], -f64(lr))
        rho_c, one_minus_rho, e = state["_rho"], state["_one_minus_rho"], state["_eps"]
        g = grads + state["_wd"] * params if has_wd else grads
        v, u = state["v"], state["u"]
        v *= rho_c
        v += (one_minus_rho * g) * g
        delta = np.sqrt(u + e) / np.sqrt(v + e) * g
        u *= rho_c
        u += (one_minus_rho * delta) * delta
        params += k * delta

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        put(state["_k"], -f64(lr))
        fused.adadelta_step(
            params, grads, state["v"], state["u"], has_wd, state["_wd"], state["_rho"],
            state["_one_minus_rho"], state["_eps"], state["_k"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)


class AdadeltaWindowSpec(SpecModel):
    name: Literal["adadelta_window"] = "adadelta_window"
    lr: Sweep[Positive] = 1.0
    rho1: Sweep[Rate] = 0.9
    rho2: Sweep[Rate] = 0.9
    window: Sweep[WindowLength] = 10
    eps: Sweep[Positive] = 1e-6


@OPTIMIZERS.register("adadelta_window", AdadeltaWindowSpec)
def adadelta_window(
    *,
    lr: HParam = 1.0,
    rho1: HParam = 0.9,
    rho2: HParam = 0.9,
    window: int = 10,
    eps: HParam = 1e-6,
) -> Optimizer:
    """The seed document's AdaDelta: sliding-window RMS of past updates over that of gradients.

    ``ΔW(t) = -lr · √(q(t-1) + ε)/(ε + √r(t)) · G(t)`` with
    ``r(t) = ρ1·(1/L)·Σ_(k=0..L-1) G²(t-k) + (1-ρ1)·G²(t)`` (as in ``rmsprop_window``) and
    ``q(t-1) = ρ2·(1/L)·Σ_(k=2..L) ΔW²(t-k) + (1-ρ2)·ΔW²(t-1)``: the window's newest update is
    weighted by ``1-ρ2`` only, and the ``L-1`` before it are summed over ``L``, as the seed writes.
    Choices where the seed is silent: the numerator gets ε inside its root, as in Zeiler's
    AdaDelta (with ``q = 0`` at the start the rule as written never moves, and ``ε + √q`` would
    start at steps of size ε that then grow by about ε per step, since the rule keeps the size of
    its steps); before the windows fill, ``r`` averages the gradients seen so far and ``q(t-1)``
    divides by ``min(t, L)``, the updates that exist, with ``q(-1) = 0``, so the first step is
    ``-lr·√ε·G/(ε + |G|)``; ``lr`` (1 by default) is a plain multiplier so schedules apply.
    ``adadelta`` instead uses exponential averages, ε inside both roots.
    """
    rho1_, rho2_, eps_ = hparam(rho1), hparam(rho2), hparam(eps)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, rho1_, rho2_, eps_)
        state: State = {"t": counter(), "delta": np.zeros_like(params)}
        state |= window_state(params, "sq", window)
        if window > 1:
            state |= window_state(params, "dsq", window - 1)
        state |= buffers(params, ("u", "n", "d"), ("mean1", "mix1", "mean2", "mix2", "eps", "k"))
        put(state["_mix1"], 1.0 - rho1_)
        put(state["_mix2"], 1.0 - rho2_)
        put(state["_eps"], eps_)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        past = tick(state) - 1  # updates taken before this one
        sq = WindowStep(state, "sq")
        dsq = WindowStep(state, "dsq") if window > 1 and past > 0 else None
        mean1 = put(state["_mean1"], rho1_ / sq.count_after)
        mean2 = put(state["_mean2"], rho2_ / max(min(past, window), 1))
        k = put(state["_k"], -f64(lr))
        mix1, mix2, e = state["_mix1"], state["_mix2"], state["_eps"]
        u, n, d = state["_u"], state["_n"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, delta = params[:, cols], grads[:, cols], state["delta"][:, cols]
            uh, nh, dh = u[:, head], n[:, head], d[:, head]
            # Denominator ε + √r(t): the window of squared gradients including G(t).
            g2 = np.square(g, out=sq.slot(cols))
            sq.push(cols)
            sq.total(cols, dh, pushed=True)
            dh *= mean1
            np.multiply(g2, mix1, out=uh)
            dh += uh
            root_plus(dh, dh, e)
            # Numerator √(q(t-1) + ε): ΔW(t-2)… in the window, ΔW(t-1) (``delta``) mixed in.
            if dsq is None:
                np.square(delta, out=nh)
                nh *= mix2
            else:
                dsq.total(cols, nh, pushed=False)
                nh *= mean2
                np.multiply(np.square(delta, out=dsq.slot(cols)), mix2, out=uh)
                dsq.push(cols)
                nh += uh
            nh += e
            np.sqrt(nh, out=nh)
            nh /= dh
            nh *= g
            nh *= k
            np.copyto(delta, nh)
            p += nh
        sq.finish(state)
        if dsq is not None:
            dsq.finish(state)

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        past = tick(state) - 1
        sq = WindowStep(state, "sq")
        dsq = WindowStep(state, "dsq") if window > 1 and past > 0 else None
        put(state["_mean1"], rho1_ / sq.count_after)
        put(state["_mean2"], rho2_ / max(min(past, window), 1))
        put(state["_k"], -f64(lr))
        ring = "dsq" if dsq is not None else "sq"  # the numerator's window (unused without one)
        fused.adadelta_window_step(
            params, grads, state["delta"], state["sq_slots"], state["sq_back"], sq.pos,
            sq.pos_after, sq.full_after, dsq is not None, state[f"{ring}_slots"],
            state[f"{ring}_back"], 0 if dsq is None else dsq.pos, dsq is not None and dsq.full,
            state["_mean1"], state["_mix1"], state["_mean2"], state["_mix2"], state["_eps"],
            state["_k"],
        )  # fmt: skip
        sq.finish(state)
        if dsq is not None:
            dsq.finish(state)

    return Optimizer(init, update_, lr, fused_)
