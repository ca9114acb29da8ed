"""Where a run reaches people: the incident's Slack channel and thread."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from sqlmodel import select

from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import Incident
from agent.incidents.service import set_slack_thread
from agent.store.db import session_scope
from audit.models import AuditEvent


def channel_for(ctx: RunContext, service: str | None) -> str | None:
    """Return the service's Slack channel from the catalog, else the one from the settings."""
    if ctx.catalog is not None and service in ctx.catalog.services:
        channel = ctx.catalog.services[str(service)].slack_channel
        if channel:
            return channel
    return ctx.tools.chat_channel


def post_to_incident(
    ctx: RunContext,
    state: IncidentState,
    text: str,
    blocks: list[dict[str, Any]],
    *,
    actor: str,
    dry_run: str,
    step: str | None = None,
) -> tuple[str, str] | str | None:
    """Post (redacted) into the incident's Slack thread, opening it with this message if needed.

    Return (channel, ts) once posted, the error when Slack refused, None when Slack is not set up
    (then the message is audited as a dry run). Every outcome is audited. With a `step`, the
    message is posted once per incident and step: a run resumed after a crash finds the earlier
    post in the audit trail and returns it instead of posting again.
    """
    text = ctx.audit.redactor.text(text)
    blocks = cast(list[dict[str, Any]], ctx.audit.redactor.value(blocks))
    chat, channel = ctx.tools.chat, channel_for(ctx, state.get("service"))
    if chat is None or channel is None:
        ctx.record(state, "notification.dry_run", actor, {"summary": dry_run, "text": text})
        return None
    incident_id = uuid.UUID(state["incident_id"])
    if step is not None:
        earlier = posted_before(ctx, incident_id, step)
        if earlier is not None:
            return earlier
    with session_scope(ctx.engine) as session:
        incident = session.get(Incident, incident_id)
        thread = incident.slack_thread_ts if incident is not None else None
        channel = (incident.slack_channel if incident is not None else None) or channel
    result = chat.post(channel=channel, text=text, blocks=blocks, thread_ts=thread)
    if result.status != "ok":
        ctx.record(state, "notification.failed", actor, result.audit_data())
        return str(result.error)
    posted, ts = str(result.evidence.get("channel") or channel), str(result.evidence.get("ts"))
    # Recorded first, at once: the post is then known to a resumed run (see `posted_before`).
    sent = result.audit_data()
    if step is not None:
        sent["step"] = step
    ctx.record(state, "notification.sent", actor, sent)
    with session_scope(ctx.engine) as session:
        set_slack_thread(session=session, incident_id=incident_id, channel=posted, thread_ts=ts)
    return posted, ts


def posted_before(ctx: RunContext, incident_id: uuid.UUID, step: str) -> tuple[str, str] | None:
    """Return where the incident's message of this step was posted, if it already was."""
    with session_scope(ctx.engine) as session:
        sent = session.exec(
            select(AuditEvent.data).where(
                AuditEvent.incident_id == incident_id, AuditEvent.kind == "notification.sent"
            )
        ).all()
    for raw in sent:
        data = json.loads(raw)
        evidence = data.get("evidence") if isinstance(data, dict) else None
        if data.get("step") == step and isinstance(evidence, dict):
            return str(evidence.get("channel")), str(evidence.get("ts"))
    return None
