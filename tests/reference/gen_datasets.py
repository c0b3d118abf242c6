"""Write the bundled data sets under ``engine/data/`` from the copies that scikit-learn ships.

Run once (``python tests/reference/gen_datasets.py``) with scikit-learn installed (the ``bench``
extra); the engine itself never imports scikit-learn. Each file is a compressed ``.npz`` with
``X`` (features, one row per example) and ``y`` (class labels, or the regression target), stored
losslessly: the digits' pixel counts (0..16) as ``uint8``, every other feature as ``float64``.
The diabetes set is written unscaled (``scaled=False``): the engine standardises features itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import datasets

DATA_DIR = Path(__file__).resolve().parents[2] / "engine" / "data"


def sklearn_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every bundled data set as scikit-learn returns it: ``{name: (X, y)}``."""
    return {
        "digits": datasets.load_digits(return_X_y=True),
        "iris": datasets.load_iris(return_X_y=True),
        "wine": datasets.load_wine(return_X_y=True),
        "breast_cancer": datasets.load_breast_cancer(return_X_y=True),
        "diabetes": datasets.load_diabetes(return_X_y=True, scaled=False),
    }


def stored_form(name: str, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The compact dtypes the files use; converting back to float64 / int64 is exact."""
    if name == "digits":
        assert np.array_equal(X, np.round(X)) and X.min() >= 0 and X.max() <= 255
        X = X.astype(np.uint8)
    if name != "diabetes":
        y = y.astype(np.uint8)
    return X, y


def main() -> None:
    for name, (X, y) in sklearn_arrays().items():
        Xs, ys = stored_form(name, X, y)
        np.savez_compressed(DATA_DIR / f"{name}.npz", X=Xs, y=ys)
        assert np.array_equal(Xs.astype(np.float64), X)
        assert np.array_equal(ys.astype(y.dtype), y)
        print(f"{name}: X {X.shape}, y {y.shape} -> {(DATA_DIR / f'{name}.npz').stat().st_size} B")


if __name__ == "__main__":
    main()
