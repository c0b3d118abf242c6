"""The training step of a one-hidden-layer ReLU classifier, compiled run by run.

For the MLP of :mod:`engine.problems.network` with one hidden layer, ReLU, no normalisation and a
softmax cross-entropy, on inputs shared by the runs (full batch, or minibatches every run draws
alike), :meth:`Network.forward`, :meth:`Network.data_loss` and :meth:`Network.backward` take about
twenty NumPy calls per step over all runs, each streaming its ``(R, …)`` buffers through memory.
Here the whole step is one compiled pass over the runs: each run's forward, loss gradient and
backward go from one product to the next in cache, in buffers of one run that every run reuses,
with no return to Python per product; the losses' ``log`` and mean then take one NumPy pass over
all runs. :func:`loss_and_sgd_step` also applies SGD's update to each run as soon as its gradient
is computed, while the gradient and parameters are still in cache (as a separate pass over all
runs, the update streamed the three ``(R, N)`` buffers from memory: a sixth of the step).

Every number is computed as the NumPy path computes it, so the losses, gradients, updates and
norms are equal bit for bit (tested): the products are NumPy's own BLAS calls with NumPy's
arguments (:mod:`engine.layers.blas`), ``exp`` is NumPy's own loop (:mod:`engine.layers.ufunc_loop`;
numba's rounds differently), the ReLU and the loss's passes are the kernels of
:mod:`engine.layers.relu` and :mod:`engine.layers.cross_entropy` applied to one run at a time (rows
never interact in them), and the update is the row kernel of
:func:`engine.optimizers.fused.sgd_step_recorded`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.jit import njit
from engine.layers import cross_entropy, relu, ufunc_loop
from engine.layers.blas import dgemm_address, matmul
from engine.layers.scratch import Scratch
from engine.optimizers import fused
from engine.problems.network import Network, row_blocks


def compiled_step_applies(net: Network, batch: int, dtype: np.dtype) -> bool:
    """Whether :func:`loss_and_grad` can step ``net`` on batches of ``batch`` inputs shared by the
    runs: a one-hidden-layer ReLU classifier without normalisation or ridge term, float64, every
    product a matrix–matrix one (NumPy hands a product with a dimension of 1 to other routines),
    and NumPy's BLAS and float64 ``exp`` loop found."""
    if type(net) is not Network or dtype != np.float64:
        return False
    plain = net.norm is None and net.input_norm is None and net.activation == "relu"
    shape = len(net.hidden) == 1 and min(net.hidden[0], net.n_out, batch, net.n_in) >= 2
    return plain and shape and not net.regression and not net.l2 and _addresses_found()


def _addresses_found() -> bool:
    return dgemm_address() is not None and ufunc_loop.loop_address(np.exp) is not None


@njit
def _run(fn, exp, r, x1, params, w1, w2, target, z, a1, out, da, picked, total, scale, grad):
    """Run ``r``: ``a1 = [relu(x1 W₁) 1]``, ``out = (a1 W₂)ᵀ``, the loss's shift, ``exp``, column
    sums and gradient over ``out``, then ``∂W₂``, ``∂a``, the ReLU's mask and ``∂W₁``."""
    classes, B = out.shape
    hidden = z.shape[1]
    width, k1 = hidden + 1, x1.shape[1]
    logits = out.reshape((1, classes, B))
    wb1 = params[r, w1 : w1 + k1 * hidden].reshape((k1, hidden))
    wb2 = params[r, w2 : w2 + width * classes].reshape((width, classes))
    matmul(fn, x1, wb1, z)
    relu._forward(z, a1, hidden)
    matmul(fn, wb2.T, a1.T, out)
    cross_entropy._shift(logits, target, picked[r : r + 1])
    ufunc_loop.apply(exp[0], exp[1], out.ctypes.data, out.size)
    cross_entropy._column_sums(logits, total[r : r + 1])
    cross_entropy._gradient(logits, target, total[r : r + 1], scale)
    dz = out.T
    matmul(fn, a1.T, dz, grad[r, w2 : w2 + width * classes].reshape((width, classes)))
    w = params[r, w2 : w2 + hidden * classes].reshape((hidden, classes))
    matmul(fn, dz, w.T, da)
    relu._backward(da, a1, hidden)
    matmul(fn, x1.T, da, grad[r, w1 : w1 + k1 * hidden].reshape((k1, hidden)))


@njit
def _step(fn, exp, x1, params, w1, w2, target, z, a1, out, da, picked, total, scale, grad):
    a1[:, z.shape[1]] = 1.0
    for r in range(params.shape[0]):
        _run(fn, exp, r, x1, params, w1, w2, target, z, a1, out, da, picked, total, scale, grad)


@njit
def _step_sgd(
    fn, exp, x1, params, w1, w2, target, z, a1, out, da, picked, total, scale, grad,
    buf, first, momentum, nesterov, has_wd, wd, mu, gain, k, diff, gn, un,
):  # fmt: skip
    """:func:`_step`, each run then stepped by :func:`~engine.optimizers.fused.sgd_row_recorded`
    while its gradient and parameters are in cache."""
    a1[:, z.shape[1]] = 1.0
    for r in range(params.shape[0]):
        _run(fn, exp, r, x1, params, w1, w2, target, z, a1, out, da, picked, total, scale, grad)
        gn[r], un[r] = fused.sgd_row_recorded(
            params, grad, buf, r, first, momentum, nesterov, has_wd, wd, mu, gain, k, diff
        )


