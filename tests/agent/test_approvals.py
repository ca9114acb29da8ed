"""Approvals in Slack end to end: the request, the click, the one action, expiry, refusals.

RELIABILITY cases 2 (one click, one action), 6 (expiry means deny) and 7 (only approvers
approve) run here against the emulators: the Slack emulator posts the real interaction payload,
signed with the app's signing secret, to the service's /slack/interactions.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from agent.approvals.message import APPROVE_ACTION, REJECT_ACTION
from agent.approvals.models import Approval
from audit.models import AuditEvent
from audit.service import verify_chain
from sandbox.slack import click, interaction
from sandbox.stack import DEMO_SERVICE, SandboxStack
from tests.conftest import RunningService, ServiceFactory, sandbox_overrides
from tests.sample import arize_alert

SIGNING_SECRET = secrets.token_hex(16)
APPROVER = "U0ALICE"

RUNBOOK = """\
name: approval-latency
version: 7
description: Fail over only once a person approves.
match: {{metrics: [latency_p95], services: [support-bot]}}
probes:
  vector_db: {{timeout_seconds: 5}}
  embeddings: {{timeout_seconds: 5}}
  endpoint: {{timeout_seconds: 10}}
actions:
  dependency_degraded: {{page: {{severity: error}}}}
  endpoint_isolated:
    failover: {{target: backup-region, approval: required}}
  no_fault_found: {{notify: {{severity: warning}}}}
failback: {failback}
approval:
  ttl_seconds: {ttl}
  approvers: {approvers}
  on_timeout: {{action: page, severity: critical}}
