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


_MARK = {"ok": "PASS", "improved": "PASS", "regression": "FAIL", "new": "NEW", "missing": "MISSING"}


def verdict_numbers(v: Any, metric: str) -> str:
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
        detail = "; ".join(v.reasons) if v.reasons else verdict_numbers(v, args.metric)
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
