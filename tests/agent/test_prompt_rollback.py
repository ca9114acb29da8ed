"""rollback_prompt through the worker: the production label moves back in Arize, once.

The sandbox's Arize prompts emulator is driven through the real `arize` SDK. A prompt version
labeled into production 10 minutes before the breach is the suspect change; the runbook allows
rolling it back with approval; the label goes back to the version before, keeping that version's
other labels, and is read back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.approvals.models import Approval
from agent.approvals.service import decide
from agent.changes.models import DeploymentIn
from agent.changes.service import record_deployment
from agent.graph.prompts import arize_prompt_change, merged, verify_rollbacks
from agent.store.db import session_scope
from sandbox.arize.prompts import PromptsState, create_prompts_app
from sandbox.server import EmulatorServer
from sandbox.stack import SandboxStack
from tests.agent.test_failback import breach, events, pending
from tests.agent.test_worker import Clock, Parts
from tests.conftest import make_settings, sandbox_overrides
from tools.result import ToolResult, ToolStatus

os.environ.setdefault("ARIZE_LOG_ENABLE", "false")
pytest.importorskip("arize")

KEY = "ak-rollback"
RUNBOOK = """\
name: prompt-quality
version: 1
description: A prompt moved to production just before a breach is rolled back, with approval.
match: {{metrics: [latency_p95, quality_score], services: [support-bot]}}
probes:
  endpoint: {{timeout_seconds: 30}}
  changes: {{timeout_seconds: 10}}
actions:
  suspect_change:
{allowed}
    notify: {{severity: warning}}
failback: approval
approval: {{approvers: [U0ALICE]}}
"""
BOTH = "    rollback_prompt: {approval: required}\n    rollback: {approval: required}"


@pytest.fixture
def arize_prompts() -> Iterator[tuple[PromptsState, EmulatorServer]]:
    state = PromptsState(api_keys={KEY})
    server = EmulatorServer(create_prompts_app(state)).start()
    yield state, server
    server.stop()


def make_parts(
    world: SandboxStack,
    tmp_path: Path,
    server: EmulatorServer | None,
    allowed: str = BOTH,
) -> Parts:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "prompt.yaml").write_text(RUNBOOK.format(allowed=allowed))
    arize: dict[str, Any] = {}
    if server is not None:
        arize = {
            "arize_api_key": KEY,
            "arize_api_host": server.host,
            "arize_api_scheme": "http",
            "arize_api_port": server.port,
        }
    settings = make_settings(
        tmp_path,
        **sandbox_overrides(world),
        catalog_file=world.catalog_path,  # type: ignore[attr-defined]
        runbooks_dir=runbooks,
        worker_lease_seconds=120,
        **arize,
    )
    return Parts(settings, Clock())


def seed_prompt(state: PromptsState) -> tuple[str, str, str]:
    """v1 was production (and is `stable`); v2 (`staging`) was labeled production just now."""
    prompt = state.add_prompt("support-answer")
    v1 = state.add_version(prompt, commit_message="v1", labels=["production", "stable"])
    v2 = state.add_version(prompt, commit_message="v2", labels=["staging"])
    state.set_labels(v2, ["staging", "production"])
    return prompt, v1, v2


def deploy(
    parts: Parts, version: str, kind: str = "prompt", minutes_ago: float = 10, **extra: Any
) -> None:
    with session_scope(parts.engine) as session:
        record_deployment(
            session=session,
            audit=parts.audit,
            change=DeploymentIn(
                service="support-bot",
                kind=kind,  # type: ignore[arg-type]
                version=version,
                deployed_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
                **extra,
            ),
        )


def approve(parts: Parts, request: Approval, decision: str = "approve") -> None:
    with session_scope(parts.engine) as session:
        decide(
            session=session,
            audit=parts.audit,
            approval_id=request.id,
            user="U0ALICE",
            decision=decision,  # type: ignore[arg-type]
            digest=None,
            via="api",
        )


def staged(
    world: SandboxStack, tmp_path: Path, state: PromptsState, server: EmulatorServer | None
) -> tuple[Parts, Approval, str, str, str]:
    """Seed the prompt, record v2's move to production 10 min ago, run the breach: return the
    parts, the rollback's approval request, the prompt and its two versions."""
    prompt, v1, v2 = seed_prompt(state)
    parts = make_parts(world, tmp_path, server)
    deploy(parts, v2, previous_version=v1 if server is None else None)
    parts.accept(**breach())
    parts.drain()
    [request] = [a for a in pending(parts) if a.kind == "rollback_prompt"]
    return parts, request, prompt, v1, v2


def label_writes(state: PromptsState) -> list[dict[str, Any]]:
    return state.writes()


