"""The Adam family: Adam (and AMSGrad), AdamW, Adamax, NAdam and RAdam, as in ``torch.optim``.

All keep a first-moment EMA of the gradient and (except Adamax) a second-moment EMA of its square:
``m = β1·m + (1-β1)·g`` and ``v = β2·v + (1-β2)·g²`` in PyTorch's form. The kernels store them
divided by ``1-β``, ``m̃ = Σ β1^k·g`` and ``ṽ = Σ β2^k·g²`` (state keys ``m`` and ``v``), which
costs one pass less each (``m̃ = β1·m̃ + g``); the constant factors move into the per-step
coefficients: ``√v = √(1-β2)·√ṽ``, so ``√v/√bc2 + ε = c·(√ṽ + ε/c)`` with ``c = √((1-β2)/bc2)``.
The results agree with PyTorch's to rounding (the reference tests hold them to 1e-10).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

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
from engine.specbase import SpecModel, Sweep


def _betas(betas: tuple[HParam, HParam]) -> tuple[HParam, HParam]:
    b1, b2 = betas
    return hparam(b1), hparam(b2)


def _moment_state(params: np.ndarray, *, amsgrad: bool = False) -> State:
    state: State = {"t": counter(), "m": np.zeros_like(params), "v": np.zeros_like(params)}
    if amsgrad:
        state["v_max"] = np.zeros_like(params)
    return state


def _adam(
    lr: HParam,
    betas: tuple[HParam, HParam],
    eps: HParam,
    weight_decay: HParam,
    amsgrad: bool,
    decoupled: bool,
) -> Optimizer:
    b1, b2 = _betas(betas)
    eps_, wd = hparam(eps), hparam(weight_decay)
    has_wd = nonzero(wd)
    sqrt_1mb2 = np.sqrt(f64(1.0 - b2))

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        state = _moment_state(params, amsgrad=amsgrad)
        state |= buffers(params, ("g", "u", "d"), ("b1", "b2", "wd", "k", "eps", "decay"))
        put(state["_b1"], b1)
        put(state["_b2"], b2)
        put(state["_wd"], wd)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr = f64(lr)
        bc1 = 1.0 - b1**t
        c = sqrt_1mb2 / np.sqrt(1.0 - b2**t)
        k = put(state["_k"], -lr * (1.0 - b1) / (bc1 * c))
        e = put(state["_eps"], eps_ / c)
        decay = put(state["_decay"], 1.0 - lr * wd)
        b1_c, b2_c, wd_c = state["_b1"], state["_b2"], state["_wd"]
        gw, u, d = state["_g"], state["_u"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, m, v = params[:, cols], grads[:, cols], state["m"][:, cols], state["v"][:, cols]
            if has_wd and decoupled:
                p *= decay
            elif has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            trace(m, g, b1_c)
            square_trace(v, g, b2_c, u[:, head])
            if amsgrad:
                v_max = state["v_max"][:, cols]
                np.maximum(v_max, v, out=v_max)
                v = v_max
            ratio_step(p, m, root_plus(d[:, head], v, e), k, u[:, head])

    return Optimizer(init, update_, lr)


class AdamSpec(SpecModel):
    name: Literal["adam"] = "adam"
    lr: Sweep[Positive] = 1e-3
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0
    amsgrad: bool = False


@OPTIMIZERS.register("adam", AdamSpec)
def adam(
    *,
    lr: HParam = 1e-3,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
    amsgrad: bool = False,
) -> Optimizer:
    """Adam (Kingma & Ba), optionally AMSGrad: ``torch.optim.Adam``.

    With ``g = grad + weight_decay·p`` (L2 decay through the moments, unlike ``adamw``) and the
    moments above, ``p -= lr/(1-β1^t) · m / (√v/√(1-β2^t) + ε)``. AMSGrad divides by the running
    maximum of ``v`` instead. The seed document writes the same rule as
    ``ΔW = -η·q̂/(ε + √r̂)`` with the bias-corrected moments ``q̂``, ``r̂``.
    """
    return _adam(lr, betas, eps, weight_decay, amsgrad, decoupled=False)


class AdamWSpec(SpecModel):
    name: Literal["adamw"] = "adamw"
    lr: Sweep[Positive] = 1e-3
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 1e-2
    amsgrad: bool = False


@OPTIMIZERS.register("adamw", AdamWSpec)
def adamw(
    *,
    lr: HParam = 1e-3,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-8,
    weight_decay: HParam = 1e-2,
    amsgrad: bool = False,
) -> Optimizer:
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``torch.optim.AdamW``.

    First ``p *= 1 - lr·weight_decay``, then Adam's step on the raw gradient: the decay acts on
    the weights directly instead of passing through the moments as ``adam``'s L2 term does.
    """
    return _adam(lr, betas, eps, weight_decay, amsgrad, decoupled=True)


