"""Analytic test functions with closed-form gradients, run-batched.

Every problem here takes ``x`` of shape ``(R, d)`` (one row per run) and shares:

- the start point: ``init`` when the spec gives it (the same for every run), otherwise drawn per
  run uniformly from the problem's box ``[lo, hi]^d`` by the run seed's ``STREAM_INIT`` stream;
- DeepOBS-style gradient noise: with ``noise = σ > 0`` the gradient that update ``t`` sees is
  ``∇f(x) + σ ξ_t`` where ``ξ_t ~ N(0, I)`` is the ``t``-th draw of the run seed's
  ``STREAM_NOISE`` stream (so it depends on the step, not on how often the step is asked for);
  the loss is the true ``f(x)``;
- ``f_star`` (the global minimum) and :meth:`AnalyticProblem.minimizers`; two-dimensional
  instances have ``plot_bounds`` equal to the start box.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from engine.problems.base import (
    PROBLEMS,
    STREAM_INIT,
    STREAM_NOISE,
    STREAM_PROBLEM,
    Problem,
    stream_rng,
)
from engine.problems.common import Finite, NonNegative, options
from engine.specbase import SpecModel, Sweep

#: Upper bound of ``dim`` for the separable functions; the quadratic stores a ``d × d`` matrix
#: per run and is capped lower.
MAX_DIM = 1_000_000
MAX_QUADRATIC_DIM = 500


class AnalyticSpec(SpecModel):
    """Fields every analytic problem has (``name`` is narrowed to a literal by each subclass)."""

    name: str
    noise: Sweep[NonNegative] = Field(
        default=0.0,
        description="σ: each gradient gets σ·N(0, I) added (seeded by the run seed); "
        "the recorded loss stays noise-free",
    )
    init: list[Finite] | None = Field(
        default=None,
        description="start point (length dim), the same for every seed; default: drawn from the "
        "problem's box by the run seed",
    )

    def dims(self) -> list[int]:
        """The dimensions the spec's runs have (several when ``dim`` is a grid)."""
        return [int(d) for d in options(self, "dim")]

    def num_params(self) -> int:
        return max(self.dims())

    @model_validator(mode="after")
    def _init_matches_dim(self) -> AnalyticSpec:
        if self.init is not None:
            wrong = [d for d in self.dims() if d != len(self.init)]
            if wrong:
                raise ValueError(f"init has {len(self.init)} values but dim is {wrong[0]}")
        return self


class FixedPlaneSpec(AnalyticSpec):
    def dims(self) -> list[int]:
        return [2]


class AnalyticProblem(Problem):
    """Shared machinery: start points, gradient noise, buffers; subclasses give :meth:`evaluate`."""

    f_star: float | None = 0.0
    #: Start points are drawn from ``[lo, hi]`` in every coordinate.
    box: tuple[float, float]

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        dim: int = 2,
        noise: float = 0.0,
        init: Sequence[float] | None = None,
    ) -> None:
        super().__init__(seeds, dtype)
        if init is not None and len(init) != dim:
            raise ValueError(f"init has {len(init)} values but dim is {dim}")
        self.dim = dim
        self.noise = float(noise)
        self.init = None if init is None else [float(v) for v in init]
        self.plot_bounds = (self.box, self.box) if dim == 2 else None
        self._grad = np.empty((self.R, dim), dtype=self.dtype)
        self._scratch = np.empty((self.R, dim), dtype=self.dtype)
        self._noise = np.zeros((self.R, dim), dtype=self.dtype)
        self._noise_rngs: list[np.random.Generator] = []
        self._noise_step = -1

    def init_params(self) -> np.ndarray:
        if self.init is not None:
            return np.tile(np.asarray(self.init, dtype=self.dtype), (self.R, 1))
        lo, hi = self.box
        rows = [stream_rng(s, STREAM_INIT).uniform(lo, hi, self.dim) for s in self.seeds]
        return np.array(rows, dtype=self.dtype).reshape(self.R, self.dim)

    @abstractmethod
    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        """``f(x)`` as ``(R,)``; when ``grad`` is given, also writes ``∇f(x)`` into it."""

    @abstractmethod
    def minimizers(self) -> np.ndarray:
        """The known global minimisers, ``(k, dim)``."""

    def loss_and_grad(self, params: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        loss = self.evaluate(params, self._grad)
        if self.noise > 0.0:
            self._grad += self._noise_at(step)
        return loss, self._grad

    def loss(self, params: np.ndarray) -> np.ndarray:
        return self.evaluate(params, None)

    def _noise_at(self, step: int) -> np.ndarray:
        """``σ ξ_step`` per run: the ``step``-th draw of each run's noise stream."""
        if step != self._noise_step:
            if step <= self._noise_step or not self._noise_rngs:
                self._noise_rngs = [stream_rng(s, STREAM_NOISE) for s in self.seeds]
                self._noise_step = -1
            while self._noise_step < step:
                for row, rng in zip(self._noise, self._noise_rngs, strict=True):
                    rng.standard_normal(out=row, dtype=self.dtype)
                self._noise_step += 1
            self._noise *= self.noise
        return self._noise


class PlaneProblem(AnalyticProblem):
    """A function of the plane only: no ``dim`` parameter."""

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        noise: float = 0.0,
        init: Sequence[float] | None = None,
    ) -> None:
        super().__init__(seeds, dtype, dim=2, noise=noise, init=init)


