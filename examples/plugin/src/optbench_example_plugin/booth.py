"""``booth``: Booth's function, a plugin problem written against the engine's problem interface.

It imports only ``engine.problems.base`` and ``engine.specbase`` (see :mod:`engine.plugins`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from engine.problems.base import PROBLEMS, STREAM_INIT, Problem, stream_rng
from engine.specbase import SpecModel


class BoothSpec(SpecModel):
    name: Literal["booth"] = "booth"

    def num_params(self) -> int:
        return 2


@PROBLEMS.register("booth", BoothSpec)
class Booth(Problem):
    """Booth's function ``f(x, y) = (x + 2y − 7)² + (2x + y − 5)²``, a convex quadratic with
    ``f* = 0`` at ``(1, 3)``; each run starts uniformly in ``[−10, 10]²`` (its seed's init
    stream)."""

    f_star = 0.0
    plot_bounds = ((-10.0, 10.0), (-10.0, 10.0))

    def __init__(self, seeds: Sequence[int], dtype: np.dtype | type = np.float64) -> None:
        super().__init__(seeds, dtype)
        self.dim = 2
        self._grad = np.empty((self.R, 2), dtype=self.dtype)

    def init_params(self) -> np.ndarray:
        rows = [stream_rng(s, STREAM_INIT).uniform(-10.0, 10.0, 2) for s in self.seeds]
        return np.array(rows, dtype=self.dtype).reshape(self.R, 2)

    def loss(self, params: np.ndarray) -> np.ndarray:
        x, y = params[:, 0], params[:, 1]
        return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

    def loss_and_grad(self, params: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = params[:, 0], params[:, 1]
        a, b = x + 2 * y - 7, 2 * x + y - 5
        self._grad[:, 0] = 2 * a + 4 * b
        self._grad[:, 1] = 4 * a + 2 * b
        return a**2 + b**2, self._grad
