"""The Adam family: Adam (and AMSGrad), AdamW, Adamax, NAdam and RAdam, as in ``torch.optim``.

All keep a first-moment EMA of the gradient and (except Adamax) a second-moment EMA of its square:
``m = β1·m + (1-β1)·g`` and ``v = β2·v + (1-β2)·g²``. Each ``update_`` is the NumPy reference and
does PyTorch's single-tensor (``foreach=False``) operations in PyTorch's order — ``m.lerp_(g,
1-β1)``, ``v.mul_(β2).addcmul_(g, g, value=1-β2)``, bias corrections in Python floats, the step
``p.addcdiv_(m, d, value=-step)`` as ``p + (-step·m)/d`` — so every intermediate is rounded where
PyTorch rounds it; ``fused_`` is the same arithmetic in one compiled pass
(:mod:`engine.optimizers.fused`).
"""

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
    counter,
    f64,
    lerp,
    lerp_columns,
    nonzero,
    power,
    put,
    tick,
)
from engine.specbase import SpecModel, Sweep


def _betas(betas: tuple[HParam, HParam]) -> tuple[HParam, HParam]:
    b1, b2 = betas
    return hparam(b1), hparam(b2)


def _decay_mode(wd: HParam, decoupled: bool) -> int:
    if not nonzero(wd):
        return fused.NO_DECAY
    return fused.DECOUPLED_DECAY if decoupled else fused.L2_DECAY


def _moment_state(params: np.ndarray, b1: HParam, b2: HParam, wd: HParam) -> State:
    """``m``, ``v`` and the columns every member shares: ``m``'s lerp weight ``1-β1``, ``β2``,
    ``1-β2``, the weight decay and the per-update decoupled factor ``1 - lr·wd``."""
    state: State = {"t": counter(), "m": np.zeros_like(params), "v": np.zeros_like(params)}
    state |= lerp_columns(params, 1.0 - f64(b1))
    state |= buffers(params, (), ("b2", "one_minus_b2", "wd", "decay"))
    put(state["_b2"], b2)
    put(state["_one_minus_b2"], 1.0 - f64(b2))
    put(state["_wd"], wd)
    return state


