"""Signed checkpoints of the chain: the head and the Merkle root of every event up to it.

A checkpoint is signed with the service's private key (audit.signing) over its head's sequence
number and hash and the root of the tree of events 1..head (audit.merkle), so anyone with the
public key can check it, and can check that an event is among those it covers. Checkpoints
written before public-key signatures carry an HMAC keyed like the chain and still verify with it.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from audit.chain import (
    body_digest,
    canonical_json,
    checkpoint_message,
    checkpoint_signature,
    link_body,
)
from audit.merkle import Frontier, leaf_hash
from audit.models import GENESIS_HASH, AuditCheckpoint, AuditHead
from audit.ranges import read_batch
from audit.signing import Signer, TrustedKeys, encode_signature
from audit.sqltypes import utcnow

HMAC_ALGORITHM = "hmac-sha256"


@dataclass(frozen=True)
class Checkpoint:
    """A signed head of the chain, from the database or from a file kept elsewhere."""

    head_seq: int
    head_hash: str
    created_at: datetime
    signature: str
    origin: str = "database"
    algorithm: str = HMAC_ALGORITHM
    key_id: str | None = None
    tree_root: str | None = None

    def problem(self, *, key: bytes | None, trusted: TrustedKeys) -> str | None:
        """Return None when the signature holds (HMAC with `key`, else a trusted public key)."""
        if self.algorithm == HMAC_ALGORITHM:
            if key is None:
                return "is signed with the chain key (an HMAC), which this verifier does not hold"
            expected = checkpoint_signature(
                key=key,
                head_seq=self.head_seq,
                head_hash=self.head_hash,
                created_at=self.created_at,
            )
            if hmac.compare_digest(expected, self.signature):
                return None
            return "has a bad signature (forged or edited)"
        if self.key_id is None or self.tree_root is None:
            return "has a bad signature (no key id or tree root)"
        reason = trusted.check(
            key_id=self.key_id,
            algorithm=self.algorithm,
            message=self.message(),
            signature=self.signature,
        )
        return None if reason is None else f"has a bad signature: {reason}"

    def message(self) -> bytes:
        """Return what the public-key signature covers."""
        return checkpoint_message(
            key_id=self.key_id or "",
            algorithm=self.algorithm,
            tree_size=self.head_seq,
            tree_root=self.tree_root or "",
            head_hash=self.head_hash,
            created_at=self.created_at.isoformat(),
        )

    @classmethod
    def of(cls, row: AuditCheckpoint, origin: str = "database") -> Checkpoint:
        """Return a stored checkpoint as a Checkpoint."""
        return cls(
            head_seq=row.head_seq,
            head_hash=row.head_hash,
            created_at=row.created_at,
            signature=row.signature,
            origin=origin,
            algorithm=row.algorithm,
            key_id=row.key_id,
            tree_root=row.tree_root,
        )


def write_checkpoint(
    *,
    session: Session,
    signer: Signer,
    trusted: TrustedKeys | None = None,
    key: bytes | None = None,
    now: Callable[[], datetime] = utcnow,
) -> AuditCheckpoint:
    """Sign and store the chain's current head and tree root inside the caller's transaction.

    The tree is extended from the last checkpoint's frontier (when it folds to the root that
    checkpoint signed, and that signature verifies with a `trusted` key) with the events written
    since, so the cost is the events since then. With the chain `key`, those events' links are
    checked first: a chain that does not verify is never signed (ValueError naming the event).
    """
    head_seq, head_hash = (
        session.connection()
        .execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1))
        .one()
    )
    tree, last_hash = tree_before(session=session, seq=int(head_seq) + 1, trusted=trusted)
    start = tree.size + 1
    linked = (key, last_hash) if key is not None else None
    for leaf in read_leaves(session=session, start=start, end=int(head_seq), linked=linked):
        tree.append(leaf)
    moment = now().astimezone(UTC)
    checkpoint = Checkpoint(
        head_seq=int(head_seq),
        head_hash=str(head_hash),
        created_at=moment,
        signature="",
        algorithm=signer.algorithm,
        key_id=signer.key_id,
        tree_root=tree.root().hex(),
    )
    row = AuditCheckpoint(
        created_at=moment,
        head_seq=checkpoint.head_seq,
        head_hash=checkpoint.head_hash,
        signature=encode_signature(signer.sign(checkpoint.message())),
        algorithm=signer.algorithm,
        key_id=signer.key_id,
        tree_root=checkpoint.tree_root,
        frontier=json.dumps([node.hex() for node in tree.hashes()]),
    )
    session.add(row)
    session.flush()
    return row


def tree_checkpoints(*, session: Session) -> list[AuditCheckpoint]:
    """Return the checkpoints that sign a tree root, by head, oldest first."""
    query = (
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.tree_root).is_not(None))
        .order_by(col(AuditCheckpoint.head_seq), col(AuditCheckpoint.id))
    )
    return list(session.exec(query).all())


def tree_before(
    *, session: Session, seq: int, trusted: TrustedKeys | None = None
) -> tuple[Frontier, str]:
    """Return the tree of the events before `seq` as far as a stored checkpoint has it.

    That is the frontier of the latest checkpoint whose head is before `seq`, whose frontier
    folds to the root it signed and (with `trusted`) whose signature verifies, with the hash of
    that head; else an empty tree and the genesis hash.
    """
    query = (
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.tree_root).is_not(None))
        .where(col(AuditCheckpoint.frontier).is_not(None))
        .where(col(AuditCheckpoint.head_seq) < seq)
        .order_by(col(AuditCheckpoint.head_seq).desc(), col(AuditCheckpoint.id).desc())
        .limit(8)
    )
    for row in session.exec(query).all():
        frontier = frontier_of(row)
        signed = trusted is None or Checkpoint.of(row).problem(key=None, trusted=trusted) is None
        if frontier is not None and signed:
            return frontier, row.head_hash
    return Frontier(), GENESIS_HASH


def frontier_of(row: AuditCheckpoint) -> Frontier | None:
    """Return a checkpoint's stored frontier, or None when it does not fold to its signed root."""
    try:
        hashes = [bytes.fromhex(node) for node in json.loads(row.frontier or "")]
        frontier = Frontier(row.head_seq, hashes)
    except (ValueError, TypeError):
        return None
    return frontier if frontier.root().hex() == row.tree_root else None


