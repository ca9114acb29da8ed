"""Deployments recorded by CI/CD: the recent changes a breach may come from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from agent.store.values import StorableText, UTCTime
from audit.sqltypes import UTCDateTime

ChangeKind = Literal["model", "prompt", "index", "config", "code"]


class DeploymentIn(BaseModel):
    """What a pipeline sends to POST /events/deployments."""

    model_config = ConfigDict(extra="forbid")

    service: StorableText = Field(min_length=1, max_length=200)
    kind: ChangeKind
    version: StorableText = Field(min_length=1, max_length=200)
    model_id: StorableText | None = Field(None, max_length=512)
    previous_version: StorableText | None = Field(None, max_length=200)
    environment: StorableText | None = Field(None, max_length=128)
    region: StorableText | None = Field(
        None, max_length=64, description="Where it went, when it went to one region only."
    )
    deployed_at: UTCTime | None = Field(
        None, description="With its UTC offset; defaults to when it was received."
    )
    actor: StorableText | None = Field(None, max_length=200)
    url: StorableText | None = Field(None, max_length=2000)
    description: StorableText | None = Field(None, max_length=2000)
    prompt_id: StorableText | None = Field(
        None, max_length=512, description="kind `prompt`: the prompt's id (Arize's prompt id)."
    )
    label: StorableText | None = Field(
        None, max_length=200, description="kind `prompt`: the label moved (e.g. `production`)."
    )


class Deployment(SQLModel, table=True):
    """One recorded change."""

    __tablename__ = "deployment"

    id: uuid.UUID = SQLField(default_factory=uuid.uuid4, primary_key=True)
    received_at: datetime = SQLField(sa_column=Column(UTCDateTime(), nullable=False))
    deployed_at: datetime = SQLField(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    service: str = SQLField(max_length=200, index=True)
    kind: str = SQLField(max_length=16)
    version: str = SQLField(max_length=200)
    model_id: str | None = SQLField(default=None, max_length=512)
    previous_version: str | None = SQLField(default=None, max_length=200)
    environment: str | None = SQLField(default=None, max_length=128)
    region: str | None = SQLField(default=None, max_length=64)
    actor: str | None = SQLField(default=None, max_length=200)
    url: str | None = SQLField(default=None, sa_column=Column(Text))
    description: str | None = SQLField(default=None, sa_column=Column(Text))
    prompt_id: str | None = SQLField(default=None, max_length=512)
    """kind `prompt`: the prompt's id (Arize's, as its events carry it)."""
    prompt_name: str | None = SQLField(default=None, max_length=512)
    label: str | None = SQLField(default=None, max_length=200)
    """kind `prompt`: the label that moved onto (or off) `version`."""
    event: str | None = SQLField(default=None, max_length=128)
    """What reported it when not CI/CD: e.g. `prompt.version.labeled` (an Arize event)."""


class DeploymentRead(BaseModel):
    """What the API shows of a deployment."""

    id: uuid.UUID
    deployed_at: datetime
    service: str
    kind: str
    version: str
    model_id: str | None
    previous_version: str | None
    environment: str | None
    region: str | None
    actor: str | None
    url: str | None
    description: str | None
    prompt_id: str | None = None
    prompt_name: str | None = None
    label: str | None = None
    event: str | None = None
