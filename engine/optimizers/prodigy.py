"""Prodigy (Mishchenko & Defazio, 2023): Adam whose step size ``d`` estimates the distance to the
solution as training goes, as the ``prodigyopt`` package implements it.

The fused form keeps the two reductions of a step in NumPy — ``⟨g, p0 - p⟩`` by the reference's
``einsum`` and ``‖s‖₁`` by its ``sum``, over scratch made by ``init`` — and does the elementwise
passes around them in two compiled kernels (the EMAs, then the step); same operations, same
order, so it is bit-identical to the reference.
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
    Rate,
    State,
    hparam,
)
from engine.optimizers.kernel import buffers, check_params, counter, f64, put
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
        state: State = {
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
        state |= buffers(params, (), ("b1", "b2", "b3", "d_denom"))
        for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
            put(state[f"_{name}"], value)
        state["_with_momentum"] = np.broadcast_to(np.asarray(b1) > 0, (rows, 1)).copy()
        state["_dot"] = np.empty(rows, dtype=params.dtype)
        state["_scratch"] = np.empty_like(params)
        if not decouple:
            state["_g"] = np.empty_like(params)
        return state

    def start(state: State, lr: HParam) -> tuple[np.ndarray, np.ndarray]:
        """Advances the count; returns ``dlr`` and the decayed numerator of this step."""
        state["t"] += 1
        k, d = state["k"], state["d"]
        bc = np.sqrt(1.0 - b2 ** (k + 1)) / (1.0 - b1 ** (k + 1)) if use_bias_correction else 1.0
        return d * f64(lr) * bc, state["d_numerator"] * b3

    def moment_weights(d: np.ndarray, dlr: np.ndarray) -> tuple[HParam, HParam, HParam]:
        """The float64 weights of ``g`` in ``m``, of ``g²`` in ``v`` and of ``g`` in ``s``."""
        return (
            d * (1.0 - b1),
            d * d * (1.0 - b2),
            (d / d0_) * d if safeguard_warmup else (d / d0_) * dlr,
        )

    def advance_d(
        state: State, d_num: np.ndarray, delta_num: np.ndarray, d_denom: np.ndarray
    ) -> np.ndarray:
        """``d`` (in place) from the numerator and ``‖s‖₁``; returns the live runs."""
        d = state["d"]
        live = d_denom != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            d_hat = coef * (d_num + delta_num) / d_denom
        new_d = np.where(d == d0_, np.maximum(d, d_hat), d)
        d_max = np.maximum(state["d_max"], d_hat)
        new_d = np.minimum(d_max, new_d * growth)
        state["d_numerator"][...] = np.where(live, d_num + delta_num, state["d_numerator"])
        state["d_max"][...] = np.where(live, d_max, state["d_max"])
        d[...] = np.where(live, new_d, d)
        return live

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        dlr, d_num = start(state, lr)
        d = state["d"]
        dt = params.dtype
        g = grads + typed(f64(wd), dt) * params if not decouple else grads
        delta_num = (d / d0_) * dlr * np.einsum("ij,ij->i", g, state["p0"] - params)[:, None]
        c1, c2, c3 = moment_weights(d, dlr)
        m, v, s = state["exp_avg"], state["exp_avg_sq"], state["s"]
        m *= typed(f64(b1), dt)
        m += c1 * g
        v *= typed(f64(b2), dt)
        v += c2 * (g * g)
        s *= typed(f64(b3), dt)
        s += c3 * g
        d_denom = np.abs(s).sum(axis=1, keepdims=True)
        live = advance_d(state, d_num, delta_num, d_denom)
        denom = np.sqrt(v) + d * eps_
        if decouple:
            params += np.where(live, params * (-wd * dlr), 0.0)
        with_momentum = np.asarray(b1) > 0
        move = np.where(with_momentum, (-dlr) * m, (-dlr * d) * g) / denom
        params += np.where(live, move, 0.0)
        state["k"] += live

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        dlr, d_num = start(state, lr)
        d = state["d"]
        g, scratch, dot = grads, state["_scratch"], state["_dot"]
        if not decouple:
            g = state["_g"]
            np.multiply(params, typed(f64(wd), params.dtype), out=g)
            np.add(grads, g, out=g)
        np.subtract(state["p0"], params, out=scratch)
        np.einsum("ij,ij->i", g, scratch, out=dot)
        delta_num = (d / d0_) * dlr * dot[:, None]
        c1, c2, c3 = (np.broadcast_to(c, d.shape) for c in moment_weights(d, dlr))
        fused.prodigy_moments(
            g, state["exp_avg"], state["exp_avg_sq"], state["s"], scratch, state["_b1"], c1,
            state["_b2"], c2, state["_b3"], c3,
        )  # fmt: skip
        d_denom = np.sum(scratch, axis=1, keepdims=True, out=state["_d_denom"])
        live = advance_d(state, d_num, delta_num, d_denom)
        decay = np.broadcast_to(-wd * dlr, d.shape)
        fused.prodigy_step(
            params, g, state["exp_avg"], state["exp_avg_sq"], live, decouple, decay,
            state["_with_momentum"], -dlr, -dlr * d, d * eps_,
        )  # fmt: skip
        state["k"] += live

    return Optimizer(init, update_, lr, fused_)
