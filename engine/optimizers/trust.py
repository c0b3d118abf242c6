"""Layer-wise trust ratios: LAMB and LARS as the ``pytorch-optimizer`` package implements them.

Both scale each tensor's step by a ratio of the tensor's norm to its update's norm, so that every
layer moves by a similar relative amount whatever its gradient scale. The norms are per tensor of
the layout (one vector for an analytic problem).

The fused forms keep the per-tensor norms in NumPy — the same reductions over the same values as
the references, into scratch buffers made by ``init`` — and do the elementwise passes around them
in compiled kernels (:mod:`engine.optimizers.fused`): LAMB's moments, decay and direction in one
pass, its trust-ratio step in another; LARS's scaling, momentum and step in one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from engine.layout import Layout
from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    Betas,
    Fraction,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    Rate,
    State,
    hparam,
)
from engine.optimizers.kernel import buffers, check_params, counter, f64, nonzero, put, tick
from engine.optimizers.tensors import (
    norms,
    norms_into,
    resolve,
    segment_stops,
    tensor_column,
    typed,
)
from engine.specbase import SpecModel, Sweep

#: pytorch-optimizer's ``Lamb.clamp``: the weight norm of the trust ratio is clipped to this.
LAMB_WEIGHT_NORM_MAX = 10.0


def trust_ratio(weight_norm: np.ndarray, update_norm: np.ndarray, eps: HParam) -> np.ndarray:
    """``‖p‖/(‖u‖ + eps)``, and 1 where either norm is 0 (pytorch-optimizer's LAMB)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = weight_norm / (update_norm + eps)
    return np.where((weight_norm == 0) | (update_norm == 0), 1.0, ratio)


class LambSpec(SpecModel):
    name: Literal["lamb"] = "lamb"
    lr: Sweep[Positive] = 1e-3
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-6
    weight_decay: Sweep[NonNegative] = 0.0
    weight_decouple: bool = True
    grad_averaging: bool = True


@OPTIMIZERS.register("lamb", LambSpec)
def lamb(
    *,
    lr: HParam = 1e-3,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-6,
    weight_decay: HParam = 0.0,
    weight_decouple: bool = True,
    grad_averaging: bool = True,
    layout: Layout | None = None,
) -> Optimizer:
    """LAMB (You et al.) in ``pytorch_optimizer.Lamb``'s default variant.

    ``m = β1·m + (1-β1)·g`` (``+ g`` without ``grad_averaging``), ``v = β2·v + (1-β2)·g²``;
    decoupled decay first, ``p *= 1 - lr·weight_decay`` (else ``u`` gets ``+ weight_decay·p``);
    ``u = m/(√v + eps)`` — the second moment is *not* bias-corrected, the first is, through the
    step size ``lr/(1-β1^t)``; per tensor the trust ratio ``r = min(‖p‖, 10)/(‖u‖ + eps)`` (1 if
    either norm is 0; the weight norm is clipped at 10) and ``p -= lr/(1-β1^t) · r · u``.
    """
    b1, b2 = (hparam(b) for b in betas)
    eps_, wd = hparam(eps), hparam(weight_decay)
    has_wd = nonzero(wd)
    mode = fused.NO_DECAY
    if has_wd:
        mode = fused.DECOUPLED_DECAY if weight_decouple else fused.L2_DECAY

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        tensors = len(resolve(layout, params).tensors)
        state: State = {"t": counter(), "m": np.zeros_like(params), "v": np.zeros_like(params)}
        state |= buffers(params, (), ("b1", "one_minus_b1", "b2", "one_minus_b2"))
        state |= buffers(params, (), ("shrink", "wd", "eps"))
        for name, value in (("b1", b1), ("b2", b2)):
            put(state[f"_{name}"], value)
            put(state[f"_one_minus_{name}"], 1.0 - f64(value))
        put(state["_wd"], wd)
        put(state["_eps"], eps_)
        state["_u"], state["_squares"] = np.empty_like(params), np.empty_like(params)
        for name in ("weight_norm", "update_norm", "scale"):
            state[f"_{name}"] = np.empty((params.shape[0], tensors), dtype=params.dtype)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr, dt = f64(lr), params.dtype
        step_size = typed(lr / (1.0 - f64(b1) ** t), dt)
        beta1, beta2, eps_t = typed(f64(b1), dt), typed(f64(b2), dt), typed(f64(eps_), dt)
        m, v = state["m"], state["v"]
        m *= beta1
        m += typed(1.0 - f64(b1), dt) * grads if grad_averaging else grads
        v *= beta2
        v += typed(1.0 - f64(b2), dt) * grads * grads
        if has_wd and weight_decouple:
            params *= typed(1.0 - f64(wd) * lr, dt)
        u = m / (np.sqrt(v) + eps_t)
        if has_wd and not weight_decouple:
            u += typed(f64(wd), dt) * params
        for tensor in resolve(layout, params).tensors:
            p, ut = tensor.view(params), tensor.view(u)
            weight_norm = np.minimum(norms(p), LAMB_WEIGHT_NORM_MAX)
            ratio = trust_ratio(weight_norm, norms(ut), _rows(eps_t, p.ndim))
            p -= _rows(step_size, p.ndim) * ratio * ut

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr, dt = f64(lr), params.dtype
        if mode == fused.DECOUPLED_DECAY:
            put(state["_shrink"], 1.0 - f64(wd) * lr)
        u, squares = state["_u"], state["_squares"]
        fused.lamb_direction(
            params, grads, state["m"], state["v"], u, grad_averaging, state["_b1"],
            state["_one_minus_b1"], state["_b2"], state["_one_minus_b2"], mode,
            state["_shrink"], state["_wd"], state["_eps"],
        )  # fmt: skip
        step_size = typed(lr / (1.0 - f64(b1) ** t), dt)
        eps_t = typed(f64(eps_), dt)
        lay = resolve(layout, params)
        for i, tensor in enumerate(lay.tensors):
            p, nd, sq = tensor.view(params), len(tensor.shape) + 1, tensor.view(squares)
            p_norm = norms_into(p, sq, tensor_column(state["_weight_norm"], i, nd))
            u_norm = norms_into(tensor.view(u), sq, tensor_column(state["_update_norm"], i, nd))
            ratio = trust_ratio(np.minimum(p_norm, LAMB_WEIGHT_NORM_MAX), u_norm, _rows(eps_t, nd))
            tensor_column(state["_scale"], i, nd)[...] = _rows(step_size, nd) * ratio
        fused.segment_step(params, u, segment_stops(lay), False, state["_wd"], state["_scale"])

    return Optimizer(init, update_, lr, fused_)


def _rows(value: HParam, ndim: int) -> HParam:
    return value.reshape(-1, *([1] * (ndim - 1))) if isinstance(value, np.ndarray) else value


class LarsSpec(SpecModel):
    name: Literal["lars"] = "lars"
    lr: Sweep[Positive] = 1e-3
    weight_decay: Sweep[NonNegative] = 0.0
    momentum: Sweep[Rate] = 0.9
    dampening: Sweep[Fraction] = 0.0
    trust_coefficient: Sweep[Positive] = 1e-3
    nesterov: bool = False


@OPTIMIZERS.register("lars", LarsSpec)
def lars(
    *,
    lr: HParam = 1e-3,
    weight_decay: HParam = 0.0,
    momentum: HParam = 0.9,
    dampening: HParam = 0.0,
    trust_coefficient: HParam = 1e-3,
    nesterov: bool = False,
    layout: Layout | None = None,
) -> Optimizer:
    """LARS (You et al.) as ``pytorch_optimizer.LARS``.

    For a tensor of two or more dimensions (a weight matrix):
    ``g ← (g + wd·p) · η·‖p‖/(‖g‖ + wd·‖p‖)`` with ``η = trust_coefficient`` (ratio 1 where
    ``‖p‖ = 0`` or the denominator is 0); vectors — biases, normalisation parameters, every
    analytic problem — keep their raw gradient and get no weight decay. Then momentum as
    ``b = μ·b + (1-dampening)·g`` from ``b = 0`` (so unlike torch's SGD the first step is damped
    too) and ``p -= lr·(g + μ·b)`` (Nesterov) or ``p -= lr·b``; with ``momentum = 0`` the
    scaled gradient itself.
    """
    wd, mom, damp, coef = (
        hparam(v) for v in (weight_decay, momentum, dampening, trust_coefficient)
    )

    def init(params: np.ndarray) -> State:
        check_params(params, lr, wd, mom, damp, coef)
        lay = resolve(layout, params)
        rows, tensors = params.shape[0], len(lay.tensors)
        state: State = {"t": counter(), "momentum_buffer": np.zeros_like(params)}
        state |= buffers(params, (), ("wd", "momentum", "one_minus_dampening", "lr"))
        put(state["_wd"], wd)
        put(state["_momentum"], mom)
        put(state["_one_minus_dampening"], 1.0 - f64(damp))
        state["_use_momentum"] = state["_momentum"] > 0
        state["_scaled"] = np.array([len(t.shape) >= 2 for t in lay.tensors])
        if state["_scaled"].any():
            state["_squares"] = np.empty_like(params)
        for name in ("p_norm", "g_norm", "ratio"):
            state[f"_{name}"] = np.ones((rows, tensors), dtype=params.dtype)
        return state

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        dt = params.dtype
        g = grads.copy()
        for tensor in resolve(layout, params).tensors:
            if len(tensor.shape) < 2:
                continue
            p, gt = tensor.view(params), tensor.view(g)
            wd_t, coef_t = _rows(typed(f64(wd), dt), p.ndim), _rows(typed(f64(coef), dt), p.ndim)
            p_norm, g_norm = norms(p), norms(gt)
            denom = g_norm + wd_t * p_norm
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = coef_t * p_norm / denom
            ratio = np.where((p_norm > 0) & (denom > 0), scaled, 1.0)
            gt += wd_t * p
            gt *= ratio
        buf = state["momentum_buffer"]
        mom_t = typed(f64(mom), dt)
        buf *= mom_t
        buf += typed(1.0 - f64(damp), dt) * g
        stepped = g + mom_t * buf if nesterov else buf
        direction = np.where(mom_t > 0, stepped, g)
        params -= typed(f64(lr), dt) * direction

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        dt = params.dtype
        lay = resolve(layout, params)
        for i, tensor in enumerate(lay.tensors):
            if len(tensor.shape) < 2:
                continue
            p, nd, sq = tensor.view(params), len(tensor.shape) + 1, tensor.view(state["_squares"])
            wd_t, coef_t = _rows(typed(f64(wd), dt), nd), _rows(typed(f64(coef), dt), nd)
            p_norm = norms_into(p, sq, tensor_column(state["_p_norm"], i, nd))
            g_norm = norms_into(tensor.view(grads), sq, tensor_column(state["_g_norm"], i, nd))
            denom = g_norm + wd_t * p_norm
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = coef_t * p_norm / denom
            ratio = np.where((p_norm > 0) & (denom > 0), scaled, 1.0)
            tensor_column(state["_ratio"], i, nd)[...] = ratio
        put(state["_lr"], f64(lr))
        fused.lars_step(
            params, grads, state["momentum_buffer"], segment_stops(lay), state["_scaled"],
            state["_wd"], state["_ratio"], state["_momentum"], state["_one_minus_dampening"],
            state["_use_momentum"], nesterov, state["_lr"],
        )  # fmt: skip

    return Optimizer(init, update_, lr, fused_)
