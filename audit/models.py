"""Tables of the append-only, hash-chained audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEventBase(SQLModel):
    """What one audit event says: who did what, to which incident, with which data."""

    ts: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    incident_id: uuid.UUID | None = Field(default=None, index=True)
    alert_id: uuid.UUID | None = Field(default=None, index=True)
    actor: str = Field(max_length=200)
    kind: str = Field(max_length=100, index=True)
    # Canonical JSON text: hashed exactly as stored, so no backend can reorder or reformat it.
    data: str = Field(sa_column=Column(Text, nullable=False))


class AuditEvent(AuditEventBase, table=True):
    """One link of the chain; never updated or deleted."""

    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The single row naming the chain's last link; locked while an event is appended."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default=GENESIS_HASH, max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A signed record of the chain's head at a moment: makes a removed tail visible.

    Signed with a private key (`algorithm`, `key_id`) over the head and the Merkle root of every
    event up to it (`tree_root`), so a public key verifies it; rows written before that carry an
    HMAC (`hmac-sha256`) and no root. `frontier` only speeds up the next checkpoint and proofs.
    """

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    head_seq: int
    head_hash: str = Field(max_length=64)
    signature: str = Field(sa_column=Column(Text, nullable=False))
    algorithm: str = Field(default="hmac-sha256", max_length=32)
    key_id: str | None = Field(default=None, max_length=64)
    tree_root: str | None = Field(default=None, max_length=64)
    # JSON list of the hex roots of the tree's perfect subtrees, largest first (audit.merkle).
    frontier: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
