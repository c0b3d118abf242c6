"""What every optimizer kernel shares: column blocks, coefficient columns and in-place transforms.

Blocks. One step is a handful of elementwise passes (decay a moment, add a square, divide, …).
Over the whole ``(R, N)`` buffer each pass streams every array through main memory again; over
column blocks of about :data:`BLOCK_BYTES` per array (all runs together), the passes of a block
run in cache and the step reads and writes each state array about once. Scratch buffers are one
block wide and are allocated by ``init``; ``update_`` then allocates no array of the parameters'
size.

Coefficients. Per-step scalars (bias corrections, ``-lr / bc1``, …) are computed in float64:
Python floats, or ``(R, 1)`` float64 columns when a hyper-parameter or the learning rate is per
run. They are written into ``(R, 1)`` columns of the parameters' dtype that the passes broadcast
along each row, so a float32 run sees every scalar rounded once, as PyTorch casts a Python scalar
to the tensor's dtype.

Transforms. The optimizers compose the small in-place updates below, each a named piece of an
update rule (the momentum trace, the second-moment trace, the ``p += k·num/den`` step), applied to
the views of one block.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engine.optimizers.base import HParam, State

#: Bytes of one array's column block (all runs together). Measured on a 2-core EPYC (1 MiB L2
#: per core, 32 MiB L3) for Adam, RMSprop and SGD at 1e6 and 1e7 elements in both dtypes: 2 MiB
#: was best or tied everywhere; 512 KiB pays numpy's per-call overhead, 4 MiB spills the cache.
BLOCK_BYTES = 2 << 20


def check_params(params: np.ndarray, *hparams: HParam) -> None:
    """Reject what the kernels cannot step: non-float or non-2-D params, columns of another R."""
    if params.ndim != 2 or params.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"params must be a float32/float64 (R, N) array, got {params.dtype} {params.shape}"
        )
    for value in hparams:
        if isinstance(value, np.ndarray) and value.shape != (params.shape[0], 1):
            raise ValueError(
                f"per-run hyper-parameter of shape {value.shape} for {params.shape[0]} runs"
            )


def block_width(params: np.ndarray) -> int:
    """Columns per block for an ``(R, N)`` buffer."""
    rows, cols = params.shape
    return max(1, min(cols, BLOCK_BYTES // (params.itemsize * max(rows, 1))))


def buffers(params: np.ndarray, blocks: tuple[str, ...], columns: tuple[str, ...] = ()) -> State:
    """Scratch of one ``update_``: block-wide ``_name`` buffers and ``(R, 1)`` ``_name`` columns."""
    rows = params.shape[0]
    width = block_width(params)
    out = {f"_{n}": np.empty((rows, width), dtype=params.dtype) for n in blocks}
    out.update({f"_{n}": np.empty((rows, 1), dtype=params.dtype) for n in columns})
    return out


def counter() -> np.ndarray:
    """The step count ``t`` of a state: a 0-d int64 array, 0 before the first update."""
    return np.zeros((), dtype=np.int64)


def tick(state: State) -> int:
    """Advance the step count; returns the 1-based index of the update being taken."""
    t = state["t"]
    t += 1
    return int(t)


def column_blocks(n: int, width: int) -> Iterator[tuple[slice, slice]]:
    """``(cols, head)`` per block: its columns, and the matching prefix of a scratch buffer."""
    for start in range(0, n, width):
        size = min(width, n - start)
        yield slice(start, start + size), slice(0, size)


def f64(value: HParam) -> HParam:
    """A scalar or column promoted to float64 for the per-step scalar math."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64, copy=False)
    return float(value)


def put(out: np.ndarray, value: HParam | bool) -> np.ndarray:
    """Write a float64 scalar or column into a coefficient column (rounding to its dtype)."""
    np.copyto(out, value, casting="same_kind")
    return out


def nonzero(value: HParam) -> bool:
    """Whether any run has a non-zero value (a pass with an all-zero coefficient is skipped)."""
    return bool(np.any(np.asarray(value) != 0))


# --- transforms on the views of one block -----------------------------------------------------


def coupled_decay(out: np.ndarray, g: np.ndarray, p: np.ndarray, wd: np.ndarray) -> np.ndarray:
    """``out = g + wd·p``: L2 weight decay folded into the gradient (PyTorch's ``weight_decay``
    everywhere except AdamW/Lion and the ``decoupled_weight_decay`` variants)."""
    np.multiply(p, wd, out=out)
    out += g
    return out


def trace(acc: np.ndarray, x: np.ndarray, decay: np.ndarray) -> None:
    """``acc = decay·acc + x``: a momentum buffer, or an EMA kept divided by ``1 - decay``."""
    acc *= decay
    acc += x


def square_trace(acc: np.ndarray, x: np.ndarray, decay: np.ndarray, tmp: np.ndarray) -> None:
    """``acc = decay·acc + x²``: a second-moment EMA kept divided by ``1 - decay``."""
    np.square(x, out=tmp)
    acc *= decay
    acc += tmp


def root_plus(out: np.ndarray, v: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``out = √v + eps``: the denominator of the adaptive methods (eps outside the root)."""
    np.sqrt(v, out=out)
    out += eps
    return out


def ratio_step(
    p: np.ndarray, num: np.ndarray, den: np.ndarray, k: np.ndarray, tmp: np.ndarray
) -> None:
    """``p += k·(num / den)``."""
    np.divide(num, den, out=tmp)
    tmp *= k
    p += tmp


def scaled_step(p: np.ndarray, u: np.ndarray, k: np.ndarray, tmp: np.ndarray) -> None:
    """``p += k·u``."""
    np.multiply(u, k, out=tmp)
    p += tmp


# --- PyTorch's elementwise forms, for the references that follow its operation order ---------


def power(base: HParam, exponent: HParam) -> HParam:
    """``base ** exponent`` as Python computes it from floats (C ``pow``), per run for columns.

    PyTorch computes bias corrections and schedules of its hyper-parameters in Python floats;
    NumPy's vectorised ``power`` may round differently, so columns go through Python too.
    """
    if not isinstance(base, np.ndarray) and not isinstance(exponent, np.ndarray):
        return float(base) ** float(exponent)
    b, e = np.broadcast_arrays(np.asarray(base, dtype=np.float64), exponent)
    values = [float(x) ** float(y) for x, y in zip(b.ravel(), e.ravel(), strict=True)]
    return np.array(values).reshape(b.shape)


def lerp_columns(params: np.ndarray, weight: HParam, key: str = "w") -> State:
    """The columns :func:`lerp` takes for ``weight``: the weight and ``1 - weight`` rounded to the
    parameters' dtype, and which of the two forms each run uses."""
    w = put(np.empty((params.shape[0], 1), dtype=params.dtype), weight)
    return {f"_{key}": w, f"_{key}_small": np.abs(w) < 0.5, f"_{key}_rest": 1 - w}


def lerp(a: np.ndarray, b: np.ndarray, state: State, key: str = "w") -> np.ndarray:
    """PyTorch's ``a.lerp(b, w)``: ``a + w·(b - a)`` for ``|w| < ½``, else ``b - (b - a)·(1 - w)``
    (exact at both ends)."""
    w, small, rest = state[f"_{key}"], state[f"_{key}_small"], state[f"_{key}_rest"]
    diff = b - a
    return np.where(small, a + w * diff, b - diff * rest)
