"""Render audit events as a human-readable timeline."""

from __future__ import annotations

import json
from collections.abc import Iterable

from audit.models import AuditEvent

SUMMARY_WIDTH = 160


def event_summary(event: AuditEvent) -> str:
    """Return the event's one-line summary (its `summary` field, else its data, shortened)."""
    try:
        data = json.loads(event.data)
    except json.JSONDecodeError:
        return event.data[:SUMMARY_WIDTH]
    summary = data.get("summary") if isinstance(data, dict) else None
    text = str(summary) if summary else json.dumps(data, ensure_ascii=False)
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def format_timeline(events: Iterable[AuditEvent]) -> str:
    """Return one line per event: time, sequence number, actor, kind and summary."""
    rows = [
        f"{e.ts:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        + f"  #{e.seq:<5} {e.actor:<17} {e.kind:<21} {event_summary(e)}"
        for e in events
    ]
    header = f"{'time (UTC)':<23}  {'seq':<6} {'actor':<17} {'kind':<21} what happened"
    return "\n".join([header, *rows]) if rows else "(no events)"
