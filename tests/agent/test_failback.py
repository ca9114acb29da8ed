"""Failback through the worker: onto a primary that answers right, never under another incident.

The sandbox's gateway routes support-bot's alias; a failover moves it. Before moving it back the
agent sends the known-answer prompts to the primary route directly (the catalog's `route_model`),
so a primary that is still broken keeps the failover, and the thread and the audit trail say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from agent.approvals.models import Approval
from agent.approvals.service import decide, pending_for
from agent.failovers.models import Failover
from agent.incidents.models import Incident
from agent.store.db import session_scope
from audit.models import AuditEvent
from sandbox.stack import DEMO_SERVICE, SandboxStack
from tests.agent.test_worker import Clock, Parts
from tests.conftest import make_settings, sandbox_overrides

RUNBOOK = """\
name: failback-onto-health
version: 1
description: Fail over an isolated endpoint at once; fail back once the primary answers right.
match: {{metrics: [latency_p95, error_rate], services: [support-bot]}}
probes:
  vector_db: {{timeout_seconds: 10}}
  embeddings: {{timeout_seconds: 10}}
  endpoint: {{timeout_seconds: 30}}
  changes: {{timeout_seconds: 10}}
actions:
  endpoint_isolated:
    failover: {{target: backup-region, approval: auto}}
    page: {{severity: error}}
  dependency_degraded: {{page: {{severity: error}}}}
  suspect_change: {{rollback: {{approval: required}}, notify: {{severity: warning}}}}
