"""Layer normalisation: torch autograd reference values (committed and live), central finite
differences with and without affine parameters, and invariances."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.layers import layernorm
from engine.layers.scratch import Scratch
from tests.numeric import central_diff

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "tests" / "data" / "layers_reference.npz"


def check_reference(ref: dict[str, np.ndarray]) -> None:
    y, cache = layernorm.forward(ref["ln_x"], ref["ln_gamma"], ref["ln_beta"])
    dx, grads = layernorm.backward(ref["ln_w"], cache)
    np.testing.assert_allclose(y, ref["ln_y"], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, ref["ln_dx"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["gamma"], ref["ln_dgamma"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["beta"], ref["ln_dbeta"], rtol=1e-12, atol=1e-12)
    y, cache = layernorm.forward(ref["ln_x"])
    dx, grads = layernorm.backward(ref["ln_w"], cache)
    np.testing.assert_allclose(y, ref["lnp_y"], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, ref["lnp_dx"], rtol=1e-10, atol=1e-12)
    assert grads == {}


def test_matches_committed_torch_reference() -> None:
    with np.load(REFERENCE) as archive:
        check_reference(dict(archive))


def test_matches_torch_live() -> None:
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location(
        "gen_layers", ROOT / "tests/reference/gen_layers.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    data = gen.inputs()
    check_reference({**data, **gen.reference(data)})


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_finite_differences(affine: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    R, B, F = 2, 3, 6
    x = 0.5 + 2.0 * rng.normal(size=(R, B, F))
    w = rng.normal(size=(R, B, F))
    gamma = rng.uniform(0.5, 2.0, (R, F)) if affine else None
    beta = rng.normal(size=(R, F)) if affine else None

    def loss() -> float:
        return float((w * layernorm.forward(x, gamma, beta)[0]).sum())

    dx, grads = layernorm.backward(w, layernorm.forward(x, gamma, beta)[1])
    np.testing.assert_allclose(dx, central_diff(loss, x), rtol=1e-6, atol=1e-8)
    if gamma is not None and beta is not None:
        np.testing.assert_allclose(grads["gamma"], central_diff(loss, gamma), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(grads["beta"], central_diff(loss, beta), rtol=1e-6, atol=1e-8)


def test_each_example_is_normalised_on_its_own() -> None:
    x = np.array([[[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]])
    y, _ = layernorm.forward(x)
    # example 0: mean 2, biased variance 2/3; example 1: mean 20, variance 200
    np.testing.assert_allclose(
        y[0, 0], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3 + 1e-5), rtol=1e-14
    )
    np.testing.assert_allclose(
        y[0, 1], np.array([-10.0, -10.0, 20.0]) / np.sqrt(200 + 1e-5), rtol=1e-14
    )
    # a batch of one gives the same rows: no statistic crosses examples
    np.testing.assert_array_equal(layernorm.forward(x[:, 1:])[0][0, 0], y[0, 1])


def test_affine_parameters_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="both gamma and beta"):
        layernorm.forward(np.ones((1, 2, 3)), np.ones((1, 3)), None)


@settings(max_examples=40, deadline=None)
@given(
    x=arrays(np.float64, (2, 3, 4), elements=st.floats(-100, 100)),
    shift=arrays(np.float64, (2, 3, 1), elements=st.floats(-100, 100)),
)
def test_output_ignores_a_per_example_shift(x: np.ndarray, shift: np.ndarray) -> None:
    x_before = x.copy()
    y1, _ = layernorm.forward(x)
    y2, _ = layernorm.forward(x + shift)
    assert np.array_equal(x, x_before)
    tol = 1e-14 * (1 + np.abs(x).max() + np.abs(shift).max()) / np.sqrt(1e-5)
    np.testing.assert_allclose(y1, y2, rtol=0, atol=tol)


@pytest.mark.parametrize("affine", [True, False])
def test_scratch_buffers_give_the_same_numbers_and_are_reused(affine: bool) -> None:
    rng = np.random.default_rng(5)
    x, dy = rng.normal(size=(3, 6, 4)), rng.normal(size=(3, 6, 4))
    gamma = rng.uniform(0.5, 2, (3, 4)) if affine else None
    beta = rng.normal(size=(3, 4)) if affine else None
    y0, cache0 = layernorm.forward(x, gamma, beta)
    dx0, grads0 = layernorm.backward(dy, cache0)
    scratch = Scratch()
    y1, cache1 = layernorm.forward(x, gamma, beta, scratch=scratch)
    dx1, grads1 = layernorm.backward(dy, cache1)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)
    assert grads1.keys() == grads0.keys()
    for key in grads0:
        np.testing.assert_array_equal(grads1[key], grads0[key])
    y2, cache2 = layernorm.forward(2 * x, gamma, beta, scratch=scratch)
    assert y2 is y1 and layernorm.backward(dy, cache2)[0] is dx1
