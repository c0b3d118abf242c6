"""NumPy's ``exp`` and ``log`` loops called from compiled code equal the ufuncs bit for bit.

:func:`engine.layers.ufunc_loop.apply` runs the loop :func:`loop_address` finds over any
contiguous stretch of an array; every value — across the whole range, where the results overflow,
underflow to subnormals or zero, and the non-finite ones — must come out as the ufunc gives it,
over the whole array at once or piece by piece (a stretch's length and alignment do not matter).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.jit import njit
from engine.layers import ufunc_loop

SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 5e-324, -5e-324, 1.0, -1.0, 709.78, 709.79]


@njit
def in_pieces(loop, x, size):
    for start in range(0, x.size, size):
        n = min(size, x.size - start)
        ufunc_loop.apply(loop[0], loop[1], x[start:].ctypes.data, n)


def values(ufunc: np.ufunc) -> np.ndarray:
    rng = np.random.default_rng(7)
    if ufunc is np.exp:
        spread = rng.uniform(-760.0, 720.0, 20_000)
    else:
        spread = np.ldexp(rng.uniform(0.5, 1.0, 20_000), rng.integers(-1080, 1025, 20_000))
    return np.concatenate([spread, rng.standard_normal(997), SPECIAL, -spread[:50]])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("ufunc", [np.exp, np.log])
@pytest.mark.parametrize("size", [1, 7, 8, 640, 10**6])
def test_the_loop_equals_the_ufunc(ufunc: np.ufunc, size: int) -> None:
    loop = ufunc_loop.loop_address(ufunc)
    assert loop is not None
    x = values(ufunc)
    want = ufunc(x)
    got = x.copy()
    in_pieces(loop, got, size)
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


def test_no_loop_for_other_ufuncs() -> None:
    assert ufunc_loop.loop_address(np.add) is None
    assert ufunc_loop.loop_address(np.isnan) is None