failback: {failback}
approval: {{approvers: [U0ALICE]}}
{retry}
"""


def make_parts(
    world: SandboxStack, tmp_path: Path, retry: str = "", failback: str = "auto"
) -> Parts:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "failback.yaml").write_text(RUNBOOK.format(retry=retry, failback=failback))
    settings = make_settings(
        tmp_path,
        **sandbox_overrides(world),
        catalog_file=world.catalog_path,  # type: ignore[attr-defined]
        runbooks_dir=runbooks,
        worker_lease_seconds=120,
    )
    return Parts(settings, Clock())


@pytest.fixture
def world(catalog_world: SandboxStack) -> SandboxStack:
    """A fresh sandbox whose primary region (eu-west-1) answers 503 through the gateway."""
    catalog_world.gateway.failing_regions["eu-west-1"] = 503
    return catalog_world


def breach(monitor: str = "mon-latency", **changes: Any) -> dict[str, Any]:
    return {
        "monitor_id": monitor,
        "monitor_name": f"support-bot {monitor}",
        "model_id": DEMO_SERVICE,
        "dimensions": {},
        **changes,
    }


def region(world: SandboxStack) -> str:
    return str(world.gateway.routes[DEMO_SERVICE]["region"])


def thread_replies(world: SandboxStack) -> list[str]:
    return [m["text"] for m in world.slack.snapshot()["messages"] if m["thread_ts"]]


def events(parts: Parts, kind: str) -> list[dict[str, Any]]:
    with Session(parts.engine) as session:
        found = session.exec(
            select(AuditEvent).where(AuditEvent.kind == kind).order_by(col(AuditEvent.seq))
        ).all()
    return [json.loads(e.data) for e in found]


def failovers(parts: Parts) -> list[Failover]:
    with Session(parts.engine) as session:
        return list(session.exec(select(Failover).order_by(col(Failover.created_at))).all())


def incidents(parts: Parts) -> list[Incident]:
    with Session(parts.engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.opened_at))).all())


def test_a_primary_still_broken_at_the_resolution_keeps_the_failover_until_it_heals(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path, retry="failback_retry_minutes: 10")
    parts.accept(**breach())
    parts.drain()
    assert region(world) == "us-east-1"  # failed over, and the backup answers right

    # The breach cleared because of the failover; the primary is as broken as before.
    parts.accept(**breach(status="Healthy"))
    parts.drain()

    assert region(world) == "us-east-1"
    [held] = [e for e in events(parts, "action.not_taken") if e.get("kind") == "failback"]
    assert held["reason"] == "unhealthy"
    assert "failed its known-answer prompts" in held["summary"]
    [checked] = events(parts, "failback.checked")
    assert checked["status"] == "down"
    assert "openai/support-bot-v3@eu-west-1" in checked["summary"]
    said = thread_replies(world)[-1]
    assert said.startswith("Resolved:")
    assert (
        "Move support-bot back from backup-region to primary: held" in said
        and "tried again in 10 min" in said
    )
    assert [f.status for f in failovers(parts)] == ["holding"]

    parts.clock.advance(9 * 60)
    parts.drain()
    assert region(world) == "us-east-1"  # not due yet: nothing probed, nothing moved
    assert len(events(parts, "failback.checked")) == 1

    world.gateway.failing_regions.clear()  # the primary heals
    parts.clock.advance(61)
    parts.drain()

    assert region(world) == "eu-west-1"
    assert [e["status"] for e in events(parts, "failback.checked")] == ["down", "ok"]
    assert "Move support-bot back from backup-region to primary: done" in thread_replies(world)[-1]
    assert [f.status for f in failovers(parts)] == ["restored"]
    assert incidents(parts)[0].run_state == "completed"
    parts.clock.advance(3600)
    assert parts.drain() == 0  # nothing left to retry


def test_a_held_failback_without_a_schedule_is_tried_at_the_next_resolution(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path)
    parts.accept(**breach())
    parts.drain()
    parts.accept(**breach(status="Healthy"))
    parts.drain()
    assert region(world) == "us-east-1"
    assert "tried again at the service's next resolution" in thread_replies(world)[-1]
    parts.clock.advance(24 * 3600)
    assert parts.drain() == 0  # no schedule: nothing happens by itself

    world.gateway.failing_regions.clear()
    parts.accept(**breach(status="Healthy", current_value=1200))  # the monitor says so again
    parts.drain()

    assert region(world) == "eu-west-1"
    assert [f.status for f in failovers(parts)] == ["restored"]
    assert len(incidents(parts)) == 1


def test_resolving_one_of_two_incidents_that_failed_over_keeps_the_route_for_the_other(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path)
    parts.accept(**breach("mon-latency"))
    parts.drain()
    assert region(world) == "us-east-1"
    # A second monitor of the service fires while the backup region falters too: its run fails
    # over as well, onto the route the first one already moved.
    world.gateway.failing_regions["us-east-1"] = 503
    parts.accept(**breach("mon-errors", metric="error_rate"))
    parts.drain()
    world.gateway.failing_regions.clear()
    first, second = incidents(parts)
    assert [(f.incident_id, f.moved) for f in failovers(parts)] == [
        (first.id, True),
        (second.id, False),
    ]

    parts.accept(**breach("mon-latency", status="Healthy"))
    parts.drain()

    assert region(world) == "us-east-1"  # the second incident still depends on the failover
    [held] = [e for e in events(parts, "action.not_taken") if e.get("kind") == "failback"]
    assert held["reason"] == "blocked"
    assert str(second.id) in held["summary"]
    assert "failback.checked" not in parts.kinds()  # nothing probed while another depends on it
    assert f"incident {second.id}" in thread_replies(world)[-1]

    parts.accept(**breach("mon-errors", metric="error_rate", status="Healthy"))
    parts.drain()

    assert region(world) == "eu-west-1"  # the last incident to depend on it resolved
    assert [f.status for f in failovers(parts)] == ["restored", "released"]
    restored = [e for e in events(parts, "action.started") if e.get("action") == "failback"]
    assert [e["idempotency_key"] for e in restored] == [f"{first.id}/failover/backup-region"]
    assert len(world.gateway.changes(DEMO_SERVICE)) == 2  # one failover, one failback


def test_another_open_incident_of_the_service_that_found_the_failover_in_place_keeps_the_route(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path, retry="failback_retry_minutes: 5")
    parts.accept(**breach("mon-latency"))
    parts.drain()
    assert region(world) == "us-east-1"
    # The primary heals; a second monitor of the service fires: its run finds nothing wrong
    # (the backup and the primary both answer right), so it fails nothing over of its own, but
    # its breach is still open.
    world.gateway.failing_regions.clear()
    parts.accept(**breach("mon-errors", metric="error_rate"))
    parts.drain()
    first, second = incidents(parts)
    assert [f.incident_id for f in failovers(parts)] == [first.id]

    parts.accept(**breach("mon-latency", status="Healthy"))
    parts.drain()

    assert region(world) == "us-east-1"  # not moved back under the open incident
    [held] = [e for e in events(parts, "action.not_taken") if e.get("kind") == "failback"]
    assert held["reason"] == "blocked"
    assert f"incident {second.id}" in held["summary"] and "is still open" in held["summary"]

    parts.accept(**breach("mon-errors", metric="error_rate", status="Healthy"))
    parts.drain()
    parts.clock.advance(5 * 60 + 1)  # the runbook's retry, now that nothing else is open
    parts.drain()

    assert region(world) == "eu-west-1"
    assert [f.status for f in failovers(parts)] == ["restored"]


def test_a_breach_while_the_service_is_failed_over_is_judged_on_the_primary_route_too(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path)
    parts.accept(**breach("mon-latency"))
    parts.drain()
    assert region(world) == "us-east-1"

    # The error monitor fires while the traffic runs on the healthy backup: the primary it
    # breached on still fails, so this is the endpoint's fault, not "nothing found".
    parts.accept(**breach("mon-errors", metric="error_rate"))
    parts.drain()

    diagnoses = events(parts, "diagnosis.made")
    assert [d["kind"] for d in diagnoses] == ["endpoint_isolated", "endpoint_isolated"]
    assert "the primary route" in diagnoses[1]["explanation"]
    assert "still fails" in diagnoses[1]["explanation"]
    assert len(world.gateway.changes(DEMO_SERVICE)) == 1  # already on the backup: no new move


def test_an_approval_to_fail_back_is_asked_only_once_the_primary_answers_right(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path, retry="failback_retry_minutes: 5", failback="approval")
    parts.accept(**breach())
    parts.drain()
    parts.accept(**breach(status="Healthy"))
    parts.drain()
    assert "approval.requested" not in parts.kinds()  # nobody is asked to restore a broken route
    assert region(world) == "us-east-1"

    world.gateway.failing_regions.clear()
    parts.clock.advance(5 * 60 + 1)
    parts.drain()
    [request] = [a for a in pending(parts) if a.kind == "failback"]
    assert region(world) == "us-east-1"  # not before the approval
    assert f"waits for approval (request {request.id})" in thread_replies(world)[-1]

    with session_scope(parts.engine) as session:
        decide(
            session=session,
            audit=parts.audit,
            approval_id=request.id,
            user="U0ALICE",
            decision="approve",
            digest=None,
            via="api",
        )
    parts.drain()

    assert region(world) == "eu-west-1"
    assert [e["status"] for e in events(parts, "failback.checked")] == ["down", "ok", "ok"]
    assert [f.status for f in failovers(parts)] == ["restored"]


def pending(parts: Parts) -> list[Approval]:
    with Session(parts.engine) as session:
        return pending_for(session=session)
