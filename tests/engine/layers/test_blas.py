"""Products by NumPy's own BLAS from compiled code equal ``np.matmul`` bit for bit.

:func:`engine.layers.blas.matmul` repeats ``np.matmul``'s choice of ``gemm`` arguments from the
operands' strides; every layout the MLP's step uses (contiguous, transposed, rows of a wider
buffer, a transposed output) and others of the same kinds, at sizes around the BLAS kernels' block
edges, must give the same bits — non-finite values included.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.jit import njit
from engine.layers.blas import dgemm_address, matmul

pytestmark = pytest.mark.skipif(dgemm_address() is None, reason="NumPy's BLAS not found")


@njit
def product(fn, a, b, c):
    matmul(fn, a, b, c)


def operand(rng: np.random.Generator, rows: int, cols: int, layout: str) -> np.ndarray:
    """A ``(rows, cols)`` operand: contiguous, a transposed view, or the first columns of a wider
    buffer."""
    if layout == "T":
        return rng.standard_normal((cols, rows)).T
    if layout == "wide":
        return rng.standard_normal((rows, cols + 3))[:, :cols]
    return rng.standard_normal((rows, cols))


def output(m: int, n: int, layout: str) -> np.ndarray:
    if layout == "T":
        return np.full((n, m), np.nan).T
    if layout == "wide":
        return np.full((m, n + 1), np.nan)[:, :n]
    return np.full((m, n), np.nan)


SHAPES = [(2, 2, 2), (64, 65, 64), (10, 65, 64), (65, 64, 10), (64, 10, 64), (33, 17, 70)]
LAYOUTS = ["C", "T", "wide"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
@pytest.mark.parametrize("lc", LAYOUTS)
def test_matmul_equals_numpy(shape: tuple[int, int, int], la: str, lb: str, lc: str) -> None:
    m, k, n = shape
    rng = np.random.default_rng(m * 10_000 + k * 100 + n)
    a, b = operand(rng, m, k, la), operand(rng, k, n, lb)
    a[0, 0], b[1, 1] = np.inf, np.nan
    got, want = output(m, n, lc), output(m, n, lc)
    product(dgemm_address(), a, b, got)
    with np.errstate(invalid="ignore"):
        np.matmul(a, b, out=want)
    np.testing.assert_array_equal(
        np.ascontiguousarray(got).view(np.uint8), np.ascontiguousarray(want).view(np.uint8)
    )
