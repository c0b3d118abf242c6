"""Gradient descent with momentum: PyTorch's SGD and the seed's generalized delta rule.

Both add a decaying memory of the past to the gradient step and agree exactly while the learning
rate is constant. They differ in *where* the learning rate enters: ``sgd`` keeps a velocity of raw
gradients and multiplies the whole of it by the current rate, so a schedule rescales the memory of
every past step at once; ``delta_rule`` keeps the past *updates*, each taken at the rate of its own
step, so a rate change affects only the steps taken from then on.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import model_validator

from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    Fraction,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    Rate,
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
    scaled_step,
    tick,
    trace,
)
from engine.specbase import SpecModel, Sweep, grid_fields

#: The fused kernels' arguments after ``params, grads``: the momentum buffer, the flags (first
#: update, momentum, nesterov, weight decay) and the columns (wd, μ, gain, -lr).
KernelArgs = tuple[
    np.ndarray, bool, bool, bool, bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


class SGDSpec(SpecModel):
    name: Literal["sgd"] = "sgd"
    lr: Sweep[Positive] = 1e-3
    momentum: Sweep[Rate] = 0.0
    dampening: Sweep[Fraction] = 0.0
    nesterov: bool = False
    weight_decay: Sweep[NonNegative] = 0.0

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDSpec:
        if self.nesterov:
            grids = grid_fields(self)
            momenta = grids.get("momentum", [self.momentum])
            dampenings = grids.get("dampening", [self.dampening])
            if any(m <= 0 for m in momenta) or any(d != 0 for d in dampenings):
                raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        return self


@OPTIMIZERS.register("sgd", SGDSpec)
def sgd(
    *,
    lr: HParam = 1e-3,
    momentum: HParam = 0.0,
    dampening: HParam = 0.0,
    nesterov: bool = False,
    weight_decay: HParam = 0.0,
) -> Optimizer:
    """Stochastic gradient descent with optional (Nesterov) momentum: ``torch.optim.SGD``.

    With ``g = grad + weight_decay·p``, the velocity ``b`` starts as the first ``g`` and then
    follows ``b = momentum·b + (1 - dampening)·g``; the step is ``p -= lr·d`` with ``d = b``, or
    ``d = g + momentum·b`` for Nesterov. Without momentum ``d = g``. Unlike ``delta_rule``, the
    current ``lr`` scales the whole velocity, including the gradients of earlier steps.
    """
    mu, damp, wd = hparam(momentum), hparam(dampening), hparam(weight_decay)
    has_momentum, has_wd = nonzero(mu), nonzero(wd)
    if nesterov and (np.any(np.asarray(mu) <= 0) or nonzero(damp)):
        raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
    # A run without momentum takes d = g whatever its dampening, as PyTorch ignores it there;
    # in a batch with momentum runs its velocity is then exactly g: b = 0·b + 1·g.
    gain = hparam(1.0 - np.where(np.asarray(mu) == 0, 0.0, damp))
    has_damp = has_momentum and nonzero(np.subtract(gain, 1.0))

    def init(params: np.ndarray) -> State:
        check_params(params, lr, mu, damp, wd)
        state: State = {"t": counter()}
        if has_momentum:
            state["momentum_buffer"] = np.zeros_like(params)
        state |= buffers(params, ("g", "u"), ("mu", "gain", "wd", "k"))
        put(state["_mu"], mu)
        put(state["_gain"], gain)
        put(state["_wd"], wd)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        first = tick(state) == 1
        k = put(state["_k"], -f64(lr))
        mu_c, gain_c, wd_c = state["_mu"], state["_gain"], state["_wd"]
        gw, u = state["_g"], state["_u"]
        for cols, head in column_blocks(params.shape[1], gw.shape[1]):
            p, g = params[:, cols], grads[:, cols]
            if has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            d = g
            if has_momentum:
                b = state["momentum_buffer"][:, cols]
                if first:
                    np.copyto(b, g)
                elif has_damp:
                    b *= mu_c
                    np.multiply(g, gain_c, out=u[:, head])
                    b += u[:, head]
                else:
                    trace(b, g, mu_c)
                d = b
                if nesterov:
                    d = u[:, head]
                    np.multiply(b, mu_c, out=d)
                    d += g
            scaled_step(p, d, k, u[:, head])

    def kernel_args(state: State, params: np.ndarray, lr: HParam) -> KernelArgs:
        """Advance the step count; the fused kernels' arguments after ``params, grads``."""
        first = tick(state) == 1
        put(state["_k"], -f64(lr))
        buf = state.get("momentum_buffer", params)
        return (buf, first, has_momentum, nesterov, has_wd, state["_wd"], state["_mu"],
                state["_gain"], state["_k"])  # fmt: skip

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        fused.sgd_step(params, grads, *kernel_args(state, params, lr))

    def recorded_(
        grads: np.ndarray,
        state: State,
        params: np.ndarray,
        lr: HParam,
        gnorm: np.ndarray,
        unorm: np.ndarray,
    ) -> None:
        fused.sgd_step_recorded(params, grads, *kernel_args(state, params, lr), gnorm, unorm)

    return Optimizer(init, update_, lr, fused_, recorded_=recorded_, sgd_args_=kernel_args)


class DeltaRuleSpec(SpecModel):
    name: Literal["delta_rule"] = "delta_rule"
    lr: Sweep[Positive] = 1e-3
    momentum: Sweep[Rate] = 0.9


@OPTIMIZERS.register("delta_rule", DeltaRuleSpec)
def delta_rule(*, lr: HParam = 1e-3, momentum: HParam = 0.9) -> Optimizer:
    """The generalized delta rule (classical momentum) of the seed document.

    ``W(t+1) = W(t) - η_t·G(t) + α·ΔW(t-1)``, i.e. the update ``ΔW(t) = -η_t·G(t) + α·ΔW(t-1)``
    with ``ΔW(-1) = 0`` and ``α`` = ``momentum``; unrolled, ``ΔW(t) = -Σ_k α^k·η_(t-k)·G(t-k)``.
    Each past gradient keeps the rate of the step that saw it; ``sgd`` with momentum instead
    multiplies its velocity ``Σ_k α^k·G(t-k)`` by the current ``η_t``. The two coincide for a
    constant rate.
    """
    alpha = hparam(momentum)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, alpha)
        state: State = {"t": counter(), "delta": np.zeros_like(params)}
        state |= buffers(params, ("u",), ("alpha", "k"))
        put(state["_alpha"], alpha)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        k = put(state["_k"], -f64(lr))
        alpha_c, u = state["_alpha"], state["_u"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            delta = state["delta"][:, cols]
            np.multiply(grads[:, cols], k, out=u[:, head])
            delta *= alpha_c
            delta += u[:, head]
            params[:, cols] += delta

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        put(state["_k"], -f64(lr))
        fused.delta_rule_step(params, grads, state["delta"], state["_alpha"], state["_k"])

    return Optimizer(init, update_, lr, fused_)
