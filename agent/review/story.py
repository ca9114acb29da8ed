"""What happened in an incident, read from its audit events: the one source of the review's story.

The review page, the Markdown review, the JSON Lines export and the incident list all read an
incident's actions, approvals, verification and escalations from here, so they never disagree.
Everything is derived from audit events alone (no run state): an action is its `action.started`
paired with the `action.succeeded`/`action.failed` that follows it from the same actor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audit.models import AuditEvent
from runbooks.schema import Severity

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")
"""Severities from least to most severe."""
STORY_KINDS = (
    "action.",
    "approval.",
    "verification.",
    "decision.",
    "diagnosis.",
    "notification.",
    "run.",
)
"""The event kinds the story reads (a listing loads only these)."""
APPROVAL_OUTCOMES = ("approved", "rejected", "expired", "cancelled")
REPORTER = "agent.report"
TAKEN = ("done", "failed", "started", "escalated", "proposed")
"""The statuses of an action that was taken (or tried)."""
_DEDUP_KEY = re.compile(r" \(dedup_key [^)]*\)$")


def event_data(event: AuditEvent) -> dict[str, Any]:
    """Return an event's data as a dict."""
    data = json.loads(event.data)
    return data if isinstance(data, dict) else {"value": data}


@dataclass
class Step:
    """One action or approval as it happened."""

    seq: int
    ts: datetime
    kind: str
    """`page`, `failover`, `failback`, `notify`, `rollback`, `resolve page` or `approval`."""
    what: str
    by: str
    status: str
    """`done`, `failed`, `started` (no result recorded), `dry_run`, `not_taken`, `proposed`,
    `escalated`, `requested`, or an approval's outcome."""
    result: str = ""
    severity: str | None = None
    approved_by: str | None = None
    escalation: str | None = None
    """Why this step escalates: the verification failure it answers."""
    key: str | None = None

    @property
    def is_action(self) -> bool:
        """Return whether the step is an action (not an approval)."""
        return self.kind != "approval"

    def phrase(self, *, brief: bool = False) -> str:
        """Return the step as it happened, in words (`brief`: the escalation's reason short)."""
        text = f"{self.what}: {self.status}" if self.status in ("done", "failed") else self.what
        if self.status == "started":
            text += ": started, no result recorded"
        if self.approved_by:
            text += f" (approved by {self.approved_by})"
        if self.escalation:
            text += " (an escalation)" if brief else f" — escalation: {self.escalation}"
        return text


