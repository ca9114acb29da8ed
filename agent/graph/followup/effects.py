"""What the follow-up nodes share: the audit record, the failback restore, the thread reply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from agent.alerts.models import Breach
from agent.approvals.models import Approval, action_in_words
from agent.approvals.service import unsettled_failbacks
from agent.failovers.service import next_try
from agent.graph.channels import channel_for, reply_in_thread
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext
from agent.outside_text import mrkdwn
from agent.store.db import session_scope
from runbooks.schema import PayloadPolicy

ACTOR = "agent.followup"


def done_actions(state: FollowupState, kind: str) -> list[dict[str, Any]]:
    """Return the run's actions of this kind that were carried out."""
    actions = state["run"].get("actions", [])
    return [a for a in actions if a.get("kind") == kind and a.get("status") == "done"]


def still_breaching(state: FollowupState) -> str:
    """Return the repeat notice: what the re-sent pages and the thread reply say."""
    breach = Breach.model_validate(state["breach"])
    title = breach.title(state["run"].get("service"))
    return f"Still breaching after the repeat interval: {title}"


def restore(ctx: RunContext, state: FollowupState, failover: dict[str, Any]) -> tuple[bool, str]:
    """Move the service back, keyed like its failover, so a retry changes nothing twice.

    Return whether the route is back, and what to say of it. Callers check the primary first
    (`agent.graph.followup.failback`).
    """
    service = str(state["run"].get("service"))
    words = failback_words(service, str(failover["target"]["name"]))
    tools = ctx.service_tools(service)
    if tools is None or tools.failover is None:
        return False, f"{capital(words)}: not taken, no failover backend configured."
    record(
        ctx,
        state,
        "action.started",
        {
            "summary": words,
            "action": "failback",
            "idempotency_key": failover["idempotency_key"],
        },
    )
    result = tools.failover.restore(service, idempotency_key=failover["idempotency_key"])
    ok = result.status == "ok"
    record(ctx, state, "action.succeeded" if ok else "action.failed", result.audit_data())
    return ok, f"{capital(words)}: {'done' if ok else 'FAILED'} ({result.summary})."


def failback_words(service: str, target: str) -> str:
    """Return what a failback does: `move support-bot back from backup-region to primary`."""
    return action_in_words("failback", service=service, target=target)


def capital(text: str) -> str:
    """Return text with its first letter in upper case (the rest as it is)."""
    return text[:1].upper() + text[1:]


def reply(ctx: RunContext, state: FollowupState, text: str) -> None:
    """Reply in the incident's thread; an incident nobody was told about gets no reply.

    The text is redacted and escaped (it quotes the alert and other systems' answers), and the
    reply is written once per follow-up (the outbox sends it): a follow-up resumed after a crash
    does not repeat it.
    """
    incident = state["incident"]
    reply_in_thread(
        ctx,
        uuid.UUID(state["incident_id"]),
        mrkdwn(ctx.audit.redactor.text(text)),
        channel=incident.get("slack_channel") or channel_for(ctx, state["run"].get("service")),
        thread_ts=incident.get("slack_thread_ts"),
        actor=ACTOR,
        step=state.get("step"),
    )


def record(
    ctx: RunContext,
    state: FollowupState,
    kind: str,
    data: dict[str, Any],
    *,
    payload_policy: PayloadPolicy | None = None,
) -> None:
    """Append an audit event for the incident followed up, as `agent.followup` (prompts and
    answers in `data` under the runbook's `payload_policy`)."""
    ctx.audit.record_now(
        ctx.engine,
        kind,
        data,
        actor=ACTOR,
        incident_id=uuid.UUID(state["incident_id"]),
        payload_policy=payload_policy,
    )


def next_failback_moment(ctx: RunContext, incident_id: uuid.UUID) -> datetime | None:
    """Return when the incident's failbacks need a worker: now if a request is decided
    (possibly while the resolution was still being told), else at the first expiry or the first
    retry of a held failback (None: nothing is waiting)."""
    with session_scope(ctx.engine) as session:
        unsettled = unsettled_failbacks(session=session, incident_id=incident_id)
        moments = [ctx.now() if a.decided else a.expires_at for a in unsettled]
        retry = next_try(session=session, incident_id=incident_id)
    moments += [retry] if retry is not None else []
    return min(moments) if moments else None


def load_approval(ctx: RunContext, state: FollowupState) -> Approval:
    """Return the failback request this follow-up settles, as stored now."""
    with session_scope(ctx.engine) as session:
        approval = session.get(Approval, uuid.UUID(state["approval_id"]))
        assert approval is not None
        session.expunge(approval)
        return approval
