"""The CLI's argument handling, bad-input messages and report rendering (no service needed)."""

from __future__ import annotations

import argparse
import io
import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from scipy import stats

from analysis.gate import Verdict, gate
from client.commands import build_parser, main, parse_fraction
from client.http import CliError, Service, default_url
from client.junit import junit_xml
from client.render import render_gate, table
from tests.summary.factory import record


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc:
        main(argv, out=out)
    return int(exc.value.code or 0), out.getvalue()


@pytest.mark.parametrize(
    ("text", "value"), [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125), (" 0 ", 0.0)]
)
def test_max_regression_accepts_percentages_and_fractions(text: str, value: float) -> None:
    assert parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["5x", "-1%", "nan", "inf", ""])
def test_max_regression_rejects_nonsense(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fraction(text)


def test_bad_option_is_exit_2_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(["gate", "s.json", "--baseline", "b.json", "--max-regression", "lots"])
    assert code == 2
    assert "argument --max-regression: expected a percentage" in capsys.readouterr().err


def test_missing_and_malformed_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli(["submit", str(tmp_path / "nope.json")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"optbench: error: {tmp_path / 'nope.json'}: no such file\n"
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",\n  "steps": }')
    code, _ = run_cli(["submit", str(bad), "--local"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"optbench: error: {bad}: invalid JSON at line 2, column 12")
    assert "Traceback" not in err
    code, _ = run_cli(["submit", str(tmp_path)])
    assert code == 2 and "is a directory" in capsys.readouterr().err


def test_a_baseline_that_is_not_results_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"results": [1, 2]}))
    code, _ = run_cli(["gate", str(spec), "--baseline", str(base), "--local"])
    err = capsys.readouterr().err
    assert code == 2
    assert "base.json: not a results file (a results document is a list of runs" in err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_service_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, _ = run_cli(["--url", url, "status", "0" * 24])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith(f"optbench: error: cannot reach the optbench service at {url}")
    assert "--local" in err


def test_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTBENCH_URL", "http://example.invalid:9")
    assert build_parser().parse_args(["status", "x"]).url == "http://example.invalid:9"
    args = build_parser().parse_args(["--url", "http://h:1", "status", "x"])
    assert args.url == "http://h:1"
    with pytest.raises(CliError, match="must be an http"):
        Service("ftp://h")


def test_table_aligns_text_left_and_numbers_right() -> None:
    text = table(("name", "loss"), [["adam", 0.5], ["sgd", 12.25], ["x", None]])
    assert text.splitlines() == [
        "name   loss",
        "----  -----",
        "adam    0.5",
        "sgd   12.25",
        "x         -",
    ]


def gate_args(**kw: object) -> argparse.Namespace:
    base = {"metric": "final_loss", "max_regression": 0.05, "abs_tol": 0.0, "alpha": 0.05}
    base.update(kw)
    return argparse.Namespace(**base)


def verdicts() -> list[Verdict]:
    adam = {"name": "adam", "lr": 0.01}
    base = [record(adam, s, [1.0, v]) for s, v in enumerate([0.5, 0.51, 0.52])]
    cur = [record(adam, s, [1.0, v]) for s, v in enumerate([0.7, 0.71, 0.72])]
    base += [record({"name": "sgd", "lr": 0.1}, 0, [1.0, 0.3])]
    cur += [record({"name": "sgd", "lr": 0.1}, 0, [1.0, 0.3])]
    cur += [record({"name": "rmsprop", "lr": 0.1}, 0, [1.0, 0.2])]
    return gate(cur, base)


def test_gate_report_names_each_group_and_the_verdict() -> None:
    text = render_gate(verdicts(), gate_args())
    lines = text.splitlines()
    assert lines[0].startswith("gate on final_loss: a group regresses when its failure or miss")
    fail = next(line for line in lines if line.startswith("FAIL"))
    assert "adam / constant" in fail and "REGRESSION: final_loss worse by 0.2" in fail
    # baseline vs now, each with its interval, and the difference with its Welch interval
    half = stats.t.ppf(0.975, 2) * 0.01 / 3**0.5
    assert f"baseline mean 0.51 [{0.51 - half:.4g}, {0.51 + half:.4g}] (student-t), 3/3 ok" in fail
    assert f"now mean 0.71 [{0.71 - half:.4g}, {0.71 + half:.4g}]" in fail
    welch = stats.ttest_ind([0.7, 0.71, 0.72], [0.5, 0.51, 0.52], equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert f"[{ci.low:.4g}, {ci.high:.4g}] (welch 95%)" in fail
    assert any(line.startswith("PASS") and "sgd / constant" in line for line in lines)
    assert any(line.startswith("NEW") and "rmsprop / constant" in line for line in lines)
    assert lines[-1] == "FAILED: 1 of 2 groups regressed"


def test_junit_report_has_a_failure_per_regression() -> None:
    root = ET.fromstring(junit_xml(verdicts(), gate_args()).split("\n", 1)[1])
    (suite,) = root.findall("testsuite")
    assert suite.attrib["tests"] == "3"
    assert suite.attrib["failures"] == "1" and suite.attrib["skipped"] == "1"
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    assert set(cases) == {"adam / constant", "sgd / constant", "rmsprop / constant"}
    failure = cases["adam / constant"].find("failure")
    assert failure is not None and "final_loss worse by 0.2" in failure.attrib["message"]
    assert cases["adam / constant"].attrib["classname"] == "optbench.rosenbrock"
    assert cases["rmsprop / constant"].find("skipped") is not None
    assert cases["sgd / constant"].find("failure") is None


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"OPTBENCH_PORT": "8731"}, "http://127.0.0.1:8731"),
        ({"OPTBENCH_HOST": "0.0.0.0", "OPTBENCH_PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"OPTBENCH_HOST": "::1"}, "http://[::1]:8000"),
        ({"OPTBENCH_URL": "http://box:1", "OPTBENCH_PORT": "8731"}, "http://box:1"),
    ],
)
def test_the_default_url_follows_make_runs_settings(env: dict[str, str], url: str) -> None:
    assert default_url(env) == url


def test_comparison_says_what_few_seeds_cannot_tell() -> None:
    from analysis.summary import summarize
    from client.render import render_comparison

    def runs(n: int) -> list[dict[str, object]]:
        return [
            record({"name": "adam", "lr": lr}, s, [1.0, v + 0.01 * s])
            for lr, v in ((0.001, 0.5), (0.01, 0.3))
            for s in range(n)
        ]

    one = render_comparison(summarize(runs(1), baseline="adam(lr=0.001)"))
    assert "note: n = 1: no interval (adam(lr=0.001) / constant, adam(lr=0.01) / constant)" in one
    assert "1 seed cannot reach α = 0.05" in one
    three = render_comparison(summarize(runs(3), baseline="adam(lr=0.001)"))
    assert "median interval [min, max] covers 75% at n = 3, not 95%" in three
    assert "3 seeds cannot reach α = 0.05: the smallest possible p is 0.25; 6 seeds" in three
    assert "baseline: named by the request: 'adam(lr=0.001)'" in three