@dataclass
class Story:
    """An incident's outcome: what was done, verified, paged, failed back, and approved."""

    steps: list[Step] = field(default_factory=list)
    diagnosis: str | None = None
    plan: str | None = None
    """The last decision's summary: what was planned (shown as such, never as the outcome)."""
    verification: str | None = None
    verification_status: str | None = None
    verification_seq: int = 0

    @property
    def actions(self) -> list[Step]:
        """Return the action steps, oldest first."""
        return [s for s in self.steps if s.is_action]

    @property
    def approvals(self) -> list[Step]:
        """Return the approval steps, oldest first."""
        return [s for s in self.steps if not s.is_action]

    @property
    def escalations(self) -> list[Step]:
        """Return the steps that escalate a failed verification."""
        return [s for s in self.steps if s.escalation]

    @property
    def pages(self) -> list[Step]:
        """Return the pages sent (or tried), escalations included."""
        return [s for s in self.actions if s.kind == "page"]

    @property
    def failback(self) -> Step | None:
        """Return the last failback step, if any."""
        found = [s for s in self.actions if s.kind == "failback"]
        return found[-1] if found else None

    @property
    def severity(self) -> str | None:
        """Return the highest severity the agent paged or notified at (None: it did neither)."""
        acted = [s.severity for s in self.actions if s.severity in SEVERITIES and _acted(s)]
        return max(acted, key=SEVERITIES.index) if acted else None

    def taken(self) -> list[str]:
        """Return the kinds of actions taken, each with its count (`page ×2`), in order."""
        counts: dict[str, int] = {}
        for step in self.actions:
            if _acted(step):
                counts[step.kind] = counts.get(step.kind, 0) + 1
        return [f"{kind} ×{n}" if n > 1 else kind for kind, n in counts.items()]

    def headline(self) -> str:
        """Return what happened, in one sentence (never what was only planned)."""
        told = [(step.seq, step.phrase(brief=True)) for step in self.actions]
        if self.verification_status:
            told.append((self.verification_seq, f"verification {self.verification_line()}"))
        parts = [text for _, text in sorted(told, key=lambda pair: pair[0])]
        if not parts:
            return "No action was taken." + (f" (Planned: {self.plan}.)" if self.plan else "")
        return "; ".join(parts) + "."

    def lines(self) -> list[tuple[str, str]]:
        """Return the outcome summary as (label, text) pairs."""
        done = [
            s.what + (f" (approved by {s.approved_by})" if s.approved_by else "")
            for s in self.actions
            if s.status in ("done", "proposed", "escalated")
        ]
        failed = [s.phrase() for s in self.actions if s.status in ("failed", "started")]
        skipped = [s.phrase() for s in self.actions if s.status in ("not_taken", "dry_run")]
        pages = [
            f"{s.what}: {s.status}" + (f" — escalation: {s.escalation}" if s.escalation else "")
            for s in self.pages
        ]
        approvals = [s.what for s in self.approvals if s.status != "requested"]
        approvals += [
            f"{s.what}: never decided"
            for s in self.approvals
            if s.status == "requested" and not any(_decides(o, s) for o in self.approvals)
        ]
        back = self.failback
        return [
            ("Done", "; ".join(done) or "nothing"),
            ("Verified", self.verification_line()),
            ("Paged", "; ".join(pages) or "nobody"),
            ("Failed back", back.phrase() if back else "no failback"),
            ("Approvals", "; ".join(approvals) or "none requested"),
            *([("Failed", "; ".join(failed))] if failed else []),
            *([("Not taken", "; ".join(skipped))] if skipped else []),
        ]

    def verification_line(self) -> str:
        """Return the verification's result in words."""
        if not self.verification_status:
            return "nothing to verify (no failover)"
        return f"{self.verification_status}: {self.verification}"

    def as_json(self) -> dict[str, Any]:
        """Return the story for the JSON Lines export."""
        return {
            "headline": self.headline(),
            "planned": self.plan,
            "diagnosis": self.diagnosis,
            "severity": self.severity,
            "verification": {"status": self.verification_status, "summary": self.verification},
            "summary": {label: text for label, text in self.lines()},
            "steps": [
                {
                    "seq": s.seq,
                    "ts": s.ts.isoformat(),
                    "kind": s.kind,
                    "what": s.what,
                    "by": s.by,
                    "status": s.status,
                    "result": s.result,
                    "severity": s.severity,
                    "approved_by": s.approved_by,
                    "escalation": s.escalation,
                }
                for s in self.steps
            ],
        }


def _acted(step: Step) -> bool:
    return step.status in TAKEN


def _decides(outcome: Step, request: Step) -> bool:
    return outcome.status in APPROVAL_OUTCOMES and outcome.key == request.key


