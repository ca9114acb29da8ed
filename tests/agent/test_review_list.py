"""The incident list's sorting and filtering (server side), and the story the review pages tell."""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.review.story import tell
from audit.models import AuditEvent
from runbooks.schema import ActionKind
from tests.conftest import RunningService, ServiceFactory
from tests.sample import arize_alert

VIEWER = secrets.token_urlsafe(24)


@contextmanager
def viewer(running: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url, timeout=10) as client:
        answer = client.post("/ui/login", data={"token": VIEWER}, follow_redirects=False)
        assert answer.status_code == 303
        yield client


def column(html: str, name: str) -> list[str]:
    cells = re.findall(rf'<td data-col="{name}"[^>]*>(.*?)</td>', html, flags=re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("sort=peak", "sort: 'peak' is not one of opened, status, service, metric, diagnosis"),
        ("order=sideways", "order: 'sideways' is not one of asc, desc"),
        ("status=exploded", "status: 'exploded' is not one of open, resolved (or empty: any)"),
        ("diagnosis=gremlins", "diagnosis: 'gremlins' is not one of dependency_degraded"),
        ("action=reboot", "action: 'reboot' is not one of " + ", ".join(get_args(ActionKind))),
        ("severity=loud", "severity: 'loud' is not one of info, warning, error, critical, none"),
        ("service=a%00b", "service: the text"),
        ("metric=" + "m" * 513, "metric: at most 512 characters (got 513)"),
        ("sort=metric&sort=service", "sort: give it once"),
        ("severity=%3Cscript%3E", "severity: '<script>' is not one of"),
    ],
)
def test_a_bad_sort_or_filter_is_a_400_saying_what_is_allowed(
    start_service: ServiceFactory, query: str, words: str
) -> None:
    running = start_service(viewer_token=VIEWER)
    with viewer(running) as client:
        answer = client.get(f"/ui/incidents?{query}")
    assert answer.status_code == 400, answer.text
    assert words in html.unescape(answer.text)
    assert "<script>" not in answer.text  # what was sent is shown escaped
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


LIST_PARAMS = (
    "sort",
    "order",
    "status",
    "service",
    "model",
    "metric",
    "diagnosis",
    "action",
    "severity",
)
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=600)
CHOICES = st.sampled_from(["", "none", "critical", "page", "segment_only", "metric", "desc"])


def test_no_list_query_gets_a_5xx(start_service: ServiceFactory) -> None:
    running = start_service(viewer_token=VIEWER)
    running.wait_alert(running.post_alert(arize_alert()).json()["alert_id"])
    with viewer(running) as client:

        @settings(max_examples=60, deadline=None, database=None)
        @given(st.lists(st.tuples(st.sampled_from(LIST_PARAMS), CHOICES | ANY_TEXT)))
        def one(params: list[tuple[str, str]]) -> None:
            answer = client.get("/ui/incidents", params=params)
            assert answer.status_code in (200, 400), (params, answer.text[:300])
            if answer.status_code == 400:
                assert 'data-testid="problems"' in answer.text

        one()


