"""Walk the chain's links by ranges of sequence numbers, in one process or several at once.

Every event stores the hash of the one before it, so a range can check its own links without
the events before it: it takes its first event's stored `prev_hash` on trust, and the caller
checks that this is the hash the range before it ended on (`stitch`). The ranges then verify in
parallel, one per process, and the outcome is the same as one walk from the first event: the
first event that is missing, out of place, altered, or unlike its signed checkpoint.

Each range also builds its part of the Merkle tree (audit.merkle): ranges are a power of two
long, so a whole range is one perfect subtree, and the stitch joins them into the tree whose
root every signed checkpoint must match.
"""

from __future__ import annotations

import hmac
import multiprocessing
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import URL, Engine, create_engine, func
from sqlmodel import Session, col, select

from audit.chain import link_body
from audit.merkle import Frontier, link_leaf
from audit.models import GENESIS_HASH, AuditEvent

VERIFY_BATCH = 5000
"""Events read per query."""

RANGE_EVENTS = 65_536
"""Events per range when ranges are verified in parallel (a power of two: one whole subtree)."""

MAX_WORKERS = 8
"""At most this many processes verify by default, whatever the CPUs."""

CROSSOVER_EVENTS_2_CPUS = 600_000
"""Below this many events one walk in this process is faster than ranges on 2 processes.

Measured, not guessed: `.venv/bin/python bench/audit_verify.py --crossover 200000 400000 700000
1000000` on 2 cores (bench/README.md has the figures): one walk against 2 processes ran 52,894
against 24,039 events/s at 200,000, 59,759 against 37,850 at 400,000, 59,621 against 70,976 at
700,000 and 48,665 against 54,742 at 1,000,000; the ratio crosses 1 near 600,000.

A parallel walk pays a fixed cost S (spawning the processes, importing, opening the database)
and then walks at about w times the single rate r, so it wins once N/r > S + N/(w·r), i.e.
N > S·r·w/(w−1): the crossover on w CPUs is the 2-CPU one times w / (2·(w − 1))
(`parallel_from`).
"""


def parallel_from(cpus: int) -> int:
    """Return the chain length from which ranges on `cpus` processes beat one walk."""
    if cpus < 2:
        return 1 << 62
    return CROSSOVER_EVENTS_2_CPUS * cpus // (2 * (cpus - 1))


def default_workers(head_seq: int, cpus: int | None) -> int:
    """Return how many processes verify a chain of `head_seq` events by default.

    1 (one walk in this process) on one CPU or below the measured crossover; else one process
    per CPU (at most `MAX_WORKERS`), and never more processes than there are ranges.
    """
    usable = min(MAX_WORKERS, cpus or 1)
    ranges = -(-head_seq // RANGE_EVENTS)
    if usable < 2 or ranges < 2 or head_seq < parallel_from(usable):
        return 1
    return min(usable, ranges)


EVENT_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.ts,
    AuditEvent.incident_id,
    AuditEvent.alert_id,
    AuditEvent.actor,
    AuditEvent.kind,
    AuditEvent.data,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


@dataclass(frozen=True)
class RangeResult:
    """What one range's walk found.

    `first_prev` is the stored `prev_hash` of the range's first event when that event was read
    without a known predecessor (None otherwise); `ended` says the chain has no event at or after
    where the walk stopped; `problem` is the first bad event in the range, as (seq, reason).
    `tree` is the range's part of the Merkle tree as (size, root) subtrees, and `snapshots` that
    part as it stood at each sequence number a checkpoint signed a root for.
    """

    start: int
    checked: int
    first_prev: str | None
    last_hash: str | None
    problem: tuple[int, str] | None = None
    ended: bool = False
    tree: tuple[tuple[int, bytes], ...] = ()
    snapshots: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...] = ()


Linked = tuple[int, str, str | None, str | None, str, str, str, str, str]
"""An event as its link is hashed: seq, time (UTC isoformat), incident and alert ids (str of the
UUID), actor, kind, data, prev_hash, hash."""

