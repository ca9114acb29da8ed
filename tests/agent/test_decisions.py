"""Decisions through the worker: which changes are suspects, who is paged, what is probed.

Each test stages one situation of the issue's wrong calls in a fresh sandbox with the catalog, and
checks what an on-call engineer would notice: the pages, the routes, the incidents and their names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.changes.models import DeploymentIn
from agent.changes.service import record_deployment
from agent.store.db import session_scope
from sandbox.stack import SandboxStack
from tests.agent.test_failback import (
    breach,
    events,
    incidents,
    make_parts,
    region,
    world,
)

__all__ = ["world"]  # the fixture


def test_a_change_in_another_environment_does_not_stop_the_failover_and_the_page(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path)
    with session_scope(parts.engine) as session:
        record_deployment(
            session=session,
            audit=parts.audit,
            change=DeploymentIn(
                service="support-bot",
                kind="prompt",
                version="p-staging",
                environment="staging",
                deployed_at=datetime.now(UTC) - timedelta(minutes=10),
            ),
        )

    parts.accept(**breach(environment="production"))
    parts.drain()

    [diagnosis] = events(parts, "diagnosis.made")
    assert diagnosis["kind"] == "endpoint_isolated"
    [changes] = [e for e in events(parts, "probe.completed") if e.get("tool") == "changes"]
    assert changes["status"] == "no_data"
    assert changes["asked"]["environment"] == "production"
    assert region(world) == "us-east-1"  # the failover the runbook asks for
    assert len(world.pagerduty.triggers()) == 1
    assert "action.proposed" not in parts.kinds()  # no rollback of a staging change


def test_an_unrecognised_metric_gets_the_built_in_policy_and_the_service_probes(
    world: SandboxStack, tmp_path: Path
) -> None:
    parts = make_parts(world, tmp_path)

    parts.accept(**breach(metric="llm_requests_total", monitor_name="RagIndexStale"))
    parts.drain()

    [matched] = events(parts, "runbook.matched")
    assert matched["runbook"] == "builtin-page-on-breach@1"
    assert sorted(matched["probes"]) == ["changes", "embeddings", "endpoint", "logs", "vector_db"]
    [diagnosis] = events(parts, "diagnosis.made")
    assert diagnosis["kind"] == "endpoint_isolated"  # found by the service's endpoint probe
    teams = {key: team for team, key in world.team_keys.items()}
    assert [teams.get(t["routing_key"], "on-call") for t in world.pagerduty.triggers()] == [
        "assistant-team"
    ]
    assert incidents(parts)[0].service == "support-bot"


def test_every_owner_of_a_failing_dependency_is_paged_once_with_its_own_key(
    world: SandboxStack, tmp_path: Path
) -> None:
    world.gateway.failing_regions.clear()
    world.vectordb.fail_next(503, times=1000)
    world.openai.model("text-embedding-3-small").fail_next(503, times=1000)
    parts = make_parts(world, tmp_path)

    parts.accept(**breach())
    parts.drain()

    [diagnosis] = events(parts, "diagnosis.made")
    assert diagnosis["kind"] == "dependency_degraded"
    assert sorted(diagnosis["dependencies"]) == ["embeddings", "vector_db"]
    # The diagnosis says who owns each failing dependency, so the thread names whom to call.
    assert diagnosis["owners"] == {"vector_db": "search-platform", "embeddings": "ml-platform"}
    assert "search-platform for vector_db" in diagnosis["summary"]
    assert "ml-platform for embeddings" in diagnosis["summary"]
    teams = {key: team for team, key in world.team_keys.items()}
    pages = [(teams[t["routing_key"]], t["dedup_key"]) for t in world.pagerduty.triggers()]
    [incident] = incidents(parts)
    assert sorted(pages) == [
        ("ml-platform", f"remediator/incident/{incident.id}/ml-platform"),
        ("search-platform", f"remediator/incident/{incident.id}/search-platform"),
    ]

    parts.accept(**breach(current_value=9000))  # grouped: no second page to anyone
    parts.accept(**breach(status="Healthy"))
    parts.drain()

    assert len(world.pagerduty.triggers()) == 2
    resolved = [
        e["dedup_key"]
        for e in world.pagerduty.snapshot()["accepted"]
        if e["event_action"] == "resolve"
    ]
    assert sorted(resolved) == sorted(key for _, key in pages)


def test_a_service_named_in_the_alert_is_its_own_incident_and_named_in_the_thread(
    world: SandboxStack, tmp_path: Path
) -> None:
    world.gateway.failing_regions.clear()
    parts = make_parts(world, tmp_path)

    parts.accept(**breach(service="support-bot", model_id="sb-canary"))
    parts.accept(**breach(service="billing-bot", model_id="sb-canary"))
    parts.drain()

    found = incidents(parts)
    assert len(found) == 2
    assert {i.service for i in found} == {"support-bot", "billing-bot"}
    assert any(i.title.startswith("latency_p95_ms breach on billing-bot") for i in found)
    headers = [m["text"] for m in world.slack.snapshot()["messages"] if not m["thread_ts"]]
    assert any("breach on support-bot (model sb-canary" in text for text in headers)