def test_an_approved_rollback_moves_production_back_keeping_the_labels(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    prompt, v1, v2 = seed_prompt(state)
    parts = make_parts(catalog_world, tmp_path, server)
    deploy(parts, v2)
    parts.accept(**breach())
    parts.drain()

    [diagnosis] = events(parts, "diagnosis.made")
    assert diagnosis["kind"] == "suspect_change"
    [request] = [a for a in pending(parts) if a.kind == "rollback_prompt"]
    assert request.params["target"]["to_version"] == v1
    assert request.params["target"]["from_version"] == v2
    assert label_writes(state) == []  # nothing moves before the approval
    assert "action.proposed" not in parts.kinds()  # the proposal became the action

    approve(parts, request)
    parts.drain()

    assert state.labeled(prompt, "production")["id"] == v1  # type: ignore[index]
    assert state.versions[v1]["labels"] == ["stable", "production"]  # stable kept
    assert state.versions[v2]["labels"] == ["staging"]
    [write] = label_writes(state)
    assert write["body"] == {"labels": ["stable", "production"]}
    [verified] = [e for e in events(parts, "verification.passed") if e.get("action")]
    assert verified["action"] == "rollback_prompt"
    [done] = [e for e in events(parts, "action.succeeded") if e.get("action")]
    assert done["idempotency_key"].endswith(request.target or "")

    # A second delivery of the breach, a retried run: nothing is written again.
    parts.accept(**breach(current_value=9000))
    parts.drain()
    assert len(label_writes(state)) == 1


def test_a_rejected_rollback_is_never_taken(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    parts, request, prompt, _, v2 = staged(catalog_world, tmp_path, state, server)
    approve(parts, request, "reject")
    parts.drain()
    assert label_writes(state) == []
    assert state.labeled(prompt, "production")["id"] == v2  # type: ignore[index]


def test_a_runbook_that_only_proposes_a_rollback_never_moves_a_label(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    prompt, _, v2 = seed_prompt(state)
    parts = make_parts(
        catalog_world, tmp_path, server, allowed="    rollback: {approval: required}"
    )
    deploy(parts, v2)
    parts.accept(**breach())
    parts.drain()
    assert "action.proposed" in parts.kinds()
    assert not [a for a in pending(parts) if a.kind == "rollback_prompt"]
    assert [r["method"] for r in state.requests] == []  # Arize not even read
    assert state.labeled(prompt, "production")["id"] == v2  # type: ignore[index]


def test_a_change_that_is_not_an_arize_prompt_version_stays_a_proposal(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    seed_prompt(state)
    parts = make_parts(catalog_world, tmp_path, server)
    deploy(parts, "support-bot-v4", kind="model")
    parts.accept(**breach())
    parts.drain()
    [proposed] = events(parts, "action.proposed")
    assert proposed["kind"] == "rollback"
    assert not [a for a in pending(parts) if a.kind == "rollback_prompt"]
    assert state.writes() == []


def test_without_an_arize_key_the_rollback_is_a_dry_run(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, _ = arize_prompts
    parts, request, prompt, _, v2 = staged(catalog_world, tmp_path, state, None)
    approve(parts, request)
    parts.drain()
    [dry] = [e for e in events(parts, "action.dry_run") if e.get("kind") == "rollback_prompt"]
    assert "would move production" in dry["summary"]
    assert state.labeled(prompt, "production")["id"] == v2  # type: ignore[index]


def test_a_write_that_landed_before_a_crash_is_not_repeated_on_resume(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    parts, request, prompt, v1, v2 = staged(catalog_world, tmp_path, state, server)
    run = parts.context
    plan_item = {
        "kind": "rollback_prompt",
        "approval": "required",
        "status": "planned",
        "target": request.params["target"],
    }
    incident_state: Any = {"incident_id": str(request.incident_id), "runbook": "prompt-quality@1"}
    from agent.graph.prompts import rollback_prompt

    first = rollback_prompt(run, incident_state, plan_item)
    again = rollback_prompt(run, incident_state, plan_item)  # a retry after the success
    assert first["status"] == again["status"] == "done"
    assert again["repeated"] is True
    assert len(state.writes()) == 1

    # The write landed but the run died before recording it: the label is read first.
    state.set_labels(v2, ["staging", "production"])
    other: Any = {"incident_id": str(request.incident_id), "runbook": "prompt-quality@1"}
    other_item = {**plan_item, "target": {**plan_item["target"], "name": "another key"}}
    state.set_labels(v1, ["stable", "production"])
    writes = len(state.writes())
    landed = rollback_prompt(run, other, other_item)
    assert landed["status"] == "done" and landed["labels_sent"] is None
    assert len(state.writes()) == writes
    assert state.labeled(prompt, "production")["id"] == v1  # type: ignore[index]


def test_a_label_someone_moved_since_is_left_alone(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    parts, request, prompt, _, _ = staged(catalog_world, tmp_path, state, server)
    v3 = state.add_version(prompt, commit_message="hotfix", labels=["production"])
    approve(parts, request)
    parts.drain()
    assert state.labeled(prompt, "production")["id"] == v3  # type: ignore[index]
    [refused] = [e for e in events(parts, "action.not_taken") if e.get("kind") == "rollback_prompt"]
    assert f"on version {v3} now" in refused["reason"]
    assert state.writes() == []


def test_only_arize_prompt_versions_are_rollback_targets() -> None:
    version = "UHJvbXB0VmVyc2lvbjo1OmFiY2Q="  # PromptVersion:5:abcd
    assert arize_prompt_change({"kind": "prompt", "version": version}) == {
        "prompt_id": None,
        "version_id": version,
        "previous_version": None,
    }
    assert arize_prompt_change({"kind": "model", "version": version}) is None
    assert arize_prompt_change({"kind": "prompt", "version": "v42"}) is None
    monitor = "TW9uaXRvcjo0MjphYmNk"  # Monitor:42:abcd: an id, of another kind
    assert arize_prompt_change({"kind": "prompt", "version": monitor}) is None
    named = arize_prompt_change(
        {"kind": "prompt", "version": "v42", "arize_version_id": "X", "arize_prompt_id": "P"}
    )
    assert named == {"prompt_id": "P", "version_id": "X", "previous_version": None}
    assert merged(["stable", "production"], "production") == ["stable", "production"]
    assert merged([], "production") == ["production"]


class StuckRegistry:
    """A registry whose label reads back on another version (a fake of our own protocol)."""

    name = "fake"

    def check(self) -> tuple[bool, str]:
        return True, "fake"

    def version_by_label(self, prompt_id: str, label: str) -> ToolResult:
        version = {"id": "elsewhere", "labels": [label]}
        return ToolResult(
            tool="fake", status=ToolStatus.ok, summary="", evidence={"version": version}
        )


def test_verify_fails_when_the_label_does_not_read_back_on_the_target() -> None:
    class Context:
        tools = type("Tools", (), {"prompts": StuckRegistry()})()

    action = {
        "kind": "rollback_prompt",
        "status": "done",
        "target": {"prompt_id": "P", "label": "production", "to_version": "V1"},
    }
    [check] = verify_rollbacks(Context(), {"actions": [action]})  # type: ignore[arg-type]
    assert check["status"] == "failed"
    assert "elsewhere" in check["summary"] and "NOT the rollback target" in check["summary"]


def rolled_back_then_resolved(
    world: SandboxStack, tmp_path: Path, state: PromptsState, server: EmulatorServer
) -> tuple[Parts, Approval, str, str, str]:
    """Roll v2 back to v1 (approved), then resolve: return the undo's failback request."""
    parts, request, prompt, v1, v2 = staged(world, tmp_path, state, server)
    approve(parts, request)
    parts.drain()
    assert state.labeled(prompt, "production")["id"] == v1  # type: ignore[index]
    parts.accept(**breach(status="Healthy"))
    parts.drain()
    [undo] = [a for a in pending(parts) if a.kind == "failback"]
    assert undo.params["target"]["from_version"] == v2
    return parts, undo, prompt, v1, v2


def test_a_rejected_undo_keeps_the_rollback_like_a_rejected_failback_keeps_a_failover(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    parts, undo, prompt, v1, _ = rolled_back_then_resolved(catalog_world, tmp_path, state, server)
    approve(parts, undo, "reject")
    parts.drain()
    assert state.labeled(prompt, "production")["id"] == v1  # type: ignore[index]
    assert len(state.writes()) == 1
    [kept] = [e for e in events(parts, "action.not_taken") if e.get("kind") == "failback"]
    assert f"it stays on {v1}" in kept["summary"]


def test_an_approved_undo_moves_the_label_back_once_keeping_labels(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    parts, undo, prompt, v1, v2 = rolled_back_then_resolved(catalog_world, tmp_path, state, server)
    approve(parts, undo)
    parts.drain()
    assert state.labeled(prompt, "production")["id"] == v2  # type: ignore[index]
    assert state.versions[v2]["labels"] == ["staging", "production"]
    assert state.versions[v1]["labels"] == ["stable"]
    assert [w["body"] for w in state.writes()] == [
        {"labels": ["stable", "production"]},
        {"labels": ["staging", "production"]},
    ]
    parts.drain()  # nothing left to do: the undo is settled, never repeated
    assert len(state.writes()) == 2


def test_the_agents_own_rollback_reported_as_a_change_is_never_rolled_back_again(
    catalog_world: SandboxStack,
    tmp_path: Path,
    arize_prompts: tuple[PromptsState, EmulatorServer],
) -> None:
    state, server = arize_prompts
    parts, request, prompt, v1, _ = staged(catalog_world, tmp_path, state, server)
    approve(parts, request)
    parts.drain()
    # Arize tells subscribers that v1 was labeled production: recorded as a prompt change.
    deploy(parts, v1, minutes_ago=1)
    parts.accept(**breach(monitor="mon-quality-2"))
    parts.drain()
    [_, second] = events(parts, "decision.made")
    [item] = [i for i in second["plan"] if i["kind"] == "rollback_prompt"]
    assert item["status"] == "impossible"
    assert "where incident" in item["reason"] and str(request.incident_id) in item["reason"]
    assert not [a for a in pending(parts) if a.kind == "rollback_prompt"]
    assert len(state.writes()) == 1
    assert state.labeled(prompt, "production")["id"] == v1  # type: ignore[index]
