"""optbench: submit experiments, follow them, fetch their results and gate CI on regressions.

Talks to the service at ``--url`` (default ``$OPTBENCH_URL``, else where ``make run`` serves:
``$OPTBENCH_HOST:$OPTBENCH_PORT``, by default ``http://127.0.0.1:8000``) with the API token
``--token`` (default ``$OPTBENCH_TOKEN``) when the service requires one;
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from analysis.export import to_csv
from analysis.gate import gate, mismatches
from analysis.records import GROUP_METRICS, SummaryError, load_records
from client.http import CliError, Service, default_url, submit, wait
from client.junit import junit_xml
from client.render import (
    print_result_table,
    progress_text,
    render_comparison,
    render_gate,
    results_document,
)
from engine.cli import UsageError, quiet_closed_stdout, read_json, run_with_progress

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


# ------------------------------------------------------------------------------------- commands


def cmd_submit(args: argparse.Namespace, out: TextIO) -> int:
    spec_doc = read_json(args.spec, "spec file")
    if args.local:
        results = local_results(spec_doc, args.spec, args.quiet)
        if args.out:
            write_text(args.out, json.dumps(results_document(results), allow_nan=False) + "\n")
        print_result_table(results, out)
        return 0
    service = Service(args.url, token=args.token)
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
    service = Service(args.url, token=args.token)
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


#: Run filters of ``results``: the name of the run's problem, optimizer or schedule.
NAMED = ("problem", "optimizer", "schedule")


def cmd_results(args: argparse.Namespace, out: TextIO) -> int:
    service = Service(args.url, token=args.token)
    missing = f"no experiment {args.id!r} at {service.url}"
    wanted = {kind: getattr(args, kind) for kind in NAMED if getattr(args, kind)}
    try:
        if args.format == "csv" and not wanted:
            text = service.request(
                "GET", f"/v1/experiments/{args.id}/runs.csv", not_found=missing
            ).text
            out.write(text)
            return 0
        doc = service.get_json(f"/v1/experiments/{args.id}/runs.json", not_found=missing)
    finally:
        service.close()
    if wanted:
        doc["runs"] = [
            row
            for row in doc["runs"]
            if all(row.get(f"{kind}.name") == name for kind, name in wanted.items())
        ]
    if args.format == "csv":
        out.write(to_csv(doc["columns"], doc["runs"]))
        return 0
    if args.format == "json":
        print(json.dumps(doc, indent=2, allow_nan=False), file=out)
        return 0

    print_result_table(load_records(doc), out)
    return 0


def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    service = Service(args.url, token=args.token)
    try:
        summary = service.get_json(
            f"/v1/experiments/{args.id}/summary",
            params={
                "baseline": args.baseline,
                "metric": args.metric,
                "max_points": 2,
                "curve_groups": 1,
            },
            not_found=f"no experiment {args.id!r} at {service.url}",
        )
    finally:
        service.close()
    if args.format == "json":
        print(json.dumps(summary["comparisons"], indent=2, allow_nan=False), file=out)
        return 0
    print(render_comparison(summary), file=out)
    return 0


def planned_runs(spec_doc: Any, source: str) -> list[dict[str, Any]]:
    """The runs a spec expands to, as records with a spec and nothing run yet."""
    from pydantic import ValidationError

    from engine.spec import expand, format_errors, parse_experiment

    try:
        spec = parse_experiment(spec_doc)
    except ValidationError as exc:
        raise CliError(f"{source}: {format_errors(exc)}") from None
    return [{"spec": run.model_dump(mode="json"), "status": "queued"} for run in expand(spec)]


def cmd_gate(args: argparse.Namespace, out: TextIO) -> int:
    baseline_doc = read_json(args.baseline, "results file")
    try:
        baseline = load_records(baseline_doc)
    except (SummaryError, KeyError, TypeError) as exc:
        raise CliError(f"{args.baseline}: not a results file ({exc})") from None
    spec_doc = read_json(args.spec, "spec file")
    # Checked before anything runs: a gate that compares different things cannot pass by accident.
    problems = mismatches(planned_runs(spec_doc, args.spec), baseline)
    if problems and not args.allow_mismatch:
        raise CliError(
            f"{args.spec} cannot be gated against {args.baseline}: "
            + "; ".join(problems)
            + " (--allow-mismatch compares the groups both have)"
        )
    if args.local:
        current: Sequence[Mapping[str, Any]] = local_results(spec_doc, args.spec, args.quiet)
        saved: Any = results_document(current)
    else:
        service = Service(args.url, token=args.token)
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
            alpha=args.alpha,
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


# ------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="optbench",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        default=default_url(os.environ),
        help="the service (default: $OPTBENCH_URL, else $OPTBENCH_HOST:$OPTBENCH_PORT as for "
        "make run: %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("OPTBENCH_TOKEN") or None,
        help="API token sent as 'Authorization: Bearer …' (default: $OPTBENCH_TOKEN)",
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
    for kind in NAMED:
        p.add_argument(f"--{kind}", metavar="NAME", help=f"only runs whose {kind} is NAME")
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
        description="Run SPEC and compare each group (problem × solver, matched by every "
        "resolved hyper-parameter) with the same group in the baseline results. Before anything "
        "runs, a group on one side only, a different steps / dtype / budget or problem set is an "
        "error (exit 2) unless --allow-mismatch. A group regresses when (1) its failure rate "
        "(diverged, failed, cancelled) or (2), with a target loss, its miss rate is higher than "
        "the baseline's beyond chance (Fisher's exact test, one-sided, p ≤ ALPHA; with too few "
        "runs for any test to reach ALPHA, any increase), or (3) the 95% Welch interval of the "
        "difference of the mean METRIC (over runs that did not fail) lies wholly beyond "
        "MAX_REGRESSION × |baseline mean| + ABS_TOL on the bad side. Exit 1 on a regression.",
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
    p.add_argument(
        "--alpha", type=parse_fraction, default=0.05, help="test level for rates (default 0.05)"
    )
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="gate the groups both sides have even if groups, steps, dtype or problems differ",
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
        (out or sys.stdout).flush()
    except BrokenPipeError:
        quiet_closed_stdout()
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