def _decay_and_moments(
    grads: np.ndarray, state: State, params: np.ndarray, mode: int
) -> np.ndarray:
    """The shared head of a step: weight decay (on ``p`` or into ``g``), then ``m`` and ``v``;
    returns the gradient the moments saw."""
    g = grads
    if mode == fused.DECOUPLED_DECAY:
        params *= state["_decay"]
    elif mode == fused.L2_DECAY:
        g = grads + state["_wd"] * params
    m, v = state["m"], state["v"]
    m[...] = lerp(m, g, state)
    v *= state["_b2"]
    v += (state["_one_minus_b2"] * g) * g
    return g


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
    mode = _decay_mode(wd, decoupled)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        state = _moment_state(params, b1, b2, wd)
        if amsgrad:
            state["v_max"] = np.zeros_like(params)
        state |= buffers(params, (), ("eps", "k", "bc2_sqrt"))
        put(state["_eps"], eps_)
        return state

    def coefficients(state: State, lr: HParam) -> None:
        t = float(tick(state))
        lr = f64(lr)
        put(state["_k"], -(lr / (1.0 - power(b1, t))))
        put(state["_bc2_sqrt"], power(1.0 - power(b2, t), 0.5))
        if mode == fused.DECOUPLED_DECAY:
            put(state["_decay"], 1.0 - lr * wd)

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        _decay_and_moments(grads, state, params, mode)
        v = state["v"]
        if amsgrad:
            np.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]
        denom = np.sqrt(v) / state["_bc2_sqrt"] + state["_eps"]
        params += (state["_k"] * state["m"]) / denom

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        fused.adam_step(
            params, grads, state["m"], state["v"], state.get("v_max", state["v"]), amsgrad,
            mode, state["_wd"], state["_decay"], state["_w"], state["_w_small"],
            state["_w_rest"], state["_b2"], state["_one_minus_b2"], state["_bc2_sqrt"],
            state["_eps"], state["_k"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)


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
        state |= lerp_columns(params, 1.0 - f64(b1))
        state |= buffers(params, (), ("b2", "wd", "eps", "k"))
        put(state["_b2"], b2)
        put(state["_wd"], wd)
        put(state["_eps"], eps_)
        return state

    def coefficients(state: State, lr: HParam) -> None:
        t = float(tick(state))
        put(state["_k"], -(f64(lr) / (1.0 - power(b1, t))))

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        g = grads + state["_wd"] * params if has_wd else grads
        m, u = state["m"], state["u"]
        m[...] = lerp(m, g, state)
        u *= state["_b2"]
        np.maximum(u, np.abs(g) + state["_eps"], out=u)
        params += (state["_k"] * m) / u

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        fused.adamax_step(
            params, grads, state["m"], state["u"], has_wd, state["_wd"], state["_w"],
            state["_w_small"], state["_w_rest"], state["_b2"], state["_eps"], state["_k"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)


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
    mode = _decay_mode(wd, decoupled_weight_decay)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd, psi)
        state = _moment_state(params, b1, b2, wd)
        state["mu_product"] = np.ones((params.shape[0], 1), dtype=np.float64)
        state |= buffers(params, (), ("eps", "bc2", "k1", "k2"))
        put(state["_eps"], eps_)
        return state

    def coefficients(state: State, lr: HParam) -> None:
        t = float(tick(state))
        lr = f64(lr)
        put(state["_bc2"], 1.0 - power(b2, t))
        mu = b1 * (1.0 - 0.5 * power(0.96, t * psi))
        mu_next = b1 * (1.0 - 0.5 * power(0.96, (t + 1.0) * psi))
        mu_product = state["mu_product"]
        mu_product *= mu
        put(state["_k1"], -lr * (1.0 - mu) / (1.0 - mu_product))
        put(state["_k2"], (-lr * mu_next) / (1.0 - mu_product * mu_next))
        if mode == fused.DECOUPLED_DECAY:
            put(state["_decay"], 1.0 - lr * wd)

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        g = _decay_and_moments(grads, state, params, mode)
        denom = np.sqrt(state["v"] / state["_bc2"]) + state["_eps"]
        params += (state["_k1"] * g) / denom
        params += (state["_k2"] * state["m"]) / denom

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        fused.nadam_step(
            params, grads, state["m"], state["v"], mode, state["_wd"], state["_decay"],
            state["_w"], state["_w_small"], state["_w_rest"], state["_b2"],
            state["_one_minus_b2"], state["_bc2"], state["_eps"], state["_k1"], state["_k2"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)


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
    mode = _decay_mode(wd, decoupled_weight_decay)
    rho_inf = 2 / (1 - f64(b2)) - 1

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        state = _moment_state(params, b1, b2, wd)
        state |= buffers(params, (), ("eps", "one", "bc1", "lr", "bc2_sqrt", "rect"))
        state["_rectify"] = np.empty((params.shape[0], 1), dtype=np.bool_)
        put(state["_eps"], eps_)
        put(state["_one"], 1.0)
        return state

    def coefficients(state: State, lr: HParam) -> bool:
        """Writes the step's columns; returns whether any run takes the rectified step."""
        t = float(tick(state))
        bc2 = 1.0 - power(b2, t)
        rho_t = rho_inf - 2 * t * power(b2, t) / bc2
        rectify = put(state["_rectify"], rho_t > 5.0)
        put(state["_bc1"], 1.0 - power(b1, t))
        put(state["_lr"], f64(lr))
        if mode == fused.DECOUPLED_DECAY:
            put(state["_decay"], 1.0 - f64(lr) * wd)
        if not rectify.any():
            return False
        with np.errstate(divide="ignore", invalid="ignore"):
            rect = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        put(state["_rect"], np.where(rectify, power(np.where(rectify, rect, 1.0), 0.5), 1.0))
        put(state["_bc2_sqrt"], power(bc2, 0.5))
        return True

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        rectified = coefficients(state, lr)
        _decay_and_moments(grads, state, params, mode)
        step = state["m"] / state["_bc1"] * state["_lr"]
        if rectified:
            adaptive = state["_one"] / (np.sqrt(state["v"]) + state["_eps"]) * state["_bc2_sqrt"]
            step = np.where(state["_rectify"], step * adaptive * state["_rect"], step)
        params -= step

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        coefficients(state, lr)
        fused.radam_step(
            params, grads, state["m"], state["v"], mode, state["_wd"], state["_decay"],
            state["_w"], state["_w_small"], state["_w_rest"], state["_b2"],
            state["_one_minus_b2"], state["_rectify"], state["_bc1"], state["_lr"],
            state["_one"], state["_eps"], state["_bc2_sqrt"], state["_rect"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)
