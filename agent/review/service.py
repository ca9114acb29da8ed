"""Read incidents for review: filtered lists, one incident with its alerts and events, the chain."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from agent.alerts.models import Alert
from agent.incidents.models import Incident
from agent.review.story import SEVERITIES, STORY_KINDS, TAKEN, Story, event_data, tell
from audit.models import AuditEvent
from audit.service import VerifyResult, events_for
from runbooks.schema import DIAGNOSES, ActionKind


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a reviewer asked for."""

    status: str | None = None
    service: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


def list_incidents(*, session: Session, where: IncidentFilter) -> tuple[Sequence[Incident], int]:
    """Return one page of incidents, newest first, and how many match in all."""
    query = _matching(where)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = session.exec(
        query.order_by(col(Incident.opened_at).desc()).offset(where.offset).limit(where.limit)
    ).all()
    return page, int(total)


def _matching(where: IncidentFilter) -> SelectOfScalar[Incident]:
    query = select(Incident)
    if where.status:
        query = query.where(Incident.status == where.status)
    if where.service:
        query = query.where(Incident.service == where.service)
    if where.model:
        query = query.where(Incident.model_id == where.model)
    if where.since:
        query = query.where(col(Incident.opened_at) >= where.since)
    if where.until:
        query = query.where(col(Incident.opened_at) <= where.until)
    return query


SORT_KEYS = ("opened", "status", "service", "metric", "diagnosis", "actions", "severity")
"""What the incident list sorts by."""
NONE = "none"
"""The filter value for 'no diagnosis / no action / no severity yet'."""
ACTION_FILTERS = (*get_args(ActionKind), "resolve", NONE)
DIAGNOSIS_FILTERS = (*DIAGNOSES, NONE)
SEVERITY_FILTERS = (*SEVERITIES, NONE)
SCAN_LIMIT = 5000
"""How many of the newest matching incidents a sort or filter on their story looks at."""
_CHUNK = 500


@dataclass(frozen=True)
class ListQuery:
    """The incident list's filters and order: columns of the row and facts from its story."""

    where: IncidentFilter
    metric: str | None = None
    diagnosis: str | None = None
    action: str | None = None
    severity: str | None = None
    sort: str = "opened"
    descending: bool = True

    @property
    def reads_stories(self) -> bool:
        """Return whether matching or ordering needs each incident's story (not SQL alone)."""
        story_sort = self.sort not in ("opened", "status", "service")
        return story_sort or any((self.metric, self.diagnosis, self.action, self.severity))


@dataclass(frozen=True)
class IncidentRow:
    """One row of the incident list: the incident, its metric and its story."""

    incident: Incident
    metric: str | None
    story: Story

    def matches(self, query: ListQuery) -> bool:
        """Return whether the row passes the query's story filters."""
        kinds = {step.kind for step in self.story.actions if step.status in TAKEN}
        return (
            (query.metric is None or self.metric == query.metric)
            and (query.diagnosis is None or (self.story.diagnosis or NONE) == query.diagnosis)
            and (query.severity is None or (self.story.severity or NONE) == query.severity)
            and (
                query.action is None
                or (query.action in kinds if query.action != NONE else not kinds)
            )
        )

    def key(self, sort: str) -> tuple[Any, ...]:
        """Return the row's sort key for one of SORT_KEYS."""
        incident, story = self.incident, self.story
        taken = story.taken()
        keys: dict[str, tuple[Any, ...]] = {
            "opened": (incident.opened_at,),
            "status": (str(incident.status),),
            "service": (incident.service or "",),
            "metric": (self.metric or "",),
            "diagnosis": (story.diagnosis or "",),
            "actions": (len(taken), ", ".join(taken)),
            "severity": (SEVERITIES.index(story.severity) if story.severity else -1,),
        }
        return keys[sort]


