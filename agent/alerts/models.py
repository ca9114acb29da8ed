"""Alerts as received (one row per distinct delivery) and the typed breach they describe."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel
from uuid6 import uuid7

from audit.chain import canonical_json
from audit.sqltypes import UTCDateTime

BreachStatus = Literal["triggered", "resolved", "no_data"]

STORED_LENGTHS = {
    "monitor_id": 512,
    "monitor_name": 512,
    "model_id": 512,
    "environment": 128,
    "service": 200,
}
"""Breach fields copied into columns of their own, and how long those columns are."""

WEBHOOK_ID_LENGTH = 256
WEBHOOK_EVENT_LENGTH = 128


class Breach(BaseModel):
    """One monitor's state change, whatever system sent it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["arize", "alertmanager"] = "arize"
    monitor_id: str | None = None
    monitor_name: str | None = None
    status: BreachStatus
    metric: str | None = None
    threshold: float | None = None
    operator: str | None = None
    value: float | None = None
    model_id: str | None = None
    model_version: str | None = None
    environment: str | None = None
    service: str | None = None
    segment: dict[str, str] = {}
    triggered_at: datetime | None = None
    url: str | None = None

    @property
    def monitor_key(self) -> str:
        """Return the monitor's identity: its id, else its name."""
        key = self.monitor_id or self.monitor_name
        assert key is not None, "a Breach always has a monitor identity"
        return key

    def fingerprint(self) -> str:
        """Return the grouping key: monitor, the identity labels and the segment.

        The identity labels are the service, the model and the environment: alerts of one
        monitor (an Alertmanager `alertname`) for two services are two incidents, never one. The
        service enters the key only when the alert names one, so alerts without a service keep
        the key they always had (an incident open across an upgrade still groups its alerts).
        """
        parts: dict[str, Any] = {
            "monitor": self.monitor_key,
            "model": self.model_id,
            "environment": self.environment,
            "segment": self.segment,
        }
        if self.service:
            parts["service"] = self.service
        return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:32]

    def title(self, service: str | None = None) -> str:
        """Return a one-line human description of the breach, naming its service.

        `service` is the catalog's name for it when the alert did not carry one (found by its
        model); a service named like its model is said once. What breached is the metric, else
        the monitor's name; a monitor name that says more than the metric is kept at the end.
        Nothing absent is spelled out (no `None`, no `unknown model`), a version already written
        `v7` gets no second `v`, and the title is one line whatever the alert's texts hold.
        """
        what = self.metric or self.monitor_name or "monitor"
        service = self.service or service
        model = self.model_id
        if model and self.model_version:
            model += f" {version_label(self.model_version)}"
        details = []
        if service and service != self.model_id:
            subject: str | None = service
            details += [f"model {model}"] if model else []
        else:
            subject = model
        details += [self.environment] if self.environment else []
        where = f" ({', '.join(details)})" if details else ""
        numbers = ""
        if self.value is not None and self.threshold is not None:
            numbers = f": {self.value:g} {operator_sign(self.operator)} {self.threshold:g}"
        elif self.value is not None:
            numbers = f": {self.value:g}"
        segment = ""
        if self.segment:
            segment = " [" + ", ".join(f"{k}={v}" for k, v in sorted(self.segment.items())) + "]"
        monitor = ""
        if self.monitor_name and self.monitor_name.casefold() != what.casefold():
            monitor = f" · monitor {self.monitor_name}"
        on = f" on {subject}" if subject else ""
        return one_line(f"{what} breach{on}{where}{numbers}{segment}{monitor}")


_SIGNS = {
    **dict.fromkeys(("greater_than", "gt", "above"), ">"),
    **dict.fromkeys(("less_than", "lt", "below"), "<"),
    **dict.fromkeys(("greater_than_or_equal", "greater_than_or_equals", "gte", ">="), "≥"),
    **dict.fromkeys(("less_than_or_equal", "less_than_or_equals", "lte", "<="), "≤"),
    **dict.fromkeys(("equals", "equal", "eq", "=="), "="),
}


def operator_sign(operator: str | None) -> str:
    """Return a threshold operator as a sign (`GREATER_THAN` is `>`), `vs` when none is given."""
    if not operator:
        return "vs"
    return _SIGNS.get(operator.strip().casefold().replace(" ", "_"), operator)