"""


@pytest.fixture
def world(catalog_world: SandboxStack) -> SandboxStack:
    """A fresh sandbox whose endpoint fails in eu-west-1, so the runbook wants a failover."""
    catalog_world.gateway.failing_regions["eu-west-1"] = 503
    return catalog_world


def start_agent(
    world: SandboxStack,
    start_service: ServiceFactory,
    folder: Path,
    *,
    ttl: int = 600,
    approvers: str = f"[{APPROVER}, S0SREONCALL]",
    failback: str = "auto",
) -> RunningService:
    runbooks = folder / f"runbooks-{secrets.token_hex(3)}"
    runbooks.mkdir()
    (runbooks / "approval.yaml").write_text(
        RUNBOOK.format(ttl=ttl, approvers=approvers, failback=failback)
    )
    return start_service(
        **sandbox_overrides(world),
        catalog_file=world.catalog_path,  # type: ignore[attr-defined]
        runbooks_dir=runbooks,
        slack_signing_secret=SIGNING_SECRET,
        approver_token="approver-" + secrets.token_hex(12),
    )


def wait_for(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def request_message(world: SandboxStack) -> dict[str, Any]:
    """Wait for the approval request in Slack (the message with buttons) and return it."""

    def find() -> dict[str, Any] | None:
        for message in world.slack.snapshot()["messages"]:
            blocks = message.get("blocks") or []
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            if any(b.get("type") == "actions" for b in blocks):
                return dict(message, blocks=blocks)
        return None

    found: dict[str, Any] = wait_for(find, what="the approval request in Slack")
    return found


def send(agent: RunningService, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return click(f"{agent.url}/slack/interactions", SIGNING_SECRET, payload, **kwargs)


def incident_events(agent: RunningService) -> list[AuditEvent]:
    with Session(agent.engine) as session:
        query = select(AuditEvent).where(AuditEvent.incident_id.is_not(None))  # type: ignore[union-attr]
        return list(session.exec(query.order_by(AuditEvent.seq)))  # type: ignore[arg-type]


def kinds(agent: RunningService) -> list[str]:
    return [e.kind for e in incident_events(agent)]


def approval_row(agent: RunningService) -> Approval:
    with Session(agent.engine) as session:
        [row] = session.exec(select(Approval)).all()
        return row


def finished(agent: RunningService, alert_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = agent.wait_alert(alert_id, timeout=1)
        return body if body.get("incident_run_state") == "completed" else None

    result: dict[str, Any] = wait_for(done, what="the run to complete")
    return result


def approval_waits(agent: RunningService) -> float:
    """Return how many approved waits /metrics has observed (its histogram's count)."""
    text = httpx.get(f"{agent.url}/metrics", timeout=5).text
    prefix = 'remediator_approval_wait_seconds_count{outcome="approved"} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix) :]) if lines else 0.0


def test_a_failover_waits_for_approval_then_runs_once_on_the_approvers_click(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path)
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    message = request_message(world)

    # The request says what, where, who and until when; nothing has moved yet.
    text = json.dumps(message["blocks"])
    for expected in (
        "fail over support-bot to backup-region (us-east-1)",
        "Blast radius",
        "<@U0ALICE>",
        "Expires",
    ):
        assert expected in text
    assert world.gateway.history == []
    wait_for(lambda: agent.wait_alert(alert_id, timeout=1)["incident_run_state"] == "waiting")

    waits_before = approval_waits(agent)
    answer = send(agent, interaction(message, APPROVE_ACTION, APPROVER))
    assert answer.status_code == 200 and answer.json()["outcome"] == "approved"
    finished(agent, alert_id)
    assert approval_waits(agent) == waits_before + 1

    assert len(world.gateway.history) == 1
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    row = approval_row(agent)
    assert (row.status, row.decided_by, row.decided_via) == ("approved", APPROVER, "slack")
    seen = kinds(agent)
    assert seen.index("approval.requested") < seen.index("approval.approved")
    assert seen.index("approval.approved") < seen.index("action.started")
    approved = next(e for e in incident_events(agent) if e.kind == "approval.approved")
    assert approved.actor == f"slack:{APPROVER}"
    assert json.loads(approved.data)["approved_by"] == APPROVER
    edited = world.slack.message(message["ts"])
    assert edited is not None and edited.get("edited")
    assert "Approved" in json.dumps(edited["blocks"]) and "<@U0ALICE>" in json.dumps(
        edited["blocks"]
    )
    assert "actions" not in json.dumps(edited["blocks"]).replace("Actions", "")
    with Session(agent.engine) as session:
        assert verify_chain(
            session=session, key=agent.settings.audit_key.get_secret_value().encode()
        ).ok


def test_a_second_click_and_a_slack_retry_change_nothing(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path)
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    payload = interaction(request_message(world), APPROVE_ACTION, APPROVER)

    first = send(agent, payload)
    again = send(agent, payload)
    retried = send(agent, payload, retry_num=1)
    finished(agent, alert_id)

    assert [r.status_code for r in (first, again, retried)] == [200, 200, 200]
    assert [r.json()["outcome"] for r in (first, again, retried)] == [
        "approved",
        "duplicate",
        "duplicate",
    ]
    assert len(world.gateway.history) == 1
    assert kinds(agent).count("approval.approved") == 1
    assert kinds(agent).count("approval.duplicate") == 2
    assert kinds(agent).count("action.started") == 1
    duplicates = [
        json.loads(e.data) for e in incident_events(agent) if e.kind == "approval.duplicate"
    ]
    assert duplicates[1]["slack_retry"] == "1"


def test_only_a_listed_approver_or_group_member_may_approve(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    world.slack.usergroups["S0SREONCALL"] = ["U0CAROL"]
    agent = start_agent(world, start_service, tmp_path)
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    message = request_message(world)

    stranger = send(agent, interaction(message, APPROVE_ACTION, "U0MALLORY"))
    assert stranger.status_code == 200
    assert stranger.json()["outcome"] == "refused"
    assert "U0MALLORY is not an approver" in stranger.json()["reason"]
    refused = next(e for e in incident_events(agent) if e.kind == "approval.refused")
    assert json.loads(refused.data)["user"] == "U0MALLORY"
    assert approval_row(agent).status == "pending"
    assert world.gateway.history == []

    member = send(agent, interaction(message, APPROVE_ACTION, "U0CAROL"))
    assert member.json()["outcome"] == "approved"
    finished(agent, alert_id)
    assert approval_row(agent).decided_by == "U0CAROL"
    assert len(world.gateway.history) == 1


def test_a_click_whose_digest_is_not_the_planned_action_is_refused(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path)
    agent.post_alert(arize_alert(model_id=DEMO_SERVICE))
    payload = interaction(request_message(world), APPROVE_ACTION, APPROVER)
    value = json.loads(payload["actions"][0]["value"])
    payload["actions"][0]["value"] = json.dumps(dict(value, digest="0" * 64))

    answer = send(agent, payload)

    assert answer.json()["outcome"] == "refused"
    assert "digest mismatch" in answer.json()["reason"]
    assert approval_row(agent).status == "pending"
    assert world.gateway.history == []


def test_an_empty_approvers_list_means_nobody_and_takes_the_timeout_branch(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path, approvers="[]")
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    finished(agent, alert_id)
    row = approval_row(agent)
    # No button is offered; a forged click carrying the right id and digest is still refused.
    [posted] = [m for m in world.slack.snapshot()["messages"] if m["ts"] == row.slack_ts]
    assert '"actions"' not in json.dumps(posted["blocks"])
    forged = interaction(
        dict(
            posted,
            blocks=[
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": APPROVE_ACTION,
                            "value": json.dumps({"approval_id": str(row.id), "digest": row.digest}),
                        }
                    ],
                }
            ],
        ),
        APPROVE_ACTION,
        APPROVER,
    )

    answer = send(agent, forged)

    assert answer.json()["outcome"] == "refused"
    assert "not an approver" in answer.json()["reason"]
    assert row.status == "expired" and "nobody may approve" in str(row.reason)
    assert world.gateway.history == []
    assert [t["payload"]["severity"] for t in world.pagerduty.triggers()] == ["critical"]


