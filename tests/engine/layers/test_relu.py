"""The compiled ReLU equals NumPy's ``np.maximum(z, 0)`` and ``da *= a > 0`` bit for bit,
special values included, in both dtypes, in place on the network's ``[a 1]`` buffer and from a
separate array."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers import relu

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, -1e-310, 1.5, -2.5]


def ones_buffer(dtype: type, rng: np.random.Generator) -> np.ndarray:
    """A ``(3, 5, 9)`` ``[a 1]`` buffer: normal values with special ones sprinkled in, ones last."""
    buf = rng.normal(size=(3, 5, 9)).astype(dtype)
    flat = buf[..., :-1].reshape(-1)
    flat[rng.choice(flat.size, len(SPECIAL), replace=False)] = SPECIAL
    buf[..., :-1] = flat.reshape(3, 5, 8)
    buf[..., -1] = 1.0
    return buf


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_equals_numpy_maximum(dtype: type) -> None:
    rng = np.random.default_rng(0)
    a1 = ones_buffer(dtype, rng)
    z = a1[..., :-1].copy()
    expected = np.maximum(z, 0.0)
    relu.forward(a1[..., :-1], a1)  # in place on the strided view
    assert np.ascontiguousarray(a1[..., :-1]).tobytes() == expected.tobytes()  # ±0, NaN payloads
    assert (a1[..., -1] == 1.0).all()
    fresh = np.zeros_like(a1)
    relu.forward(z, fresh)  # from a separate array
    assert np.ascontiguousarray(fresh[..., :-1]).tobytes() == expected.tobytes()
    assert (fresh[..., -1] == 0.0).all()  # the ones column is the caller's


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_equals_numpy_masked_product(dtype: type) -> None:
    rng = np.random.default_rng(1)
    a1 = ones_buffer(dtype, rng)
    da = np.ascontiguousarray(ones_buffer(dtype, rng)[..., :-1])
    expected = da.copy()
    with np.errstate(invalid="ignore"):  # inf · 0
        expected *= a1[..., :-1] > 0.0
    relu.backward(da, a1)
    assert da.tobytes() == expected.tobytes()
    assert np.isnan(da).any()  # inf · 0 and NaN · 1 are NaN, as in NumPy


def test_non_contiguous_buffers_are_refused() -> None:
    a1 = np.zeros((2, 3, 5))
    with pytest.raises(ValueError, match="C-contiguous"):
        relu.forward(a1[..., :-1], a1[:, ::2])
    with pytest.raises(ValueError, match="C-contiguous"):
        relu.backward(np.zeros((2, 3, 8))[..., ::2], a1)
