"""Where a run reaches people: the incident's Slack channel and thread, through the outbox.

A message is written to the outbox (`agent.outbox`) in one transaction (the sender audits it
as `notification.sent` once Slack took it), then sent at once if the channel has room;
otherwise the channel's sender (in the worker process) sends it at Slack's pace. So no run
waits for another incident's messages, and a crash after the commit loses nothing: the
sender sends it later.

Nothing here must stay synchronous. What the graph used to need the Slack ts for is resolved by
the sender once the message is sent: a reply names its thread by the opening message's key, an
approval request's ts is stored on the approval when it is sent (`approval_id`), and its edit
names the request by key. A run that finds its message sent returns (channel, ts) as before; one
whose message waits gets `Queued`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlmodel import Session, select

from agent.alerts.models import Breach
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import Incident
from agent.outbox import service as outbox
from agent.outbox.models import OutboxMessage, OutboxState
from agent.outbox.sender import Pace, send_now
from agent.outside_text import mrkdwn
from agent.store.db import session_scope
from audit.models import AuditEvent


@dataclass(frozen=True)
class Queued:
    """A message written to the outbox and not sent yet (its channel is busy)."""

    channel: str
    key: str


def channel_for(ctx: RunContext, service: str | None) -> str | None:
    """Return the service's Slack channel from the catalog, else the one from the settings."""
    if ctx.catalog is not None and service in ctx.catalog.services:
        channel = ctx.catalog.services[str(service)].slack_channel
        if channel:
            return channel
    return ctx.tools.chat_channel


def pace(ctx: RunContext) -> Pace:
    """Return the outbox's pace from the settings."""
    settings = ctx.settings
    return pace_from(settings)


def pace_from(settings: Any) -> Pace:
    """Return the outbox's pace for these settings (the worker's sender uses the same)."""
    interval = settings.slack_min_interval_seconds
    return Pace(
        burst=settings.slack_burst,
        rate=1.0 / interval if interval > 0 else 1000.0,
        lease_seconds=settings.slack_outbox_lease_seconds,
        digest_edit_seconds=settings.slack_digest_edit_seconds,
        public_url=settings.public_url,
    )


