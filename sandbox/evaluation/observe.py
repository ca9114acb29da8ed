"""What the agent did in a scenario, read from its audit trail and the emulators' records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from agent.incidents.models import Incident
from agent.settings import Settings
from agent.store.db import make_engine
from audit.models import AuditEvent
from sandbox.evaluation.arize import SeenArize
from sandbox.evaluation.causes import SeenCause, observe_causes
from sandbox.evaluation.checks import Happening, Record, action_names
from sandbox.evaluation.scenario import ANALYST_MODEL, Expected, StagedWorld
from sandbox.stack import SandboxStack

APPROVAL_OUTCOMES = ("approved", "rejected", "expired", "cancelled")
ACTION_ORDER = ("failover", "rollback_prompt", "rollback", "failback", "page", "notify")


@dataclass
class SeenAction:
    """An action the audit trail shows the agent took, and its outcome."""

    kind: str
    status: str
    severity: str | None = None


@dataclass
class SeenIncident:
    """One incident as its audit events tell it."""

    id: str
    run_state: str
    runbook: str | None = None
    diagnosis: dict[str, Any] | None = None
    actions: list[SeenAction] = field(default_factory=list)
    not_taken: list[str] = field(default_factory=list)
    verification: list[str] = field(default_factory=list)
    analyst: list[str] = field(default_factory=list)
    """Per consultation: adopted, discarded or unusable."""
    approvals: list[str] = field(default_factory=list)
    """Each approval request's outcome: approved, rejected, expired or cancelled."""
    evidence: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """Return the diagnosis kind, or `none` when the run made none."""
        return str(self.diagnosis["kind"]) if self.diagnosis else "none"


@dataclass
class Observation:
    """What the agent did in a scenario: its audit trail and the emulators' records."""

    incidents: list[SeenIncident]
    pages: list[tuple[str, str]]
    """(team, severity) of each PagerDuty trigger; the settings' own key is `on-call`."""
    failovers: list[dict[str, Any]]
    slack_messages: int
    llm_calls: int
    refused_clicks: int = 0
    record: Record = field(default_factory=Record)
    """When things happened, what Slack and PagerDuty were sent, where each service ends."""
    prompt_labels: dict[str, dict[str, int]] = field(default_factory=dict)
    """Emulated Arize prompt → label → the version (1-based) it is on at the end."""
    arize: SeenArize = field(default_factory=SeenArize)
    """What the agent did with the world's Arize monitor (set by the runner)."""
    alerts: dict[str, int] = field(default_factory=dict)
    """Team → PagerDuty alerts it holds (distinct dedup keys)."""
    causes: list[SeenCause] = field(default_factory=list)
    """Every cause the service linked, with its alerts and Slack thread."""

    @property
    def actions(self) -> list[SeenAction]:
        """Return the actions of every incident."""
        return [a for incident in self.incidents for a in incident.actions]

    def evidence_text(self) -> str:
        """Return every diagnosis, candidate and probe summary as one lower-case text."""
        parts: list[str] = []
        for incident in self.incidents:
            parts += incident.evidence
            diagnosis = incident.diagnosis or {}
            parts.append(str(diagnosis.get("summary", "")))
            for candidate in diagnosis.get("candidates", []):
                parts += candidate.get("evidence_for", []) + candidate.get("evidence_against", [])
        return "\n".join(parts).casefold()

    def summary(self) -> str:
        """Return the diagnoses, actions and pages in one short line."""
        actions = [_action_text(a.kind, a.status) for a in self.actions]
        actions += [f"{kind}:not_taken" for i in self.incidents for kind in i.not_taken]
        return _line(
            [i.kind for i in self.incidents] or ["no incident"],
            actions,
            [f"{team}:{severity}" for team, severity in self.pages],
        )


def summarise(expected: Expected) -> str:
    """Return what a scenario expects in one short line, as `Observation.summary` words it."""
    actions = [_action_text(a.kind, a.status) for a in expected.actions or []]
    actions += [f"{kind}:not_taken" for kind in expected.not_taken or []]
    pages = expected.pages if isinstance(expected.pages, dict) else {}
    return _line(
        expected.diagnoses() or ["no incident"],
        actions if expected.actions is not None else ["…"],
        [f"{team}:{sev}" for team, severities in pages.items() for sev in severities],
    )


def _action_text(kind: str, status: str) -> str:
    return kind if status == "done" else f"{kind}:{status}"


def _line(diagnoses: list[str], actions: list[str], pages: list[str]) -> str:
    # Remedies first, then who is told (the order runbooks list actions in).
    rank = {kind: i for i, kind in enumerate(ACTION_ORDER)}
    actions = sorted(actions, key=lambda text: rank.get(text.split(":")[0], len(rank)))
    return (
        f"{', '.join(diagnoses)} | {', '.join(actions) or 'no action'} | "
        f"{'paged ' + ', '.join(pages) if pages else 'no page'}"
    )


