"""ReLU over run-batched activations ``(R, B, F)``, compiled: one pass each way.

``forward``: ``a = max(z, 0)`` as ``np.maximum(z, 0.0)`` computes it (NaN stays NaN, ``−0`` gives
``+0``); ``backward``: ``∂z = ∂a ⊙ [a > 0]``, the product ``∂a · 1.0`` or ``∂a · 0.0`` that
``∂a *= a > 0`` forms (so ``±inf · 0`` is NaN, as there). The NumPy forms take two passes over a
strided view (the activations live in the ``[a 1]`` buffer that feeds the next product) plus a
mask buffer; these take one, and equal them bit for bit.
"""

from __future__ import annotations

import numpy as np

from engine.jit import njit


@njit
def _forward(z: np.ndarray, out: np.ndarray) -> None:
    R, B, F = z.shape
    for r in range(R):
        for b in range(B):
            for j in range(F):
                v = z[r, b, j]
                out[r, b, j] = v if v > 0.0 or v != v else 0.0


@njit
def _backward(da: np.ndarray, a: np.ndarray) -> None:
    R, B, F = da.shape
    for r in range(R):
        for b in range(B):
            for j in range(F):
                da[r, b, j] = da[r, b, j] * (1.0 if a[r, b, j] > 0.0 else 0.0)


def forward(z: np.ndarray, out: np.ndarray) -> None:
    """``out = max(z, 0)`` elementwise (``out`` may be ``z``); both ``(R, B, F)``."""
    _forward(z, out)


def backward(da: np.ndarray, a: np.ndarray) -> None:
    """``da ← da ⊙ [a > 0]`` in place, given the activations ``a = max(z, 0)``."""
    _backward(da, a)
