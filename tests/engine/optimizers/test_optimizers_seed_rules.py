"""The seed document's rules (no PyTorch counterpart) and Lion: hand-computed first steps, and
hypothesis properties pinning each defining formula against a literal transcription of it.

The literal transcriptions below keep every past gradient and update in a list and evaluate the
formulas term by term, the way the seed writes them; the kernels keep O(1) state per step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.optimizers import build_optimizer
from engine.optimizers.window import WindowStep, window_state


def run(
    spec: dict[str, Any], grads: list[np.ndarray], lrs: list[float], x0: np.ndarray | None = None
) -> np.ndarray:
    """Parameters after each update when the gradients are a fixed sequence (one run)."""
    opt = build_optimizer(spec)
    x = np.zeros((1, grads[0].size)) if x0 is None else np.array(x0, dtype=np.float64)[None]
    state = opt.init(x)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        opt.update_(np.asarray(g, dtype=np.float64)[None], state, x, lr)
        out.append(x[0].copy())
    return np.array(out)


def updates(trajectory: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
    start = np.zeros(trajectory.shape[1]) if x0 is None else np.asarray(x0, dtype=np.float64)
    return np.diff(np.vstack([start, trajectory]), axis=0)


# --- literal transcriptions of the seed's formulas ----------------------------------------------


def literal_delta_rule(grads: list[np.ndarray], lrs: list[float], alpha: float) -> np.ndarray:
    """ΔW(t) = -Σ_k α^k·η_(t-k)·G(t-k), the delta rule unrolled."""
    return np.array(
        [
            -sum(alpha**k * lrs[t - k] * grads[t - k] for k in range(t + 1))
            for t in range(len(grads))
        ]
    )


def literal_sgd_momentum(grads: list[np.ndarray], lrs: list[float], mu: float) -> np.ndarray:
    """PyTorch's SGD momentum unrolled: ΔW(t) = -η_t·Σ_k μ^k·G(t-k)."""
    return np.array(
        [-lrs[t] * sum(mu**k * grads[t - k] for k in range(t + 1)) for t in range(len(grads))]
    )


def window_mean(values: list[np.ndarray], length: int) -> np.ndarray:
    """Mean of the last ``length`` values (of all of them while fewer exist)."""
    recent = values[-length:]
    return sum(recent) / len(recent)


def literal_rmsprop_window(
    grads: list[np.ndarray], lrs: list[float], rho: float, length: int, eps: float
) -> np.ndarray:
    """ΔW(t) = -η·G(t)/(ε + √r(t)), r(t) = ρ·mean_L(G²) + (1-ρ)·G²(t)."""
    out = []
    for t, g in enumerate(grads):
        squares = [x * x for x in grads[: t + 1]]
        r = rho * window_mean(squares, length) + (1 - rho) * g * g
        out.append(-lrs[t] * g / (eps + np.sqrt(r)))
    return np.array(out)


def literal_adadelta_window(
    grads: list[np.ndarray],
    lrs: list[float],
    rho1: float,
    rho2: float,
    length: int,
    eps: float,
) -> np.ndarray:
    """ΔW(t) = -lr·√(q(t-1) + ε)/(ε + √r(t))·G(t) with the seed's windowed r and q:
    q(t-1) = ρ2·(1/min(t, L))·Σ_(k=2..L) ΔW²(t-k) + (1-ρ2)·ΔW²(t-1), q(-1) = 0."""
    out: list[np.ndarray] = []
    for t, g in enumerate(grads):
        squares = [x * x for x in grads[: t + 1]]
        r = rho1 * window_mean(squares, length) + (1 - rho1) * g * g
        q = np.zeros_like(g)
        if t > 0:
            older = [out[t - k] ** 2 for k in range(2, length + 1) if t - k >= 0]
            q = rho2 * sum(older, np.zeros_like(g)) / min(t, length) + (1 - rho2) * out[t - 1] ** 2
        out.append(-lrs[t] * np.sqrt(q + eps) / (eps + np.sqrt(r)) * g)
    return np.array(out)


# --- the generalized delta rule against SGD momentum -------------------------------------------