def list_incident_rows(
    *, session: Session, query: ListQuery
) -> tuple[list[IncidentRow], int, bool]:
    """Return one page of the incident list, how many match, and whether the scan was cut.

    Filters on the incident's own columns run in SQL. A filter or sort on what the story says
    (diagnosis, actions, severity, metric) reads the stories of the newest SCAN_LIMIT matching
    incidents; the third value says when more matched than were read.
    """
    where = query.where
    if not query.reads_stories:
        order = {
            "opened": col(Incident.opened_at),
            "status": col(Incident.status),
            "service": col(Incident.service),
        }[query.sort]
        matching = _matching(where)
        total = session.exec(select(func.count()).select_from(matching.subquery())).one()
        sql = matching.order_by(
            order.desc() if query.descending else order.asc(), col(Incident.opened_at).desc()
        )
        incidents = session.exec(sql.offset(where.offset).limit(where.limit)).all()
        return _rows(session, incidents), int(total), False
    newest = _matching(where).order_by(col(Incident.opened_at).desc())
    scanned = session.exec(newest.limit(SCAN_LIMIT + 1)).all()
    cut = len(scanned) > SCAN_LIMIT
    rows = [row for row in _rows(session, scanned[:SCAN_LIMIT]) if row.matches(query)]
    rows.sort(key=lambda row: row.key(query.sort), reverse=query.descending)
    return rows[where.offset : where.offset + where.limit], len(rows), cut


def _rows(session: Session, incidents: Sequence[Incident]) -> list[IncidentRow]:
    """Return the incidents' rows, reading their first alerts and story events in batches."""
    ids = [incident.id for incident in incidents]
    metrics: dict[uuid.UUID, str | None] = {}
    events: dict[uuid.UUID, list[AuditEvent]] = {i: [] for i in ids}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        first = (
            select(col(Alert.incident_id), func.min(col(Alert.received_at)).label("first"))
            .where(col(Alert.incident_id).in_(chunk))
            .group_by(col(Alert.incident_id))
            .subquery()
        )
        firsts = session.exec(
            select(Alert.incident_id, Alert.breach_json).join(
                first,
                (col(Alert.incident_id) == first.c.incident_id)
                & (col(Alert.received_at) == first.c.first),
            )
        ).all()
        for incident_id, breach_json in firsts:
            if incident_id is not None and incident_id not in metrics:
                metrics[incident_id] = _metric(breach_json)
        kinds = or_(*(col(AuditEvent.kind).startswith(prefix) for prefix in STORY_KINDS))
        found = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.incident_id).in_(chunk), kinds)
            .order_by(col(AuditEvent.seq))
        ).all()
        for event in found:
            if event.incident_id is not None:
                events[event.incident_id].append(event)
    return [IncidentRow(i, metrics.get(i.id), tell(events[i.id])) for i in incidents]


def _metric(breach_json: str) -> str | None:
    try:
        metric = json.loads(breach_json).get("metric")
    except (ValueError, AttributeError):
        return None
    return str(metric) if metric else None


@dataclass(frozen=True)
class IncidentRecord:
    """Everything known about one incident: the row, its alerts and its audit events."""

    incident: Incident
    alerts: Sequence[Alert]
    events: Sequence[AuditEvent]

    def event_data(self, event: AuditEvent) -> dict[str, Any]:
        """Return an event's data as a dict."""
        return event_data(event)


def load_incident(*, session: Session, incident_id: uuid.UUID) -> IncidentRecord | None:
    """Return an incident with its alerts (oldest first) and audit events, or None."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    alerts = session.exec(
        select(Alert).where(Alert.incident_id == incident_id).order_by(col(Alert.received_at))
    ).all()
    events = events_for(session=session, incident_id=incident_id, alert_ids=[a.id for a in alerts])
    return IncidentRecord(incident=incident, alerts=alerts, events=events)


class ChainStatus:
    """The audit chain's verification result, recomputed when older than `max_age` seconds."""

    def __init__(
        self,
        engine: Engine,
        verify: Callable[[Session], VerifyResult],
        *,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._verify = verify
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._result: VerifyResult | None = None
        self._at = 0.0

    def current(self) -> VerifyResult:
        """Return a verification no older than max_age."""
        with self._lock:
            if self._result is None or self._clock() - self._at > self._max_age:
                with Session(self._engine) as session:
                    self._result = self._verify(session)
                self._at = self._clock()
            return self._result


def chain_summary(result: VerifyResult) -> dict[str, Any]:
    """Return the verification as JSON for the API and the exports."""
    return {
        "verified": result.ok,
        "events_checked": result.checked,
        "head_seq": result.head_seq,
        "checkpoints": result.checkpoints,
        "first_bad_seq": result.first_bad_seq,
        "reason": result.reason,
    }
