"""Matrix products as ``np.matmul`` computes them, callable from compiled kernels.

NumPy's ``matmul`` hands each float64 matrix–matrix product to the ``cblas_dgemm`` of the BLAS
it was built with. :func:`matmul` makes that same call — the same library function, with the
arguments NumPy derives from the operands' strides — so its results equal ``np.matmul``'s bit for
bit (tested), while a compiled kernel can interleave products with its own loops without a return
to Python per product. The function is reached through its address, passed to the kernels as an
integer (so they stay cacheable) and called through :func:`_dgemm`.

The address is found only for NumPy's bundled OpenBLAS (the ``scipy-openblas64`` of NumPy's
wheels, whose symbol is ``scipy_cblas_dgemm64_``, 64-bit integers); elsewhere :func:`dgemm_address`
returns ``None`` and callers keep NumPy's path.

:func:`matmul` covers what NumPy sends to ``gemm``: 2-D operands of at least two rows and columns
each, every operand with one unit stride (NumPy would copy the others first). Following NumPy
(``matmul.c.src``): an output whose rows are closer together than its columns is computed as the
transposed product; an operand whose rows are contiguous goes as is (its row stride the leading
dimension), else transposed.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from engine.jit import njit

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
SYMBOL = "scipy_cblas_dgemm64_"


@functools.lru_cache(maxsize=1)
def dgemm_address() -> int | None:
    """The address of the ``cblas_dgemm`` NumPy's ``matmul`` calls, or ``None`` if not found."""
    from threadpoolctl import threadpool_info  # only when a step asks: not at every import

    bundled = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for info in threadpool_info():
        path = Path(info.get("filepath") or "")
        if info.get("internal_api") == "openblas" and path.parent == bundled:
            function = getattr(ctypes.CDLL(str(path)), SYMBOL, None)
            if function is not None:
                address = ctypes.cast(function, ctypes.c_void_p).value
                return int(address) if address else None
    return None


@intrinsic
def _dgemm(typingctx, fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc):
    """``cblas_dgemm(RowMajor, trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc)`` of
    the function at address ``fn``."""
    sig = types.void(
        types.int64, types.int32, types.int32, types.int64, types.int64, types.int64,
        types.voidptr, types.int64, types.voidptr, types.int64, types.voidptr, types.int64,
    )  # fmt: skip

    def codegen(context, builder, signature, args):
        fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc = args
        i32, i64, f64 = ir.IntType(32), ir.IntType(64), ir.DoubleType()
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [i32, i32, i32, i64, i64, i64, f64, ptr, i64, ptr, i64, f64, ptr, i64]
        )
        target = builder.inttoptr(fn, fnty.as_pointer())
        one, zero = ir.Constant(f64, 1.0), ir.Constant(f64, 0.0)
        order = ir.Constant(i32, ROW_MAJOR)
        builder.call(target, [order, trans_a, trans_b, m, n, k, one, a, lda, b, ldb, zero, c, ldc])
        return context.get_dummy_value()

    return sig, codegen


@njit
def _blasable(row_stride, col_stride, cols):
    """NumPy's ``is_blasable2d`` for a float64 matrix: unit column stride, rows not overlapping."""
    return col_stride == 8 and row_stride % 8 == 0 and row_stride // 8 >= cols


@njit
def _gemm(fn, a, a_rows, a_cols, b, b_rows, b_cols, c, c_rows, m, n, k):
    """NumPy's ``matmul_matrixmatrix``: ``c (m × n) = a (m × k) @ b (k × n)``, each given by its
    data and byte strides."""
    if _blasable(a_rows, a_cols, k):
        trans_a, lda = NO_TRANS, a_rows // 8
    else:
        trans_a, lda = TRANS, a_cols // 8
    if _blasable(b_rows, b_cols, n):
        trans_b, ldb = NO_TRANS, b_rows // 8
    else:
        trans_b, ldb = TRANS, b_cols // 8
    _dgemm(fn, np.int32(trans_a), np.int32(trans_b), m, n, k, a, lda, b, ldb, c, c_rows // 8)


@njit
def matmul(fn, a, b, c):
    """``c[...] = a @ b`` for float64 matrices, as ``np.matmul(a, b, out=c)`` computes it (see the
    module docstring for what the operands must be)."""
    m, k = a.shape
    n = b.shape[1]
    sa, sb, sc = a.strides, b.strides, c.strides
    if abs(sc[0]) < abs(sc[1]):  # the transposed product: c.T = b.T @ a.T
        _gemm(fn, b.ctypes.data, sb[1], sb[0], a.ctypes.data, sa[1], sa[0],
              c.ctypes.data, sc[1], n, m, k)  # fmt: skip
    else:
        _gemm(fn, a.ctypes.data, sa[0], sa[1], b.ctypes.data, sb[0], sb[1],
              c.ctypes.data, sc[0], m, n, k)  # fmt: skip
