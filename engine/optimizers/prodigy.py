"""Prodigy (Mishchenko & Defazio, 2023): Adam whose step size ``d`` estimates the distance to the
solution as training goes, as the ``prodigyopt`` package implements it."""

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
    Rate,
    State,
    hparam,
)
from engine.optimizers.kernel import check_params, counter, f64
from engine.optimizers.tensors import typed
from engine.specbase import SpecModel, Sweep


class ProdigySpec(SpecModel):
    name: Literal["prodigy"] = "prodigy"
    lr: Sweep[Positive] = 1.0
    betas: Sweep[Betas] = (0.9, 0.999)
    beta3: Sweep[Rate] | None = None
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0
    decouple: bool = True
    use_bias_correction: bool = False
    safeguard_warmup: bool = False
    d0: Sweep[Positive] = 1e-6
    d_coef: Sweep[Positive] = 1.0
    growth_rate: Sweep[Positive] | None = None


@OPTIMIZERS.register("prodigy", ProdigySpec)
def prodigy(
    *,
    lr: HParam = 1.0,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    beta3: HParam | None = None,
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
    decouple: bool = True,
    use_bias_correction: bool = False,
    safeguard_warmup: bool = False,
    d0: HParam = 1e-6,
    d_coef: HParam = 1.0,
    growth_rate: HParam | None = None,
) -> Optimizer:
    """Prodigy: ``prodigyopt.Prodigy`` (``growth_rate: null`` is its ``float('inf')``).

    With ``dlr = d·lr·bc`` (``bc = √(1-β2^(k+1))/(1-β1^(k+1))`` with ``use_bias_correction``,
    else 1): ``m = β1·m + d(1-β1)·g``, ``v = β2·v + d²(1-β2)·g²``, ``s = β3·s + (d/d0)·dlr·g``
    (``β3 = √β2`` by default; ``(d/d0)·d·g`` with ``safeguard_warmup``); the numerator
    ``r = β3·r + (d/d0)·dlr·⟨g, p0 - p⟩`` and ``d̂ = d_coef·r/‖s‖₁``; ``d`` grows to
    ``min(max d̂ so far, d·growth_rate)`` (from ``d0``, it jumps to ``max(d0, d̂)``). Then
    ``p -= dlr·weight_decay·p`` (decoupled; else L2 in ``g``) and ``p -= dlr·m/(√v + d·eps)``.
    While ``‖s‖₁ = 0`` (e.g. a zero gradient) the moments advance but ``d``, the step count and
    the parameters do not — the package's early return. Global over the row: the layout is
    irrelevant (the package's per-tensor sums add up to the same).
    """
    b1, b2 = (hparam(b) for b in betas)
    b3 = np.sqrt(f64(b2)) if beta3 is None else hparam(beta3)
    eps_, wd, d0_, coef = hparam(eps), hparam(weight_decay), hparam(d0), hparam(d_coef)
    growth = np.inf if growth_rate is None else hparam(growth_rate)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, b1, b2, eps_, wd, d0_, coef)
        rows = params.shape[0]
        col = np.ones((rows, 1))
        return {
            "t": counter(),
            "k": np.zeros((rows, 1)),
            "d": col * d0_,
            "d_max": col * d0_,
            "d_numerator": np.zeros((rows, 1)),
            "p0": params.copy(),
            "s": np.zeros_like(params),
            "exp_avg": np.zeros_like(params),
            "exp_avg_sq": np.zeros_like(params),
        }

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        state["t"] += 1
        lr = f64(lr)
        k, d = state["k"], state["d"]
        bc = np.sqrt(1.0 - b2 ** (k + 1)) / (1.0 - b1 ** (k + 1)) if use_bias_correction else 1.0
        dlr = d * lr * bc
        d_num = state["d_numerator"] * b3
        dt = params.dtype
        g = grads + typed(f64(wd), dt) * params if not decouple else grads
        delta_num = (d / d0_) * dlr * np.einsum("ij,ij->i", g, state["p0"] - params)[:, None]
        m, v, s = state["exp_avg"], state["exp_avg_sq"], state["s"]
        m *= typed(f64(b1), dt)
        m += (d * (1.0 - b1)) * g
        v *= typed(f64(b2), dt)
        v += (d * d * (1.0 - b2)) * (g * g)
        s *= typed(f64(b3), dt)
        s += ((d / d0_) * d if safeguard_warmup else (d / d0_) * dlr) * g
        d_denom = np.abs(s).sum(axis=1, keepdims=True)
        live = d_denom != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            d_hat = coef * (d_num + delta_num) / d_denom
        new_d = np.where(d == d0_, np.maximum(d, d_hat), d)
        d_max = np.maximum(state["d_max"], d_hat)
        new_d = np.minimum(d_max, new_d * growth)
        state["d_numerator"][...] = np.where(live, d_num + delta_num, state["d_numerator"])
        state["d_max"][...] = np.where(live, d_max, state["d_max"])
        d[...] = np.where(live, new_d, d)
        denom = np.sqrt(v) + d * eps_
        if decouple:
            params += np.where(live, params * (-wd * dlr), 0.0)
        with_momentum = np.asarray(b1) > 0
        move = np.where(with_momentum, (-dlr) * m, (-dlr * d) * g) / denom
        params += np.where(live, move, 0.0)
        k += live

    return Optimizer(init, update_, lr)
