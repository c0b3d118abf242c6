"""Properties every optimizer keeps: the pure ``update`` never mutates its inputs and equals the
in-place ``update_``; ``update_`` never writes to the gradients; the run loop's ``fast_update_``
allocates nothing after ``init``; a zero gradient gives a zero update where the rule says so;
float32 stays float32."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.optimizers import OPTIMIZERS, build_optimizer, build_optimizer_batch
from engine.optimizers.kernel import BLOCK_BYTES
from tests.engine.optimizers.examples import GATHERS, NUMPY_ONLY, example, layout_for

# Every kernel path: each optimizer at its defaults plus its flags and optional passes switched on.
VARIANTS: list[dict[str, Any]] = [example(n) for n in OPTIMIZERS.names()] + [
    {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    {"name": "sgd", "momentum": 0.9, "dampening": 0.5},
    {"name": "adagrad", "lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.1},
    {"name": "adagrad_seed", "weight_decay": 0.1, "initial_accumulator_value": 0.5},
    {"name": "rmsprop", "momentum": 0.9, "centered": True, "weight_decay": 0.1},
    {"name": "rmsprop", "weight_decay": 0.1},  # the plain kernel with its one flag
    {"name": "rmsprop", "centered": True},
    {"name": "rmsprop_window", "window": 1},
    {"name": "adadelta", "weight_decay": 0.1},
    {"name": "adadelta_window", "window": 1},
    {"name": "adam", "amsgrad": True, "weight_decay": 0.1},
    {"name": "adamw", "amsgrad": True},
    {"name": "adamax", "weight_decay": 0.1},
    {"name": "nadam", "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"name": "radam", "weight_decay": 0.1, "betas": [0.9, 0.9]},
    {"name": "radam", "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"name": "lion", "weight_decay": 0.1},
    {"name": "lamb", "weight_decay": 0.1, "weight_decouple": False},
    {"name": "lars", "nesterov": True, "weight_decay": 0.1},
    {"name": "prodigy", "weight_decay": 0.1, "decouple": False, "use_bias_correction": True},
    {"name": "adafactor", "weight_decay": 0.1},
    {"name": "schedule_free_adamw", "weight_decay": 0.1, "warmup_steps": 2},
]
IDS = ["-".join(f"{k}={v}" for k, v in v.items() if k != "name") or v["name"] for v in VARIANTS]
IDS = [f"{v['name']}:{i}" for v, i in zip(VARIANTS, IDS, strict=True)]


def proportional(variant: dict[str, Any]) -> bool:
    """Whether the rule's step is proportional to the current gradient (zero gradient, zero
    step, whatever the history); rules with momentum keep moving on their velocity."""
    if variant.get("momentum", 0.0) != 0.0:
        return False
    return variant["name"] in {
        "adafactor",
        "asgd",
        "lbfgs",
        "rprop",
        "sgd",
        "adagrad",
        "adagrad_seed",
        "adadelta",
        "rmsprop",
        "rmsprop_window",
        "adadelta_window",
    }


def read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


@settings(max_examples=60, deadline=None)
@given(
    variant=st.sampled_from(VARIANTS),
    rows=st.integers(1, 3),
    cols=st.integers(1, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
    column_lr=st.booleans(),
)
def test_pure_update_leaves_its_inputs_and_matches_the_in_place_one(
    variant: dict[str, Any], rows: int, cols: int, dtype: type, seed: int, column_lr: bool
) -> None:
    rng = np.random.default_rng(seed)
    opt = build_optimizer(variant, layout=layout_for(variant, cols))
    params = rng.standard_normal((rows, cols)).astype(dtype)
    state = opt.init(params)
    twin_params, twin_state = params.copy(), {k: v.copy() for k, v in state.items()}
    for _ in range(4):
        grads = read_only(rng.standard_normal((rows, cols)).astype(dtype))
        lr: Any = rng.uniform(1e-3, 1e-1, (rows, 1)) if column_lr else float(rng.uniform(1e-3, 0.1))
        before = (params.copy(), {k: v.copy() for k, v in state.items()}, np.copy(lr))
        new_params, new_state = opt.update(grads, state, params, lr)
        np.testing.assert_array_equal(params, before[0])
        for k, v in state.items():
            np.testing.assert_array_equal(v, before[1][k])
        np.testing.assert_array_equal(lr, before[2])
        assert new_params is not params and all(new_state[k] is not state[k] for k in state)
        # update_ on a copy (read-only gradients: any write raises) gives the same numbers.
        opt.update_(grads, twin_state, twin_params, lr)
        np.testing.assert_array_equal(twin_params, new_params)
        for k in ("m", "v", "sum", "momentum_buffer", "delta", "mu_product"):
            if k in state:
                np.testing.assert_array_equal(twin_state[k], new_state[k])
        assert new_params.dtype == dtype
        params, state = new_params, new_state


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_zero_gradient_gives_zero_update_where_the_rule_says_so(variant: dict[str, Any]) -> None:
    if "weight_decay" in OPTIMIZERS.get(variant["name"]).spec.model_fields:
        variant = {**variant, "weight_decay": 0.0}  # decay moves the weights by itself
    if variant["name"] == "asgd":
        variant = {**variant, "lambd": 0.0}  # so does ASGD's λ·η shrinkage
    opt = build_optimizer(variant, layout=layout_for(variant, 5))
    rng = np.random.default_rng(1)
    params = rng.standard_normal((2, 5))
    zero = np.zeros_like(params)
    fresh = opt.init(params)
    start = params.copy()
    for _ in range(3):  # no gradient yet: nothing moves
        opt.update_(zero, fresh, params, 0.05)
    np.testing.assert_array_equal(params, start)
    state = opt.init(params)
    for _ in range(5):
        opt.update_(rng.standard_normal(params.shape), state, params, 0.05)
    moved = params.copy()
    opt.update_(zero, state, params, 0.05)
    if proportional(variant):
        np.testing.assert_array_equal(params, moved)
    else:
        assert np.all(params != moved)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_float32_state_and_steps_stay_float32(variant: dict[str, Any]) -> None:
    opt = build_optimizer(variant, layout=layout_for(variant, 6))
    params32 = np.random.default_rng(2).standard_normal((2, 6)).astype(np.float32)
    params64 = params32.astype(np.float64)
    s32, s64 = opt.init(params32), opt.init(params64)
    lr32 = np.full((2, 1), 0.01, dtype=np.float32)  # the run loop's lr column is in the run dtype
    for t in range(20):
        g = np.sin(1.3 * np.arange(12.0) + t + 0.5).reshape(2, 6) - 0.37 * params64
        opt.update_(g.astype(np.float32), s32, params32, lr32)
        opt.update_(g, s64, params64, float(lr32[0, 0]))
    assert params32.dtype == np.float32
    for k, v in s32.items():
        if v.ndim == params32.ndim and v.shape[-1] == params32.shape[-1]:
            assert v.dtype == np.float32, k
    np.testing.assert_allclose(params32, params64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_fast_update_allocates_nothing_after_init(variant: dict[str, Any]) -> None:
    """tracemalloc sees NumPy's array buffers: stepping a batch of two wide runs with per-run
    hyper-parameters and lr column must not raise the traced peak by anything near a row of
    parameters, however many steps."""
    if variant["name"] in NUMPY_ONLY | GATHERS:
        pytest.skip(
            "a NumPy-expression or gathering optimizer (tests/engine/optimizers/examples.py)"
        )
    rows, cols = 2, BLOCK_BYTES // 8
    # A chain's rate is its scale_by_learning_rate's: the runs differ through the lr column.
    second = (
        variant
        if variant["name"] == "chain"
        else {**variant, "lr": 2 * build_optimizer(variant).lr}
    )
    specs = [variant, second]
    opt = build_optimizer_batch(specs)
    rng = np.random.default_rng(3)
    params = rng.standard_normal((rows, cols))
    grads = rng.standard_normal((rows, cols))
    lr = np.array([[1e-3], [2e-3]])
    state = opt.init(params)
    opt.fast_update_(grads, state, params, lr)
    # Deep tracebacks: what stays allocated is counted only where this test's frame is on the
    # allocating stack (a thread left by another test, a server's or a pool's, allocates too).
    tracemalloc.start(64)
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(25):
            opt.fast_update_(grads, state, params, lr)
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        ours = tracemalloc.Filter(True, __file__, all_frames=True)
        kept = tracemalloc.take_snapshot().filter_traces([ours])
    finally:
        tracemalloc.stop()
    assert peak - base < 16 * 1024 < BLOCK_BYTES // 16
    # What stays is below 16 KiB, which 25 updates keeping 1 KiB each would pass: NumPy holds
    # small blocks in bounded caches of its own that fill over thousands of calls (3.5 KiB for
    # np.broadcast_arrays after 10^4 calls, no more after 10^5) and tracemalloc counts as held.
    assert sum(stat.size for stat in kept.statistics("filename")) < 16 * 1024
