"""Normalisation layers and ReLU over run-batched activations ``(R, B, F)``; softmax
cross-entropy over run-batched outputs ``(R, C, B)``.

Each normalisation module has ``forward(x, …) -> (y, cache)`` and ``backward(dy, cache) -> (dx,
grads)``; ``grads`` maps parameter names (``"gamma"``, ``"beta"``) to ``(R, F)`` arrays. ``relu``
and ``cross_entropy`` are compiled one-pass kernels equal to their NumPy forms bit for bit.
"""

from engine.layers import batchnorm, cross_entropy, layernorm, relu

__all__ = ["batchnorm", "cross_entropy", "layernorm", "relu"]
