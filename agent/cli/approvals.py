"""`remediator approve` and `remediator approvals`: decide without Slack, with the same checks."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import load_services, parse_uuid


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
    from agent.store.db import session_scope

    approval_uuid = parse_uuid(approval_id, "approval")
    services = load_services()
    chat = services.adapters.chat
    with session_scope(services.engine) as session:
        verdict = decide(
            session=session,
            audit=services.audit,
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

    with Session(load_services().engine) as session:
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
