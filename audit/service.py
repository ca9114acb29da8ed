"""Append to, read and verify the audit chain; every function takes the caller's session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, update
from sqlmodel import Session, col, select

from audit.chain import canonical_json, event_digest
from audit.checkpoints import (
    Checkpoint,
    append_checkpoint_file,
    read_checkpoint_file,
    stored_checkpoints,
    write_checkpoint,
)
from audit.models import GENESIS_HASH, AuditEvent, AuditHead
from audit.ranges import (
    RANGE_EVENTS,
    default_workers,
    shared_url,
    stitch,
    walk_parallel,
    walk_range,
)
from audit.signing import TrustedKeys
from audit.sqltypes import utcnow

__all__ = [  # checkpoints are written and read here too, as they were before audit.checkpoints
    "Checkpoint",
    "append_checkpoint_file",
    "read_checkpoint_file",
    "stored_checkpoints",
    "write_checkpoint",
]


@dataclass(frozen=True)
class NewEvent:
    """An event ready to be chained: its data already redacted and in canonical JSON."""

    kind: str
    actor: str
    data: str
    incident_id: uuid.UUID | None = None
    alert_id: uuid.UUID | None = None


def append_event(
    *,
    session: Session,
    key: bytes,
    kind: str,
    actor: str,
    data: dict[str, Any],
    incident_id: uuid.UUID | None = None,
    alert_id: uuid.UUID | None = None,
    now: Callable[[], datetime] = utcnow,
) -> AuditEvent:
    """Add one event at the head of the chain inside the caller's transaction."""
    new = NewEvent(kind, actor, canonical_json(data), incident_id, alert_id)
    return append_prepared(session=session, key=key, event=new, now=now)


def append_prepared(
    *, session: Session, key: bytes, event: NewEvent, now: Callable[[], datetime] = utcnow
) -> AuditEvent:
    """Add one prepared event at the head of the chain inside the caller's transaction."""
    seq, prev_hash = lock_head(session=session)
    [row] = _link(seq, prev_hash, key, [event], now)
    _move_head(session, row)
    stored = AuditEvent(**row)
    session.add(stored)
    session.flush()
    return stored


def append_events(
    *,
    session: Session,
    key: bytes,
    events: Sequence[NewEvent],
    now: Callable[[], datetime] = utcnow,
) -> list[int]:
    """Add events at the head in this order inside the caller's transaction; return their seqs.

    One head update and one multi-row insert however many events: the cost of a group commit.
    """
    if not events:
        return []
    seq, prev_hash = lock_head(session=session)
    rows = _link(seq, prev_hash, key, events, now)
    _move_head(session, rows[-1])
    # Core, not ORM objects: the rows are final, and ingest writes hundreds per transaction.
    session.connection().execute(insert(AuditEvent.__table__), rows)  # type: ignore[attr-defined]
    return [row["seq"] for row in rows]


