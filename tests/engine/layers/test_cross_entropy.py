"""The compiled softmax cross-entropy equals the NumPy expression it replaces bit for bit (loss
and gradient, both dtypes, shared and per-run targets, NaN/±inf/±0 among the outputs), and its
gradient matches central differences."""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers import cross_entropy
from tests.numeric import central_diff


def numpy_form(
    out: np.ndarray, target: np.ndarray, grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The NumPy passes the network used before the kernels (the reference)."""
    B = out.shape[2]
    out -= out.max(axis=1, keepdims=True)
    picked = np.einsum("cb,rcb->rb" if target.ndim == 2 else "rcb,rcb->rb", target, out)
    np.exp(out, out=out)
    total = out.sum(axis=1)
    loss = (np.log(total) - picked).mean(axis=1)
    if not grad:
        return loss, None
    out /= total[:, None, :]
    out -= target
    out *= 1.0 / B
    return loss, out


def one_hot(labels: np.ndarray, classes: int, dtype: type) -> np.ndarray:
    """``(…, C, B)`` one-hot of labels ``(…, B)``."""
    return (labels[..., None, :] == np.arange(classes)[:, None]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-target", "per-run-target"])
def test_equals_the_numpy_form_bit_for_bit(dtype: type, shared: bool) -> None:
    rng = np.random.default_rng(0)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    for trial in range(40):
        R, C, B = int(rng.integers(1, 6)), int(rng.integers(2, 12)), int(rng.integers(1, 300))
        out = (rng.normal(size=(R, C, B)) * 10 ** rng.uniform(-3, 3)).astype(dtype)
        if trial % 4 == 0:
            flat = out.reshape(-1)
            flat[rng.choice(flat.size, min(3, flat.size), replace=False)] = specials[:3]
            flat[rng.choice(flat.size, min(2, flat.size), replace=False)] = specials[3:]
        labels = rng.integers(0, C, size=B if shared else (R, B))
        target = one_hot(labels, C, dtype)
        for grad in (False, True):
            ours, ref = out.copy(), out.copy()
            with np.errstate(all="ignore"):
                loss, _ = cross_entropy.loss_and_gradient(ours, target, grad=grad)
                ref_loss, _ = numpy_form(ref, target, grad)
            assert loss.dtype == ref_loss.dtype == dtype
            assert loss.tobytes() == ref_loss.tobytes()  # NaN payloads and signs included
            assert ours.tobytes() == ref.tobytes()


def test_gradient_matches_central_differences() -> None:
    rng = np.random.default_rng(1)
    out = rng.normal(size=(2, 4, 7))
    target = one_hot(rng.integers(0, 4, size=7), 4, np.float64)
    _, grad = cross_entropy.loss_and_gradient(out.copy(), target, grad=True)
    assert grad is not None

    def total_loss() -> float:  # the runs' losses summed: row r's gradient is its own
        return float(cross_entropy.loss_and_gradient(out.copy(), target, grad=False)[0].sum())

    np.testing.assert_allclose(grad, central_diff(total_loss, out), rtol=1e-6, atol=1e-9)
