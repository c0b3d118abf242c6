"""Curve packing and experiment status derivation."""

from __future__ import annotations

import itertools
import math
import struct

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from api.db import Database
from api.models import Run, utcnow
from api.store import (
    ENCODE_FROM,
    CurveLog,
    decode_chunks,
    lock_experiment,
    pack_curve,
    refresh_experiment,
    unpack_curve,
)
from tests.conftest import SIMPLE_SPEC
from tests.worker.helpers import new_experiment

finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    st.one_of(
        st.lists(st.one_of(finite, st.none())),
        # constant chunks (a constant schedule's lrs), stored as one value and a count
        st.builds(lambda v, n: [v] * n, st.one_of(finite, st.none()), st.integers(0, 50)),
    )
)
def test_float_curves_round_trip_bit_exactly(values: list[float | None]) -> None:
    data = pack_curve("losses", values)
    constant = len({struct.pack("<d", math.nan if v is None else v) for v in values}) == 1
    assert len(data) == (17 if constant and len(values) >= ENCODE_FROM else 8 * len(values))
    back = unpack_curve("losses", data)
    assert back == values
    assert [math.copysign(1, v) for v in back if v is not None] == [
        math.copysign(1, v) for v in values if v is not None
    ]


int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(
    st.one_of(
        st.lists(int64),
        # affine chunks (steps, gradient-evaluation counts), wrapping int64 arithmetic included
        st.builds(
            lambda first, step, n: [((first + i * step + 2**63) % 2**64) - 2**63 for i in range(n)],
            int64,
            int64,
            st.integers(0, 50),
        ),
    )
)
def test_step_curves_round_trip(values: list[int]) -> None:
    data = pack_curve("eval_steps", values)
    wrapped = [((b - a + 2**63) % 2**64) - 2**63 for a, b in itertools.pairwise(values)]
    affine = len(set(wrapped)) <= 1
    assert len(data) == (25 if affine and len(values) >= ENCODE_FROM else 8 * len(values))
    assert unpack_curve("eval_steps", data) == values


def test_mixed_chunks_decode_as_one_curve() -> None:
    """A curve whose chunks are raw and encoded reads back as their values in order (the
    summary's reader and load_curves share decode_chunks / decode_curve)."""
    lrs = [0.1] * 6 + [0.05, 0.025] + [0.01] * 5
    chunks = [pack_curve("lrs", part) for part in (lrs[:6], lrs[6:8], lrs[8:])]
    assert [len(c) for c in chunks] == [17, 16, 17]
    assert decode_chunks("lrs", chunks).tolist() == lrs
    steps = list(range(0, 30, 3))
    chunks = [pack_curve("eval_steps", part) for part in (steps[:5], steps[5:7], steps[7:])]
    assert [len(c) for c in chunks] == [25, 16, 24]
    assert decode_chunks("eval_steps", chunks).tolist() == steps


def test_non_finite_values_read_back_as_none() -> None:
    assert unpack_curve("losses", pack_curve("losses", [1.0, math.inf, -math.inf])) == [
        1.0,
        None,
        None,
    ]


def test_curve_log_appends_only_new_tails() -> None:
    log = CurveLog()
    first = log.append_rows("r", {"losses": [1.0, 2.0], "lrs": [0.1]})
    assert [(c["name"], c["seq"], c["start"], c["length"]) for c in first] == [
        ("losses", 0, 0, 2),
        ("lrs", 0, 0, 1),
    ]
    second = log.append_rows("r", {"losses": [1.0, 2.0, 3.0], "lrs": [0.1]})
    assert [(c["name"], c["seq"], c["start"], c["length"]) for c in second] == [("losses", 1, 2, 1)]
    assert unpack_curve("losses", second[0]["data"]) == [3.0]


def _status(db: Database, experiment_id: str, statuses: list[str], cancel: bool = False) -> str:
    with db.writer() as session:
        ids = [
            r.id
            for r in session.query(Run)
            .filter_by(experiment_id=experiment_id)
            .order_by(Run.position)
        ]
        for row_id, status in zip(ids, statuses, strict=True):
            session.execute(update(Run).where(Run.id == row_id).values(status=status))
        exp = lock_experiment(session, experiment_id)
        assert exp is not None
        if cancel:
            exp.cancel_requested_at = utcnow()
        refresh_experiment(session, exp, utcnow())
        session.commit()
        return exp.status


def test_experiment_status_follows_its_runs(db: Database) -> None:
    cases = [
        (["queued"] * 3, False, "queued"),
        (["running", "queued", "queued"], False, "running"),
        (["succeeded", "queued", "queued"], False, "running"),
        (["succeeded"] * 3, False, "succeeded"),
        (["succeeded", "failed", "succeeded"], False, "failed"),
        (["succeeded", "running", "cancelled"], True, "cancelled"),
    ]
    for statuses, cancel, expected in cases:
        experiment_id, _ = new_experiment(db, SIMPLE_SPEC)
        assert _status(db, experiment_id, statuses, cancel) == expected, statuses
