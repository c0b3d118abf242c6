"""The training step of a one-hidden-layer ReLU classifier, compiled run by run.

For the MLP of :mod:`engine.problems.network` with one hidden layer, ReLU, no normalisation and a
softmax cross-entropy, on inputs shared by the runs (full batch, or minibatches every run draws
alike), :meth:`Network.forward`, :meth:`Network.data_loss` and :meth:`Network.backward` take about
twenty NumPy calls per step over all runs, each streaming its ``(R, …)`` buffers through memory.
Here the same step is three compiled passes over the runs — forward and the loss's shift, the
loss's column sums, backward — with NumPy's ``exp`` and ``log`` between them (the compiled code
would round them differently). Each pass finishes a run before the next, so a run's activations
stay in cache from one product to the next, and there is no return to Python per product.

Every number is computed as the NumPy path computes it, so the losses and gradients are equal bit
for bit (tested): the products are NumPy's own BLAS calls with NumPy's arguments
(:mod:`engine.layers.blas`), the ReLU and the loss's passes are the kernels of
:mod:`engine.layers.relu` and :mod:`engine.layers.cross_entropy` applied to one run at a time (rows
never interact in them).
"""

from __future__ import annotations

import numpy as np

from engine.jit import njit
from engine.layers import cross_entropy, relu
from engine.layers.blas import dgemm_address, matmul
from engine.layers.scratch import Scratch
from engine.problems.network import Network


def compiled_step_applies(net: Network, batch: int, dtype: np.dtype) -> bool:
    """Whether :func:`loss_and_grad` can step ``net`` on batches of ``batch`` inputs shared by the
    runs: a one-hidden-layer ReLU classifier without normalisation or ridge term, float64, every
    product a matrix–matrix one (NumPy hands a product with a dimension of 1 to other routines),
    and NumPy's BLAS found."""
    if type(net) is not Network or dtype != np.float64:
        return False
    plain = net.norm is None and net.input_norm is None and net.activation == "relu"
    shape = len(net.hidden) == 1 and min(net.hidden[0], net.n_out, batch, net.n_in) >= 2
    return plain and shape and not net.regression and not net.l2 and dgemm_address() is not None


@njit
def _forward(fn, x1, params, w1, w2, a1, out, target, picked):
    """Per run: ``a1 = [relu(x1 W₁) 1]``, ``out = (a1 W₂)ᵀ``, then the loss's shift of ``out``."""
    R, _, width = a1.shape
    hidden = width - 1
    k1, classes = x1.shape[1], out.shape[1]
    for r in range(R):
        wb1 = params[r, w1 : w1 + k1 * hidden].reshape((k1, hidden))
        wb2 = params[r, w2 : w2 + width * classes].reshape((width, classes))
        act = a1[r]
        act[:, hidden] = 1.0
        matmul(fn, x1, wb1, act[:, :hidden])
        relu._forward_in_place(act.reshape(-1))
        matmul(fn, wb2.T, act.T, out[r])
        cross_entropy._shift(out[r : r + 1], target, picked[r : r + 1])


@njit
def _backward(fn, x1, params, w1, w2, a1, out, target, total, scale, grad, da):
    """Per run: the loss's gradient over ``out``, then ``∂W₂``, ``∂a``, the ReLU's mask, ``∂W₁``."""
    R, _, width = a1.shape
    hidden = width - 1
    k1, classes = x1.shape[1], out.shape[1]
    for r in range(R):
        cross_entropy._gradient(out[r : r + 1], target, total[r : r + 1], scale)
        dz = out[r].T
        act = a1[r]
        matmul(fn, act.T, dz, grad[r, w2 : w2 + width * classes].reshape((width, classes)))
        w = params[r, w2 : w2 + hidden * classes].reshape((hidden, classes))
        matmul(fn, dz, w.T, da[r])
        relu._backward(da[r], act, hidden)
        matmul(fn, x1.T, da[r], grad[r, w1 : w1 + k1 * hidden].reshape((k1, hidden)))


def loss_and_grad(
    net: Network,
    params: np.ndarray,
    x1: np.ndarray,
    target: np.ndarray,
    grad: np.ndarray,
    ws: Scratch,
) -> np.ndarray:
    """The mean data loss ``(R,)`` of every run, and ``∂L/∂params`` written into ``grad``, on
    inputs ``x1`` and one-hot targets ``target`` (``(C, B)``) shared by the runs; requires
    :func:`compiled_step_applies`. The losses are those of :meth:`Network.data_loss`."""
    fn = dgemm_address()
    R, (B, _), dt = params.shape[0], x1.shape, params.dtype
    hidden, classes = net.hidden[0], net.n_out
    w1, w2 = net.slots[0].w, net.slots[1].w
    a1 = ws.get("a0", (R, B, hidden + 1), dt)
    out = ws.get("out", (R, classes, B), dt)
    da = ws.get("da0", (R, B, hidden), dt)
    target = np.ascontiguousarray(target.reshape(-1, classes, B))
    picked = np.empty((R, B), dtype=dt)
    _forward(fn, x1, params, w1, w2, a1, out, target, picked)
    np.exp(out, out=out)
    total = np.empty((R, B), dtype=dt)
    cross_entropy._column_sums(out, total)
    loss = cross_entropy.mean_loss(total, picked)
    scale = np.array([1.0 / B], dtype=dt)
    _backward(fn, x1, params, w1, w2, a1, out, target, total, scale, grad, da)
    return loss
