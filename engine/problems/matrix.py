"""Low-rank matrix factorisation: a non-convex problem whose parameters are two matrices.

    L(U, V) = ‖U Vᵀ − M‖²_F / (2 m n),    U ∈ ℝ^{m×k}, V ∈ ℝ^{n×k}

The target ``M`` (shared by every run of a spec) is drawn from ``data_seed``: ``A Bᵀ`` with
Gaussian factors of rank ``target_rank``, plus ``noise``·N(0, 1) entries (full rank then), scaled
so that ``‖M‖²_F = m n`` (unit mean square entry: the loss starts near ½ at a small init). Every
local minimum of this problem is global (Baldi & Hornik 1989), and by Eckart–Young the minimum is
``f* = Σ_{i>k} σᵢ(M)² / (2 m n)`` — zero when ``rank ≥ target_rank`` and there is no noise. The run
seed draws the start ``U₀, V₀`` with i.i.d. ``N(0, init_scale²)`` entries; from a small start,
gradient descent learns the singular directions one after another (incremental learning), which
is where update rules that see ``U`` and ``V`` as matrices differ from elementwise ones.

Gradients: with ``E = U Vᵀ − M``, ``∂L/∂U = E V/(m n)`` and ``∂L/∂V = Eᵀ U/(m n)``. Layout: ``U``
then ``V``, each a row-major ``matrix`` tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from engine.layout import Layout
from engine.problems.base import PROBLEMS, STREAM_DATA, STREAM_INIT, Problem, stream_rng
from engine.problems.common import DataSeed, options
from engine.specbase import SpecModel, Sweep

MAX_SIDE = 512
Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]


class MatrixFactorizationSpec(SpecModel):
    name: Literal["matrix_factorization"] = "matrix_factorization"
    rows: Sweep[Side] = Field(default=30, description="m: rows of the target")
    cols: Sweep[Side] = Field(default=20, description="n: columns of the target")
    rank: Sweep[Side] = Field(default=5, description="k: columns of the factors U and V")
    target_rank: Sweep[Side] = Field(default=3, description="rank of the target before noise")
    noise: Sweep[Annotated[float, Field(ge=0.0, le=10.0)]] = Field(
        default=0.0, description="σ of Gaussian noise added to the target's entries"
    )
    init_scale: Sweep[Annotated[float, Field(gt=0.0, le=10.0)]] = Field(
        default=0.1, description="standard deviation of the factors' start entries"
    )
    data_seed: Sweep[DataSeed] = Field(
        default=0, description="seeds the target; the same for every run seed"
    )

    def num_params(self) -> int:
        m = max(options(self, "rows"))
        n = max(options(self, "cols"))
        return (m + n) * max(options(self, "rank"))

    @model_validator(mode="after")
    def _target_fits(self) -> Self:
        side = min(min(options(self, "rows")), min(options(self, "cols")))
        if max(options(self, "target_rank")) > side:
            raise ValueError(f"target_rank cannot exceed min(rows, cols) = {side}")
        return self


@lru_cache(maxsize=16)
def target_matrix(
    rows: int, cols: int, target_rank: int, noise: float, data_seed: int
) -> np.ndarray:
    """The target ``M`` (read-only, float64) a spec's ``data_seed`` draws (module doc)."""
    rng = stream_rng(data_seed, STREAM_DATA)
    a = rng.standard_normal((rows, target_rank))
    b = rng.standard_normal((cols, target_rank))
    m = a @ b.T + noise * rng.standard_normal((rows, cols))
    m *= np.sqrt(rows * cols) / np.linalg.norm(m)
    m.flags.writeable = False
    return m


@PROBLEMS.register("matrix_factorization", MatrixFactorizationSpec)
class MatrixFactorization(Problem):
    """``‖U Vᵀ − M‖²_F / (2mn)`` over two factor matrices, ``f*`` from the SVD (module doc)."""

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        rows: int = 30,
        cols: int = 20,
        rank: int = 5,
        target_rank: int = 3,
        noise: float = 0.0,
        init_scale: float = 0.1,
        data_seed: int = 0,
    ) -> None:
        super().__init__(seeds, dtype)
        if target_rank > min(rows, cols):
            raise ValueError(f"target_rank cannot exceed min(rows, cols) = {min(rows, cols)}")
        self.m, self.n, self.k = int(rows), int(cols), int(rank)
        target = target_matrix(self.m, self.n, int(target_rank), float(noise), int(data_seed))
        self.target = target.astype(self.dtype)
        sigma = np.linalg.svd(target, compute_uv=False)
        self.f_star = float(np.sum(sigma[self.k :] ** 2) / (2 * self.m * self.n))
        self.init_scale = float(init_scale)
        self.dim = (self.m + self.n) * self.k
        self._layout = Layout.build(
            [("U", (self.m, self.k), "matrix"), ("V", (self.n, self.k), "matrix")]
        )
        self._grad = np.empty((self.R, self.dim), dtype=self.dtype)
        self._resid = np.empty((self.R, self.m, self.n), dtype=self.dtype)

    @property
    def layout(self) -> Layout:
        return self._layout

    def init_params(self) -> np.ndarray:
        rows = [
            self.init_scale * stream_rng(s, STREAM_INIT).standard_normal(self.dim)
            for s in self.seeds
        ]
        return np.array(rows, dtype=self.dtype).reshape(self.R, self.dim)

    def _residual(self, params: np.ndarray) -> np.ndarray:
        u, v = (t.view(params) for t in self._layout.tensors)
        np.matmul(u, np.swapaxes(v, 1, 2), out=self._resid)
        self._resid -= self.target
        return self._resid

    def loss(self, params: np.ndarray) -> np.ndarray:
        resid = self._residual(params)
        return np.einsum("rij,rij->r", resid, resid) / (2 * self.m * self.n)

    def loss_and_grad(self, params: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        resid = self._residual(params)
        loss = np.einsum("rij,rij->r", resid, resid) / (2 * self.m * self.n)
        u, v = (t.view(params) for t in self._layout.tensors)
        du, dv = (t.view(self._grad) for t in self._layout.tensors)
        np.matmul(resid, v, out=du)
        np.matmul(np.swapaxes(resid, 1, 2), u, out=dv)
        self._grad *= 1.0 / (self.m * self.n)
        return loss, self._grad
