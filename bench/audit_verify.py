"""Benchmark: how fast `remediator audit verify` checks the chain, against a plain scan of it.

Builds a SQLite trail of N events (default 1,000,000) in a temporary folder, then times, in the same
run: (a) the baseline, reading every event in the same batches in one process without checking
anything, (b) verify_chain in one process, and (c) verify_chain as `remediator audit verify` runs
it, in ranges on one process per CPU (at most 8), the figure held to the target: at least
50,000 events/s.

    .venv/bin/python bench/audit_verify.py [--events N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Row, load_average, print_table, say
from sqlalchemy import insert, text, update
from sqlmodel import Session

from agent.store.db import make_engine, upgrade
from audit.chain import canonical_json, event_digest
from audit.models import GENESIS_HASH, AuditEvent, AuditHead
from audit.ranges import read_batch
from audit.service import verify_chain

KEY = b"bench-key-0123456789abcdef0123456789"
TARGET = 50_000


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


def verify(path: Path, workers: int = 1) -> int:
    """Run the real verification; fail loudly if the trail does not verify."""
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


def run(events: int) -> list[Row]:
    """Build a trail of `events`, then time the scan, one walk, and the CLI's parallel verify."""
    workers = min(8, os.cpu_count() or 1)  # what `remediator audit verify` uses by default
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        build(path, events)
        say("audit", f"built {events:,} events in {time.perf_counter() - started:.1f}s")
        with make_engine(f"sqlite:///{path}").connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        scan_rate = timed(lambda: scan(path))
        one_rate = timed(lambda: verify(path))
        rate = timed(lambda: verify(path, workers))
    return [
        (
            f"audit verify ({events:,} events)",
            f"{rate:,.0f} events/s ({workers} processes)",
            f">= {TARGET:,} events/s",
            f"plain scan (1 process) {scan_rate:,.0f} events/s; verify {rate / scan_rate:.2f}x; "
            f"in 1 process {one_rate:,.0f} events/s ({one_rate / scan_rate:.2f}x)",
            "PASS" if rate >= TARGET else "MISS",
        )
    ]


def main() -> None:
    """Build, scan, verify, and print one table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="trail length")
    args = parser.parse_args()
    rows = run(args.events)
    print(load_average())
    print_table(rows)


if __name__ == "__main__":
    main()
