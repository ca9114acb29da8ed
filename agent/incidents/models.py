"""Incidents: alerts of one fingerprint grouped together, each investigated by one graph run."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String, Text
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime


class IncidentStatus(StrEnum):
    """Whether the breach behind an incident is still going on."""

    open = "open"
    resolved = "resolved"


class RunState(StrEnum):
    """Where the incident's graph run is."""

    pending = "pending"
    running = "running"
    waiting = "waiting"
    """Paused for an approval; due again when it is decided or expires."""
    completed = "completed"
    failed = "failed"
    skipped = "skipped"


class IncidentBase(SQLModel):
    """What an incident is about."""

    fingerprint: str = Field(max_length=64, index=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    monitor_key: str = Field(max_length=512)
    model_id: str | None = Field(default=None, max_length=512)
    environment: str | None = Field(default=None, max_length=128)
    service: str | None = Field(default=None, max_length=200, index=True)


class Incident(IncidentBase, table=True):
    """One incident; its id is the graph run's thread id and the root of its dedup keys."""

    __tablename__ = "incident"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: IncidentStatus = Field(default=IncidentStatus.open, sa_type=String(16), index=True)
    run_state: RunState = Field(default=RunState.pending, sa_type=String(16))
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    slack_channel: str | None = Field(default=None, max_length=64)
    slack_thread_ts: str | None = Field(default=None, max_length=64)
    last_notified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    run_after: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    claimed_by: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    @property
    def dedup_key(self) -> str:
        """Return the PagerDuty dedup_key of this incident's page to no particular team."""
        return page_dedup_key(self.id)


def page_dedup_key(incident_id: uuid.UUID, team: str | None = None) -> str:
    """Return the PagerDuty dedup_key of an incident's page to a team (stable, ≤ 255 characters).

    Each team paged for an incident has its own key, so each page is an alert of its own and a
    retried or repeated page updates it; a page to no particular team (no catalog) has the
    incident's own key.
    """
    key = f"remediator/incident/{incident_id}"
    return f"{key}/{team[:150]}" if team else key


class IncidentRead(IncidentBase):
    """What the API shows of an incident."""

    id: uuid.UUID
    status: IncidentStatus
    run_state: RunState
    opened_at: datetime
    resolved_at: datetime | None
