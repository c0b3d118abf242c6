"""Per-update recording of the run loop, compiled: the norms of each run's gradient and update.

The loop records ``‖g‖`` and ``‖Δp‖`` per run and update as ``np.sqrt(np.einsum("ij,ij->i", x,
x))`` computes them. NumPy's einsum sums a contiguous row's products in a fixed order, which the
kernels here repeat exactly, so the curves are equal bit for bit (tested against ``np.einsum``):
with ``L`` lanes of 16 bytes (2 in float64, 4 in float32), lane ``l`` of a block of ``4L`` values
starting at ``i`` adds ``x[i+3L+l]²``, ``x[i+2L+l]²``, ``x[i+L+l]²`` then ``x[i+l]²`` to its sum
(multiply, then add: no fused multiply-add); the values after the last whole block go to lane
``(j - i) mod L`` in order; the lanes are then added pairwise (``s₀ + s₁``, or ``(s₀ + s₁) + (s₂ +
s₃)``). Everything is in the array's dtype.

Each lane's sum is a chain of dependent additions, so one row's norm waits on the adder's latency;
the kernels work out two rows (or a gradient and its update) side by side, which the processor
overlaps. The update norm needs the parameters before the update: a family's recorded kernel
(e.g. :func:`engine.optimizers.fused.sgd_step_recorded`) has both in hand, and for the others
:func:`before_update` keeps a copy that :func:`after_update` compares with.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from engine.jit import njit


@njit
def _norms_f64(a, b):
    """``(‖a‖, ‖b‖)`` of two float64 rows of equal length, squares summed in einsum's order."""
    n = a.shape[0]
    s0 = s1 = t0 = t1 = 0.0
    i = 0
    while i + 8 <= n:  # indexed one by one: unpacking slices of 8 took a third longer
        s0 = a[i] * a[i] + (
            a[i + 2] * a[i + 2] + (a[i + 4] * a[i + 4] + (a[i + 6] * a[i + 6] + s0))
        )
        s1 = a[i + 1] * a[i + 1] + (
            a[i + 3] * a[i + 3] + (a[i + 5] * a[i + 5] + (a[i + 7] * a[i + 7] + s1))
        )
        t0 = b[i] * b[i] + (
            b[i + 2] * b[i + 2] + (b[i + 4] * b[i + 4] + (b[i + 6] * b[i + 6] + t0))
        )
        t1 = b[i + 1] * b[i + 1] + (
            b[i + 3] * b[i + 3] + (b[i + 5] * b[i + 5] + (b[i + 7] * b[i + 7] + t1))
        )
        i += 8
    while i + 2 <= n:
        s0 = a[i] * a[i] + s0
        s1 = a[i + 1] * a[i + 1] + s1
        t0 = b[i] * b[i] + t0
        t1 = b[i + 1] * b[i + 1] + t1
        i += 2
    if i < n:
        s0 = a[i] * a[i] + s0
        t0 = b[i] * b[i] + t0
    return np.sqrt(s0 + s1), np.sqrt(t0 + t1)


@njit
def _norms_f32(a, b):
    """``(‖a‖, ‖b‖)`` of two float32 rows of equal length, squares summed in einsum's order (the
    roots taken here, in float32: the caller sees them widened to float64)."""
    n = a.shape[0]
    acc = np.zeros((2, 4), dtype=a.dtype)
    i = 0
    while i + 16 <= n:
        for lane in range(4):
            j = i + lane
            x0, x1, x2, x3 = a[j], a[j + 4], a[j + 8], a[j + 12]
            acc[0, lane] = x0 * x0 + (x1 * x1 + (x2 * x2 + (x3 * x3 + acc[0, lane])))
            y0, y1, y2, y3 = b[j], b[j + 4], b[j + 8], b[j + 12]
            acc[1, lane] = y0 * y0 + (y1 * y1 + (y2 * y2 + (y3 * y3 + acc[1, lane])))
        i += 16
    for j in range(i, n):
        lane = (j - i) % 4
        acc[0, lane] = a[j] * a[j] + acc[0, lane]
        acc[1, lane] = b[j] * b[j] + acc[1, lane]
    sa = (acc[0, 0] + acc[0, 1]) + (acc[0, 2] + acc[0, 3])
    sb = (acc[1, 0] + acc[1, 1]) + (acc[1, 2] + acc[1, 3])
    return np.sqrt(sa), np.sqrt(sb)


def pair_norms(a, b):
    """``(‖a‖, ‖b‖)`` of two rows of one dtype: each sum of squares in ``np.einsum``'s order, its
    square root in the rows' dtype."""
    if a.itemsize == 4:
        return _norms_f32(a, b)
    return _norms_f64(a, b)


@overload(pair_norms, inline="always")
def _pair_norms_of(a, b):
    """:func:`pair_norms` in compiled code: the rows' dtype picks the kernel when the caller is
    compiled, so a caller compiles only its own dtype's (a float64 run need not compile the
    float32 one)."""
    if a.dtype == types.float32:
        return lambda a, b: _norms_f32(a, b)
    return lambda a, b: _norms_f64(a, b)


@njit
def row_norms(x, out):
    """``out[r] = ‖x[r]‖`` for every row of ``x`` (two rows at a time)."""
    rows = x.shape[0]
    for r in range(0, rows - 1, 2):
        out[r], out[r + 1] = pair_norms(x[r], x[r + 1])
    if rows % 2:
        out[rows - 1] = pair_norms(x[rows - 1], x[rows - 1])[0]


@njit
def before_update(grad, params, prev, gnorm):
    """``gnorm[r] = ‖grad[r]‖`` and ``prev[:] = params`` (what :func:`after_update` compares)."""
    row_norms(grad, gnorm)
    for r in range(params.shape[0]):  # a loop: ``prev[:] = params`` compiles numba's shape check
        for j in range(params.shape[1]):
            prev[r, j] = params[r, j]


@njit
def after_update(params, prev, unorm):
    """``unorm[r] = ‖params[r] − prev[r]‖``, the difference rounded in the dtype (``prev`` is
    overwritten with it)."""
    for r in range(params.shape[0]):
        for j in range(params.shape[1]):
            prev[r, j] = params[r, j] - prev[r, j]
    row_norms(prev, unorm)