def test_delta_rule_and_sgd_hand_computed() -> None:
    # G(0) = (1, -2) at η = 0.1, G(1) = (0.5, 0.5) at η = 0.2, α = μ = 0.9, W(0) = 0.
    grads = [np.array([1.0, -2.0]), np.array([0.5, 0.5])]
    # Delta rule: ΔW(0) = -0.1·G(0) = (-0.1, 0.2); ΔW(1) = -0.2·G(1) + 0.9·ΔW(0) = (-0.19, 0.08).
    delta = run({"name": "delta_rule", "momentum": 0.9}, grads, [0.1, 0.2])
    np.testing.assert_allclose(delta, [[-0.1, 0.2], [-0.29, 0.28]], rtol=1e-15)
    # SGD: b(0) = G(0), W(1) = (-0.1, 0.2); b(1) = 0.9·b(0) + G(1) = (1.4, -1.3),
    # W(2) = W(1) - 0.2·b(1).
    sgd = run({"name": "sgd", "momentum": 0.9}, grads, [0.1, 0.2])
    np.testing.assert_allclose(sgd, [[-0.1, 0.2], [-0.38, 0.46]], rtol=1e-15)


SEQUENCES = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.lists(st.floats(-10, 10), min_size=3, max_size=3).map(np.array),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.floats(1e-4, 1.0), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(seq=SEQUENCES, alpha=st.floats(0.0, 0.99))
def test_delta_rule_unrolls_to_the_seed_sum(
    seq: tuple[list[np.ndarray], list[float]], alpha: float
) -> None:
    grads, lrs = seq
    ours = updates(run({"name": "delta_rule", "momentum": alpha}, grads, lrs))
    np.testing.assert_allclose(ours, literal_delta_rule(grads, lrs, alpha), rtol=1e-9, atol=1e-12)
    constant = [lrs[0]] * len(grads)
    ours = updates(run({"name": "delta_rule", "momentum": alpha}, grads, constant))
    # Constant η: W(t+1) = W(t) - η·Σ_k α^k·G(t-k).
    expected = [
        -lrs[0] * sum(alpha**k * grads[t - k] for k in range(t + 1)) for t in range(len(grads))
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(seq=SEQUENCES, mu=st.floats(0.0, 0.99))
def test_delta_rule_and_sgd_agree_for_a_constant_rate_only(
    seq: tuple[list[np.ndarray], list[float]], mu: float
) -> None:
    grads, lrs = seq
    constant = [lrs[0]] * len(grads)
    delta = run({"name": "delta_rule", "momentum": mu}, grads, constant)
    sgd = run({"name": "sgd", "momentum": mu}, grads, constant)
    np.testing.assert_allclose(delta, sgd, rtol=1e-9, atol=1e-12)
    # With a changing rate each follows its own unrolled form.
    ours = updates(run({"name": "sgd", "momentum": mu}, grads, lrs))
    np.testing.assert_allclose(ours, literal_sgd_momentum(grads, lrs, mu), rtol=1e-9, atol=1e-12)


def test_a_changing_rate_separates_the_delta_rule_from_sgd() -> None:
    grads = [np.array([1.0, -1.0, 0.5])] * 20
    lrs = [0.1 if t < 10 else 0.01 for t in range(20)]
    delta = updates(run({"name": "delta_rule", "momentum": 0.9}, grads, lrs))
    sgd = updates(run({"name": "sgd", "momentum": 0.9}, grads, lrs))
    np.testing.assert_allclose(delta[:10], sgd[:10], rtol=1e-12)
    # After the drop SGD rescales its whole velocity at once; the delta rule's past steps keep
    # their rate and decay geometrically: at t = 10 it still moves 0.9·ΔW(9) + 0.01·G.
    np.testing.assert_allclose(sgd[10], -0.01 * sum(0.9**k for k in range(11)) * grads[0])
    np.testing.assert_allclose(delta[10], 0.9 * delta[9] - 0.01 * grads[0])
    assert np.all(np.abs(delta[10]) > 5 * np.abs(sgd[10]))


# --- windowed RMSprop ---------------------------------------------------------------------------


def test_rmsprop_window_hand_computed() -> None:
    # L = 2, ρ = 0.5, ε = 0.5, η = 1; G = 2, 4, -1.
    spec = {"name": "rmsprop_window", "lr": 1.0, "rho": 0.5, "window": 2, "eps": 0.5}
    ours = updates(run(spec, [np.array([2.0]), np.array([4.0]), np.array([-1.0])], [1.0] * 3))
    expected = [
        -2.0 / (0.5 + 2.0),  # r = 0.5·4 + 0.5·4 = 4 (mean over the one square seen)
        -4.0 / (0.5 + math.sqrt(13.0)),  # r = 0.5·(4+16)/2 + 0.5·16 = 13
        1.0 / (0.5 + math.sqrt(4.75)),  # r = 0.5·(16+1)/2 + 0.5·1 = 4.75: G=2 left the window
    ]
    np.testing.assert_allclose(ours[:, 0], expected, rtol=1e-15)


WINDOWED = st.integers(1, 25).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.lists(
                st.floats(-10, 10).filter(lambda v: v == 0 or abs(v) > 1e-3),
                min_size=3,
                max_size=3,
            ).map(np.array),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.floats(1e-3, 1.0), min_size=n, max_size=n),
    )
)


