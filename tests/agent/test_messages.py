"""What a responder reads: the Slack report, the page and its note, the approval requests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.approvals.message import decided_message, request_message
from agent.approvals.models import Approval, ApprovalStatus
from agent.graph.messages import (
    COMPLETE,
    SHORT_STEPS,
    evidence_label,
    incident_severity,
    page_details,
    page_links,
    page_note,
    summary_message,
)
from agent.outside_text import plain
from runbooks.library import load_runbooks
from runbooks.schema import DIAGNOSES, Runbook
from sandbox.server import EmulatorServer
from sandbox.slack import SlackState, create_slack_app
from tests.agent.blockkit import problems, texts
from tools.chat.slack import SlackChat

SHIPPED = Path(__file__).parents[2] / "runbooks" / "library"
PUBLIC = "https://remediator.example"
TOKEN = "xoxb-test-token"
BACKUP = {"name": "backup-region", "provider": "openai", "model": "sb-v3", "region": "us-east-1"}


def shipped(name: str) -> Runbook:
    return next(r for r in load_runbooks(SHIPPED) if r.name == name)


def candidates(kind: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": other,
            "verdict": "chosen" if other == kind else "rejected",
            "evidence_for": [f"{other}: the strongest reason for"],
            "evidence_against": [f"{other}: the strongest reason against"],
        }
        for other in DIAGNOSES
    ]


def state(kind: str = "endpoint_isolated", severity: str = "critical", **extra: Any) -> Any:
    """Return a finished run's state: a breach, two log sources, a diagnosis, a page taken."""
    return {
        "incident_id": str(uuid.uuid4()),
        "runbook": "latency@1",
        "service": "support-bot",
        "breach": {
            "status": "triggered",
            "monitor_id": "m-1",
            "monitor_name": "Support bot p95 latency",
            "metric": "latency_p95",
            "value": 4870.0,
            "threshold": 2000.0,
            "operator": ">",
            "model_id": "support-bot",
            "model_version": "v7",
            "environment": "production",
            "segment": {"region": "eu-west-1"},
            "url": "https://app.arize.com/monitors/m-1",
        },
        "findings": [
            {
                "probe": "logs",
                "tool": "cloudwatch_logs",
                "source": "CloudWatch /llm/gateway",
                "status": "degraded",
                "summary": "42 error lines: upstream timeout",
            },
            {
                "probe": "logs",
                "tool": "gcp_logging",
                "source": "GCP acme-prod (k8s_container)",
                "status": "ok",
                "summary": "no errors",
            },
            {"probe": "endpoint", "status": "down", "summary": "3 of 3 prompts timed out"},
        ],
        "diagnosis": {
            "kind": kind,
            "summary": f"the {kind} sentence",
            "candidates": candidates(kind),
        },
        "plan": [{"kind": "page", "severity": severity, "status": "planned", "acted": True}],
        "actions": [
            {
                "kind": "page",
                "severity": severity,
                "team": "assistant-team",
                "status": "done",
                "summary": "paged assistant-team: PagerDuty accepted the trigger",
            }
        ],
        **extra,
    }


def block_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(texts("", blocks))


@pytest.mark.parametrize("kind", DIAGNOSES)
def test_each_diagnosis_gets_its_runbook_steps_in_a_valid_message(kind: str) -> None:
    steps = shipped("latency").next_steps.of(kind)
    run = state(kind)

    text, blocks = summary_message(run, PUBLIC, next_steps=steps)

    assert steps, f"the shipped latency runbook suggests nothing for {kind}"
    assert problems(blocks) == []
    body = block_text(blocks)
    assert f"`{kind}` — the {kind} sentence" in body
    assert "Suggested next steps" in body
    assert all(step.replace("&", "&amp;") in body for step in steps)
    assert f"Diagnosis: {kind}" in text


