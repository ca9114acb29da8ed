"""`remediator approve` and `remediator approvals`: decide without Slack, with the same checks."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer


def approve(
    approval_id: Annotated[str, typer.Argument(help="The approval id (shown in Slack and audit).")],
    as_user: Annotated[
        str, typer.Option("--as", help="Your Slack user id; it must be on the approvers list.")
    ],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approve.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, kept in the audit trail.")] = None,
) -> None:
    """Approve (or reject) a pending action as a listed approver; the run resumes on its own."""
    from agent.approvals.service import decide
    from agent.auditlog import AuditLog
    from agent.cli import load_settings
    from agent.db import make_engine, session_scope
    from agent.toolbox import build_toolbox
    from audit.redact import Redactor

    try:
        approval_uuid = uuid.UUID(approval_id)
    except ValueError:
        typer.echo(f"error: {approval_id!r} is not an approval id (a UUID)", err=True)
        raise typer.Exit(2) from None
    settings = load_settings()
    audit = AuditLog(
        key=settings.audit_key.get_secret_value().encode(),
        redactor=Redactor(field_names=frozenset(settings.redact_fields)),
        payload_policy=settings.payload_policy,
    )
    chat = build_toolbox(settings).chat
    with session_scope(make_engine(settings.database_url)) as session:
        verdict = decide(
            session=session,
            audit=audit,
            approval_id=approval_uuid,
            user=as_user,
            decision="reject" if reject else "approve",
            digest=None,
            via="cli",
            members=chat.group_members if chat is not None else None,
            reason=reason,
        )
        what = verdict.approval.describe() if verdict.approval is not None else approval_id
    if verdict.outcome == "refused":
        typer.echo(f"error: refused: {verdict.reason}", err=True)
        raise typer.Exit(1)
    if verdict.outcome == "duplicate":
        typer.echo(f"nothing changed: {what} was {verdict.reason}")
        return
    typer.echo(f"{verdict.outcome}: {what}; a worker resumes the incident's run now")


def approvals(
    every: Annotated[bool, typer.Option("--all", help="Show decided requests too.")] = False,
) -> None:
    """List approval requests: pending ones (oldest first), or all with --all."""
    from sqlmodel import Session, col, select

    from agent.approvals.models import Approval
    from agent.approvals.service import pending_for
    from agent.cli import load_settings
    from agent.db import make_engine

    settings = load_settings()
    with Session(make_engine(settings.database_url)) as session:
        if every:
            rows = list(session.exec(select(Approval).order_by(col(Approval.requested_at))))
        else:
            rows = pending_for(session=session)
    if not rows:
        typer.echo("no pending approval requests" if not every else "no approval requests")
        return
    for row in rows:
        who = row.decided_by or ", ".join(row.approvers) or "nobody"
        typer.echo(
            f"{row.id}  {row.status:<9} {row.describe():<32} incident {row.incident_id}  "
            f"expires {row.expires_at:%Y-%m-%d %H:%M:%S}  {who}"
        )
