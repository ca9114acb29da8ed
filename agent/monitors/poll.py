"""Re-read each open incident's Arize monitor on an interval; tag it while open, untag after.

Arize may never send a resolve notification (its notifications fire on a triggered transition,
ARIZE.md §1), so the monitor's own `status` is the source of truth while an incident is open:

- `CLEARED` resolves the incident through the same path as a resolved alert: an alert is stored
  (`source` arize, status resolved, the incident's own fingerprint; one per incident, so a
  re-read or another replica stores it once) and the worker correlates it like a delivery:
  pages resolved, failback only under the runbook's and the failover rules, a thread reply.
- `NO_DATA` is not health: it is audited and said once in the incident's thread, and the
  incident stays open.
- A failed read (deadline, 429, 5xx, an answer the SDK cannot read) is audited once per distinct
  error and tried again at the next interval.

Each read is taken by one replica: `take_watch` moves the watch's due time in a
compare-and-set, so every replica may poll and each monitor is still read once per interval.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlmodel import select

from agent.adapters.factory import Adapters
from agent.alerts.service import accept_alert
from agent.graph.channels import pace_from
from agent.incidents.models import Incident, IncidentStatus
from agent.monitors.models import MonitorWatch
from agent.monitors.service import due_watches, first_breach, take_watch, update_watch
from agent.outbox import service as outbox
from agent.outbox.sender import send_now
from agent.outside_text import mrkdwn
from agent.settings import Settings
from agent.store.audit_log import AuditLog
from agent.store.db import session_scope
from audit.chain import canonical_json
from audit.models import AuditEvent
from tools.arize.monitors import ArizeMonitors
from tools.result import ToolResult, ToolStatus

log = structlog.get_logger(__name__)
ACTOR = "agent.monitors"
BATCH = 10
"""Watches read per turn of a worker's loop: the loop goes back to alerts in between."""


def tag_name(incident_id: uuid.UUID) -> str:
    """Return the tag an incident's monitor carries while it is open."""
    return f"remediator-incident-{str(incident_id)[:8]}"


