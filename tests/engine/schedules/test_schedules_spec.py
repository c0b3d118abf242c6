"""Schedule spec models: the registry matches the union, defaults build, validation rejects what
would break a schedule (including inside grids), and ``build_schedule`` from models and dicts."""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from engine.registry import UnknownNameError
from engine.schedules import SCHEDULES, ScheduleSpec, build_schedule
from engine.specbase import grid_fields
from tests.registered import plugins

ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)

# The fields without a default, and the smallest values that make each spec valid.
REQUIRED: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"step_size": 3},
    "multistep": {"milestones": [2, 5]},
    "exponential": {"gamma": 0.9},
    "linear": {},
    "polynomial": {},
    "cosine": {"T_max": 10},
    "cosine_warm_restarts": {"T_0": 4},
    "cyclic": {"max_lr": 0.5},
    "one_cycle": {"total_steps": 50},
    "reduce_on_plateau": {},
    "warmup": {"warmup_steps": 5},
    "piecewise_linear": {"total_steps": 100},
    "sawtooth": {},
    "constant_factor": {},
    "sequential": {"schedulers": [{"name": "constant"}], "milestones": []},
    "wsd": {"stable_steps": 10, "decay_steps": 20},
    "inverse_sqrt": {},
}


def parse(doc: dict[str, Any]) -> BaseModel:
    return ADAPTER.validate_python(doc)


def union_literals() -> set[str]:
    union = typing.get_args(ScheduleSpec)[0]
    names = set()
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["name"].annotation)
        names.add(literal)
    return names


# An installed plugin's schedules: the contract asks them to build from their defaults.
REQUIRED |= {name: {} for name in plugins(SCHEDULES)}


def test_registry_names_equal_the_union_literals() -> None:
    assert union_literals() == set(SCHEDULES.names()) == set(REQUIRED)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_fields_are_exactly_the_documented_ones(name: str) -> None:
    spec = SCHEDULES.get(name).spec
    required = {n for n, f in spec.model_fields.items() if f.is_required()}
    assert required == set(REQUIRED[name])


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_spec_builds_from_its_defaults(name: str) -> None:
    spec = parse({"name": name, **REQUIRED[name]})
    schedule = build_schedule(spec, 0.1)
    lrs = schedule.preview(60)
    assert lrs.shape == (60,) and lrs.dtype == np.float64
    assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0) and lrs.max() > 0
    assert schedule.lr_at(0) == lrs[0]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_spec_round_trips_through_its_dump(name: str) -> None:
    spec = parse({"name": name, **REQUIRED[name]})
    assert parse(spec.model_dump()) == spec
    assert parse(spec.model_dump(mode="json")) == spec


def test_the_union_has_a_json_schema_with_every_schedule() -> None:
    schema = ADAPTER.json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(SCHEDULES.names())


def test_build_from_a_dict_equals_build_from_the_model() -> None:
    doc = {"name": "warmup", "warmup_steps": 4, "then": {"name": "cosine", "T_max": 20}}
    a = build_schedule(doc, 0.3).preview(40)
    b = build_schedule(parse(doc), 0.3).preview(40)
    np.testing.assert_array_equal(a, b)


def test_build_rejects_grids_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="grid values in \\['gamma'\\]"):
        build_schedule(parse({"name": "step", "step_size": 3, "gamma": [0.1, 0.5]}), 0.1)
    nested = parse(
        {"name": "warmup", "warmup_steps": 2, "then": {"name": "cosine", "T_max": [5, 9]}}
    )
    with pytest.raises(ValueError, match="T_max"):
        build_schedule(nested, 0.1)
    with pytest.raises(UnknownNameError, match="unknown schedule 'nope'; known: constant"):
        build_schedule({"name": "nope"}, 0.1)


def test_milestones_scalar_is_a_list_and_a_grid_is_a_list_of_lists() -> None:
    single = parse({"name": "multistep", "milestones": [10, 20]})
    assert grid_fields(single) == {}
    grid = parse({"name": "multistep", "milestones": [[10, 20], [30]]})
    assert grid_fields(grid) == {"milestones": [[10, 20], [30]]}


