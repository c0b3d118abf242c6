"""The task function called directly against real databases (SQLite and PostgreSQL).

Claims, idempotent redelivery, partial checkpoints, cancellation, lease fencing, failures and
the attempt limit — each checked on the stored rows.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from api.models import Run, RunCurve, utcnow
from api.store import cancel_experiment, claim_runs, load_curves
from engine.runner import plain_result, run_batch
from engine.spec import expand, parse_experiment
from tests.conftest import SIMPLE_SPEC, wait_for
from tests.results import plain_batch
from tests.worker.helpers import curves, experiment, long_spec, new_experiment, runs_of
from worker import tasks
from worker.runtime import Runtime
from worker.tasks import execute_chunk

EXACT_KEYS = (
    "eval_steps",
    "grad_evals",
    "losses",
    "params_x",
    "params_y",
    "lrs",
    "grad_norms",
    "update_norms",
)
EXACT_METRICS = ("final_loss", "best_loss", "suboptimality", "steps_to_target", "diverged")


def test_results_equal_the_engine_and_redelivery_is_a_no_op(rt: Runtime) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    assert execute_chunk(rt, experiment_id, ids) == {"claimed": 3, "dropped": 0, "written": 3}
    expected = plain_batch(expand(parse_experiment(SIMPLE_SPEC)))
    stored = runs_of(rt.db, experiment_id)
    for run, result in zip(stored, expected, strict=True):
        assert run.status == "succeeded" and run.attempts == 1 and run.lease_token is None
        assert run.spec_hash == result["run_id"]
        for key in EXACT_METRICS:
            assert getattr(run, key) == result[key], key
        got = curves(rt.db, run.id)
        for key in EXACT_KEYS:
            assert got[key] == result[key], key
    exp = experiment(rt.db, experiment_id)
    assert exp.status == "succeeded" and exp.finished_at is not None and exp.started_at is not None
    before = {(r.id, r.revision) for r in stored}

    def chunks() -> list[tuple[str, str, int, int]]:
        with rt.db.session() as session:
            rows = session.execute(
                select(RunCurve.run_id, RunCurve.name, RunCurve.seq, RunCurve.length).where(
                    RunCurve.run_id.in_(ids)
                )
            ).all()
        return sorted((r[0], r[1], r[2], r[3]) for r in rows)

    stored_chunks = chunks()
    # every curve (+ wall_times) stored, each point once
    assert len({(r, name) for r, name, _, _ in stored_chunks}) == 3 * len(EXACT_KEYS) + 3

    # The same message again (a redelivery): nothing to claim, nothing written.
    assert execute_chunk(rt, experiment_id, ids) == {"claimed": 0, "dropped": 0, "written": 0}
    assert {(r.id, r.revision) for r in runs_of(rt.db, experiment_id)} == before
    assert chunks() == stored_chunks


def test_running_run_shows_a_partial_curve(rt: Runtime) -> None:
    experiment_id, [run_id] = new_experiment(rt.db, long_spec())
    worker = threading.Thread(target=execute_chunk, args=(rt, experiment_id, [run_id]))
    worker.start()

    def partial() -> tuple[Run, dict[str, list[Any]]] | None:
        # the run row and its curves from one snapshot (SQLite: one read transaction in WAL
        # mode; PostgreSQL: REPEATABLE READ), so a checkpoint cannot land between the two reads
        with rt.db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            run = session.execute(select(Run).where(Run.id == run_id)).scalar_one()
            if run.status == "running" and run.steps_done > 0:
                return run, load_curves(session, run_id)
        return None

    run, snapshot = wait_for(partial, 30, "a checkpoint")
    worker.join()
    assert experiment(rt.db, experiment_id).status == "succeeded"
    final = curves(rt.db, run_id)
    assert 0 < len(snapshot["lrs"]) < len(final["lrs"])
    assert run.steps_done == len(snapshot["lrs"])
    for key in ("losses", "lrs", "grad_norms", "eval_steps"):
        assert final[key][: len(snapshot[key])] == snapshot[key], key


def test_cancel_stops_the_running_batch_and_skips_the_rest(rt: Runtime) -> None:
    experiment_id, ids = new_experiment(rt.db, long_spec(steps=60_000, dims=(3, 4)))
    worker = threading.Thread(target=execute_chunk, args=(rt, experiment_id, ids))
    worker.start()
    wait_for(lambda: runs_of(rt.db, experiment_id)[0].steps_done > 0, 30, "the first batch")
    with rt.db.writer() as session:
        cancel_experiment(session, experiment_id, utcnow())
        session.commit()
    started = time.monotonic()
    worker.join()
    assert time.monotonic() - started < 5
    first, second = runs_of(rt.db, experiment_id)
    assert first.status == second.status == "cancelled"
    assert first.stopped and 0 < first.steps_done < 60_000
    assert len(curves(rt.db, first.id)["lrs"]) == first.steps_done
    assert second.stopped and second.steps_done == 0
    assert curves(rt.db, second.id) == {}
    exp = experiment(rt.db, experiment_id)
    assert exp.status == "cancelled" and exp.finished_at is not None


def test_an_attempt_that_lost_its_lease_writes_nothing(rt: Runtime) -> None:
    experiment_id, [run_id] = new_experiment(rt.db, long_spec(steps=60_000))
    worker = threading.Thread(target=execute_chunk, args=(rt, experiment_id, [run_id]))
    worker.start()
    wait_for(lambda: runs_of(rt.db, experiment_id)[0].steps_done > 0, 30, "a checkpoint")
    with rt.db.writer() as session:  # another attempt takes the run over
        session.execute(update(Run).where(Run.id == run_id).values(lease_token="x" * 32))
        session.commit()
    started = time.monotonic()
    worker.join()
    assert time.monotonic() - started < 5, "the superseded attempt must stop at a checkpoint"
    [run] = runs_of(rt.db, experiment_id)
    assert run.status == "running" and run.lease_token == "x" * 32
    assert run.finished_at is None and run.steps_done < 60_000


def test_an_expired_attempt_is_taken_over_and_restarts_clean(rt: Runtime) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    stale = utcnow() - timedelta(seconds=1)
    with rt.db.writer() as session:  # attempt 1 died after a checkpoint
        session.execute(
            update(Run)
            .where(Run.id == ids[0])
            .values(status="running", lease_token="d" * 32, lease_expires_at=stale, attempts=1)
        )
        session.add(RunCurve(run_id=ids[0], name="lrs", seq=0, start=0, length=1, data=b"\0" * 8))
        session.commit()
    assert execute_chunk(rt, experiment_id, ids)["written"] == 3
    expected = plain_batch(expand(parse_experiment(SIMPLE_SPEC)))
    first = runs_of(rt.db, experiment_id)[0]
    assert first.attempts == 2 and first.status == "succeeded"
    assert curves(rt.db, first.id)["lrs"] == expected[0]["lrs"]


def test_a_live_lease_is_not_taken_over(rt: Runtime) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    live = utcnow() + timedelta(seconds=60)
    with rt.db.writer() as session:
        session.execute(
            update(Run)
            .where(Run.id == ids[0])
            .values(status="running", lease_token="l" * 32, lease_expires_at=live, attempts=1)
        )
        session.commit()
    assert execute_chunk(rt, experiment_id, ids) == {"claimed": 2, "dropped": 0, "written": 2}
    first = runs_of(rt.db, experiment_id)[0]
    assert first.status == "running" and first.lease_token == "l" * 32
    assert experiment(rt.db, experiment_id).status == "running"


def test_attempt_limit_fails_the_run(rt: Runtime) -> None:
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    stale = utcnow() - timedelta(seconds=1)
    with rt.db.writer() as session:
        session.execute(
            update(Run)
            .where(Run.id.in_(ids))
            .values(status="running", lease_token="d" * 32, lease_expires_at=stale, attempts=3)
        )
        session.commit()
    assert execute_chunk(rt, experiment_id, ids) == {"claimed": 0, "dropped": 3, "written": 0}
    for run in runs_of(rt.db, experiment_id):
        assert run.status == "failed" and "gave up after 3 attempts" in (run.error or "")
    assert experiment(rt.db, experiment_id).status == "failed"


def test_engine_error_fails_only_its_batch(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {**SIMPLE_SPEC, "problems": [{"name": "rosenbrock", "dim": [2, 3]}]}
    experiment_id, ids = new_experiment(rt.db, spec)
    real = tasks.run_batch

    def flaky(runs: Any, **kw: Any) -> Any:
        if runs[0].problem.dim == 3:
            raise FloatingPointError("overflow in the 3-d batch")
        return real(runs, **kw)

    monkeypatch.setattr(tasks, "run_batch", flaky)
    assert execute_chunk(rt, experiment_id, ids)["written"] == 6
    by_dim: dict[int, list[Run]] = {}
    for run in runs_of(rt.db, experiment_id):
        by_dim.setdefault(2 if '"dim":2' in run.spec else 3, []).append(run)
    assert all(r.status == "succeeded" and r.error is None for r in by_dim[2])
    assert all(
        r.status == "failed" and r.error == "FloatingPointError: overflow in the 3-d batch"
        for r in by_dim[3]
    )
    assert experiment(rt.db, experiment_id).status == "failed"


def test_the_celery_task_called_directly_twice(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registered task itself (not just its body) is safe to run twice for one message."""
    from worker import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "_runtime", rt)
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    assert tasks.run_chunk.name == "optbench.run_chunk"
    assert tasks.run_chunk(experiment_id, ids)["written"] == 3
    assert tasks.run_chunk(experiment_id, ids) == {"claimed": 0, "dropped": 0, "written": 0}
    assert experiment(rt.db, experiment_id).status == "succeeded"