class MonitorPoller:
    """Read the due monitors of open incidents, one replica per read (see the module doc)."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        audit: AuditLog,
        adapters: Adapters,
        now: Any,
        worker_id: str,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._audit = audit
        self._adapters = adapters
        self._now = now
        self._worker_id = worker_id

    @property
    def interval(self) -> timedelta:
        """Return how long after a read the monitor is read again."""
        return timedelta(seconds=self._settings.arize_monitor_poll_seconds)

    def poll_due(self, limit: int = BATCH) -> int:
        """Read up to `limit` due monitors; return how many this worker read."""
        arize = self._adapters.arize
        if arize is None or self._settings.arize_monitor_poll_seconds <= 0:
            return 0
        moment = self._now()
        with session_scope(self._engine) as session:
            due = due_watches(session=session, now=moment, limit=limit)
        read = 0
        for incident_id in due:
            if not take_watch(
                self._engine,
                incident_id,
                worker_id=self._worker_id,
                now=moment,
                next_at=moment + self.interval,
            ):
                continue  # another replica took this read
            read += 1
            try:
                self._visit(arize, incident_id)
            except Exception:  # one monitor's trouble never stops the worker
                log.exception("monitor.poll_failed", incident_id=str(incident_id))
        return read

    def _visit(self, arize: ArizeMonitors, incident_id: uuid.UUID) -> None:
        with session_scope(self._engine) as session:
            watch = session.get(MonitorWatch, incident_id)
            incident = session.get(Incident, incident_id)
            assert watch is not None and incident is not None
            session.expunge(watch)
            session.expunge(incident)
        if incident.status == IncidentStatus.resolved:
            self._untag(arize, watch)
            return
        if self._settings.arize_tagging and arize.space_id and watch.tagged_at is None:
            self._tag(arize, watch)
        result = arize.get_monitor(watch.monitor_id)
        if result.status != ToolStatus.ok:
            self._failed(watch, "monitor.poll_failed", "monitor not re-read", result)
            return
        reading = result.evidence["monitor"]
        status = reading.get("status")
        if status == "CLEARED":
            self._resolve(incident, watch, reading)
        elif status == "NO_DATA" and not self._reported_no_data(incident.id):
            self._report_no_data(incident, reading)
        values: dict[str, Any] = {"last_status": status}
        if (watch.last_error or "").startswith("monitor.poll_failed"):
            values["last_error"] = None  # read again: the next failure is news
        update_watch(self._engine, incident_id, **values)

    def _resolve(self, incident: Incident, watch: MonitorWatch, reading: dict[str, Any]) -> None:
        """Store the resolved alert the monitor's CLEARED status stands for (once)."""
        with session_scope(self._engine) as session:
            breach = first_breach(session=session, incident_id=incident.id)
            if breach is None or breach.fingerprint() != incident.fingerprint:
                self._audit.record(
                    session,
                    "monitor.cleared",
                    {"summary": "monitor reads CLEARED, but the incident's alert is not found"},
                    actor=ACTOR,
                    incident_id=incident.id,
                )
                return
            payload: dict[str, Any] = {
                "source": "arize-monitor-poll",
                "incident_id": str(incident.id),
                "monitor_id": watch.monitor_id,
                "status": "CLEARED",
            }
            digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
            payload["evaluated_at"] = reading.get("evaluated_at")
            alert, created = accept_alert(
                session=session,
                audit=self._audit,
                breach=breach.model_copy(update={"status": "resolved"}),
                payload=payload,
                body_sha256=digest,
            )
            if created:
                self._audit.record(
                    session,
                    "monitor.cleared",
                    {
                        "summary": f"monitor {reading.get('name')!r} reads CLEARED (evaluated "
                        f"{reading.get('evaluated_at')}): resolved like a resolve delivery",
                        "monitor": reading,
                    },
                    actor=ACTOR,
                    incident_id=incident.id,
                    alert_id=alert.id,
                )

    def _reported_no_data(self, incident_id: uuid.UUID) -> bool:
        """Tell whether the incident's NO_DATA was reported already (it is said once)."""
        with session_scope(self._engine) as session:
            found = session.exec(
                select(AuditEvent.seq).where(
                    AuditEvent.incident_id == incident_id, AuditEvent.kind == "monitor.no_data"
                )
            ).first()
        return found is not None

    def _report_no_data(self, incident: Incident, reading: dict[str, Any]) -> None:
        """Say once that the monitor has no data: not healthy, the incident stays open."""
        text = (
            f"Arize reports NO_DATA for monitor {reading.get('name') or reading.get('monitor_id')}:"
            " nothing to evaluate. That is not a recovery: the incident stays open."
        )
        data: dict[str, Any] = {"summary": text, "monitor": reading}
        if self._adapters.chat is not None:
            # Through the outbox like every message: the channel's sender posts it at its pace,
            # in the incident's thread (also when the thread's opener is still waiting).
            with session_scope(self._engine) as session:
                parent = outbox.thread_of(session, incident.id)
                channel = incident.slack_channel
                if channel and (parent or incident.slack_thread_ts):
                    key = f"{incident.id}/monitor.no_data"
                    outbox.post(
                        session,
                        key=key,
                        channel=channel,
                        text=mrkdwn(self._audit.redactor.text(text)),
                        now=self._now(),
                        parent_key=parent,
                        thread_ts=None if parent else incident.slack_thread_ts,
                        actor=ACTOR,
                        incident_id=incident.id,
                        step="monitor.no_data",
                    )
                    data["notification"] = {"status": "queued", "channel": channel, "key": key}
            if "notification" in data:  # a quiet channel gets it now; a busy one from its sender
                send_now(
                    self._engine,
                    self._audit,
                    self._adapters.chat,
                    data["notification"]["channel"],
                    pace=pace_from(self._settings),
                    now=self._now,
                )
        self._audit.record_now(
            self._engine, "monitor.no_data", data, actor=ACTOR, incident_id=incident.id
        )

    def _tag(self, arize: ArizeMonitors, watch: MonitorWatch) -> None:
        """Create the incident's tag once, then attach it; a failure is audited, never fatal."""
        name = tag_name(watch.incident_id)
        tag_id = watch.tag_id
        if tag_id is None:
            created = arize.ensure_tag(name)
            if created.error == "conflict":  # made by an earlier try that did not record it
                created = arize.find_tag(watch.monitor_id, name)
            tag_id = created.evidence.get("tag_id")
            if created.status != ToolStatus.ok or not tag_id:
                self._failed(watch, "monitor.tag_failed", f"tag {name} not created", created)
                return
            update_watch(self._engine, watch.incident_id, tag_name=name, tag_id=tag_id)
        attached = arize.add_tag(watch.monitor_id, tag_id)
        if attached.status != ToolStatus.ok:
            self._failed(watch, "monitor.tag_failed", f"tag {name} not attached", attached)
            return
        update_watch(self._engine, watch.incident_id, tagged_at=self._now())
        self._audit.record_now(
            self._engine,
            "monitor.tagged",
            {"summary": f"monitor tagged {name} while the incident is open", "tag_id": tag_id},
            actor=ACTOR,
            incident_id=watch.incident_id,
        )

    def _untag(self, arize: ArizeMonitors, watch: MonitorWatch) -> None:
        """Take the incident's tag off its monitor; then the watch ends."""
        if watch.tag_id is None or watch.tagged_at is None or watch.untagged_at is not None:
            update_watch(self._engine, watch.incident_id, next_poll_at=None)
            return
        removed = arize.remove_tag(watch.monitor_id, watch.tag_id)
        if removed.status != ToolStatus.ok:
            self._failed(
                watch, "monitor.untag_failed", f"tag {watch.tag_name} not removed", removed
            )
            return  # tried again at the next interval
        update_watch(self._engine, watch.incident_id, untagged_at=self._now(), next_poll_at=None)
        self._audit.record_now(
            self._engine,
            "monitor.untagged",
            {"summary": f"tag {watch.tag_name} removed from the monitor: the incident resolved"},
            actor=ACTOR,
            incident_id=watch.incident_id,
        )

    def _failed(self, watch: MonitorWatch, kind: str, what: str, result: ToolResult) -> None:
        """Audit a failed call once per distinct error (each interval retries it silently)."""
        error = f"{kind}: {result.summary}"
        if error == watch.last_error:
            return
        update_watch(self._engine, watch.incident_id, last_error=error)
        data = result.audit_data()
        data["summary"] = (
            f"{what} ({result.summary}); tried again in {self.interval.total_seconds():g}s"
        )
        self._audit.record_now(self._engine, kind, data, actor=ACTOR, incident_id=watch.incident_id)
