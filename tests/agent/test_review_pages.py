"""The review pages in real headless Chromium: sign in, find the incident, read its timeline."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.stack import SandboxStack
from tests.conftest import RunningService, ServiceFactory, sandbox_overrides, seed_demo_logs
from tests.sample import arize_alert

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
# The machine is offline: keep Chromium from reaching for Google's services at start-up.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWER = secrets.token_urlsafe(24)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def incident(start_service: ServiceFactory, sandbox: SandboxStack) -> tuple[RunningService, str]:
    running = start_service(viewer_token=VIEWER, **sandbox_overrides(sandbox))
    alert = arize_alert()
    seed_demo_logs(sandbox, alert["model_id"], alert["model_version"], datetime.now(UTC))
    done = running.wait_alert(running.post_alert(alert).json()["alert_id"])
    return running, done["incident_id"]


def test_a_reviewer_signs_in_and_reads_the_incident_timeline(
    browser: Any, incident: tuple[RunningService, str], tmp_path: Path
) -> None:
    running, incident_id = incident
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    refused: list[str] = []  # what the Content-Security-Policy blocked: nothing on our pages
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    requests_outside: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(running.url) else requests_outside.append(r.url),
    )

    page.goto(f"{running.url}/ui/incidents")
    assert page.url.endswith("/ui/login")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert "That is not the viewer token." in page.content()
    page.fill("#token", VIEWER)
    page.click("button[type=submit]")

    page.wait_for_url("**/ui/incidents")
    assert "Audit chain verified" in page.inner_text("[data-testid=chain-status]")
    rows = page.locator("[data-testid=incidents] tbody tr")
    assert rows.count() == 1
    rows.first.locator("a").click()

    page.wait_for_url(f"**/ui/incidents/{incident_id}")
    timeline = page.inner_text("[data-testid=timeline]")
    for step in (
        "alert.received",
        "incident.opened",
        "probe.completed",
        "decision.made",
        "action.succeeded",
        "notification.sent",
        "run.completed",
    ):
        assert step in timeline
    assert "vector store query timed out" in timeline
    # The decision line says what happened; the plan is shown apart, as planned.
    assert page.inner_text("[data-testid=decision]") == (
        "What happened: page on-call at critical: done."
    )
    assert "page at critical" in page.inner_text("[data-testid=planned]")
    assert page.inner_text("[data-testid=diagnosis]") != "none yet"
    assert "Audit chain verified" in page.inner_text("[data-testid=chain-status]")
    page.screenshot(
        path=os.environ.get("REVIEW_SCREENSHOT", str(tmp_path / "timeline.png")), full_page=True
    )
    assert requests_outside == []
    # The stylesheet (a file of its own, allowed by the policy) is applied.
    header = page.eval_on_selector("header.top", "e => getComputedStyle(e).backgroundColor")
    assert header == "rgb(29, 36, 48)"
    assert refused == []

    page.click("[data-testid=sign-out]")
    page.wait_for_url("**/ui/login")
    page.goto(f"{running.url}/ui/incidents/{incident_id}")
    assert page.url.endswith("/ui/login")  # signed out: the timeline needs signing in again
    page.fill("#token", VIEWER)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/incidents")
    page.goto(f"{running.url}/ui/incidents/{incident_id}")

    page.click("text=Markdown review")
    assert "# Post-incident review:" in page.inner_text("body")


def test_pages_without_a_session_send_people_to_sign_in(
    incident: tuple[RunningService, str],
) -> None:
    running, incident_id = incident
    answer = httpx.get(f"{running.url}/ui/incidents/{incident_id}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login"