def read_leaves(
    *, session: Session, start: int, end: int, linked: tuple[bytes, str] | None = None
) -> list[bytes]:
    """Return the tree leaves of events `start`..`end`; ValueError when one is missing.

    With `linked` (the chain key, the hash event `start` must follow), each event's link is
    checked too, and the first that fails raises ValueError.
    """
    leaves: list[bytes] = []
    while start + len(leaves) <= end:
        batch = read_batch(session=session, from_seq=start + len(leaves), to_seq=end)
        for seq, ts, incident_id, alert_id, actor, kind, data, prev_hash, stored in batch:
            if seq != start + len(leaves):
                break
            body = link_body(
                seq=seq,
                ts=ts,
                incident_id=incident_id,
                alert_id=alert_id,
                actor=actor,
                kind=kind,
                data=data,
            )
            if linked is not None:
                key, expected_prev = linked
                if prev_hash != expected_prev or body_digest(key, prev_hash, body) != stored:
                    raise ValueError(
                        f"event {seq} does not verify (altered, moved or replaced): not signing "
                        "a checkpoint over it; run `remediator audit verify`"
                    )
                linked = (key, stored)
            leaves.append(leaf_hash(prev_hash=prev_hash, hash=stored, body=body))
        if not batch or seq != start + len(leaves) - 1:
            raise ValueError(
                f"event {start + len(leaves)} is missing: run `remediator audit verify`"
            )
    return leaves


def stored_checkpoints(*, session: Session) -> list[Checkpoint]:
    """Return the checkpoints kept in the database."""
    rows = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.head_seq))).all()
    return [Checkpoint.of(row) for row in rows]


def append_checkpoint_file(path: Path, checkpoint: AuditCheckpoint) -> None:
    """Append a checkpoint as one JSON line to a file kept outside the database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "head_seq": checkpoint.head_seq,
        "head_hash": checkpoint.head_hash,
        "created_at": checkpoint.created_at.isoformat(),
        "signature": checkpoint.signature,
    }
    if checkpoint.algorithm != HMAC_ALGORITHM:
        record.update(
            algorithm=checkpoint.algorithm, key_id=checkpoint.key_id, tree_root=checkpoint.tree_root
        )
    with path.open("a", encoding="utf-8") as handle:
        handle.write(canonical_json(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_checkpoint_file(path: Path) -> list[Checkpoint]:
    """Read the checkpoints of a file; a malformed line raises ValueError naming it."""
    if not path.exists():
        return []
    checkpoints = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            checkpoints.append(
                Checkpoint(
                    head_seq=int(record["head_seq"]),
                    head_hash=str(record["head_hash"]),
                    created_at=datetime.fromisoformat(record["created_at"]),
                    signature=str(record["signature"]),
                    origin=f"file {path.name}",
                    algorithm=str(record.get("algorithm", HMAC_ALGORITHM)),
                    key_id=_text(record.get("key_id")),
                    tree_root=_text(record.get("tree_root")),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not a checkpoint line ({exc})") from None
    return checkpoints


def _text(value: object) -> str | None:
    return None if value is None else str(value)
