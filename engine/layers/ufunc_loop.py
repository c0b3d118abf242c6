"""NumPy's own float64 ``exp`` and ``log`` loops, callable from compiled kernels.

numba's ``exp`` and ``log`` round differently from NumPy's (NumPy's SIMD loops, e.g. its AVX-512
``exp``), so a kernel that needs them bit for bit as NumPy computes them calls NumPy's loop itself:
the inner loop ``np.exp(x, out=x)`` runs for float64, the first ``d->d`` entry of the ufunc's
table of loops (the one NumPy's type resolution picks), read from the ufunc object's public C
struct (``PyUFuncObject``: ``functions``, ``data``, ``ntypes``, ``types``). The loop is
elementwise, so running it over any part of an array gives the values a call over the whole array
gives (tested against the ufuncs). The loop's address is passed to the kernels as an integer (so
they stay cacheable) and called through :func:`apply`.

:func:`loop_address` returns ``None`` when the struct does not look as expected (its table of
type codes disagreeing with ``ufunc.types``); callers then keep NumPy's path.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Byte offsets in ``PyUFuncObject`` (64-bit): after ``PyObject_HEAD`` (16) and four ``int``.
_FUNCTIONS, _DATA, _NTYPES, _TYPES = 32, 40, 48, 64
_POINTER = ctypes.sizeof(ctypes.c_void_p)


@functools.lru_cache(maxsize=4)
def loop_address(ufunc: np.ufunc) -> tuple[int, int] | None:
    """``(loop, data)`` addresses of ``ufunc``'s float64 ``d->d`` loop, or ``None``."""
    if _POINTER != 8 or ufunc.nin != 1 or ufunc.nout != 1:
        return None
    base = id(ufunc)
    ntypes = ctypes.c_int.from_address(base + _NTYPES).value
    codes = ctypes.c_void_p.from_address(base + _TYPES).value
    functions = ctypes.c_void_p.from_address(base + _FUNCTIONS).value
    data = ctypes.c_void_p.from_address(base + _DATA).value
    if ntypes != ufunc.ntypes or not codes or not functions:
        return None
    table = ctypes.string_at(codes, 2 * ntypes)
    expected = [np.dtype(t[0]).num for t in ufunc.types] + [
        np.dtype(t[-1]).num for t in ufunc.types
    ]
    if list(table[0::2]) + list(table[1::2]) != expected:
        return None
    double = np.dtype(np.float64).num
    for i in range(ntypes):
        if table[2 * i] == double and table[2 * i + 1] == double:
            loop = ctypes.c_void_p.from_address(functions + _POINTER * i).value
            extra = ctypes.c_void_p.from_address(data + _POINTER * i).value if data else 0
            return (int(loop), int(extra or 0)) if loop else None
    return None


@intrinsic
def apply(typingctx, fn, data, x, n):
    """Run NumPy's unary loop at address ``fn`` (with its ``data``) in place over ``n`` contiguous
    float64 values at address ``x``: ``loop(args = {x, x}, dimensions = {n}, steps = {8, 8})``."""
    sig = types.void(types.int64, types.int64, types.voidptr, types.int64)

    def codegen(context, builder, signature, args):
        fn, data, x, n = args
        i64 = ir.IntType(64)
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [ptr.as_pointer(), i64.as_pointer(), i64.as_pointer(), ptr]
        )
        operands = cgutils.alloca_once(builder, ptr, size=2)
        builder.store(x, operands)
        builder.store(x, builder.gep(operands, [ir.Constant(i64, 1)]))
        dims = cgutils.alloca_once(builder, i64)
        builder.store(n, dims)
        steps = cgutils.alloca_once(builder, i64, size=2)
        builder.store(ir.Constant(i64, 8), steps)
        builder.store(ir.Constant(i64, 8), builder.gep(steps, [ir.Constant(i64, 1)]))
        target = builder.inttoptr(fn, fnty.as_pointer())
        builder.call(target, [operands, dims, steps, builder.inttoptr(data, ptr)])
        return context.get_dummy_value()

    return sig, codegen
