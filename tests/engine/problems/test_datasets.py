"""Bundled and synthetic data sets, and the seeded, standardised train/test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.data import DATA_DIR, DATASETS, load_bundled, make_moons, make_spirals
from engine.problems.learning import prepare, split_sizes

BUNDLED = [name for name, info in DATASETS.items() if info.n_samples is not None]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_files_match_their_metadata(name: str) -> None:
    X, y = load_bundled(name)
    info = DATASETS[name]
    assert X.shape == (info.n_samples, info.n_features) and X.dtype == np.float64
    assert y.shape == (info.n_samples,)
    assert np.isfinite(X).all()
    if info.regression:
        assert y.dtype == np.float64 and y.min() >= 25 and y.max() <= 346
    else:
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(info.n_outputs))
    assert not X.flags.writeable
    assert name in (DATA_DIR / "README.md").read_text()


def test_known_contents() -> None:
    X, y = load_bundled("iris")
    np.testing.assert_array_equal(X[0], [5.1, 3.5, 1.4, 0.2])
    assert np.bincount(y).tolist() == [50, 50, 50]
    X, y = load_bundled("digits")
    assert X.min() == 0 and X.max() == 16 and np.bincount(y)[0] == 178
    assert np.bincount(load_bundled("wine")[1]).tolist() == [59, 71, 48]
    assert np.bincount(load_bundled("breast_cancer")[1]).tolist() == [212, 357]
    assert load_bundled("diabetes")[1][:3].tolist() == [151.0, 75.0, 141.0]


def test_bundled_files_equal_scikit_learns_copies() -> None:
    pytest.importorskip("sklearn")
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "reference" / "gen_datasets.py"
    spec = importlib.util.spec_from_file_location("gen_datasets", path)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, (X, y) in gen.sklearn_arrays().items():
        ours_X, ours_y = load_bundled(name)
        np.testing.assert_array_equal(ours_X, X)
        np.testing.assert_array_equal(ours_y, y)


def test_mnist1d_is_what_the_mnist1d_package_generates() -> None:
    X, y = load_bundled("mnist1d")
    assert np.bincount(y).tolist() == [500] * 10
    assert abs(X.mean()) < 1e-6 and abs(X.std() - 1.0) < 1e-6  # the package's normalisation
    pytest.importorskip("mnist1d")
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "reference" / "gen_mnist1d.py"
    spec = importlib.util.spec_from_file_location("gen_mnist1d", path)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh_X, fresh_y = gen.generate()
    np.testing.assert_array_equal(X, fresh_X.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(y, fresh_y)


def test_moons_geometry_without_noise() -> None:
    X, y = make_moons(101, 0.0, np.random.default_rng(0))
    assert X.shape == (101, 2) and y.tolist() == [0] * 50 + [1] * 51
    np.testing.assert_allclose(np.hypot(X[y == 0, 0], X[y == 0, 1]), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.hypot(X[y == 1, 0] - 1.0, X[y == 1, 1] - 0.5), 1.0, rtol=1e-14)
    assert (X[y == 0, 1] >= 0).all() and (X[y == 1, 1] <= 0.5).all()


def test_spirals_geometry_without_noise() -> None:
    X, y = make_spirals(200, 0.0, np.random.default_rng(0))
    r = np.hypot(X[:, 0], X[:, 1])
    theta = 3.0 * np.pi * r + np.pi * y  # θ = 3πs + kπ with r = s
    np.testing.assert_allclose(X[:, 0], r * np.cos(theta), atol=1e-12)
    np.testing.assert_allclose(X[:, 1], r * np.sin(theta), atol=1e-12)
    assert r.max() <= 1.0 and y.sum() == 100


def test_synthetic_data_is_seeded() -> None:
    a = make_spirals(50, 0.2, np.random.default_rng(3))
    b = make_spirals(50, 0.2, np.random.default_rng(3))
    c = make_spirals(50, 0.2, np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])


def test_split_sizes_round_half_up() -> None:
    assert split_sizes(150, 0.2) == (120, 30)
    assert split_sizes(5, 0.5) == (2, 3)
    assert split_sizes(10, 0.0) == (10, 0)


@pytest.mark.parametrize("name", ["wine", "diabetes", "moons"])
def test_split_is_seeded_disjoint_and_standardised(name: str) -> None:
    data = prepare(name, 0, 0.25)
    n = DATASETS[name].n_samples or 500
    n_train, n_test = split_sizes(n, 0.25)
    assert data.X_train.shape[0] == n_train and data.X_test.shape[0] == n_test
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, rtol=1e-12)
    assert not data.X_train.flags.writeable
    rows = {tuple(r) for r in data.X_train} | {tuple(r) for r in data.X_test}
    assert len(rows) == n  # no example in both parts, none lost
    if data.regression:
        assert abs(data.y_train.mean()) < 1e-12 and data.y_train.std() == pytest.approx(1.0)
    again = prepare.__wrapped__(name, 0, 0.25)  # recomputed, not the cached object
    np.testing.assert_array_equal(again.X_test, data.X_test)
    other = prepare(name, 1, 0.25)
    assert not np.array_equal(other.y_test, data.y_test) or not np.array_equal(
        other.X_test, data.X_test
    )


def test_constant_features_are_only_centred() -> None:
    data = prepare("digits", 0, 0.2)
    constant = data.X_train.std(axis=0) == 0.0
    assert constant.any()  # some border pixels are always blank
    assert (data.X_train[:, constant] == 0.0).all()
    assert np.isfinite(data.X_test).all()


def test_synthetic_options_rejected_for_bundled_sets() -> None:
    with pytest.raises(ValueError, match="synthetic"):
        prepare("iris", 0, 0.2, 100, None)
