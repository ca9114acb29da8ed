"""The outbox's tables: the messages to send, and each channel's pace and sender lease."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime


class OutboxState(StrEnum):
    """Where a message of the outbox stands."""

    pending = "pending"
    """Waiting for the channel's sender (or for its parent, or for a retry)."""
    sent = "sent"
    """Slack took it; `ts` is its timestamp (for a reply in its thread, or an edit)."""
    failed = "failed"
    """Slack refused it for good (e.g. `channel_not_found`); audited as `notification.failed`."""
    digested = "digested"
    """A new incident's opening message, folded into its channel's digest (not posted alone)."""


class OutboxMethod(StrEnum):
    """What sending a message does."""

    post = "post"
    """chat.postMessage, in the thread of `parent_key`'s message (or `thread_ts`) when set."""
    update = "update"
    """chat.update of `target_key`'s message (or `target_ts`)."""


class OutboxMessage(SQLModel, table=True):
    """One message to send, keyed for idempotency (`<incident>/<step>`, `approval/<id>`, …).

    `id` orders the channel's messages: each channel's sender sends them in that order, so a
    reply always goes after the message that opens its thread.
    """

    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    channel: str = Field(max_length=64, index=True)
    method: OutboxMethod = Field(default=OutboxMethod.post, sa_type=String(16))
    parent_key: str | None = Field(default=None, max_length=255)
    """Post in the thread of the message with this key (its ts is known once it is sent)."""
    thread_ts: str | None = Field(default=None, max_length=64)
    target_key: str | None = Field(default=None, max_length=255)
    """Edit the message with this key."""
    target_ts: str | None = Field(default=None, max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    blocks: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    actor: str = Field(default="agent", max_length=64)
    incident_id: uuid.UUID | None = Field(default=None, index=True)
    step: str | None = Field(default=None, max_length=128)
    opens_thread: bool = False
    """Once sent, its ts becomes the incident's Slack thread."""
    approval_id: uuid.UUID | None = None
    """Once sent, its ts is the approval request's message (edited when it is answered)."""
    digest: bool = False
    """A channel's digest: its text is rendered from its entries each time it is sent or edited."""
    digest_key: str | None = Field(default=None, max_length=255, index=True)
    """An entry (state `digested`): the digest it belongs to."""
    label: str | None = Field(default=None, max_length=200)
    """An entry's diagnosis (or cause), counted in the digest."""
    dirty: bool = False
    """A digest with entries added since it was last sent or edited."""
    state: OutboxState = Field(default=OutboxState.pending, sa_type=String(16), index=True)
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    not_before: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """After an error Slack may get over: not tried again before this."""
    attempted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """Set before each call, cleared when Slack's answer says nothing was posted."""
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    edited_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    ts: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text))


class OutboxChannel(SQLModel, table=True):
    """A channel's pace (a token bucket, a Retry-After) and its sender's lease.

    Only the holder of the lease sends to the channel (`agent.store.leases` renews and releases
    it), so replicas never send the same message twice nor break the channel's pace.
    """

    __tablename__ = "outbox_channel"

    id: uuid.UUID = Field(primary_key=True)
    channel: str = Field(max_length=64, unique=True)
    claimed_by: str | None = Field(default=None, max_length=255)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    tokens: float = 0.0
    refilled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    blocked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """Slack's Retry-After: nothing goes to the channel before this."""


def channel_id(channel: str) -> uuid.UUID:
    """Return the channel's row id (the same in every replica)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"slack-channel:{channel}")
