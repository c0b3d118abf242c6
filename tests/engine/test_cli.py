"""`python -m engine`: results on stdout or a file; bad input exits 2 with one readable line."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.cli import main, runs_json
from tests.results import float_bits

ROOT = Path(__file__).resolve().parents[2]


def engine(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


SPEC = {
    "name": "cli",
    "problems": [{"name": "beale"}],
    "optimizers": [{"name": "adam", "lr": [0.01, 0.1]}],
    "steps": 25,
}


def test_run_writes_results(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    proc = engine("run", str(spec), "--quiet")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert len(runs) == 2 and {r["spec"]["optimizer"]["lr"] for r in runs} == {0.01, 0.1}
    assert all(len(r["losses"]) == 26 for r in runs)
    out = tmp_path / "out.json"
    proc = engine("run", "-", "--out", str(out), stdin=json.dumps(SPEC))
    assert proc.returncode == 0 and proc.stdout == ""
    again = json.loads(out.read_text())["runs"]
    assert [r["losses"] for r in again] == [r["losses"] for r in runs]


def _stdlib_nulls(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _stdlib_nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stdlib_nulls(v) for v in value]
    return value


CURVE = arrays(np.float64, st.integers(0, 40), elements=st.floats(allow_nan=True))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "run_id": st.text(max_size=8),
                "final_loss": st.floats() | st.none(),
                "steps_done": st.integers(-(2**70), 2**70),
                "losses": CURVE,
                "lrs": arrays(np.float32, st.integers(0, 10), elements=st.floats(width=32)),
                "eval_steps": arrays(np.int64, st.integers(0, 10)),
                "diverged": st.booleans(),
            }
        ),
        max_size=4,
    )
)
def test_runs_json_reads_back_as_the_standard_library_writes_it(runs: list[dict[str, Any]]) -> None:
    """Every float back bit for bit (curves in float64 and float32, subnormals, ±0, extremes),
    integers beyond 64 bits, text, nesting; a non-finite value written as null."""
    ours = json.loads(b"".join(runs_json(runs)))
    curves = ("losses", "lrs", "eval_steps")
    plain = [{k: v.tolist() if k in curves else v for k, v in r.items()} for r in runs]
    reference = json.loads(json.dumps({"runs": _stdlib_nulls(plain)}, allow_nan=False))
    assert float_bits(ours) == float_bits(reference)


def test_json_goes_to_a_text_only_stdout(tmp_path: Path) -> None:
    """A standard output without a byte stream (an embedding program's ``StringIO``) gets the
    same text as ``--out`` writes, non-ASCII included."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        main(["catalog", "--json"])
    main(["catalog", "--out", str(tmp_path / "catalog.json")])
    written = (tmp_path / "catalog.json").read_text(encoding="utf-8")
    assert text.getvalue() == written and not written.isascii()
    assert json.loads(written) == json.loads(engine("catalog", "--json").stdout)


def test_run_downsamples_on_request(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(dict(SPEC, steps=400)))
    full = json.loads(engine("run", str(spec), "--quiet").stdout)["runs"][0]
    proc = engine("run", str(spec), "--quiet", "--max-points", "40")
    assert proc.returncode == 0, proc.stderr
    small = json.loads(proc.stdout)["runs"][0]
    assert len(small["losses"]) <= 40 and len(small["lrs"]) <= 40
    assert small["eval_steps"][0] == 0 and small["eval_steps"][-1] == 400
    assert small["losses"][-1] == full["losses"][-1]
    assert min(small["losses"]) == min(full["losses"])
    assert small["update_steps"][-1] == 399
    assert engine("run", str(spec), "--max-points", "0").returncode == 2


def test_validate_and_catalog(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    proc = engine("validate", str(spec))
    assert proc.returncode == 0 and "2 runs" in proc.stdout
    proc = engine("catalog", "--json")
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1
    cat = json.loads(proc.stdout)
    adam = next(e for e in cat["optimizers"] if e["name"] == "adam")
    assert adam["defaults"]["lr"] == 0.001 and "properties" in adam["schema"]
    # For a terminal: a section per kind, an entry per line with its defaults below.
    text = engine("catalog").stdout.splitlines()
    assert f"optimizers ({len(cat['optimizers'])})" in text
    assert max(len(line) for line in text) <= 100
    at = next(i for i, line in enumerate(text) if line.startswith("  adam "))
    assert "lr=0.001" in text[at + 1] and "betas=[0.9, 0.999]" in text[at + 1]


def test_a_closed_pipe_ends_quietly() -> None:
    """``true`` exits before Python has started, so every write meets a closed pipe."""
    proc = subprocess.run(
        f"set -o pipefail; '{sys.executable}' -m engine catalog | true",
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "invalid JSON at line 1, column 2"),
        (json.dumps(dict(SPEC, optimizers=[{"name": "adamz"}])), "unknown name 'adamz'"),
        (json.dumps(dict(SPEC, steps=0)), "steps:"),
        (json.dumps(dict(SPEC, optimizers=[{"name": "adam", "lr": -1}])), "optimizers[0].lr"),
        (json.dumps([1, 2]), "invalid experiment spec"),
    ],
)
def test_bad_input_exits_2_with_one_message(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    spec = tmp_path / "spec.json"
    if content is not None:
        spec.write_text(content)
    for command in ("run", "validate"):
        proc = engine(command, str(spec))
        assert proc.returncode == 2
        assert expected in proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
