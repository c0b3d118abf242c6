"""The noisy quadratic model (NQM) of Zhang et al. (2019), "Which algorithmic choices matter at
which batch sizes?": a diagonal quadratic whose stochastic gradient has the noise of a minibatch.

    L(θ) = ½ Σᵢ hᵢ θᵢ²,   hᵢ = i^(−p)  (i = 1 … d),   g = Hθ + ε,   ε ~ N(0, C/B),  C = H

Curvature and gradient-noise covariance share their eigenbasis and, as the paper assumes, are
equal (``C = H``), so high-curvature directions are also the noisy ones; the batch size ``B``
divides the noise, which is what makes the model a cheap stand-in for batch-size and schedule
studies (the critical batch size, the benefit of momentum and preconditioning only at large
batches). ``f* = 0`` at ``θ = 0``. The start point is ``θ₀ = 1`` in every coordinate for every
run; the run seed drives only the noise (the ``t``-th draw of its noise stream at update ``t``).
The recorded loss is the noise-free ``L``, evaluated every ``eval_every`` updates like the other
minibatch problems.

For SGD with lr ``α`` every coordinate evolves independently and its second moment follows
``E[θᵢ²]ₜ₊₁ = (1 − αhᵢ)² E[θᵢ²]ₜ + α² hᵢ / B``, a closed form the tests check the simulation
against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.problems.base import PROBLEMS, STREAM_NOISE, Problem, stream_rng
from engine.specbase import SpecModel, Sweep

MAX_NQM_DIM = 1_000_000


class NQMSpec(SpecModel):
    name: Literal["nqm"] = "nqm"
    dim: Sweep[Annotated[int, Field(ge=1, le=MAX_NQM_DIM)]] = Field(
        default=1000, description="number of coordinates d (the paper uses 10⁴)"
    )
    batch_size: Sweep[Annotated[int, Field(ge=1)]] = Field(
        default=1, description="B: the gradient noise covariance is H/B"
    )
    decay_power: Sweep[Annotated[float, Field(ge=0.0, le=4.0)]] = Field(
        default=1.0, description="p: curvatures hᵢ = i^(−p) (the paper: p = 1)"
    )

    def num_params(self) -> int:
        dims = self.dim if isinstance(self.dim, list) else [self.dim]
        return max(dims)


@PROBLEMS.register("nqm", NQMSpec)
class NQM(Problem):
    """The noisy quadratic model: ``½ Σ hᵢθᵢ²`` with gradient noise ``N(0, H/B)`` (module doc)."""

    f_star = 0.0
    minibatch = True

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        dim: int = 1000,
        batch_size: int = 1,
        decay_power: float = 1.0,
    ) -> None:
        super().__init__(seeds, dtype)
        if dim < 1 or batch_size < 1:
            raise ValueError(f"dim and batch_size must be >= 1, got {dim}, {batch_size}")
        self.dim, self.batch_size = int(dim), int(batch_size)
        curvature = np.arange(1, dim + 1, dtype=np.float64) ** -float(decay_power)
        self.curvature = curvature.astype(self.dtype)
        self.noise_scale = np.sqrt(curvature / batch_size).astype(self.dtype)
        self._grad = np.empty((self.R, dim), dtype=self.dtype)
        self._noise = np.empty((self.R, dim), dtype=self.dtype)
        self._rngs: list[np.random.Generator] = []
        self._step = -1

    def init_params(self) -> np.ndarray:
        return np.ones((self.R, self.dim), dtype=self.dtype)

    def loss(self, params: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("j,rj,rj->r", self.curvature, params, params)

    def noise_at(self, step: int) -> np.ndarray:
        """``ε`` of update ``step`` per run: ``√(h/B)`` times the run's ``step``-th normal draw."""
        if step != self._step:
            if step <= self._step or not self._rngs:
                self._rngs = [stream_rng(s, STREAM_NOISE) for s in self.seeds]
                self._step = -1
            while self._step < step:
                for row, rng in zip(self._noise, self._rngs, strict=True):
                    rng.standard_normal(out=row, dtype=self.dtype)
                self._step += 1
            self._noise *= self.noise_scale
        return self._noise

    def loss_and_grad(self, params: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        np.multiply(params, self.curvature, out=self._grad)
        loss = 0.5 * np.einsum("rj,rj->r", self._grad, params)
        self._grad += self.noise_at(step)
        return loss, self._grad
