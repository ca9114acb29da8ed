"""A channel's digest: the new incidents of one minute in one message, edited as they come.

Each entry is one line written when the incident would have opened its own thread (its title and
diagnosis, already escaped); the digest counts them, names the most frequent diagnoses (or
causes) and links each incident's audit trail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent.outbox.models import OutboxMessage
from agent.outside_text import mrkdwn, mrkdwn_link

LISTED = 20
"""Incidents listed by name; the rest are counted."""
TOP = 3
SECTION_LIMIT = 3000


def render_digest(
    key: str, entries: list[OutboxMessage], public_url: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Return the digest's text and blocks for its entries as they stand."""
    minute = key.rsplit("/", 1)[-1].replace("T", " ")
    count = len(entries)
    labels = Counter(e.label or "undiagnosed" for e in entries)
    top = ", ".join(f"{mrkdwn(label)} ×{n}" for label, n in labels.most_common(TOP))
    title = f"{count} new incident{'s' if count != 1 else ''} since {minute} UTC"
    text = f"Incident digest: {title}. Top diagnoses: {top or 'none'}."
    lines = []
    for entry in entries[:LISTED]:
        line = f"• {entry.text}"
        if public_url and entry.incident_id is not None:
            trail = f"{public_url.rstrip('/')}/ui/incidents/{entry.incident_id}"
            line += f" · {mrkdwn_link(trail, 'audit trail')}"
        lines.append(line)
    if count > LISTED:
        lines.append(f"…and {count - LISTED} more")
    body = "\n".join(lines)[:SECTION_LIMIT] or "• none yet"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Incident digest: {count}"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{title}* (many at once: one message a minute, edited in place; "
                f"each incident's messages follow in this thread)\n*Top diagnoses:* "
                f"{top or 'none'}"[:SECTION_LIMIT],
            },
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
    ]
    return text, blocks