class QuadraticSpec(AnalyticSpec):
    name: Literal["quadratic"] = "quadratic"
    dim: Sweep[Annotated[int, Field(ge=1, le=MAX_QUADRATIC_DIM)]] = 2
    condition_number: Sweep[Annotated[float, Field(ge=1.0, le=1e12)]] = 10.0


@PROBLEMS.register("quadratic", QuadraticSpec)
class Quadratic(AnalyticProblem):
    """Ill-conditioned convex quadratic ``f(x) = ½ xᵀ A x``, ``∇f = A x``, ``f* = 0`` at ``x = 0``.

    ``A = Q diag(λ) Qᵀ`` with eigenvalues ``λ`` log-spaced from 1 to the condition number ``κ``
    and ``Q`` a Haar-random orthogonal matrix drawn per run from the run seed (QR of a Gaussian
    matrix with the signs of ``R``'s diagonal moved into ``Q``), so the curvature directions are
    not the coordinate axes. Start box ``[-1, 1]^d``.
    """

    box = (-1.0, 1.0)

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        dim: int = 2,
        condition_number: float = 10.0,
        noise: float = 0.0,
        init: Sequence[float] | None = None,
    ) -> None:
        super().__init__(seeds, dtype, dim=dim, noise=noise, init=init)
        self.eigenvalues = np.geomspace(1.0, condition_number, dim)
        hessian = np.empty((self.R, dim, dim))
        for r, seed in enumerate(self.seeds):
            q = random_orthogonal(stream_rng(seed, STREAM_PROBLEM), dim)
            a = (q * self.eigenvalues) @ q.T
            hessian[r] = 0.5 * (a + a.T)
        self.hessian = hessian.astype(self.dtype)

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        g = self._scratch if grad is None else grad
        np.matmul(self.hessian, x[:, :, None], out=g[:, :, None])
        return 0.5 * (x * g).sum(axis=1)

    def minimizers(self) -> np.ndarray:
        return np.zeros((1, self.dim))


def random_orthogonal(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A Haar-distributed orthogonal ``dim × dim`` matrix."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


class RosenbrockSpec(AnalyticSpec):
    name: Literal["rosenbrock"] = "rosenbrock"
    dim: Sweep[Annotated[int, Field(ge=2, le=MAX_DIM)]] = 2


@PROBLEMS.register("rosenbrock", RosenbrockSpec)
class Rosenbrock(AnalyticProblem):
    """Rosenbrock's valley ``f = Σ_{i<d} 100 (x_{i+1} − x_i²)² + (1 − x_i)²``; ``f* = 0`` at ``1``.

    ``∂f/∂x_i = −400 x_i (x_{i+1} − x_i²) − 2 (1 − x_i)  [i < d]  + 200 (x_i − x_{i−1}²)  [i > 1]``.
    Start box ``[-2, 2]^d``.
    """

    box = (-2.0, 2.0)

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        dim: int = 2,
        noise: float = 0.0,
        init: Sequence[float] | None = None,
    ) -> None:
        if dim < 2:
            raise ValueError("rosenbrock needs dim ≥ 2")
        super().__init__(seeds, dtype, dim=dim, noise=noise, init=init)

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        a = x[:, :-1]
        t = x[:, 1:] - a * a
        u = 1.0 - a
        loss = 100.0 * (t * t).sum(axis=1) + (u * u).sum(axis=1)
        if grad is not None:
            np.multiply(-400.0 * a, t, out=grad[:, :-1])
            grad[:, :-1] -= 2.0 * u
            grad[:, -1] = 0.0
            grad[:, 1:] += 200.0 * t
        return loss

    def minimizers(self) -> np.ndarray:
        return np.ones((1, self.dim))


