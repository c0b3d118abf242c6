"""``make faults``: many trials of every fault scenario, then the table for the README.

``python -m tests.faults [--trials N] [--scenario NAME ...]``; exits 1 if any trial lost,
duplicated, stranded or changed a run, or never recovered.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.helpers import engine_cli
from tests.faults.harness import FAULT_SPEC, RUNS, SCENARIOS, Outcome, run_trial
from tests.faults.servers import PrivatePostgres


def table(outcomes: list[Outcome], scenarios: list[str]) -> str:
    lines = [
        "| scenario | trials | lost | duplicated | stranded | changed | recovery p50 / max, s "
        "| claims per trial (of 40 runs), max attempts of a run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        rows = [o for o in outcomes if o.scenario == scenario]
        if not rows:
            continue
        times = [o.recovery_s for o in rows if o.recovery_s is not None]
        never = len(rows) - len(times)
        recovery = (f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "—") + (
            f" ({never} never)" if never else ""
        )
        claims = [o.claims for o in rows]
        lines.append(
            f"| {scenario} | {len(rows)} | {sum(o.lost for o in rows)} "
            f"| {sum(o.duplicated for o in rows)} | {sum(o.stranded for o in rows)} "
            f"| {sum(o.changed for o in rows)} | {recovery} "
            f"| {min(claims)}–{max(claims)}, {max(o.max_attempts for o in rows)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the trial's workers and private servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scenarios = args.scenario or list(SCENARIOS)
    root = Path(tempfile.mkdtemp(prefix="optbench-faults-"))
    reference = engine_cli(FAULT_SPEC, root)
    pg = PrivatePostgres()
    pg.start()
    outcomes: list[Outcome] = []
    try:
        for trial in range(args.trials):
            for scenario in scenarios:
                started = time.monotonic()
                outcome = run_trial(scenario, pg, reference, root / f"{scenario}-{trial}")
                outcomes.append(outcome)
                print(
                    f"trial {trial + 1}/{args.trials} {scenario}: {outcome} "
                    f"({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    finally:
        pg.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{RUNS}-run experiments, 2 workers, default lease/heartbeat/reconcile settings\n")
    print(table(outcomes, scenarios))
    bad = [
        o
        for o in outcomes
        if o.lost or o.duplicated or o.stranded or o.changed or o.recovery_s is None
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