def tell(events: Iterable[AuditEvent]) -> Story:
    """Read an incident's story from its events (oldest first; other kinds are ignored)."""
    story = Story()
    open_steps: dict[str, Step] = {}  # actor -> its started action awaiting a result
    approvals: dict[str, str] = {}  # action key -> who approved it
    asked_for: dict[str, str] = {}  # approval id -> the key of the action it asks for
    verification_failed: str | None = None
    plan: list[dict[str, Any]] = []
    report_told: AuditEvent | None = None
    for event in events:
        kind, data = event.kind, event_data(event)
        summary = str(data.get("summary") or kind)
        if kind == "diagnosis.made":
            story.diagnosis = str(data.get("kind") or "") or None
        elif kind in ("decision.made", "decision.updated"):
            updated = kind == "decision.updated" and story.plan
            story.plan = f"{story.plan}; {summary}" if updated else summary
            if isinstance(data.get("plan"), list):
                plan = [i for i in data["plan"] if isinstance(i, dict)]
        elif kind.startswith("verification."):
            story.verification_status = kind.removeprefix("verification.")
            story.verification = summary
            story.verification_seq = event.seq
            verification_failed = summary if kind == "verification.failed" else None
        elif kind == "run.completed":
            verification_failed = None
        elif kind.startswith("notification.") and event.actor == REPORTER and report_told is None:
            report_told = event
        elif kind == "action.started":
            key = _text(data.get("idempotency_key"))
            unfinished = open_steps.get(event.actor)
            if unfinished is not None and key is not None and unfinished.key == key:
                continue  # the same write started again on a resume: one step, not two
            step = Step(
                event.seq,
                event.ts,
                str(data.get("action") or "action"),
                _DEDUP_KEY.sub("", summary),
                event.actor,
                "started",
                key=key,
            )
            step.approved_by = approvals.get(step.key or "")
            step.severity = _text(data.get("severity")) or step.severity
            reason = _text(data.get("reason"))  # recorded since a page says why it escalates
            if reason and verification_failed is not None:
                step.escalation = f"{reason} (verification failed: {verification_failed})"
            elif reason:
                step.escalation = reason
            elif verification_failed is not None:  # older trails: read from the order
                step.escalation = f"verification failed after the failover ({verification_failed})"
            open_steps[event.actor] = step
            story.steps.append(step)
        elif kind in ("action.succeeded", "action.failed"):
            status = "done" if kind == "action.succeeded" else "failed"
            started = open_steps.pop(event.actor, None)
            asked = _mapping(data.get("asked"))
            if started is None:  # a write with no start of its own: a page's resolve
                action = _text(asked.get("event_action") or asked.get("action")) or "write"
                tool = _text(data.get("tool")) or "an outside system"
                what = (
                    f"{action} the PagerDuty alert"
                    if tool == "pagerduty_events"
                    else (f"{action} through {tool}")
                )
                started = Step(event.seq, event.ts, action, what, event.actor, status)
                story.steps.append(started)
            started.status, started.result = status, summary
            payload = _mapping(asked.get("payload"))
            started.severity = _text(payload.get("severity")) or started.severity
        elif kind in ("action.dry_run", "action.not_taken", "action.proposed", "action.escalated"):
            step = Step(
                event.seq,
                event.ts,
                str(data.get("kind") or "action"),
                summary,
                event.actor,
                kind.removeprefix("action."),
                severity=_text(data.get("severity")),
                key=_text(data.get("idempotency_key")),
            )
            if kind == "action.escalated" and verification_failed is not None:
                step.escalation = f"verification failed after the failover ({verification_failed})"
            story.steps.append(step)
        elif kind == "approval.requested":
            asked_for[str(data.get("approval_id"))] = str(data.get("action_key"))
            story.steps.append(
                Step(
                    event.seq,
                    event.ts,
                    "approval",
                    summary,
                    event.actor,
                    "requested",
                    key=_text(data.get("approval_id")),
                )
            )
        elif kind.removeprefix("approval.") in APPROVAL_OUTCOMES:
            status = kind.removeprefix("approval.")
            who = _text(data.get("approved_by") or data.get("rejected_by")) or event.actor
            step = Step(
                event.seq,
                event.ts,
                "approval",
                summary,
                who,
                status,
                key=_text(data.get("approval_id")),
            )
            story.steps.append(step)
            if status == "approved" and step.key in asked_for:
                approvals[asked_for[step.key]] = who
    _add_notices(story, plan, report_told)
    return story


def _add_notices(story: Story, plan: list[dict[str, Any]], told: AuditEvent | None) -> None:
    """Add the plan's Slack notices: the report message carries them (no event of their own)."""
    for item in plan:
        if item.get("kind") != "notify" or item.get("status") != "planned":
            continue
        severity = _text(item.get("severity")) or "warning"
        what = f"tell the Slack thread at {severity}"
        if told is None:
            status, result, seq, ts = "started", "", 0, None
        else:
            status = "done" if told.kind == "notification.sent" else "failed"
            result, seq, ts = str(event_data(told).get("summary") or told.kind), told.seq, told.ts
        story.steps.append(
            Step(
                seq,
                ts or (story.steps[-1].ts if story.steps else datetime.min),
                "notify",
                what,
                REPORTER,
                status,
                result,
                severity,
            )
        )
    story.steps.sort(key=lambda s: s.seq if s.seq else 1 << 62)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