@settings(max_examples=80, deadline=None)
@given(
    seq=WINDOWED,
    rho=st.floats(0.0, 0.99),
    length=st.integers(1, 6),
    eps=st.floats(1e-8, 1.0),
)
def test_rmsprop_window_is_the_seed_formula(
    seq: tuple[list[np.ndarray], list[float]], rho: float, length: int, eps: float
) -> None:
    grads, lrs = seq
    spec = {"name": "rmsprop_window", "rho": rho, "window": length, "eps": eps}
    ours = updates(run(spec, grads, lrs))
    expected = literal_rmsprop_window(grads, lrs, rho, length, eps)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seq=WINDOWED, rho=st.floats(0.0, 0.99), length=st.integers(1, 6), eps=st.floats(1e-8, 1.0))
def test_rmsprop_window_degenerates_to_a_normalised_step(
    seq: tuple[list[np.ndarray], list[float]], rho: float, length: int, eps: float
) -> None:
    """L = 1 (any ρ), or ρ = 0 (any L): r = G², so ΔW = -η·G/(ε + |G|) — memoryless."""
    grads, lrs = seq
    expected = [-lr * g / (eps + np.abs(g)) for g, lr in zip(grads, lrs, strict=True)]
    one = updates(run({"name": "rmsprop_window", "rho": rho, "window": 1, "eps": eps}, grads, lrs))
    np.testing.assert_allclose(one, expected, rtol=1e-13, atol=1e-15)
    flat = updates(
        run({"name": "rmsprop_window", "rho": 0.0, "window": length, "eps": eps}, grads, lrs)
    )
    np.testing.assert_allclose(flat, expected, rtol=1e-13, atol=1e-15)


# --- windowed AdaDelta --------------------------------------------------------------------------


def test_adadelta_window_hand_computed() -> None:
    # L = 2, ρ1 = ρ2 = 0.5, ε = 0.01 (√ε = 0.1), lr = 1; G = 2, 4, -1, 3.
    spec = {"name": "adadelta_window", "rho1": 0.5, "rho2": 0.5, "window": 2, "eps": 0.01}
    grads = [np.array([v]) for v in (2.0, 4.0, -1.0, 3.0)]
    ours = updates(run(spec, grads, [1.0] * 4))[:, 0]
    d0 = -0.1 / 2.01 * 2.0  # q(-1) = 0; r = 4, ε + √r = 2.01
    d1 = -math.sqrt(0.5 * d0**2 + 0.01) / (0.01 + math.sqrt(13.0)) * 4.0  # q(0) = ½·ΔW(0)²; r = 13
    # q(1) = ½·ΔW(0)²/2 + ½·ΔW(1)²; r = 0.5·(16+1)/2 + 0.5·1 = 4.75
    d2 = -math.sqrt(0.25 * d0**2 + 0.5 * d1**2 + 0.01) / (0.01 + math.sqrt(4.75)) * -1.0
    # q(2) = ½·ΔW(1)²/2 + ½·ΔW(2)² (ΔW(0) left the window); r = 0.5·(1+9)/2 + 0.5·9 = 7
    d3 = -math.sqrt(0.25 * d1**2 + 0.5 * d2**2 + 0.01) / (0.01 + math.sqrt(7.0)) * 3.0
    np.testing.assert_allclose(ours, [d0, d1, d2, d3], rtol=1e-15)
    assert d0 == pytest.approx(-0.0995024875621890)


