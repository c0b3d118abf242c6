"""Central finite differences: the reference every analytic gradient in the suite meets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def central_diff(f: Callable[[], float], arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """∂f/∂arr for a scalar ``f`` of ``arr``, perturbing ``arr`` in place one entry at a time."""
    grad = np.empty_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + h
        up = f()
        arr[i] = old - h
        down = f()
        arr[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def row_central_diff(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Per-row partials of ``f: (R, N) -> (R,)`` whose rows are independent runs: each coordinate
    is perturbed in every row at once."""
    grad = np.empty_like(x)
    for i in range(x.shape[1]):
        up, down = x.copy(), x.copy()
        up[:, i] += h
        down[:, i] -= h
        grad[:, i] = (f(up) - f(down)) / (2 * h)
    return grad
