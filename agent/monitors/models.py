"""The Arize monitor an open incident watches: when it is read next, what it said, its tag."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime


class MonitorWatch(SQLModel, table=True):
    """One incident's Arize monitor, re-read while the incident is open, untagged after."""

    __tablename__ = "monitor_watch"

    incident_id: uuid.UUID = Field(foreign_key="incident.id", primary_key=True)
    monitor_id: str = Field(max_length=512)
    next_poll_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    """When a worker reads the monitor next; None: nothing left to do (resolved, untagged)."""
    polled_by: str | None = Field(default=None, max_length=200)
    """The worker that took the last read (a read is taken by one replica only)."""
    last_status: str | None = Field(default=None, max_length=16)
    """TRIGGERED, CLEARED or NO_DATA, as last read."""
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    """The last failed read or tag call; a failure is audited when it differs from this."""
    tag_name: str | None = Field(default=None, max_length=100)
    tag_id: str | None = Field(default=None, max_length=512)
    """The tag created for the incident (created once; its id is kept)."""
    tagged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    untagged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
