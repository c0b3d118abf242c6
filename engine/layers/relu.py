"""ReLU over run-batched activations, compiled: one pass each way.

The activations live in the network's ``[a 1]`` buffer ``a1`` (``(…, F + 1)``, C-contiguous: the
input of the next product with its column of ones), so both functions take that buffer and work
on its rows as a 2-D C-contiguous array, which the compiled loop vectorises (on the strided 3-D
view it ran 3× slower).

``forward``: ``a = max(z, 0)`` as ``np.maximum(z, 0.0)`` computes it (NaN stays NaN, ``−0`` gives
``+0``); ``backward``: ``∂z = ∂a ⊙ [a > 0]``, the product ``∂a · 1.0`` or ``∂a · 0.0`` that
``∂a *= a > 0`` forms (so ``±inf · 0`` is NaN, as there). Both equal those NumPy forms bit for
bit, which take two passes over a strided view (and a mask buffer) where these take one.
"""

from __future__ import annotations

import numpy as np

from engine.jit import njit


@njit
def _forward(z: np.ndarray, a1: np.ndarray, width: int) -> None:
    for i in range(a1.shape[0]):
        for j in range(width):
            v = z[i, j]
            a1[i, j] = v if v > 0.0 or v != v else 0.0


@njit
def _forward_in_place(a: np.ndarray) -> None:
    for i in range(a.size):
        v = a[i]
        a[i] = v if v > 0.0 or v != v else 0.0


@njit
def _backward(da: np.ndarray, a1: np.ndarray, width: int) -> None:
    for i in range(a1.shape[0]):
        for j in range(width):
            da[i, j] = da[i, j] * (1.0 if a1[i, j] > 0.0 else 0.0)


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` as a 2-D view ``(rows, last axis)``; ``a`` must be C-contiguous (no copy)."""
    if not a.flags.c_contiguous:
        raise ValueError("expected a C-contiguous array")
    return a.reshape(-1, a.shape[-1])


def forward(z: np.ndarray, a1: np.ndarray) -> None:
    """``a1[…, :-1] = max(z, 0)``: ``z`` is ``a1[…, :-1]`` itself (in place) or a C-contiguous
    ``(…, F)`` array.

    In place, one loop runs over the whole buffer as 1-D: the ones column is positive, so the
    ReLU leaves it as it is, and the flat loop ran 2.6× faster than ``F`` of every ``F + 1``
    values (64 of 65, measured)."""
    rows = _rows(a1)
    if z.base is a1 and not z.flags.c_contiguous:
        _forward_in_place(rows.reshape(-1))
    else:
        _forward(_rows(z), rows, z.shape[-1])


def backward(da: np.ndarray, a1: np.ndarray) -> None:
    """``da ← da ⊙ [a > 0]`` in place (``da`` C-contiguous ``(…, F)``), given ``a1 = [a 1]``
    with the activations ``a = max(z, 0)``."""
    _backward(_rows(da), _rows(a1), da.shape[-1])
