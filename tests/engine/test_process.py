"""The command-line process (:mod:`engine.process`): its output and exit status are those of a
normal Python exit, and ``python -m engine run`` writes exactly what the engine computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.process import exit_status
from engine.spec import expand, parse_experiment
from tests.results import float_bits, plain_batch

ROOT = Path(__file__).resolve().parents[2]

#: Two runs of 3,000 steps: ~1 MB of results, far more than a pipe holds.
SPEC = {
    "name": "process",
    "problems": [{"name": "beale"}],
    "optimizers": [{"name": "adam", "lr": [0.01, 0.1]}],
    "steps": 3000,
}

#: The fields that hold measured times: the only ones two runs of one spec may differ in.
TIMES = ("wall_time_s", "batch_wall_time_s", "wall_times")


def untimed(doc: dict[str, Any]) -> Any:
    """The results document with its times left out and its floats as their bits."""
    return float_bits([{k: v for k, v in run.items() if k not in TIMES} for run in doc["runs"]])


def run(
    code: str, stdout: int | None = subprocess.PIPE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``code`` as the entry point of a process run by :func:`engine.process.run_command`."""
    script = f"from engine.process import run_command\n{code}\nrun_command(lambda: entry)\n"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        env=env,
    )


def test_run_prints_what_the_engine_computes(tmp_path: Path) -> None:
    """Every number bit for bit (times aside), on standard output (one line of JSON) and in
    ``--out``, against the results of :func:`engine.runner.run_batch` in this process."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    expected = untimed({"runs": plain_batch(expand(parse_experiment(SPEC)))})
    command = [sys.executable, "-m", "engine", "run", str(spec), "--quiet"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert len(proc.stdout) > 500_000 and proc.stdout.count("\n") == 1
    assert proc.stdout.endswith("\n") and untimed(json.loads(proc.stdout)) == expected
    out = tmp_path / "out.json"
    proc = subprocess.run([*command, "--out", str(out)], cwd=ROOT, timeout=120)
    assert proc.returncode == 0
    assert untimed(json.loads(out.read_text())) == expected


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), (True, 1)])
def test_exit_status_of_a_number(code: object, status: int) -> None:
    assert exit_status(code) == status


def test_exit_status_of_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status("it failed") == 1
    assert capsys.readouterr().err == "it failed\n"


def test_output_and_exit_handlers_survive_the_exit(tmp_path: Path) -> None:
    marker = tmp_path / "atexit"
    proc = run(
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "def entry():\n"
        "    sys.stdout.write('unflushed')\n"
        "    sys.stderr.write('also')\n"
        "    raise SystemExit(4)\n"
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, "unflushed", "also")
    assert marker.read_text() == "ran"


def test_start_up_objects_are_frozen_and_collection_resumes() -> None:
    proc = run("import gc\ndef entry():\n    print(gc.isenabled(), gc.get_freeze_count() > 0)\n")
    assert (proc.returncode, proc.stdout) == (0, "True True\n")


def test_a_message_exit_and_an_error_are_reported_as_python_reports_them() -> None:
    proc = run("def entry():\n    raise SystemExit('no good')\n")
    assert (proc.returncode, proc.stderr) == (1, "no good\n")
    proc = run("def entry():\n    raise RuntimeError('a bug')\n")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: a bug" in proc.stderr


@pytest.mark.parametrize(("unbuffered", "status"), [("", 120), ("1", 1)])
def test_a_failed_write_to_stdout_exits_as_python_does(unbuffered: str, status: int) -> None:
    """``/dev/full`` accepts the open and refuses every write (no space left): buffered, the
    write fails in the flush at exit (status 120); unbuffered, in ``print`` (a traceback)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    with open("/dev/full", "w") as full:
        plain = subprocess.run(
            [sys.executable, "-c", "print('x')"], stdout=full, stderr=subprocess.PIPE, env=env
        )
        proc = run("def entry():\n    print('x')\n", stdout=full.fileno(), env=env)
    assert plain.returncode == proc.returncode == status
