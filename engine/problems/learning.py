"""Supervised learning problems on small data sets: linear and logistic regression and an MLP.

Data (shared by every run of a problem instance):

- the data set is one of the bundled real sets or a synthetic one generated from ``split_seed``
  (:mod:`engine.data`); the train/test split is a random permutation drawn from ``split_seed``
  (``round(test_fraction · n)`` test examples). ``split_seed`` is a spec field, fixed by default,
  so runs that differ only in the run seed train on the same examples;
- features are standardised with the training set's mean and standard deviation (a constant
  feature is only centred); a regression target is standardised the same way, so losses are in
  units of the target's training variance.

Per run ``r`` the run seed drives the initial weights and the minibatch order. With ``batch_size``
set, update ``t`` sees minibatch ``t mod K`` of epoch ``⌊t / K⌋``, ``K = ⌊n_train / batch_size⌋``:
each epoch is a fresh permutation of the training set drawn from the run seed's order stream, cut
into ``K`` full batches (the remainder is dropped, like ``drop_last=True``, so every update sees
exactly ``batch_size`` examples). Without ``batch_size`` every update sees the full training set.

``loss_and_grad`` evaluates in training mode (batch norm uses and updates batch statistics);
``loss`` is the full training loss in inference mode; ``test_metrics`` gives the held-out
``test_loss`` (data term only, without the ridge penalty) and, for classification,
``test_accuracy``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from engine.data import (
    DATASETS,
    SYNTHETIC_DEFAULT_NOISE,
    SYNTHETIC_DEFAULT_SAMPLES,
    AnyDataset,
    Classification,
    load_bundled,
    make_synthetic,
)
from engine.layout import Layout
from engine.problems import mlp_step
from engine.problems.base import (
    PROBLEMS,
    STREAM_DATA,
    STREAM_ORDER,
    STREAM_SPLIT,
    Problem,
    stream_rng,
)
from engine.problems.common import DataSeed, NonNegative, options
from engine.problems.network import Activation, Network, Norm, count_params, with_ones
from engine.specbase import SpecModel, Sweep

MAX_WIDTH = 4096
MAX_DEPTH = 16
#: Examples per block when evaluating the full training or test set.
EVAL_CHUNK = 256


def split_sizes(n: int, test_fraction: float) -> tuple[int, int]:
    """``(n_train, n_test)`` with ``n_test = round(test_fraction · n)`` (halves round up)."""
    n_test = math.floor(test_fraction * n + 0.5)
    return n - n_test, n_test


def least_eval_every(n_train: int, batch_sizes: Iterable[int | None]) -> int | None:
    """The fewest updates between a minibatch run's default evaluations, ``⌈3 n_train / (2 B)⌉``
    (about an epoch and a half): evaluating then takes at most a quarter of the arithmetic. Of a
    spec's ``batch_sizes`` (a grid), the largest gives the fewest; ``None`` when every run
    trains on the full batch.

    An evaluation forwards the ``n_train`` training examples (the full training loss; the test set
    is evaluated once, at the end, whatever the cadence). An update forwards its ``B`` examples and
    back-propagates them, and the backward pass forms every layer's weight gradient, a product as
    large as the layer's forward one, so an update costs at least two forward passes of its batch.
    With evaluations ``e`` updates apart, evaluating takes at most ``n_train / (n_train + 2 e B)``
    of the arithmetic, ``≤ ¼`` when ``2 e B ≥ 3 n_train``.
    """
    batches = [b for b in batch_sizes if b is not None]
    return -(-3 * n_train // (2 * max(batches))) if batches else None


@dataclass(frozen=True)
class SplitData:
    """A standardised train/test split (float64, read-only)."""

    X_train: np.ndarray  # (n_train, d)
    y_train: np.ndarray  # (n_train,) int64 labels or float64 targets
    X_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int  # classes, or 1 for regression
    regression: bool


@lru_cache(maxsize=32)
def prepare(
    dataset: str,
    split_seed: int,
    test_fraction: float,
    n_samples: int | None = None,
    data_noise: float | None = None,
) -> SplitData:
    """Load or generate ``dataset``, split it by ``split_seed`` and standardise it."""
    info = DATASETS[dataset]
    if info.n_samples is None:
        n = SYNTHETIC_DEFAULT_SAMPLES if n_samples is None else n_samples
        noise = SYNTHETIC_DEFAULT_NOISE if data_noise is None else data_noise
        X, y = make_synthetic(dataset, n, noise, stream_rng(split_seed, STREAM_DATA))
    else:
        if n_samples is not None or data_noise is not None:
            raise ValueError(
                f"n_samples and data_noise apply to synthetic data sets, not {dataset}"
            )
        X, y = load_bundled(dataset)
    _, n_test = split_sizes(len(X), test_fraction)
    order = stream_rng(split_seed, STREAM_SPLIT).permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0.0] = 1.0
    Xs = (X - mean) / std
    if info.regression:
        y = (y - y[train].mean()) / y[train].std()
    X_train, y_train, X_test, y_test = Xs[train], y[train], Xs[test], y[test]
    for arr in (X_train, y_train, X_test, y_test):
        arr.flags.writeable = False
    return SplitData(X_train, y_train, X_test, y_test, info.n_outputs, info.regression)


class SupervisedProblem(Problem):
    """A :class:`~engine.problems.network.Network` trained on a :class:`SplitData` (module doc)."""

    def __init__(
        self,
        seeds: Sequence[int],
        dtype: np.dtype | type,
        data: SplitData,
        *,
        hidden: Sequence[int] = (),
        activation: Activation = "relu",
        norm: Norm | None = None,
        l2: float = 0.0,
        batch_size: int | None = None,
        input_norm: bool = False,
        norm_affine: bool = True,
        net: Network | None = None,
    ) -> None:
        """``net`` replaces the MLP the other arguments describe (e.g. a convolutional one)."""
        super().__init__(seeds, dtype)
        n_train = len(data.X_train)
        if batch_size is not None and not 1 <= batch_size <= n_train:
            raise ValueError(f"batch_size must be between 1 and {n_train} (the training set)")
        self.data = data
        self.net = net or Network(
            data.X_train.shape[1],
            hidden,
            data.n_outputs,
            activation=activation,
            norm=norm,
            regression=data.regression,
            l2=l2,
            input_norm=input_norm,
            norm_affine=norm_affine,
        )
        batch_stats = self.net.norm == "batchnorm" or self.net.input_norm is not None
        if batch_stats and (batch_size or n_train) < 2:
            raise ValueError("batch normalisation needs batches of at least 2 examples")
        self.dim = self.net.size
        self.batch_size = batch_size
        self.minibatch = batch_size is not None
        self.running = self.net.new_running_stats(self.R, self.dtype)
        dt = self.dtype
        self._x_train = with_ones(data.X_train.astype(dt))
        self._t_train = self._targets(data.y_train)
        self._x_test = with_ones(data.X_test.astype(dt))
        self._t_test = self._targets(data.y_test)
        self._classes = np.arange(data.n_outputs)[:, None]
        self._grad = np.zeros((self.R, self.dim), dtype=dt)
        self._train_ws = self.net.workspace()
        self._eval_ws = self.net.workspace()
        if batch_size is not None:
            self._per_epoch = self.steps_per_epoch = n_train // batch_size
            self._epoch = -1
            #: One seed for every run (an LR sweep): the runs draw the same minibatches, so one
            #: permutation per epoch and one batch ``(B, n_in + 1)`` serve them all (broadcast
            #: over the runs by the products, which then equal the per-run ones bit for bit).
            self._one_order = len(set(self.seeds)) == 1
            orders = 1 if self._one_order else self.R
            self._perm = np.empty((orders, n_train), dtype=np.intp)
            self._order_rngs: list[np.random.Generator] = []
            self._xb = np.empty((orders, batch_size, self._x_train.shape[1]), dtype=dt)
            target_shape = (batch_size,) if data.regression else (data.n_outputs, batch_size)
            self._tb = np.empty((orders, *target_shape), dtype=dt)
        shared = batch_size is None or self._one_order
        #: Whether training steps go through :mod:`engine.problems.mlp_step`.
        self._compiled_step = shared and mlp_step.compiled_step_applies(
            self.net, batch_size or n_train, dt
        )
        #: Whether evaluations go through :func:`engine.problems.mlp_step.evaluate` (blocks of at
        #: least 2 examples; the inputs are always shared by the runs).
        self._compiled_eval = mlp_step.compiled_step_applies(self.net, 2, dt)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        """Regression: the values ``(n,)``; classification: the transposed one-hot ``(C, n)``."""
        if self.data.regression:
            return y.astype(self.dtype)
        return (y == np.arange(self.data.n_outputs)[:, None]).astype(self.dtype)

    @property
    def layout(self) -> Layout:
        return self.net.layout

    def init_params(self) -> np.ndarray:
        return self.net.init(self.seeds, self.dtype)

    def batch_indices(self, step: int) -> np.ndarray:
        """``(R, batch_size)`` training-set rows of update ``step``'s minibatch."""
        rows = self._order_rows(step)
        return np.broadcast_to(rows, (self.R, rows.shape[1]))

    def _order_rows(self, step: int) -> np.ndarray:
        """The rows of update ``step``'s minibatch per order: ``(1, batch_size)`` when every run
        draws the same minibatches, else ``(R, batch_size)``."""
        assert self.batch_size is not None
        epoch, k = divmod(step, self._per_epoch)
        if epoch != self._epoch:
            if epoch < self._epoch or not self._order_rngs:
                seeds = self.seeds[: len(self._perm)]
                self._order_rngs = [stream_rng(s, STREAM_ORDER) for s in seeds]
                self._epoch = -1
            n_train = self._perm.shape[1]
            while self._epoch < epoch:
                for row, rng in zip(self._perm, self._order_rngs, strict=True):
                    row[:] = rng.permutation(n_train)
                self._epoch += 1
        return self._perm[:, k * self.batch_size : (k + 1) * self.batch_size]

    def _batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``[x 1]`` and targets of update ``step`` (in buffers the next call reuses)."""
        if self.batch_size is None:
            return self._x_train, self._t_train
        idx = self._order_rows(step)
        # the indices are valid; mode="clip" lets take write straight into the buffer
        x = np.take(self._x_train, idx, axis=0, out=self._xb, mode="clip")
        if self.data.regression:
            target = np.take(self._t_train, idx, out=self._tb, mode="clip")
        else:
            labels = self.data.y_train[idx][:, None, :]
            target = np.equal(labels, self._classes, out=self._tb)
        if self._one_order:
            return x[0], target[0]
        return x, target

    def loss_and_grad(self, params: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        x, target = self._batch(step)
        ws = self._train_ws
        if self._compiled_step and params.flags.c_contiguous:  # the kernels take rows as is
            loss = mlp_step.loss_and_grad(self.net, params, x, target, self._grad, ws)
        else:
            out, tape = self.net.forward(params, x, training=True, running=self.running, ws=ws)
            loss, dout = self.net.data_loss(out, target, grad=True)
            assert dout is not None
            self.net.backward(params, dout, tape, self._grad, ws=ws)
        return loss + self.net.penalty(params), self._grad

    @property
    def fuses_sgd(self) -> bool:
        return self._compiled_step

    def sgd_step(
        self,
        params: np.ndarray,
        step: int,
        sgd: tuple[Any, ...],
        gnorm: np.ndarray,
        unorm: np.ndarray,
    ) -> np.ndarray:
        x, target = self._batch(step)
        grad, ws = self._grad, self._train_ws
        loss = mlp_step.loss_and_sgd_step(self.net, params, x, target, grad, ws, sgd, gnorm, unorm)
        return loss + self.net.penalty(params)  # 0.0: the compiled step has no ridge term

    def loss(self, params: np.ndarray) -> np.ndarray:
        loss, _ = self._evaluate(params, self._x_train, self._t_train, None)
        return loss + self.net.penalty(params)

    def test_metrics(self, params: np.ndarray) -> dict[str, np.ndarray]:
        if len(self._x_test) == 0:
            return {}
        loss, hits = self._evaluate(params, self._x_test, self._t_test, self.data.y_test)
        if self.data.regression:
            return {"test_loss": loss}
        # Non-finite outputs predict nothing (argmax would pick class 0 for a NaN row).
        accuracy = np.where(np.isfinite(loss), hits / len(self._x_test), np.nan)
        return {"test_loss": loss, "test_accuracy": accuracy}

    def _evaluate(
        self, params: np.ndarray, x1: np.ndarray, target: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inference-mode mean data loss and number of correct predictions of labels ``y``
        (counted only when given), ``(R,)`` each.

        Runs over blocks of :data:`EVAL_CHUNK` examples so that the temporaries stay small (one
        pass over 64 runs × 1437 digits took longer than 64 single-run passes, measured); the
        block size does not depend on ``R``, so a run's value does not either. A block of a
        network the compiled step applies to goes through :func:`mlp_step.evaluate` (the same
        numbers, run by run).
        """
        n = len(x1)
        total = np.zeros(self.R, dtype=self.dtype)
        hits = np.zeros(self.R, dtype=np.int64)
        compiled = self._compiled_eval and params.flags.c_contiguous
        labels = self.data.y_train if y is None else y
        for start in range(0, n, EVAL_CHUNK):
            stop = min(start + EVAL_CHUNK, n)
            if compiled and stop - start >= 2:
                x, t, ws = x1[start:stop], target[:, start:stop], self._eval_ws
                loss, block_hits = mlp_step.evaluate(self.net, params, x, t, labels[start:stop], ws)
                hits += block_hits
            else:
                out = self.net.infer(params, x1[start:stop], self.running, self._eval_ws)
                if y is not None and not self.data.regression:
                    hits += (out.argmax(axis=1) == y[start:stop]).sum(axis=1)
                loss, _ = self.net.data_loss(out, target[..., start:stop], grad=False)
            total += loss * (stop - start)
        return total / n, hits


