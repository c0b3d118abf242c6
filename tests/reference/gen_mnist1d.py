"""Write ``engine/data/mnist1d.npz``: MNIST-1D as the ``mnist1d`` package generates it.

Run once (``python tests/reference/gen_mnist1d.py``) with the ``mnist1d`` package installed (the
``bench`` extra); the engine never imports it. The procedure is the package's
``make_dataset(get_dataset_args())`` with its default arguments (5000 examples of 40 samples,
10 classes, seed 42): each digit's 12-point template is padded, dilated, scaled, translated,
given correlated and i.i.d. noise, sheared and resampled to 40 points, and the set is centred
and scaled to unit standard deviation. The file keeps the package's order (its own split puts the
first 4000 examples in training); ``X`` is stored as float32 (what the file's size allows; the
engine reads it as float64), ``y`` as uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset

OUT = Path(__file__).resolve().parents[2] / "engine" / "data" / "mnist1d.npz"


def generate() -> tuple[np.ndarray, np.ndarray]:
    """``(X (5000, 40) float64, y (5000,) int64)`` from the package's procedure."""
    data = make_dataset(get_dataset_args())
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return X, y


def main() -> None:
    X, y = generate()
    np.savez_compressed(OUT, X=X.astype(np.float32), y=y.astype(np.uint8))
    print(f"mnist1d: X {X.shape}, y {y.shape} -> {OUT.stat().st_size} B")


if __name__ == "__main__":
    main()
