"""PyTorch reference LR sequences for the schedules, written to ``tests/data/schedules_torch.npz``
(``.venv/bin/python tests/reference/gen_schedules.py``; needs torch).

Each case is one of our schedule specs (defaults resolved through ``ScheduleSpec``), an optimizer
lr and a step count; :func:`torch_scheduler` builds the ``torch.optim.lr_scheduler`` scheduler
that spec names and :func:`torch_lrs` records the lr of each optimizer step in the standard loop
``lr_t = group["lr"]; opt.step(); sched.step()`` (``sched.step(loss_t)`` for
``reduce_on_plateau``, fed the case's loss sequence). ``cyclic`` and ``one_cycle`` use
``cycle_momentum=False``: our schedules never touch the optimizer's momentum. ``warmup`` is
``SequentialLR([LinearLR(start_factor, 1.0, warmup_steps), <then>], milestones=[warmup_steps])``;
``sequential`` is ``SequentialLR`` over the schedulers of its members; ``wsd`` (no PyTorch class) is
``SequentialLR([LinearLR(s, 1, W), ConstantLR(1.0), LinearLR(1, e, D) | CosineAnnealingLR(D, lr·e)
| LambdaLR(e + (1 − e)(1 − √(min(k, D)/D)))], milestones=[W, W + S])``; a cosine case ends where
the decay ends (past it ``CosineAnnealingLR`` rises again while ``wsd`` holds ``lr·e``).

The npz holds ``cases`` (JSON: id, spec, base_lr, steps) and per case ``lrs__<id>`` and, for
loss-reading cases, ``losses__<id>``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter
from torch.optim import lr_scheduler as tls

from engine.schedules import ScheduleSpec

OUT = Path(__file__).resolve().parents[1] / "data" / "schedules_torch.npz"


def plateau_losses(kind: str, n: int = 240) -> np.ndarray:
    """Loss sequences that fall, plateau, improve again and plateau (seeded noise).

    ``falling``: a decaying loss with two long flat stretches and a late NaN;
    ``rising``: an accuracy-like curve for ``mode="max"`` with plateaus and dips;
    ``noisy``: a slow decrease under noise that sometimes beats the threshold and sometimes not.
    """
    rng = np.random.default_rng({"falling": 1, "rising": 2, "noisy": 3}[kind])
    t = np.arange(n, dtype=np.float64)
    if kind == "falling":
        level = np.piecewise(
            t,
            [t < 40, (t >= 40) & (t < 100), (t >= 100) & (t < 140), t >= 140],
            [lambda s: 2.0 / (1 + 0.1 * s), 0.4, lambda s: 0.4 - 0.005 * (s - 100), 0.2],
        )
        out = level + 1e-6 * rng.standard_normal(n)
        out[200] = np.nan
        return out
    if kind == "rising":
        level = np.piecewise(
            t,
            [t < 50, (t >= 50) & (t < 110), (t >= 110) & (t < 150), t >= 150],
            [
                lambda s: 0.9 * (1 - np.exp(-s / 15)),
                0.9 * (1 - np.exp(-50 / 15)),
                lambda s: 0.86 + 0.001 * (s - 110),
                0.9,
            ],
        )
        return level - 0.02 * (rng.random(n) < 0.1) + 1e-5 * rng.standard_normal(n)
    if kind == "noisy":
        return 1.0 - 0.002 * t + 0.01 * rng.standard_normal(n)
    raise ValueError(kind)


def _case(
    cid: str, spec: dict[str, Any], base_lr: float, steps: int, losses: str | None = None
) -> dict[str, Any]:
    return {"id": cid, "spec": spec, "base_lr": base_lr, "steps": steps, "losses": losses}


CASES: list[dict[str, Any]] = [
    _case("constant", {"name": "constant"}, 0.05, 200),
    _case("step_30_half", {"name": "step", "step_size": 30, "gamma": 0.5}, 0.1, 250),
    _case("step_7_default", {"name": "step", "step_size": 7}, 1.0, 220),
    _case("step_1_slow", {"name": "step", "step_size": 1, "gamma": 0.97}, 3e-4, 300),
    _case("multistep", {"name": "multistep", "milestones": [20, 50, 120], "gamma": 0.3}, 0.1, 250),
    _case("multistep_early", {"name": "multistep", "milestones": [1, 2, 150]}, 0.5, 200),
    _case("exponential_098", {"name": "exponential", "gamma": 0.98}, 0.1, 250),
    _case("exponential_0999", {"name": "exponential", "gamma": 0.999}, 2.0, 400),
    _case("linear_default", {"name": "linear"}, 0.1, 200),
    _case(
        "linear_decay",
        {"name": "linear", "start_factor": 1.0, "end_factor": 0.05, "total_iters": 150},
        0.2,
        250,
    ),
    _case(
        "linear_partial",
        {"name": "linear", "start_factor": 0.2, "end_factor": 0.7, "total_iters": 300},
        0.01,
        250,
    ),
    _case("polynomial_default", {"name": "polynomial"}, 0.1, 200),
    _case("polynomial_sq", {"name": "polynomial", "total_iters": 150, "power": 2.0}, 0.1, 250),
    _case("polynomial_sqrt", {"name": "polynomial", "total_iters": 220, "power": 0.5}, 1.0, 260),
    _case("cosine_past_tmax", {"name": "cosine", "T_max": 100}, 0.1, 250),
    _case("cosine_eta_min", {"name": "cosine", "T_max": 37, "eta_min": 1e-3}, 0.05, 240),
    _case("cosine_exact", {"name": "cosine", "T_max": 200}, 1.0, 201),
    _case("sgdr_fixed", {"name": "cosine_warm_restarts", "T_0": 10}, 0.1, 200),
    _case(
        "sgdr_mult2",
        {"name": "cosine_warm_restarts", "T_0": 5, "T_mult": 2, "eta_min": 1e-4},
        0.1,
        320,
    ),
    _case("sgdr_mult3", {"name": "cosine_warm_restarts", "T_0": 3, "T_mult": 3}, 0.4, 300),
    _case("cyclic_triangular", {"name": "cyclic", "max_lr": 0.1, "step_size_up": 20}, 0.01, 250),
    _case(
        "cyclic_triangular2",
        {
            "name": "cyclic",
            "base_lr": 0.001,
            "max_lr": 0.05,
            "step_size_up": 15,
            "step_size_down": 25,
            "mode": "triangular2",
        },
        0.3,
        260,
    ),
    _case(
        "cyclic_exp_range",
        {
            "name": "cyclic",
            "base_lr": 0.002,
            "max_lr": 0.2,
            "step_size_up": 10,
            "step_size_down": 7,
            "mode": "exp_range",
            "gamma": 0.99,
        },
        0.1,
        250,
    ),
    _case("one_cycle_cos", {"name": "one_cycle", "total_steps": 250}, 0.1, 250),
    _case(
        "one_cycle_linear",
        {
            "name": "one_cycle",
            "max_lr": 0.4,
            "total_steps": 230,
            "anneal_strategy": "linear",
            "pct_start": 0.25,
        },
        0.1,
        230,
    ),
    _case(
        "one_cycle_3p_cos",
        {"name": "one_cycle", "max_lr": 1.0, "total_steps": 260, "three_phase": True},
        0.1,
        260,
    ),
    _case(
        "one_cycle_3p_linear",
        {
            "name": "one_cycle",
            "total_steps": 301,
            "pct_start": 0.4,
            "anneal_strategy": "linear",
            "three_phase": True,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
        },
        0.05,
        301,
    ),
    _case(
        "plateau_min_rel",
        {"name": "reduce_on_plateau", "factor": 0.5, "patience": 5},
        0.1,
        240,
        "falling",
    ),
    _case(
        "plateau_min_abs",
        {
            "name": "reduce_on_plateau",
            "factor": 0.3,
            "patience": 3,
            "threshold": 0.01,
            "threshold_mode": "abs",
            "cooldown": 4,
            "min_lr": 1e-3,
        },
        0.1,
        240,
        "falling",
    ),
    _case("plateau_min_default", {"name": "reduce_on_plateau"}, 1.0, 240, "noisy"),
    _case(
        "plateau_max_rel",
        {
            "name": "reduce_on_plateau",
            "mode": "max",
            "factor": 0.5,
            "patience": 4,
            "threshold": 1e-3,
            "cooldown": 2,
        },
        0.2,
        240,
        "rising",
    ),
    _case(
        "plateau_max_abs",
        {
            "name": "reduce_on_plateau",
            "mode": "max",
            "factor": 0.2,
            "patience": 2,
            "threshold": 0.005,
            "threshold_mode": "abs",
            "min_lr": 0.01,
            "eps": 1e-4,
        },
        0.3,
        240,
        "rising",
    ),
    _case(
        "plateau_eps_blocks",
        {"name": "reduce_on_plateau", "factor": 0.9, "patience": 0, "min_lr": 0.0, "eps": 2e-3},
        0.05,
        240,
        "noisy",
    ),
    _case(
        "warmup_cosine",
        {
            "name": "warmup",
            "warmup_steps": 10,
            "start_factor": 0.1,
            "then": {"name": "cosine", "T_max": 190},
        },
        0.1,
        220,
    ),
    _case(
        "warmup_step",
        {
            "name": "warmup",
            "warmup_steps": 25,
            "then": {"name": "step", "step_size": 40, "gamma": 0.5},
        },
        0.3,
        250,
    ),
    _case("warmup_constant", {"name": "warmup", "warmup_steps": 7}, 0.02, 200),
    _case(
        "warmup_exponential",
        {
            "name": "warmup",
            "warmup_steps": 15,
            "start_factor": 0.5,
            "then": {"name": "exponential", "gamma": 0.99},
        },
        0.1,
        230,
    ),
    _case("constant_factor_default", {"name": "constant_factor"}, 0.1, 200),
    _case(
        "constant_factor_long",
        {"name": "constant_factor", "factor": 0.05, "total_iters": 80},
        0.3,
        210,
    ),
    _case(
        "sequential_three",
        {
            "name": "sequential",
            "schedulers": [
                {"name": "constant_factor", "factor": 0.1, "total_iters": 20},
                {"name": "exponential", "gamma": 0.97},
                {"name": "cosine", "T_max": 60, "eta_min": 1e-4},
            ],
            "milestones": [30, 110],
        },
        0.1,
        240,
    ),
    _case(
        "sequential_cycles",
        {
            "name": "sequential",
            "schedulers": [
                {"name": "linear", "start_factor": 0.01, "total_iters": 40},
                {"name": "cyclic", "max_lr": 0.5, "step_size_up": 15},
                {"name": "multistep", "milestones": [9, 30], "gamma": 0.5},
                {"name": "polynomial", "total_iters": 30, "power": 2.0},
            ],
            "milestones": [40, 100, 170],
        },
        0.2,
        230,
    ),
    _case(
        "sequential_one",
        {"name": "sequential", "schedulers": [{"name": "step", "step_size": 33}], "milestones": []},
        0.5,
        200,
    ),
    _case(
        "wsd_linear",
        {
            "name": "wsd",
            "warmup_steps": 20,
            "stable_steps": 120,
            "decay_steps": 60,
            "start_factor": 0.1,
        },
        0.1,
        230,
    ),
    _case(
        "wsd_cosine",
        {
            "name": "wsd",
            "warmup_steps": 11,
            "stable_steps": 77,
            "decay_steps": 112,
            "decay": "cosine",
            "start_factor": 0.3,
            "end_factor": 0.05,
        },
        0.4,
        201,
    ),
    _case(
        "wsd_sqrt",
        {
            "name": "wsd",
            "warmup_steps": 25,
            "stable_steps": 100,
            "decay_steps": 50,
            "decay": "sqrt",
            "start_factor": 0.02,
            "end_factor": 0.1,
        },
        0.05,
        210,
    ),
    _case(
        "warmup_sgdr",
        {
            "name": "warmup",
            "warmup_steps": 12,
            "start_factor": 0.25,
            "then": {"name": "cosine_warm_restarts", "T_0": 8, "T_mult": 2},
        },
        0.1,
        250,
    ),
]


def resolved(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with every default filled in by our spec models."""
    return TypeAdapter(ScheduleSpec).validate_python(spec).model_dump()


