"""Linking incidents under one cause, and resolving a cause: every query of `agent/causes`.

The rule (one page per cause):

- Only a clear `dependency_degraded` diagnosis (not `conflicting`) can form or join a cause, and
  only for a page to the catalogued owner of each dependency it names: every other diagnosis,
  an unclear one, a dependency the catalog does not describe, or a service outside the catalog
  pages on its own, as before.
- Two pages share a cause when they match on every field of the identity: the diagnosis, the
  owner team, and each dependency as the catalog describes it (its name and where it is: a
  Qdrant URL or path and collection, a readiness URL, an embedding service's URL and model).
  The same kind of dependency elsewhere (another collection, another region's server) is
  another cause; so is the same dependency with another owner.
- ...and when the incident opened within `cause_window_seconds` of the cause's first incident.
  Later, a new cause opens (the old one stops taking incidents; it stays open until its own
  incidents resolve).
- A cause resolves when every linked incident is resolved: its page is never resolved while a
  linked incident still breaches (a healthy dependency alone does not resolve it: a service
  may still breach for it).

Concurrency: `cause.accepting_key` is unique, so two workers creating the same cause at the
same moment make one (the loser's transaction fails and it joins the winner's); the link and its
audit event are written in one transaction, under a row lock of the cause on PostgreSQL (SQLite
serialises writers), so a resolution and a join never cross.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.causes.models import Cause, CauseLink, CauseStatus
from agent.incidents.models import Incident, IncidentStatus, page_dedup_key
from agent.outbox import service as outbox
from agent.store.audit_log import AuditLog
from agent.store.db import session_scope
from audit.chain import canonical_json
from audit.redact import PayloadPolicy
from runbooks.catalog import Catalog

ACTOR = "agent.causes"
CAUSE_DIAGNOSES = frozenset({"dependency_degraded"})
"""The diagnoses about a dependency several services share; no other one forms a cause."""
DEPENDENCY_FIELDS: dict[str, tuple[str, ...]] = {
    "vector_db": ("kind", "url", "path", "collection", "readiness_url"),
    "embeddings": ("base_url", "model"),
}
"""The catalog fields that say which dependency it is (not how it is probed)."""
LINK_ATTEMPTS = 5


@dataclass(frozen=True)
class CauseIdentity:
    """The fields two pages must share to be one cause; `key` is their digest."""

    diagnosis: str
    owner: str
    dependencies: tuple[dict[str, Any], ...]

    @property
    def fields(self) -> dict[str, Any]:
        """Return the matched fields as JSON (what the audit trail shows)."""
        return {
            "diagnosis": self.diagnosis,
            "owner": self.owner,
            "dependencies": [dict(d) for d in self.dependencies],
        }

    @property
    def key(self) -> str:
        """Return the SHA-256 of the fields' canonical JSON."""
        return hashlib.sha256(canonical_json(self.fields).encode()).hexdigest()

    @property
    def component(self) -> str:
        """Return the dependencies by name, as a page names them."""
        return ", ".join(str(d["name"]) for d in self.dependencies)


def cause_identity(
    catalog: Catalog | None,
    service: str | None,
    diagnosis: dict[str, Any],
    team: str | None,
    component: str | None,
) -> CauseIdentity | None:
    """Return the identity of a page to `team` about `component`, None when it forms no cause.

    None for: no catalog or an uncatalogued service, any diagnosis but a clear
    dependency_degraded, no team or component, and a component that is not a catalogued
    dependency of the service owned by `team` (what falls to the service's own team).
    """
    if catalog is None or service is None or service not in catalog.services:
        return None
    if diagnosis.get("kind") not in CAUSE_DIAGNOSES or diagnosis.get("conflicting"):
        return None
    if not team or not component:
        return None
    spec = catalog.services[service].dependencies
    described = []
    for name in sorted({part.strip() for part in component.split(",") if part.strip()}):
        dependency = getattr(spec, name, None) if name in DEPENDENCY_FIELDS else None
        if dependency is None or str(dependency.owner) != team:
            return None
        where = {f: _normal(getattr(dependency, f, None)) for f in DEPENDENCY_FIELDS[name]}
        described.append({"name": name, **{k: v for k, v in where.items() if v is not None}})
    if not described:
        return None
    return CauseIdentity(str(diagnosis["kind"]), team, tuple(described))


def _normal(value: Any) -> Any:
    """Return a catalog value as it identifies a dependency (a URL without its trailing '/')."""
    return value.rstrip("/") if isinstance(value, str) else value


