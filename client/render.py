"""Plain-text output: tables, the comparison against a baseline and the gate's verdicts."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from analysis.export import export_rows

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


def results_document(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Locally computed runs in the shape of the service's ``runs.json`` (one flat row per run)."""

    columns, rows = export_rows(records)
    return {"experiment_id": None, "columns": columns, "runs": rows}


def print_result_table(records: Sequence[Mapping[str, Any]], out: TextIO) -> None:

    _, rows = export_rows(records)
    print(table(RESULT_COLUMNS, [[row.get(c) for c in RESULT_COLUMNS] for row in rows]), file=out)


def render_comparison(summary: Mapping[str, Any]) -> str:
    """Per problem: the baseline and each solver's statistics (success rate beside every
    location statistic), the test, p (Holm), effect size and verdict, with the notes that say
    what a row cannot tell."""
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
            "success",
            f"mean {metric}",
            "95% CI (t)",
            "median",
            "median CI",
            "Δ median",
            "test",
            "p (Holm)",
            "effect",
            "verdict",
        )
        notes = sorted({p["note"] for p in comp["pairs"] if p.get("note")})
        shown = [base, *(groups[p["group_id"]] for p in comp["pairs"])]
        notes += _group_notes(shown, metric)
        blocks.append(
            f"{comp['problem']} — baseline {comp['baseline']}, metric {metric}\n"
            + table(headers, rows)
            + "".join(f"\n  note: {n}" for n in notes)
        )
    if not blocks:
        return "no runs to compare yet"
    rule = f"baseline: {summary.get('baseline_rule')}"
    if summary.get("baseline_note"):
        rule += f" — {summary['baseline_note']}"
    legend = (
        "success: runs that neither failed nor missed the target; a failed run is the worst "
        f"{metric} (no mean; quantiles rank it last). Δ median: median over seeds of (solver − "
        "baseline); test: exact sign-flip below 6 pairs, else Wilcoxon signed-rank, "
        "Holm-corrected per problem; effect: matched-pairs rank-biserial (−1: lower on every "
        "seed, +1: higher on every seed)."
    )
    return "\n\n".join(blocks) + "\n\n" + rule + "\n" + legend


def _group_notes(shown: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """Each distinct note of the shown groups (deterministic runs, no interval at n = 1, a median
    interval below 95 %, failures) once, with the solvers it applies to."""
    by_text: dict[str, list[str]] = {}
    for g in shown:
        for text in (g.get("note"), g["metrics"][metric].get("note")):
            if text:
                by_text.setdefault(text, []).append(g["solver"])
    return [f"{text} ({', '.join(solvers)})" for text, solvers in by_text.items()]


def _interval(low: Any, high: Any, level: float | None = None) -> str | None:
    if low is None and high is None:
        return None
    text = f"{fmt(low)} … {fmt(high)}"
    return text + (f" ({level:.0%})" if level is not None and level < 0.95 else "")


def _comparison_row(
    group: Mapping[str, Any], metric: str, pair: Mapping[str, Any] | None
) -> list[Any]:
    m = group["metrics"][metric]
    success = group.get("success_rate")
    return [
        group["solver"],
        group["n_runs"],
        f"{success:.0%}" if success is not None else None,
        m["mean"],
        _interval(m["ci_low"], m["ci_high"]),
        m["median"],
        _interval(m["median_ci_low"], m["median_ci_high"], m["median_ci_level"]),
        pair["median_diff"] if pair else None,
        (pair["test"] or "exact") if pair else None,
        pair["p_holm"] if pair else None,
        pair["effect"] if pair else None,
        pair["verdict"] if pair else "baseline",
    ]


_MARK = {"ok": "PASS", "improved": "PASS", "regression": "FAIL", "new": "NEW", "missing": "MISSING"}


def render_gate(verdicts: Sequence[Any], args: argparse.Namespace) -> str:
    """One line per group — baseline vs now with intervals, and the reason of a failure."""
    lines = [
        f"gate on {args.metric}: a group regresses when its failure or miss rate is higher beyond "
        f"chance (Fisher exact, one-sided, α = {args.alpha:g}) or its mean is worse by more than "
        f"{args.max_regression:.4g}×|baseline| + {args.abs_tol:g} (95% Welch interval of the "
        "difference)",
    ]
    rows = []
    for v in verdicts:
        text = verdict_text(v)
        rows.append([_MARK[v.status], v.problem, v.solver, text])
    lines.append(table(("", "problem", "solver", "baseline vs now"), rows))
    n_bad = sum(v.status == "regression" for v in verdicts)
    n_cmp = sum(v.status not in ("new", "missing") for v in verdicts)
    verdict = (
        f"FAILED: {n_bad} of {n_cmp} groups regressed"
        if n_bad
        else f"PASSED: no regression in {n_cmp} groups"
    )
    lines.append(verdict)
    return "\n".join(lines)


def verdict_text(v: Any) -> str:
    """The verdict's reasons (when it failed) followed by its baseline-vs-now numbers."""
    if v.status == "new":
        return "not in the baseline"
    if v.status == "missing":
        return "in the baseline but not in this run"
    head = "REGRESSION: " + "; ".join(v.reasons) + " — " if v.reasons else ""
    return head + ("improved: " if v.status == "improved" else "") + v.detail
