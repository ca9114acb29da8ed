"""The review API for the `viewer` role: incidents, their audit trail and their exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from agent.alerts.models import AlertRead
from agent.api.deps import AppStateDep, SessionDep, ViewerAuth
from agent.api.problems import Problem
from agent.incidents.models import IncidentRead
from agent.review.export import Review, to_json_lines, to_markdown
from agent.review.service import (
    IncidentFilter,
    IncidentRecord,
    chain_summary,
    list_incidents,
    load_incident,
)
from agent.store.values import StorableText, UTCTime

router = APIRouter(tags=["review"], dependencies=[ViewerAuth])
MAX_OFFSET = 2**31 - 1
"""The furthest page start asked for (both backends take it; no one has that many incidents)."""
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
}


class IncidentPage(BaseModel):
    """One page of incidents."""

    incidents: list[IncidentRead]
    total: int
    limit: int
    offset: int


class IncidentDetail(BaseModel):
    """One incident with its alerts and the audit chain's status."""

    incident: IncidentRead
    alerts: list[AlertRead]
    chain: dict[str, Any]


class AuditEventRead(BaseModel):
    """One audit event as the review API shows it."""

    seq: int
    ts: datetime
    actor: str
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class IncidentAudit(BaseModel):
    """An incident's audit events, oldest first, and the chain's status."""

    events: list[AuditEventRead]
    chain: dict[str, Any]


@router.get("/incidents", response_model=IncidentPage, responses=AUTH_ERRORS)
def get_incidents(
    session: SessionDep,
    incident_status: Annotated[Literal["open", "resolved"] | None, Query(alias="status")] = None,
    service: Annotated[StorableText | None, Query(max_length=200)] = None,
    model: Annotated[StorableText | None, Query(max_length=512)] = None,
    since: UTCTime | None = None,
    until: UTCTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> IncidentPage:
    """List incidents, newest first, filtered by status, service, model and opening time.

    `since` and `until` carry their UTC offset (`2026-11-27T02:00:00Z`).
    """
    where = IncidentFilter(incident_status, service, model, since, until, limit, offset)
    page, total = list_incidents(session=session, where=where)
    return IncidentPage(
        incidents=[IncidentRead.model_validate(i, from_attributes=True) for i in page],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, responses=AUTH_ERRORS)
def get_incident(
    incident_id: uuid.UUID, session: SessionDep, app_state: AppStateDep
) -> IncidentDetail:
    """Show one incident, its alerts, and whether the audit chain verifies."""
    record = _record(session, incident_id)
    return IncidentDetail(
        incident=IncidentRead.model_validate(record.incident, from_attributes=True),
        alerts=[AlertRead.model_validate(a, from_attributes=True) for a in record.alerts],
        chain=chain_summary(app_state.chain.current()),
    )


@router.get("/incidents/{incident_id}/audit", response_model=IncidentAudit, responses=AUTH_ERRORS)
def get_incident_audit(
    incident_id: uuid.UUID, session: SessionDep, app_state: AppStateDep
) -> IncidentAudit:
    """List the incident's audit events, oldest first."""
    record = _record(session, incident_id)
    events = [
        AuditEventRead(
            seq=e.seq,
            ts=e.ts,
            actor=e.actor,
            kind=e.kind,
            data=record.event_data(e),
            prev_hash=e.prev_hash,
            hash=e.hash,
        )
        for e in record.events
    ]
    return IncidentAudit(events=events, chain=chain_summary(app_state.chain.current()))


@router.get(
    "/incidents/{incident_id}/export",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/markdown": {}, "application/x-ndjson": {}}},
        409: {"model": Problem},
        **AUTH_ERRORS,
    },
)
def export_incident(
    incident_id: uuid.UUID,
    session: SessionDep,
    app_state: AppStateDep,
    format: Literal["md", "json"] = "md",
) -> PlainTextResponse:
    """Export a post-incident review as Markdown, or everything as JSON Lines."""
    record = _record(session, incident_id)
    review = Review.build(
        record, app_state.chain.current(), app_state.audit.now(), app_state.settings.public_url
    )
    if format == "md":
        body, media, suffix = to_markdown(review), "text/markdown; charset=utf-8", "md"
    else:
        body, media, suffix = _signed_json_lines(app_state, review), "application/x-ndjson", "jsonl"
    disposition = f'inline; filename="incident-{incident_id}.{suffix}"'
    return PlainTextResponse(body, media_type=media, headers={"Content-Disposition": disposition})


def _signed_json_lines(app_state: AppStateDep, review: Review) -> str:
    """Return the JSON Lines export with its proofs and seal (verifiable with the public key)."""
    audit, settings = app_state.audit, app_state.settings
    seqs = [event.seq for event in review.record.events]
    try:
        proofs = audit.prove(app_state.engine, seqs, settings.audit_checkpoint_file)
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"cannot prove the events: {exc}") from None
    return audit.seal(to_json_lines(review, proofs))


def _record(session: SessionDep, incident_id: uuid.UUID) -> IncidentRecord:
    record = load_incident(session=session, incident_id=incident_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no incident {incident_id}")
    return record
