"""Request, decide and expire approvals; one decision per request, whoever asks twice.

Every path that decides (a Slack click, `POST /approvals/{id}`, `remediator approve`) goes through
`decide`, so the same checks apply everywhere: the approval exists, the person is an approver, the
button's digest is the planned action's, the request has not expired, and it is still undecided.
A decision wakes the incident's run (its `run_after` becomes now), so whichever worker is free
resumes it; the Slack endpoint itself never runs the action.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import update
from sqlmodel import Session, col, select

from agent.approvals.models import Approval, ApprovalStatus
from agent.incidents.models import Incident
from agent.store.audit_log import AuditLog
from audit.chain import canonical_json

APPROVAL_ACTOR = "approvals"
Decision = Literal["approve", "reject"]
GroupMembers = Callable[[str], set[str] | None]
"""Return the Slack user ids in a user group (S…), or None when they cannot be looked up."""


def action_digest(kind: str, target: str | None, params: dict[str, Any], runbook: str) -> str:
    """Return the digest that binds a button to one exact action under one runbook version."""
    action = {"kind": kind, "target": target, "params": params, "runbook": runbook}
    return hashlib.sha256(canonical_json(action).encode()).hexdigest()


def request_approval(
    *,
    session: Session,
    audit: AuditLog,
    incident_id: uuid.UUID,
    action_key: str,
    kind: str,
    target: str | None,
    params: dict[str, Any],
    runbook: str,
    approvers: list[str],
    ttl: timedelta,
) -> tuple[Approval, bool]:
    """Return the request for this action, creating it (and auditing it) the first time.

    Asking again for the same action of the same incident (a resumed or retried run) returns the
    existing request, so one action never gets two requests or two decisions.
    """
    existing = session.exec(
        select(Approval).where(
            Approval.incident_id == incident_id, Approval.action_key == action_key
        )
    ).first()
    if existing is not None:
        return existing, False
    now = audit.now()
    approval = Approval(
        incident_id=incident_id,
        action_key=action_key,
        kind=kind,
        target=target,
        params=params,
        runbook=runbook,
        digest=action_digest(kind, target, params, runbook),
        approvers=approvers,
        requested_at=now,
        expires_at=now + ttl,
    )
    if not approvers:
        # An empty approvers list means nobody, so the request is denied at once rather than
        # keeping the incident waiting for a click nobody may give.
        approval.status = ApprovalStatus.expired
        approval.decided_at = now
        approval.reason = "nobody may approve: the approvers list is empty"
    session.add(approval)
    session.flush()
    audit.record(
        session,
        "approval.requested",
        {
            "summary": f"approval requested for {approval.describe()} under {runbook}; "
            + (
                f"approvers {', '.join(approvers)}; expires {approval.expires_at:%H:%M:%S} UTC"
                if approvers
                else "nobody may approve (empty approvers list): denied"
            ),
            "approval_id": str(approval.id),
            "action_key": action_key,
            "kind": kind,
            "target": target,
            "params": params,
            "digest": approval.digest,
            "approvers": approvers,
            "expires_at": approval.expires_at.isoformat(),
        },
        actor=APPROVAL_ACTOR,
        incident_id=incident_id,
    )
    return approval, True


@dataclass(frozen=True)
class Verdict:
    """What became of one attempt to decide: recorded, a harmless duplicate, or refused."""

    outcome: Literal["approved", "rejected", "duplicate", "refused"]
    reason: str
    approval: Approval | None = None

    @property
    def changed(self) -> bool:
        """Tell whether this attempt recorded the decision."""
        return self.outcome in ("approved", "rejected")


def may_approve(user: str, approvers: Iterable[str], members: GroupMembers | None) -> bool:
    """Tell whether a Slack user is listed, directly or through a user group (S…)."""
    listed = list(approvers)
    if user in listed:
        return True
    for group in (who for who in listed if who.startswith("S")):
        found = members(group) if members is not None else None
        if found is not None and user in found:
            return True
    return False


def decide(
    *,
    session: Session,
    audit: AuditLog,
    approval_id: uuid.UUID,
    user: str,
    decision: Decision,
    digest: str | None,
    via: str,
    members: GroupMembers | None = None,
    retry: str | None = None,
    reason: str | None = None,
) -> Verdict:
    """Record one person's decision after every check; audit the attempt whatever its outcome.

    `digest` is the one the button carried (None: the caller names the approval by id only, as the
    CLI does). `retry` is Slack's X-Slack-Retry-Num, kept in the audit trail.
    """
    now = audit.now()
    approval = session.get(Approval, approval_id)
    context = {"approval_id": str(approval_id), "user": user, "via": via, "decision": decision}
    if retry:
        context["slack_retry"] = retry

    def refuse(why: str) -> Verdict:
        audit.record(
            session,
            "approval.refused",
            {"summary": f"{decision} by {user} via {via} refused: {why}", "reason": why, **context},
            actor=_actor(user, via),
            incident_id=approval.incident_id if approval is not None else None,
        )
        return Verdict("refused", why, approval)

    if approval is None:
        return refuse("no such approval request")
    if not may_approve(user, approval.approvers, members):
        listed = ", ".join(approval.approvers) or "nobody (empty list)"
        return refuse(f"{user} is not an approver (approvers: {listed})")
    if digest is not None and digest != approval.digest:
        return refuse("the action changed since the request was sent (digest mismatch)")
    if approval.decided:
        if approval.status in (ApprovalStatus.approved, ApprovalStatus.rejected):
            audit.record(
                session,
                "approval.duplicate",
                {
                    "summary": f"{decision} by {user} via {via} ignored: already "
                    f"{approval.status} by {approval.decided_by}",
                    **context,
                },
                actor=_actor(user, via),
                incident_id=approval.incident_id,
            )
            return Verdict("duplicate", f"already {approval.status}", approval)
        return refuse(f"the request is {approval.status}: {approval.reason or 'closed'}")
    if now >= approval.expires_at:
        return refuse(f"the request expired at {approval.expires_at.isoformat()}")
    status = ApprovalStatus.approved if decision == "approve" else ApprovalStatus.rejected
    won = session.execute(
        update(Approval)
        .where(col(Approval.id) == approval.id, col(Approval.status) == ApprovalStatus.pending)
        .values(status=status, decided_at=now, decided_by=user, decided_via=via, reason=reason)
    )
    if getattr(won, "rowcount", 0) != 1:
        # Another replica recorded a decision between our read and our write.
        session.refresh(approval)
        return decide(
            session=session,
            audit=audit,
            approval_id=approval_id,
            user=user,
            decision=decision,
            digest=digest,
            via=via,
            members=members,
            retry=retry,
            reason=reason,
        )
    session.refresh(approval)
    # Counted at scrape time from the database (whichever process decides): telemetry.collector.
    waited = (now - approval.requested_at).total_seconds()
    audit.record(
        session,
        f"approval.{status}",
        {
            "summary": f"{approval.describe()} {status} by {user} via {via}"
            + (f": {reason}" if reason else ""),
            "approved_by" if status == ApprovalStatus.approved else "rejected_by": user,
            "digest": approval.digest,
            "waited_seconds": round(waited, 3),
            **context,
        },
        actor=_actor(user, via),
        incident_id=approval.incident_id,
    )
    wake_incident(session=session, incident_id=approval.incident_id, now=now)
    return Verdict(str(status), f"{status} by {user}", approval)  # type: ignore[arg-type]


def close_if_due(
    *, session: Session, audit: AuditLog, approval: Approval, incident_resolved: bool = False
) -> Approval:
    """Expire a pending request past its TTL (or cancel it when its incident resolved)."""
    now = audit.now()
    if approval.decided:
        return approval
    if incident_resolved:
        status, why = ApprovalStatus.cancelled, "the incident resolved before anyone decided"
    elif now >= approval.expires_at:
        status, why = ApprovalStatus.expired, "nobody decided before the request expired"
    else:
        return approval
    won = session.execute(
        update(Approval)
        .where(col(Approval.id) == approval.id, col(Approval.status) == ApprovalStatus.pending)
        .values(status=status, decided_at=now, reason=why)
    )
    session.refresh(approval)
    if getattr(won, "rowcount", 0) == 1:
        audit.record(
            session,
            f"approval.{status}",
            {
                "summary": f"{approval.describe()} {status}: {why}",
                "approval_id": str(approval.id),
                "expires_at": approval.expires_at.isoformat(),
            },
            actor=APPROVAL_ACTOR,
            incident_id=approval.incident_id,
        )
    return approval


def wake_incident(*, session: Session, incident_id: uuid.UUID, now: datetime) -> None:
    """Make a paused run due now, so a free worker resumes it.

    Set whatever the run's state: a worker about to pause the run (or to wait for a failback's
    approval) sees the newer `run_after` and keeps it, so a decision that lands meanwhile is not
    left waiting for the expiry. Only pending, running and waiting incidents are ever claimed.
    """
    incident = session.get(Incident, incident_id)
    if incident is not None:
        incident.run_after = now
        session.add(incident)


def pending_for(*, session: Session, incident_id: uuid.UUID | None = None) -> list[Approval]:
    """Return the undecided requests, oldest first (of one incident, or of all)."""
    query = select(Approval).where(Approval.status == ApprovalStatus.pending)
    if incident_id is not None:
        query = query.where(Approval.incident_id == incident_id)
    return list(session.exec(query.order_by(col(Approval.requested_at))).all())


def approval_for(*, session: Session, incident_id: uuid.UUID, action_key: str) -> Approval | None:
    """Return the incident's request for this action, if one was made."""
    return session.exec(
        select(Approval).where(
            Approval.incident_id == incident_id, Approval.action_key == action_key
        )
    ).first()


def unsettled_failbacks(*, session: Session, incident_id: uuid.UUID) -> list[Approval]:
    """Return the incident's failback requests not yet carried out or dropped, oldest first."""
    query = select(Approval).where(
        Approval.incident_id == incident_id,
        Approval.kind == "failback",
        col(Approval.settled_at).is_(None),
    )
    return list(session.exec(query.order_by(col(Approval.requested_at))).all())


def mark_settled(*, session: Session, approval_id: uuid.UUID, now: datetime) -> None:
    """Record that a decided failback was carried out (or dropped); the first time counts."""
    approval = session.get(Approval, approval_id)
    if approval is not None and approval.settled_at is None:
        approval.settled_at = now
        session.add(approval)


def set_message(*, session: Session, approval_id: uuid.UUID, channel: str, ts: str) -> None:
    """Remember where the request was posted, so it is posted once and edited later."""
    approval = session.get(Approval, approval_id)
    if approval is not None:
        approval.slack_channel = channel
        approval.slack_ts = ts
        session.add(approval)


def _actor(user: str, via: str) -> str:
    return f"{via}:{user}"
