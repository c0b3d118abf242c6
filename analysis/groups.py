"""Groups of runs that differ only by seed, their short labels, and resolving a user's solver
reference to one of them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from analysis.records import (
    BUDGET_FIELDS,
    NESTED,
    RunRecord,
    SummaryError,
    canonical,
    digest,
    flatten,
    normalize,
    outcomes,
)
from engine.spec import RunSpec


@dataclass
class Group:
    """The runs of one (problem, solver) pair, ordered by seed.

    ``problem`` + ``budget`` and ``solver`` are the run spec *resolved* by the engine (defaults
    filled in), so two runs fall in one group exactly when every hyper-parameter agrees, however
    their specs were written.
    """

    id: str
    problem_id: str
    solver_id: str
    problem: dict[str, Any]
    budget: dict[str, Any]
    solver: dict[str, Any]
    records: list[RunRecord] = field(default_factory=list)
    problem_label: str = ""
    solver_label: str = ""
    #: Per-group results that every part of a summary asks for again (outcomes per metric, the
    #: success rates): computed once. Records must not change after grouping.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def optimizer(self) -> dict[str, Any]:
        return dict(self.solver["optimizer"])

    @property
    def schedule(self) -> dict[str, Any]:
        return dict(self.solver["schedule"])

    @property
    def seeds(self) -> list[int]:
        return [int(r["spec"]["seed"]) for r in self.records]

    def values(self, metric: str) -> list[float | None]:
        """Each run's :func:`~analysis.records.outcome`: failures as the worst value, pending runs
        as ``None``."""
        key = ("values", metric)
        if key not in self.memo:
            self.memo[key] = outcomes(self.records, metric)
        return list(self.memo[key])

    def by_seed(self, metric: str) -> dict[int, float | None]:
        return dict(zip(self.seeds, self.values(metric), strict=True))


def fill_values(groups: Sequence[Group], metric: str) -> None:
    """:meth:`Group.values` of every group at once (:func:`~analysis.records.outcomes` of all
    their runs in one batch)."""
    todo = [g for g in groups if ("values", metric) not in g.memo]
    found = outcomes([r for g in todo for r in g.records], metric)
    start = 0
    for g in todo:
        g.memo["values", metric] = found[start : start + len(g.records)]
        start += len(g.records)


@lru_cache(maxsize=65536)
def _resolve(spec_json: str) -> str:
    """A run spec (without its seed) as the engine resolves it: validated, defaults filled in,
    fields added later left out at their default (as in the engine's run id). A spec the engine
    no longer accepts (an old baseline) is kept as written."""
    doc = json.loads(spec_json)
    try:
        # what the engine's canonical_json encodes (JSON values: a text round trip is the same)
        resolved = RunSpec.model_validate({**doc, "seed": 0}).model_dump(mode="json")
    except ValidationError:
        resolved = {k: v for k, v in doc.items() if not (k == "schedule_unit" and v == "step")}
    resolved.pop("seed", None)
    return canonical(resolved)


def resolved_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The run spec without its seed, resolved by the engine (see :func:`_resolve`)."""
    result: dict[str, Any] = json.loads(
        _resolve(canonical({k: v for k, v in spec.items() if k != "seed"}))
    )
    return result


@lru_cache(maxsize=65536)
def _full(spec_json: str) -> str:
    doc = json.loads(spec_json)
    try:
        return canonical(RunSpec.model_validate({**doc, "seed": 0}).model_dump(mode="json"))
    except ValidationError:
        return spec_json


def full_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The run spec with every field the engine fills in by default (``schedule_unit`` included,
    which a stored spec leaves out at its default), the seed as given: what an export shows."""
    body = {k: v for k, v in spec.items() if k != "seed"}
    out: dict[str, Any] = json.loads(_full(canonical(body)))
    out["seed"] = spec.get("seed")
    return out


def problem_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The problem side of a resolved spec: the problem and the budget."""
    return {"problem": spec["problem"], **{k: spec.get(k) for k in BUDGET_FIELDS}}


def solver_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The solver side of a resolved spec: everything but the problem, the budget and the seed."""
    return {k: v for k, v in spec.items() if k not in ("problem", "seed", *BUDGET_FIELDS)}


def group_runs(
    records: Iterable[Mapping[str, Any]], keys: Iterable[Hashable] | None = None
) -> list[Group]:
    """Records grouped by (problem, solver), groups in first-seen order, runs sorted by seed.

    Labels name each spec by its registry name plus only the fields that vary among the specs of
    that name in this set of runs (``adam(lr=0.01)`` when Adam was swept over ``lr``), so they
    are short, unique and stable for a given experiment. Linear in the number of runs.

    Each distinct spec is resolved once, found by its key: ``keys`` (one per record, equal for
    two records only if their specs agree but for the seed — a stored spec's text without its
    seed, say) spare encoding every spec; by default the spec's canonical JSON without the seed.
    Keys only avoid work: specs written differently that resolve alike share a group either way.
    """
    groups: dict[str, Group] = {}
    by_spec: dict[Hashable, Group] = {}
    keyed = zip(records, keys, strict=True) if keys is not None else ((r, None) for r in records)
    for raw, given in keyed:
        record = normalize(raw)
        key = (
            given
            if given is not None
            else canonical({k: v for k, v in record["spec"].items() if k != "seed"})
        )
        group = by_spec.get(key)
        if group is None:
            spec = resolved_spec(record["spec"])
            pkey, skey = problem_key(spec), solver_key(spec)
            pid, sid = digest(pkey), digest(skey)
            gid = digest([pid, sid])
            group = groups.get(gid)
            if group is None:
                budget = {k: v for k, v in pkey.items() if k != "problem"}
                group = Group(gid, pid, sid, spec["problem"], budget, skey)
                groups[gid] = group
            by_spec[key] = group
        group.records.append(record)
    out = list(groups.values())
    for group in out:
        group.records.sort(key=lambda r: int(r["spec"]["seed"]))
    varying_budget = _varying(g.budget for g in out)
    problems = _labels(
        {g.problem_id: {**g.problem, **{k: g.budget.get(k) for k in varying_budget}} for g in out}
    )
    names = [(digest(g.solver["optimizer"]), digest(g.solver["schedule"])) for g in out]
    optimizers = _labels({o: g.solver["optimizer"] for g, (o, _) in zip(out, names, strict=True)})
    schedules = _labels({d: g.solver["schedule"] for g, (_, d) in zip(out, names, strict=True)})
    others = _varying({k: v for k, v in g.solver.items() if k not in NESTED} for g in out)
    for group, (o, d) in zip(out, names, strict=True):
        group.problem_label = problems[group.problem_id]
        extra = "".join(f", {k}={fmt_value(group.solver.get(k))}" for k in others)
        group.solver_label = f"{optimizers[o]} / {schedules[d]}{extra}"
    return out


def _varying(dicts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The keys whose value differs between the mappings, a missing key counting as a value of
    its own (one pass over them)."""
    values: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    count = 0
    for d in dicts:
        count += 1
        for k, v in d.items():
            values.setdefault(k, set()).add(canonical(v))
            present[k] = present.get(k, 0) + 1
    return sorted(k for k in values if len(values[k]) > 1 or present[k] < count)


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


def resolve_solvers(groups: Sequence[Group], query: str) -> list[str]:
    """The solver ids a user's reference names, tried in this order:

    1. a solver or group id (or a unique prefix of one), a solver label as the summary shows it
       (``adam(lr=0.001) / constant``) or a group label (``<problem> / <solver>``);
    2. hyper-parameters, ``name(k=v, …)`` optionally followed by ``/ schedule(k=v, …)``, matched
       against every resolved field (not only the swept ones the labels show): ``sgd(lr=0.01)``
       names SGD at lr 0.01 whatever its other settings;
    3. a case-insensitive part of a solver label.

    The first rule that matches anything decides. Several solvers are returned only when they
    share one optimizer and differ in the schedule (``sgd(lr=0.01)`` in a spec that also sweeps
    schedules): each is then the baseline of the solvers with its schedule. Anything else that
    matches several solvers, or nothing, is a :class:`SummaryError` listing the choices.
    """
    solvers = solvers_of(groups)
    labels = dict(solvers)
    by_group = {g.id: g.solver_id for g in groups}
    by_group_label = {f"{g.problem_label} / {g.solver_label}": g.solver_id for g in groups}
    exact = [sid for sid, label in solvers if query in (sid, label)]
    exact += [by_group[query]] if query in by_group else []
    exact += [by_group_label[query]] if query in by_group_label else []
    prefix = [sid for sid, _ in solvers if sid.startswith(query)]
    prefix += [by_group[gid] for gid in by_group if gid.startswith(query)]
    within = [sid for sid, label in solvers if query.lower() in label.lower()]
    solver_of = {g.solver_id: g.solver for g in groups}
    by_params = [sid for sid, _ in solvers if _matches(solver_of[sid], query)]
    for candidates in (exact, sorted(set(prefix)), by_params, within):
        found = list(dict.fromkeys(candidates))
        if len(found) == 1:
            return found
        if len(found) > 1:
            optimizers = {canonical(solver_of[sid]["optimizer"]) for sid in found}
            if len(optimizers) == 1:
                return found
            raise SummaryError(
                f"{query!r} matches several solvers: "
                + "; ".join(labels[sid] for sid in found)
                + " — name one of them (its label, as listed)"
            )
    known = "; ".join(label for _, label in solvers)
    raise SummaryError(f"no solver matches {query!r}; known: {known}")


_CALL = re.compile(r"^\s*([\w.-]+)\s*(?:\((.*)\))?\s*$")


def _parse_call(text: str) -> tuple[str, dict[str, str]] | None:
    """``name(k=v, …)`` as (name, {k: v}); ``None`` when the text is not of that form."""
    m = _CALL.match(text)
    if m is None:
        return None
    params: dict[str, str] = {}
    for part in _split_top(m.group(2) or ""):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            return None
        params[key.strip()] = value.strip()
    return m.group(1), params


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets (``betas=[0.9, 0.99], lr=0.1``)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[({"
        depth -= ch in "])}"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def _same(stored: Any, written: str) -> bool:
    """Whether a written value (``0.01``, ``true``, ``[0.9,0.99]``, ``cosine``) equals a stored
    one; numbers compare by value (``1e-2`` is ``0.01``)."""
    try:
        value = json.loads(written)
    except ValueError:
        value = written
    if isinstance(value, int | float) and isinstance(stored, int | float):
        return math.isclose(float(value), float(stored), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(stored, str):
        return stored == str(value)
    return canonical(stored) == canonical(value)


def _matches(solver: Mapping[str, Any], query: str) -> bool:
    """Whether ``query`` (``opt(k=v, …)[ / schedule(k=v, …)]``) names this resolved solver."""
    optimizer_part, _, schedule_part = query.partition("/")
    opt = _parse_call(optimizer_part)
    if opt is None or opt[0] != solver["optimizer"].get("name"):
        return False
    fields = {
        **{k: v for k, v in solver.items() if k not in NESTED},
        **flatten(solver["schedule"]),
        **flatten(solver["optimizer"]),
    }
    if not all(k in fields and _same(fields[k], v) for k, v in opt[1].items()):
        return False
    if not schedule_part.strip():
        return True
    sched = _parse_call(schedule_part)
    if sched is None or sched[0] != solver["schedule"].get("name"):
        return False
    flat = flatten(solver["schedule"])
    return all(k in flat and _same(flat[k], v) for k, v in sched[1].items())
