"""Pages per cause in a scenario: PagerDuty alerts per team, and each cause's page and thread.

`expected.yaml` may say `alerts: {team: N}` (distinct PagerDuty alerts, not triggers: later
incidents of a cause trigger on its alert's dedup key) and `causes: [{owner, services}]` (the
causes the service linked, exactly). Each cause of two or more services must have one PagerDuty
alert and one Slack thread, its first message naming every service as last edited.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from pydantic import Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.causes.models import Cause, CauseLink
from agent.causes.service import cause_view
from sandbox.evaluation.systems import Strict
from sandbox.stack import SandboxStack


class ExpectedCause(Strict):
    """One cause: the owner paged, and the services whose incidents it links (any order)."""

    owner: str
    services: list[str] = Field(min_length=1)


@dataclass
class SeenCause:
    """A cause as the database, PagerDuty and Slack show it at the end of a run."""

    owner: str
    services: list[str]
    alerts: int
    """PagerDuty alerts with the cause's dedup key."""
    threads: list[str] = field(default_factory=list)
    """The text (and blocks) of each Slack message that is the cause's thread."""


def observe_causes(
    engine: Engine, stack: SandboxStack, teams: dict[str, str]
) -> tuple[dict[str, int], list[SeenCause]]:
    """Return the PagerDuty alerts per team and every cause the service linked."""
    snapshot = stack.pagerduty.snapshot()
    alerts = Counter(teams.get(a["routing_key"], "?") for a in snapshot["alerts"])
    messages = stack.slack.snapshot()["messages"]
    with Session(engine) as session:
        causes = session.exec(select(Cause).order_by(col(Cause.created_at))).all()
        links = session.exec(select(CauseLink)).all()
    seen = []
    for cause in causes:
        services = sorted({link.service or "-" for link in links if link.cause_id == cause.id})
        view = cause_view(engine, cause.id)
        threads = [
            f"{m.get('text', '')}\n{json.dumps(m.get('blocks'))}"
            for m in messages
            if view is not None
            and view.slack_ts is not None
            and m["ts"] == view.slack_ts
            and m["channel"] == view.slack_channel
        ]
        paged = [a for a in snapshot["alerts"] if a["dedup_key"] == cause.dedup_key]
        seen.append(SeenCause(cause.owner, services, len(paged), threads))
    return dict(alerts), seen


def compare_causes(
    want_alerts: dict[str, int] | None,
    want_causes: list[ExpectedCause] | None,
    alerts: dict[str, int],
    causes: list[SeenCause],
) -> list[str]:
    """Return every way the alerts and causes differ from what the scenario expects."""
    problems = []
    if want_alerts is not None and alerts != {t: n for t, n in want_alerts.items() if n}:
        problems.append(f"PagerDuty alerts: expected {want_alerts}, got {alerts or 'none'}")
    if want_causes is None:
        return problems
    want = sorted((c.owner, sorted(c.services)) for c in want_causes)
    got = sorted((c.owner, c.services) for c in causes)
    if want != got:
        problems.append(f"causes: expected {_show(want)}, got {_show(got) or 'none'}")
    for cause in causes:
        name = f"cause of {cause.owner} ({', '.join(cause.services)})"
        if cause.alerts != 1:
            problems.append(f"{name}: {cause.alerts} PagerDuty alerts, expected 1")
        if len(cause.services) < 2:
            continue
        if len(cause.threads) != 1:
            problems.append(f"{name}: {len(cause.threads)} Slack threads, expected 1")
        missing = [s for s in cause.services if not any(s in text for text in cause.threads)]
        if cause.threads and missing:
            problems.append(f"{name}: its Slack thread does not name {', '.join(missing)}")
    return problems


def _show(causes: list[tuple[str, list[str]]]) -> str:
    return "; ".join(f"{owner}: {', '.join(services)}" for owner, services in causes)
