"""An approval request: one exact action of one incident, its approvers, and its one decision."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime


class ApprovalStatus(StrEnum):
    """Where an approval request is; only `pending` may change, and only once."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"


class Approval(SQLModel, table=True):
    """A request to approve one planned action (kind, target, parameters, runbook version)."""

    __tablename__ = "approval"
    __table_args__ = (UniqueConstraint("incident_id", "action_key", name="uq_approval_action"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    incident_id: uuid.UUID = Field(foreign_key="incident.id", index=True)
    action_key: str = Field(max_length=255)
    kind: str = Field(max_length=32)
    target: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    runbook: str = Field(max_length=200)
    digest: str = Field(max_length=64)
    approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: ApprovalStatus = Field(default=ApprovalStatus.pending, sa_type=String(16), index=True)
    requested_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    decided_by: str | None = Field(default=None, max_length=200)
    decided_via: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    slack_channel: str | None = Field(default=None, max_length=64)
    slack_ts: str | None = Field(default=None, max_length=64)
    settled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """When a decision taken outside the graph run (a failback's) was carried out or dropped."""

    @property
    def decided(self) -> bool:
        """Tell whether the request has its one decision (or expired, or was cancelled)."""
        return self.status != ApprovalStatus.pending

    def describe(self) -> str:
        """Return the action in a few words: `failover to backup-region`."""
        return f"{self.kind} to {self.target}" if self.target else self.kind


class ApprovalRead(SQLModel):
    """What the API and the CLI show of an approval request."""

    id: uuid.UUID
    incident_id: uuid.UUID
    kind: str
    target: str | None
    params: dict[str, Any]
    runbook: str
    digest: str
    approvers: list[str]
    status: ApprovalStatus
    requested_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decided_via: str | None
    reason: str | None
