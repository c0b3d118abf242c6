"""A run-batched multilayer perceptron over one flat parameter row per run.

Architecture, for hidden sizes ``h_1 … h_L`` (``L = 0`` gives a linear model):

    z_l = a_{l−1} W_l + b_l,   z̃_l = norm(z_l),   a_l = φ(z̃_l)        (l = 1 … L, a_0 = x)
    out = a_L W_o + b_o

``norm`` is batch normalisation (batch statistics in training mode, running statistics in
inference mode), layer normalisation (with ``γ``, ``β``, or without: the seed's
``z' = (z − μ)/√(σ² + ε)``), or the identity. With ``input_norm`` the inputs are batch-normalised
first, ``a_0 = BN(x)`` with their own ``γ₀``, ``β₀`` and running statistics — the seed's example,
which normalises ``z⁽⁰⁾`` before the first layer; ``φ`` is ReLU, tanh or GELU in its tanh
form ``½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))`` (torch's ``approximate="tanh"``; chosen over
the exact ``erf`` form because NumPy has no vectorised ``erf``).

Losses, averaged over the ``B`` examples of the batch, with an optional ridge term on the weight
matrices (never on biases or normalisation parameters):

    classification: L = (1/B) Σ_b [log Σ_c exp(out_bc) − out_{b,y_b}] + (λ/2) Σ_l ‖W_l‖²
    regression:     L = (1/B) Σ_b (out_b − y_b)²                      + (λ/2) Σ_l ‖W_l‖²

Backward: ``∂L/∂out = (softmax(out) − onehot(y)) / B`` or ``2 (out − y) / B``; then per layer
``∂W = a_{l−1}ᵀ ∂z``, ``∂b = Σ_b ∂z``, ``∂a_{l−1} = ∂z Wᵀ``, ``∂z̃ = ∂a ⊙ φ'(z̃)``, and the
normalisation layer's backward (:mod:`engine.layers`) maps ``∂z̃`` to ``∂z``, ``∂γ``, ``∂β``.

Layout of a parameter row: the input norm's ``γ₀``, ``β₀`` first when present, then layer after
layer: ``W_l`` (``fan_in × fan_out``, row-major) followed
by ``b_l``, which together form one contiguous ``(fan_in + 1) × fan_out`` block ``[W_l; b_l]``, then
``γ_l``, ``β_l`` when the layer is normalised; the output layer last. Inputs carry a trailing
column of ones, so ``a [W; b]`` is one matrix product and ``[a 1]ᵀ ∂z`` yields ``∂W`` and ``∂b``
together. Weight matrices are views into the row (no copies). Initialisation follows torch's
``nn.Linear`` default: every weight and bias ``~ U(−1/√fan_in, 1/√fan_in)``; ``γ = 1``, ``β = 0``.

The output layer is computed transposed, ``(R, n_out, B)``, so that the softmax reductions over
classes run across rows instead of along short rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.layers import batchnorm, cross_entropy, layernorm, relu
from engine.layers.scratch import Scratch, buffer
from engine.layout import Layout, TensorKind
from engine.problems.base import STREAM_INIT, stream_rng

Activation = Literal["relu", "tanh", "gelu"]
Norm = Literal["batchnorm", "layernorm"]

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715
#: Examples per forward pass of :meth:`Network.infer`: a block's activations (``R × 128 ×
#: width`` values) stay in the 1 MiB L2, where the products ran ~25 % faster than on 256 rows.
INFER_ROWS = 128
#: Buffers whose layer views :meth:`Network.views` keeps.
VIEWS_KEPT = 8


@dataclass(frozen=True)
class LayerSlots:
    """Offsets of one linear layer's parameters inside a row."""

    fan_in: int
    fan_out: int
    w: int
    b: int
    gamma: int | None  # None: not normalised (always None for the output layer)
    beta: int | None


@dataclass
class LayerViews:
    wb: np.ndarray  # (R, fan_in + 1, fan_out): the weights with the bias as last row
    gamma: np.ndarray | None  # (R, fan_out)
    beta: np.ndarray | None

    @property
    def w(self) -> np.ndarray:
        return self.wb[:, :-1, :]

    @property
    def b(self) -> np.ndarray:
        return self.wb[:, -1, :]


def layer_sizes(n_in: int, hidden: Sequence[int], n_out: int) -> list[tuple[int, int]]:
    return list(itertools.pairwise([n_in, *hidden, n_out]))


