"""Parameter layout: the named tensors a problem's flat ``(R, N)`` parameter row is made of.

Elementwise optimizers run over the whole row; structure-aware ones (Muon, Adafactor, LAMB's
per-tensor trust ratio, routing of parameter kinds to different optimizers) see each tensor as a
view ``params[:, offset:offset + size].reshape(R, *shape)``. Tensors tile the row in order, without
gaps or overlaps; an analytic problem is one ``vector`` tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: What a tensor is, as optimizers and weight-decay rules route on it.
#: ``matrix`` — a weight matrix (dense ``(fan_in, fan_out)``; a conv kernel is a matrix of shape
#: ``(in_channels * kh * kw, out_channels)``); ``bias``; ``norm_scale`` / ``norm_shift`` — a
#: normalisation layer's gain γ and shift β; ``vector`` — anything else (analytic problems).
TensorKind = Literal["matrix", "bias", "norm_scale", "norm_shift", "vector"]
TENSOR_KINDS: tuple[TensorKind, ...] = ("matrix", "bias", "norm_scale", "norm_shift", "vector")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    kind: TensorKind
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.offset + self.size

    def view(self, flat: np.ndarray) -> np.ndarray:
        """This tensor of every run, ``(R, *shape)``, as a view into ``flat`` ``(R, N)``."""
        return flat[:, self.offset : self.stop].reshape(flat.shape[0], *self.shape)


@dataclass(frozen=True)
class Layout:
    tensors: tuple[Tensor, ...]

    @classmethod
    def vector(cls, dim: int) -> Layout:
        return cls((Tensor("x", (dim,), "vector", 0),))

    @classmethod
    def build(cls, parts: list[tuple[str, tuple[int, ...], TensorKind]]) -> Layout:
        """Consecutive tensors from ``(name, shape, kind)`` triples, offsets assigned in order."""
        tensors, offset = [], 0
        for name, shape, kind in parts:
            tensor = Tensor(name, tuple(shape), kind, offset)
            tensors.append(tensor)
            offset = tensor.stop
        return cls(tuple(tensors))

    @property
    def size(self) -> int:
        return self.tensors[-1].stop if self.tensors else 0

    def mask(self, kinds: set[TensorKind] | frozenset[TensorKind]) -> np.ndarray:
        """Boolean ``(N,)``: True on the entries of tensors whose kind is in ``kinds``."""
        out = np.zeros(self.size, dtype=bool)
        for t in self.tensors:
            if t.kind in kinds:
                out[t.offset : t.stop] = True
        return out
