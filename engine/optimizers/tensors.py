"""Per-tensor views for the structure-aware optimizers (Adafactor, Muon, LAMB, LARS, …).

A ``(R, N)`` buffer is cut into the layout's tensors; :func:`torch_view` shows each as torch
would hold it (``(R, *shape)``, a ``matrix`` transposed to torch's ``(fan_out, fan_in)``), as a
view, so in-place writes land in the buffer. Per-run hyper-parameter columns ``(R, 1)`` are
reshaped by :func:`per_tensor` to broadcast against such a view.
"""

from __future__ import annotations

import numpy as np

from engine.layout import Layout, Tensor
from engine.optimizers.base import HParam


def resolve(layout: Layout | None, params: np.ndarray) -> Layout:
    """The layout of ``params``' rows: the one given (checked against the row), else one vector."""
    if layout is None:
        return Layout.vector(params.shape[1])
    if layout.size != params.shape[1]:
        raise ValueError(f"layout of {layout.size} entries for rows of {params.shape[1]}")
    return layout


def torch_view(tensor: Tensor, flat: np.ndarray) -> np.ndarray:
    """``tensor`` of every run as torch holds it: ``(R, *shape)``, matrices ``(R, out, in)``."""
    view = tensor.view(flat)
    return np.swapaxes(view, -1, -2) if tensor.kind == "matrix" else view


def per_tensor(value: HParam, ndim: int) -> HParam:
    """A float, or an ``(R, 1)`` column reshaped to broadcast over ``(R, …)`` of ``ndim`` dims."""
    if isinstance(value, np.ndarray):
        return value.reshape(-1, *([1] * (ndim - 1)))
    return value


def typed(value: HParam, dtype: np.dtype) -> np.ndarray:
    """A float64 scalar or column rounded once to the parameters' dtype: a run computes the same
    numbers alone (a Python float) and in a batch (a column), in float32 as in float64."""
    return np.asarray(value, dtype=dtype)


def norms(x: np.ndarray) -> np.ndarray:
    """The Frobenius norm of each run's slice of ``x`` ``(R, …)``, shaped to broadcast back."""
    axes = tuple(range(1, x.ndim))
    return np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True))


def norms_into(x: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`norms` without temporaries: the squares go to ``scratch`` (a view shaped like
    ``x``), the sums to ``out`` (``(R, 1, …)``). The same NumPy reductions over the same values
    in the same order, so the norms are bit-identical to :func:`norms`."""
    axes = tuple(range(1, x.ndim))
    np.square(x, out=scratch)
    np.sum(scratch, axis=axes, keepdims=True, out=out)
    return np.sqrt(out, out=out)


def segment_stops(layout: Layout) -> np.ndarray:
    """Where each tensor of the row ends (the fused kernels' per-tensor segments)."""
    return np.array([t.stop for t in layout.tensors], dtype=np.int64)


def tensor_column(columns: np.ndarray, t: int, ndim: int) -> np.ndarray:
    """Column ``t`` of an ``(R, T)`` per-tensor array, viewed to broadcast over ``(R, …)``."""
    return columns[:, t].reshape(-1, *([1] * (ndim - 1)))