def test_a_critical_report_is_complete() -> None:
    run = state("endpoint_isolated", "critical")

    _, blocks = summary_message(run, PUBLIC, next_steps=["one", "two", "three", "four"])

    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"].startswith(":red_circle: CRITICAL · latency_p95 breach")
    fields = next(b["fields"] for b in blocks if b.get("fields"))
    facts = [f["text"] for f in fields]
    assert "*Monitor*\nSupport bot p95 latency" in facts
    assert "*Metric*\nlatency_p95" in facts
    assert "*Value*\n4870 &gt; threshold 2000" in facts
    assert "*Model*\nsupport-bot v7" in facts
    assert "*Segment*\nregion=eu-west-1" in facts
    body = block_text(blocks)
    assert "*Strongest evidence for:* endpoint_isolated: the strongest reason for" in body
    assert "*Strongest evidence against:* endpoint_isolated: the strongest reason against" in body
    assert "*Evidence*" in body and "4. four" in body
    assert "page assistant-team at critical: done — paged assistant-team" in body
    assert "<https://app.arize.com/monitors/m-1|Arize monitor>" in body
    assert f"<{PUBLIC}/ui/incidents/{run['incident_id']}|Audit trail>" in body
    assert blocks[-1]["type"] == "context"


@pytest.mark.parametrize("severity", ["warning", "info"])
def test_a_warning_report_is_short(severity: str) -> None:
    run = state("no_fault_found", severity)
    steps = [f"step {n}" for n in range(1, 6)]

    text, blocks = summary_message(run, PUBLIC, next_steps=steps)

    body = block_text(blocks)
    assert f" {severity.upper()} · latency_p95 breach" in blocks[0]["text"]["text"]
    assert not any(b.get("fields") for b in blocks)  # the title says what breached
    assert "*Evidence*" not in body and "Strongest evidence" not in body
    assert f"{SHORT_STEPS}. step {SHORT_STEPS}" in body
    assert f"{SHORT_STEPS + 1}. step" not in body
    assert f"…and {len(steps) - SHORT_STEPS} more in the runbook" in body
    assert len(blocks) < len(summary_message(state("no_fault_found"), PUBLIC, next_steps=steps)[1])
    assert text.startswith(f"{severity.upper()}: latency_p95 breach on support-bot")


def test_the_severity_is_the_highest_of_the_plan_and_the_actions() -> None:
    assert incident_severity(state(severity="warning")) == "warning"
    assert incident_severity(state(severity="error")) in COMPLETE
    assert incident_severity({"incident_id": "x", "breach": {}}) == "warning"


def test_a_failed_verification_and_its_escalation_are_reported() -> None:
    run = state("endpoint_isolated", "error")
    run["actions"] = [
        {
            "kind": "failover",
            "target": BACKUP,
            "status": "done",
            "summary": "failed over to backup-region: route switched",
        },
        {
            "kind": "page",
            "severity": "critical",
            "team": "assistant-team",
            "status": "done",
            "reason": "the endpoint still fails after the failover",
            "summary": "paged assistant-team: PagerDuty accepted the trigger",
        },
    ]
    run["verification"] = {"status": "failed", "summary": "2 of 3 prompts wrong"}

    text, blocks = summary_message(run, None)

    assert blocks[0]["text"]["text"].startswith(":red_circle: CRITICAL")
    body = block_text(blocks)
    assert "fail over support-bot to backup-region (us-east-1): done" in body
    assert "verification of the new route: FAILED — 2 of 3 prompts wrong" in body
    assert "page assistant-team at critical: done" in body
    assert "verification of the new route: FAILED" in text
    assert "Audit trail" not in body  # no public URL: no link to make


def test_a_rejected_approval_shows_as_not_taken() -> None:
    run = state("endpoint_isolated", "error")
    run["actions"].append(
        {
            "kind": "failover",
            "target": BACKUP,
            "status": "not_taken",
            "reason": "rejected by U0ALICE: not during the sale",
            "summary": "failover to backup-region [rejected] not taken: rejected by U0ALICE",
        }
    )

    text, blocks = summary_message(run, PUBLIC)

    said = "fail over support-bot to backup-region (us-east-1): not taken — rejected by U0ALICE"
    assert said + ": not during the sale" in block_text(blocks)
    assert said in text


def test_a_prompt_rollback_reads_as_the_label_it_moves() -> None:
    run = state("suspect_change", "warning")
    target = {"label": "production", "prompt_id": "P1", "from_version": "V2", "to_version": "V1"}
    run["actions"] = [
        {"kind": "rollback_prompt", "target": target, "status": "done", "summary": "moved"}
    ]

    _, blocks = summary_message(run, PUBLIC)

    said = "move the production label of support-bot prompt P1 back from version V2 to version V1"
    assert said in block_text(blocks)
    assert "{" not in block_text(blocks)


