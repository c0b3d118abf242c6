"""Batch normalisation: torch autograd reference values (committed and live), central finite
differences in both modes, the running-statistics sequence, and invariances."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.layers import batchnorm
from engine.layers.scratch import Scratch
from tests.numeric import central_diff

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "tests" / "data" / "layers_reference.npz"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_layers", ROOT / "tests/reference/gen_layers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_sequence(ref: dict[str, np.ndarray]) -> None:
    """Replay the reference's batch sequence and compare everything torch recorded."""
    R, F = ref["bn_gamma"].shape
    running_mean, running_var = np.zeros((R, F)), np.ones((R, F))
    k = 0
    while f"bn_x{k}" in ref:
        y, cache = batchnorm.forward(
            ref[f"bn_x{k}"],
            ref["bn_gamma"],
            ref["bn_beta"],
            running_mean,
            running_var,
            training=True,
        )
        dx, grads = batchnorm.backward(ref[f"bn_w{k}"], cache)
        np.testing.assert_allclose(y, ref[f"bn_y{k}"], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dx, ref[f"bn_dx{k}"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads["gamma"], ref[f"bn_dgamma{k}"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads["beta"], ref[f"bn_dbeta{k}"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(running_mean, ref[f"bn_running_mean{k}"], rtol=1e-13)
        np.testing.assert_allclose(running_var, ref[f"bn_running_var{k}"], rtol=1e-13)
        k += 1
    assert k == 4
    y, cache = batchnorm.forward(
        ref["bn_eval_x"],
        ref["bn_gamma"],
        ref["bn_beta"],
        running_mean,
        running_var,
        training=False,
    )
    dx, grads = batchnorm.backward(ref["bn_eval_w"], cache)
    np.testing.assert_allclose(y, ref["bn_eval_y"], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, ref["bn_eval_dx"], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["gamma"], ref["bn_eval_dgamma"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["beta"], ref["bn_eval_dbeta"], rtol=1e-12, atol=1e-12)


def test_matches_committed_torch_reference() -> None:
    with np.load(REFERENCE) as archive:
        check_sequence(dict(archive))


def test_matches_torch_live() -> None:
    pytest.importorskip("torch")
    gen = load_generator()
    data = gen.inputs()
    check_sequence({**data, **gen.reference(data)})


def test_running_statistics_by_hand() -> None:
    x = np.array([[[1.0, -2.0], [3.0, 0.0], [5.0, 4.0]]])  # R=1, B=3, F=2
    mean, var = np.zeros((1, 2)), np.ones((1, 2))
    batchnorm.forward(x, np.ones((1, 2)), np.zeros((1, 2)), mean, var, training=True)
    # batch means (3, 2/3); unbiased variances (4, 28/3)
    np.testing.assert_allclose(mean, [[0.3, 0.2 / 3]], rtol=1e-15)
    np.testing.assert_allclose(var, [[0.9 + 0.4, 0.9 + 2.8 / 3]], rtol=1e-15)


def test_inference_uses_and_keeps_running_statistics() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3))
    gamma, beta = rng.uniform(0.5, 2, (2, 3)), rng.normal(size=(2, 3))
    mean, var = rng.normal(size=(2, 3)), rng.uniform(0.5, 2, (2, 3))
    mean0, var0 = mean.copy(), var.copy()
    y, _ = batchnorm.forward(x, gamma, beta, mean, var, training=False)
    expected = gamma[:, None] * (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5) + beta[:, None]
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    assert np.array_equal(mean, mean0) and np.array_equal(var, var0)


def test_training_needs_two_examples() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        batchnorm.forward(
            np.ones((1, 1, 3)),
            np.ones((1, 3)),
            np.zeros((1, 3)),
            np.zeros((1, 3)),
            np.ones((1, 3)),
            training=True,
        )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_finite_differences(training: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    R, B, F = 2, 5, 3
    x = 1.5 + 2.0 * rng.normal(size=(R, B, F))
    w = rng.normal(size=(R, B, F))
    gamma, beta = rng.uniform(0.5, 2.0, (R, F)), rng.normal(size=(R, F))
    mean, var = rng.normal(size=(R, F)), rng.uniform(0.5, 2.0, (R, F))

    def loss() -> float:
        y, _ = batchnorm.forward(x, gamma, beta, mean.copy(), var.copy(), training=training)
        return float((w * y).sum())

    _, cache = batchnorm.forward(x, gamma, beta, mean.copy(), var.copy(), training=training)
    dx, grads = batchnorm.backward(w, cache)
    np.testing.assert_allclose(dx, central_diff(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grads["gamma"], central_diff(loss, gamma), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grads["beta"], central_diff(loss, beta), rtol=1e-6, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    x=arrays(np.float64, (2, 4, 3), elements=st.floats(-100, 100)),
    shift=arrays(np.float64, (1, 1, 3), elements=st.floats(-100, 100)),
)
def test_training_output_ignores_a_per_feature_shift(x: np.ndarray, shift: np.ndarray) -> None:
    """Batch statistics remove any constant added to a feature; the input is never mutated."""
    x_before = x.copy()
    gamma, beta = np.full((2, 3), 1.5), np.full((2, 3), -0.5)
    y1, _ = batchnorm.forward(x, gamma, beta, np.zeros((2, 3)), np.ones((2, 3)), training=True)
    y2, _ = batchnorm.forward(
        x + shift, gamma, beta, np.zeros((2, 3)), np.ones((2, 3)), training=True
    )
    assert np.array_equal(x, x_before)
    # 1.5·x̂ is bounded by 1.5·√(B−1); the shift changes it only by rounding relative to |x|+|shift|
    tol = 1e-14 * (1 + np.abs(x).max() + np.abs(shift).max()) / np.sqrt(1e-5)
    np.testing.assert_allclose(y1, y2, rtol=0, atol=tol)


@pytest.mark.parametrize("training", [True, False])
def test_scratch_buffers_give_the_same_numbers_and_are_reused(training: bool) -> None:
    rng = np.random.default_rng(5)
    x, dy = rng.normal(size=(3, 6, 4)), rng.normal(size=(3, 6, 4))
    gamma, beta = rng.uniform(0.5, 2, (3, 4)), rng.normal(size=(3, 4))
    stats = (rng.normal(size=(3, 4)), rng.uniform(0.5, 2, (3, 4)))
    fresh_stats = (stats[0].copy(), stats[1].copy())
    y0, cache0 = batchnorm.forward(x, gamma, beta, *fresh_stats, training=training)
    dx0, grads0 = batchnorm.backward(dy, cache0)
    scratch = Scratch()
    y1, cache1 = batchnorm.forward(x, gamma, beta, *stats, training=training, scratch=scratch)
    dx1, grads1 = batchnorm.backward(dy, cache1)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)
    np.testing.assert_array_equal(grads1["gamma"], grads0["gamma"])
    np.testing.assert_array_equal(stats[0], fresh_stats[0])
    y2, cache2 = batchnorm.forward(2 * x, gamma, beta, *stats, training=training, scratch=scratch)
    assert y2 is y1 and batchnorm.backward(dy, cache2)[0] is dx1