# ----------------------------------------------------------------------------- spec models

BatchSize = Sweep[Annotated[int, Field(ge=1)] | None]
TestFraction = Sweep[Annotated[float, Field(ge=0.0, le=0.9)]]
SyntheticSamples = Sweep[Annotated[int, Field(ge=20, le=100_000)] | None]
SyntheticNoise = Sweep[Annotated[float, Field(ge=0.0, le=10.0)] | None]
Hidden = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]], Field(min_length=1, max_length=MAX_DEPTH)
]

_BATCH = "minibatch size (the run seed orders the minibatches); null: full batch"
_TEST = "fraction of the data held out for test metrics"
_SPLIT = "seeds the train/test split (and generates synthetic data); same for every run seed"
_SAMPLES = f"synthetic data sets only: number of examples (default {SYNTHETIC_DEFAULT_SAMPLES})"
_NOISE = f"synthetic data sets only: Gaussian noise σ (default {SYNTHETIC_DEFAULT_NOISE})"


class LearningSpec(SpecModel):
    """Fields every learning problem has, and the checks that need the data set's size
    (``name`` and ``dataset`` are narrowed to literals by each subclass)."""

    name: str
    dataset: str
    batch_size: BatchSize = Field(default=None, description=_BATCH)
    test_fraction: TestFraction = Field(default=0.2, description=_TEST)
    split_seed: Sweep[DataSeed] = Field(default=0, description=_SPLIT)

    def _synthetic_options(self) -> tuple[list[int | None], list[float | None]]:
        return [None], [None]

    def _norm(self) -> Norm | None:
        return None

    def _batch_stats(self) -> bool:
        """Whether a layer normalises with batch statistics (so batches need 2 examples)."""
        return self._norm() == "batchnorm"

    def least_eval_every(self) -> int | None:
        """The fewest updates between default evaluations (:func:`least_eval_every`; ``None``
        for full-batch training); for a spec with grids, the fewest of its runs'."""
        return least_eval_every(self._smallest_train_set(), options(self, "batch_size"))

    def _smallest_train_set(self) -> int:
        info = DATASETS[self.dataset]
        samples, _ = self._synthetic_options()
        sizes = [info.n_samples] if info.n_samples is not None else samples
        n_min = min(SYNTHETIC_DEFAULT_SAMPLES if n is None else n for n in sizes)
        return min(split_sizes(n_min, float(f))[0] for f in options(self, "test_fraction"))

    @model_validator(mode="after")
    def _fits_the_data(self) -> LearningSpec:
        info = DATASETS[self.dataset]
        samples, noises = self._synthetic_options()
        if info.n_samples is not None and (samples != [None] or noises != [None]):
            raise ValueError(
                f"n_samples and data_noise apply to the synthetic data sets, not {self.dataset!r}"
            )
        n_train = self._smallest_train_set()
        batches = [b for b in options(self, "batch_size") if b is not None]
        if batches and max(batches) > n_train:
            raise ValueError(
                f"batch_size {max(batches)} exceeds the {n_train} training examples "
                f"of {self.dataset!r}"
            )
        if self._batch_stats() and min([*batches, n_train]) < 2:
            raise ValueError("batchnorm needs batch_size ≥ 2")
        return self


