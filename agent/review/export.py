"""Post-incident exports: a Markdown review for people, JSON Lines for machines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from agent.alerts.models import Breach
from agent.incidents.models import IncidentRead, page_dedup_key
from agent.outside_text import http_url
from agent.review.service import IncidentRecord, chain_summary
from agent.review.story import Story, tell
from audit.models import AuditEvent
from audit.proofs import EventProofs
from audit.service import VerifyResult
from audit.timeline import event_summary


@dataclass(frozen=True)
class Review:
    """The facts of a post-incident review, derived once from an incident's record."""

    record: IncidentRecord
    chain: VerifyResult
    now: datetime
    public_url: str | None = None
    breach: Breach | None = None
    peak: float | None = None
    segments: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls, record: IncidentRecord, chain: VerifyResult, now: datetime, public_url: str | None
    ) -> Review:
        """Derive the impact figures from the incident's alerts."""
        breaches = [alert.breach() for alert in record.alerts]
        triggered = [b for b in breaches if b.status == "triggered"]
        values = [b.value for b in triggered if b.value is not None]
        lower_is_worse = bool(triggered and (triggered[0].operator or "").startswith("<"))
        peak = (min(values) if lower_is_worse else max(values)) if values else None
        segments = sorted({f"{k}={v}" for b in breaches for k, v in b.segment.items()})
        return cls(
            record, chain, now, public_url, triggered[0] if triggered else None, peak, segments
        )

    @property
    def duration(self) -> str:
        """Return how long the incident lasted (or has lasted, if still open)."""
        incident = self.record.incident
        end = incident.resolved_at or self.now
        minutes = max(0, int((end - incident.opened_at).total_seconds() // 60))
        text = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
        return text if incident.resolved_at else f"{text} (still open)"

    @cached_property
    def story(self) -> Story:
        """Return what happened: actions, approvals, verification, escalations (read once)."""
        return tell(self.record.events)

    def events(self, *prefixes: str) -> list[AuditEvent]:
        """Return the events whose kind starts with one of the prefixes."""
        return [e for e in self.record.events if e.kind.startswith(prefixes)]

    def decision(self) -> dict[str, Any] | None:
        """Return the last decision the agent made."""
        decisions = self.events("decision.")
        return self.record.event_data(decisions[-1]) if decisions else None

    def diagnosis(self) -> dict[str, Any] | None:
        """Return the agent's diagnosis, with the evidence for and against each candidate."""
        found = self.events("diagnosis.")
        return self.record.event_data(found[-1]) if found else None

    def links(self) -> list[tuple[str, str]]:
        """Return (label, target) pairs for Arize, PagerDuty, Slack and this service."""
        incident = self.record.incident
        links = []
        url = http_url(self.breach.url) if self.breach else None
        if url is not None:  # a javascript: or data: "URL" is never offered as a link
            links.append(("Arize monitor", url))
        paged = any(
            self.record.event_data(e).get("tool") == "pagerduty_events"
            for e in self.events("action.succeeded")
        )
        keys = [
            str(data["idempotency_key"])
            for e in self.events("action.started")
            if (data := self.record.event_data(e)).get("action") == "page"
            and data.get("idempotency_key")
        ]
        if paged:
            for key in dict.fromkeys(keys or [page_dedup_key(incident.id)]):
                links.append(("PagerDuty alert (dedup_key)", key))
        if incident.slack_channel and incident.slack_thread_ts:
            links.append(("Slack thread", f"{incident.slack_channel} @ {incident.slack_thread_ts}"))
        if self.public_url:
            links.append(
                ("Audit trail", f"{self.public_url.rstrip('/')}/ui/incidents/{incident.id}")
            )
        return links


def to_markdown(review: Review) -> str:
    """Render the review in the shape of a post-incident review document."""
    incident, breach = review.record.incident, review.breach
    lines = [f"# Post-incident review: {_cell(incident.title)}", ""]
    lines += _table(
        [
            ("Incident", f"`{incident.id}`"),
            ("Status", str(incident.status)),
            ("Opened", _time(incident.opened_at)),
            ("Resolved", _time(incident.resolved_at) if incident.resolved_at else "not yet"),
            (
                "Service / model / environment",
                " / ".join(
                    _cell(v or "—")
                    for v in (incident.service, incident.model_id, incident.environment)
                ),
            ),
            ("Audit chain", _chain_line(review.chain)),
        ]
    )
    lines += ["", "## Summary", "", _summary(review), "", "## Outcome", ""]
    lines += [f"- **{label}:** {_cell(text)}" for label, text in review.story.lines()]
    lines.append(f"- **Planned:** {_cell(review.story.plan or 'no decision recorded')}")
    lines += ["", "## Impact", ""]
    threshold = "—"
    if breach and breach.threshold is not None:
        threshold = _cell(f"{breach.operator or ''} {breach.threshold:g}".strip())
    lines += [
        f"- **Metric:** {_cell(breach.metric) if breach and breach.metric else '—'}",
        f"- **Threshold:** {threshold}",
        f"- **Peak value:** {'—' if review.peak is None else f'{review.peak:g}'} "
        f"(over {len(review.record.alerts)} alert(s))",
        f"- **Duration:** {review.duration}",
        f"- **Segments:** {_cell(', '.join(review.segments)) or 'all traffic'}",
        "",
        "## Timeline",
        "",
    ]
    lines += _table(
        [
            (_time(e.ts), _cell(e.actor), _cell(e.kind), _cell(event_summary(e)))
            for e in review.record.events
        ],
        header=("Time (UTC)", "Actor", "Step", "Outcome"),
    )
    lines += ["", "## Evidence", ""]
    lines += _evidence(review) or ["No evidence was gathered."]
    lines += _candidates(review)
    lines += ["", "## Actions and approvals", ""]
    steps = review.story.steps
    if steps:
        lines += _table(
            [
                (
                    _time(s.ts),
                    _cell(s.kind),
                    _cell(s.what + (f" — escalation: {s.escalation}" if s.escalation else "")),
                    _cell(s.by),
                    _cell(s.approved_by or "—"),
                    _cell(s.status),
                    _cell(s.result or "—"),
                )
                for s in steps
            ],
            header=("Time (UTC)", "Step", "What", "By", "Approved by", "Status", "Result"),
        )
    else:
        lines.append("No action was taken.")
    if not review.story.approvals:
        lines += ["", "No approval was requested."]
    lines += ["", "## Escalations", ""]
    lines += [
        f"- {_time(s.ts)}: {_cell(s.what)} ({_cell(s.status)}), because {_cell(s.escalation)}"
        for s in review.story.escalations
    ] or ["No escalation."]
    lines += ["", "## Links", ""]
    lines += [f"- {label}: {_cell(target)}" for label, target in review.links()] or ["- none"]
    lines += ["", f"_Exported {_time(review.now)} UTC by the remediation agent._", ""]
    return "\n".join(lines)


def to_json_lines(review: Review, proofs: EventProofs | None = None) -> str:
    """Render the incident, its alerts, every event and the chain status, one JSON per line.

    With `proofs`, each event also carries its ids and its proof of inclusion, followed by the
    signed checkpoints they lead to: with the seal the caller appends (`AuditLog.seal`), the file
    verifies offline (`remediator audit verify-export`). Events are written as stored: a change
    to one breaks its proof.
    """
    incident = review.record.incident
    records: list[dict[str, Any]] = [
        {
            "type": "incident",
            **IncidentRead.model_validate(incident, from_attributes=True).model_dump(mode="json"),
            "impact": {
                "metric": review.breach.metric if review.breach else None,
                "threshold": review.breach.threshold if review.breach else None,
                "peak": review.peak,
                "duration": review.duration,
                "segments": review.segments,
            },
            "story": review.story.as_json(),
        }
    ]
    records += [
        {
            "type": "alert",
            "id": str(a.id),
            "received_at": a.received_at.isoformat(),
            "breach": json.loads(a.breach_json),
        }
        for a in review.record.alerts
    ]
    records += [
        {
            "type": "event",
            "seq": e.seq,
            "ts": e.ts.isoformat(),
            "actor": e.actor,
            "kind": e.kind,
            "data": review.record.event_data(e),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
            **_provenance(e, proofs),
        }
        for e in review.record.events
    ]
    records += proofs.checkpoints if proofs else []
    records.append({"type": "verification", **chain_summary(review.chain)})
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def _provenance(event: AuditEvent, proofs: EventProofs | None) -> dict[str, Any]:
    """Return what an event's proof needs beside the fields shown: its ids, and the proof."""
    if proofs is None:
        return {}
    return {
        "incident_id": str(event.incident_id) if event.incident_id else None,
        "alert_id": str(event.alert_id) if event.alert_id else None,
        "proof": proofs.proof(event.seq),
    }


def _summary(review: Review) -> str:
    incident = review.record.incident
    what = "The agent made no diagnosis."
    diagnosis = review.diagnosis()
    if diagnosis:
        explained = diagnosis.get("explanation") or diagnosis.get("summary")
        what = f"Diagnosis **{_cell(diagnosis.get('kind'))}**: {_cell(explained)}."
    done = f" What happened: {_cell(review.story.headline())}"
    state = "It is resolved." if incident.status == "resolved" else "It is still open."
    return f"{_cell(incident.title)}. {what}{done} {state}"


def _evidence(review: Review) -> list[str]:
    lines = []
    for event in review.events("probe.completed", "probe.skipped"):
        data = review.record.event_data(event)
        lines.append(f"- {_cell(str(data.get('summary', event.kind)))}")
        for top in data.get("evidence", {}).get("top_errors", []):
            lines.append(f"  - {_cell(top.get('count'))}× {_cell(top.get('message'))}")
    return lines


def _candidates(review: Review) -> list[str]:
    diagnosis = review.diagnosis()
    if not diagnosis or not diagnosis.get("candidates"):
        return []
    lines = ["", "Diagnoses considered:", ""]
    for candidate in diagnosis["candidates"]:
        lines.append(f"- **{_cell(candidate.get('kind'))}** ({_cell(candidate.get('verdict'))})")
        lines += [f"  - for: {_cell(str(e))}" for e in candidate.get("evidence_for", [])]
        lines += [f"  - against: {_cell(str(e))}" for e in candidate.get("evidence_against", [])]
    return lines


def _chain_line(chain: VerifyResult) -> str:
    if chain.ok:
        return (
            f"verified: {chain.checked} events through sequence {chain.head_seq}, "
            f"{chain.checkpoints} signed checkpoint(s)"
        )
    return f"**BROKEN at sequence {chain.first_bad_seq}**: {_cell(chain.reason)}"


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...] = ("", "")) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# `&` and `<` escaped make any HTML inert (no tag opens without `<`); `>` stays readable. Link,
# code-span and table syntax is escaped too, and outside text never starts a line of its own.
_MARKDOWN = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        "|": "\\|",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "\n": " ",
        "\r": " ",
    }
)


def _cell(value: object) -> str:
    """Return outside text for the Markdown review: no HTML, link, code or table syntax."""
    return str(value).translate(_MARKDOWN)


def _time(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "—"