# SQLite's rows are read as stored, without SQLAlchemy's types: building a datetime and two UUIDs
# per event only to print them again was most of the read's cost (a plain read of 100,000 events
# on a 2-core machine: ~46,000 events/s through those types, ~131,000 as read here).
_SQLITE_BATCH = (
    "SELECT seq, ts, incident_id, alert_id, actor, kind, data, prev_hash, hash "
    f"FROM {AuditEvent.__tablename__} WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_LAST_SEQ = 2**63 - 1


def read_batch(*, session: Session, from_seq: int, to_seq: int | None = None) -> list[Linked]:
    """Return up to VERIFY_BATCH events from `from_seq` (to `to_seq`) in order, as `Linked`."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        last = _LAST_SEQ if to_seq is None else to_seq
        raw = connection.exec_driver_sql(_SQLITE_BATCH, (from_seq, last, VERIFY_BATCH)).all()
        return [
            (seq, _sqlite_time(ts), _id_text(incident), _id_text(alert), actor, kind, data, p, h)
            for seq, ts, incident, alert, actor, kind, data, p, h in raw
        ]
    # Elsewhere Core rows, not ORM objects: verification reads every event and must stay fast.
    query = select(*EVENT_COLUMNS).where(col(AuditEvent.seq) >= from_seq)  # type: ignore[call-overload]
    if to_seq is not None:
        query = query.where(col(AuditEvent.seq) <= to_seq)
    rows = connection.execute(query.order_by(col(AuditEvent.seq)).limit(VERIFY_BATCH))
    return [
        (seq, ts.isoformat(), _text(incident), _text(alert), actor, kind, data, p, h)
        for seq, ts, incident, alert, actor, kind, data, p, h in rows
    ]


def _sqlite_time(stored: Any) -> str:
    """Return a stored time as the HMAC hashed it: `isoformat()` of the aware UTC datetime.

    SQLAlchemy stores SQLite times as naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'; that form is
    rewritten as text (one event in, one form out, so a changed time still fails its link). Any
    other text is read as audit.sqltypes.UTCDateTime reads it (no zone means UTC); text that is
    not a time is returned as it is, its link fails, and the event is reported as altered.
    """
    if isinstance(stored, str) and len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        fraction = stored[20:]
        return (
            f"{stored[:10]}T{stored[11:19]}"
            + ("" if fraction == "000000" else f".{fraction}")
            + "+00:00"
        )
    try:
        moment = datetime.fromisoformat(stored)
    except (TypeError, ValueError):
        return str(stored)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()


def _id_text(stored: Any) -> str | None:
    """Return a stored UUID (32 hex digits on SQLite) as `str(uuid)`; other text, parsed or as is.

    The 32 digits are only cut into groups: text that was changed still fails its link.
    """
    if stored is None:
        return None
    if isinstance(stored, str) and len(stored) == 32:
        return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
    try:
        return str(uuid.UUID(stored))
    except (TypeError, ValueError, AttributeError):
        return str(stored)


def _text(value: Any) -> str | None:
    return str(value) if value else None


def walk_range(
    *,
    session: Session,
    key: bytes,
    start: int,
    end: int | None,
    wanted: dict[int, str],
    prev_hash: str | None,
    progress: Callable[[int], None] | None = None,
    roots: Collection[int] = (),
) -> RangeResult:
    """Check the links of events `start`..`end` (to the last event when `end` is None).

    `prev_hash` is the hash the first event must follow (None: take its stored one on trust and
    report it as `first_prev`); `wanted` maps a checkpoint's sequence number to the hash it
    signed; `roots` are the sequence numbers whose tree the result snapshots. `progress` is told
    the last sequence number checked after each batch.
    """
    expected, first_prev = start, None
    tree = Frontier()
    snapshots: list[tuple[int, tuple[tuple[int, bytes], ...]]] = []

    def result(problem: tuple[int, str] | None = None, ended: bool = False) -> RangeResult:
        return RangeResult(
            start,
            expected - start,
            first_prev,
            prev_hash,
            problem,
            ended,
            tuple(tree.nodes),
            tuple(snapshots),
        )

    while end is None or expected <= end:
        batch = read_batch(session=session, from_seq=expected, to_seq=end)
        if not batch:
            after = _next_seq(session, expected)
            if after is None:
                return result(ended=True)
            return result((expected, f"event {expected} is missing (next stored event is {after})"))
        for seq, ts, incident_id, alert_id, actor, kind, data, stored_prev, stored_hash in batch:
            problem = None
            if seq != expected:
                problem = f"event {expected} is missing (next stored event is {seq})"
            elif prev_hash is None:
                first_prev = stored_prev  # checked by the caller against the range before
            elif stored_prev != prev_hash:
                problem = f"event {seq} does not follow event {seq - 1} (moved or replaced)"
            if problem is None:
                body = link_body(
                    seq=seq,
                    ts=ts,
                    incident_id=incident_id,
                    alert_id=alert_id,
                    actor=actor,
                    kind=kind,
                    data=data,
                )
                linked = f"{stored_prev}\n{body}".encode()
                if stored_hash != hmac.digest(key, linked, "sha256").hex():
                    problem = f"event {seq} was altered after it was written (HMAC mismatch)"
                elif seq in wanted and wanted[seq] != stored_hash:
                    problem = f"event {seq} differs from the signed checkpoint of it (replaced)"
            if problem is not None:
                return result((expected, problem))
            tree.append(link_leaf(stored_hash, linked))
            if seq in roots:
                snapshots.append((seq, tuple(tree.nodes)))
            prev_hash = stored_hash
            expected += 1
        if progress is not None:
            progress(expected - 1)
    return result()


def _next_seq(session: Session, from_seq: int) -> int | None:
    found = session.connection().execute(
        select(func.min(AuditEvent.seq)).where(col(AuditEvent.seq) >= from_seq)
    )
    value = found.scalar()
    return None if value is None else int(value)


@dataclass(frozen=True)
class Stitched:
    """The ranges' outcome as one walk: events checked in order, the last hash, any problem."""

    checked: int
    last_hash: str
    problem: tuple[int, str] | None = None


def stitch(
    results: Iterable[RangeResult],
    on_range: Callable[[int], None] | None = None,
    roots: Mapping[int, Collection[str]] | None = None,
) -> Stitched:
    """Join range results in order: each range must start where the one before it ended.

    The ranges' subtrees are joined into the tree of the whole chain, and the tree at each
    sequence number in `roots` must have one of the roots signed for it (hex). Stops at the
    first problem, in chain order, exactly where one walk from event 1 would.
    """
    prev, checked = GENESIS_HASH, 0
    tree, matched = Frontier(), 0
    for result in results:
        at_start = result.problem is not None and result.problem[0] == result.start
        if at_start and result.first_prev is None:
            return Stitched(checked, prev, result.problem)  # the range's first event is missing
        if result.first_prev is not None and result.first_prev != prev:
            reason = (
                f"event {result.start} does not follow event {result.start - 1} (moved or replaced)"
            )
            return Stitched(checked, prev, (result.start, reason))
        for seq, nodes in result.snapshots:
            then = tree.copy()
            for size, root in nodes:
                then.add_subtree(size, root)
            if roots and any(signed != then.root().hex() for signed in roots.get(seq, ())):
                reason = (
                    f"events {matched + 1}-{seq} are not the events the checkpoint of event {seq} "
                    "signed (Merkle root mismatch): one of them was rewritten"
                )
                return Stitched(matched, prev, (matched + 1, reason))
            matched = seq
        checked += result.checked
        if result.problem is not None:
            return Stitched(checked, prev, result.problem)
        for size, root in result.tree:
            tree.add_subtree(size, root)
        prev = result.last_hash or prev
        if on_range is not None:
            on_range(checked)
        if result.ended:
            break
    return Stitched(checked, prev)


def shared_url(url: URL) -> str | None:
    """Return the database URL as other processes can open it; None for an in-memory SQLite
    database, which only the process (the connection) that made it can see."""
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def walk_parallel(
    *,
    url: str,
    key: bytes,
    head_seq: int,
    wanted: dict[int, str],
    workers: int,
    range_events: int = RANGE_EVENTS,
    progress: Callable[[int], None] | None = None,
    roots: Mapping[int, Collection[str]] | None = None,
) -> Stitched:
    """Verify ranges of `range_events` events on `workers` processes, each with its own engine.

    `range_events` is rounded up to a power of two, so that each range is one subtree.
    """
    range_events = 1 << max(range_events - 1, 0).bit_length()
    starts = list(range(1, max(head_seq, 1) + 1, range_events))
    ranges = [(s, s + range_events - 1) for s in starts[:-1]] + [(starts[-1], None)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_open_engine, initargs=(url,)
    ) as pool:
        futures = [
            pool.submit(_range_job, bounds, key=key, wanted=wanted, roots=frozenset(roots or ()))
            for bounds in ranges
        ]
        try:
            # In range order, so the stitch (and progress) stops at the first fault.
            return stitch((future.result() for future in futures), progress, roots)
        finally:
            for future in futures:
                future.cancel()  # ranges not started yet; leaving the block waits for the rest


_ENGINE: Engine | None = None


def _open_engine(url: str) -> None:
    global _ENGINE
    _ENGINE = create_engine(url)  # reads only: no write-lock or WAL set-up needed


def _range_job(
    bounds: tuple[int, int | None], *, key: bytes, wanted: dict[int, str], roots: frozenset[int]
) -> RangeResult:
    assert _ENGINE is not None, "the pool's initializer opens the engine"
    start, end = bounds
    prev = GENESIS_HASH if start == 1 else None
    with Session(_ENGINE) as session:
        return walk_range(
            session=session,
            key=key,
            start=start,
            end=end,
            wanted=wanted,
            prev_hash=prev,
            roots=roots,
        )