@dataclass(frozen=True)
class Linked:
    """An incident's place in a cause: what its page and thread need."""

    cause_id: uuid.UUID
    dedup_key: str
    created: bool
    """This incident opened the cause: it is the first linked (it posts the cause thread, also
    when a resumed run finds its link made before)."""
    new: bool
    """The link was made now (False: a resumed or retried run found it made before)."""
    services: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    slack_channel: str | None = None
    slack_ts: str | None = None


def link_incident(
    engine: Engine,
    audit: AuditLog,
    *,
    identity: CauseIdentity,
    incident_id: uuid.UUID,
    service: str | None,
    window: timedelta,
    now: Callable[[], datetime],
    payload_policy: PayloadPolicy | None = None,
) -> Linked:
    """Link the incident to the cause of `identity` (opening it if needed), once.

    A run resumed or retried finds its link and changes nothing. Two workers reaching the same
    new cause together: one insert wins (unique `accepting_key`), the other retries and joins.
    """
    for attempt in range(LINK_ATTEMPTS):
        try:
            with session_scope(engine) as session:
                return _link_once(
                    session, audit, identity, incident_id, service, window, now, payload_policy
                )
        except IntegrityError:
            if attempt == LINK_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _link_once(
    session: Session,
    audit: AuditLog,
    identity: CauseIdentity,
    incident_id: uuid.UUID,
    service: str | None,
    window: timedelta,
    now: Callable[[], datetime],
    payload_policy: PayloadPolicy | None,
) -> Linked:
    key = identity.key
    earlier = session.exec(
        select(Cause)
        .join(CauseLink, col(CauseLink.cause_id) == col(Cause.id))
        .where(CauseLink.incident_id == incident_id, Cause.key == key)
    ).first()
    if earlier is not None:
        return _linked(session, earlier, incident_id, new=False)
    incident = session.get(Incident, incident_id)
    opened_at = incident.opened_at if incident is not None else now()
    current = session.exec(
        select(Cause).where(Cause.accepting_key == key).with_for_update()
    ).first()
    created = False
    if current is not None and abs(opened_at - current.opened_at) > window:
        # Past the window: the old cause keeps its incidents; this one opens a new cause.
        current.accepting_key = None
        session.add(current)
        session.flush()
        current = None
    if current is None:
        cause_id = uuid.uuid4()
        current = Cause(
            id=cause_id,
            key=key,
            accepting_key=key,
            diagnosis=identity.diagnosis,
            owner=identity.owner,
            component=identity.component,
            identity=identity.fields,
            opened_at=opened_at,
            opened_by=incident_id,
            created_at=now(),
            dedup_key=page_dedup_key(incident_id, identity.owner),
        )
        session.add(current)
        session.flush()  # the unique accepting_key: a concurrent twin fails here
        created = True
    session.add(
        CauseLink(cause_id=current.id, incident_id=incident_id, service=service, linked_at=now())
    )
    session.flush()
    linked = _linked(session, current, incident_id, new=True)
    within = (opened_at - current.opened_at).total_seconds()
    what = "opened cause" if created else "linked to cause"
    audit.record(
        session,
        "cause.linked",
        {
            "summary": f"{what} {current.id}: {identity.diagnosis} on {identity.component} "
            f"owned by {identity.owner}"
            + ("" if created else f" ({len(linked.incidents)} incidents, {within:+.0f} s)"),
            "cause_id": str(current.id),
            "created": created,
            "dedup_key": current.dedup_key,
            "key": key,
            "matched": identity.fields,
            "why": (
                "no cause with every field of `matched` took incidents within the window: "
                "this incident opens one"
                if created
                else "same diagnosis, same owner, same dependency (every field of `matched`), "
                f"opened {abs(within):.0f} s from the cause's first incident, within "
                f"{window.total_seconds():.0f} s"
            ),
            "window_seconds": window.total_seconds(),
            "first_incident": str(current.opened_by),
            "services": linked.services,
            "incidents": linked.incidents,
        },
        actor=ACTOR,
        incident_id=incident_id,
        payload_policy=payload_policy,
    )
    return linked


def _linked(session: Session, cause: Cause, incident_id: uuid.UUID, *, new: bool) -> Linked:
    links = _links(session, cause.id)
    return Linked(
        cause_id=cause.id,
        dedup_key=cause.dedup_key,
        created=cause.opened_by == incident_id,
        new=new,
        services=list(dict.fromkeys(link.service or "-" for link in links)),
        incidents=[str(link.incident_id) for link in links],
        **_thread(session, cause.id),
    )


def _thread(session: Session, cause_id: uuid.UUID) -> dict[str, str | None]:
    """Where the outbox sent the cause thread's first message (None until it is sent)."""
    sent = outbox.where(session, f"cause/{cause_id}")
    return {"slack_channel": sent[0] if sent else None, "slack_ts": sent[1] if sent else None}


