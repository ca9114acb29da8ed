"""The review pages in headless Chromium, for incidents made through the service's real paths.

Each incident here is made as the scenario and approval tests make theirs (the catalog, a runbook,
the emulators set to the situation, alerts over HTTP, a signed Slack click); the pages are then
read as a reviewer reads them. Screenshots are kept under `test-artifacts/review-pages/` (ignored
by git; `REVIEW_ARTIFACTS` moves them), and their paths printed.
"""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.approvals.message import REJECT_ACTION
from sandbox.slack import interaction
from sandbox.stack import DEMO_SERVICE, SandboxStack
from tests.agent.test_approvals import APPROVER, finished, request_message, send, start_agent
from tests.agent.test_intake import post_all
from tests.agent.test_review_pages import VIEWER, browser
from tests.agent.test_scenarios import agent, breach, run_incident
from tests.conftest import RunningService, ServiceFactory
from tests.sample import arize_alert

__all__ = ["agent", "browser"]  # fixtures used here, defined beside the tests they came with

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("REVIEW_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@pytest.fixture
def start_service(start_service: ServiceFactory) -> ServiceFactory:
    """The service as the other tests start it, with the review pages enabled."""

    def start(**overrides: Any) -> RunningService:
        return start_service(viewer_token=VIEWER, **overrides)

    return start


@pytest.fixture
def world(catalog_world: SandboxStack) -> SandboxStack:
    """A fresh sandbox with the catalog."""
    return catalog_world


def signed_in(browser: Any, running: RunningService) -> Any:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{running.url}/ui/login")
    page.fill("#token", VIEWER)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/incidents")
    return page


def keep(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact and print where it is."""
    path = ARTIFACTS / "review-pages" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    assert path.stat().st_size > 0
    return path


def cells(page: Any, column: str) -> list[str]:
    """Return the incident list's cells of one column, top to bottom."""
    return [c.strip() for c in page.locator(f"[data-col={column}]").all_inner_texts()]


def outcome(page: Any, label: str) -> str:
    return str(page.inner_text(f"[data-testid=outcome-{label}]"))


def test_a_failover_that_failed_verification_shows_its_escalation_and_failback(
    browser: Any, world: SandboxStack, agent: RunningService
) -> None:
    world.gateway.failing_regions.update({"eu-west-1": 503, "us-east-1": 503})
    alert = breach()
    incident_id, _ = run_incident(agent, alert)
    world.gateway.failing_regions.clear()
    agent.wait_alert(agent.post_alert(dict(alert, status="Healthy")).json()["alert_id"])
    page = signed_in(browser, agent)

    assert cells(page, "service") == ["support-bot"]
    assert cells(page, "metric") == ["latency_p95_ms"]
    assert cells(page, "diagnosis") == ["endpoint_isolated"]
    assert cells(page, "actions") == ["failover, page ×2, resolve, failback"]
    assert cells(page, "severity") == ["critical"]
    keep(page, "escalated-list")
    page.click(f"a[href='/ui/incidents/{incident_id}']")
    page.wait_for_url(f"**/ui/incidents/{incident_id}")

    decision = page.inner_text("[data-testid=decision]")
    assert decision.startswith(
        "What happened: fail support-bot over to backup-region (support-bot-v3 in us-east-1): done;"
        " page assistant-team at error: done; verification failed: endpoint: down"
    )
    assert decision.endswith("move support-bot back from backup-region to primary: done.")
    assert outcome(page, "verified").startswith("failed: endpoint: down — support-bot did not")
    assert outcome(page, "failed-back") == (
        "move support-bot back from backup-region to primary: done"
    )
    assert outcome(page, "approvals") == "none requested"
    # The second page sits beside the verification failure that caused it.
    [second] = page.locator("[data-testid=actions] tr:has([data-testid=escalation-reason])").all()
    row = second.inner_text()
    assert "page assistant-team at critical" in row
    assert (
        "Escalation: the endpoint still fails after the failover (verification failed: endpoint: "
        "down" in row
    )
    assert "PagerDuty accepted the trigger" in row
    escalations = page.inner_text("[data-testid=escalations]")
    assert (
        "page assistant-team at critical (done), because the endpoint still fails after the "
        "failover (verification failed: endpoint: down" in escalations
    )
    candidates = page.inner_text("[data-testid=candidates]")
    assert "endpoint_isolated" in candidates and "endpoint down: support-bot" in candidates
    assert "dependency_degraded" in candidates and "vector_db ok" in candidates
    keep(page, "escalated-incident")
    # The Markdown review and the JSON Lines export tell the same story, from the same source.
    bearer = {"Authorization": f"Bearer {VIEWER}"}
    export = f"{agent.url}/incidents/{incident_id}/export"
    markdown = httpx.get(export, params={"format": "md"}, headers=bearer, timeout=10).text
    kept = ARTIFACTS / "review-pages" / "escalated-incident.md"
    kept.write_text(markdown, encoding="utf-8")
    print(f"markdown review: {kept}")
    assert f"What happened: {decision.removeprefix('What happened: ')}" in markdown
    assert "## Escalations" in markdown
    assert "because the endpoint still fails after the failover (verification failed" in markdown
    [row] = [
        line for line in markdown.splitlines() if "| page | page assistant-team at critical" in line
    ]
    assert "— escalation: the endpoint still fails after the failover (verification failed" in row
    lines = httpx.get(export, params={"format": "json"}, headers=bearer, timeout=10).text
    story = json.loads(lines.splitlines()[0])["story"]
    assert f"What happened: {story['headline']}" == decision
    assert [s["escalation"] is not None for s in story["steps"]].count(True) == 1
    docs = os.environ.get("REVIEW_DOCS_SCREENSHOT")  # how docs/incident-page.png is made
    if docs:  # the top of the page, down to the escalations
        page.set_viewport_size({"width": 1280, "height": 1000})
        bottom = page.eval_on_selector("[data-testid=escalations]", "e => e.offsetTop + 60")
        page.screenshot(
            path=docs, clip={"x": 0, "y": 0, "width": 1280, "height": bottom}, full_page=True
        )


def test_a_storm_collapses_into_one_timeline_line_with_its_count(
    browser: Any, world: SandboxStack, agent: RunningService
) -> None:
    storm = [breach(current_value=5000 + i) for i in range(12)]
    # All at once, from a thread of their own (Playwright's loop runs in this one).
    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, post_all(agent, storm)).result()
    done = [agent.wait_alert(a.json()["alert_id"], timeout=60) for a in answers]
    [incident_id] = {d["incident_id"] for d in done}
    page = signed_in(browser, agent)
    page.goto(f"{agent.url}/ui/incidents/{incident_id}")

    groups = page.locator("[data-testid=collapsed-alerts]").all()
    assert groups, "no collapsed alert rows"
    shown = 0
    for group in groups:
        summary = group.locator("[data-testid=collapsed-count]")
        count = int(summary.inner_text().split(" ")[0])
        assert count >= 2 and "alert rows (" in summary.inner_text()
        inner = group.locator("table.inner tr")
        assert not inner.first.is_visible()  # collapsed until asked
        summary.click()
        assert inner.count() == count and inner.first.is_visible()
        shown += count
    timeline = page.locator("[data-testid=timeline] > tbody > tr").all_inner_texts()
    single = [line for line in timeline if "\talert.received\t" in line or "alert.grouped" in line]
    single = [line for line in single if "alert rows (" not in line]
    # 12 alerts: each received, and all but the first grouped into the incident the first opened.
    assert shown + len(single) == 12 + 11
    assert len(timeline) < 12 + 11
    assert "over 12 alert(s)" in page.inner_text("[data-testid=facts]")
    keep(page, "storm-incident")


def test_a_segment_only_incident_and_the_list_sorted_and_filtered(
    browser: Any, world: SandboxStack, agent: RunningService
) -> None:
    segment_id, _ = run_incident(agent, breach(dimensions={"region": "ap-south-1"}))
    quiet_id, _ = run_incident(agent, breach(monitor_id="mon-support-bot-latency-p95-all"))
    page = signed_in(browser, agent)

    assert sorted(cells(page, "diagnosis")) == ["no_fault_found", "segment_only"]
    page.click("[data-testid=sort-diagnosis]")  # newest first, then a click: descending
    assert cells(page, "diagnosis") == ["segment_only", "no_fault_found"]
    page.click("[data-testid=sort-diagnosis]")
    assert cells(page, "diagnosis") == ["no_fault_found", "segment_only"]
    page.select_option("select[name=diagnosis]", "segment_only")
    page.click("form.filters button[type=submit]")
    assert cells(page, "diagnosis") == ["segment_only"]
    assert "diagnosis=segment_only" in page.url and "sort=diagnosis" in page.url
    page.goto(f"{agent.url}/ui/incidents?severity=critical")
    assert page.inner_text("[data-testid=incidents] tbody") == "No incident matches."
    answer = page.goto(f"{agent.url}/ui/incidents?sort=peak&severity=loud")
    assert answer is not None and answer.status == 400
    problems = page.inner_text("[data-testid=problems]")
    assert "sort: 'peak' is not one of opened, status, service, metric, diagnosis" in problems
    assert "severity: 'loud' is not one of info, warning, error, critical, none" in problems

    page.goto(f"{agent.url}/ui/incidents/{segment_id}")
    assert "segment_only" in page.inner_text("[data-testid=diagnosis]")
    assert page.inner_text("[data-testid=segments]") == "region=ap-south-1"
    assert page.inner_text("[data-testid=decision]") == (
        "What happened: tell the Slack thread at warning: done."
    )
    assert outcome(page, "paged") == "nobody"
    assert outcome(page, "verified") == "nothing to verify (no failover)"
    assert page.inner_text("[data-testid=escalations]") == "No escalation."
    keep(page, "segment-only-incident")
    assert quiet_id != segment_id


def test_a_rejected_approval_says_who_rejected_and_that_nothing_was_done(
    browser: Any, world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> None:
    world.gateway.failing_regions["eu-west-1"] = 503
    running = start_agent(world, start_service, tmp_path)
    alert_id = running.post_alert(arize_alert(model_id=DEMO_SERVICE)).json()["alert_id"]
    send(running, interaction(request_message(world), REJECT_ACTION, APPROVER))
    incident_id = finished(running, alert_id)["incident_id"]
    page = signed_in(browser, running)

    assert cells(page, "actions") == ["none"]
    assert cells(page, "severity") == ["none"]
    page.goto(f"{running.url}/ui/incidents/{incident_id}")
    assert page.inner_text("[data-testid=decision]") == (
        "What happened: failover to backup-region [rejected] not taken: rejected by U0ALICE."
    )
    assert outcome(page, "done") == "nothing"
    assert outcome(page, "approvals") == (
        "fail over to backup-region (us-east-1) rejected by U0ALICE via slack"
    )
    planned = page.inner_text("[data-testid=planned]")
    assert planned.startswith("decided for endpoint_isolated under approval-latency@7:")
    assert planned.endswith("; after the approvals: failover rejected")
    rejected = page.locator("[data-testid=actions] tr.status-rejected").inner_text()
    assert "U0ALICE" in rejected and "rejected" in rejected
    assert world.gateway.history == []
    keep(page, "rejected-approval-incident")
