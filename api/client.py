"""optbench: submit experiments, follow them, fetch their results and gate CI on regressions.

Talks to the service at ``--url`` (default ``$OPTBENCH_URL``, else ``http://127.0.0.1:8000``);
``submit`` and ``gate`` also take ``--local``, which runs the engine in this process instead.

Exit codes: 0 success; 1 a negative outcome (a run failed or was cancelled, the gate found a
regression); 2 bad input (an unreadable or invalid spec or results file, an unknown experiment
or solver, a bad option) — reported as one readable message, never a traceback; 3 the service
could not be reached or answered with a server error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import httpx

from engine.cli import UsageError, read_json, run_with_progress

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL = ("succeeded", "failed", "cancelled")
RESULT_COLUMNS = (
    "problem",
    "solver",
    "seed",
    "status",
    "final_loss",
    "best_loss",
    "steps_to_target",
    "diverged",
    "wall_time_s",
)


class CliError(Exception):
    """Ends the command with ``code`` after printing ``message`` (one paragraph) on stderr."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------- HTTP


def _problem_message(response: httpx.Response) -> str:
    """An RFC 9457 problem (or any error body) as one line: title, detail and field errors."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return f"HTTP {response.status_code}" + (f": {text[0][:200]}" if text else "")
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    message = str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")
    errors = body.get("errors") or []
    if errors:
        parts = [f"{e.get('path', '?')}: {e.get('message', '')}" for e in errors]
        if not any(p in message for p in parts):
            message += " — " + "; ".join(parts)
    return message


class Service:
    """The JSON API over httpx; every failure becomes a :class:`CliError`."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise CliError(f"--url must be an http:// or https:// URL, got {url!r}")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, *, not_found: str | None = None, **kw: Any
    ) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise CliError(
                f"the optbench service at {self.url} did not answer in time", 3
            ) from None
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the optbench service at {self.url} ({exc}); start it with "
                "`make run`, point --url / OPTBENCH_URL at it, or use --local",
                3,
            ) from None
        if response.status_code == 404 and not_found:
            raise CliError(not_found)
        if response.status_code >= 500:
            raise CliError(f"the service failed: {_problem_message(response)}", 3)
        if response.status_code >= 400:
            raise CliError(_problem_message(response))
        return response

    def get_json(self, path: str, *, not_found: str | None = None, **kw: Any) -> Any:
        return self.request("GET", path, not_found=not_found, **kw).json()

    def experiment(self, experiment_id: str, etag: str | None = None) -> httpx.Response:
        headers = {"If-None-Match": etag} if etag else {}
        return self.request(
            "GET",
            f"/v1/experiments/{experiment_id}",
            headers=headers,
            not_found=f"no experiment {experiment_id!r} at {self.url}",
        )


# ------------------------------------------------------------------------------------- input