def test_the_task_logs_its_wall_and_cpu_time(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The line the benches read: runs, wall seconds and the process's CPU seconds of the task."""
    from worker import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "_runtime", rt)
    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)
    with caplog.at_level("INFO", logger=tasks.log.name):
        tasks.run_chunk(experiment_id, ids)
    (record,) = [r for r in caplog.records if hasattr(r, "duration_s")]
    assert (record.experiment_id, record.runs) == (experiment_id, len(ids))
    assert isinstance(record.cpu_s, float) and record.cpu_s >= 0.0
    assert isinstance(record.duration_s, float) and record.duration_s >= 0.0


def test_soft_time_limit_fails_the_rest_of_the_chunk(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    spec = {**SIMPLE_SPEC, "problems": [{"name": "rosenbrock", "dim": [2, 3]}]}
    experiment_id, ids = new_experiment(rt.db, spec)
    real = tasks.run_batch

    def slow(runs: Any, **kw: Any) -> Any:
        if runs[0].problem.dim == 3:
            raise SoftTimeLimitExceeded()  # what Celery raises in the task at the soft limit
        return real(runs, **kw)

    monkeypatch.setattr(tasks, "run_batch", slow)
    execute_chunk(rt, experiment_id, ids)
    statuses = {run.spec_hash: (run.status, run.error) for run in runs_of(rt.db, experiment_id)}
    for run in expand(parse_experiment(spec)):
        status, error = statuses[run.run_id]
        if run.problem.dim == 2:
            assert (status, error) == ("succeeded", None)
        else:
            assert status == "failed"
            assert (
                error == f"exceeded the task time limit of {rt.settings.task_soft_time_limit_s:g} s"
            )


def test_a_failed_checkpoint_leaves_no_gap_in_the_stored_curves(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id, [run_id] = new_experiment(rt.db, long_spec(steps=40, dims=(2,)))
    with rt.db.writer() as session:
        claim = claim_runs(
            session,
            experiment_id,
            [run_id],
            token="a" * 32,
            now=utcnow(),
            lease_s=60,
            max_attempts=3,
        )
        session.commit()
    [result] = run_batch(list(claim.runs.values()))
    attempt = tasks.Attempt(rt, experiment_id, "a" * 32, {run_id})
    by_engine_id = {result["run_id"]: run_id}

    def first(n: int) -> dict[str, Any]:
        """The result as a checkpoint after ``n`` updates shows it."""
        return {**result, **{k: result[k][:n] for k in (*EXACT_KEYS, "wall_times")}}

    attempt.checkpoint(by_engine_id, [first(10)])
    real = tasks.save_checkpoint

    def lost_commit(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(tasks, "save_checkpoint", lost_commit)
    attempt.checkpoint(by_engine_id, [first(20)])  # logged and skipped; rolled back
    monkeypatch.setattr(tasks, "save_checkpoint", real)
    attempt.checkpoint(by_engine_id, [first(30)])
    stored = curves(rt.db, run_id)  # raises on a gap
    for key in EXACT_KEYS:
        assert stored[key] == plain_result(first(30))[key], key


def test_the_soft_time_limit_during_a_checkpoint_ends_the_batch(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    experiment_id, ids = new_experiment(rt.db, SIMPLE_SPEC)

    def out_of_time(*args: Any, **kwargs: Any) -> Any:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "save_checkpoint", out_of_time)
    assert execute_chunk(rt, experiment_id, ids)["written"] == 0
    limit = f"exceeded the task time limit of {rt.settings.task_soft_time_limit_s:g} s"
    assert [(r.status, r.error) for r in runs_of(rt.db, experiment_id)] == [("failed", limit)] * 3


def test_the_final_write_appends_to_checkpointed_curves_and_repairs_a_lost_commit(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpointed points are not written again at the end: each curve ends as its checkpoint
    chunk plus one tail chunk. A checkpoint whose commit happened but whose answer was lost
    leaves stored chunks the attempt's log does not know: that run's curves are rewritten
    whole. Either way the stored curves equal the engine's, without gap or overlap."""
    experiment_id, ids = new_experiment(rt.db, {**long_spec(steps=40, dims=(2,)), "seeds": [0, 1]})
    token = "b" * 32
    with rt.db.writer() as session:
        claim = claim_runs(
            session, experiment_id, ids, token=token, now=utcnow(), lease_s=60, max_attempts=3
        )
        session.commit()
    results = run_batch([claim.runs[row_id] for row_id in ids])
    attempt = tasks.Attempt(rt, experiment_id, token, set(ids))
    by_engine_id = {res["run_id"]: row_id for res, row_id in zip(results, ids, strict=True)}

    def first(res: dict[str, Any], n: int) -> dict[str, Any]:
        return {**res, **{k: res[k][:n] for k in (*EXACT_KEYS, "wall_times")}}

    attempt.checkpoint(by_engine_id, [first(res, 10) for res in results])
    real = tasks.save_checkpoint

    def lost_commit(session: Any, *args: Any, **kwargs: Any) -> Any:
        real(session, *args, **kwargs)
        session.commit()
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    # the second run's checkpoint is committed, but the attempt believes it rolled back
    monkeypatch.setattr(tasks, "save_checkpoint", lost_commit)
    attempt.checkpoint(by_engine_id, [first(results[1], 20)])
    monkeypatch.setattr(tasks, "save_checkpoint", real)
    written = tasks._finish(rt, attempt, dict(zip(ids, results, strict=True)), {})
    assert written == set(ids)
    with rt.db.session() as session:
        seqs = dict(
            session.execute(
                select(RunCurve.run_id, func.max(RunCurve.seq))
                .where(RunCurve.run_id.in_(ids))
                .group_by(RunCurve.run_id)
            ).all()
        )
    assert seqs == {ids[0]: 1, ids[1]: 0}  # appended to; rewritten whole
    for row_id, res in zip(ids, results, strict=True):
        stored = curves(rt.db, row_id)  # raises on a gap
        for key in (*EXACT_KEYS, "wall_times"):
            if key in res:
                assert stored[key] == plain_result(res)[key], key
