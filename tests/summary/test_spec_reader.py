"""Stored run specs read once per text without its seed (:class:`SpecReader`): every spec equals
``json.loads`` of its text, equal keys only for specs that agree but for the seed, and grouping on
those keys gives the groups grouping on the specs' canonical JSON gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from analysis.groups import group_runs
from api.services.summary import SpecReader
from engine.runner import run_batch
from engine.spec import expand, parse_experiment

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["seed", '"seed":1,', "adam", ""]),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["seed", "lr", "name", "zz"]), inner, max_size=3),
    ),
    max_leaves=8,
)
# keys on either side of "seed" in sorted order, one of them a nested spec that may hold a seed
_spec = st.dictionaries(
    st.sampled_from(["dtype", "optimizer", "problem", "seed", "steps", "zz"]), _value, max_size=6
)


def _texts(spec: dict[str, Any], seeds: list[int], canonical: bool) -> list[str]:
    options: dict[str, Any] = (
        {"sort_keys": True, "separators": (",", ":")} if canonical else {"indent": None}
    )
    return [json.dumps({**spec, "seed": s} if "seed" in spec else spec, **options) for s in seeds]


@given(
    st.lists(
        st.tuples(_spec, st.lists(st.integers(-5, 10**6), min_size=1, max_size=4), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_specs_equal_json_loads_and_keys_only_join_specs_alike_but_for_the_seed(
    cases: list[tuple[dict[str, Any], list[int], bool]],
) -> None:
    reader = SpecReader()
    read = [
        (text, *reader.read(text))
        for spec, seeds, canonical in cases
        for text in _texts(spec, seeds, canonical)
    ]
    for text, spec, _ in read:
        assert spec == json.loads(text)
    seedless = {}
    for _, spec, key in read:
        body = {k: v for k, v in spec.items() if k != "seed"}
        assert seedless.setdefault(key, body) == body


def test_runs_of_a_group_share_one_key_and_nested_seeds_stay_apart() -> None:
    reader = SpecReader()
    spec = {"optimizer": {"lr": 0.1, "name": "adam"}, "problem": {"name": "p", "seed": 7}}
    texts = _texts(spec, [0, 1, 12], canonical=True)
    keys = {reader.read(t)[1] for t in texts}
    assert len(keys) == 1
    # the last "seed" of the text is a nested one: parsed whole, each text its own key
    late = {"aa": 1, "seed": 3, "zz": {"seed": 3}}
    texts = [json.dumps({**late, "seed": s}, sort_keys=True, separators=(",", ":")) for s in (3, 4)]
    read = [reader.read(t) for t in texts]
    assert [s for s, _ in read] == [json.loads(t) for t in texts]
    assert read[0][1] != read[1][1]


def test_grouping_on_the_read_keys_equals_grouping_on_the_specs() -> None:
    spec = parse_experiment(
        {
            "name": "keys",
            "problems": [{"name": "rosenbrock", "dim": 2}, {"name": "quadratic", "dim": 3}],
            "optimizers": [{"name": "adam", "lr": [0.01, 0.1]}, {"name": "sgd", "lr": 0.001}],
            "seeds": [0, 1, 2],
            "steps": 5,
        }
    )
    runs = expand(spec)
    reader = SpecReader()
    records = []
    keys = []
    for run, result in zip(runs, run_batch(runs), strict=True):
        record = {**result, "status": "succeeded"}
        record["spec"], key = reader.read(run.canonical_json())
        records.append(record)
        keys.append(key)
    assert len(set(keys)) == 6
    by_keys, by_specs = group_runs(records, keys), group_runs(records)
    assert [(g.id, g.problem_label, g.solver_label) for g in by_keys] == [
        (g.id, g.problem_label, g.solver_label) for g in by_specs
    ]
    assert [[r["run_id"] for r in g.records] for g in by_keys] == [
        [r["run_id"] for r in g.records] for g in by_specs
    ]