def torch_scheduler(spec: dict[str, Any], opt: torch.optim.Optimizer, base_lr: float) -> Any:
    """The PyTorch scheduler equivalent to a resolved spec, attached to ``opt``."""
    kw = {k: v for k, v in spec.items() if k != "name"}
    name = spec["name"]
    if name == "constant":
        return tls.LambdaLR(opt, lambda _: 1.0)
    if name == "step":
        return tls.StepLR(opt, **kw)
    if name == "multistep":
        return tls.MultiStepLR(opt, **kw)
    if name == "exponential":
        return tls.ExponentialLR(opt, **kw)
    if name == "linear":
        return tls.LinearLR(opt, **kw)
    if name == "polynomial":
        return tls.PolynomialLR(opt, **kw)
    if name == "cosine":
        return tls.CosineAnnealingLR(opt, **kw)
    if name == "cosine_warm_restarts":
        return tls.CosineAnnealingWarmRestarts(opt, **kw)
    if name == "cyclic":
        if kw["base_lr"] is None:
            kw["base_lr"] = base_lr
        return tls.CyclicLR(opt, cycle_momentum=False, **kw)
    if name == "one_cycle":
        if kw["max_lr"] is None:
            kw["max_lr"] = base_lr
        return tls.OneCycleLR(opt, cycle_momentum=False, **kw)
    if name == "reduce_on_plateau":
        return tls.ReduceLROnPlateau(opt, **kw)
    if name == "warmup":
        ramp = tls.LinearLR(
            opt, start_factor=kw["start_factor"], end_factor=1.0, total_iters=kw["warmup_steps"]
        )
        then = torch_scheduler(kw["then"], opt, base_lr)
        return tls.SequentialLR(opt, [ramp, then], milestones=[kw["warmup_steps"]])
    if name == "constant_factor":
        return tls.ConstantLR(opt, **kw)
    if name == "sequential":
        parts = [torch_scheduler(part, opt, base_lr) for part in kw["schedulers"]]
        return tls.SequentialLR(opt, parts, milestones=kw["milestones"])
    if name == "wsd":
        return torch_wsd(kw, opt, base_lr)
    raise ValueError(f"no PyTorch scheduler for {name!r}")


