"""Layer normalisation: each example normalised over its own features, run-batched.

Shapes: ``x`` is ``(R, B, F)``; the optional affine parameters ``gamma``, ``beta`` are ``(R, F)``.
Per run and per example ``b``, over the ``F`` features:

    μ_b = (1/F) Σ_j x_bj,   σ²_b = (1/F) Σ_j (x_bj − μ_b)²,   x̂ = (x − μ_b) / √(σ²_b + ε)
    y = γ x̂ + β   (affine)   or   y = x̂

Backward, with ``g = γ dy`` (``g = dy`` without affine) and ``s_b = 1/√(σ²_b + ε)``:

    ∂L/∂x_bj = s_b (g_bj − (1/F) Σ_k g_bk − x̂_bj (1/F) Σ_k g_bk x̂_bk)
    ∂L/∂γ_j = Σ_b dy_bj x̂_bj,   ∂L/∂β_j = Σ_b dy_bj

Unlike batch normalisation (:mod:`engine.layers.batchnorm`) the statistics never mix examples,
so there are no running statistics and training and inference compute the same thing; the means in
the input gradient run over features, and ``γ`` sits inside them because it varies along that axis.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.layers.scratch import Scratch, buffer

EPS = 1e-5


class LayerNormCache(NamedTuple):
    xhat: np.ndarray  # (R, B, F)
    inv_std: np.ndarray  # (R, B, 1)
    gamma: np.ndarray | None  # (R, F), or None without affine parameters
    scratch: Scratch | None


def forward(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    eps: float = EPS,
    scratch: Scratch | None = None,
) -> tuple[np.ndarray, LayerNormCache]:
    """``y = γ x̂ + β`` (or ``x̂`` when ``gamma`` and ``beta`` are ``None``).

    With ``scratch``, ``y`` and the cache live in its buffers (``x`` must not be one of them).
    """
    if (gamma is None) != (beta is None):
        raise ValueError("layer normalisation takes both gamma and beta, or neither")
    xhat = buffer(scratch, "xhat", x.shape, x.dtype)
    y = buffer(scratch, "y", x.shape, x.dtype)
    np.subtract(x, x.mean(axis=2, keepdims=True), out=xhat)
    inv_std = 1.0 / np.sqrt(np.square(xhat, out=y).mean(axis=2, keepdims=True) + eps)
    xhat *= inv_std
    if gamma is None or beta is None:
        np.copyto(y, xhat)
    else:
        np.multiply(xhat, gamma[:, None, :], out=y)
        y += beta[:, None, :]
    return y, LayerNormCache(xhat, inv_std, gamma, scratch)


def backward(dy: np.ndarray, cache: LayerNormCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(∂L/∂x, grads)``; ``grads`` holds ``"gamma"`` and ``"beta"`` when the layer is affine."""
    xhat, inv_std, gamma, scratch = cache
    dx = buffer(scratch, "dx", dy.shape, dy.dtype)
    g = (
        dy
        if gamma is None
        else np.multiply(dy, gamma[:, None, :], out=buffer(scratch, "g", dy.shape, dy.dtype))
    )
    np.multiply(g, xhat, out=dx)
    np.multiply(xhat, dx.mean(axis=2, keepdims=True), out=dx)
    np.subtract(g, dx, out=dx)
    dx -= g.mean(axis=2, keepdims=True)
    dx *= inv_std
    if gamma is None:
        return dx, {}
    # g is free again: reuse it for dy ⊙ x̂
    return dx, {"gamma": np.multiply(dy, xhat, out=g).sum(axis=1), "beta": dy.sum(axis=1)}