def _arguments(
    net: Network,
    params: np.ndarray,
    x1: np.ndarray,
    target: np.ndarray,
    grad: np.ndarray,
    ws: Scratch,
) -> tuple[Any, ...]:
    """:func:`_step`'s arguments."""
    R, (B, _), dt = params.shape[0], x1.shape, params.dtype
    hidden, classes = net.hidden[0], net.n_out
    scale = ws.get("scale", (1,), dt)
    scale[0] = 1.0 / B
    if not target.flags.c_contiguous:
        np.copyto(ws.get("target", target.shape, dt), target)
        target = ws.get("target", target.shape, dt)
    return (
        dgemm_address(), ufunc_loop.loop_address(np.exp),
        x1, params, net.slots[0].w, net.slots[1].w, target.reshape((1, classes, B)),
        ws.get("z0", (B, hidden), dt), ws.get("a0", (B, hidden + 1), dt),
        ws.get("out", (classes, B), dt), ws.get("da0", (B, hidden), dt),
        ws.get("picked", (R, B), dt), ws.get("total", (R, B), dt), scale, grad,
    )  # fmt: skip


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
    args = _arguments(net, params, x1, target, grad, ws)
    _step(*args)
    picked, total = args[-4], args[-3]
    return cross_entropy.mean_loss(total, picked)


def loss_and_sgd_step(
    net: Network,
    params: np.ndarray,
    x1: np.ndarray,
    target: np.ndarray,
    grad: np.ndarray,
    ws: Scratch,
    sgd: tuple[Any, ...],
    gnorm: np.ndarray,
    unorm: np.ndarray,
) -> np.ndarray:
    """:func:`loss_and_grad`, then the SGD update of the fused kernel's arguments ``sgd``
    (:func:`engine.optimizers.fused.sgd_step`'s after ``params, grads``) applied to ``params`` run
    by run, each run's ``‖grad‖`` and ``‖Δparams‖`` written to ``gnorm`` and ``unorm``: the
    numbers of :func:`loss_and_grad` followed by :func:`~engine.optimizers.fused.sgd_step_recorded`
    (the same row kernel). Returns the losses at the parameters before the update."""
    args = _arguments(net, params, x1, target, grad, ws)
    diff = ws.get("diff", (params.shape[1],), params.dtype)
    _step_sgd(*(args + sgd + (diff, gnorm, unorm)))
    picked, total = args[-4], args[-3]
    return cross_entropy.mean_loss(total, picked)


@njit
def _infer(fn, exp, x1, params, w1, w2, target, labels, blocks, z, a1, out, picked, total, hits):
    """Per run, over a block of examples: ``out = ([relu(x1 W₁) 1] W₂)ᵀ`` computed in the row
    blocks ``blocks`` (``[start, stop)`` pairs), ``hits[r]`` the examples whose ``argmax`` over
    classes (``np.argmax``'s: the first maximum, or the first NaN) is their label, then the loss's
    shift, ``exp`` and column sums."""
    R = params.shape[0]
    classes, B = out.shape
    hidden = z.shape[1]
    width, k1 = hidden + 1, x1.shape[1]
    a1[:, hidden] = 1.0
    logits = out.reshape((1, classes, B))
    for r in range(R):
        wb1 = params[r, w1 : w1 + k1 * hidden].reshape((k1, hidden))
        wb2 = params[r, w2 : w2 + width * classes].reshape((width, classes))
        for i in range(blocks.shape[0]):
            start, stop = blocks[i, 0], blocks[i, 1]
            zb, ab = z[: stop - start], a1[: stop - start]
            matmul(fn, x1[start:stop], wb1, zb)
            relu._forward(zb, ab, hidden)
            matmul(fn, wb2.T, ab.T, out[:, start:stop])
        count = 0
        for b in range(B):
            top, best = out[0, b], 0
            if top == top:
                for c in range(1, classes):
                    v = out[c, b]
                    if not v <= top:
                        top, best = v, c
                        if v != v:
                            break
            count += best == labels[b]
        hits[r] = count
        cross_entropy._shift(logits, target, picked[r : r + 1])
        ufunc_loop.apply(exp[0], exp[1], out.ctypes.data, out.size)
        cross_entropy._column_sums(logits, total[r : r + 1])


def evaluate(
    net: Network,
    params: np.ndarray,
    x1: np.ndarray,
    target: np.ndarray,
    labels: np.ndarray,
    ws: Scratch,
) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode mean data loss ``(R,)`` and correct predictions of ``labels`` ``(R,)`` on
    inputs ``x1`` (``(B, n_in + 1)``, ``B ≥ 2``) with one-hot targets ``target`` (``(C, B)``); the
    numbers of :meth:`Network.infer`, :meth:`Network.data_loss` and ``argmax`` (the products in
    :meth:`Network.infer`'s row blocks), for a network :func:`compiled_step_applies` to."""
    R, (B, _), dt = params.shape[0], x1.shape, params.dtype
    hidden, classes = net.hidden[0], net.n_out
    rows = min(B, net.infer_rows or B)
    blocks = np.array(row_blocks(B, rows) if rows < B else [(0, B)], dtype=np.int64)
    onehot = ws.get("target", (1, classes, B), dt)
    np.copyto(onehot[0], target)
    picked, total = ws.get("picked", (R, B), dt), ws.get("total", (R, B), dt)
    hits = ws.get("hits", (R,), np.dtype(np.int64))
    _infer(
        dgemm_address(), ufunc_loop.loop_address(np.exp), x1, params, net.slots[0].w,
        net.slots[1].w, onehot, labels, blocks, ws.get("z0", (rows, hidden), dt),
        ws.get("a0", (rows, hidden + 1), dt), ws.get("out", (classes, B), dt), picked, total, hits,
    )  # fmt: skip
    return cross_entropy.mean_loss(total, picked), hits
