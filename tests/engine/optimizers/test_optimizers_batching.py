"""Batched runs equal runs stepped alone: R specs with per-run hyper-parameters (``(R, 1)``
columns) and per-run learning rates, stepped together on one ``(R, N)`` buffer, give each run the
trajectory it has on its own — and ``batch_key`` keeps apart the runs that cannot share a batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.optimizers import (
    OPTIMIZERS,
    batch_key,
    build_optimizer,
    build_optimizer_batch,
)
from engine.optimizers.kernel import BLOCK_BYTES
from tests.engine.optimizers.examples import example, layout_for
from tests.registered import plugins

# Each batch: specs that share a batch key but differ in every float hyper-parameter.
BATCHES: dict[str, list[dict[str, Any]]] = {
    "sgd": [
        {"name": "sgd", "lr": 1e-3, "momentum": 0.0, "dampening": 0.3, "weight_decay": 0.1},
        {"name": "sgd", "lr": 2e-3, "momentum": 0.9},
        {"name": "sgd", "lr": 5e-4, "momentum": 0.5, "dampening": 0.2, "weight_decay": 0.0},
        {"name": "sgd", "lr": 1e-3, "momentum": 0.8, "dampening": 0.5, "weight_decay": 0.3},
    ],
    "sgd_nesterov": [
        {"name": "sgd", "lr": 1e-3, "momentum": 0.9, "nesterov": True},
        {"name": "sgd", "lr": 2e-3, "momentum": 0.5, "nesterov": True, "weight_decay": 0.2},
    ],
    "delta_rule": [
        {"name": "delta_rule", "lr": 1e-3, "momentum": 0.9},
        {"name": "delta_rule", "lr": 2e-3, "momentum": 0.0},
        {"name": "delta_rule", "lr": 5e-4, "momentum": 0.5},
    ],
    "adagrad_seed": [
        {"name": "adagrad_seed", "lr": 0.1},
        {"name": "adagrad_seed", "lr": 0.05, "initial_accumulator_value": 0.3},
        {"name": "adagrad_seed", "lr": 0.2, "weight_decay": 0.1, "eps": 1e-3},
    ],
    "adagrad": [
        {"name": "adagrad", "lr": 0.1},
        {"name": "adagrad", "lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.3},
        {"name": "adagrad", "lr": 0.2, "weight_decay": 0.1, "eps": 1e-3},
    ],
    "rmsprop": [
        {"name": "rmsprop", "lr": 0.01, "momentum": 0.0},
        {"name": "rmsprop", "lr": 0.005, "alpha": 0.9, "momentum": 0.8, "weight_decay": 0.1},
        {"name": "rmsprop", "lr": 0.002, "alpha": 0.5, "momentum": 0.3, "eps": 1e-4},
    ],
    "rmsprop_centered": [
        {"name": "rmsprop", "lr": 0.01, "centered": True},
        {"name": "rmsprop", "lr": 0.003, "alpha": 0.8, "momentum": 0.6, "centered": True},
    ],
    "rmsprop_window": [
        {"name": "rmsprop_window", "lr": 0.01, "rho": 0.8, "window": 3},
        {"name": "rmsprop_window", "lr": 0.02, "rho": 0.0, "window": 3, "eps": 1e-4},
        {"name": "rmsprop_window", "lr": 0.005, "rho": 0.95, "window": 3},
    ],
    "adadelta": [
        {"name": "adadelta", "lr": 1.0},
        {"name": "adadelta", "lr": 0.5, "rho": 0.5, "eps": 1e-4, "weight_decay": 0.1},
    ],
    "adadelta_window": [
        {"name": "adadelta_window", "lr": 1.0, "rho1": 0.9, "rho2": 0.9, "window": 4},
        {"name": "adadelta_window", "lr": 0.5, "rho1": 0.5, "rho2": 0.0, "window": 4},
        {"name": "adadelta_window", "lr": 2.0, "rho1": 0.0, "rho2": 0.7, "window": 4, "eps": 1e-3},
    ],
    "adam": [
        {"name": "adam", "lr": 0.01},
        {"name": "adam", "lr": 0.02, "betas": [0.5, 0.9], "weight_decay": 0.1},
        {"name": "adam", "lr": 0.005, "betas": [0.0, 0.99], "eps": 1e-4},
    ],
    "adam_amsgrad": [
        {"name": "adam", "lr": 0.01, "amsgrad": True},
        {"name": "adam", "lr": 0.02, "betas": [0.8, 0.9], "amsgrad": True},
    ],
    "adamw": [
        {"name": "adamw", "lr": 0.01},
        {"name": "adamw", "lr": 0.02, "betas": [0.8, 0.95], "weight_decay": 0.0},
        {"name": "adamw", "lr": 0.005, "weight_decay": 0.3},
    ],
    "adamax": [
        {"name": "adamax", "lr": 0.02},
        {"name": "adamax", "lr": 0.01, "betas": [0.7, 0.9], "weight_decay": 0.1, "eps": 1e-3},
    ],
    "nadam": [
        {"name": "nadam", "lr": 0.02},
        {"name": "nadam", "lr": 0.01, "betas": [0.8, 0.99], "momentum_decay": 0.02},
        {"name": "nadam", "lr": 0.03, "weight_decay": 0.1, "eps": 1e-5},
    ],
    "nadam_decoupled": [
        {"name": "nadam", "lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"name": "nadam", "lr": 0.01, "weight_decay": 0.3, "decoupled_weight_decay": True},
    ],
    # beta2 = 0.6 never rectifies (ρ∞ = 4): the batch mixes SGD-phase and rectified rows.
    "radam": [
        {"name": "radam", "lr": 0.002},
        {"name": "radam", "lr": 0.003, "betas": [0.9, 0.9], "weight_decay": 0.1},
        {"name": "radam", "lr": 0.001, "betas": [0.5, 0.6]},
        {"name": "radam", "lr": 0.002, "betas": [0.8, 0.99], "eps": 1e-4},
    ],
    "radam_decoupled": [
        {"name": "radam", "lr": 0.002, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"name": "radam", "lr": 0.001, "weight_decay": 0.2, "decoupled_weight_decay": True},
    ],
    "rprop": [
        {"name": "rprop", "lr": 0.01},
        {"name": "rprop", "lr": 0.02, "etas": [0.4, 1.1], "step_sizes": [1e-5, 1.0]},
    ],
    "asgd": [
        {"name": "asgd", "lr": 0.002},
        {"name": "asgd", "lr": 0.001, "lambd": 0.01, "alpha": 0.5, "t0": 20, "weight_decay": 0.1},
    ],
    "adafactor": [
        {"name": "adafactor", "lr": 0.01, "eps": [1e-30, 1e-3]},
        {
            "name": "adafactor",
            "lr": 0.02,
            "beta2_decay": -0.6,
            "eps": [1e-20, 1e-2],
            "d": 2.0,
            "weight_decay": 0.1,
        },
    ],
    "muon": [
        {"name": "muon", "lr": 0.01},
        {"name": "muon", "lr": 0.02, "momentum": 0.8, "weight_decay": 0.0},
    ],
    "lbfgs": [
        {"name": "lbfgs", "lr": 0.1, "max_iter": 1},
        {"name": "lbfgs", "lr": 0.05, "max_iter": 1, "tolerance_grad": 1e-5},
    ],
    "schedule_free_adamw": [
        {"name": "schedule_free_adamw", "lr": 0.01},
        {
            "name": "schedule_free_adamw",
            "lr": 0.005,
            "betas": [0.8, 0.99],
            "weight_decay": 0.1,
            "r": 0.5,
            "weight_lr_power": 1.0,
        },
    ],
    "schedule_free_sgd": [
        {"name": "schedule_free_sgd", "lr": 0.002},
        {"name": "schedule_free_sgd", "lr": 0.001, "momentum": 0.5, "weight_decay": 0.1},
    ],
    "prodigy": [
        {"name": "prodigy", "growth_rate": 2.0},
        {
            "name": "prodigy",
            "lr": 0.5,
            "betas": [0.8, 0.99],
            "weight_decay": 0.1,
            "d0": 1e-5,
            "d_coef": 0.5,
            "growth_rate": 1.1,
        },
    ],
    "lamb": [
        {"name": "lamb", "lr": 0.01},
        {"name": "lamb", "lr": 0.02, "betas": [0.8, 0.99], "eps": 1e-4, "weight_decay": 0.1},
    ],
    "lars": [
        {"name": "lars", "lr": 0.002},
        {
            "name": "lars",
            "lr": 0.001,
            "momentum": 0.5,
            "dampening": 0.2,
            "weight_decay": 0.1,
            "trust_coefficient": 0.01,
        },
    ],
    "partition": [example("partition"), example("partition")],
    "chain": [example("chain"), example("chain")],
    "lion": [
        {"name": "lion", "lr": 1e-3},
        {"name": "lion", "lr": 3e-3, "betas": [0.5, 0.9], "weight_decay": 0.1},
        {"name": "lion", "lr": 2e-3, "betas": [0.95, 0.999]},
    ],
}
STEPS = 60


def gradient(x: np.ndarray) -> np.ndarray:
    """A coupled nonlinear gradient field, row by row (rows never interact)."""
    h = np.geomspace(1.0, 50.0, x.shape[1], dtype=x.dtype)
    d = x - np.linspace(-1.0, 1.0, x.shape[1], dtype=x.dtype)
    return h * d + 0.3 * d * d * d + np.roll(d, 1, axis=1) - 0.5 * np.roll(d, -1, axis=1)


def start(rows: int, n: int, dtype: type) -> np.ndarray:
    rng = np.random.default_rng(rows * 1000 + n)
    return rng.uniform(-2.0, 2.0, size=(rows, n)).astype(dtype)


def lr_table(specs: list[dict[str, Any]], steps: int) -> np.ndarray:
    """Per-run learning rates: each spec's lr times its own oscillating factor."""
    base = np.array([build_optimizer(s).lr for s in specs], dtype=np.float64)[:, None]
    t = np.arange(steps)[None, :]
    phase = np.arange(len(specs))[:, None]
    return base * (1.0 + 0.5 * np.sin(0.3 * t + phase))


