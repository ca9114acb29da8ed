"""Benchmark: how fast `remediator audit verify` checks the chain, against a plain scan of it.

Builds SQLite trails of a small and a large size (default 200,000 and 1,000,000 events) in a
temporary folder, then times on each, in the same run: (a) the baseline, reading every event in
the same batches in one process without checking anything, (b) verify_chain in one process, and
(c) verify_chain in ranges on one process per CPU (at most 8). The figure held to the target is
the default's, `remediator audit verify` without --workers: the path it picks for the chain's
size and the CPUs; at least 50,000 events/s, and the faster of (b) and (c) (within 10%).
--crossover N... times (b) against 2 processes over several sizes: the series behind
audit.ranges.CROSSOVER_EVENTS_2_CPUS.

    .venv/bin/python bench/audit_verify.py [--events N] [--small N] [--crossover N ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Row, load_average, print_table, say
from sqlalchemy import insert, text, update
from sqlmodel import Session

from agent.store.db import make_engine, upgrade
from audit.chain import canonical_json, event_digest
from audit.models import GENESIS_HASH, AuditEvent, AuditHead
from audit.ranges import MAX_WORKERS, RANGE_EVENTS, default_workers, read_batch
from audit.service import verify_chain

KEY = b"bench-key-0123456789abcdef0123456789"
TARGET = 50_000
SMALL_EVENTS = 200_000
SLACK = 0.9
"""The default may be this much below the faster path's figure (two timings on a busy machine)."""


def build(path: Path, count: int) -> None:
    """Write a valid chain of `count` events, in bulk."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    start = datetime(2026, 11, 27, tzinfo=UTC)
    incidents = [uuid.uuid4() for _ in range(max(1, count // 20))]
    prev = GENESIS_HASH
    rows = []
    with engine.begin() as connection:
        for seq in range(1, count + 1):
            ts = start + timedelta(milliseconds=seq)
            incident = incidents[seq % len(incidents)]
            data = canonical_json(
                {
                    "summary": f"probe {seq} completed",
                    "tool": "cloudwatch_logs",
                    "evidence": {"lines": seq % 97, "error_lines": seq % 7},
                }
            )
            digest = event_digest(
                key=KEY,
                prev_hash=prev,
                seq=seq,
                ts=ts,
                incident_id=incident,
                alert_id=None,
                actor="agent.investigate",
                kind="probe.completed",
                data=data,
            )
            rows.append(
                {
                    "seq": seq,
                    "ts": ts,
                    "incident_id": incident,
                    "alert_id": None,
                    "actor": "agent.investigate",
                    "kind": "probe.completed",
                    "data": data,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
            if len(rows) == 20_000:
                connection.execute(insert(AuditEvent), rows)
                rows = []
        if rows:
            connection.execute(insert(AuditEvent), rows)
        connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=count, hash=prev))
    engine.dispose()


def scan(path: Path) -> int:
    """Read every event in verify's batches without checking: the floor verify cannot beat."""
    engine = make_engine(f"sqlite:///{path}")
    seen, last = 0, 0
    with Session(engine) as session:
        while True:
            batch = read_batch(session=session, from_seq=last + 1)
            if not batch:
                break
            seen += len(batch)
            last = batch[-1][0]
    engine.dispose()
    return seen


def verify(path: Path, workers: int | None = 1) -> int:
    """Run the real verification; fail loudly if the trail does not verify.

    `workers=None` is what `remediator audit verify` does by default: the path its chain size and
    the CPUs pick (audit.ranges.default_workers).
    """
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        result = verify_chain(session=session, key=KEY, workers=workers)
    engine.dispose()
    if not result.ok:
        raise SystemExit(f"bench trail does not verify: {result.reason}")
    return result.checked


def timed(action: Callable[[], int]) -> float:
    """Return the events per second of `action`, which returns how many events it read."""
    started = time.perf_counter()
    count = action()
    return count / (time.perf_counter() - started)


@dataclass
class Rates:
    """One trail's figures: a plain scan, one walk, ranges on the CPUs, and the default."""

    events: int
    scan: float
    one: float
    parallel: float | None
    """None: under two ranges, which are always walked once."""
    workers: int
    """The processes of the ranged walk (one per CPU, at most 8)."""
    chosen: int
    """The processes the default picks for this trail (1: one walk)."""

    @property
    def default(self) -> float:
        """Return the default's rate: the rate of the path it picks, measured in this run."""
        return self.one if self.chosen == 1 or self.parallel is None else self.parallel


def measure(events: int, workers: int) -> Rates:
    """Build a trail of `events`, then time the scan, one walk and the ranged walk on it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        build(path, events)
        say("audit", f"built {events:,} events in {time.perf_counter() - started:.1f}s")
        with make_engine(f"sqlite:///{path}").connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        scan_rate = timed(lambda: scan(path))
        one_rate = timed(lambda: verify(path))
        ranged = workers > 1 and events >= 2 * RANGE_EVENTS
        parallel_rate = timed(lambda: verify(path, workers)) if ranged else None
    chosen = default_workers(events, os.cpu_count())
    return Rates(events, scan_rate, one_rate, parallel_rate, workers, chosen)


def row(r: Rates) -> Row:
    """One table row: the default's rate, held to the target and to the faster path."""
    path = "one walk" if r.chosen == 1 else f"{r.chosen} processes"
    faster = max(r.one, r.parallel or 0.0)
    ok = r.default >= TARGET and r.default >= SLACK * faster
    ranged = (
        "under 2 ranges: always one walk"
        if r.parallel is None
        else f"{r.workers} processes {r.parallel:,.0f}/s ({r.parallel / r.scan:.2f}x)"
    )
    return (
        f"audit verify ({r.events:,} events)",
        f"{r.default:,.0f} events/s (default: {path})",
        f">= {TARGET:,} events/s, the faster path",
        f"plain scan {r.scan:,.0f}/s; one walk {r.one:,.0f}/s ({r.one / r.scan:.2f}x); {ranged}",
        "PASS" if ok else "MISS",
    )


def run(events: int, small: int = SMALL_EVENTS) -> list[Row]:
    """Time a small and a large trail: each path, and the one the default picks."""
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    return [row(measure(n, workers)) for n in sorted({min(small, events), events})]


def crossover(sizes: list[int]) -> None:
    """Print one walk against 2 processes over `sizes`: where ranges start to pay."""
    print(f"{'events':>10}  {'one walk/s':>11}  {'2 processes/s':>14}  faster")
    for n in sizes:
        r = measure(n, 2)
        ranged = r.parallel or 0.0
        print(
            f"{n:>10,}  {r.one:>11,.0f}  {ranged:>14,.0f}  "
            + ("2 processes" if ranged > r.one else "one walk"),
            flush=True,
        )


def main() -> None:
    """Build, scan, verify, and print one table (or, with --crossover, the crossover series)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="the large trail")
    parser.add_argument("--small", type=int, default=SMALL_EVENTS, help="the small trail")
    parser.add_argument(
        "--crossover",
        type=int,
        nargs="+",
        metavar="N",
        help="time one walk and 2 processes on trails of these sizes, and stop",
    )
    args = parser.parse_args()
    if args.crossover:
        crossover(args.crossover)
        return
    rows = run(args.events, args.small)
    print(load_average())
    print_table(rows)


if __name__ == "__main__":
    main()