class SyntheticFields(LearningSpec):
    n_samples: SyntheticSamples = Field(default=None, description=_SAMPLES)
    data_noise: SyntheticNoise = Field(default=None, description=_NOISE)

    def _synthetic_options(self) -> tuple[list[int | None], list[float | None]]:
        return options(self, "n_samples"), options(self, "data_noise")


class LinearRegressionSpec(LearningSpec):
    name: Literal["linear_regression"] = "linear_regression"
    dataset: Literal["diabetes"] = "diabetes"

    def num_params(self) -> int:
        info = DATASETS[self.dataset]
        return count_params(info.n_features, [], 1, None)


class LogisticRegressionSpec(SyntheticFields):
    name: Literal["logistic_regression"] = "logistic_regression"
    dataset: Classification = "digits"
    l2: Sweep[NonNegative] = Field(default=0.0, description="ridge coefficient λ on the weights")

    def num_params(self) -> int:
        info = DATASETS[self.dataset]
        return count_params(info.n_features, [], info.n_outputs, None)


class MLPSpec(SyntheticFields):
    name: Literal["mlp"] = "mlp"
    dataset: AnyDataset = "digits"
    hidden: Sweep[Hidden] = Field(default=[64], description="hidden layer widths")
    activation: Sweep[Literal["relu", "tanh", "gelu"]] = Field(
        default="relu", description="gelu is the tanh approximation"
    )
    batchnorm: bool = Field(default=False, description="batch norm before each activation")
    layernorm: bool = Field(default=False, description="layer norm before each activation")
    layernorm_affine: bool = Field(
        default=True,
        description="layer norm with learnt γ, β; false: the seed's (z − μ)/√(σ² + ε) alone",
    )
    input_batchnorm: bool = Field(
        default=False,
        description="batch norm of the inputs z⁽⁰⁾ (with γ, β), as in the seed's example",
    )

    def _norm(self) -> Norm | None:
        return "batchnorm" if self.batchnorm else "layernorm" if self.layernorm else None

    def _batch_stats(self) -> bool:
        return self.batchnorm or self.input_batchnorm

    @model_validator(mode="after")
    def _one_norm(self) -> MLPSpec:
        if self.batchnorm and self.layernorm:
            raise ValueError("batchnorm and layernorm are mutually exclusive")
        if not self.layernorm_affine and not self.layernorm:
            raise ValueError("layernorm_affine applies to layernorm: set layernorm to true")
        return self

    def steps_run_by_run(self, dtype: str) -> bool:
        """Whether a batch of these runs takes :mod:`engine.problems.mlp_step`'s compiled step
        when its runs draw the same minibatches: what
        :func:`~engine.problems.mlp_step.compiled_step_applies` asks of the network's kind (its
        sizes aside)."""
        plain = not (self.batchnorm or self.layernorm or self.input_batchnorm)
        one_layer = options(self, "hidden") == [self.hidden] and len(self.hidden) == 1
        relu = options(self, "activation") == ["relu"]
        return dtype == "float64" and plain and one_layer and relu and not self._regression()

    def _regression(self) -> bool:
        return DATASETS[self.dataset].regression

    def num_params(self) -> int:
        info = DATASETS[self.dataset]
        return max(
            count_params(
                info.n_features,
                h,
                info.n_outputs,
                self._norm(),
                input_norm=self.input_batchnorm,
                norm_affine=self.layernorm_affine,
            )
            for h in options(self, "hidden")
        )


