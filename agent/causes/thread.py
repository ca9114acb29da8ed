"""The cause's Slack thread: one message listing the affected services, edited in place.

`queue_cause_message` is the one place the cause thread reaches Slack: through the outbox
(`agent/outbox/`), like every message, so it is paced with its channel, never lost and never
doubled; its edits are coalesced.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import col

from agent.causes.models import Cause
from agent.causes.service import CauseView, view_in
from agent.outbox import service as outbox
from agent.outside_text import mrkdwn
from agent.store.db import session_scope

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


def cause_key(cause_id: uuid.UUID) -> str:
    """Return the outbox key of the cause thread's first message (its edits point to it)."""
    return f"cause/{cause_id}"


def queue_cause_message(
    engine: Engine,
    cause_id: uuid.UUID,
    *,
    channel: str,
    may_post: bool,
    redact: Callable[[Any], Any],
    now: Callable[[], datetime],
    actor: str,
) -> dict[str, Any] | None:
    """Queue the cause thread in the outbox: its first message once the cause has two
    incidents, an edit of it (`chat.update`, coalesced with an edit still waiting) after that.

    The cause is rendered and queued in one transaction that first takes the cause's row for
    writing, and linking an incident takes the same row: a render therefore sees every link
    committed before it, and the edit queued last holds the latest list (an edit still waiting is
    rewritten, so a storm of joins sends few edits). The first message is keyed by the cause: two
    runs queueing it at once write one message (the later one's list follows as an edit).
    `may_post` False: only edit (a resolution never opens the thread). Returns what was queued
    (for the audit), None when nothing was (a cause of one incident has its incident's thread).
    """
    key = cause_key(cause_id)
    with session_scope(engine) as session:
        # Take the row for writing before reading (PostgreSQL's row lock, SQLite's write lock).
        session.execute(update(Cause).where(col(Cause.id) == cause_id).values(id=cause_id))
        view = view_in(session, cause_id)
        if view is None or view.incidents < 2:
            return None
        text, blocks = cause_message(view)
        text, blocks = redact(text), redact(blocks)
        first = outbox.find(session, key)
        if first is None:
            if not may_post:
                return None
            first = outbox.post(
                session, key=key, channel=channel, text=text, blocks=blocks, now=now(), actor=actor
            )
            if first.text == text:
                return {"queued": "post", "key": key, "channel": first.channel}
        outbox.update(
            session,
            key=f"{key}/edit/{uuid.uuid4().hex}",
            channel=first.channel,
            text=text,
            blocks=blocks,
            target_key=key,
            now=now(),
            actor=actor,
            coalesce=True,
        )
        return {"queued": "update", "key": key, "channel": first.channel}
