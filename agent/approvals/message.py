"""The Slack messages of an approval: the request with its buttons, and the answered request."""

from __future__ import annotations

import json
from typing import Any

from agent.approvals.models import Approval, ApprovalStatus
from agent.outside_text import mrkdwn, slack_mention

APPROVE_ACTION = "remediator.approve"
REJECT_ACTION = "remediator.reject"
BLOCK_ID = "remediator.approval"
HEADER_LIMIT = 150


def button_value(approval: Approval) -> str:
    """Return what a button carries back: the request's id and the digest of its exact action."""
    return json.dumps({"approval_id": str(approval.id), "digest": approval.digest})


def _who(approvers: list[str]) -> str:
    if not approvers:
        return "nobody (the approvers list is empty)"
    return ", ".join(slack_mention(a) for a in approvers)


def incident_ref(approval: Approval) -> str:
    """Return the incident's short id, which tells two requests of two incidents apart."""
    return str(approval.incident_id)[:8]


def _incident_line(approval: Approval, title: str) -> str:
    return f"*Incident* `{incident_ref(approval)}`: {mrkdwn(title)}"


def _action_lines(approval: Approval, blast_radius: str, service: str | None) -> list[str]:
    return [
        f"*Action:* {mrkdwn(approval.describe(service))} · runbook `{mrkdwn(approval.runbook)}`",
        f"*Blast radius:* {mrkdwn(blast_radius)}",
    ]


def request_message(
    approval: Approval,
    *,
    title: str,
    diagnosis: str,
    evidence: list[str],
    blast_radius: str,
    service: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Return the text and blocks asking for approval of one exact action.

    The action is said in words (`fail over support-bot to backup-region (us-east-1)`), and the
    incident by its title and short id, so no two requests of two incidents look alike. The
    title, diagnosis and evidence come from outside: escaped, so they mention nobody.
    """
    action = approval.describe(service)
    text = mrkdwn(f"Approval needed for incident {incident_ref(approval)} ({title}): {action}")
    sections = [
        _incident_line(approval, title),
        f"*Diagnosis:* {mrkdwn(diagnosis)}",
        "*Evidence*\n" + ("\n".join(f"• {mrkdwn(line)}" for line in evidence) or "• none gathered"),
        *_action_lines(approval, blast_radius, service),
        f"*Who may approve:* {_who(approval.approvers)}",
        f"*Expires:* {approval.expires_at:%Y-%m-%d %H:%M:%S} UTC; with no answer by then the "
        "action is NOT taken and the runbook's timeout branch runs.",
    ]
    blocks: list[dict[str, Any]] = [_header(f"Approval needed: {action}")]
    blocks += [_section(s) for s in sections]
    if approval.status == ApprovalStatus.pending:
        value = button_value(approval)
        blocks.append(
            {
                "type": "actions",
                "block_id": BLOCK_ID,
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE_ACTION,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": REJECT_ACTION,
                        "text": {"type": "plain_text", "text": "Reject"},
                        "style": "danger",
                        "value": value,
                    },
                ],
            }
        )
    return text, blocks


def decided_message(
    approval: Approval,
    *,
    title: str,
    blast_radius: str,
    next_step: str,
    service: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Return the request as edited once answered: who decided, when, and what happens next."""
    when = f"{approval.decided_at:%Y-%m-%d %H:%M:%S} UTC" if approval.decided_at else "unknown"
    if approval.status in (ApprovalStatus.approved, ApprovalStatus.rejected):
        who = slack_mention(approval.decided_by or "someone")
        outcome = f"*{approval.status.capitalize()}* by {who} at {when}"
        outcome += (
            f" (via {mrkdwn(approval.decided_via)})" if approval.decided_via != "slack" else ""
        )
    else:
        outcome = f"*{approval.status.capitalize()}* at {when}: {mrkdwn(approval.reason or '')}"
    action = approval.describe(service)
    text = mrkdwn(
        f"{approval.status.capitalize()}: {action} for incident {incident_ref(approval)} "
        f"({title}) — {next_step}"
    )
    sections = [
        _incident_line(approval, title),
        *_action_lines(approval, blast_radius, service),
        outcome,
        f"*Next:* {mrkdwn(next_step)}",
    ]
    blocks = [_header(f"{approval.status.capitalize()}: {action}")]
    return text, blocks + [_section(s) for s in sections]


def _header(text: str) -> dict[str, Any]:
    line = " ".join(text.replace("<", "\u2039").split())  # `<` opens every mention and link
    line = line if len(line) <= HEADER_LIMIT else line[: HEADER_LIMIT - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": line}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