def test_expiry_denies_takes_the_timeout_branch_and_refuses_a_late_click(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path, ttl=2)
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    message = request_message(world)

    finished(agent, alert_id)  # nobody clicks: the timer resumes the run at expiry

    row = approval_row(agent)
    assert row.status == "expired" and row.decided_by is None
    assert world.gateway.history == []
    assert [t["payload"]["severity"] for t in world.pagerduty.triggers()] == ["critical"]
    edited = world.slack.message(message["ts"])
    assert edited is not None
    assert "Expired" in json.dumps(edited["blocks"]) and "NOT taken" in edited["text"]
    late = send(agent, interaction(message, APPROVE_ACTION, APPROVER))
    assert late.json()["outcome"] == "refused" and "expired" in late.json()["reason"]
    assert "approval.expired" in kinds(agent)
    assert world.gateway.history == []


def test_a_rejection_takes_no_action_and_says_who_rejected(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path)
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    message = request_message(world)

    answer = send(agent, interaction(message, REJECT_ACTION, APPROVER))
    finished(agent, alert_id)

    assert answer.json()["outcome"] == "rejected"
    assert world.gateway.history == []
    not_taken = next(e for e in incident_events(agent) if e.kind == "action.not_taken")
    assert "rejected by U0ALICE" in json.loads(not_taken.data)["summary"]
    edited = world.slack.message(message["ts"])
    assert edited is not None and "Rejected" in json.dumps(edited["blocks"])


