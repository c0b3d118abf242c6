"""Response bodies written by orjson read back as the ``json.dumps`` body they replaced, a
non-finite float as ``null`` whichever of the two writes it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import json_body

_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),  # beyond 64 bits too: those bodies are json.dumps's
        st.floats(),  # NaN and ±inf too: null in either body
        st.text(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _reference(data: Any) -> bytes:
    """``json.dumps``'s body, its ``NaN`` and ``±Infinity`` read back as ``None``."""
    nulled = json.loads(json.dumps(data), parse_constant=lambda _: None)
    return json.dumps(nulled, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


@given(_values)
def test_a_body_reads_back_as_the_json_dumps_body(data: Any) -> None:
    body = json_body(data)
    assert json.loads(body) == json.loads(_reference(data))
    # the sign of a zero and every float's bits survive as well
    assert json.dumps(json.loads(body)) == json.dumps(json.loads(_reference(data)))


def test_numpy_values_keys_and_non_finite_floats() -> None:
    data = {1: np.float64(0.1), "a": np.arange(3), "b": np.int64(7), None: [np.float64(1e-8)]}
    assert json.loads(json_body(data)) == {"1": 0.1, "a": [0, 1, 2], "b": 7, "null": [1e-8]}
    assert json.loads(json_body({"x": math.nan, "y": [math.inf]})) == {"x": None, "y": [None]}
    big = {"seed": 2**70, "x": 0.5}
    assert json_body(big) == _reference(big)


@pytest.mark.parametrize("beside", [0, 2**70], ids=["orjson", "json.dumps"])
def test_a_non_finite_float_is_null_on_both_paths(beside: int) -> None:
    """orjson writes the body unless an integer beyond 64 bits sends it to ``json.dumps``."""
    data = {
        "seed": beside,
        "x": math.nan,
        "y": [math.inf, (-math.inf, 1.5)],
        "z": {"w": np.float64(math.nan), "v": [{"u": -math.inf}]},
    }
    want = {
        "seed": beside,
        "x": None,
        "y": [None, [None, 1.5]],
        "z": {"w": None, "v": [{"u": None}]},
    }
    assert json.loads(json_body(data)) == want
