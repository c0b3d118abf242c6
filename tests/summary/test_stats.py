"""The statistical building blocks against hand computations and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.curves import band
from analysis.rankings import first_hits, performance_profile, target_ladder
from analysis.records import auc_log_subopt, flatten, unflatten
from analysis.stats import bootstrap_ci, describe, holm, paired_test, rank_biserial

INF = math.inf


def test_holm_matches_a_hand_computation() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.4]) == pytest.approx([0.8, None, 0.8])
    assert holm([0.3, 0.9]) == [0.6, 0.9]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # 2 · 0.6 capped at 1, carried up
    assert holm([]) == []


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12))
def test_holm_properties(pvalues: list[float]) -> None:
    adjusted = holm(pvalues)
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    assert all(p <= a <= 1.0 for p, a in zip(pvalues, adjusted, strict=True))
    sorted_adj = [adjusted[i] for i in order]
    assert sorted_adj == sorted(sorted_adj)  # monotone in the raw p-values
    smallest = order[0]
    assert adjusted[smallest] == pytest.approx(min(1.0, m * pvalues[smallest]))
    # Never more conservative than Bonferroni.
    assert all(a <= min(1.0, m * p) + 1e-15 for p, a in zip(pvalues, adjusted, strict=True))


def test_rank_biserial_by_hand() -> None:
    # |d| ranks 1, 2, 3, 4; T+ = 1 + 3 + 4 = 8, T− = 2 → (8 − 2) / 10
    assert rank_biserial([1.0, -2.0, 3.0, 4.0]) == pytest.approx(0.6)
    # ties share the average rank: 1.5, 1.5, 3 → T+ = 3 = T−
    assert rank_biserial([1.0, 1.0, -2.0]) == 0.0
    assert rank_biserial([0.0, -1.0, -5.0]) == -1.0  # zeros dropped
    assert rank_biserial([0.0, 0.0]) is None
    assert rank_biserial([INF, -1.0]) == pytest.approx((2 - 1) / 3)


def test_paired_test_is_the_exact_wilcoxon_over_common_seeds() -> None:
    group = {s: 10.0 + s for s in range(6)}
    base = {s: 10.0 + s - (s + 1) * 0.5 for s in range(6)} | {99: 1.0}
    out = paired_test(group, base)
    # six positive differences: exact two-sided p = 2 / 2^6
    assert out["n_pairs"] == 6
    assert out["p_value"] == pytest.approx(2 / 64)
    assert out["statistic"] == 0.0
    assert out["effect"] == 1.0
    assert out["median_diff"] == pytest.approx(1.75)


def test_paired_test_ranks_a_missing_value_as_the_worst() -> None:
    group = {0: 1.0, 1: None, 2: 3.0, 3: 2.5}
    base = {0: 2.0, 1: 5.0, 2: 1.0, 3: 2.0}
    out = paired_test(group, base)
    # differences −1, +∞, +2, +0.5; the ∞ is the largest magnitude
    expected = stats.wilcoxon([-1.0, 10.0, 2.0, 0.5])
    assert out["p_value"] == pytest.approx(float(expected.pvalue))
    assert out["statistic"] == pytest.approx(float(expected.statistic))
    assert out["effect"] == pytest.approx((4 + 3 + 1 - 2) / 10)
    both_missing = paired_test({0: None, 1: 2.0}, {0: None, 1: 2.0})
    assert both_missing["n_pairs"] == 1 and both_missing["p_value"] == 1.0
    assert both_missing["effect"] is None


def test_bootstrap_ci_is_deterministic_and_contains_the_mean() -> None:
    x = [0.3, 0.1, 0.7, 0.2, 0.45]
    ci = bootstrap_ci(x)
    assert ci is not None
    assert ci == bootstrap_ci(x)
    assert min(x) <= ci[0] < np.mean(x) < ci[1] <= max(x)
    assert bootstrap_ci([4.0]) is None
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=8))
def test_bootstrap_ci_brackets_the_mean(values: list[float]) -> None:
    ci = bootstrap_ci(values)
    assert ci is not None
    mean = float(np.mean(values))
    tol = 1e-9 * max(1.0, max(abs(v) for v in values))
    assert min(values) - tol <= ci[0] <= mean + tol
    assert mean - tol <= ci[1] <= max(values) + tol


def test_describe_by_hand() -> None:
    d = describe([1.0, 2.0, None, 3.0, 4.0])
    assert (d["n"], d["n_missing"]) == (4, 1)
    assert d["mean"] == 2.5 and d["median"] == 2.5
    assert (d["q25"], d["q75"], d["iqr"]) == (1.75, 3.25, 1.5)
    assert (d["min"], d["max"]) == (1.0, 4.0)
    assert d["ci_low"] <= 2.5 <= d["ci_high"]
    empty = describe([None, None])
    assert empty["n"] == 0 and empty["mean"] is None and empty["ci_low"] is None


def test_performance_profile_of_a_tiny_table_by_hand() -> None:
    costs = np.array([[1.0, 2.0, INF], [4.0, 2.0, 8.0], [3.0, 3.0, 6.0]])
    # ratios: [1, 2, ∞], [2, 1, 4], [1, 1, 2]
    taus, rho, scores = performance_profile(costs)
    assert taus == [1.0, 2.0, 4.0]
    assert rho[0] == pytest.approx([2 / 3, 1.0, 1.0])
    assert rho[1] == pytest.approx([2 / 3, 1.0, 1.0])
    assert rho[2] == pytest.approx([0.0, 1 / 3, 2 / 3])
    # ∫_1^4 ρ dτ / 3: A = (2/3·1 + 1·2) / 3, C = (0·1 + 1/3·2) / 3
    assert scores == pytest.approx([8 / 9, 8 / 9, 2 / 9])


def test_an_instance_nobody_solves_stays_in_the_denominator() -> None:
    costs = np.array([[1.0, 2.0], [INF, INF]])
    taus, rho, scores = performance_profile(costs)
    assert taus == [1.0, 2.0]
    assert rho == [[0.5, 0.5], [0.0, 0.5]]
    assert scores == pytest.approx([0.5, (4 - 2) / (2 * 3)])


def test_auc_of_log_suboptimality_by_hand() -> None:
    # log10 subopt = 2, 1, 0 → trapezoid 1.5 + 0.5 = 2 over 2 steps
    assert auc_log_subopt([0, 1, 2], [100.0, 10.0, 1.0], 0.0) == pytest.approx(1.0)
    assert auc_log_subopt([0, 1, 2], [101.0, 11.0, 2.0], 1.0) == pytest.approx(1.0)
    assert auc_log_subopt([0, 10], [1.0, 0.0], None) == pytest.approx((0 - 16) / 2)
    assert auc_log_subopt([0, 1], [1.0, None], 0.0) is None
    assert auc_log_subopt([5], [1000.0], 0.0) == pytest.approx(3.0)
    assert auc_log_subopt([], [], 0.0) is None


def test_first_hits_and_the_target_ladder() -> None:
    hits = first_hits([0, 10, 20, 30], [5.0, 3.0, 4.0, 1.0], np.array([4.0, 3.5, 2.0, 0.5]))
    assert hits.tolist() == [10.0, 10.0, 30.0, INF]
    assert first_hits([0, 1, 2], [5.0, None, 1.0], np.array([2.0])).tolist() == [2.0]
    ladder = target_ladder([100.0, 10.0], [1e-2, 1.0], 4)
    np.testing.assert_allclose(ladder, [10.0, 1.0, 0.1, 0.01])
    np.testing.assert_allclose(target_ladder([1.0], [0.0], 1), [1e-16])


def test_band_mean_and_envelope_across_runs() -> None:
    xs = [[0, 1, 2, 3], [0, 1, 2]]
    ys: list[list[float | None]] = [[4.0, 3.0, 2.0, 1.0], [2.0, 1.0, None]]
    b = band(xs, ys, max_points=10)
    assert b["x"] == [0, 1, 2, 3]
    assert b["mean"] == [3.0, 2.0, 2.0, 1.0]
    assert b["lo"] == [2.0, 1.0, 2.0, 1.0]
    assert b["hi"] == [4.0, 3.0, 2.0, 1.0]
    assert b["n"] == [2, 2, 1, 1]
    coarse = band(xs, ys, max_points=2)
    # buckets {0} and {1, 2, 3}: the point is the bucket's last, the band its envelope
    assert coarse["x"] == [0, 3]
    assert coarse["mean"] == [3.0, 1.0]
    assert coarse["lo"] == [2.0, 1.0] and coarse["hi"] == [4.0, 3.0]


def test_flatten_and_unflatten_are_inverse() -> None:
    spec = {"name": "warmup", "steps": 5, "inner": {"name": "step", "gamma": 0.5}, "m": [1, 2]}
    flat = flatten(spec, "schedule.")
    assert flat == {
        "schedule.name": "warmup",
        "schedule.steps": 5,
        "schedule.inner.name": "step",
        "schedule.inner.gamma": 0.5,
        "schedule.m": [1, 2],
    }
    assert unflatten(flat, ["schedule"]) == {"schedule": spec}
