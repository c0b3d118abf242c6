"""Task planning: every run in exactly one chunk, equal batch keys in near-equal pieces, caps
kept, large experiments spread over the workers."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from api.services.planning import plan_chunks
from engine.runner import batch_capacity, batch_key, estimate_cost
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


@settings(max_examples=80, deadline=None)
@given(
    subset=st.lists(st.sampled_from(range(len(RUNS))), min_size=1, unique=True),
    max_cost=st.floats(min_value=100, max_value=1e5),
    max_runs=st.integers(min_value=1, max_value=12),
    parallelism=st.integers(min_value=1, max_value=4),
    min_cost=st.sampled_from([0.0, 1000.0, 1e9]),
)
def test_partition_caps_and_even_pieces(
    subset: list[int], max_cost: float, max_runs: int, parallelism: int, min_cost: float
) -> None:
    runs = [RUNS[i] for i in subset]
    chunks = plan_chunks(
        runs, max_cost=max_cost, max_runs=max_runs, parallelism=parallelism, min_cost=min_cost
    )
    flat = [r for chunk in chunks for r in chunk]
    assert sorted(flat) == sorted(r for r, _ in runs)
    spec = dict(runs)
    for chunk in chunks:
        cost = sum(estimate_cost(spec[r]) for r in chunk)
        assert len(chunk) == 1 or (cost <= max_cost * (1 + 1e-9) and len(chunk) <= max_runs)
    # Each key is cut into near-equal pieces, as few as its caps and its share allow.
    total = sum(estimate_cost(run) for _, run in runs)
    share = min(max_cost, max(total / parallelism, min_cost))
    for key in {batch_key(run) for _, run in runs}:
        sizes = [n for n in (sum(batch_key(spec[r]) == key for r in c) for c in chunks) if n]
        n, unit = sum(sizes), estimate_cost(next(run for _, run in runs if batch_key(run) == key))
        assert max(sizes) - min(sizes) <= 1
        size = min(max_runs, max(1, math.floor(max_cost / unit * (1 + 1e-9))))
        expected = min(n, max(-(-n // size), math.ceil(n * unit / share * (1 - 1e-9))))
        assert len(sizes) == expected
    # Enough work is spread over at least `parallelism` tasks.
    if total / parallelism >= min_cost and total / parallelism <= max_cost:
        assert len(chunks) >= min(parallelism, len(runs))


def test_a_large_sweep_is_cut_once_per_worker() -> None:
    """1,000 runs of one batch key for two workers: two tasks of 500 (not four of 250, which
    would step the same curves at twice the per-step overhead, nor one leaving a worker idle);
    an MLP group larger than a batch is cut into near-equal pieces."""
    sweep = parse_experiment(
        {
            "name": "sweep",
            "problems": [{"name": "rosenbrock", "dim": 2}],
            "optimizers": [{"name": "adam", "lr": [1e-4 * 1.1**i for i in range(50)]}],
            "seeds": list(range(20)),
            "steps": 10_000,
        }
    )
    runs = [(f"r{i}", run) for i, run in enumerate(expand(sweep))]
    chunks = plan_chunks(runs, max_cost=3e10, max_runs=1000, parallelism=2)
    assert [len(c) for c in chunks] == [500, 500]
    assert plan_chunks(runs, max_cost=3e10, max_runs=1000, parallelism=1) == [[r for r, _ in runs]]
    mlp = parse_experiment(
        {
            "name": "mlp",
            "problems": [
                {
                    "name": "mlp",
                    "dataset": "digits",
                    "hidden": [64],
                    "batch_size": 64,
                    "activation": "tanh",
                }
            ],
            "optimizers": [{"name": "adam", "lr": [1e-3, 1e-2, 3e-2]}],
            "seeds": list(range(6)),
            "steps": 1000,
        }
    )
    runs = [(f"m{i}", run) for i, run in enumerate(expand(mlp))]
    assert batch_capacity(runs[0][1]) < len(runs) <= 2 * batch_capacity(runs[0][1])
    chunks = plan_chunks(runs, max_cost=3e10, max_runs=1000, parallelism=1)
    assert [len(c) for c in chunks] == [18]  # one task, stepped in batches of its capacity
    sizes = [len(c) for c in plan_chunks(runs, max_cost=3e10, max_runs=1000, parallelism=2)]
    assert sizes == [9, 9]
    # A tiny experiment stays one task whatever the parallelism.
    assert len(plan_chunks(RUNS, max_cost=3e10, max_runs=1000, parallelism=2)) == 1
