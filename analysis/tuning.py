"""The tuning view: a metric against each swept hyper-parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.compare import best_key, best_rule
from analysis.groups import Group, fmt_value, problems_of
from analysis.records import canonical, check_metric, flatten
from analysis.stats import group_describe, group_rates

#: What each point of a tuning series carries from :func:`~analysis.stats.describe`.
POINT_STATS = (
    "mean",
    "ci_low",
    "ci_high",
    "median",
    "median_ci_low",
    "median_ci_high",
    "median_ci_level",
    "n_failed",
)


def tuning(groups: Sequence[Group], metric: str) -> list[dict[str, Any]]:
    """Metric vs each swept numeric hyper-parameter, per problem and optimizer (DeepOBS-style).

    A hyper-parameter is swept when it takes more than one value among the groups of that
    optimizer on that problem. Each series holds the groups that agree on every other varying
    field (other hyper-parameters, the schedule); each point carries the group's mean, median and
    their intervals and its success / divergence rates. ``best`` is the group chosen by
    :func:`~analysis.compare.best_rule` (success first) among all of that optimizer's groups on
    the problem, named in ``best_rule``. Linear in the number of groups per optimizer and
    swept hyper-parameter.
    """
    check_metric(metric)
    out = []
    for pid, plabel, pgroups in problems_of(groups):
        by_opt: dict[str, list[Group]] = {}
        for g in pgroups:
            by_opt.setdefault(str(g.optimizer.get("name")), []).append(g)
        for opt_name, ogroups in by_opt.items():
            flats = [flatten({"optimizer": g.optimizer, "schedule": g.schedule}) for g in ogroups]
            stats_of = {g.id: group_describe(g, metric) for g in ogroups}
            rates_of = {g.id: group_rates(g) for g in ogroups}
            keys = sorted({k for f in flats for k in f})
            varying = [k for k in keys if len({canonical(f.get(k)) for f in flats}) > 1]
            numeric = [
                k
                for k in varying
                if k.startswith("optimizer.")
                and all(
                    isinstance(f.get(k), int | float) and not isinstance(f.get(k), bool)
                    for f in flats
                )
            ]
            if not numeric:
                continue
            best = min(ogroups, key=lambda g: best_key(g, metric))
            has_best = rates_of[best.id]["success_rate"] is not None
            for param in numeric:
                others = [k for k in varying if k != param and k.startswith("optimizer.")]
                schedules_vary = any(k.startswith("schedule.") for k in varying)
                series: dict[str, list[dict[str, Any]]] = {}
                for g, f in zip(ogroups, flats, strict=True):
                    parts = [
                        f"{k.removeprefix('optimizer.')}={fmt_value(f.get(k))}" for k in others
                    ]
                    if schedules_vary:
                        parts.append(g.solver_label.rsplit(" / ", 1)[1])
                    label = ", ".join(parts)
                    s = stats_of[g.id]
                    series.setdefault(label, []).append(
                        {
                            "x": f[param],
                            "group_id": g.id,
                            **{k: s[k] for k in POINT_STATS},
                            **rates_of[g.id],
                        }
                    )
                xs = [float(f[param]) for f in flats]
                ordered: list[dict[str, Any]] = [
                    {"label": label, "points": sorted(points, key=lambda p: float(p["x"]))}
                    for label, points in series.items()
                ]
                out.append(
                    {
                        "problem_id": pid,
                        "problem": plabel,
                        "optimizer": opt_name,
                        "param": param.split(".", 1)[1],
                        "log_x": min(xs) > 0 and max(xs) / min(xs) >= 10,
                        "best_group_id": best.id if has_best else None,
                        "best_x": best.optimizer.get(param.split(".", 1)[1]) if has_best else None,
                        "best_rule": best_rule(metric),
                        "series": ordered,
                    }
                )
    return out
