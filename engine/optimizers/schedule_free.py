"""Schedule-free AdamW and SGD (Defazio et al., 2024) as the ``schedulefree`` package has them.

Three sequences: ``z`` takes the base optimizer's steps, ``x`` is a weighted running average of the
``z`` iterates (weights ``c_t ∝ t^r · lr_max^weight_lr_power``) and the gradient is taken at the
interpolation ``y = (1-β)·z + β·x``. The row holds ``y`` (the package's train mode, where gradients
are taken); the model is judged at ``x`` (its ``eval()``), which :attr:`Optimizer.eval_params`
recovers from ``y`` and ``z`` as ``x = lerp(y, z, 1 - 1/β)``, into a separate buffer, so the
training iterates never go through an eval/train round trip. A schedule still multiplies ``lr``
(the method needs none; ``warmup_steps`` is its own linear warm-up).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    State,
    hparam,
)
from engine.optimizers.factored import lerp
from engine.optimizers.kernel import buffers, check_params, counter, f64, nonzero, put
from engine.optimizers.tensors import typed
from engine.specbase import SpecModel, Sweep

Steps = Annotated[int, Field(ge=0)]
Momentum = Annotated[float, Field(gt=0, lt=1)]


def _schedule_free(
    lr: HParam,
    beta: HParam,
    beta2: HParam | None,
    eps: HParam,
    weight_decay: HParam,
    warmup_steps: int,
    r: HParam,
    weight_lr_power: HParam,
) -> Optimizer:
    """The shared rule; ``beta2 = None`` is the SGD form (raw gradients, no second moment)."""
    wd = hparam(weight_decay)
    has_wd = nonzero(wd)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, beta, wd, eps, r, weight_lr_power)
        rows = params.shape[0]
        state: State = {
            "t": counter(),
            "z": params.copy(),
            "weight_sum": np.zeros((rows, 1)),
            "lr_max": np.full((rows, 1), -1.0),
        }
        if beta2 is not None:
            state["exp_avg_sq"] = np.zeros_like(params)
        columns = ("b2", "one_minus_b2", "bc2", "eps", "wd", "w", "rest", "k", "lr")
        state |= buffers(params, (), columns)
        state["_small"] = np.empty((rows, 1), dtype=np.bool_)
        put(state["_b2"], 0.0 if beta2 is None else beta2)
        put(state["_one_minus_b2"], 1.0 - (0.0 if beta2 is None else f64(beta2)))
        put(state["_eps"], eps)
        put(state["_wd"], wd)
        return state

    def coefficients(state: State, lr: HParam) -> tuple[int, HParam, np.ndarray]:
        """Advances the averaging weights; returns ``k``, ``γ`` and ``c = w_k/Σw``."""
        k = int(state["t"])
        sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0
        lr_t = f64(lr) * sched
        lr_max = state["lr_max"]
        lr_max[...] = np.maximum(lr_t, lr_max)
        weight = ((k + 1) ** r) * (lr_max**weight_lr_power)
        weight_sum = state["weight_sum"]
        weight_sum += weight
        with np.errstate(divide="ignore", invalid="ignore"):
            ckp1 = np.where(weight_sum == 0, 0.0, weight / weight_sum)
        return k, lr_t, ckp1

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        k, lr_t, ckp1 = coefficients(state, lr)
        dt = params.dtype
        if beta2 is not None:
            v = state["exp_avg_sq"]
            v *= typed(f64(beta2), dt)
            v += typed(1.0 - f64(beta2), dt) * (grads * grads)
            bc2 = typed(1.0 - f64(beta2) ** (k + 1), dt)
            g = grads / (np.sqrt(v / bc2) + typed(f64(eps), dt))
        else:
            g = grads.copy()
        if has_wd:
            g += typed(f64(wd), dt) * params
        z = state["z"]
        params[...] = lerp(params, z, typed(ckp1, dt))
        params += typed(lr_t * (f64(beta) * (1.0 - ckp1) - 1.0), dt) * g
        z -= typed(lr_t, dt) * g
        state["t"] += 1

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        k, lr_t, ckp1 = coefficients(state, lr)
        w = put(state["_w"], ckp1)
        np.less(w, 0.5, out=state["_small"])
        np.subtract(1.0, w, out=state["_rest"])
        put(state["_k"], lr_t * (f64(beta) * (1.0 - ckp1) - 1.0))
        put(state["_lr"], lr_t)
        if beta2 is not None:
            put(state["_bc2"], 1.0 - f64(beta2) ** (k + 1))
        fused.schedule_free_step(
            params, grads, state["z"], state.get("exp_avg_sq", state["z"]),
            beta2 is not None,
            state["_b2"], state["_one_minus_b2"], state["_bc2"], state["_eps"], has_wd,
            state["_wd"], w, state["_small"], state["_rest"], state["_k"], state["_lr"],
        )  # fmt: skip
        state["t"] += 1

    def eval_params(state: State, params: np.ndarray, out: np.ndarray) -> None:
        out[...] = lerp(params, state["z"], typed(1.0 - 1.0 / f64(beta), params.dtype))

    return Optimizer(init, update_, lr, fused_, eval_params=eval_params)


class ScheduleFreeAdamWSpec(SpecModel):
    name: Literal["schedule_free_adamw"] = "schedule_free_adamw"
    lr: Sweep[Positive] = 0.0025
    betas: Sweep[tuple[Momentum, Annotated[float, Field(ge=0, lt=1)]]] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    weight_decay: Sweep[NonNegative] = 0.0
    warmup_steps: Steps = 0
    r: Sweep[NonNegative] = 0.0
    weight_lr_power: Sweep[NonNegative] = 2.0


@OPTIMIZERS.register("schedule_free_adamw", ScheduleFreeAdamWSpec)
def schedule_free_adamw(
    *,
    lr: HParam = 0.0025,
    betas: tuple[HParam, HParam] = (0.9, 0.999),
    eps: HParam = 1e-8,
    weight_decay: HParam = 0.0,
    warmup_steps: int = 0,
    r: HParam = 0.0,
    weight_lr_power: HParam = 2.0,
) -> Optimizer:
    """Schedule-free AdamW: ``schedulefree.AdamWScheduleFree``.

    Step ``k`` (0-based): ``γ = lr·min(1, (k+1)/warmup_steps)``, ``γ_max = max γ so far``,
    ``c = w_k/Σw`` with ``w_k = (k+1)^r·γ_max^weight_lr_power``; ``v = β2·v + (1-β2)·g²``,
    ``ĝ = g/(√(v/(1-β2^(k+1))) + eps) + weight_decay·y``; ``y = lerp(y, z, c)
    + γ·(β1·(1-c) - 1)·ĝ``; ``z -= γ·ĝ``. No first moment: the averaging replaces it.
    """
    b1, b2 = (hparam(b) for b in betas)
    return _schedule_free(
        lr, b1, b2, hparam(eps), weight_decay, warmup_steps, hparam(r), hparam(weight_lr_power)
    )


class ScheduleFreeSGDSpec(SpecModel):
    name: Literal["schedule_free_sgd"] = "schedule_free_sgd"
    lr: Sweep[Positive] = 1.0
    momentum: Sweep[Momentum] = 0.9
    weight_decay: Sweep[NonNegative] = 0.0
    warmup_steps: Steps = 0
    r: Sweep[NonNegative] = 0.0
    weight_lr_power: Sweep[NonNegative] = 2.0


@OPTIMIZERS.register("schedule_free_sgd", ScheduleFreeSGDSpec)
def schedule_free_sgd(
    *,
    lr: HParam = 1.0,
    momentum: HParam = 0.9,
    weight_decay: HParam = 0.0,
    warmup_steps: int = 0,
    r: HParam = 0.0,
    weight_lr_power: HParam = 2.0,
) -> Optimizer:
    """Schedule-free SGD: ``schedulefree.SGDScheduleFree``; ``schedule_free_adamw``'s rule with
    ``ĝ = g + weight_decay·y`` (no second moment) and ``β1 = momentum``."""
    return _schedule_free(
        lr,
        hparam(momentum),
        None,
        1.0,
        weight_decay,
        warmup_steps,
        hparam(r),
        hparam(weight_lr_power),
    )