def trajectory(opt: Any, x: np.ndarray, lrs: np.ndarray) -> np.ndarray:
    x = x.copy()
    state = opt.init(x)
    lr = np.empty((x.shape[0], 1), dtype=x.dtype)
    out = []
    for t in range(lrs.shape[1]):
        lr[:, 0] = lrs[:, t]
        opt.update_(gradient(x), state, x, lr)
        out.append(x.copy())
    return np.stack(out)


# An installed plugin's optimizer: two runs at its defaults, at two learning rates.
BATCHES |= {
    f"plugin:{name}": [{"name": name}, {"name": name, "lr": 2 * build_optimizer({"name": name}).lr}]
    for name in plugins(OPTIMIZERS)
}


def test_every_optimizer_has_a_batch() -> None:
    assert {specs[0]["name"] for specs in BATCHES.values()} == set(OPTIMIZERS.names())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_batched_runs_equal_runs_alone(batch: str, dtype: type) -> None:
    specs = BATCHES[batch]
    assert len({batch_key(s) for s in specs}) == 1
    x0 = start(len(specs), 7, dtype)
    lrs = lr_table(specs, STEPS)
    layout = layout_for(specs[0], 7)
    together = trajectory(build_optimizer_batch(specs, layout=layout), x0, lrs)
    assert together.dtype == dtype and np.isfinite(together).all()
    for r, spec in enumerate(specs):
        alone = trajectory(build_optimizer(spec, layout=layout), x0[r : r + 1], lrs[r : r + 1])
        np.testing.assert_allclose(
            together[:, r], alone[:, 0], rtol=1e-12, atol=0, err_msg=str(spec)
        )
        assert np.ptp(alone[:, 0], axis=0).max() > 1e-3  # every run moves