def _links(session: Session, cause_id: uuid.UUID) -> list[CauseLink]:
    """Return a cause's links in the order they were made."""
    links = session.exec(select(CauseLink).where(CauseLink.cause_id == cause_id)).all()
    return sorted(links, key=lambda link: link.linked_at)


@dataclass(frozen=True)
class CauseView:
    """A cause as its Slack thread shows it: the affected services, which still breach."""

    cause_id: uuid.UUID
    diagnosis: str
    owner: str
    component: str
    status: CauseStatus
    dedup_key: str
    services: dict[str, bool]
    """Service → whether one of its linked incidents is still open (breaching)."""
    incidents: int
    slack_channel: str | None
    slack_ts: str | None
    opened_by: uuid.UUID


def cause_view(engine: Engine, cause_id: uuid.UUID) -> CauseView | None:
    """Return the cause and its linked incidents as they stand now."""
    with Session(engine) as session:
        return view_in(session, cause_id)


def view_in(session: Session, cause_id: uuid.UUID) -> CauseView | None:
    """Return the cause and its linked incidents as this session sees them; the thread is
    where the outbox sent the cause's first message (None until it is sent)."""
    cause = session.get(Cause, cause_id)
    if cause is None:
        return None
    rows = session.exec(
        select(CauseLink.service, Incident.status)
        .join(Incident, col(Incident.id) == col(CauseLink.incident_id))
        .where(CauseLink.cause_id == cause_id)
        .order_by(col(CauseLink.linked_at), col(CauseLink.id))
    ).all()
    services: dict[str, bool] = {}
    for service, status in rows:
        name = service or "-"
        services[name] = services.get(name, False) or status == IncidentStatus.open
    return CauseView(
        cause_id=cause.id,
        diagnosis=cause.diagnosis,
        owner=cause.owner,
        component=cause.component,
        status=cause.status,
        dedup_key=cause.dedup_key,
        services=services,
        incidents=len(rows),
        **_thread(session, cause_id),
        opened_by=cause.opened_by,
    )


@dataclass(frozen=True)
class Resolution:
    """What to do with a cause's page when one of its incidents resolves."""

    cause_id: uuid.UUID
    resolve: bool
    """True: every linked incident is resolved, resolve the page. False: keep it open."""
    breaching: list[str]
    """The linked incidents' services still breaching (why the page stays open)."""


def resolve_for_incident(
    engine: Engine,
    audit: AuditLog,
    *,
    dedup_key: str,
    incident_id: uuid.UUID,
    now: Callable[[], datetime],
) -> Resolution | None:
    """Decide the cause page's fate as an incident resolves; None when no cause has this key.

    The page resolves only once every linked incident is resolved; the last incident to resolve
    sees all the others resolved (each incident is resolved, committed, before this is asked),
    so the page is resolved once and never while a linked incident breaches. Asked again (a
    resumed follow-up) it answers the same.
    """
    with session_scope(engine) as session:
        cause = session.exec(
            select(Cause).where(Cause.dedup_key == dedup_key).with_for_update()
        ).first()
        if cause is None:
            return None
        rows = session.exec(
            select(CauseLink.service, Incident.status)
            .join(Incident, col(Incident.id) == col(CauseLink.incident_id))
            .where(CauseLink.cause_id == cause.id)
        ).all()
        breaching = sorted({s or "-" for s, status in rows if status == IncidentStatus.open})
        if breaching:
            audit.record(
                session,
                "cause.held",
                {
                    "summary": f"cause {cause.id} page kept open: {len(breaching)} linked "
                    f"service(s) still breaching ({', '.join(breaching)})",
                    "cause_id": str(cause.id),
                    "dedup_key": cause.dedup_key,
                    "breaching": breaching,
                },
                actor=ACTOR,
                incident_id=incident_id,
            )
            return Resolution(cause.id, resolve=False, breaching=breaching)
        if cause.status == CauseStatus.open:
            cause.status = CauseStatus.resolved
            cause.resolved_at = now()
            cause.accepting_key = None
            session.add(cause)
            audit.record(
                session,
                "cause.resolved",
                {
                    "summary": f"cause {cause.id} resolved: all {len(rows)} linked incident(s) "
                    "resolved",
                    "cause_id": str(cause.id),
                    "dedup_key": cause.dedup_key,
                },
                actor=ACTOR,
                incident_id=incident_id,
            )
        return Resolution(cause.id, resolve=True, breaching=[])


def causes_of(session: Session, incident_id: uuid.UUID) -> list[Cause]:
    """Return the causes an incident is linked to."""
    return list(
        session.exec(
            select(Cause)
            .join(CauseLink, col(CauseLink.cause_id) == col(Cause.id))
            .where(CauseLink.incident_id == incident_id)
        ).all()
    )
