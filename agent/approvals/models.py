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

    def describe(self, service: str | None = None) -> str:
        """Return the action in words: `fail over support-bot to backup-region (us-east-1)`."""
        known = ("severity", "team", "version", "previous_version", "change_kind")
        params = {k: v for k, v in self.params.items() if k in known}
        target = self.params.get("target") or self.target
        return action_in_words(self.kind, service=service, target=target, **params)


def action_in_words(
    kind: str,
    *,
    service: str | None = None,
    target: object = None,
    severity: object = None,
    team: object = None,
    version: object = None,
    previous_version: object = None,
    change_kind: object = None,
    **_: object,
) -> str:
    """Return what an action does, in words a responder reads at a glance.

    `target` is a failover target's name or its catalog entry (`{"name", "region", "model"}`);
    the other keywords are a planned action's parameters (unknown ones are ignored).
    """
    entry = target if isinstance(target, dict) else {}
    name = entry.get("name") if entry else target
    where = entry.get("region") or entry.get("model")
    to = f"{name} ({where})" if name and where else str(name or where or "its failover target")
    subject = f" {service}" if service else ""
    if kind == "failover":
        return f"fail over{subject} to {to}"
    if kind == "failback":
        return f"move{subject} back from {name or 'its failover route'} to primary"
    if kind == "page":
        return f"page {team or 'on-call'}" + (f" at {severity}" if severity else "")
    if kind == "notify":
        return f"post a {severity or 'warning'} notice in the Slack thread"
    if kind == "rollback":
        what = " ".join(str(part) for part in (change_kind, version) if part)
        return (
            f"roll back{subject}"
            + (f" {what}" if what else "")
            + (f" to {previous_version}" if previous_version else "")
        )
    if kind == "rollback_prompt":
        label = entry.get("label") or "production"
        prompt = entry.get("prompt_id") or "its prompt"
        back_to = entry.get("to_version") or previous_version
        return (
            f"move the {label} label of{subject} prompt {prompt} back"
            + (f" from version {entry['from_version']}" if entry.get("from_version") else "")
            + (f" to version {back_to}" if back_to else " to the previous version")
        )
    return f"{kind} {to}" if name else kind


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