def test_a_proposed_rollback_names_the_change() -> None:
    run = state("suspect_change", "warning")
    run["actions"] = [
        {
            "kind": "rollback",
            "change_kind": "prompt",
            "version": "p-42",
            "previous_version": "p-41",
            "status": "proposed",
            "summary": "proposed rollback of prompt p-42 to p-41",
        }
    ]

    _, blocks = summary_message(run, PUBLIC)

    assert "roll back support-bot prompt p-42 to p-41: proposed" in block_text(blocks)


def test_the_fallback_text_is_complete_on_its_own() -> None:
    run = state("dependency_degraded", "error")

    text, _ = summary_message(run, PUBLIC, next_steps=["Check the vector DB", "Then this"])

    assert text == (
        "ERROR: latency_p95 breach on support-bot v7 (production): 4870 &gt; 2000 "
        "[region=eu-west-1] · monitor Support bot p95 latency. Diagnosis: dependency_degraded — "
        "the dependency_degraded sentence. Done: page assistant-team at error: done — paged "
        "assistant-team: PagerDuty accepted the trigger. Next: Check the vector DB"
    )


def test_evidence_names_its_source() -> None:
    run = state()
    legacy = {"probe": "logs", "asked": {"log_groups": ["/old/group"]}, "status": "ok"}

    _, blocks = summary_message(run, PUBLIC)

    body = block_text(blocks)
    assert "• logs (CloudWatch /llm/gateway): degraded — 42 error lines" in body
    assert "• logs (GCP acme-prod (k8s_container)): ok — no errors" in body
    assert "• endpoint: down" in body
    assert evidence_label(legacy) == "logs (CloudWatch /old/group)"
    assert evidence_label({"probe": "logs", "asked": {"project": "p"}}) == "logs (GCP p)"


def test_huge_evidence_stays_within_slack_limits() -> None:
    run = state(severity="critical")
    run["findings"] = [
        {"probe": "logs", "source": "x" * 300, "status": "degraded", "summary": "y" * 1000}
    ] * 200
    run["breach"]["monitor_name"] = "m" * 3000
    run["breach"]["segment"] = {f"k{i}": "v" * 500 for i in range(30)}

    text, blocks = summary_message(run, PUBLIC, next_steps=["z" * 300] * 10)

    assert problems(blocks) == []
    assert len(text) <= 3000 * 1.25  # escaped after clipping: `>` grows to `&gt;`
    assert "more (see the audit trail)" in block_text(blocks)


def test_the_page_carries_the_facts_and_links_only_http() -> None:
    run = state("dependency_degraded")
    run["breach"]["url"] = "javascript:alert(1)"

    details = page_details(run, PUBLIC, next_steps=["Check the vector DB"], reason="escalated")
    links = page_links(run, PUBLIC)

    assert details["diagnosis"] == "the dependency_degraded sentence"
    assert details["strongest evidence for"] == "dependency_degraded: the strongest reason for"
    assert details["next steps"] == ["Check the vector DB"]
    assert details["what breached"]["value"] == "4870 > threshold 2000"
    assert details["paged because"] == "escalated"
    assert (
        "logs (CloudWatch /llm/gateway): degraded — 42 error lines: upstream timeout"
        in (details["evidence"])
    )
    assert links == [{"href": f"{PUBLIC}/ui/incidents/{run['incident_id']}", "text": "Audit trail"}]


def test_the_page_note_is_the_whole_report_in_plain_text() -> None:
    run = state("dependency_degraded")
    run["diagnosis"]["summary"] = "vector_db is down <!channel>"

    note = plain(page_note(run, PUBLIC, next_steps=["Check the vector DB", "Tell its owner"]))

    assert "Diagnosis: dependency_degraded — vector_db is down ‹!channel›" in note
    assert "1. Check the vector DB\n2. Tell its owner" in note
    assert "- logs (GCP acme-prod (k8s_container)): ok — no errors" in note
    assert "What breached: monitor Support bot p95 latency; metric latency_p95" in note
    assert f"Audit trail: {PUBLIC}/ui/incidents/{run['incident_id']}" in note
    assert "<" not in note and "&lt;" not in note


