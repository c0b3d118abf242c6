"""The data sets of the learning problems: six small ones bundled as ``.npz`` files, and two
synthetic two-class sets in the plane generated from a seed.

Bundled sets (see ``README.md`` beside this file for sources and licences): ``digits``, ``iris``,
``wine``, ``breast_cancer``, ``mnist1d`` (classification) and ``diabetes`` (regression).
:data:`DATASETS` holds their shapes, so sizes are known without reading a file.

Synthetic sets, ``n`` points with isotropic Gaussian noise of standard deviation ``σ`` added to
each coordinate; the first ``⌊n/2⌋`` points carry label 0, the rest label 1:

- ``moons``: label 0 on the upper unit half-circle ``(cos t, sin t)``, label 1 on the shifted
  lower one ``(1 − cos t, ½ − sin t)``, ``t ~ U(0, π)``.
- ``spirals``: two interleaved Archimedean arms of 1.5 turns, ``r = s``, ``θ = 3πs + kπ`` for
  label ``k``, ``s ~ U(0, 1)``, point ``r (cos θ, sin θ)``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent

Bundled = Literal["digits", "iris", "wine", "breast_cancer", "mnist1d", "diabetes"]
Synthetic = Literal["spirals", "moons"]
Classification = Literal["digits", "iris", "wine", "breast_cancer", "mnist1d", "spirals", "moons"]
AnyDataset = Literal[
    "digits", "iris", "wine", "breast_cancer", "mnist1d", "diabetes", "spirals", "moons"
]


class DatasetInfo(NamedTuple):
    #: Features per example.
    n_features: int
    #: Classes of a classification set; 1 (the target) for regression.
    n_outputs: int
    regression: bool
    #: Examples in the bundled file; ``None`` for a synthetic set (the spec chooses).
    n_samples: int | None


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(64, 10, False, 1797),
    "iris": DatasetInfo(4, 3, False, 150),
    "wine": DatasetInfo(13, 3, False, 178),
    "breast_cancer": DatasetInfo(30, 2, False, 569),
    "mnist1d": DatasetInfo(40, 10, False, 5000),
    "diabetes": DatasetInfo(10, 1, True, 442),
    "spirals": DatasetInfo(2, 2, False, None),
    "moons": DatasetInfo(2, 2, False, None),
}
SYNTHETIC_DEFAULT_SAMPLES = 500
SYNTHETIC_DEFAULT_NOISE = 0.1


@cache
def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a bundled set: ``X`` float64 ``(n, d)``; ``y`` int64 labels or float64 target.

    The arrays are cached and read-only.
    """
    info = DATASETS[name]
    if info.n_samples is None:
        raise ValueError(f"{name!r} is synthetic: generate it with make_synthetic")
    with np.load(DATA_DIR / f"{name}.npz", allow_pickle=False) as archive:
        X = archive["X"].astype(np.float64)
        y = archive["y"].astype(np.float64 if info.regression else np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def make_moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half-circles (see the module docstring); ``(X (n, 2), y (n,))``."""
    n0 = n // 2
    t = rng.uniform(0.0, np.pi, size=n)
    X = np.empty((n, 2))
    X[:n0, 0] = np.cos(t[:n0])
    X[:n0, 1] = np.sin(t[:n0])
    X[n0:, 0] = 1.0 - np.cos(t[n0:])
    X[n0:, 1] = 0.5 - np.sin(t[n0:])
    X += noise * rng.standard_normal((n, 2))
    return X, _labels(n)


def make_spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spiral arms (see the module docstring); ``(X (n, 2), y (n,))``."""
    y = _labels(n)
    s = rng.uniform(0.0, 1.0, size=n)
    theta = 3.0 * np.pi * s + np.pi * y
    X = np.stack([s * np.cos(theta), s * np.sin(theta)], axis=1)
    X += noise * rng.standard_normal((n, 2))
    return X, y


def make_synthetic(
    name: str, n: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    makers = {"moons": make_moons, "spirals": make_spirals}
    return makers[name](n, noise, rng)


def _labels(n: int) -> np.ndarray:
    y = np.ones(n, dtype=np.int64)
    y[: n // 2] = 0
    return y
