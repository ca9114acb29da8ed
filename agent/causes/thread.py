"""The cause's Slack thread: one message listing the affected services, edited in place.

`send_cause_message` is the one place the cause thread reaches Slack (post once, then
`chat.update`): routing it through a durable outbox changes this function only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from agent.causes.service import CauseView, cause_view, claim_cause_thread, set_cause_thread
from agent.outside_text import mrkdwn
from tools.protocols import EditableChat
from tools.result import ToolResult

MAX_SERVICES_SHOWN = 50


def cause_message(view: CauseView) -> tuple[str, list[dict[str, Any]]]:
    """Return the Slack text and blocks of a cause: what failed, whose it is, every service."""
    services = list(view.services)
    breaching = [s for s, open_ in view.services.items() if open_]
    state = "resolved" if view.status == "resolved" else f"{len(breaching)} still breaching"
    head = (
        f"Cause: {view.diagnosis} on {view.component} (owner {view.owner}) behind "
        f"{len(services)} service(s): {', '.join(services)}"
    )
    text = mrkdwn(f"{head}. One page to {view.owner} ({view.dedup_key}); {state}.")
    lines = [
        f"• {mrkdwn(name)}: *{'breaching' if open_ else 'resolved'}*"
        for name, open_ in list(view.services.items())[:MAX_SERVICES_SHOWN]
    ]
    if len(services) > MAX_SERVICES_SHOWN:
        lines.append(f"• … and {len(services) - MAX_SERVICES_SHOWN} more")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Cause: {view.component} ({view.owner})"[:150]},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"*{mrkdwn(view.diagnosis)}* on *{mrkdwn(view.component)}*, owned by "
                    f"*{mrkdwn(view.owner)}*: one PagerDuty alert (`{mrkdwn(view.dedup_key)}`) "
                    f"for {view.incidents} incident(s); {mrkdwn(state)}. "
                    f"Cause `{view.cause_id}`."
                )[:3000],
            },
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": ("*Affected services*\n" + "\n".join(lines))[:3000]},
        },
    ]
    return text, blocks


def send_cause_message(
    chat: EditableChat,
    engine: Engine,
    cause_id: uuid.UUID,
    *,
    channel: str,
    poster: uuid.UUID | None,
    redact: Callable[[Any], Any],
) -> ToolResult | None:
    """Post the cause thread once it has two incidents, or edit it in place (`chat.update`).

    `poster` is the incident whose run may post it (None: only edit). Who posts is claimed in
    the database, once per cause; a run that loses the claim leaves the thread to the winner,
    which renders again after posting, so the last edit lists every incident linked before it.
    Returns Slack's answer; None when nothing was sent (a cause of one incident has the
    incident's own thread; or the thread is another run's to post).
    """
    result = None
    for _ in range(3):
        view = cause_view(engine, cause_id)
        if view is None or (view.slack_ts is None and view.incidents < 2):
            return result
        text, blocks = cause_message(view)
        text, blocks = redact(text), redact(blocks)
        if view.slack_ts is None:
            if poster is None or not claim_cause_thread(engine, cause_id, poster):
                return result
            result = chat.post(channel=channel, text=text, blocks=blocks)
            if result.status != "ok":
                return result
            posted = str(result.evidence.get("channel") or channel)
            set_cause_thread(engine, cause_id, posted, str(result.evidence.get("ts")))
        else:
            result = chat.update(
                channel=str(view.slack_channel), ts=view.slack_ts, text=text, blocks=blocks
            )
            if result.status != "ok":
                return result
        # Incidents that joined (or resolved) while this was sent are in the next edit.
        after = cause_view(engine, cause_id)
        if after is None or (after.services, after.status) == (view.services, view.status):
            return result
    return result
