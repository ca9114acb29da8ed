"""Failovers a run carried out, held until the route is moved back (or left where it is)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime


class FailoverStatus(StrEnum):
    """Whether the incident still holds the service's route on its failover."""

    holding = "holding"
    """The route may not go back yet: the incident is open, or its failback waits (for a healthy
    primary, for another incident that depends on the failover, or for an approval)."""
    restored = "restored"
    """Moved back to the route from before the switch."""
    released = "released"
    """Nothing of this incident's to move back: the route was already on the target when it
    failed over (another incident's switch, which that incident moves back)."""
    kept = "kept"
    """Left on the failover route for a person to move back: the failback was rejected or expired,
    or nothing can check the primary or move the route."""


class Failover(SQLModel, table=True):
    """One failover of an incident's run, keyed like the switch (`<incident>/failover/<target>`)."""

    __tablename__ = "failover"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    incident_id: uuid.UUID = Field(foreign_key="incident.id", index=True)
    service: str = Field(max_length=200, index=True)
    target: str = Field(max_length=200)
    idempotency_key: str = Field(max_length=255, unique=True)
    moved: bool = True
    """Whether this switch moved the route (False: the route already was on the target)."""
    primary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The route before the switch: the one probed before a failback, and put back."""
    status: FailoverStatus = Field(default=FailoverStatus.holding, sa_type=String(16), index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_try_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """When a held failback is tried again (None: on a later resolution, or never)."""
    attempts: int = 0
    """How many times the failback was tried (probes of the primary, restores)."""
    settled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    note: str | None = Field(default=None, sa_column=Column(Text))
    """The last word on it: why it is held, restored or kept."""