class AdamaxSpec(SpecModel):
    name: Literal["adamax"] = "adamax"
    lr: Sweep[Positive] = 2e-3
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0


@OPTIMIZERS.register("adamax", AdamaxSpec)
def adamax(
    *,
    lr: HParam = 2e-3,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
) -> Optimizer:
    """Adamax, Adam's infinity-norm variant: ``torch.optim.Adamax``.

    With ``g = grad + weight_decay·p``: ``m`` as in Adam, ``u = max(β2·u, |g| + ε)`` (state
    ``u``, an exponentially weighted max instead of Adam's mean of squares, ε inside the max) and
    ``p -= lr/(1-β1^t) · m/u``.
    """
    b1, b2 = _betas(betas)
    eps_, wd = hparam(eps), hparam(weight_decay)
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        state: State = {"t": counter(), "m": np.zeros_like(params), "u": np.zeros_like(params)}
        state |= buffers(params, ("g", "a"), ("b1", "b2", "wd", "eps", "k"))
        put(state["_b1"], b1)
        put(state["_b2"], b2)
        put(state["_wd"], wd)
        put(state["_eps"], eps_)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        k = put(state["_k"], -f64(lr) * (1.0 - b1) / (1.0 - b1**t))
        b1_c, b2_c, wd_c, eps_c = state["_b1"], state["_b2"], state["_wd"], state["_eps"]
        gw, a = state["_g"], state["_a"]
        for cols, head in column_blocks(params.shape[1], a.shape[1]):
            p, g, m, u = params[:, cols], grads[:, cols], state["m"][:, cols], state["u"][:, cols]
            if has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            trace(m, g, b1_c)
            np.abs(g, out=a[:, head])
            a[:, head] += eps_c
            u *= b2_c
            np.maximum(u, a[:, head], out=u)
            ratio_step(p, m, u, k, a[:, head])

    return Optimizer(init, update_, lr)


class NAdamSpec(SpecModel):
    name: Literal["nadam"] = "nadam"
    lr: Sweep[Positive] = 2e-3
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0
    momentum_decay: Sweep[NonNegative] = 4e-3
    decoupled_weight_decay: bool = False