def post_to_incident(
    ctx: RunContext,
    state: IncidentState,
    text: str,
    blocks: list[dict[str, Any]],
    *,
    actor: str,
    dry_run: str,
    step: str | None = None,
    approval_id: uuid.UUID | None = None,
) -> tuple[str, str] | Queued | str | None:
    """Post (redacted) into the incident's Slack thread, opening it with this message if needed.

    Return (channel, ts) once posted, `Queued` while the message waits in the outbox, the error
    when Slack refused it, None when Slack is not set up (then the message is audited as a dry
    run). With a `step`, the message is posted once per incident and step: a run resumed after a
    crash finds it (sent or queued) and returns it instead of writing it again. With an
    `approval_id`, the approval learns the message's ts once it is sent.

    A new incident's opening message goes into the channel's digest instead when more than
    `slack_digest_after` incidents opened in the channel within the last minute; a message
    with buttons then goes into the digest's thread, so nothing that needs a click is held back.
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
    key = f"{incident_id}/{step or uuid.uuid4().hex}"
    now = ctx.now()
    with session_scope(ctx.engine) as session:
        incident = session.get(Incident, incident_id)
        parent = outbox.thread_of(session, incident_id)
        thread_ts = incident.slack_thread_ts if incident is not None else None
        channel = _thread_channel(session, parent) or (
            incident.slack_channel if incident is not None else None
        )
        channel = channel or str(channel_for(ctx, state.get("service")))
        if parent is None and thread_ts is None and _digest_due(ctx, session, channel):
            parent = outbox.add_to_digest(
                session,
                key=key if not _has_buttons(blocks) else f"{key}/digest",
                channel=channel,
                now=now,
                incident_id=incident_id,
                line=ctx.audit.redactor.text(digest_line(state)),
                label=str(state.get("diagnosis", {}).get("kind") or "undiagnosed"),
                actor=actor,
                step=step,
            )
            if not _has_buttons(blocks):
                digested = {
                    "summary": "a new incident in a busy channel: folded into its digest",
                    "channel": channel,
                    "digest": parent,
                    "step": step,
                    "text": text,
                }
                ctx.audit.record(
                    session, "notification.digested", digested, actor=actor, incident_id=incident_id
                )
                return Queued(channel, key)
        outbox.post(
            session,
            key=key,
            channel=channel,
            text=text,
            blocks=blocks,
            now=now,
            parent_key=parent,
            thread_ts=thread_ts if parent is None else None,
            actor=actor,
            incident_id=incident_id,
            step=step,
            opens_thread=parent is None and thread_ts is None,
            approval_id=approval_id,
        )
    return _sent_or_queued(ctx, channel, key)


def reply_in_thread(
    ctx: RunContext,
    incident_id: uuid.UUID,
    text: str,
    *,
    channel: str | None,
    thread_ts: str | None,
    actor: str,
    step: str | None,
) -> tuple[str, str] | Queued | str | None:
    """Reply in the incident's thread (text already redacted and escaped), once per `step`.

    An incident nobody was told about (no thread, none queued) gets no reply: None.
    """
    if ctx.tools.chat is None:
        return None
    if step and posted_before(ctx, incident_id, step) is not None:
        return None
    key = f"{incident_id}/{step or uuid.uuid4().hex}"
    with session_scope(ctx.engine) as session:
        parent = outbox.thread_of(session, incident_id)
        channel = _thread_channel(session, parent) or channel
        if channel is None or (parent is None and not thread_ts):
            return None
        outbox.post(
            session,
            key=key,
            channel=channel,
            text=text,
            now=ctx.now(),
            parent_key=parent,
            thread_ts=thread_ts if parent is None else None,
            actor=actor,
            incident_id=incident_id,
            step=step,
        )
    return _sent_or_queued(ctx, channel, key)


def update_message(
    ctx: RunContext,
    incident_id: uuid.UUID,
    *,
    key: str,
    target_key: str | None,
    target_ts: str | None,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    actor: str,
) -> tuple[str, str] | Queued | str | None:
    """Edit a message (by the key it was queued under, or its ts), once per `key`."""
    if ctx.tools.chat is None:
        return None
    with session_scope(ctx.engine) as session:
        if target_key is not None:
            target = outbox.find(session, target_key)
            channel = target.channel if target is not None else channel
            target_key = target_key if target is not None else None
        if target_key is None and target_ts is None:
            return None
        outbox.update(
            session,
            key=key,
            channel=channel,
            text=ctx.audit.redactor.text(text),
            blocks=cast(list[dict[str, Any]] | None, ctx.audit.redactor.value(blocks)),
            now=ctx.now(),
            target_key=target_key,
            target_ts=None if target_key is not None else target_ts,
            actor=actor,
            incident_id=incident_id,
        )
    return _sent_or_queued(ctx, channel, key)


def digest_line(state: IncidentState) -> str:
    """Return the incident's line in a digest: its title and diagnosis, escaped."""
    title = Breach.model_validate(state["breach"]).title(state.get("service"))
    diagnosis = state.get("diagnosis", {})
    kind = diagnosis.get("kind") or "undiagnosed"
    summary = str(diagnosis.get("summary") or "")[:140]
    return f"*{mrkdwn(title)}* — {mrkdwn(kind)}" + (f": {mrkdwn(summary)}" if summary else "")


def posted_before(
    ctx: RunContext, incident_id: uuid.UUID, step: str
) -> tuple[str, str] | Queued | None:
    """Return where the incident's message of this step went, if it already was written.

    The outbox knows every message written through it; the audit trail, those posted before it.
    """
    key = f"{incident_id}/{step}"
    with Session(ctx.engine) as session:  # a read: no write turn taken
        message = outbox.find(session, key)
        if message is not None:
            if message.state == OutboxState.sent and message.ts:
                return message.channel, message.ts
            return Queued(message.channel, key)
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


def _sent_or_queued(ctx: RunContext, channel: str, key: str) -> tuple[str, str] | Queued | str:
    """Send what the channel can take now (never waiting), then say where the message stands."""
    send_now(ctx.engine, ctx.audit, ctx.tools.chat, channel, pace=pace(ctx), now=ctx.now)
    with Session(ctx.engine) as session:  # a read: no write turn taken
        message = outbox.find(session, key)
        assert message is not None
        if message.state == OutboxState.sent and message.ts:
            return message.channel, message.ts
        if message.state == OutboxState.failed:
            return str(message.error)
    return Queued(channel, key)


def _thread_channel(session: Session, parent: str | None) -> str | None:
    if parent is None:
        return None
    row = session.exec(select(OutboxMessage.channel).where(OutboxMessage.key == parent)).first()
    return row


def _digest_due(ctx: RunContext, session: Session, channel: str) -> bool:
    """Tell whether the channel had more new incidents within the last minute than it shows."""
    limit = ctx.settings.slack_digest_after
    since = ctx.now() - timedelta(minutes=1)
    return limit > 0 and outbox.new_incidents(session, channel, since) >= limit


def _has_buttons(blocks: list[dict[str, Any]]) -> bool:
    return any(block.get("type") == "actions" for block in blocks)
