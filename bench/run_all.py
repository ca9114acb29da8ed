"""Run every benchmark and print one table: benchmark, measured, target, baseline, verdict.

Each figure is compared with a baseline measured in the same run (see bench/README.md). A
benchmark that cannot run gets an ERROR row and the others still run. --quick uses small sizes
(about two minutes); the full sizes take several minutes.

    .venv/bin/python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import audit_verify
import ingest
import storm
import time_to_page
from harness import Row, load_average, print_table, say


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs."""

    events: int
    ingest: int
    incidents: int
    alerts: int
    fingerprints: int
    seconds: float


QUICK = Sizes(events=50_000, ingest=1_500, incidents=5, alerts=1_000, fingerprints=20, seconds=10)
FULL = Sizes(
    events=1_000_000, ingest=5_000, incidents=10, alerts=10_000, fingerprints=100, seconds=60
)


def main() -> None:
    """Run the benchmarks in turn and print the one table with the machine's load."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a quick check")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    benches: list[tuple[str, Callable[[], list[Row]]]] = [
        ("audit verify", lambda: audit_verify.run(sizes.events)),
        ("ingest", lambda: ingest.run(sizes.ingest)),
        ("time to page", lambda: time_to_page.run(sizes.incidents)),
        ("storm", lambda: storm.run(sizes.alerts, sizes.fingerprints, sizes.seconds)),
        ("shared cause", lambda: storm.run_shared_cause()),
    ]
    started = time.monotonic()
    before = load_average()
    rows: list[Row] = []
    for name, bench in benches:
        say("run-all", f"{name}: running ({load_average()})")
        try:
            rows.extend(bench())
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            rows.append((name, f"ERROR: {type(exc).__name__}: {exc}"[:160], "-", "-", "ERROR"))
    mode = "quick" if args.quick else "full"
    print()
    took = time.monotonic() - started
    print(f"{mode} run in {took:.0f}s; before: {before}; after: {load_average()}")
    print_table(rows)


if __name__ == "__main__":
    main()