@OPTIMIZERS.register("nadam", NAdamSpec)
def nadam(
    *,
    lr: HParam = 2e-3,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
    momentum_decay: HParam = 4e-3,
    decoupled_weight_decay: bool = False,
) -> Optimizer:
    """Adam with Nesterov momentum (Dozat), with a momentum schedule: ``torch.optim.NAdam``.

    ``μ_t = β1·(1 - ½·0.96^(t·momentum_decay))`` and ``Π_t = μ_1···μ_t`` (state ``mu_product``,
    float64); with Adam's moments and ``d = √(v/(1-β2^t)) + ε``:
    ``p -= lr·(1-μ_t)/(1-Π_t) · g/d + lr·μ_(t+1)/(1-Π_t·μ_(t+1)) · m/d`` — the gradient and the
    look-ahead momentum are bias-corrected separately, where Adam corrects ``m`` by ``1-β1^t``.
    Weight decay is L2 through ``g``, or decoupled as in AdamW.
    """
    b1, b2 = _betas(betas)
    eps_, wd, psi = hparam(eps), hparam(weight_decay), hparam(momentum_decay)
    has_wd = nonzero(wd)
    sqrt_1mb2 = np.sqrt(f64(1.0 - b2))

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd, psi)
        state = _moment_state(params)
        state["mu_product"] = np.ones((params.shape[0], 1), dtype=np.float64)
        state |= buffers(
            params, ("g", "u", "s", "d"), ("b1", "b2", "wd", "k1", "k2", "eps", "decay")
        )
        put(state["_b1"], b1)
        put(state["_b2"], b2)
        put(state["_wd"], wd)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr = f64(lr)
        c = sqrt_1mb2 / np.sqrt(1.0 - b2**t)
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        mu_product = state["mu_product"]
        mu_product *= mu
        k1 = put(state["_k1"], -lr * (1.0 - mu) / (1.0 - mu_product) / c)
        k2 = put(state["_k2"], -lr * mu_next / (1.0 - mu_product * mu_next) * (1.0 - b1) / c)
        e = put(state["_eps"], eps_ / c)
        decay = put(state["_decay"], 1.0 - lr * wd)
        b1_c, b2_c, wd_c = state["_b1"], state["_b2"], state["_wd"]
        gw, u, s, d = state["_g"], state["_u"], state["_s"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, m, v = params[:, cols], grads[:, cols], state["m"][:, cols], state["v"][:, cols]
            if has_wd and decoupled_weight_decay:
                p *= decay
            elif has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            trace(m, g, b1_c)
            square_trace(v, g, b2_c, u[:, head])
            root_plus(d[:, head], v, e)
            np.multiply(g, k1, out=u[:, head])
            np.multiply(m, k2, out=s[:, head])
            u[:, head] += s[:, head]
            u[:, head] /= d[:, head]
            p += u[:, head]

    return Optimizer(init, update_, lr)


class RAdamSpec(SpecModel):
    name: Literal["radam"] = "radam"
    lr: Sweep[Positive] = 1e-3
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0
    decoupled_weight_decay: bool = False


@OPTIMIZERS.register("radam", RAdamSpec)
def radam(
    *,
    lr: HParam = 1e-3,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
    decoupled_weight_decay: bool = False,
) -> Optimizer:
    """Rectified Adam (Liu et al.): ``torch.optim.RAdam``.

    With ``ρ∞ = 2/(1-β2) - 1`` and ``ρ_t = ρ∞ - 2t·β2^t/(1-β2^t)``: while ``ρ_t <= 5`` the
    variance estimate is too young and the step is momentum SGD, ``p -= lr·m/(1-β1^t)``; after
    that Adam's step ``p -= lr·m/(1-β1^t) · √(1-β2^t)/(√v + ε)`` scaled by the rectification
    ``r_t = √((ρ_t-4)(ρ_t-2)ρ∞ / ((ρ∞-4)(ρ∞-2)ρ_t))``. Weight decay is L2 or decoupled.
    """
    b1, b2 = _betas(betas)
    eps_, wd = hparam(eps), hparam(weight_decay)
    has_wd = nonzero(wd)
    sqrt_1mb2 = np.sqrt(f64(1.0 - b2))
    rho_inf = f64(2 / (1 - b2) - 1)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        state = _moment_state(params)
        state |= buffers(params, ("g", "u", "d"), ("b1", "b2", "wd", "k", "eps", "decay"))
        state["_rectify"] = np.empty((params.shape[0], 1), dtype=np.bool_)
        state["_warming"] = np.empty((params.shape[0], 1), dtype=np.bool_)
        put(state["_b1"], b1)
        put(state["_b2"], b2)
        put(state["_wd"], wd)
        put(state["_eps"], eps_ / sqrt_1mb2)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr = f64(lr)
        bc1 = 1 - b1**t
        bc2 = 1 - b2**t
        rho_t = rho_inf - 2 * t * (b2**t) / bc2
        rectify = put(state["_rectify"], rho_t > 5.0)
        any_rectified, mixed = bool(rectify.any()), not rectify.all()
        warming = np.logical_not(rectify, out=state["_warming"])
        plain = -lr * (1.0 - b1) / bc1
        if any_rectified:
            with np.errstate(divide="ignore", invalid="ignore"):
                rect = np.sqrt(
                    np.divide(
                        (rho_t - 4) * (rho_t - 2) * rho_inf,
                        (rho_inf - 4) * (rho_inf - 2) * rho_t,
                    )
                )
            k = put(state["_k"], np.where(rectify, plain * rect * np.sqrt(bc2) / sqrt_1mb2, plain))
        else:
            k = put(state["_k"], plain)
        decay = put(state["_decay"], 1.0 - lr * wd)
        b1_c, b2_c, wd_c, e = state["_b1"], state["_b2"], state["_wd"], state["_eps"]
        gw, u, d = state["_g"], state["_u"], state["_d"]
        for cols, head in column_blocks(params.shape[1], u.shape[1]):
            p, g, m, v = params[:, cols], grads[:, cols], state["m"][:, cols], state["v"][:, cols]
            if has_wd and decoupled_weight_decay:
                p *= decay
            elif has_wd:
                g = coupled_decay(gw[:, head], g, p, wd_c)
            trace(m, g, b1_c)
            square_trace(v, g, b2_c, u[:, head])
            if not any_rectified:
                scaled_step(p, m, k, u[:, head])
                continue
            root_plus(d[:, head], v, e)
            if mixed:
                # Rows still in the SGD phase divide by exactly 1.
                np.copyto(d[:, head], 1.0, where=warming)
            ratio_step(p, m, d[:, head], k, u[:, head])

    return Optimizer(init, update_, lr)
