"""The compiled ReLU equals NumPy's ``np.maximum(z, 0)`` and ``da *= a > 0`` bit for bit,
special values included, in both dtypes and on the strided views the network uses."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers import relu

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, -1e-310, 1.5, -2.5]


def values(dtype: type, rng: np.random.Generator) -> np.ndarray:
    """``(3, 5, 8)`` normal values with special ones sprinkled in, as the columns ``[:, :, :-1]``
    of a ``(3, 5, 9)`` buffer (the network's ``[a 1]`` layout)."""
    buf = rng.normal(size=(3, 5, 9)).astype(dtype)
    flat = buf.reshape(-1)
    flat[rng.choice(flat.size, len(SPECIAL), replace=False)] = SPECIAL
    return buf[..., :-1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_equals_numpy_maximum(dtype: type) -> None:
    rng = np.random.default_rng(0)
    z = values(dtype, rng)
    expected = np.maximum(z, 0.0)
    out = np.empty_like(z)
    relu.forward(z, out)
    assert out.tobytes() == expected.tobytes()  # signs of zeros and NaN payloads included
    relu.forward(z, z)  # in place, on the strided view
    assert np.ascontiguousarray(z).tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_equals_numpy_masked_product(dtype: type) -> None:
    rng = np.random.default_rng(1)
    a = values(dtype, rng)
    da = np.ascontiguousarray(values(dtype, rng))
    expected = da.copy()
    expected *= a > 0.0
    relu.backward(da, a)
    assert da.tobytes() == expected.tobytes()
    assert np.isnan(da).any()  # inf · 0 and NaN · 1 are NaN, as in NumPy
