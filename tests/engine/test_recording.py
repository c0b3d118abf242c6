"""The compiled recording equals the run loop's NumPy expressions of it bit for bit.

``‖x[r]‖`` is ``np.sqrt(np.einsum("ij,ij->i", x, x))``; the kernels repeat einsum's order of
summation, so they must agree with it to the last bit for every row length (whole blocks of
``4L`` values, the lanes of a partial block, a lone last value), in both dtypes, for values whose
squares span many magnitudes (where the order shows), and for rows holding inf or NaN or whose
squares overflow.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import recording

LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 1000, 4810]


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint8)


def rows(n: int, dtype: type, count: int = 5) -> np.ndarray:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((count, n)) * np.exp(3.0 * rng.standard_normal((count, n)))
    return x.astype(dtype)


def einsum_norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x)).astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", LENGTHS)
def test_row_norms_equal_einsum(n: int, dtype: type) -> None:
    for count in (1, 2, 5):  # rows go in pairs: an odd last row goes alone
        x = rows(n, dtype, count)
        out = np.empty(count)
        recording.row_norms(x, out)
        np.testing.assert_array_equal(bits(out), bits(einsum_norms(x)))


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_norms_of_non_finite_and_overflowing_rows(dtype: type) -> None:
    x = rows(37, dtype, 4)
    x[0, 5] = np.inf
    x[1, 30] = np.nan
    x[2, 11] = np.finfo(dtype).max / 4
    out = np.empty(4)
    with np.errstate(over="ignore", invalid="ignore"):
        recording.row_norms(x, out)
        want = einsum_norms(x)
    np.testing.assert_array_equal(bits(out), bits(want))
    assert np.isinf(out[0]) and np.isnan(out[1]) and np.isinf(out[2]) and np.isfinite(out[3])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_before_and_after_an_update_record_what_the_loop_recorded(dtype: type) -> None:
    """Columns of a wider trace (strided outputs), as the run loop passes them."""
    grad, params = rows(301, dtype, 3), rows(300, dtype, 3)[:, :1].repeat(301, axis=1)
    prev = np.empty_like(params)
    trace = np.zeros((2, 3, 7))
    recording.before_update(grad, params, prev, trace[0, :, 4])
    np.testing.assert_array_equal(prev, params)
    start = params.copy()
    params -= 0.01 * grad
    recording.after_update(params, prev, trace[1, :, 4])
    np.testing.assert_array_equal(bits(trace[0, :, 4]), bits(einsum_norms(grad)))
    np.testing.assert_array_equal(bits(trace[1, :, 4]), bits(einsum_norms(params - start)))
    assert not trace[:, :, [0, 1, 2, 3, 5, 6]].any()
