"""Where a run meets causes: a page joins its cause before it is sent; a resolution asks it.

`agent/graph/actions.py` `page` calls `link_page` (then pages on the cause's dedup key and calls
`tell_cause`); the follow-up's `resolve_pages` calls `resolve_cause_page` before resolving a page.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from agent.causes.service import (
    CauseView,
    Linked,
    Resolution,
    cause_identity,
    cause_view,
    link_incident,
    resolve_for_incident,
)
from agent.causes.thread import queue_cause_message
from agent.graph.channels import channel_for, pace
from agent.graph.state import IncidentState, RunContext
from agent.outbox.sender import send_now

ACTOR = "agent.causes"


def link_page(ctx: RunContext, state: IncidentState, item: dict[str, Any]) -> Linked | None:
    """Link the run's incident to the cause of this page; None when the page forms no cause."""
    window = ctx.settings.cause_window_seconds
    if window <= 0:
        return None
    identity = cause_identity(
        ctx.catalog,
        state.get("service"),
        state.get("diagnosis") or {},
        item.get("team"),
        item.get("component"),
    )
    if identity is None:
        return None
    runbook = ctx.runbook(state.get("runbook", ""))
    return link_incident(
        ctx.engine,
        ctx.audit,
        identity=identity,
        incident_id=uuid.UUID(state["incident_id"]),
        service=state.get("service"),
        window=timedelta(seconds=window),
        now=ctx.now,
        payload_policy=runbook.payload_policy if runbook is not None else None,
    )


def cause_details(linked: Linked) -> dict[str, Any]:
    """Return what a cause's page carries about it (PagerDuty custom details)."""
    return {
        "cause_id": str(linked.cause_id),
        "affected_services": linked.services,
        "incidents": linked.incidents,
        **(
            {"cause_thread": {"channel": linked.slack_channel, "ts": linked.slack_ts}}
            if linked.slack_ts
            else {}
        ),
    }


def cause_summary(linked: Linked) -> str:
    """Return how a page's outcome points to its cause ("" for a cause of one incident): the
    incident's thread shows it under Actions."""
    if len(linked.incidents) < 2:
        return ""
    where = f"; cause thread {linked.slack_channel} {linked.slack_ts}" if linked.slack_ts else ""
    return (
        f"; one page for cause {linked.cause_id} ({len(linked.services)} service(s): "
        f"{', '.join(linked.services)}{where})"
    )


def tell_cause(ctx: RunContext, state: IncidentState, linked: Linked) -> Linked:
    """Post or edit the cause thread and audit Slack's answer; return the link with the thread.

    Slack not set up: nothing is sent. A cause of one incident has no thread of its own (the
    incident's thread says it all); the run that links its second incident queues it in the
    outbox (keyed by the cause: written once), later ones queue edits (`chat.update`).
    """
    incident_id = uuid.UUID(state["incident_id"])
    after = _send(ctx, incident_id, state.get("service"), linked.cause_id, post=True)
    if after is None:
        return linked
    return replace(
        linked,
        services=list(after.services),
        slack_channel=after.slack_channel,
        slack_ts=after.slack_ts,
    )


def resolve_cause_page(
    ctx: RunContext, dedup_key: str, incident_id: uuid.UUID
) -> Resolution | None:
    """Return whether a cause's page may be resolved now (None: the key is no cause's)."""
    return resolve_for_incident(
        ctx.engine, ctx.audit, dedup_key=dedup_key, incident_id=incident_id, now=ctx.now
    )


def tell_cause_resolution(ctx: RunContext, state: Any, resolution: Resolution) -> None:
    """Edit the cause thread as a linked incident resolves (which services still breach)."""
    run = state.get("run") or {}
    _send(ctx, uuid.UUID(state["incident_id"]), run.get("service"), resolution.cause_id, post=False)


def _send(
    ctx: RunContext, incident_id: uuid.UUID, service: str | None, cause_id: uuid.UUID, *, post: bool
) -> CauseView | None:
    """Send the cause message as it stands; return the cause after it (None: not sent)."""
    chat = ctx.tools.chat
    view = cause_view(ctx.engine, cause_id)
    if chat is None or view is None:
        return None
    channel = _owner_channel(ctx, view.owner) or channel_for(ctx, service)
    if channel is None:
        return None
    queued = queue_cause_message(
        ctx.engine,
        cause_id,
        channel=channel,
        may_post=post,
        redact=ctx.redact,
        now=ctx.now,
        actor=ACTOR,
    )
    if queued is not None:
        # A quiet channel gets it now; a busy one from its sender (which audits a failure).
        send_now(ctx.engine, ctx.audit, chat, queued["channel"], pace=pace(ctx), now=ctx.now)
        data = {**queued, "cause_id": str(cause_id)}
        ctx.audit.record_now(
            ctx.engine, "cause.thread_queued", data, actor=ACTOR, incident_id=incident_id
        )
    return cause_view(ctx.engine, cause_id)


def _owner_channel(ctx: RunContext, owner: str) -> str | None:
    """Return the owner team's Slack channel from the catalog, if it names one."""
    team = ctx.catalog.teams.get(owner) if ctx.catalog is not None else None
    return team.slack_channel if team is not None else None
