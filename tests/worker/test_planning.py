"""Task planning: every run in exactly one chunk, equal batch keys together, cost caps kept."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from api.services.planning import plan_chunks
from engine.runner import batch_key, estimate_cost
from engine.spec import RunSpec, expand, parse_experiment


def pool() -> list[tuple[str, RunSpec]]:
    spec = parse_experiment(
        {
            "name": "mix",
            "problems": [{"name": "rosenbrock", "dim": [2, 3, 5]}],
            "optimizers": [
                {"name": "sgd", "lr": [0.01, 0.001], "momentum": 0.9},
                {"name": "adam", "lr": [0.01, 0.001]},
            ],
            "seeds": [0, 1, 2],
            "steps": 100,
        }
    )
    return [(f"row{i}", run) for i, run in enumerate(expand(spec))]


RUNS = pool()


def test_small_runs_share_one_task_in_order() -> None:
    chunks = plan_chunks(RUNS, max_cost=1e12, max_runs=1000)
    assert len(chunks) == 1
    assert sorted(chunks[0]) == sorted(r for r, _ in RUNS)
    keys = [batch_key(run) for _, run in RUNS]
    # Grouped by key, keys in order of first appearance, input order inside a key.
    firsts = list(dict.fromkeys(keys))
    position = {r: i for i, (r, _) in enumerate(RUNS)}
    order = [firsts.index(keys[position[r]]) for r in chunks[0]]
    assert order == sorted(order)


@settings(max_examples=60, deadline=None)
@given(
    subset=st.lists(st.sampled_from(range(len(RUNS))), min_size=1, unique=True),
    max_cost=st.floats(min_value=100, max_value=1e5),
    max_runs=st.integers(min_value=1, max_value=12),
)
def test_partition_and_caps(subset: list[int], max_cost: float, max_runs: int) -> None:
    runs = [RUNS[i] for i in subset]
    chunks = plan_chunks(runs, max_cost=max_cost, max_runs=max_runs)
    flat = [r for chunk in chunks for r in chunk]
    assert sorted(flat) == sorted(r for r, _ in runs)
    spec = dict(runs)
    for chunk in chunks:
        cost = sum(estimate_cost(spec[r]) for r in chunk)
        assert len(chunk) == 1 or (cost <= max_cost and len(chunk) <= max_runs)
    # A batch key is never split while a chunk could still have taken its next run.
    for chunk, following in itertools.pairwise(chunks):
        nxt = following[0]
        same_key = [r for r in chunk if batch_key(spec[r]) == batch_key(spec[nxt])]
        if same_key:
            cost = sum(estimate_cost(spec[r]) for r in chunk) + estimate_cost(spec[nxt])
            assert cost > max_cost or len(chunk) + 1 > max_runs
