"""PyTorch reference trajectories for the optimizers, written to ``tests/data/optimizers_torch.npz``
(``.venv/bin/python tests/reference/gen_optimizers.py``; needs torch).

The main problem is a small coupled, ill-conditioned function of six variables with a quartic term,

    f(x) = Σ_i [½·h_i·d_i² + ¼·q·d_i⁴] + ½·c·Σ_i (x_i - x_(i+1))²,   d = x - a,

whose gradient :func:`gradient` computes with elementwise operations only (the same expression
for NumPy arrays and torch tensors, so both libraries see bitwise-equal gradients at equal
points); one case steps 2-D Rosenbrock from (-1.5, 2) instead (:func:`rosenbrock_gradient`).
Each case names one of our optimizer specs (whose field names are PyTorch's), a base
learning rate and whether the rate varies from step to step (:func:`lr_sequence`, set as the
param group's ``lr`` before every ``step()``). :func:`torch_trajectory` runs the single-tensor
``torch.optim`` implementation (``foreach=False``) with torch's default dtype set to the
parameters' dtype (so step counters and NAdam's ``mu_product`` are float64 in the float64 runs).

This module imports torch only inside :func:`torch_trajectory`: the tests import the cases and
the problem from it without torch. The npz holds ``cases`` (JSON) and, per case id,
``traj64__<id>`` (float64 parameters after 0..STEPS updates) and ``final32__<id>`` (the float32
run's final parameters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "data" / "optimizers_torch.npz"
STEPS = 200

H = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
A = (1.0, -0.5, 0.25, 0.8, -1.2, 0.6)
Q = 0.5
C = 2.0
X0 = (-1.0, 1.5, 2.0, -0.5, 0.3, -2.0)
ROSENBROCK_X0 = (-1.5, 2.0)

TORCH_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
}


def _case(
    case_id: str, spec: dict[str, Any], *, varying: bool = False, problem: str = "coupled"
) -> dict[str, Any]:
    return {"id": case_id, "spec": spec, "varying": varying, "problem": problem}


CASES: list[dict[str, Any]] = [
    _case("sgd_plain", {"name": "sgd", "lr": 0.004}),
    _case("sgd_momentum", {"name": "sgd", "lr": 0.004, "momentum": 0.9}, varying=True),
    _case("sgd_dampening", {"name": "sgd", "lr": 0.004, "momentum": 0.8, "dampening": 0.3}),
    _case(
        "sgd_nesterov",
        {"name": "sgd", "lr": 0.002, "momentum": 0.9, "nesterov": True},
        varying=True,
    ),
    _case("sgd_weight_decay", {"name": "sgd", "lr": 0.004, "momentum": 0.5, "weight_decay": 0.1}),
    _case("adagrad_default", {"name": "adagrad", "lr": 0.1}),
    _case("adagrad_lr_decay", {"name": "adagrad", "lr": 0.2, "lr_decay": 0.01}),
    _case(
        "adagrad_accumulator_weight_decay",
        {"name": "adagrad", "lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.05},
        varying=True,
    ),
    _case("adagrad_eps", {"name": "adagrad", "lr": 0.1, "eps": 1e-3}),
    _case("rmsprop_default", {"name": "rmsprop", "lr": 0.01}),
    _case("rmsprop_momentum", {"name": "rmsprop", "lr": 0.005, "momentum": 0.9}, varying=True),
    _case("rmsprop_centered", {"name": "rmsprop", "lr": 0.01, "centered": True}),
    _case(
        "rmsprop_centered_momentum_weight_decay",
        {
            "name": "rmsprop",
            "lr": 0.005,
            "alpha": 0.9,
            "eps": 1e-6,
            "momentum": 0.5,
            "centered": True,
            "weight_decay": 0.05,
        },
        varying=True,
    ),
    _case("adadelta_default", {"name": "adadelta"}),
    _case(
        "adadelta_rho_weight_decay",
        {"name": "adadelta", "rho": 0.95, "eps": 1e-4, "weight_decay": 0.1},
    ),
    _case("adadelta_varying", {"name": "adadelta", "lr": 0.5}, varying=True),
    _case("adam_default", {"name": "adam", "lr": 0.01}),
    _case("adam_amsgrad", {"name": "adam", "lr": 0.02, "amsgrad": True}, varying=True),
    _case(
        "adam_betas_weight_decay",
        {"name": "adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1},
    ),
    _case("adam_varying", {"name": "adam", "lr": 0.05}, varying=True),
    _case("adamw_default", {"name": "adamw", "lr": 0.01}),
    _case(
        "adamw_amsgrad",
        {"name": "adamw", "lr": 0.02, "weight_decay": 0.1, "amsgrad": True},
        varying=True,
    ),
    _case("adamax_default", {"name": "adamax", "lr": 0.02}),
    _case(
        "adamax_betas_weight_decay",
        {"name": "adamax", "lr": 0.05, "betas": [0.85, 0.99], "weight_decay": 0.05},
        varying=True,
    ),
    _case("nadam_default", {"name": "nadam", "lr": 0.02}),
    _case(
        "nadam_weight_decay",
        {"name": "nadam", "lr": 0.02, "weight_decay": 0.1, "momentum_decay": 0.01},
    ),
    _case(
        "nadam_decoupled",
        {"name": "nadam", "lr": 0.03, "weight_decay": 0.1, "decoupled_weight_decay": True},
        varying=True,
    ),
    _case("radam_default", {"name": "radam", "lr": 0.003}),
    _case(
        "radam_betas_weight_decay",
        {"name": "radam", "lr": 0.003, "betas": [0.9, 0.99], "weight_decay": 0.05},
    ),
    _case(
        "radam_decoupled",
        {"name": "radam", "lr": 0.002, "weight_decay": 0.1, "decoupled_weight_decay": True},
        varying=True,
    ),
    # Ill-conditioned and sensitive: the pre-scaled moments of an earlier kernel drifted from
    # torch here from step ~110 (2e-6 off by step 127).
    _case(
        "rmsprop_centered_momentum_rosenbrock",
        {"name": "rmsprop", "lr": 1e-3, "momentum": 0.5, "centered": True},
        problem="rosenbrock",
    ),
]


def lr_sequence(case: dict[str, Any], steps: int = STEPS) -> np.ndarray:
    """The lr of each update: the spec's ``lr`` (1.0 if unset), times an oscillating, stepwise
    decaying factor when the case varies it."""
    base = float(case["spec"].get("lr", 1.0))
    t = np.arange(steps, dtype=np.float64)
    if not case["varying"]:
        return np.full(steps, base)
    return base * (1.0 + 0.5 * np.sin(0.37 * t)) * 0.9 ** (t // 25)


def gradient(
    x: Any, roll: Callable[[Any, int], Any], const: Callable[[tuple[float, ...]], Any]
) -> Any:
    """``∇f(x)`` for an array of shape ``(..., 6)``; ``roll(x, k)`` rolls the last axis and
    ``const(values)`` makes an array of ``x``'s kind and dtype."""
    h, a = const(H), const(A)
    forward = const((1.0, 1.0, 1.0, 1.0, 1.0, 0.0))
    backward = const((0.0, 1.0, 1.0, 1.0, 1.0, 1.0))
    d = x - a
    coupling = (x - roll(x, -1)) * forward + (x - roll(x, 1)) * backward
    return h * d + Q * (d * d * d) + C * coupling