def test_without_a_session_a_bad_query_still_sends_people_to_sign_in(
    start_service: ServiceFactory,
) -> None:
    running = start_service(viewer_token=VIEWER)
    answer = httpx.get(f"{running.url}/ui/incidents?sort=peak", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"


def test_the_list_sorts_and_filters_by_metric_diagnosis_actions_and_severity(
    start_service: ServiceFactory,
) -> None:
    check_the_list(start_service(viewer_token=VIEWER))


@pytest.mark.postgres
def test_the_list_reads_the_stories_on_postgresql(
    start_service: ServiceFactory, postgres_url: str
) -> None:
    check_the_list(start_service(viewer_token=VIEWER, database_url=postgres_url))


def check_the_list(running: RunningService) -> None:
    """Two incidents of two metrics; no pager is configured, so the built-in page is dry."""
    for metric in ("latency_p95_ms", "error_rate"):
        alert = arize_alert(metric=metric, monitor_id=f"mon-{metric}", service="support")
        running.wait_alert(running.post_alert(alert).json()["alert_id"])

    with viewer(running) as client:
        listed = client.get("/ui/incidents").text
        by_metric = client.get("/ui/incidents?sort=metric&order=asc").text
        by_metric_desc = client.get("/ui/incidents?sort=metric&order=desc").text
        one_metric = client.get("/ui/incidents?metric=error_rate").text
        acted = client.get("/ui/incidents?action=page").text
        no_action = client.get("/ui/incidents?action=none&severity=none&service=support").text
        other = client.get("/ui/incidents?service=elsewhere").text

    assert sorted(column(listed, "metric")) == ["error_rate", "latency_p95_ms"]
    assert column(listed, "service") == ["support", "support"]
    assert column(by_metric, "metric") == ["error_rate", "latency_p95_ms"]
    assert column(by_metric_desc, "metric") == ["latency_p95_ms", "error_rate"]
    assert column(one_metric, "metric") == ["error_rate"]
    # A dry-run page (no pager configured) is not an action taken, and paged at no severity.
    assert column(acted, "metric") == []
    assert "No incident matches." in acted
    assert column(no_action, "actions") == ["none", "none"]
    assert column(no_action, "severity") == ["none", "none"]
    assert len(column(listed, "diagnosis")) == 2 and "—" not in column(listed, "diagnosis")
    assert column(other, "metric") == []


T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def events(*steps: tuple[str, str, dict[str, Any]]) -> list[AuditEvent]:
    return [
        AuditEvent(
            seq=seq,
            ts=T0 + timedelta(seconds=seq),
            actor=actor,
            kind=kind,
            data=json.dumps(data),
            prev_hash="",
            hash="",
        )
        for seq, (actor, kind, data) in enumerate(steps, start=1)
    ]


def test_an_approved_action_names_its_approver_and_a_missing_result_shows() -> None:
    story = tell(
        events(
            ("agent.decide", "decision.made", {"summary": "decided: failover", "plan": []}),
            (
                "approvals",
                "approval.requested",
                {"summary": "asked", "approval_id": "A1", "action_key": "I/failover/backup"},
            ),
            (
                "slack:U0BOB",
                "approval.approved",
                {
                    "summary": "failover approved by U0BOB via slack",
                    "approval_id": "A1",
                    "approved_by": "U0BOB",
                },
            ),
            (
                "agent.act",
                "action.started",
                {
                    "summary": "fail svc over to backup",
                    "action": "failover",
                    "idempotency_key": "I/failover/backup",
                },
            ),
        )
    )
    [failover] = story.actions
    assert failover.approved_by == "U0BOB"
    assert failover.status == "started"
    assert story.headline() == (
        "fail svc over to backup: started, no result recorded (approved by U0BOB)."
    )
    assert dict(story.lines())["Approvals"] == "failover approved by U0BOB via slack"
    assert story.taken() == ["failover"]


def test_only_what_follows_a_failed_verification_in_its_run_is_an_escalation() -> None:
    page = {"summary": "page team at critical (dedup_key k)", "action": "page"}
    paged = {"summary": "accepted", "asked": {"payload": {"severity": "critical"}}}
    story = tell(
        events(
            ("agent.verify", "verification.failed", {"summary": "endpoint: down"}),
            (
                "agent.verify",
                "action.escalated",
                {
                    "kind": "notify",
                    "severity": "critical",
                    "summary": "escalated in the Slack thread",
                },
            ),
            ("worker", "run.completed", {"summary": "done"}),
            ("agent.act", "action.started", page),
            ("agent.act", "action.succeeded", paged),
        )
    )
    notice, later_page = story.actions
    assert notice.escalation == "verification failed after the failover (endpoint: down)"
    assert later_page.escalation is None and later_page.what == "page team at critical"
    assert story.severity == "critical"
    assert [s.seq for s in story.escalations] == [2]
    assert story.headline().startswith("verification failed: endpoint: down; escalated in")
    assert "No action was taken" in tell(events()).headline()


def test_a_page_that_says_why_it_escalates_is_shown_with_its_own_reason() -> None:
    why = "the endpoint still fails after the failover"
    page = {"summary": "page team at critical", "action": "page", "reason": why}
    plain = {"summary": "page other at error", "action": "page", "severity": "error"}
    story = tell(
        events(
            ("agent.act", "action.started", page),
            ("agent.act", "action.succeeded", {"summary": "accepted"}),
            ("agent.act", "action.started", plain),
            ("agent.act", "action.succeeded", {"summary": "accepted"}),
        )
    )
    escalation, other = story.actions
    assert escalation.escalation == why  # no failed verification before it: the record says it
    assert other.escalation is None and other.severity == "error"
    assert [s.seq for s in story.escalations] == [escalation.seq]


def test_a_write_started_again_on_a_resume_is_one_step() -> None:
    started = {"summary": "fail svc over to backup", "action": "failover", "idempotency_key": "K"}
    story = tell(
        events(
            ("agent.act", "action.started", started),
            ("agent.act", "action.started", started),  # the run resumed after a crash
            ("agent.act", "action.succeeded", {"summary": "switched"}),
        )
    )
    [failover] = story.actions
    assert (failover.status, failover.result, failover.seq) == ("done", "switched", 1)
    assert story.taken() == ["failover"]
