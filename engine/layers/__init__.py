"""Normalisation layers and ReLU over run-batched activations ``(R, B, F)``.

Each module has ``forward(x, …) -> (y, cache)`` and ``backward(dy, cache) -> (dx, grads)``;
``grads`` maps parameter names (``"gamma"``, ``"beta"``) to ``(R, F)`` arrays.
"""

from engine.layers import batchnorm, layernorm, relu

__all__ = ["batchnorm", "layernorm", "relu"]