@pytest.mark.parametrize("batch", ["adam", "rmsprop_window", "sgd"])
def test_blocked_steps_equal_one_block(batch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Column blocks (large N) change nothing: a wide batch equals the same batch in one block."""
    specs = BATCHES[batch]
    n = 2 * BLOCK_BYTES // (8 * len(specs)) + 5  # three float64 blocks, the last one partial
    x0 = start(len(specs), n, np.float64)
    lrs = lr_table(specs, 6)
    blocked = trajectory(build_optimizer_batch(specs), x0, lrs)
    monkeypatch.setattr("engine.optimizers.kernel.BLOCK_BYTES", 8 * len(specs) * n)
    whole = trajectory(build_optimizer_batch(specs), x0, lrs)
    np.testing.assert_array_equal(blocked, whole)


def test_batch_key_separates_what_cannot_vary_per_run() -> None:
    adam = {"name": "adam", "lr": 0.1}
    assert batch_key(adam) == batch_key({**adam, "lr": 0.2, "betas": [0.5, 0.6], "eps": 1e-3})
    assert batch_key(adam) != batch_key({**adam, "amsgrad": True})
    assert batch_key(adam) != batch_key({"name": "adamw", "lr": 0.1})
    window = {"name": "rmsprop_window", "window": 3}
    assert batch_key(window) != batch_key({**window, "window": 4})
    assert batch_key(window) == batch_key({**window, "rho": 0.1})
    with pytest.raises(ValueError, match="cannot vary per run"):
        build_optimizer_batch([adam, {**adam, "amsgrad": True}])
    with pytest.raises(ValueError, match="at least one"):
        build_optimizer_batch([])


def test_per_run_columns_are_built_only_for_fields_that_differ() -> None:
    opt = build_optimizer_batch(
        [{"name": "adam", "lr": 0.1, "eps": 1e-3}, {"name": "adam", "lr": 0.2, "eps": 1e-3}]
    )
    assert isinstance(opt.lr, np.ndarray) and opt.lr.shape == (2, 1)
    np.testing.assert_array_equal(opt.lr[:, 0], [0.1, 0.2])
    assert build_optimizer_batch([{"name": "adam", "lr": 0.1}] * 3).lr == 0.1


def test_columns_must_match_the_number_of_runs() -> None:
    opt = build_optimizer_batch([{"name": "sgd", "lr": 0.1}, {"name": "sgd", "lr": 0.2}])
    with pytest.raises(ValueError, match="for 3 runs"):
        opt.init(np.zeros((3, 4)))