def test_a_click_after_a_restart_resumes_the_paused_run(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    first = start_agent(world, start_service, tmp_path)
    alert_id = first.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    message = request_message(world)
    wait_for(lambda: first.wait_alert(alert_id, timeout=1)["incident_run_state"] == "waiting")
    # A new service on the same database, with the same secrets: the old one is gone.
    first.stop()
    second = start_service(**first.settings.model_dump(exclude_unset=True))

    answer = send(second, interaction(message, APPROVE_ACTION, APPROVER))
    finished(second, alert_id)

    assert answer.json()["outcome"] == "approved"
    assert len(world.gateway.history) == 1


def test_decisions_over_http_go_through_the_same_checks(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path)
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    request_message(world)
    approval_id = wait_for(lambda: agent.count(Approval) and approval_row(agent).id)
    token = agent.settings.approver_token
    assert token is not None
    auth = {"Authorization": f"Bearer {token.get_secret_value()}"}
    url = f"{agent.url}/approvals/{approval_id}"

    assert httpx.post(url, json={"decision": "approve", "as": "U0X"}).status_code == 401
    stranger = httpx.post(url, json={"decision": "approve", "as": "U0MALLORY"}, headers=auth)
    assert stranger.status_code == 403
    bad = httpx.post(url, json={"decision": "maybe", "as": APPROVER}, headers=auth)
    assert bad.status_code == 422
    unknown = httpx.post(
        f"{agent.url}/approvals/{uuid.uuid4()}",
        json={"decision": "approve", "as": APPROVER},
        headers=auth,
    )
    assert unknown.status_code == 404
    ok = httpx.post(url, json={"decision": "approve", "as": APPROVER}, headers=auth)
    assert ok.status_code == 200 and ok.json()["approval"]["status"] == "approved"
    finished(agent, alert_id)
    assert len(world.gateway.history) == 1
    assert approval_row(agent).decided_via == "api"


def failback_request(world: SandboxStack, after: str) -> dict[str, Any]:
    """Wait for the failback's request: a message with buttons other than the failover's."""

    def find() -> dict[str, Any] | None:
        for message in world.slack.snapshot()["messages"]:
            if message[
                "ts"
            ] != after and "move support-bot back from backup-region to primary" in message.get(
                "text", ""
            ):
                blocks = message.get("blocks") or []
                blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
                if any(b.get("type") == "actions" for b in blocks):
                    return dict(message, blocks=blocks)
        return None

    found: dict[str, Any] = wait_for(find, what="the failback request in Slack")
    return found


def test_a_failback_waits_for_its_own_approval_after_the_resolution(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path, failback="approval")
    alert = arize_alert(model_id=DEMO_SERVICE)
    alert_id = agent.post_alert(alert).json()["alert_id"]
    failover = request_message(world)
    send(agent, interaction(failover, APPROVE_ACTION, APPROVER))
    finished(agent, alert_id)
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    world.gateway.failing_regions.clear()

    agent.post_alert(dict(alert, status="Healthy"))
    request = failback_request(world, after=failover["ts"])
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"  # not before approval
    answer = send(agent, interaction(request, APPROVE_ACTION, APPROVER))

    assert answer.json()["outcome"] == "approved"
    wait_for(lambda: world.gateway.routes[DEMO_SERVICE]["region"] == "eu-west-1", what="failback")
    wait_for(lambda: agent.wait_alert(alert_id, timeout=1)["incident_run_state"] == "completed")
    assert len(world.gateway.history) == 2
    assert send(agent, interaction(request, APPROVE_ACTION, APPROVER)).json()["outcome"] == (
        "duplicate"
    )
    time.sleep(0.5)
    assert len(world.gateway.history) == 2
    edited = world.slack.message(request["ts"])
    assert (
        edited is not None
        and "Move support-bot back from backup-region to primary: done"
        in json.dumps(edited["blocks"])
    )


def test_a_failback_nobody_approves_expires_and_leaves_the_route_alone(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    agent = start_agent(world, start_service, tmp_path, failback="approval", ttl=3)
    alert = arize_alert(model_id=DEMO_SERVICE)
    alert_id = agent.post_alert(alert).json()["alert_id"]
    failover = request_message(world)
    send(agent, interaction(failover, APPROVE_ACTION, APPROVER))
    finished(agent, alert_id)
    world.gateway.failing_regions.clear()

    agent.post_alert(dict(alert, status="Healthy"))
    failback_request(world, after=failover["ts"])
    wait_for(
        lambda: any(
            "not taken: expired" in json.loads(e.data).get("summary", "")
            for e in incident_events(agent)
            if e.kind == "action.not_taken"
        ),
        what="the failback to expire",
    )

    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    assert len(world.gateway.history) == 1
    wait_for(lambda: agent.wait_alert(alert_id, timeout=1)["incident_run_state"] == "completed")


def test_without_slack_the_cli_approves_through_the_same_checks(
    world: SandboxStack,
    start_service: ServiceFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    runbooks = tmp_path / "runbooks-cli"
    runbooks.mkdir()
    (runbooks / "approval.yaml").write_text(
        RUNBOOK.format(ttl=600, approvers=f"[{APPROVER}]", failback="auto")
    )
    overrides = {k: v for k, v in sandbox_overrides(world).items() if not k.startswith("slack_")}
    agent = start_service(
        **overrides,
        catalog_file=world.catalog_path,
        runbooks_dir=runbooks,  # type: ignore[attr-defined]
    )
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    wait_for(lambda: agent.wait_alert(alert_id, timeout=1)["incident_run_state"] == "waiting")
    row = approval_row(agent)
    for name, value in {
        "REMEDIATOR_ENV": "dev",
        "REMEDIATOR_DATABASE_URL": agent.settings.database_url,
        "REMEDIATOR_AUDIT_KEY": agent.settings.audit_key.get_secret_value(),
        "REMEDIATOR_WEBHOOK_TOKEN": agent.settings.webhook_token.get_secret_value(),
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    listed = runner.invoke(app, ["approvals"])
    stranger = runner.invoke(app, ["approve", str(row.id), "--as", "U0MALLORY"])
    approved = runner.invoke(app, ["approve", str(row.id), "--as", APPROVER])
    again = runner.invoke(app, ["approve", str(row.id), "--as", APPROVER])
    finished(agent, alert_id)

    assert (
        str(row.id) in listed.output and "fail over to backup-region (us-east-1)" in listed.output
    )
    assert stranger.exit_code == 1 and "U0MALLORY is not an approver" in stranger.output
    assert (
        approved.exit_code == 0
        and "approved: fail over to backup-region (us-east-1)" in approved.output
    )
    assert again.exit_code == 0 and "nothing changed" in again.output
    assert len(world.gateway.history) == 1
    assert approval_row(agent).decided_via == "cli"
    dry_runs = [e for e in incident_events(agent) if e.kind == "notification.dry_run"]
    assert len(dry_runs) == 2  # the request, then the summary: nothing again on resume


PAGE_AND_FAILOVER = """\
name: page-while-asking
version: 1
description: Page at once; fail over only once a person approves.
match: {metrics: [latency_p95], services: [support-bot]}
probes:
  endpoint: {timeout_seconds: 10}
actions:
  endpoint_isolated:
    failover: {target: backup-region, approval: required}
    page: {severity: critical}
approval:
  ttl_seconds: 600
  approvers: [U0ALICE]
  on_timeout: {action: page, severity: critical}
"""


def test_an_action_that_needs_no_approval_is_taken_before_the_run_waits_for_one(
    world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "page-while-asking.yaml").write_text(PAGE_AND_FAILOVER)
    agent = start_service(
        **sandbox_overrides(world),
        catalog_file=world.catalog_path,  # type: ignore[attr-defined]
        runbooks_dir=runbooks,
        slack_signing_secret=SIGNING_SECRET,
    )
    alert_id = agent.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    message = request_message(world)
    wait_for(lambda: agent.wait_alert(alert_id, timeout=1)["incident_run_state"] == "waiting")

    # While the failover waits for a person, the critical page has already gone out; nothing moved.
    assert [t["payload"]["severity"] for t in world.pagerduty.triggers()] == ["critical"]
    assert world.gateway.history == []

    answer = send(agent, interaction(message, APPROVE_ACTION, APPROVER))
    assert answer.status_code == 200 and answer.json()["outcome"] == "approved"
    finished(agent, alert_id)

    # The approved failover follows once; the page is not sent again.
    assert len(world.gateway.history) == 1
    assert [t["payload"]["severity"] for t in world.pagerduty.triggers()] == ["critical"]
    seen = kinds(agent)
    assert seen.index("action.succeeded") < seen.index("approval.approved")
    assert seen.count("action.started") == 2
