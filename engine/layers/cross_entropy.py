"""Softmax cross-entropy over run-batched outputs ``(R, C, B)`` (classes across rows), with the
elementwise passes compiled and the transcendental ones left to NumPy.

For outputs ``o`` and one-hot targets ``t`` (``(C, B)`` shared by the runs, or ``(R, C, B)``):

    s = o − max_c o,   L_b = log Σ_c exp(s_cb) − Σ_c t_cb s_cb,
    ∂L/∂o = (exp(s) / Σ_c exp(s) − t) / B

with the loss ``(R,)`` the mean of ``L_b`` over the batch. NumPy computes it in eleven passes;
here ``shift`` (max, subtraction and the picked value in one pass), ``np.exp``, ``column_sums``,
NumPy's ``log`` and ``mean`` (its pairwise summation), and ``gradient`` (division, subtraction,
scaling in one pass). Every operation rounds as NumPy's does, in the same order: the maximum and
the sum over classes go class by class as ``np.max`` / ``np.sum`` over a non-contiguous axis do,
and ``Σ_c t_cb s_cb`` has one non-zero term (a one-hot target) unless a NaN makes it NaN, as
``np.einsum`` gives; so the results equal the NumPy expressions bit for bit (tested).
"""

from __future__ import annotations

import numpy as np

from engine.jit import njit


@njit
def _shift(out: np.ndarray, target: np.ndarray, picked: np.ndarray) -> None:
    R, C, B = out.shape
    top = np.empty(B, dtype=out.dtype)
    for r in range(R):
        t = target[r % target.shape[0]]
        for b in range(B):
            top[b] = out[r, 0, b]
        for c in range(1, C):
            for b in range(B):
                v = out[r, c, b]
                m = top[b]
                top[b] = m if m >= v or m != m else v  # np.maximum: NaN wins
        for b in range(B):
            picked[r, b] = 0.0
        for c in range(C):
            for b in range(B):
                s = out[r, c, b] - top[b]
                out[r, c, b] = s
                picked[r, b] += t[c, b] * s


@njit
def _column_sums(out: np.ndarray, total: np.ndarray) -> None:
    R, C, B = out.shape
    for r in range(R):
        for b in range(B):
            total[r, b] = out[r, 0, b]
        for c in range(1, C):
            for b in range(B):
                total[r, b] += out[r, c, b]


@njit
def _gradient(out: np.ndarray, target: np.ndarray, total: np.ndarray, scale: np.ndarray) -> None:
    R, C, B = out.shape
    k = scale[0]
    for r in range(R):
        t = target[r % target.shape[0]]
        for c in range(C):
            for b in range(B):
                out[r, c, b] = (out[r, c, b] / total[r, b] - t[c, b]) * k


def loss_and_gradient(
    out: np.ndarray, target: np.ndarray, *, grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean loss ``(R,)`` and, with ``grad``, ``∂L/∂out`` written over ``out`` (returned)."""
    R, _, B = out.shape
    # C-contiguous, (1 or R, C, B): the kernels' inner loops then run over contiguous rows
    target = np.ascontiguousarray(target.reshape(-1, *target.shape[-2:]))
    picked = np.empty((R, B), dtype=out.dtype)
    _shift(out, target, picked)
    np.exp(out, out=out)
    total = np.empty((R, B), dtype=out.dtype)
    _column_sums(out, total)
    loss = mean_loss(total, picked)
    if not grad:
        return loss, None
    _gradient(out, target, total, np.array([1.0 / B], dtype=out.dtype))
    return loss, out


def mean_loss(total: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """``(R,)`` means over the batch of ``log Σ_c exp(s_cb) − Σ_c t_cb s_cb``, from the column
    sums ``total`` and the picked terms ``picked`` (``(R, B)`` each), as ``ndarray.mean`` takes
    them: the sum over the batch (pairwise), divided by ``B``."""
    terms = np.log(total)
    terms -= picked
    loss = np.add.reduce(terms, axis=1)
    loss /= total.shape[1]
    return loss