_VERSION_WITH_V = re.compile(r"^v\d", re.IGNORECASE)


def version_label(version: str) -> str:
    """Return a model version as said after the model: `v7` for `7` and for `v7` alike."""
    version = version.strip()
    if _VERSION_WITH_V.match(version) or not version[:1].isdigit():
        return version
    return f"v{version}"


def one_line(text: str) -> str:
    """Return text on one line: every run of whitespace (newlines too) becomes one space."""
    return " ".join(text.split())


class AlertState(StrEnum):
    """Where an accepted alert is in the worker's hands."""

    pending = "pending"
    claimed = "claimed"
    done = "done"
    failed = "failed"


class AlertBase(SQLModel):
    """An accepted delivery and what it was mapped to."""

    source: str = Field(max_length=32)
    monitor_key: str = Field(max_length=512, index=True)
    body_sha256: str = Field(max_length=64)
    status: str = Field(max_length=16)
    fingerprint: str = Field(max_length=64, index=True)
    breach_json: str = Field(sa_column=Column(Text, nullable=False))


class Alert(AlertBase, table=True):
    """One accepted alert; the same body from the same monitor is stored once."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("monitor_key", "body_sha256", name="uq_alert_delivery"),
        # A delivery's own id (Arize's X-Arize-Webhook-Id): a retry is the same alert, whatever
        # its body, in every replica and process (NULLs, deliveries without one, never clash).
        UniqueConstraint("source", "webhook_id", name="uq_alert_webhook_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    state: AlertState = Field(default=AlertState.pending, sa_type=String(16), index=True)
    claimed_by: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    attempts: int = 0
    incident_id: uuid.UUID | None = Field(default=None, foreign_key="incident.id", index=True)
    processed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    error: str | None = Field(default=None, sa_column=Column(Text))
    webhook_id: str | None = Field(default=None, max_length=WEBHOOK_ID_LENGTH)
    """The sender's id of the delivery (X-Arize-Webhook-Id); retries keep it."""
    webhook_event: str | None = Field(default=None, max_length=WEBHOOK_EVENT_LENGTH)
    """The sender's event type (X-Arize-Webhook-Event), when it says one."""
    auth_mode: str | None = Field(default=None, max_length=16)
    """How the delivery authenticated: bearer, hmac (and the key form) or header."""

    def breach(self) -> Breach:
        """Return the typed breach this alert carries."""
        return Breach.model_validate_json(self.breach_json)


class WebhookDelivery(SQLModel, table=True):
    """A delivery that is not an alert (an Arize prompt or other event), stored once by its id.

    The unique key is what makes a retry a duplicate in every replica and process; the
    delivery's content is in its audit event (`arize.event.received`).
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("source", "webhook_id", name="uq_webhook_delivery"),
        UniqueConstraint("source", "signed_sha256", name="uq_webhook_delivery_signed"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    source: str = Field(max_length=32)
    webhook_id: str = Field(max_length=WEBHOOK_ID_LENGTH)
    """X-Arize-Webhook-Id, or `sha256:<body digest>` for a delivery without one."""
    event: str | None = Field(default=None, max_length=WEBHOOK_EVENT_LENGTH)
    auth_mode: str = Field(max_length=32)
    outcome: str = Field(max_length=16)
    """`change` (recorded as changes) or `audited` (only audited)."""
    body_sha256: str = Field(max_length=64)
    signed_sha256: str | None = Field(default=None, max_length=64)
    """hmac deliveries: the sha256 of `<timestamp>.<body>`, so a replay under a new id is known."""
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AlertRead(SQLModel):
    """What the API shows of an alert."""

    id: uuid.UUID
    received_at: datetime
    source: str
    monitor_key: str
    status: str
    state: AlertState
    incident_id: uuid.UUID | None
    incident_run_state: str | None = None
    """The incident's investigation: pending, running, waiting, completed, failed or skipped."""
    incident_status: str | None = None
    """The incident: open or resolved."""
    error: str | None
    webhook_id: str | None = None
    webhook_event: str | None = None
    auth_mode: str | None = None
