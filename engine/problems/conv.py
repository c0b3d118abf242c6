"""A small convolutional network on the 8×8 digits: conv → batch norm → ReLU → pool → dense.

    z = conv₃ₓ₃(x) + b            C channels, stride 1, zero padding 1 (8×8 stays 8×8)
    z̃ = BN(z)                    per channel, over the batch *and* the 64 positions
    a = max(z̃, 0),  p = avgpool₂ₓ₂(a)   (C × 4 × 4)
    out = p W + b_o               softmax cross-entropy over the 10 classes

Batch normalisation of a convolution normalises each channel with statistics over every example
and every spatial position — the seed document's ``μⱼ, σⱼ²`` with ``j`` a channel and the batch
made of the ``B·64`` (example, position) pairs (``torch.nn.BatchNorm2d``); without it the
convolution keeps its bias and feeds the ReLU directly.

The convolution is a matrix product: each of the 64 output positions reads a 3×3 patch (zeros
beyond the border) plus a constant 1, so with patches ``P`` ``(B·64, 10)`` the layer is
``z = P [W; b]``, ``[W; b]`` one ``(10, C)`` block, and its gradient is ``Pᵀ ∂z``. The patches
of the input never change, so the forward pass only gathers and multiplies.

Layout of a parameter row: ``conv.weight`` ``(9, C)`` (rows: the 3×3 taps row-major; a conv
kernel stored as a matrix ``(in_channels·kh·kw, out_channels)``), ``conv.bias`` ``(C,)``, with
batch norm ``bn.weight`` (γ) and ``bn.bias`` (β) ``(C,)``, then ``fc.weight`` ``(16·C, 10)`` with
its input features ordered (row, column, channel) of the pooled map, and ``fc.bias`` ``(10,)``.
Initialisation as torch's defaults: every conv and dense weight and bias ``~ U(±1/√fan_in)``
(``fan_in`` 9 and ``16·C``), ``γ = 1``, ``β = 0``.

Data: ``digits`` with the split and per-pixel standardisation of the other learning problems
(:func:`engine.problems.learning.prepare`), so results compare with the ``mlp`` on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from engine.layers import batchnorm
from engine.layers.scratch import buffer
from engine.layout import Layout
from engine.problems.base import PROBLEMS, STREAM_INIT, stream_rng
from engine.problems.common import DataSeed, options
from engine.problems.learning import (
    BatchSize,
    SupervisedProblem,
    TestFraction,
    least_eval_every,
    prepare,
    split_sizes,
)
from engine.problems.network import Network, Workspace
from engine.specbase import SpecModel, Sweep

SIDE = 8  # the digits are 8×8
POOLED = SIDE // 2
MAX_CHANNELS = 256
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]


def patch_table(side: int = SIDE) -> np.ndarray:
    """``(side², 10)`` input columns read by each output position: the 3×3 neighbourhood
    (row-major; ``side² + 1``, a zero, beyond the border) and ``side²``, the constant 1."""
    zero, one = side * side + 1, side * side
    table = np.full((side * side, 10), zero, dtype=np.intp)
    for i in range(side):
        for j in range(side):
            for k, (di, dj) in enumerate((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)):
                r, c = i + di, j + dj
                if 0 <= r < side and 0 <= c < side:
                    table[i * side + j, k] = r * side + c
            table[i * side + j, 9] = one
    return table


class ConvNet(Network):
    """The network of the module docstring, run-batched over ``(R, size)`` parameter rows.

    A :class:`~engine.problems.network.Network` to the problem that trains it: its dense head is
    one (a linear network ``16·C → 10``, which also gives the loss), the convolution in front of it
    is this class's own.
    """

    def __init__(self, channels: int, n_out: int, *, batchnorm: bool) -> None:
        self.channels, self.n_out = int(channels), int(n_out)
        self.norm = "batchnorm" if batchnorm else None
        self.regression = False
        self.input_norm = None
        self.l2 = 0.0
        self.head = Network(POOLED * POOLED * self.channels, [], n_out)
        self.conv_size = 10 * self.channels + (2 * self.channels if batchnorm else 0)
        self.size = self.conv_size + self.head.size
        self.table = patch_table()
        C = self.channels
        parts: list[tuple[str, tuple[int, ...], Any]] = [
            ("conv.weight", (9, C), "matrix"),
            ("conv.bias", (C,), "bias"),
        ]
        if batchnorm:
            parts += [("bn.weight", (C,), "norm_scale"), ("bn.bias", (C,), "norm_shift")]
        parts += [
            ("fc.weight", (POOLED * POOLED * C, n_out), "matrix"),
            ("fc.bias", (n_out,), "bias"),
        ]
        self.layout = Layout.build(parts)

    def conv_views(
        self, flat: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``[W; b]`` ``(R, 10, C)`` and, with batch norm, ``γ``, ``β`` ``(R, C)``: views."""
        R, C = flat.shape[0], self.channels
        wb = flat[:, : 10 * C].reshape(R, 10, C)
        if self.norm is None:
            return wb, None, None
        return wb, flat[:, 10 * C : 11 * C], flat[:, 11 * C : 12 * C]

    def init(self, seeds: Sequence[int], dtype: np.dtype) -> np.ndarray:
        rows = np.zeros((len(seeds), self.size))
        C = self.channels
        fan_in = POOLED * POOLED * C
        for row, seed in zip(rows, seeds, strict=True):
            rng = stream_rng(seed, STREAM_INIT)
            row[: 10 * C] = rng.uniform(-1 / 3, 1 / 3, 10 * C)  # 1/√9
            if self.norm is not None:
                row[10 * C : 11 * C] = 1.0
            bound = 1.0 / math.sqrt(fan_in)
            row[self.conv_size :] = rng.uniform(-bound, bound, self.head.size)
        return rows.astype(dtype)

    def workspace(self) -> Workspace:
        return Workspace(0)

    def new_running_stats(self, R: int, dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.norm is None:
            return []
        return [(np.zeros((R, self.channels), dtype), np.ones((R, self.channels), dtype))]

    def patches(self, x1: np.ndarray) -> np.ndarray:
        """``(…, B·64, 10)`` patches of inputs ``x1 = [x 1]`` ``(…, B, 65)``."""
        padded = np.concatenate([x1, np.zeros((*x1.shape[:-1], 1), x1.dtype)], axis=-1)
        gathered = padded[..., self.table]  # (…, B, 64, 10)
        return gathered.reshape(*x1.shape[:-2], x1.shape[-2] * SIDE * SIDE, 10)

    def forward(
        self,
        params: np.ndarray,
        x1: np.ndarray,
        *,
        training: bool,
        running: Sequence[tuple[np.ndarray, np.ndarray]] = (),
        ws: Any = None,
    ) -> tuple[np.ndarray, list[Any]]:
        R, B, C, dt = params.shape[0], x1.shape[-2], self.channels, params.dtype
        wb, gamma, beta = self.conv_views(params)
        patches = self.patches(x1)
        z = np.matmul(patches, wb, out=buffer(ws, "z", (R, B * SIDE * SIDE, C), dt))
        norm_cache = None
        if gamma is not None and beta is not None:
            mean, var = running[0]
            z, norm_cache = batchnorm.forward(
                z, gamma, beta, mean, var, training=training, scratch=ws
            )
        a = np.maximum(z, 0.0, out=buffer(ws, "a", z.shape, dt))
        pooled = a.reshape(R, B, POOLED, 2, POOLED, 2, C).mean(axis=(3, 5))
        h1 = buffer(ws, "h1", (R, B, POOLED * POOLED * C + 1), dt)
        h1[..., :-1] = pooled.reshape(R, B, -1)
        h1[..., -1] = 1.0
        out, head_tape = self.head.forward(params[:, self.conv_size :], h1, training=training)
        return out, [patches, norm_cache, a, head_tape]

    def backward(
        self,
        params: np.ndarray,
        dout: np.ndarray,
        tape: list[Any],
        grad: np.ndarray,
        *,
        ws: Any = None,
    ) -> None:
        patches, norm_cache, a, head_tape = tape
        R, C = params.shape[0], self.channels
        B = a.shape[1] // (SIDE * SIDE)
        head_params = params[:, self.conv_size :]
        self.head.backward(head_params, dout, head_tape, grad[:, self.conv_size :])
        w_head = self.head.views(head_params)[0].w  # (R, 16C, n_out)
        dpooled = np.matmul(np.swapaxes(dout, 1, 2), np.swapaxes(w_head, 1, 2))
        da = buffer(ws, "da", (R, B, POOLED, 2, POOLED, 2, C), params.dtype)
        da[...] = 0.25 * dpooled.reshape(R, B, POOLED, 1, POOLED, 1, C)
        dz = da.reshape(R, B * SIDE * SIDE, C)
        dz *= a > 0.0
        wb_grad, g_gamma, g_beta = self.conv_views(grad)
        if norm_cache is not None and g_gamma is not None and g_beta is not None:
            dz, grads = batchnorm.backward(dz, norm_cache)
            g_gamma[...] = grads["gamma"]
            g_beta[...] = grads["beta"]
        np.matmul(np.swapaxes(patches, -1, -2), dz, out=wb_grad)

    def penalty(self, params: np.ndarray) -> np.ndarray | float:
        return 0.0


class ConvDigitsSpec(SpecModel):
    name: Literal["conv_digits"] = "conv_digits"
    channels: Sweep[Channels] = Field(default=8, description="C: convolution channels")
    batchnorm: bool = Field(default=True, description="batch norm over channels after the conv")
    batch_size: BatchSize = Field(default=None, description="minibatch size; null: full batch")
    test_fraction: TestFraction = Field(default=0.2, description="fraction held out for test")
    split_seed: Sweep[DataSeed] = Field(default=0, description="seeds the train/test split")

    def num_params(self) -> int:
        C = max(options(self, "channels"))
        return 10 * C + (2 * C if self.batchnorm else 0) + 16 * C * 10 + 10

    def _smallest_train_set(self) -> int:
        return min(split_sizes(1797, float(f))[0] for f in options(self, "test_fraction"))

    def least_eval_every(self) -> int | None:
        """The fewest updates between default evaluations (:func:`least_eval_every`; ``None``
        for full-batch training); for a spec with grids, the fewest of its runs'."""
        return least_eval_every(self._smallest_train_set(), options(self, "batch_size"))

    @model_validator(mode="after")
    def _batches_fit(self) -> ConvDigitsSpec:
        n_train = self._smallest_train_set()
        batches = [b for b in options(self, "batch_size") if b is not None]
        if batches and max(batches) > n_train:
            raise ValueError(f"batch_size {max(batches)} exceeds the {n_train} training examples")
        return self


class ConvDigits(SupervisedProblem):
    """The convolutional network of the module docstring on ``digits`` (its layout is the
    :class:`ConvNet`'s, as every supervised problem's is its network's)."""


@PROBLEMS.register("conv_digits", ConvDigitsSpec)
def conv_digits(
    seeds: Sequence[int],
    dtype: np.dtype | type = np.float64,
    *,
    channels: int = 8,
    batchnorm: bool = True,
    batch_size: int | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> ConvDigits:
    """Conv 3×3 → batch norm over channels → ReLU → 2×2 average pool → dense, on the 8×8 digits.

    Softmax cross-entropy; torch's default initialisation from the run seed. Non-convex;
    ``f_star`` unknown. The convolution's kernel is a ``matrix`` tensor of its layout.
    """
    data = prepare("digits", split_seed, test_fraction)
    net = ConvNet(channels, data.n_outputs, batchnorm=batchnorm)
    return ConvDigits(seeds, dtype, data, batch_size=batch_size, net=net)
