"""Groups of runs that differ only by seed, their short labels, and resolving a user's solver
reference to one of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.records import (
    RUN_FIELDS,
    RunRecord,
    SummaryError,
    canonical,
    digest,
    flatten,
    metric_value,
    normalize,
)


@dataclass
class Group:
    """The runs of one (problem, solver) pair, ordered by seed."""

    id: str
    problem_id: str
    solver_id: str
    problem: dict[str, Any]
    budget: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    records: list[RunRecord] = field(default_factory=list)
    problem_label: str = ""
    solver_label: str = ""

    @property
    def seeds(self) -> list[int]:
        return [int(r["spec"]["seed"]) for r in self.records]

    def values(self, metric: str) -> list[float | None]:
        return [metric_value(r, metric) for r in self.records]

    def by_seed(self, metric: str) -> dict[int, float | None]:
        return dict(zip(self.seeds, self.values(metric), strict=True))


def problem_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"problem": spec["problem"], **{k: spec.get(k) for k in RUN_FIELDS if k != "seed"}}


def solver_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"optimizer": spec["optimizer"], "schedule": spec["schedule"]}


def group_runs(records: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Records grouped by (problem, solver), groups in first-seen order, runs sorted by seed.

    Labels name each spec by its registry name plus only the fields that vary among the specs of
    that name in this set of runs (``adam(lr=0.01)`` when Adam was swept over ``lr``), so they
    are short, unique and stable for a given experiment.
    """
    groups: dict[str, Group] = {}
    for raw in records:
        record = normalize(raw)
        spec = record["spec"]
        pkey, skey = problem_key(spec), solver_key(spec)
        pid, sid = digest(pkey), digest(skey)
        gid = digest([pid, sid])
        group = groups.get(gid)
        if group is None:
            budget = {k: v for k, v in pkey.items() if k != "problem"}
            group = Group(
                gid, pid, sid, spec["problem"], budget, spec["optimizer"], spec["schedule"]
            )
            groups[gid] = group
        group.records.append(record)
    out = list(groups.values())
    for group in out:
        group.records.sort(key=lambda r: int(r["spec"]["seed"]))
    problems = _labels({g.problem_id: {**g.problem, **_varying_budget(out, g)} for g in out})
    optimizers = _labels({digest(g.optimizer): g.optimizer for g in out})
    schedules = _labels({digest(g.schedule): g.schedule for g in out})
    for group in out:
        group.problem_label = problems[group.problem_id]
        group.solver_label = (
            f"{optimizers[digest(group.optimizer)]} / {schedules[digest(group.schedule)]}"
        )
    return out


def _varying_budget(groups: Sequence[Group], group: Group) -> dict[str, Any]:
    """The budget fields that differ between problems (normally none within one experiment)."""
    return {
        k: v
        for k, v in group.budget.items()
        if len({canonical(g.budget.get(k)) for g in groups}) > 1
    }


def fmt_value(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


def _labels(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``name(k=v, …)`` per spec, listing the (dotted) fields that vary among same-named specs."""
    flat = {key: flatten(spec) for key, spec in specs.items()}
    by_name: dict[str, list[str]] = {}
    for key, f in flat.items():
        by_name.setdefault(str(f.get("name", "?")), []).append(key)
    labels: dict[str, str] = {}
    for name, keys in by_name.items():
        fields = sorted({k for key in keys for k in flat[key]} - {"name"})
        varying = [k for k in fields if len({canonical(flat[key].get(k)) for key in keys}) > 1]
        for key in keys:
            parts = [f"{k}={fmt_value(flat[key].get(k))}" for k in varying]
            labels[key] = f"{name}({', '.join(parts)})" if parts else name
    return labels


def solvers_of(groups: Sequence[Group]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for g in groups:
        seen.setdefault(g.solver_id, g.solver_label)
    return list(seen.items())


def problems_of(groups: Sequence[Group]) -> list[tuple[str, str, list[Group]]]:
    out: dict[str, tuple[str, list[Group]]] = {}
    for g in groups:
        out.setdefault(g.problem_id, (g.problem_label, []))[1].append(g)
    return [(pid, label, gs) for pid, (label, gs) in out.items()]


def resolve_solver(groups: Sequence[Group], query: str) -> str:
    """A solver id from a user's reference: a solver or group id (or a unique prefix of one),
    or a solver label (exact, else a unique case-insensitive substring)."""
    solvers = solvers_of(groups)
    by_group = {g.id: g.solver_id for g in groups}
    exact = [sid for sid, label in solvers if query in (sid, label)]
    if not exact and query in by_group:
        exact = [by_group[query]]
    prefix = [sid for sid, _ in solvers if sid.startswith(query)]
    prefix += [by_group[gid] for gid in by_group if gid.startswith(query)]
    within = [sid for sid, label in solvers if query.lower() in label.lower()]
    for candidates in (exact, sorted(set(prefix)), within):
        if len(set(candidates)) == 1:
            return candidates[0]
        if len(set(candidates)) > 1:
            raise SummaryError(
                f"{query!r} matches several solvers: "
                + ", ".join(label for sid, label in solvers if sid in candidates)
            )
    known = ", ".join(label for _, label in solvers)
    raise SummaryError(f"no solver matches {query!r}; known: {known}")