class BealeSpec(FixedPlaneSpec):
    name: Literal["beale"] = "beale"


@PROBLEMS.register("beale", BealeSpec)
class Beale(PlaneProblem):
    """Beale's function on the plane, ``f = Σ_{k=1..3} (c_k − x + x yᵏ)²`` with
    ``c = (1.5, 2.25, 2.625)``; ``f* = 0`` at ``(3, ½)``.

    ``∂f/∂x = 2 Σ_k a_k (yᵏ − 1)``, ``∂f/∂y = 2 x Σ_k k a_k yᵏ⁻¹`` with ``a_k = c_k − x + x yᵏ``.
    Start box ``[-4.5, 4.5]²``.
    """

    box = (-4.5, 4.5)

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        u, v = x[:, 0], x[:, 1]
        v2 = v * v
        v3 = v2 * v
        a1 = 1.5 - u + u * v
        a2 = 2.25 - u + u * v2
        a3 = 2.625 - u + u * v3
        if grad is not None:
            grad[:, 0] = 2.0 * (a1 * (v - 1.0) + a2 * (v2 - 1.0) + a3 * (v3 - 1.0))
            grad[:, 1] = 2.0 * u * (a1 + 2.0 * v * a2 + 3.0 * v2 * a3)
        return a1 * a1 + a2 * a2 + a3 * a3

    def minimizers(self) -> np.ndarray:
        return np.array([[3.0, 0.5]])


class HimmelblauSpec(FixedPlaneSpec):
    name: Literal["himmelblau"] = "himmelblau"


@PROBLEMS.register("himmelblau", HimmelblauSpec)
class Himmelblau(PlaneProblem):
    """Himmelblau's function ``f = (x² + y − 11)² + (x + y² − 7)²``: four global minima, ``f* = 0``.

    ``∂f/∂x = 4x p + 2q``, ``∂f/∂y = 2p + 4y q`` with ``p = x² + y − 11``, ``q = x + y² − 7``.
    Start box ``[-5, 5]²``.
    """

    box = (-5.0, 5.0)

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        u, v = x[:, 0], x[:, 1]
        p = u * u + v - 11.0
        q = u + v * v - 7.0
        if grad is not None:
            grad[:, 0] = 4.0 * u * p + 2.0 * q
            grad[:, 1] = 2.0 * p + 4.0 * v * q
        return p * p + q * q

    def minimizers(self) -> np.ndarray:
        # (3, 2) exactly; the others are roots of the quartic system, refined by Newton's method
        return np.array(
            [
                [3.0, 2.0],
                [-2.805118086952745, 3.131312518250573],
                [-3.779310253377747, -3.2831859912861696],
                [3.5844283403304917, -1.8481265269644034],
            ]
        )


class RastriginSpec(AnalyticSpec):
    name: Literal["rastrigin"] = "rastrigin"
    dim: Sweep[Annotated[int, Field(ge=1, le=MAX_DIM)]] = 2


@PROBLEMS.register("rastrigin", RastriginSpec)
class Rastrigin(AnalyticProblem):
    """Rastrigin's function ``f = 10 d + Σ_i (x_i² − 10 cos 2πx_i)``; ``f* = 0`` at ``0``.

    ``∂f/∂x_i = 2 x_i + 20π sin 2πx_i``; a local minimum near every integer point.
    Start box ``[-5.12, 5.12]^d``.
    """

    box = (-5.12, 5.12)

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        phase = (2.0 * np.pi) * x
        if grad is not None:
            np.sin(phase, out=grad)
            grad *= 20.0 * np.pi
            grad += 2.0 * x
        return (x * x - 10.0 * np.cos(phase)).sum(axis=1) + 10.0 * self.dim

    def minimizers(self) -> np.ndarray:
        return np.zeros((1, self.dim))