def approval(kind: str = "failover", status: ApprovalStatus = ApprovalStatus.pending) -> Approval:
    now = datetime.now(UTC)
    return Approval(
        incident_id=uuid.uuid4(),
        action_key="k",
        kind=kind,
        target="backup-region",
        params={"target": BACKUP},
        runbook="latency@1",
        digest="d" * 64,
        approvers=["U0ALICE"],
        status=status,
        requested_at=now,
        expires_at=now + timedelta(minutes=10),
        decided_by="U0ALICE" if status != ApprovalStatus.pending else None,
        decided_at=now if status != ApprovalStatus.pending else None,
        decided_via="slack",
    )


def ask(request: Approval, title: str) -> tuple[str, list[dict[str, Any]]]:
    return request_message(
        request,
        title=title,
        diagnosis="endpoint_isolated — the endpoint is down",
        evidence=["logs (CloudWatch /llm/gateway): degraded — 42 error lines"],
        blast_radius="all traffic moves",
        service="support-bot",
    )


def test_an_approval_request_says_the_action_in_words_and_names_its_incident() -> None:
    first, second = approval(), approval()

    text, blocks = ask(first, "latency_p95 breach on support-bot")
    other, _ = ask(second, "latency_p95 breach on support-bot")

    words = "fail over support-bot to backup-region (us-east-1)"
    assert problems(blocks) == []
    assert blocks[0]["text"]["text"] == f"Approval needed: {words}"
    assert text == (
        f"Approval needed for incident {str(first.incident_id)[:8]} "
        f"(latency_p95 breach on support-bot): {words}"
    )
    assert text != other
    body = json.dumps(blocks)
    assert "{'name'" not in body and '{\\"name' not in body  # never a Python or JSON dict
    assert f"`{str(first.incident_id)[:8]}`" in body


def test_a_failback_request_says_what_it_does() -> None:
    text, blocks = ask(approval("failback"), "latency_p95 breach on support-bot")

    assert text.endswith(": move support-bot back from backup-region to primary")
    assert "failback" not in blocks[0]["text"]["text"]


def test_a_rejected_request_is_edited_to_say_so() -> None:
    rejected = approval(status=ApprovalStatus.rejected)

    text, blocks = decided_message(
        rejected,
        title="latency_p95 breach on support-bot",
        blast_radius="all traffic moves",
        next_step="fail over support-bot to backup-region (us-east-1) is NOT taken.",
        service="support-bot",
    )

    assert problems(blocks) == []
    assert blocks[0]["text"]["text"] == (
        "Rejected: fail over support-bot to backup-region (us-east-1)"
    )
    assert text.startswith(
        "Rejected: fail over support-bot to backup-region (us-east-1) for incident "
        f"{str(rejected.incident_id)[:8]}"
    )
    assert "*Rejected* by <@U0ALICE>" in block_text(blocks)


@pytest.fixture
def slack() -> Iterator[tuple[SlackState, SlackChat]]:
    state_ = SlackState(token=TOKEN, channels={"C1"}, burst=100)
    server = EmulatorServer(create_slack_app(state_)).start()
    yield state_, SlackChat(TOKEN, base_url=server.url + "/api/")
    server.stop()


def test_the_emulated_slack_accepts_every_message(slack: tuple[SlackState, SlackChat]) -> None:
    emulator, chat = slack
    huge = state(severity="critical")
    huge["findings"] = [{"probe": "logs", "status": "degraded", "summary": "y" * 2000}] * 50
    messages = [
        summary_message(state(kind, severity), PUBLIC, next_steps=["a step"] * 1)
        for kind in DIAGNOSES
        for severity in ("critical", "warning")
    ]
    messages += [summary_message(huge, PUBLIC, next_steps=[f"s{n}" for n in range(10)])]
    messages += [ask(approval(kind), "t") for kind in ("failover", "failback", "page")]

    results = [chat.post(channel="C1", text=text, blocks=blocks) for text, blocks in messages]

    assert [r.error for r in results if r.status != "ok"] == []
    assert len(emulator.messages) == len(messages)


def test_the_emulated_slack_refuses_blocks_slack_refuses(
    slack: tuple[SlackState, SlackChat],
) -> None:
    _, chat = slack
    wrong = [
        [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 11}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
    ]

    results = [chat.post(channel="C1", text="t", blocks=blocks) for blocks in wrong]

    assert [r.error for r in results] == ["invalid_blocks"] * 3