@settings(max_examples=80, deadline=None)
@given(
    seq=WINDOWED,
    rho1=st.floats(0.0, 0.99),
    rho2=st.floats(0.0, 0.99),
    length=st.integers(1, 6),
    eps=st.floats(1e-8, 1.0),
)
def test_adadelta_window_is_the_seed_formula(
    seq: tuple[list[np.ndarray], list[float]], rho1: float, rho2: float, length: int, eps: float
) -> None:
    grads, lrs = seq
    spec = {"name": "adadelta_window", "rho1": rho1, "rho2": rho2, "window": length, "eps": eps}
    ours = updates(run(spec, grads, lrs))
    expected = literal_adadelta_window(grads, lrs, rho1, rho2, length, eps)
    np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-15)


# --- the exact window sum -----------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 7])
def test_window_sum_stays_exact_while_items_shrink(length: int) -> None:
    """Items falling by 12 orders of magnitude: each window sum keeps full relative accuracy,
    where adding the new item and subtracting the leaving one would keep the old items' error."""
    x = np.zeros((1, 1))
    state = window_state(x, "w", length)
    items = [10.0 ** (-t / 8) * (1.0 + 0.3 * math.sin(t)) for t in range(100)]
    out = np.empty((1, 1))
    for t, item in enumerate(items):
        step = WindowStep(state, "w")
        assert step.count_before == min(t, length)
        step.slot(slice(0, 1))[...] = item
        step.push(slice(0, 1))
        total = step.total(slice(0, 1), out, pushed=True)[0, 0]
        step.finish(state)
        window = items[max(0, t + 1 - length) : t + 1]
        assert step.count_after == len(window)
        assert total == pytest.approx(math.fsum(window), rel=4e-16 * length)
        before = WindowStep(state, "w").total(slice(0, 1), out, pushed=False)[0, 0]
        assert before == pytest.approx(math.fsum(window), rel=4e-16 * length)


# --- Lion ---------------------------------------------------------------------------------------


def test_lion_hand_computed() -> None:
    # lr = 0.1, β = (0.9, 0.99), weight_decay = 0.5 (each step first scales p by 1 - 0.05).
    spec = {"name": "lion", "lr": 0.1, "betas": [0.9, 0.99], "weight_decay": 0.5}
    x0 = np.array([1.0, -1.0, 0.5])
    grads = [np.array([0.2, -3.0, 0.0]), np.array([-0.1, -1.0, 1.0])]
    ours = run(spec, grads, [0.1, 0.1], x0)
    # Step 1: m = 0, c = 0.1·G = (0.02, -0.3, 0), sign (1, -1, 0); m = 0.01·G = (0.002, -0.03, 0).
    # Step 2: c = 0.9·m + 0.1·G = (-0.0082, -0.127, 0.1), sign (-1, -1, 1).
    np.testing.assert_allclose(ours, [[0.85, -0.85, 0.475], [0.9075, -0.7075, 0.35125]], rtol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seq=WINDOWED, b1=st.floats(0.0, 0.99), b2=st.floats(0.0, 0.999))
def test_lion_moves_every_coordinate_by_lr_or_not_at_all(
    seq: tuple[list[np.ndarray], list[float]], b1: float, b2: float
) -> None:
    grads, lrs = seq
    steps = np.abs(updates(run({"name": "lion", "betas": [b1, b2]}, grads, lrs)))
    lr = np.array(lrs)[:, None]
    assert np.all(np.isclose(steps, lr, rtol=1e-12) | (steps == 0))