class AckleySpec(AnalyticSpec):
    name: Literal["ackley"] = "ackley"
    dim: Sweep[Annotated[int, Field(ge=1, le=MAX_DIM)]] = 2


@PROBLEMS.register("ackley", AckleySpec)
class Ackley(AnalyticProblem):
    """Ackley's function ``f = 20 (1 − e^{−0.2 s}) + (e − e^{c})`` with ``s = √(mean x²)`` and
    ``c = mean cos 2πx``; ``f* = 0`` at ``0`` (written so that the minimum evaluates to 0 exactly).

    ``∂f/∂x_i = 4 e^{−0.2 s} x_i / (d s) + (2π/d) e^{c} sin 2πx_i``; at ``x = 0`` the first term
    (a cone tip, not differentiable) is taken as 0. Start box ``[-5, 5]^d``, the usual plotting
    window: the standard search domain ``±32.768`` is mostly a flat plateau.
    """

    box = (-5.0, 5.0)

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        d = self.dim
        phase = (2.0 * np.pi) * x
        s = np.sqrt((x * x).sum(axis=1) / d)
        decay = np.exp(-0.2 * s)
        wave = np.exp(np.cos(phase).sum(axis=1) / d)
        if grad is not None:
            cone = 4.0 * decay / np.where(s > 0.0, d * s, 1.0)
            np.sin(phase, out=grad)
            grad *= ((2.0 * np.pi / d) * wave)[:, None]
            grad += cone[:, None] * x
        return 20.0 * (1.0 - decay) + (math.e - wave)

    def minimizers(self) -> np.ndarray:
        return np.zeros((1, self.dim))


def _styblinski_tang_root() -> float:
    """The smallest root of ``x³ − 8x + 5/4`` (where ``∂f/∂x_i = 0``), by Viète's cosine form."""
    p, q = -8.0, 1.25
    amp = 2.0 * math.sqrt(-p / 3.0)
    angle = math.acos(3.0 * q / (2.0 * p) * math.sqrt(-3.0 / p)) / 3.0
    return amp * math.cos(angle - 4.0 * math.pi / 3.0)


ST_ARGMIN = _styblinski_tang_root()  # −2.903534…
ST_MIN_PER_DIM = 0.5 * (ST_ARGMIN**4 - 16.0 * ST_ARGMIN**2 + 5.0 * ST_ARGMIN)  # −39.16616…


class StyblinskiTangSpec(AnalyticSpec):
    name: Literal["styblinski_tang"] = "styblinski_tang"
    dim: Sweep[Annotated[int, Field(ge=1, le=MAX_DIM)]] = 2


@PROBLEMS.register("styblinski_tang", StyblinskiTangSpec)
class StyblinskiTang(AnalyticProblem):
    """Styblinski–Tang ``f = ½ Σ_i (x_i⁴ − 16 x_i² + 5 x_i)``; ``∂f/∂x_i = 2x_i³ − 16x_i + 5/2``.

    ``f* = −39.16616… · d`` at ``x_i = −2.903534…`` (the smallest root of ``x³ − 8x + 5/4``);
    ``2^d`` local minima. Start box ``[-5, 5]^d``.
    """

    box = (-5.0, 5.0)

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type = np.float64,
        *,
        dim: int = 2,
        noise: float = 0.0,
        init: Sequence[float] | None = None,
    ) -> None:
        super().__init__(seeds, dtype, dim=dim, noise=noise, init=init)
        self.f_star = ST_MIN_PER_DIM * dim

    def evaluate(self, x: np.ndarray, grad: np.ndarray | None) -> np.ndarray:
        x2 = x * x
        if grad is not None:
            np.multiply(x2 - 8.0, 2.0 * x, out=grad)
            grad += 2.5
        return 0.5 * ((x2 - 16.0) * x2 + 5.0 * x).sum(axis=1)

    def minimizers(self) -> np.ndarray:
        return np.full((1, self.dim), ST_ARGMIN)
