"""The follow-up of an incident is a checkpointed graph: a retried resolution does nothing twice."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from agent.alerts.models import Alert
from agent.graph.followup.builder import build_followup_graph, thread_id
from agent.graph.followup.state import incident_view
from agent.graph.runner import GraphRunner
from agent.incidents.models import Incident, page_dedup_key
from agent.incidents.service import resolve_incident
from agent.store.db import session_scope
from sandbox.stack import SandboxStack
from tests.agent.test_worker import Clock, Parts, claim
from tests.conftest import make_settings, sandbox_overrides


def resolve_events(sandbox: SandboxStack, dedup_key: str) -> list[dict[str, Any]]:
    """Return the resolve events PagerDuty accepted for one incident's page."""
    accepted = sandbox.pagerduty.snapshot()["accepted"]
    return [e for e in accepted if e["event_action"] == "resolve" and e["dedup_key"] == dedup_key]


def resolved_replies(sandbox: SandboxStack, thread_ts: str) -> list[dict[str, Any]]:
    """Return the thread's replies that announce the resolution."""
    messages = sandbox.slack.snapshot()["messages"]
    return [
        m for m in messages if m["thread_ts"] == thread_ts and m["text"].startswith("Resolved:")
    ]


def test_a_resolution_cut_short_after_its_page_resolve_resumes_without_resolving_twice(
    tmp_path: Path, sandbox: SandboxStack
) -> None:
    settings = make_settings(tmp_path, worker_lease_seconds=60, **sandbox_overrides(sandbox))
    parts = Parts(settings, Clock())
    model = f"bot-{uuid.uuid4().hex[:8]}"
    parts.accept(model_id=model, current_value=4000)
    parts.drain()
    with Session(parts.engine) as session:
        [incident] = session.exec(select(Incident)).all()
    assert incident.slack_thread_ts is not None  # the run paged and reported in a thread
    dedup_key = page_dedup_key(incident.id)

    # A worker correlates the healthy alert, resolves the page, and dies before anything else.
    healthy = parts.accept(model_id=model, status="Healthy")
    assert claim(parts, "crashed-worker") is not None
    with session_scope(parts.engine) as session:
        alert = session.get(Alert, healthy)
        stored = session.get(Incident, incident.id)
        assert alert is not None and stored is not None
        resolve_incident(session=session, audit=parts.audit, alert=alert, incident=stored)
    with Session(parts.engine) as session:
        resolved = session.get(Incident, incident.id)
        assert resolved is not None
    start = {
        "incident_id": str(incident.id),
        "kind": "resolve",
        "incident": incident_view(resolved),
        "run": GraphRunner(parts.context, parts.checkpointer).state(incident.id),
    }
    build_followup_graph(parts.checkpointer).invoke(
        start,
        {"configurable": {"thread_id": thread_id(incident.id, "resolve")}},
        context=parts.context,
        durability="sync",
        interrupt_after=["resolve_pages"],
    )
    assert len(resolve_events(sandbox, dedup_key)) == 1
    assert resolved_replies(sandbox, incident.slack_thread_ts) == []
    parts.clock.advance(61)

    parts.drain()  # another worker retries the alert once the lease expired

    assert parts.alert(healthy).state == "done"
    assert len(resolve_events(sandbox, dedup_key)) == 1  # not resolved again on the retry
    assert len(resolved_replies(sandbox, incident.slack_thread_ts)) == 1  # told once, after all
    assert parts.kinds().count("incident.resolved") == 1