def count_params(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    norm: Norm | None,
    *,
    input_norm: bool = False,
    norm_affine: bool = True,
) -> int:
    """Parameters per run of :class:`Network` with these sizes (no arrays built)."""
    linear = sum(fi * fo + fo for fi, fo in layer_sizes(n_in, hidden, n_out))
    affine = norm == "batchnorm" or (norm == "layernorm" and norm_affine)
    return linear + (2 * sum(hidden) if affine else 0) + (2 * n_in if input_norm else 0)


def with_ones(x: np.ndarray) -> np.ndarray:
    """``[x 1]``: ``x`` with a trailing column of ones (the bias input)."""
    out = np.empty((*x.shape[:-1], x.shape[-1] + 1), dtype=x.dtype)
    out[..., :-1] = x
    out[..., -1] = 1.0
    return out


class Workspace(Scratch):
    """Scratch buffers of one use of a :class:`Network` (e.g. training steps, or evaluation),
    with one :class:`Scratch` per normalisation layer."""

    def __init__(self, n_hidden: int) -> None:
        super().__init__()
        self.norms = [Scratch() for _ in range(n_hidden)]


def row_blocks(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` blocks of at most ``size`` of ``n`` rows, none of one row unless
    ``n == 1``: a one-row product goes through BLAS's matrix-vector kernel, which may round
    differently from the matrix-matrix one (measured), so ``n`` rows cut as ``size + 1`` become
    ``(size − 1) + 2``."""
    bounds = [*range(0, n, size), n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds[-2] -= 1
    return list(itertools.pairwise(bounds))


class Network:
    """Parameter layout, initialisation, and forward/backward passes (see the module docstring)."""

    #: Rows per pass of :meth:`infer`, or ``None`` for one pass: set when every layer has at
    #: least two outputs, since a product with one output column (regression's output layer, a
    #: hidden width of 1) is a matrix-vector product whose rounding depends on how many rows it
    #: gets (measured), while a matrix-matrix product's rows depend on the other rows at most in
    #: their last bits, and with OpenBLAS's AVX-512 kernels not at all (on AMD Zen 1 its kernels
    #: round the odd last row of a call another way — with several BLAS threads, that of each
    #: thread's share of the rows too).
    infer_rows: int | None = None

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        *,
        activation: Activation = "relu",
        norm: Norm | None = None,
        regression: bool = False,
        l2: float = 0.0,
        input_norm: bool = False,
        norm_affine: bool = True,
    ) -> None:
        if activation not in ("relu", "tanh", "gelu"):
            raise ValueError(f"unknown activation {activation!r}")
        if not norm_affine and norm != "layernorm":
            raise ValueError("only layer normalisation can go without affine parameters")
        self.activation = activation
        self.norm = norm
        self.regression = regression
        self.l2 = float(l2)
        self.hidden = list(hidden)
        self.n_out = n_out
        self.n_in = n_in
        #: Offset of the input batch norm's ``γ₀`` (``β₀`` follows), or ``None``.
        self.input_norm: int | None = 0 if input_norm else None
        slots: list[LayerSlots] = []
        offset = 2 * n_in if input_norm else 0
        sizes = layer_sizes(n_in, hidden, n_out)
        for i, (fi, fo) in enumerate(sizes):
            w, b = offset, offset + fi * fo
            offset = b + fo
            gamma = beta = None
            if norm is not None and norm_affine and i < len(sizes) - 1:
                gamma, beta = offset, offset + fo
                offset += 2 * fo
            slots.append(LayerSlots(fi, fo, w, b, gamma, beta))
        self.slots = slots
        self.size = offset
        self._views: dict[int, tuple[np.ndarray, list[LayerViews]]] = {}
        self.layout = self._layout()
        if min([*self.hidden, n_out]) >= 2:
            self.infer_rows = INFER_ROWS

    def _layout(self) -> Layout:
        """The row's tensors: ``input_norm.weight`` / ``.bias`` (γ₀, β₀ of the input batch norm),
        ``layers.{l}.weight`` ``(fan_in, fan_out)``, ``layers.{l}.bias``, ``layers.{l}.norm.weight``
        / ``.bias`` (γ, β; absent for a non-affine layer norm), ``output.weight`` / ``.bias``.

        Weights are stored ``(fan_in, fan_out)``, the transpose of torch's ``nn.Linear.weight``.
        """
        parts: list[tuple[str, tuple[int, ...], TensorKind]] = []
        if self.input_norm is not None:
            parts += [("input_norm.weight", (self.n_in,), "norm_scale")]
            parts += [("input_norm.bias", (self.n_in,), "norm_shift")]
        for i, s in enumerate(self.slots):
            name = "output" if i == len(self.slots) - 1 else f"layers.{i}"
            parts += [(f"{name}.weight", (s.fan_in, s.fan_out), "matrix")]
            parts += [(f"{name}.bias", (s.fan_out,), "bias")]
            if s.gamma is not None:
                parts += [(f"{name}.norm.weight", (s.fan_out,), "norm_scale")]
                parts += [(f"{name}.norm.bias", (s.fan_out,), "norm_shift")]
        return Layout.build(parts)

    def views(self, flat: np.ndarray) -> list[LayerViews]:
        """Per-layer views into a ``(R, size)`` buffer (parameters or gradients).

        The views of the last few buffers are kept (with the buffer itself, so that its ``id``
        stays its own): a training step asks for those of the same parameters and gradient
        buffers every time, and making them cost more than a small product."""
        known = self._views.get(id(flat))
        if known is not None and known[0] is flat:
            return known[1]
        out = self._make_views(flat)
        if len(self._views) >= VIEWS_KEPT:
            del self._views[next(iter(self._views))]
        self._views[id(flat)] = (flat, out)
        return out

    def _make_views(self, flat: np.ndarray) -> list[LayerViews]:
        R = flat.shape[0]
        out = []
        for s in self.slots:
            wb = flat[:, s.w : s.b + s.fan_out].reshape(R, s.fan_in + 1, s.fan_out)
            gamma = beta = None
            if s.gamma is not None and s.beta is not None:
                gamma = flat[:, s.gamma : s.gamma + s.fan_out]
                beta = flat[:, s.beta : s.beta + s.fan_out]
            out.append(LayerViews(wb, gamma, beta))
        return out

    def input_views(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(γ₀, β₀)`` of the input batch norm, ``(R, n_in)`` views (requires ``input_norm``)."""
        assert self.input_norm is not None
        start, n = self.input_norm, self.n_in
        return flat[:, start : start + n], flat[:, start + n : start + 2 * n]

    def init(self, seeds: Sequence[int], dtype: np.dtype) -> np.ndarray:
        """``(R, size)`` initial parameters, run ``r`` drawn from ``seeds[r]``'s init stream."""
        rows = np.zeros((len(seeds), self.size))
        if self.input_norm is not None:
            self.input_views(rows)[0][...] = 1.0
        for row, seed in zip(rows, seeds, strict=True):
            rng = stream_rng(seed, STREAM_INIT)
            for s in self.slots:
                bound = 1.0 / math.sqrt(s.fan_in)
                row[s.w : s.b] = rng.uniform(-bound, bound, s.fan_in * s.fan_out)
                row[s.b : s.b + s.fan_out] = rng.uniform(-bound, bound, s.fan_out)
                if s.gamma is not None:
                    row[s.gamma : s.gamma + s.fan_out] = 1.0
        return rows.astype(dtype)

    def workspace(self) -> Workspace:
        return Workspace(len(self.hidden) + (self.input_norm is not None))

    def new_running_stats(self, R: int, dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
        """Batch-norm running (mean, variance), torch's start values (0, 1): one per hidden layer
        with ``norm="batchnorm"``, then the input batch norm's."""
        widths = self.hidden if self.norm == "batchnorm" else []
        widths = widths + ([self.n_in] if self.input_norm is not None else [])
        return [(np.zeros((R, h), dtype), np.ones((R, h), dtype)) for h in widths]

    def forward(
        self,
        params: np.ndarray,
        x1: np.ndarray,
        *,
        training: bool,
        running: Sequence[tuple[np.ndarray, np.ndarray]] = (),
        ws: Workspace | None = None,
    ) -> tuple[np.ndarray, list[Any]]:
        """Transposed outputs ``(R, n_out, B)`` for inputs ``x1 = [x 1]``.

        ``x1`` is ``(B, n_in + 1)`` (shared by all runs) or ``(R, B, n_in + 1)``. Batch norm in
        training mode updates ``running`` in place. The second result is what :meth:`backward`
        needs. With a workspace every result lives in its buffers, overwritten by the next call
        with the same workspace and batch size; without, everything is freshly allocated.
        """
        layers = self.views(params)
        tape: list[Any] = []
        a1 = x1
        R, B, dt = params.shape[0], x1.shape[-2], params.dtype
        input_cache = None
        if self.input_norm is not None:
            a1, input_cache = self._normalise_input(params, x1, training, running, ws)
        # ReLU and tanh can run in place on the product, written straight into the next input
        in_place = self.norm is None and self.activation != "gelu"
        for i, layer in enumerate(layers[:-1]):
            H = layer.wb.shape[2]
            nxt = buffer(ws, f"a{i}", (R, B, H + 1), dt)
            nxt[..., -1] = 1.0
            z = nxt[..., :-1] if in_place else buffer(ws, f"z{i}", (R, B, H), dt)
            np.matmul(a1, layer.wb, out=z)
            norm_cache: Any = None
            norm_ws = None if ws is None else ws.norms[i]
            if self.norm == "batchnorm":
                assert layer.gamma is not None and layer.beta is not None
                mean, var = running[i]
                z, norm_cache = batchnorm.forward(
                    z, layer.gamma, layer.beta, mean, var, training=training, scratch=norm_ws
                )
            elif self.norm == "layernorm":
                z, norm_cache = layernorm.forward(z, layer.gamma, layer.beta, scratch=norm_ws)
            act_cache = self._activate(z, nxt, ws, i)
            tape.append((a1, norm_cache, act_cache))
            a1 = nxt
        C = self.n_out
        out = buffer(ws, "out", (R, C, B), dt)
        np.matmul(layers[-1].wb.swapaxes(1, 2), a1.swapaxes(-1, -2), out=out)
        tape.append((a1, None, None))
        tape.append(input_cache)
        return out, tape

    def infer(
        self,
        params: np.ndarray,
        x1: np.ndarray,
        running: Sequence[tuple[np.ndarray, np.ndarray]],
        ws: Workspace,
    ) -> np.ndarray:
        """Inference-mode outputs ``(R, n_out, B)`` for shared inputs ``x1 = [x 1]`` ``(B, n_in +
        1)``, in a buffer of ``ws``: :meth:`forward` in row blocks of :attr:`infer_rows` (rows are
        independent in inference mode). Where the BLAS rounds each row of a product alone this
        equals one pass over all ``B`` rows bit for bit; elsewhere it may differ from it in the
        last bits (see :attr:`infer_rows`). Every path of the engine evaluates in these blocks,
        so a run's values do not depend on the path, the batch or the cadence either way."""
        B = x1.shape[0]
        if self.infer_rows is None or self.infer_rows >= B:
            return self.forward(params, x1, training=False, running=running, ws=ws)[0]
        out = ws.get("logits", (params.shape[0], self.n_out, B), params.dtype)
        for start, stop in row_blocks(B, self.infer_rows):
            block, _ = self.forward(params, x1[start:stop], training=False, running=running, ws=ws)
            out[..., start:stop] = block
        return out

    def _normalise_input(
        self,
        params: np.ndarray,
        x1: np.ndarray,
        training: bool,
        running: Sequence[tuple[np.ndarray, np.ndarray]],
        ws: Workspace | None,
    ) -> tuple[np.ndarray, Any]:
        """``[BN(x) 1]`` for inputs ``x1 = [x 1]``: the seed's batch norm of ``z⁽⁰⁾``, per input
        feature over the batch, with its own ``γ₀``, ``β₀`` and running statistics."""
        R, B, dt = params.shape[0], x1.shape[-2], params.dtype
        x = np.broadcast_to(x1[..., :-1], (R, B, self.n_in))
        gamma, beta = self.input_views(params)
        mean, var = running[-1]
        scratch = None if ws is None else ws.norms[-1]
        y, cache = batchnorm.forward(x, gamma, beta, mean, var, training=training, scratch=scratch)
        a1 = buffer(ws, "input", (R, B, self.n_in + 1), dt)
        a1[..., :-1] = y
        a1[..., -1] = 1.0
        return a1, cache

    def backward(
        self,
        params: np.ndarray,
        dout: np.ndarray,
        tape: list[Any],
        grad: np.ndarray,
        *,
        ws: Workspace | None = None,
    ) -> None:
        """Write ``∂L/∂params`` into ``grad`` (``(R, size)``) given ``∂L/∂out`` (transposed)."""
        layers = self.views(params)
        glayers = self.views(grad)
        dz = dout.swapaxes(1, 2)
        for i in range(len(layers) - 1, -1, -1):
            a1 = tape[i][0]
            np.matmul(a1.swapaxes(-1, -2), dz, out=glayers[i].wb)
            if i == 0:
                if self.input_norm is not None:
                    dx = np.matmul(dz, np.swapaxes(layers[0].w, 1, 2))
                    _, grads = batchnorm.backward(dx, tape[-1])
                    in_gamma, in_beta = self.input_views(grad)
                    in_gamma[...] = grads["gamma"]
                    in_beta[...] = grads["beta"]
                break
            w = layers[i].w
            da = buffer(ws, f"da{i - 1}", (*dz.shape[:2], w.shape[1]), dz.dtype)
            np.matmul(dz, w.swapaxes(1, 2), out=da)
            _, norm_cache, act_cache = tape[i - 1]
            self._activate_backward(da, a1, act_cache, ws, i - 1)
            dz = da
            if norm_cache is not None:
                module = batchnorm if self.norm == "batchnorm" else layernorm
                dz, grads = module.backward(da, norm_cache)
                g_gamma, g_beta = glayers[i - 1].gamma, glayers[i - 1].beta
                if g_gamma is not None and g_beta is not None:  # not a non-affine layer norm
                    g_gamma[...] = grads["gamma"]
                    g_beta[...] = grads["beta"]
        if self.l2:
            for layer, g in zip(layers, glayers, strict=True):
                g.w[...] += self.l2 * layer.w

    def penalty(self, params: np.ndarray) -> np.ndarray | float:
        """``(λ/2) Σ_l ‖W_l‖²`` per run, or 0.0 without a ridge term."""
        if not self.l2:
            return 0.0
        total = sum(np.square(layer.w).sum(axis=(1, 2)) for layer in self.views(params))
        return 0.5 * self.l2 * total

    def data_loss(
        self, out: np.ndarray, target: np.ndarray, *, grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean loss over the batch ``(R,)`` and, if asked, ``∂L/∂out``; consumes ``out``.

        ``out`` is ``(R, n_out, B)``; ``target`` is the one-hot ``(…, C, B)`` for classification,
        the values ``(…, B)`` for regression. The gradient is written over ``out``.
        """
        B = out.shape[2]
        if self.regression:
            resid = out[:, 0, :]
            resid -= target
            loss = np.square(resid).mean(axis=1)
            if not grad:
                return loss, None
            resid *= 2.0 / B
            return loss, out
        return cross_entropy.loss_and_gradient(out, target, grad=grad)

    def _activate(self, z: np.ndarray, a1: np.ndarray, ws: Scratch | None, i: int) -> Any:
        """``a1[…, :-1] = φ(z)`` (``a1`` the next layer's ``[a 1]``); returns what
        :meth:`_activate_backward` needs beyond ``a1``."""
        if self.activation == "relu":
            relu.forward(z, a1)
            return None
        out = a1[..., :-1]
        if self.activation == "tanh":
            np.tanh(z, out=out)
            return None
        t = buffer(ws, f"gelu_t{i}", z.shape, z.dtype)  # tanh(c (z + k z³))
        np.multiply(z, z, out=t)
        t *= _GELU_K
        t += 1.0
        t *= z
        t *= _GELU_C
        np.tanh(t, out=t)
        np.add(t, 1.0, out=out)
        out *= z
        out *= 0.5
        return z, t

    def _activate_backward(
        self, da: np.ndarray, a1: np.ndarray, cache: Any, ws: Scratch | None, i: int
    ) -> None:
        """``da ← da ⊙ φ'(z)`` in place, given ``a1 = [a 1]`` with the activation ``a = φ(z)``."""
        if self.activation == "relu":
            relu.backward(da, a1)
            return
        a = a1[..., :-1]
        u = buffer(ws, f"slope{i}", a.shape, a.dtype)
        if self.activation == "tanh":
            np.multiply(a, a, out=u)  # φ' = 1 − a²
            np.subtract(1.0, u, out=u)
            da *= u
            return
        # GELU: φ'(z) = ½ c z (1 + 3k z²)(1 − t²) + ½ (1 + t)
        z, t = cache
        np.multiply(z, z, out=u)
        u *= 3.0 * _GELU_K
        u += 1.0
        u *= z
        u *= 0.5 * _GELU_C
        v = buffer(ws, f"slope2{i}", a.shape, a.dtype)
        np.multiply(t, t, out=v)
        np.subtract(1.0, v, out=v)
        u *= v
        np.add(t, 1.0, out=v)
        v *= 0.5
        u += v
        da *= u