# The head is read and moved with Core statements built once, never as an ORM object: no
# session can then hold a stale copy of it, and ingest pays no ORM cost per transaction.
_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_READ_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
_MOVE_HEAD = (
    update(AuditHead)
    .where(col(AuditHead.id) == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def lock_head(*, session: Session) -> tuple[int, str]:
    """Lock the chain's head until the transaction ends; return its (seq, hash), freshly read.

    Every writer of the chain takes this lock first, so it also serialises whatever a writer
    checks before appending (such as whether an alert was already stored).
    """
    seq, head_hash = session.connection().execute(_LOCK_HEAD).one()
    return int(seq), str(head_hash)


def read_head(*, session: Session) -> tuple[int, str]:
    """Return the chain head's (seq, hash) without locking it."""
    seq, head_hash = session.connection().execute(_READ_HEAD).one()
    return int(seq), str(head_hash)


def _move_head(session: Session, last: dict[str, Any]) -> None:
    session.connection().execute(_MOVE_HEAD, {"new_seq": last["seq"], "new_hash": last["hash"]})


def _link(
    seq: int, prev_hash: str, key: bytes, events: Sequence[NewEvent], now: Callable[[], datetime]
) -> list[dict[str, Any]]:
    """Chain events after the head (seq, prev_hash), in order; return their rows."""
    rows = []
    for new in events:
        seq += 1
        ts = now()
        digest = event_digest(
            key=key,
            prev_hash=prev_hash,
            seq=seq,
            ts=ts,
            incident_id=new.incident_id,
            alert_id=new.alert_id,
            actor=new.actor,
            kind=new.kind,
            data=new.data,
        )
        rows.append(
            {
                "seq": seq,
                "ts": ts,
                "incident_id": new.incident_id,
                "alert_id": new.alert_id,
                "actor": new.actor,
                "kind": new.kind,
                "data": new.data,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    return rows


def events_for(
    *, session: Session, incident_id: uuid.UUID, alert_ids: Iterable[uuid.UUID] = ()
) -> Sequence[AuditEvent]:
    """Return the events of an incident and of the alerts grouped into it, oldest first."""
    clauses = [col(AuditEvent.incident_id) == incident_id]
    ids = list(alert_ids)
    if ids:
        clauses.append(col(AuditEvent.alert_id).in_(ids))
    return session.exec(select(AuditEvent).where(or_(*clauses)).order_by(col(AuditEvent.seq))).all()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a chain check: how many events were checked and the first bad one, if any."""

    ok: bool
    checked: int
    head_seq: int
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints: int = 0


def verify_chain(
    *,
    session: Session,
    key: bytes,
    trusted: TrustedKeys | None = None,
    progress: Callable[[int, int], None] | None = None,
    extra_checkpoints: Iterable[Checkpoint] = (),
    workers: int | None = 1,
    range_events: int = RANGE_EVENTS,
) -> VerifyResult:
    """Recompute every link; name the first event that was edited, removed or moved.

    Signed checkpoints (stored, and any kept outside the database) make a removed tail visible:
    the chain must reach every checkpoint's head with the hash it recorded, and the Merkle root
    of the events up to it must be the one it signed. Public-key signatures verify with the
    `trusted` keys (by key id), older HMAC ones with `key`. With `workers` > 1 and at least two
    ranges of `range_events` events, ranges are verified on that many processes at once
    (audit/ranges.py); the outcome is the same as one walk. `workers=None` picks the faster
    path by the chain's size and the CPUs (`default_workers`, a measured crossover).
    """
    head_seq, head_hash = read_head(session=session)
    if workers is None:
        workers = default_workers(head_seq, os.cpu_count())
    checkpoints = [*stored_checkpoints(session=session), *extra_checkpoints]
    for checkpoint in checkpoints:
        problem = checkpoint.problem(key=key, trusted=trusted or TrustedKeys({}))
        if problem is not None:
            return VerifyResult(
                False,
                0,
                head_seq,
                checkpoint.head_seq,
                f"the {checkpoint.origin} checkpoint of event {checkpoint.head_seq} {problem}",
                len(checkpoints),
            )
    wanted = {c.head_seq: c.head_hash for c in checkpoints}
    roots: dict[int, set[str]] = {}
    for checkpoint in checkpoints:
        if checkpoint.tree_root is not None:
            roots.setdefault(checkpoint.head_seq, set()).add(checkpoint.tree_root)
    tell = None if progress is None else (lambda done: progress(done, head_seq))
    url = shared_url(session.connection().engine.url)
    if workers > 1 and head_seq >= 2 * range_events and url is not None:
        walked = walk_parallel(
            url=url,
            key=key,
            head_seq=head_seq,
            wanted=wanted,
            workers=workers,
            range_events=range_events,
            progress=tell,
            roots=roots,
        )
    else:
        one = walk_range(
            session=session,
            key=key,
            start=1,
            end=None,
            wanted=wanted,
            prev_hash=GENESIS_HASH,
            progress=tell,
            roots=roots,
        )
        walked = stitch([one], roots=roots)
    if walked.problem is not None:
        seq, reason = walked.problem
        return VerifyResult(False, seq - 1, head_seq, seq, reason, len(checkpoints))
    checked, last_hash = walked.checked, walked.last_hash
    furthest = max((c.head_seq for c in checkpoints), default=0)
    if furthest > checked:
        return VerifyResult(
            False,
            checked,
            head_seq,
            checked + 1,
            f"chain ends at event {checked} but a signed checkpoint recorded {furthest}: "
            "the tail was removed",
            len(checkpoints),
        )
    if checked != head_seq or last_hash != head_hash:
        return VerifyResult(
            False,
            checked,
            head_seq,
            checked + 1,
            f"chain ends at event {checked} but the head records {head_seq}: events were removed",
            len(checkpoints),
        )
    return VerifyResult(True, checked, head_seq, checkpoints=len(checkpoints))
