"""The service's handle on the audit chain: the key and the clock, bound once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from agent.db import session_scope
from audit.models import AuditEvent
from audit.service import append_event
from audit.sqltypes import utcnow


@dataclass(frozen=True)
class AuditLog:
    """Write audit events with the chain key from Settings, in the caller's or a new transaction."""

    key: bytes
    now: Callable[[], datetime] = utcnow

    def record(
        self,
        session: Session,
        kind: str,
        data: dict[str, Any],
        *,
        actor: str,
        incident_id: uuid.UUID | None = None,
        alert_id: uuid.UUID | None = None,
    ) -> AuditEvent:
        """Append one event inside the caller's transaction."""
        return append_event(
            session=session,
            key=self.key,
            kind=kind,
            actor=actor,
            data=data,
            incident_id=incident_id,
            alert_id=alert_id,
            now=self.now,
        )

    def record_now(
        self,
        engine: Engine,
        kind: str,
        data: dict[str, Any],
        *,
        actor: str,
        incident_id: uuid.UUID | None = None,
        alert_id: uuid.UUID | None = None,
    ) -> AuditEvent:
        """Append one event in a transaction of its own."""
        with session_scope(engine) as session:
            return self.record(
                session, kind, data, actor=actor, incident_id=incident_id, alert_id=alert_id
            )
