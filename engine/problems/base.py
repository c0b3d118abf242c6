"""The benchmark-problem interface.

A :class:`Problem` instance holds ``R`` instances of one problem spec, one per run, stacked on the
run axis: run ``r`` uses ``seeds[r]`` for everything random (start point, rotation, data split,
minibatch order, initialisation, gradient noise). All arrays carry the leading run axis.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.layout import Layout
from engine.registry import Registry

#: Independent random streams of one seed (``spawn_key`` of its ``numpy.random.SeedSequence``).
STREAM_INIT = 0  # start point / initial weights (run seed)
STREAM_NOISE = 1  # gradient noise (run seed)
STREAM_ORDER = 2  # minibatch order (run seed)
STREAM_PROBLEM = 3  # the problem instance itself, e.g. a quadratic's rotation (run seed)
STREAM_DATA = 4  # synthetic data generation (data seed)
STREAM_SPLIT = 5  # train/test split (data seed)

PlotBounds = tuple[tuple[float, float], tuple[float, float]]


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one stream of ``seed``: fixed by ``(seed, stream)``; streams independent."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


class Problem(ABC):
    #: Number of parameters per run (``N``).
    dim: int
    #: Known minimum value of the (noise-free, full) loss, or ``None``.
    f_star: float | None = None
    #: True when each update sees a minibatch; losses are then recorded every ``eval_every`` steps.
    minibatch: bool = False
    #: Updates per pass over the training data (1 for a full-batch problem): the length of an
    #: epoch for schedules stepped per epoch (``schedule_unit: "epoch"``).
    steps_per_epoch: int = 1
    #: ``((xmin, xmax), (ymin, ymax))`` of a contour plot, for two-dimensional analytic problems.
    plot_bounds: PlotBounds | None = None

    def __init__(self, seeds: Sequence[int], dtype: np.dtype | type = np.float64) -> None:
        self.seeds = list(seeds)
        self.R = len(self.seeds)
        self.dtype = np.dtype(dtype)

    @property
    def layout(self) -> Layout:
        """The named tensors of a run's parameter row; one vector unless a problem says more."""
        return Layout.vector(self.dim)

    @abstractmethod
    def init_params(self) -> np.ndarray:
        """The ``(R, N)`` start points (a fresh array)."""

    @abstractmethod
    def loss_and_grad(self, params: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Loss ``(R,)`` and gradient ``(R, N)`` that update ``step`` uses.

        For a minibatch problem: the loss and gradient of that step's minibatch (training mode).
        With gradient noise: the true loss and the noisy gradient. May return internal buffers that
        the next call overwrites; never modifies ``params``.
        """

    @abstractmethod
    def loss(self, params: np.ndarray) -> np.ndarray:
        """The noise-free full training loss ``(R,)`` (inference mode for normalisation layers)."""

    def test_metrics(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """Held-out metrics, e.g. ``{"test_loss": (R,), "test_accuracy": (R,)}``; empty if none."""
        return {}

    @property
    def fuses_sgd(self) -> bool:
        """Whether :meth:`sgd_step` applies (to C-contiguous parameters)."""
        return False

    def sgd_step(
        self,
        params: np.ndarray,
        step: int,
        sgd: tuple[Any, ...],
        gnorm: np.ndarray,
        unorm: np.ndarray,
    ) -> np.ndarray:
        """:meth:`loss_and_grad` at ``params`` followed by SGD's recorded update with the fused
        kernel's arguments ``sgd`` (:attr:`engine.optimizers.base.Optimizer.sgd_args_`), the
        gradient and update norms written to ``gnorm`` and ``unorm``, with the numbers of those
        two calls, in one pass over the runs (each run updated while its gradient is in cache);
        returns the losses. Requires :attr:`fuses_sgd`."""
        raise NotImplementedError


ProblemFactory = Callable[..., Problem]
PROBLEMS: Registry[ProblemFactory] = Registry("problem")