def test_warmup_defaults_to_constant_and_nests() -> None:
    spec = parse({"name": "warmup", "warmup_steps": 3})
    assert spec.model_dump()["then"] == {"name": "constant"}
    nested = parse(
        {"name": "warmup", "warmup_steps": 2, "then": {"name": "warmup", "warmup_steps": 3}}
    )
    lrs = build_schedule(nested, 1.0).preview(6)
    third = 1.0 / 3
    expected = [
        third,
        third + (1 - third) / 2,
        third,
        third + (1 - third) / 3,
        third + 2 * (1 - third) / 3,
        1.0,
    ]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"name": "step", "step_size": 0}, "step_size"),
    ({"name": "step", "step_size": 2, "gamma": 0.0}, "gamma"),
    ({"name": "step", "step_size": 2, "gamma": []}, "gamma"),
    ({"name": "multistep", "milestones": [5, 5]}, "strictly increasing"),
    ({"name": "multistep", "milestones": [7, 3]}, "strictly increasing"),
    ({"name": "multistep", "milestones": [0, 3]}, "milestones"),
    ({"name": "multistep", "milestones": []}, "milestones"),
    ({"name": "exponential", "gamma": -0.5}, "gamma"),
    ({"name": "linear", "start_factor": 0.0}, "start_factor"),
    ({"name": "linear", "end_factor": 1.5}, "end_factor"),
    ({"name": "polynomial", "power": 0.0}, "power"),
    ({"name": "cosine", "T_max": 0}, "T_max"),
    ({"name": "cosine", "T_max": 5, "eta_min": -1e-3}, "eta_min"),
    ({"name": "cosine_warm_restarts", "T_0": 4, "T_mult": 0}, "T_mult"),
    ({"name": "cyclic", "max_lr": 0.1, "mode": "sine"}, "mode"),
    ({"name": "cyclic", "max_lr": 0.1, "gamma": 1.5}, "gamma"),
    ({"name": "cyclic", "max_lr": 0.1, "step_size_down": 0}, "step_size_down"),
    ({"name": "one_cycle", "total_steps": 3}, "phases need positive lengths"),
    (
        {"name": "one_cycle", "total_steps": 100, "pct_start": 0.6, "three_phase": True},
        "phases need positive lengths",
    ),
    ({"name": "one_cycle", "total_steps": 100, "anneal_strategy": "exp"}, "anneal_strategy"),
    ({"name": "reduce_on_plateau", "factor": 1.0}, "factor"),
    ({"name": "reduce_on_plateau", "mode": "median"}, "mode"),
    ({"name": "reduce_on_plateau", "patience": -1}, "patience"),
    ({"name": "warmup", "warmup_steps": 0}, "warmup_steps"),
    ({"name": "warmup", "warmup_steps": 3, "then": {"name": "cosine"}}, "T_max"),
    (
        {
            "name": "piecewise_linear",
            "total_steps": 100,
            "hold_fraction": 0.5,
            "decay_fraction": 0.6,
        },
        "must be <= 1",
    ),
    ({"name": "piecewise_linear", "total_steps": 10, "decay_fraction": 0.05}, ">= 1 step"),
    ({"name": "sawtooth", "cycle_length": 0}, "cycle_length"),
    ({"name": "sawtooth", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("doc", "message"), BAD, ids=[d["name"] + "-" + m for d, m in BAD])
def test_invalid_specs_are_rejected(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(doc)


def test_cross_field_checks_cover_every_point_of_a_grid() -> None:
    ok = {"name": "one_cycle", "total_steps": [10, 200], "pct_start": [0.3, 0.5]}
    assert grid_fields(parse(ok)) == {"total_steps": [10, 200], "pct_start": [0.3, 0.5]}
    with pytest.raises(ValidationError, match="total_steps=3"):
        parse(dict(ok, total_steps=[200, 3]))
    with pytest.raises(ValidationError, match="hold_fraction"):
        parse({"name": "piecewise_linear", "total_steps": 50, "hold_fraction": [0.1, 0.5]})


def test_factories_reject_what_the_specs_reject() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        SCHEDULES.get("multistep").factory(0.1, milestones=[4, 2], gamma=0.1)
    with pytest.raises(ValueError, match="positive lengths"):
        SCHEDULES.get("one_cycle").factory(
            0.1,
            max_lr=None,
            total_steps=2,
            pct_start=0.3,
            anneal_strategy="cos",
            div_factor=25.0,
            final_div_factor=1e4,
            three_phase=False,
        )
    with pytest.raises(ValueError, match="unknown cyclic mode"):
        SCHEDULES.get("cyclic").factory(
            0.1,
            base_lr=None,
            max_lr=1.0,
            step_size_up=2,
            step_size_down=None,
            mode="sine",
            gamma=1.0,
        )