# ----------------------------------------------------------------------------- factories


@PROBLEMS.register("linear_regression", LinearRegressionSpec)
def linear_regression(
    seeds: Sequence[int],
    dtype: np.dtype | type = np.float64,
    *,
    dataset: str = "diabetes",
    batch_size: int | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> SupervisedProblem:
    """Least-squares linear regression ``(1/n) Σ (xᵀw + b − y)²`` on standardised data.

    Convex; ``f_star`` is the least-squares optimum of the training set, in closed form.
    """
    data = prepare(dataset, split_seed, test_fraction)
    problem = SupervisedProblem(seeds, dtype, data, batch_size=batch_size)
    design = np.column_stack([data.X_train, np.ones(len(data.X_train))])
    coef, *_ = np.linalg.lstsq(design, data.y_train, rcond=None)
    problem.f_star = float(np.square(design @ coef - data.y_train).mean())
    return problem


@PROBLEMS.register("logistic_regression", LogisticRegressionSpec)
def logistic_regression(
    seeds: Sequence[int],
    dtype: np.dtype | type = np.float64,
    *,
    dataset: str = "digits",
    l2: float = 0.0,
    batch_size: int | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    n_samples: int | None = None,
    data_noise: float | None = None,
) -> SupervisedProblem:
    """Multinomial logistic regression: softmax cross-entropy of ``xᵀW + b``, plus ``(λ/2)‖W‖²``.

    Convex (strictly with ``λ > 0``); ``f_star`` unknown.
    """
    data = prepare(dataset, split_seed, test_fraction, n_samples, data_noise)
    return SupervisedProblem(seeds, dtype, data, l2=l2, batch_size=batch_size)


@PROBLEMS.register("mlp", MLPSpec)
def mlp(
    seeds: Sequence[int],
    dtype: np.dtype | type = np.float64,
    *,
    dataset: str = "digits",
    hidden: Sequence[int] = (64,),
    activation: Activation = "relu",
    batchnorm: bool = False,
    layernorm: bool = False,
    layernorm_affine: bool = True,
    input_batchnorm: bool = False,
    batch_size: int | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    n_samples: int | None = None,
    data_noise: float | None = None,
) -> SupervisedProblem:
    """Multilayer perceptron: softmax cross-entropy (classification) or squared error (diabetes).

    Hidden layers ``Linear → [batch norm | layer norm] → activation``, optionally after a batch
    norm of the inputs (``input_batchnorm``, the seed's normalised ``z⁽⁰⁾``); a layer norm without
    ``γ``, ``β`` with ``layernorm_affine = false``. torch's default ``nn.Linear`` initialisation
    from the run seed. Non-convex; ``f_star`` unknown.
    """
    if batchnorm and layernorm:
        raise ValueError("batchnorm and layernorm are mutually exclusive")
    norm: Norm | None = "batchnorm" if batchnorm else "layernorm" if layernorm else None
    data = prepare(dataset, split_seed, test_fraction, n_samples, data_noise)
    return SupervisedProblem(
        seeds,
        dtype,
        data,
        hidden=hidden,
        activation=activation,
        norm=norm,
        batch_size=batch_size,
        input_norm=input_batchnorm,
        norm_affine=layernorm_affine,
    )
