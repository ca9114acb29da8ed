"""Whole incidents through HTTP, with the emulators set to each situation (the graph end to end)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from audit.models import AuditEvent
from sandbox.openai_state import ToolCall
from sandbox.stack import CHAT_MODEL, DEMO_SERVICE, SandboxStack
from tests.conftest import RunningService, ServiceFactory, sandbox_overrides, seed_demo_logs
from tests.sample import arize_alert

RUNBOOK = """\
name: scenario-latency
version: 3
description: The policy these scenarios test against.
match: {metrics: [latency_p95, latency_p99], services: [support-bot]}
probes:
  logs: {timeout_seconds: 10}
  vector_db: {timeout_seconds: 5}
  embeddings: {timeout_seconds: 5}
  endpoint: {timeout_seconds: 10}
  changes: {timeout_seconds: 5}
diagnosis: {change_window_minutes: 60, min_error_lines: 3, segment_keys: [region]}
actions:
  dependency_degraded: {page: {severity: error}}
  endpoint_isolated:
    failover: {target: backup-region, approval: auto}
    page: {severity: error}
  suspect_change:
    rollback: {approval: required}
    notify: {severity: warning}
  segment_only: {notify: {severity: warning}}
  no_fault_found: {page: {severity: warning}}
failback: auto
approval: {approvers: [U0ALICE], on_timeout: {action: notify, severity: warning}}
analyst: {enabled: true, max_calls: 1}
"""
ANALYST_MODEL = "analyst-model"


@pytest.fixture
def world(catalog_world: SandboxStack) -> SandboxStack:
    """A fresh sandbox with the catalog."""
    return catalog_world


@pytest.fixture
def agent(world: SandboxStack, start_service: ServiceFactory, tmp_path: Path) -> RunningService:
    """The service with the catalog, the scenario runbook and the sandbox's analyst model."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "scenario.yaml").write_text(RUNBOOK)
    world.openai.add_chat_model(ANALYST_MODEL)
    return start_service(
        **sandbox_overrides(world),
        catalog_file=world.catalog_path,  # type: ignore[attr-defined]
        runbooks_dir=runbooks,
        analyst_base_url=world.urls["openai"] + "/v1",
        analyst_model=ANALYST_MODEL,
        analyst_api_key=world.openai_key,
    )


def breach(**changes: Any) -> dict[str, Any]:
    return arize_alert(model_id=DEMO_SERVICE, **changes)


def run_incident(agent: RunningService, alert: dict[str, Any]) -> tuple[str, list[AuditEvent]]:
    done = agent.wait_alert(agent.post_alert(alert).json()["alert_id"], timeout=60)
    assert done["state"] == "done", done
    return done["incident_id"], events(agent, done["incident_id"])


def events(agent: RunningService, incident_id: str) -> list[AuditEvent]:
    with Session(agent.engine) as session:
        query = select(AuditEvent).where(AuditEvent.incident_id == uuid.UUID(incident_id))
        return list(session.exec(query.order_by(AuditEvent.seq)))  # type: ignore[arg-type]


def data(found: list[AuditEvent], kind: str) -> dict[str, Any]:
    matching = [e for e in found if e.kind == kind]
    assert matching, f"no {kind} event among {[e.kind for e in found]}"
    result: dict[str, Any] = json.loads(matching[-1].data)
    return result


def pages(world: SandboxStack) -> list[tuple[str, str]]:
    teams = {key: team for team, key in world.team_keys.items()}
    return [
        (teams.get(t["routing_key"], "?"), t["payload"]["severity"])
        for t in world.pagerduty.triggers()
    ]


def test_a_degraded_vector_db_pages_its_owner_and_does_not_fail_over(
    world: SandboxStack, agent: RunningService
) -> None:
    world.vectordb.corrupt_index = True

    _, found = run_incident(agent, breach())

    assert data(found, "diagnosis.made")["kind"] == "dependency_degraded"
    assert data(found, "diagnosis.made")["owner_hint"] == "vector_db"
    assert pages(world) == [("search-platform", "error")]
    assert world.gateway.history == []
    [note] = world.pagerduty.snapshot()["notes"]
    assert "Diagnosis: dependency_degraded" in note["content"]
    assert data(found, "note.added")["status"] == "ok"


def test_an_endpoint_fault_fails_over_to_the_backup_region_and_verifies(
    world: SandboxStack, agent: RunningService
) -> None:
    world.gateway.failing_regions["eu-west-1"] = 503

    _, found = run_incident(agent, breach())

    assert data(found, "diagnosis.made")["kind"] == "endpoint_isolated"
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    assert len(world.gateway.history) == 1
    assert data(found, "verification.passed")["status"] == "ok"
    assert pages(world) == [("assistant-team", "error")]
    assert "verification.failed" not in {e.kind for e in found}


def test_a_failover_that_does_not_cure_escalates(
    world: SandboxStack, agent: RunningService
) -> None:
    world.gateway.failing_regions.update({"eu-west-1": 503, "us-east-1": 503})

    _, found = run_incident(agent, breach())

    assert data(found, "verification.failed")["status"] == "down"
    assert pages(world) == [("assistant-team", "error"), ("assistant-team", "critical")]