def torch_wsd(kw: dict[str, Any], opt: torch.optim.Optimizer, base_lr: float) -> Any:
    """``wsd`` as three PyTorch schedulers in sequence (warm-up and stable phases must be > 0)."""
    W, S, D, e = kw["warmup_steps"], kw["stable_steps"], kw["decay_steps"], kw["end_factor"]
    ramp = tls.LinearLR(opt, start_factor=kw["start_factor"], end_factor=1.0, total_iters=W)
    hold = tls.ConstantLR(opt, factor=1.0, total_iters=S)
    if kw["decay"] == "linear":
        decay: Any = tls.LinearLR(opt, start_factor=1.0, end_factor=e, total_iters=D)
    elif kw["decay"] == "cosine":
        decay = tls.CosineAnnealingLR(opt, T_max=D, eta_min=base_lr * e)
    else:
        decay = tls.LambdaLR(opt, lambda k: e + (1.0 - e) * (1.0 - math.sqrt(min(k, D) / D)))
    return tls.SequentialLR(opt, [ramp, hold, decay], milestones=[W, W + S])


def torch_lrs(
    spec: dict[str, Any], base_lr: float, steps: int, losses: np.ndarray | None = None
) -> np.ndarray:
    """The lr of each of ``steps`` optimizer steps under PyTorch's scheduler for ``spec``."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=base_lr)
    sched = torch_scheduler(spec, opt, base_lr)
    out = np.empty(steps, dtype=np.float64)
    for t in range(steps):
        out[t] = opt.param_groups[0]["lr"]
        opt.step()
        if losses is not None:
            sched.step(float(losses[t]))
        else:
            sched.step()
    return out


def case_losses(case: dict[str, Any]) -> np.ndarray | None:
    return None if case["losses"] is None else plateau_losses(case["losses"], case["steps"])


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for case in CASES:
        spec = resolved(case["spec"])
        losses = case_losses(case)
        arrays[f"lrs__{case['id']}"] = torch_lrs(spec, case["base_lr"], case["steps"], losses)
        if losses is not None:
            arrays[f"losses__{case['id']}"] = losses
        meta.append(
            {"id": case["id"], "spec": spec, "base_lr": case["base_lr"], "steps": case["steps"]}
        )
    arrays["cases"] = np.array(json.dumps(meta, sort_keys=True))
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {len(meta)} cases to {OUT}")


if __name__ == "__main__":
    main()