def observe(settings: Settings, stack: SandboxStack, staged: StagedWorld) -> Observation:
    """Read what the agent did from the database and the emulators."""
    engine = make_engine(settings.database_url)
    teams = {key: team for team, key in stack.team_keys.items()} | {stack.routing_key: "on-call"}
    try:
        with Session(engine) as session:
            incidents = list(session.exec(select(Incident).order_by(col(Incident.opened_at))))
            events = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))
        alerts, causes = observe_causes(engine, stack, teams)
    finally:
        engine.dispose()
    record = Record()
    seen = []
    for incident in incidents:
        mine = [(e.kind, json.loads(e.data), e) for e in events if e.incident_id == incident.id]
        seen.append(_incident(incident, [(kind, data) for kind, data, _ in mine]))
        record.moments += _moments([(kind, data, e.seq, e.ts) for kind, data, e in mine])
    record.moments.sort(key=lambda m: m.at)
    received = [e.ts for e in events if e.kind == "alert.received"]
    record.start = min(received) if received else None
    failovers = []
    for change in stack.gateway.changes():
        route = change["route"]
        served = staged.upstream.get(route["model"])
        if served is not None and served.route == "primary":
            continue  # a failback to the route from before the incident
        failovers.append(
            {
                "target": served.route if served is not None else route["model"],
                "provider": route.get("provider"),
                "region": route.get("region"),
            }
        )
    snapshot = stack.slack.snapshot()
    record.slack_text = "\n".join(_slack_text(m) for m in snapshot["messages"])
    record.pagerduty_text = _pagerduty_text(stack)
    record.routes = {
        service: staged.route_of(service, route["model"])
        for service, route in stack.gateway.snapshot()["routes"].items()
    }
    return Observation(
        incidents=seen,
        pages=[
            (teams.get(t["routing_key"], "?"), t["payload"]["severity"])
            for t in stack.pagerduty.triggers()
        ],
        failovers=failovers,
        slack_messages=len(snapshot["messages"]),
        llm_calls=len(stack.openai.received(model=ANALYST_MODEL)),
        record=record,
        prompt_labels=staged.prompts.labels() if staged.prompts is not None else {},
        alerts=alerts,
        causes=causes,
    )


def _slack_text(message: dict[str, Any]) -> str:
    blocks = message.get("blocks")
    return f"{message.get('text', '')}\n{blocks if isinstance(blocks, str) else json.dumps(blocks)}"


def _pagerduty_text(stack: SandboxStack) -> str:
    snapshot = stack.pagerduty.snapshot()
    parts = [json.dumps(event.get("payload", {})) for event in stack.pagerduty.triggers()]
    parts += [json.dumps(note) for note in snapshot.get("notes", [])]
    return "\n".join(parts)


def _moments(events: list[tuple[str, dict[str, Any], int, Any]]) -> list[Happening]:
    """Return the named moments of one incident's audit events."""
    moments = []
    started: tuple[str, str | None] | None = None
    for kind, data, _, at in events:
        names: tuple[str, ...] = ()
        if kind == "action.started":
            started = (str(data.get("action")), _severity(str(data.get("summary", ""))))
        elif kind in ("action.succeeded", "action.failed") and started is not None:
            names, started = action_names(*started), None
        elif kind == "action.dry_run":
            names = action_names(str(data.get("kind")), data.get("severity"))
        elif kind == "action.escalated":
            names = action_names(str(data.get("kind", "notify")), data.get("severity"))
        elif kind in ("decision.made", "decision.updated"):
            for item in data.get("plan", []):
                if item.get("kind") == "notify" and item.get("status") == "planned":
                    names += action_names("notify", item.get("severity"))
        elif kind.startswith("approval."):
            names = (f"approval:{kind.split('.', 1)[1]}",)
        elif kind == "incident.resolved":
            names = ("resolved",)
        elif kind in ("verification.passed", "verification.failed"):
            names = (f"verification:{kind.split('.', 1)[1]}",)
        if names:
            moments.append(Happening(names, at))
    return moments


def _incident(incident: Incident, events: list[tuple[str, dict[str, Any]]]) -> SeenIncident:
    seen = SeenIncident(id=str(incident.id), run_state=str(incident.run_state))
    started: tuple[str, str | None] | None = None
    notices: list[SeenAction] = []
    for kind, data in events:
        if kind == "runbook.matched":
            seen.runbook = str(data.get("runbook", "")).split("@")[0]
        elif kind == "diagnosis.made":
            seen.diagnosis = data
        elif kind == "probe.completed":
            seen.evidence.append(str(data.get("summary", "")))
        elif kind in ("decision.made", "decision.updated"):
            # Notices are told in Slack as planned; the plan after the approvals is the last word.
            notices = [
                SeenAction("notify", "done", item.get("severity"))
                for item in data.get("plan", [])
                if item.get("kind") == "notify" and item.get("status") == "planned"
            ]
        elif kind.startswith("approval.") and kind.split(".", 1)[1] in APPROVAL_OUTCOMES:
            seen.approvals.append(kind.split(".", 1)[1])
        elif kind == "action.started":
            started = (str(data.get("action")), _severity(str(data.get("summary", ""))))
        elif kind in ("action.succeeded", "action.failed") and started is not None:
            status = "done" if kind == "action.succeeded" else "failed"
            seen.actions.append(SeenAction(started[0], status, started[1]))
            started = None
        elif kind == "action.dry_run":
            seen.actions.append(SeenAction(str(data.get("kind")), "dry_run", data.get("severity")))
        elif kind == "action.proposed":
            seen.actions.append(SeenAction(str(data.get("kind", "rollback")), "proposed", None))
        elif kind == "action.escalated":
            escalation = SeenAction(str(data.get("kind", "notify")), "done", data.get("severity"))
            seen.actions.append(escalation)
        elif kind == "action.not_taken":
            seen.not_taken.append(str(data.get("kind")))
        elif kind.startswith("verification."):
            seen.verification.append(kind.split(".", 1)[1])
            seen.evidence.append(str(data.get("summary", "")))
        elif kind == "analyst.consulted":
            seen.analyst.append("adopted" if data.get("status") == "ok" else "unusable")
        elif kind == "analyst.proposal_discarded" and seen.analyst:
            seen.analyst[-1] = "discarded"
    seen.actions += notices
    return seen


def _severity(summary: str) -> str | None:
    """Return the severity a page's `action.started` summary names ("page X at error …")."""
    for severity in ("critical", "error", "warning", "info"):
        if f" at {severity}" in summary:
            return severity
    return None