def rosenbrock_gradient(x: Any, stack: Callable[[list[Any]], Any]) -> Any:
    """``∇f`` of 2-D Rosenbrock ``100·(y - x²)² + (1 - x)²`` for an array of shape ``(..., 2)``,
    with the same elementwise operations for both libraries (``stack`` joins on the last axis)."""
    a, b = x[..., 0], x[..., 1]
    t = b - a * a
    return stack([-400.0 * a * t - 2.0 * (1.0 - a), 200.0 * t])


def start(case: dict[str, Any]) -> tuple[float, ...]:
    """The start point of ``case``'s problem."""
    return ROSENBROCK_X0 if case["problem"] == "rosenbrock" else X0


def numpy_gradient(case: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The gradient of ``case``'s problem for NumPy arrays."""
    if case["problem"] == "rosenbrock":
        return rosenbrock_gradient(x, lambda parts: np.stack(parts, axis=-1))
    return gradient(
        x, lambda v, k: np.roll(v, k, axis=-1), lambda vals: np.asarray(vals, dtype=x.dtype)
    )


def torch_trajectory(case: dict[str, Any], dtype: str, steps: int = STEPS) -> np.ndarray:
    """Parameters after 0..steps updates of ``torch.optim``'s optimizer for ``case``."""
    import torch

    tdtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(tdtype)
    try:
        spec = dict(case["spec"])
        cls = getattr(torch.optim, TORCH_CLASSES[spec.pop("name")])
        if "betas" in spec:
            spec["betas"] = tuple(spec["betas"])
        x = torch.tensor(start(case), dtype=tdtype, requires_grad=True)
        opt = cls([x], foreach=False, **spec)
        out = [x.detach().numpy().copy()]
        for lr in lr_sequence(case, steps):
            opt.param_groups[0]["lr"] = float(lr)
            with torch.no_grad():
                if case["problem"] == "rosenbrock":
                    x.grad = rosenbrock_gradient(x, lambda parts: torch.stack(parts, dim=-1))
                else:
                    x.grad = gradient(
                        x,
                        lambda v, k: torch.roll(v, k, dims=-1),
                        lambda vals: torch.tensor(vals, dtype=tdtype),
                    )
            opt.step()
            out.append(x.detach().numpy().copy())
        return np.stack(out)
    finally:
        torch.set_default_dtype(previous)


def main() -> None:
    arrays: dict[str, np.ndarray] = {"cases": np.array(json.dumps(CASES))}
    for case in CASES:
        arrays[f"traj64__{case['id']}"] = torch_trajectory(case, "float64")
        arrays[f"final32__{case['id']}"] = torch_trajectory(case, "float32")[-1]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()
