"""Causes: incidents that share one diagnosis on one dependency of one owner, paged once.

A cause is opened by the first incident whose run pages the owner of a failing catalogued
dependency; incidents opened within the window after it, with the same diagnosis on the same
dependency (same owner, same component: the catalog's description of it) are linked to it and
page on its dedup key instead of their own (see `agent/causes/service.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from audit.sqltypes import UTCDateTime


class CauseStatus(StrEnum):
    """Whether a cause's page is still open."""

    open = "open"
    resolved = "resolved"
    """Every linked incident resolved; the page was resolved (or is being resolved)."""


class Cause(SQLModel, table=True):
    """One cause: the owner's one PagerDuty alert and one Slack thread, for its linked incidents."""

    __tablename__ = "cause"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=64, index=True)
    """SHA-256 of the matched fields (`identity`): equal keys, the same diagnosis on the same
    dependency of the same owner."""
    accepting_key: str | None = Field(default=None, max_length=64, unique=True)
    """`key` while incidents may still join; NULL once the window passed or the cause resolved.
    Unique: two workers reaching the same cause at the same moment make one cause."""
    diagnosis: str = Field(max_length=64)
    owner: str = Field(max_length=200)
    component: str = Field(max_length=200)
    """The dependencies by name, as the page names them (`vector_db`, `vector_db, embeddings`)."""
    identity: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    """What was matched: diagnosis, owner, and each dependency as the catalog describes it."""
    status: CauseStatus = Field(default=CauseStatus.open, sa_type=String(16), index=True)
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    """When its first incident opened: the window counts from here."""
    opened_by: uuid.UUID = Field(foreign_key="incident.id")
    """The incident that opened it: the cause's page is its page (`dedup_key`)."""
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    dedup_key: str = Field(max_length=255, unique=True)
    """The page of its first incident to the owner (`page_dedup_key`): later incidents trigger
    on it, so PagerDuty holds one alert; a cause of one incident pages as any incident does."""


class CauseLink(SQLModel, table=True):
    """One incident linked to a cause (once: unique per cause and incident)."""

    __tablename__ = "cause_link"
    __table_args__ = (UniqueConstraint("cause_id", "incident_id", name="uq_cause_link"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    cause_id: uuid.UUID = Field(foreign_key="cause.id", index=True)
    incident_id: uuid.UUID = Field(foreign_key="incident.id", index=True)
    service: str | None = Field(default=None, max_length=200)
    linked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
