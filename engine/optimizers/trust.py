"""Layer-wise trust ratios: LAMB and LARS as the ``pytorch-optimizer`` package implements them.

Both scale each tensor's step by a ratio of the tensor's norm to its update's norm, so that every
layer moves by a similar relative amount whatever its gradient scale. The norms are per tensor of
the layout (one vector for an analytic problem).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from engine.layout import Layout
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
from engine.optimizers.kernel import check_params, counter, f64, nonzero, tick
from engine.optimizers.tensors import norms, resolve, typed
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

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd)
        resolve(layout, params)
        return {"t": counter(), "m": np.zeros_like(params), "v": np.zeros_like(params)}

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

    return Optimizer(init, update_, lr)


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
        resolve(layout, params)
        return {"t": counter(), "momentum_buffer": np.zeros_like(params)}

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

    return Optimizer(init, update_, lr)
