"""Batch normalisation over the examples of a batch, run-batched.

Shapes: ``x`` is ``(R, B, F)`` (runs, examples, features); ``gamma``, ``beta`` and the running
statistics are ``(R, F)``. Every statistic is per run and per feature, over the ``B`` examples.

Forward, training mode (batch statistics; biased variance):

    μ = (1/B) Σ_b x_b,   σ² = (1/B) Σ_b (x_b − μ)²,   x̂ = (x − μ) / √(σ² + ε),   y = γ x̂ + β

and the running statistics move as in ``torch.nn.BatchNorm1d`` (momentum ``m``, default 0.1),
the variance term being the *unbiased* batch variance:

    μ̄ ← (1 − m) μ̄ + m μ,   v̄ ← (1 − m) v̄ + m σ² B / (B − 1)

Forward, inference mode: ``x̂ = (x − μ̄) / √(v̄ + ε)``, ``y = γ x̂ + β``; nothing is updated.

Backward, with upstream gradient ``dy`` and ``s = 1/√(σ² + ε)`` (training) or ``1/√(v̄ + ε)``
(inference):

    ∂L/∂γ = Σ_b dy_b x̂_b,    ∂L/∂β = Σ_b dy_b
    training:  ∂L/∂x = γ s (dy − (1/B) ∂L/∂β − x̂ (1/B) ∂L/∂γ)
    inference: ∂L/∂x = γ s dy

The training-mode input gradient has the two extra terms because μ and σ² depend on every example
of the batch; in inference mode the statistics are constants. Layer normalisation
(:mod:`engine.layers.layernorm`) normalises each example over its features instead, so it needs
no running statistics and behaves the same in both modes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.layers.scratch import Scratch, buffer

EPS = 1e-5
MOMENTUM = 0.1


class BatchNormCache(NamedTuple):
    xhat: np.ndarray  # (R, B, F)
    inv_std: np.ndarray  # (R, 1, F): 1/√(σ² + ε), batch or running statistics
    gamma: np.ndarray  # (R, F)
    training: bool
    scratch: Scratch | None


def forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    *,
    training: bool,
    momentum: float = MOMENTUM,
    eps: float = EPS,
    scratch: Scratch | None = None,
) -> tuple[np.ndarray, BatchNormCache]:
    """``y = γ x̂ + β``; in training mode also updates ``running_mean`` / ``running_var`` in place.

    Training needs ``B ≥ 2`` (the unbiased variance is undefined for one example), as in torch.
    With ``scratch``, ``y`` and the cache live in its buffers (``x`` must not be one of them).
    """
    xhat = buffer(scratch, "xhat", x.shape, x.dtype)
    y = buffer(scratch, "y", x.shape, x.dtype)
    if training:
        B = x.shape[1]
        if B < 2:
            raise ValueError("batch normalisation in training mode needs at least 2 examples")
        mean = x.mean(axis=1, keepdims=True)
        np.subtract(x, mean, out=xhat)
        var = np.square(xhat, out=y).mean(axis=1, keepdims=True)
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean[:, 0, :]
        running_var *= 1.0 - momentum
        running_var += (momentum * B / (B - 1)) * var[:, 0, :]
    else:
        np.subtract(x, running_mean[:, None, :], out=xhat)
        var = running_var[:, None, :]
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    np.multiply(xhat, gamma[:, None, :], out=y)
    y += beta[:, None, :]
    return y, BatchNormCache(xhat, inv_std, gamma, training, scratch)


def backward(dy: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(∂L/∂x, {"gamma": ∂L/∂γ, "beta": ∂L/∂β})`` for upstream ``dy`` (module formulas)."""
    xhat, inv_std, gamma, training, scratch = cache
    dx = buffer(scratch, "dx", dy.shape, dy.dtype)
    dgamma = np.multiply(dy, xhat, out=dx).sum(axis=1)
    dbeta = dy.sum(axis=1)
    scale = gamma[:, None, :] * inv_std
    if training:
        B = dy.shape[1]
        np.multiply(xhat, (dgamma / B)[:, None, :], out=dx)
        np.subtract(dy, dx, out=dx)
        dx -= (dbeta / B)[:, None, :]
        dx *= scale
    else:
        np.multiply(dy, scale, out=dx)
    return dx, {"gamma": dgamma, "beta": dbeta}
