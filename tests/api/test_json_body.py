"""Response bodies written by orjson read back as the ``json.dumps`` body they replaced."""

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
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _reference(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


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
    with pytest.raises(ValueError):  # the json.dumps path keeps its rule
        json_body({"seed": 2**70, "x": math.nan})
