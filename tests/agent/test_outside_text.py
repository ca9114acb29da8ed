"""Outside text is inert: no mention or link in Slack, no HTML in exports, links only to http(s)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.approvals.message import decided_message, request_message
from agent.approvals.models import Approval, ApprovalStatus
from agent.graph.nodes.report import summary_message
from agent.outside_text import http_url, mrkdwn, mrkdwn_link, plain, slack_mention
from tests.agent.blockkit import texts

CONTROL = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0EVIL>",
    "<@W0EVIL|eve>",
    "<!subteam^S0EVIL>",
    "<#C0SECRET>",
    "<https://evil.example/login|Reset your password>",
    "<mailto:eve@example.com|mail>",
    "&lt;!channel&gt;",
]
# A Slack control sequence: a mention, a broadcast, a channel or a link.
LIVE = re.compile(r"<[@!#][^>]*>|<[a-z][a-z0-9+.-]*:[^>]*>", re.IGNORECASE)


def slack_texts(text: str, blocks: list[dict[str, Any]]) -> list[str]:
    # Every text object, nested ones too (fields, context elements, buttons).
    return texts(text, blocks)


@pytest.mark.parametrize("sequence", CONTROL)
def test_mrkdwn_escapes_every_control_sequence(sequence: str) -> None:
    out = mrkdwn(f"before {sequence} after")

    assert "<" not in out and ">" not in out
    assert not LIVE.search(out)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        "/ui/incidents",
        "https:evil.example",
        "ftp://files.example/x",
        "https://evil.example/a b",
        'https://evil.example/"onmouseover="x',
        "https://evil.example\\@good.example",
        None,
        42,
    ],
)
def test_only_absolute_http_urls_are_links(url: Any) -> None:
    assert http_url(url) is None
    assert "<" not in mrkdwn_link(url, "Arize monitor")


@pytest.mark.parametrize(
    "url",
    ["https://app.arize.com/monitors/1?x=1&y=2", "http://grafana.internal:3000/d/abc"],
)
def test_http_urls_are_links(url: str) -> None:
    assert http_url(url) == url
    assert mrkdwn_link(url, "x").startswith("<http")


@pytest.mark.parametrize(
    "url",
    [
        "https://app.arize.example/m|<!channel>",
        "https://app.arize.example/m><!channel>",
        "https://app.arize.example/m?a=1&b=<@U0EVIL>",
        "https://app.arize.example/m|Reset%20your%20password",
    ],
)
def test_a_crafted_url_cannot_break_out_of_the_link(url: str) -> None:
    link = mrkdwn_link(url, "Arize monitor <!here>")

    # Exactly one link: the service's own, whose label is its own.
    assert re.fullmatch(r"<https://[^<>|]+\|Arize monitor &lt;!here&gt;>", link), link


def test_mentions_are_built_only_from_slack_ids() -> None:
    assert slack_mention("U0ALICE") == "<@U0ALICE>"
    assert slack_mention("S0ONCALL") == "<!subteam^S0ONCALL>"
    assert slack_mention("alice> <!channel") == "alice&gt; &lt;!channel"
    assert slack_mention("!channel") == "!channel"


def test_plain_text_for_pagerduty_has_no_angle_brackets() -> None:
    assert plain("<!channel> <@U1>") == "\u2039!channel\u203a \u2039@U1\u203a"


def hostile_state() -> dict[str, Any]:
    bad = " ".join(CONTROL)
    return {
        "incident_id": str(uuid.uuid4()),
        "runbook": f"rb {bad}",
        "breach": {
            "status": "triggered",
            "monitor_id": f"m {bad}",
            "metric": f"latency {bad}",
            "model_id": f"bot {bad}",
            "environment": bad,
            "segment": {bad: bad},
            "url": f"https://app.arize.example/m|{bad}",
        },
        "findings": [{"probe": "logs", "status": "degraded", "summary": f"log line: {bad}"}],
        "diagnosis": {"kind": "no_fault_found", "summary": bad},
        "analysis": {"hypothesis": {"summary": bad}, "proposal_allowed": False},
        "actions": [{"kind": "page", "status": "failed", "summary": f"PagerDuty said {bad}"}],
        "verification": {"status": "failed", "summary": bad},
    }


def test_the_incident_summary_mentions_nobody_and_links_only_its_own() -> None:
    state = hostile_state()

    text, blocks = summary_message(state, "https://remediator.example")

    for body in slack_texts(text, blocks):
        links = LIVE.findall(body)
        assert all(link.startswith("<https://") for link in links), links
    # The crafted monitor URL (it holds spaces) is not linked; the audit trail's link is ours.
    links = [m for body in slack_texts(text, blocks) for m in LIVE.findall(body)]
    assert links == [
        f"<https://remediator.example/ui/incidents/{state['incident_id']}|Audit trail>"
    ]


def test_a_non_http_monitor_url_is_not_linked() -> None:
    state = hostile_state()
    state["breach"]["url"] = "javascript:alert(1)"

    _, blocks = summary_message(state, None)

    assert "javascript" not in str(blocks)


def approval(status: ApprovalStatus, decided_by: str | None = None) -> Approval:
    now = datetime.now(UTC)
    return Approval(
        incident_id=uuid.uuid4(),
        action_key="k",
        kind="failover",
        target="backup <!channel>",
        params={"team": "<@U0EVIL>"},
        runbook="rb@1",
        digest="d" * 64,
        approvers=["U0ALICE", "<!channel>", "S0ONCALL"],
        status=status,
        requested_at=now,
        expires_at=now + timedelta(minutes=10),
        decided_by=decided_by,
        decided_at=now if decided_by else None,
        decided_via="api" if decided_by else None,
        reason="<!here> because" if decided_by else None,
    )


def test_an_approval_request_mentions_only_its_approvers() -> None:
    bad = " ".join(CONTROL)

    text, blocks = request_message(
        approval(ApprovalStatus.pending),
        title=f"breach {bad}",
        diagnosis=bad,
        evidence=[bad],
        blast_radius=bad,
    )

    live = [m for body in slack_texts(text, blocks) for m in LIVE.findall(body)]
    assert sorted(set(live)) == ["<!subteam^S0ONCALL>", "<@U0ALICE>"]


def test_a_decided_approval_names_a_non_slack_decider_as_text() -> None:
    text, blocks = decided_message(
        approval(ApprovalStatus.rejected, decided_by="eve <!channel>"),
        title="<!here>",
        blast_radius="<@U0EVIL>",
        next_step="<!channel>",
    )

    assert [m for body in slack_texts(text, blocks) for m in LIVE.findall(body)] == []