def parse_fraction(text: str) -> float:
    """``5%`` → 0.05; a plain number is already a fraction (``0.05``)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a percentage like 5% or 0.05, got {text!r}"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative amount, got {text!r}")
    return value


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {text!r}")
    return value


def write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot write it ({exc})") from None


# ------------------------------------------------------------------------------------- output


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: text left-aligned, numbers right-aligned."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def progress_text(exp: Mapping[str, Any]) -> str:
    counts = exp.get("counts") or {}
    parts = [
        f"{counts[k]} {k}"
        for k in ("succeeded", "running", "queued", "failed", "cancelled")
        if counts.get(k)
    ]
    return f"{exp['status']} {exp.get('progress', 0.0):.0%} ({', '.join(parts) or 'no runs'})"


# ------------------------------------------------------------------------------------- engine


def local_results(spec_doc: Any, source: str, quiet: bool) -> list[dict[str, Any]]:
    """Validate the spec and run every run in this process (the engine's own loop)."""
    from pydantic import ValidationError

    from engine.spec import expand, format_errors, parse_experiment

    try:
        spec = parse_experiment(spec_doc)
    except ValidationError as exc:
        raise CliError(f"{source}: {format_errors(exc)}") from None
    return run_with_progress(expand(spec), source=source, quiet=quiet)


# ------------------------------------------------------------------------------------- service


def submit(service: Service, spec_doc: Any, idempotency_key: str | None) -> dict[str, Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = service.request("POST", "/v1/experiments", json=spec_doc, headers=headers)
    return dict(response.json())


def wait(
    service: Service,
    exp: dict[str, Any],
    *,
    quiet: bool,
    timeout: float | None,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the experiment (``If-None-Match``: unchanged → 304, no body) until it finishes."""
    from tqdm import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    etag: str | None = None
    with tqdm(
        total=exp["total_runs"],
        unit="run",
        desc=exp["name"][:30],
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
    ) as bar:
        while True:
            response = service.experiment(exp["id"], etag)
            if response.status_code != 304:
                exp = response.json()
                etag = response.headers.get("etag")
                counts = exp.get("counts") or {}
                bar.n = sum(int(counts.get(k, 0)) for k in TERMINAL)
                bar.set_postfix_str(exp["status"], refresh=False)
                bar.refresh()
            if exp["status"] in TERMINAL:
                return exp
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(
                    f"experiment {exp['id']} still {exp['status']} after {timeout:g} s "
                    "(it keeps running; follow it with `optbench status`)",
                    1,
                )
            sleep(interval)


def service_records(service: Service, experiment_id: str) -> list[dict[str, Any]]:
    from api.services.summary import load_records

    doc = service.get_json(
        f"/v1/experiments/{experiment_id}/runs.json",
        not_found=f"no experiment {experiment_id!r} at {service.url}",
    )
    return load_records(doc)


# ------------------------------------------------------------------------------------- commands


def cmd_submit(args: argparse.Namespace, out: TextIO) -> int:
    spec_doc = read_json(args.spec, "spec file")
    if args.local:
        results = local_results(spec_doc, args.spec, args.quiet)
        if args.out:
            write_text(args.out, json.dumps(results_document(results), allow_nan=False) + "\n")
        print_result_table(results, out)
        return 0
    service = Service(args.url)
    try:
        exp = submit(service, spec_doc, args.idempotency_key)
        print(f"experiment {exp['id']}: {exp['total_runs']} runs, {exp['status']}", file=out)
        print(f"  {service.url}/#/experiments/{exp['id']}", file=out)
        if not args.wait:
            return 0
        exp = wait(service, exp, quiet=args.quiet, timeout=args.timeout)
        print(f"experiment {exp['id']}: {progress_text(exp)}", file=out)
        if args.out:
            doc = service.get_json(f"/v1/experiments/{exp['id']}/runs.json")
            write_text(args.out, json.dumps(doc, allow_nan=False) + "\n")
        return 0 if exp["status"] == "succeeded" else 1
    finally:
        service.close()


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    service = Service(args.url)
    try:
        exp = service.experiment(args.id).json()
    finally:
        service.close()
    if args.json:
        print(json.dumps(exp, indent=2), file=out)
        return 0
    print(f"{exp['name']} ({exp['id']})", file=out)
    print(f"  status:   {progress_text(exp)}", file=out)
    print(f"  runs:     {exp['total_runs']}", file=out)
    for key in ("created_at", "started_at", "finished_at"):
        if exp.get(key):
            print(f"  {key.replace('_at', ''):9} {exp[key]}", file=out)
    return 0


def results_document(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Locally computed runs in the shape of the service's ``runs.json`` (one flat row per run)."""
    from api.services.summary import export_rows

    columns, rows = export_rows(records)
    return {"experiment_id": None, "columns": columns, "runs": rows}


def print_result_table(records: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    from api.services.summary import export_rows

    _, rows = export_rows(records)
    print(table(RESULT_COLUMNS, [[row.get(c) for c in RESULT_COLUMNS] for row in rows]), file=out)


def cmd_results(args: argparse.Namespace, out: TextIO) -> int:
    service = Service(args.url)
    missing = f"no experiment {args.id!r} at {service.url}"
    try:
        if args.format == "csv":
            text = service.request(
                "GET", f"/v1/experiments/{args.id}/runs.csv", not_found=missing
            ).text
            out.write(text)
            return 0
        doc = service.get_json(f"/v1/experiments/{args.id}/runs.json", not_found=missing)
    finally:
        service.close()
    if args.format == "json":
        print(json.dumps(doc, indent=2, allow_nan=False), file=out)
        return 0
    from api.services.summary import load_records

    print_result_table(load_records(doc), out)
    return 0


def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    service = Service(args.url)
    try:
        summary = service.get_json(
            f"/v1/experiments/{args.id}/summary",
            params={"baseline": args.baseline, "metric": args.metric, "max_points": 2},
            not_found=f"no experiment {args.id!r} at {service.url}",
        )
    finally:
        service.close()
    if args.format == "json":
        print(json.dumps(summary["comparisons"], indent=2, allow_nan=False), file=out)
        return 0
    print(render_comparison(summary), file=out)
    return 0


def render_comparison(summary: Mapping[str, Any]) -> str:
    """Per problem: the baseline and each solver's statistics, p (Holm) and effect size."""
    metric = summary["metric"]
    groups = {g["id"]: g for g in summary["groups"]}
    blocks = []
    for comp in summary["comparisons"]:
        base = groups[comp["baseline_group_id"]]
        rows = [_comparison_row(base, metric, None)]
        rows += [_comparison_row(groups[p["group_id"]], metric, p) for p in comp["pairs"]]
        headers = (
            "solver",
            "runs",
            f"mean {metric}",
            "95% CI",
            "median",
            "IQR",
            "success",
            "Δ median",
            "p (Holm)",
            "effect",
            "verdict",
        )
        blocks.append(
            f"{comp['problem']} — baseline {comp['baseline']}, metric {metric}\n"
            + table(headers, rows)
        )
    if not blocks:
        return "no runs to compare yet"
    note = (
        "Δ median: median over seeds of (solver − baseline); p: Wilcoxon signed-rank over seeds, "
        "Holm-corrected per problem; effect: matched-pairs rank-biserial (−1: better on every "
        "seed, +1: worse on every seed)."
    )
    return "\n\n".join(blocks) + "\n\n" + note


def _comparison_row(
    group: Mapping[str, Any], metric: str, pair: Mapping[str, Any] | None
) -> list[Any]:
    m = group["metrics"][metric]
    ci = (
        f"{m['ci_low']:.4g} … {m['ci_high']:.4g}"
        if m["ci_low"] is not None and m["ci_high"] is not None
        else None
    )
    success = group.get("success_rate")
    return [
        group["solver"],
        group["n_runs"],
        m["mean"],
        ci,
        m["median"],
        m["iqr"],
        f"{success:.0%}" if success is not None else None,
        pair["median_diff"] if pair else None,
        pair["p_holm"] if pair else None,
        pair["effect"] if pair else None,
        pair["verdict"] if pair else "baseline",
    ]


def cmd_gate(args: argparse.Namespace, out: TextIO) -> int:
    from api.services.summary import SummaryError, gate, load_records

    baseline_doc = read_json(args.baseline, "results file")
    try:
        baseline = load_records(baseline_doc)
    except (SummaryError, KeyError, TypeError) as exc:
        raise CliError(f"{args.baseline}: not a results file ({exc})") from None
    spec_doc = read_json(args.spec, "spec file")
    if args.local:
        current = local_results(spec_doc, args.spec, args.quiet)
        saved: Any = results_document(current)
    else:
        service = Service(args.url)
        try:
            exp = submit(service, spec_doc, None)
            print(f"experiment {exp['id']}: {exp['total_runs']} runs", file=out)
            exp = wait(service, exp, quiet=args.quiet, timeout=args.timeout)
            saved = service.get_json(f"/v1/experiments/{exp['id']}/runs.json")
        finally:
            service.close()
        current = load_records(saved)
        if exp["status"] != "succeeded":
            raise CliError(
                f"experiment {exp['id']} ended {progress_text(exp)}: no verdict on runs that did "
                "not complete",
                1,
            )
    if args.save_results:
        write_text(args.save_results, json.dumps(saved, allow_nan=False) + "\n")
    try:
        verdicts = gate(
            current,
            baseline,
            metric=args.metric,
            max_regression=args.max_regression,
            abs_tol=args.abs_tol,
        )
    except SummaryError as exc:
        raise CliError(str(exc)) from None
    compared = [v for v in verdicts if v.status not in ("new", "missing")]
    if not compared:
        raise CliError(
            f"{args.baseline} shares no group (problem, budget, optimizer, schedule) with "
            f"{args.spec}: nothing to compare"
        )
    print(render_gate(verdicts, args), file=out)
    if args.junit:
        write_text(args.junit, junit_xml(verdicts, args))
    return 1 if any(v.status == "regression" for v in verdicts) else 0


_MARK = {"ok": "PASS", "improved": "PASS", "regression": "FAIL", "new": "NEW", "missing": "MISSING"}


def _verdict_numbers(v: Any, metric: str) -> str:
    cur, base = v.current or {}, v.baseline or {}
    parts = []
    if cur.get("mean") is not None:
        ci = (
            f" [{cur['ci_low']:.4g}, {cur['ci_high']:.4g}]" if cur.get("ci_low") is not None else ""
        )
        parts.append(f"{metric} {cur['mean']:.6g}{ci}")
    if base.get("mean") is not None:
        parts.append(f"baseline {base['mean']:.6g}")
    return ", ".join(parts)


def render_gate(verdicts: Sequence[Any], args: argparse.Namespace) -> str:
    lines = [
        f"gate on {args.metric}: a group regresses when more runs diverge, fewer reach the target, "
        f"or its 95% CI of the mean is worse than the baseline mean by more than "
        f"{args.max_regression:.4g}×|baseline| + {args.abs_tol:g}",
    ]
    rows = []
    for v in verdicts:
        detail = "; ".join(v.reasons) if v.reasons else _verdict_numbers(v, args.metric)
        if v.status == "improved":
            detail = "improved: " + detail
        rows.append([_MARK[v.status], v.problem, v.solver, detail])
    lines.append(table(("", "problem", "solver", "detail"), rows))
    n_bad = sum(v.status == "regression" for v in verdicts)
    n_cmp = sum(v.status not in ("new", "missing") for v in verdicts)
    verdict = (
        f"FAILED: {n_bad} of {n_cmp} groups regressed"
        if n_bad
        else f"PASSED: no regression in {n_cmp} groups"
    )
    lines.append(verdict)
    return "\n".join(lines)


def junit_xml(verdicts: Sequence[Any], args: argparse.Namespace) -> str:
    """JUnit XML: one test case per group; a regression is a failure, new/missing are skipped."""
    suite = ET.Element(
        "testsuite",
        name="optbench gate",
        tests=str(len(verdicts)),
        failures=str(sum(v.status == "regression" for v in verdicts)),
        skipped=str(sum(v.status in ("new", "missing") for v in verdicts)),
        errors="0",
    )
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"optbench.{v.problem}", name=v.solver)
        numbers = _verdict_numbers(v, args.metric)
        if v.status == "regression":
            failure = ET.SubElement(case, "failure", message="; ".join(v.reasons))
            failure.text = numbers
        elif v.status == "new":
            ET.SubElement(case, "skipped", message="not in the baseline")
        elif v.status == "missing":
            ET.SubElement(case, "skipped", message="in the baseline but not in this run")
        else:
            ET.SubElement(case, "system-out").text = f"{v.status}: {numbers}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from api.services.summary import GROUP_METRICS

    parser = argparse.ArgumentParser(
        prog="optbench",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("OPTBENCH_URL") or DEFAULT_URL,
        help="the service (default: $OPTBENCH_URL or %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", help="submit an experiment spec (JSON)")
    p.add_argument("spec", help="experiment spec JSON file ('-' for standard input)")
    p.add_argument("--wait", action="store_true", help="follow it; exit 0 only if all runs succeed")
    p.add_argument("--idempotency-key", help="resubmitting with the same key returns the original")
    p.add_argument("--timeout", type=non_negative, help="with --wait: give up after this many s")
    p.add_argument("--out", help="write the results JSON here (with --wait or --local)")
    p.add_argument("--local", action="store_true", help="run the engine in this process")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="an experiment's status and progress")
    p.add_argument("id")
    p.add_argument("--json", action="store_true", help="the experiment object as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("results", help="one row per run: hyper-parameters and metrics")
    p.add_argument("id")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("compare", help="every solver against a baseline solver, per problem")
    p.add_argument("id")
    p.add_argument(
        "--baseline",
        required=True,
        help="the baseline solver: its label (e.g. 'adam(lr=0.001) / constant', or a unique "
        "part of it) or its id",
    )
    p.add_argument(
        "--metric",
        choices=GROUP_METRICS,
        default="final_loss",
        metavar="METRIC",
        help="one of: %(choices)s (default %(default)s)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "gate",
        help="run a spec and fail on a regression against saved results",
        description="Run SPEC and compare each group (problem × solver) with the same group in "
        "the baseline results. A group regresses when (1) more of its runs diverge, (2) with a "
        "target loss, a smaller share of its runs reach it, or (3) the whole 95% bootstrap CI "
        "of its mean METRIC is worse than the baseline mean by more than MAX_REGRESSION × "
        "|baseline mean| + ABS_TOL. Groups only on one side are reported (new / missing) but do "
        "not fail the gate. Exit 1 on a regression.",
    )
    p.add_argument("spec", help="experiment spec JSON file")
    p.add_argument(
        "--baseline",
        required=True,
        help="results JSON: `optbench results ID --format json`, `optbench submit --local --out`, "
        "`python -m engine run --out` or a previous `gate --save-results`",
    )
    p.add_argument(
        "--max-regression",
        type=parse_fraction,
        default=0.05,
        help="relative tolerance, e.g. 5%% or 0.05 (default 5%%)",
    )
    p.add_argument(
        "--abs-tol", type=non_negative, default=0.0, help="absolute tolerance added (default 0)"
    )
    p.add_argument(
        "--metric",
        choices=GROUP_METRICS,
        default="final_loss",
        metavar="METRIC",
        help="one of: %(choices)s (default %(default)s)",
    )
    p.add_argument("--junit", help="write a JUnit XML report here")
    p.add_argument("--save-results", help="write this run's results JSON here (a new baseline)")
    p.add_argument("--local", action="store_true", help="run the engine in this process")
    p.add_argument("--timeout", type=non_negative, help="give up waiting after this many s")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_gate)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args, out or sys.stdout)
    except CliError as exc:
        print(f"optbench: error: {exc}", file=sys.stderr)
        code = exc.code
    except UsageError as exc:
        print(f"optbench: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("optbench: interrupted", file=sys.stderr)
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