def test_a_resolved_breach_resolves_the_pages_and_fails_back(
    world: SandboxStack, agent: RunningService
) -> None:
    world.gateway.failing_regions["eu-west-1"] = 503
    alert = breach()
    incident_id, opened = run_incident(agent, alert)
    assert data(opened, "diagnosis.made")["kind"] == "endpoint_isolated"
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    world.gateway.failing_regions.clear()

    resolved = agent.wait_alert(agent.post_alert(dict(alert, status="Healthy")).json()["alert_id"])

    assert resolved["incident_id"] == incident_id
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "eu-west-1"
    assert [a["status"] for a in world.pagerduty.snapshot()["alerts"]] == ["resolved"]
    found = events(agent, incident_id)
    kinds = [e.kind for e in found]
    started = next(
        i
        for i, e in enumerate(found)
        if "move support-bot back from backup-region to primary" in e.data
    )
    assert kinds[started + 1] == "action.succeeded"
    thread = [m for m in world.slack.snapshot()["messages"] if m["thread_ts"]]
    assert "Move support-bot back from backup-region to primary: done" in thread[-1]["text"]


def test_a_deployment_in_the_window_proposes_a_rollback_and_does_not_fail_over(
    world: SandboxStack, agent: RunningService
) -> None:
    world.openai.model(CHAT_MODEL).rules = {}  # the new prompt makes it answer wrongly
    deployed = (datetime.now(UTC) - timedelta(minutes=20)).isoformat()
    httpx.post(
        f"{agent.url}/events/deployments",
        headers=agent.auth,
        json={
            "service": DEMO_SERVICE,
            "kind": "prompt",
            "version": "p-42",
            "previous_version": "p-41",
            "model_id": DEMO_SERVICE,
            "deployed_at": deployed,
        },
    ).raise_for_status()

    _, found = run_incident(agent, breach())

    diagnosis = data(found, "diagnosis.made")
    assert diagnosis["kind"] == "suspect_change"
    assert diagnosis["change"]["version"] == "p-42"
    proposed = data(found, "action.proposed")
    assert proposed["summary"] == "proposed rollback of prompt p-42 to p-41"
    assert world.gateway.history == []
    assert pages(world) == []
    assert "suspect_change" in world.slack.snapshot()["messages"][-1]["text"]


def test_a_breach_in_one_region_only_is_segment_only(
    world: SandboxStack, agent: RunningService
) -> None:
    _, found = run_incident(agent, breach(dimensions={"region": "ap-south-1"}))

    assert data(found, "diagnosis.made")["kind"] == "segment_only"
    assert data(found, "diagnosis.made")["component"] == "region=ap-south-1"
    assert pages(world) == []
    assert world.gateway.history == []


def test_noisy_logs_about_a_healthy_vector_db_do_not_mislead(
    world: SandboxStack, agent: RunningService
) -> None:
    alert = breach()
    seed_demo_logs(world, DEMO_SERVICE, alert["model_version"], datetime.now(UTC))
    world.gateway.failing_regions["eu-west-1"] = 503

    _, found = run_incident(agent, alert)

    diagnosis = data(found, "diagnosis.made")
    assert diagnosis["kind"] == "endpoint_isolated"
    dependency = next(c for c in diagnosis["candidates"] if c["kind"] == "dependency_degraded")
    assert any("vector" in line for line in dependency["evidence_against"])
    assert ("search-platform", "error") not in pages(world)


def test_repeated_alerts_make_one_incident_and_one_investigation(
    world: SandboxStack, agent: RunningService
) -> None:
    alert = breach()
    first, _ = run_incident(agent, alert)
    for value in (5100, 5200, 5300):
        again = agent.wait_alert(
            agent.post_alert(dict(alert, current_value=value)).json()["alert_id"]
        )
        assert again["incident_id"] == first

    found = events(agent, first)
    assert [e.kind for e in found].count("runbook.matched") == 1
    assert [e.kind for e in found].count("alert.grouped") == 3


def test_the_analyst_proposal_outside_the_runbook_is_discarded(
    world: SandboxStack, agent: RunningService
) -> None:
    world.openai.model(ANALYST_MODEL).default = ToolCall(
        "submit_analysis",
        {
            "hypothesis": {
                "summary": "the primary region is flaky",
                "suspected_component": "endpoint",
                "confidence": 0.4,
                "evidence_refs": [],
            },
            "proposal": {
                "action": "failover",
                "target": "backup-region",
                "rationale": "move traffic away",
            },
        },
    )

    _, found = run_incident(agent, breach(dimensions={}))

    assert data(found, "diagnosis.made")["kind"] == "no_fault_found"
    discarded = data(found, "analyst.proposal_discarded")
    assert "'failover' is not allowed" in discarded["summary"]
    assert world.gateway.history == []
    assert pages(world) == []  # no_fault_found pages at warning: Slack only
    assert len(world.openai.received(model=ANALYST_MODEL)) == 1
