"""The statistical building blocks against hand computations and properties."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from analysis.compare import average_ranks, holm, paired_test, paired_tests, rank_biserial
from analysis.curves import band
from analysis.groups import Group
from analysis.rankings import (
    IN_ORDER_SUM,
    TAU_MAX,
    _profile,
    coco_targets,
    first_hits,
    hits_many,
    initial_loss,
    performance_profile,
)
from analysis.records import (
    auc_log_subopt,
    auc_many,
    canonical,
    flatten,
    outcome,
    outcomes,
    unflatten,
)
from analysis.stats import _is_deterministic, describe, describe_many, fill_deterministic
from engine.problems import build_problem
from engine.runner import run_batch
from engine.spec import RunSpec

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


@given(
    st.lists(
        st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e300, INF]) | st.floats(-1e3, 1e3),
        min_size=1,
        max_size=12,
    )
)
def test_average_ranks_equal_scipys(values: list[float]) -> None:
    x = np.asarray(values)
    assert np.array_equal(average_ranks(x), stats.rankdata(x))


def test_rank_biserial_by_hand() -> None:
    # |d| ranks 1, 2, 3, 4; T+ = 1 + 3 + 4 = 8, T− = 2 → (8 − 2) / 10
    assert rank_biserial([1.0, -2.0, 3.0, 4.0]) == pytest.approx(0.6)
    # ties share the average rank: 1.5, 1.5, 3 → T+ = 3 = T−
    assert rank_biserial([1.0, 1.0, -2.0]) == 0.0
    assert rank_biserial([0.0, -1.0, -5.0]) == -1.0  # zeros dropped
    assert math.isnan(rank_biserial([math.nan, math.nan]))  # no sign to count
    assert rank_biserial([0.0, 0.0]) is None
    assert rank_biserial([INF, -1.0]) == pytest.approx((2 - 1) / 3)


def test_paired_test_is_wilcoxon_from_six_pairs_over_common_seeds() -> None:
    group = {s: 10.0 + s for s in range(6)}
    base = {s: 10.0 + s - (s + 1) * 0.5 for s in range(6)} | {99: 1.0}
    out = paired_test(group, base)
    # six positive differences: exact two-sided p = 2 / 2^6
    assert out["n_pairs"] == 6 and out["test"] == "wilcoxon signed-rank"
    assert out["p_value"] == pytest.approx(2 / 64)
    assert out["statistic"] == 0.0
    assert out["effect"] == 1.0
    assert out["median_diff"] == pytest.approx(1.75)


def test_below_six_pairs_the_test_is_the_exact_sign_flip() -> None:
    # differences +1, −2, +3, +4 (ties none): enumerate the 16 sign patterns by hand
    diffs = [1.0, -2.0, 3.0, 4.0]
    ranks = [1, 2, 3, 4]
    observed = abs(sum(r if d > 0 else -r for d, r in zip(diffs, ranks, strict=True)))
    patterns = [
        abs(sum(r * (1 if (mask >> i) & 1 else -1) for i, r in enumerate(ranks)))
        for mask in range(16)
    ]
    expected = sum(s >= observed for s in patterns) / 16
    out = paired_test(dict(enumerate(diffs)), dict.fromkeys(range(4), 0.0))
    assert out["test"] == "exact sign-flip (signed ranks)"
    assert out["p_value"] == pytest.approx(expected)
    # with ties (|d| = 1, 1, 2) the exact test still enumerates: 8 patterns
    tied = paired_test({0: 1.0, 1: -1.0, 2: 2.0}, dict.fromkeys(range(3), 0.0))
    ranks_t = [1.5, 1.5, 3.0]
    obs_t = abs(1.5 - 1.5 + 3.0)
    pats = [
        abs(sum(r * (1 if (m >> i) & 1 else -1) for i, r in enumerate(ranks_t))) for m in range(8)
    ]
    assert tied["p_value"] == pytest.approx(sum(s >= obs_t - 1e-12 for s in pats) / 8)


_outcome = st.none() | st.sampled_from([0.0, 1.0, 2.0, 1e300, INF, -INF]) | st.floats(-1e3, 1e3)
_by_seed = st.dictionaries(st.integers(0, 7), _outcome, max_size=8)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the median of ∞ and −∞
@given(st.lists(st.tuples(_by_seed, _by_seed), max_size=12), _by_seed)
def test_paired_tests_equal_paired_test_one_by_one(
    pairs: list[tuple[dict[int, float | None], dict[int, float | None]]],
    baseline: dict[int, float | None],
) -> None:
    """Bit for bit and key for key: many pairs sharing one baseline (as a sweep's comparisons
    do: their sign-flip tests batched per size) next to drawn pairs of every kind."""
    rng = np.random.default_rng(len(pairs))
    base = {s: float(v) for s, v in enumerate(rng.normal(size=5))}
    pairs += [({s: float(v) for s, v in enumerate(rng.normal(size=5))}, base) for _ in range(9)]
    pairs += [(group, baseline) for group, _ in pairs]
    got = paired_tests(pairs)
    assert json.dumps(got) == json.dumps([paired_test(g, b) for g, b in pairs])


def test_paired_test_ranks_a_failure_as_the_worst() -> None:
    group = {0: 1.0, 1: INF, 2: 3.0, 3: 2.5, 4: 0.0, 5: 7.0}
    base = {0: 2.0, 1: 5.0, 2: 1.0, 3: 2.0, 4: 0.0, 5: 6.0}
    out = paired_test(group, base)
    # differences −1, +∞, +2, +0.5, 0, +1; the ∞ is the largest magnitude, the zero dropped
    expected = stats.wilcoxon([-1.0, 10.0, 2.0, 0.5, 0.0, 1.0])
    assert out["p_value"] == pytest.approx(float(expected.pvalue))
    assert out["effect"] == pytest.approx((5 + 4 + 1 + 2.5 - 2.5) / 15)
    both_failed = paired_test({0: INF, 1: 2.0}, {0: INF, 1: 2.0})
    assert both_failed["n_pairs"] == 1 and both_failed["p_value"] == 1.0
    assert both_failed["effect"] is None
    pending = paired_test({0: None, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert pending["n_pairs"] == 1


def test_describe_by_hand() -> None:
    d = describe([1.0, 2.0, None, 3.0, 4.0], "final_loss")
    assert (d["n"], d["n_missing"], d["n_failed"]) == (4, 1, 0)
    assert d["mean"] == 2.5 and d["median"] == 2.5
    assert (d["q25"], d["q75"], d["iqr"]) == (1.75, 3.25, 1.5)
    assert (d["min"], d["max"]) == (1.0, 4.0)
    half = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2.5 - half, 2.5 + half))
    assert d["ci_method"] == "student-t"
    # n = 4: [min, max] covers 1 − 2/16 = 87.5 %, and that is said
    assert (d["median_ci_low"], d["median_ci_high"], d["median_ci_level"]) == (1.0, 4.0, 0.875)
    assert "87%" in d["note"] or "88%" in d["note"]
    assert d["success_rate"] == 1.0
    lo, hi = stats.binomtest(4, 4).proportion_ci(method="exact")
    assert (d["success_ci_low"], d["success_ci_high"]) == pytest.approx((lo, hi))
    empty = describe([None, None], "final_loss")
    assert empty["n"] == 0 and empty["mean"] is None and empty["ci_low"] is None


def test_describe_ranks_failures_worst_in_the_metric_direction() -> None:
    loss = describe([1.0, 2.0, INF, 3.0, INF], "final_loss")
    assert loss["mean"] is None and loss["ci_low"] is None and loss["n_failed"] == 2
    assert loss["median"] == 3.0 and loss["min"] == 1.0 and loss["max"] is None
    assert loss["q25"] == 2.0 and loss["q75"] is None  # the upper quartile is a failure
    assert loss["success_rate"] == pytest.approx(0.6)
    assert "2 of 5 runs failed" in loss["note"]
    acc = describe([0.9, 0.8, -INF, -INF, -INF], "test_accuracy")
    assert acc["median"] is None and acc["max"] == 0.9 and acc["min"] is None
    assert "the median is a failure" in acc["note"]
    single = describe([0.5], "final_loss")
    assert (
        single["mean"] == 0.5
        and single["ci_low"] is None
        and single["note"] == ("n = 1: no interval")
    )


def test_deterministic_values_give_a_point_interval() -> None:
    d = describe([2.0, 2.0, 2.0], "final_loss")
    assert (d["ci_low"], d["ci_high"]) == (2.0, 2.0)


def _profile_one_by_one(
    costs: dict[str, list[float]], bests: dict[str, list[float]], instances: int, tau_max: float
) -> tuple[list[float], dict[str, list[float]], dict[str, float]]:
    """The profile solver by solver (no thinning): sorted ratios, ρ by search, the score over
    the ratios below τ_max."""
    ratios = {
        sid: np.sort([c / b if math.isfinite(c) and math.isfinite(b) else INF for c, b in pair])
        for sid, pair in ((sid, zip(cs, bests[sid], strict=True)) for sid, cs in costs.items())
    }
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios.values()] or [np.empty(0)])
    taus = np.unique(np.concatenate([[1.0], finite[finite <= tau_max]]))
    rho = {
        sid: (np.searchsorted(r, taus, side="right") / instances).tolist()
        for sid, r in ratios.items()
    }
    scores = {
        sid: float(np.sum(tau_max - np.maximum(r[r < tau_max], 1.0)) / (instances * (tau_max - 1)))
        for sid, r in ratios.items()
    }
    return taus.tolist(), rho, scores


_cost = st.sampled_from([1.0, 2.0, 1e-8, INF]) | st.floats(1e-8, 1e3)


@given(st.integers(0, 12), st.lists(st.integers(0, 12), max_size=3), st.data())
def test_profile_equals_the_profile_solver_by_solver(
    size: int, other_sizes: list[int], data: st.DataObject
) -> None:
    """Bit for bit: rows of one size (≤ 8 ratios summed as a matrix, more one by one) and, with
    other sizes among them, the solver-by-solver path."""
    costs: dict[str, list[float]] = {}
    bests: dict[str, list[float]] = {}
    for k, n in enumerate([size] * 6 + other_sizes):
        costs[f"s{k}"] = data.draw(st.lists(_cost, min_size=n, max_size=n))
        bests[f"s{k}"] = [data.draw(st.sampled_from([c, c / 2, INF])) for c in costs[f"s{k}"]]
    got = _profile(costs, bests, 7, TAU_MAX, max_points=None)
    assert json.dumps(got) == json.dumps(_profile_one_by_one(costs, bests, 7, TAU_MAX))


@pytest.mark.parametrize("width", range(1, IN_ORDER_SUM + 1))
def test_numpy_adds_a_row_of_up_to_in_order_sum_values_left_to_right(width: int) -> None:
    """What the profile's scores rely on: a sum along the rows of a matrix, and the sum of a
    1-D array as long, add their values one after another."""
    x = np.random.default_rng(width).lognormal(0.0, 3.0, (200, width))
    in_order = []
    for row in x.tolist():
        total = row[0]
        for value in row[1:]:
            total += value
        in_order.append(total)
    assert x.sum(axis=1).tolist() == in_order
    assert [float(np.sum(row)) for row in x] == in_order


@pytest.mark.parametrize("instances", range(1, 13))
def test_profile_of_arbitrary_ratios_equals_the_profile_solver_by_solver(instances: int) -> None:
    """Bit for bit with ratios whose sums round (the drawn ones above are mostly 1 and 2): the
    rows of as many instances as one past :data:`IN_ORDER_SUM` are not summed as a matrix."""
    rng = np.random.default_rng(instances)
    costs = {f"s{k}": rng.lognormal(0.0, 1.0, instances).tolist() for k in range(8)}
    best = np.min(list(costs.values()), axis=0).tolist()
    bests = dict.fromkeys(costs, best)
    got = _profile(costs, bests, instances, TAU_MAX, max_points=None)
    assert json.dumps(got) == json.dumps(_profile_one_by_one(costs, bests, instances, TAU_MAX))


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


def test_first_hits_and_the_fixed_coco_targets() -> None:
    hits = first_hits([0, 10, 20, 30], [5.0, 3.0, 4.0, 1.0], np.array([4.0, 3.5, 2.0, 0.5]))
    assert hits.tolist() == [10.0, 10.0, 30.0, INF]
    assert first_hits([0, 1, 2], [5.0, None, 1.0], np.array([2.0])).tolist() == [2.0]
    known = coco_targets({"name": "rosenbrock", "dim": 2}, 0.0, 46)
    assert known is not None
    np.testing.assert_allclose(known[0], 10.0 ** np.arange(1.0, -8.01, -0.2))
    assert "10^k" in known[1]
    # f* unknown: relative to the initial loss of the seed-0 instance, computed here by hand
    problem = {"name": "mlp", "dataset": "iris", "hidden": [8], "batch_size": 16}
    spec = RunSpec.model_validate(
        {
            "problem": problem,
            "optimizer": {"name": "sgd", "lr": 0.1},
            "schedule": {"name": "constant"},
            "seed": 0,
            "steps": 1,
        }
    ).problem
    built = build_problem(spec, [0], np.float64)
    f0 = float(built.loss(built.init_params())[0])
    resolved = spec.model_dump(mode="json")
    assert initial_loss(canonical(resolved)) == pytest.approx(f0)
    relative = coco_targets(resolved, None, 4)
    assert relative is not None
    np.testing.assert_allclose(relative[0], f0 * 10.0 ** np.array([-2.0, -4.0, -6.0, -8.0]))


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


@given(
    st.lists(
        st.lists(
            st.none() | st.sampled_from([INF, 1.0, 0.1]) | st.floats(-1e6, 1e6),
            min_size=0,
            max_size=40,
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["final_loss", "test_accuracy"]),
)
def test_describe_many_equals_describe_one_by_one(
    samples: list[list[float | None]], metric: str
) -> None:
    if metric == "test_accuracy":  # failures of a higher-is-better metric are −inf
        samples = [[None if v is None else -v if math.isinf(v) else v for v in s] for s in samples]
    rng = np.random.default_rng(len(samples))
    # many samples of one size, as a sweep has, next to the drawn ones
    samples += [rng.lognormal(0.0, 2.0, 5).tolist() for _ in range(50)]
    assert describe_many(samples, metric) == [describe(s, metric) for s in samples]


@given(
    st.lists(
        st.lists(
            st.none()
            | st.sampled_from([0.0, -0.0, 1.0, 1e308, -1e308, INF, -INF])
            | st.floats(-1e6, 1e6),
            max_size=12,
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["final_loss", "test_accuracy"]),
)
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # ±1e308: both paths overflow alike
def test_describe_many_is_describe_bit_for_bit(
    samples: list[list[float | None]], metric: str
) -> None:
    """Every float's bits (the sign of a zero, an overflow to None) and every key's place."""
    rng = np.random.default_rng(len(samples))
    samples += [[*rng.lognormal(0.0, 2.0, 5).tolist(), None] for _ in range(20)]
    assert json.dumps(describe_many(samples, metric)) == json.dumps(
        [describe(s, metric) for s in samples]
    )


_record = st.fixed_dictionaries(
    {
        "spec": st.fixed_dictionaries({"target_loss": st.sampled_from([None, 0.0, 0.5])}),
        "status": st.sampled_from([None, "queued", "running", "succeeded", "failed", "cancelled"]),
    },
    optional={
        "diverged": st.sampled_from([None, False, True]),
        **{
            m: st.none() | st.booleans() | st.integers(-3, 3) | st.floats()
            for m in ("final_loss", "steps_to_target", "test_accuracy", "wall_time_s")
        },
    },
)


@given(
    st.lists(_record, max_size=12),
    st.sampled_from(["final_loss", "steps_to_target", "test_accuracy", "wall_time_s"]),
)
def test_outcomes_equal_outcome_one_by_one(records: list[dict[str, Any]], metric: str) -> None:
    got, want = outcomes(records, metric), [outcome(r, metric) for r in records]
    assert json.dumps(got) == json.dumps(want)
    assert json.dumps(want) == json.dumps([_outcome_as_documented(r, metric) for r in records])


def _outcome_as_documented(record: dict[str, Any], metric: str) -> float | None:
    """:func:`outcome`'s docstring, step by step: pending → None; failed (diverged, failed,
    cancelled) → the worst value; a set target never reached → the worst; else the finite value
    (a bool, NaN or ±inf is no value)."""
    if record["status"] in ("queued", "running"):
        return None
    worst = -INF if metric == "test_accuracy" else INF
    if record.get("diverged") or record["status"] in ("failed", "cancelled"):
        return worst
    value = record.get(metric)
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return worst if metric == "steps_to_target" and record["spec"]["target_loss"] else None
    return float(value)


_loss = st.one_of(
    st.floats(min_value=-1e3, max_value=1e6, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e-300]),
)


@st.composite
def _auc_run(draw: st.DrawFn) -> tuple[list[float], list[float | None] | np.ndarray, float | None]:
    n = draw(st.integers(min_value=1, max_value=6))
    gaps = draw(st.lists(st.integers(min_value=0, max_value=50), min_size=n - 1, max_size=n - 1))
    start = draw(st.integers(min_value=0, max_value=10))
    steps = np.cumsum([start, *gaps]).astype(float).tolist()
    losses = draw(st.lists(st.one_of(st.none(), _loss), min_size=n, max_size=n))
    f_star = draw(st.one_of(st.none(), st.floats(min_value=-10.0, max_value=10.0)))
    curve = draw(st.sampled_from(["list", "array"]))
    return steps, losses if curve == "list" else np.array(losses, dtype=float), f_star


@given(st.lists(_auc_run(), max_size=12))
def test_auc_many_equals_auc_one_by_one(
    runs: list[tuple[list[float], list[float | None] | np.ndarray, float | None]],
) -> None:
    """Batched AUCs equal the 1-D computation bit for bit: mixed sizes (rows stacked per size),
    non-finite losses, repeated steps and a single step."""
    got = auc_many(runs)
    want = [auc_log_subopt(x, y, f) for x, y, f in runs]
    assert [None if v is None else v.hex() for v in got] == [
        None if v is None else v.hex() for v in want
    ]


def test_auc_many_on_engine_curves() -> None:
    """Real loss curves (Adam on Rosenbrock, many seeds and learning rates) batched equal one by
    one."""
    specs = [
        RunSpec.model_validate(
            {
                "problem": {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0], "noise": 0.1},
                "optimizer": {"name": "adam", "lr": lr},
                "schedule": {"name": "constant"},
                "seed": seed,
                "steps": 60,
                "eval_every": 3,
            }
        )
        for lr in (1e-3, 1e-2, 1e-1, 3.0)
        for seed in range(3)
    ]
    runs = [(r["eval_steps"], r["losses"], r.get("f_star")) for r in run_batch(specs)]
    assert auc_many(runs) == [auc_log_subopt(*run) for run in runs]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_json)
def test_canonical_is_sorted_compact_json_dumps(value: object) -> None:
    """The shared encoder gives what ``json.dumps`` with the same options gives, call by call."""
    assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


@st.composite
def _hit_run(draw: st.DrawFn) -> tuple[np.ndarray, list[float | None] | np.ndarray]:
    n = draw(st.integers(min_value=0, max_value=6))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=9), min_size=n, max_size=n))
    values = draw(st.lists(st.one_of(st.none(), _loss), min_size=n, max_size=n))
    curve = draw(st.sampled_from(["list", "array"]))
    return np.cumsum(gaps).astype(np.int64), values if curve == "list" else np.array(
        values, dtype=float
    )


@given(
    st.lists(_hit_run(), max_size=12),
    st.lists(st.floats(min_value=-1e3, max_value=1e6), min_size=1, max_size=5),
)
def test_hits_many_equals_first_hits_one_by_one(
    runs: list[tuple[np.ndarray, list[float | None] | np.ndarray]], targets: list[float]
) -> None:
    """Batched runtimes equal the 1-D search, bit for bit: mixed lengths, non-finite and
    missing values, empty curves, repeated targets."""
    t = np.array(targets)
    got = hits_many(runs, t)
    want = [first_hits(x, y, t) for x, y in runs]
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@st.composite
def _det_group(draw: st.DrawFn) -> Group:
    """A group whose seeds repeat, perturb or drop a base curve (some pending or failed)."""
    n = draw(st.integers(min_value=1, max_value=4))
    base = draw(st.lists(st.one_of(_loss, st.just(math.nan)), min_size=n, max_size=n))
    records = []
    for seed in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(
            st.sampled_from(["same", "same", "other", "short", "none", "pending", "failed"])
        )
        curve: list[float] | None = list(base)
        if kind == "other":
            curve = draw(st.lists(st.one_of(_loss, st.just(math.nan)), min_size=n, max_size=n))
        elif kind == "short":
            curve = base[:-1]
        elif kind == "none":
            curve = None
        record: dict[str, Any] = {
            "spec": {"seed": seed},
            "status": {"pending": "queued", "failed": "failed"}.get(kind, "succeeded"),
            "final_loss": 1.0,
            "best_loss": 1.0,
        }
        if curve is not None:
            record["losses"] = np.array(curve) if draw(st.booleans()) else curve
        records.append(record)
    return Group("g", "p", "s", {}, {}, {}, records=records)  # type: ignore[arg-type]


@given(st.lists(_det_group(), max_size=8))
def test_fill_deterministic_equals_one_by_one(groups: list[Group]) -> None:
    fill_deterministic(groups)
    assert [g.memo["deterministic"] for g in groups] == [_is_deterministic(g) for g in groups]
