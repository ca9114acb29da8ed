"""Deployments recorded by CI/CD, and the `changes` probe that finds them near a breach."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import Session, select

from agent.changes.source import DeploymentChangeSource
from audit.models import AuditEvent
from tests.conftest import RunningService, ServiceFactory

VIEWER = secrets.token_urlsafe(16)


@pytest.fixture
def running(start_service: ServiceFactory) -> RunningService:
    return start_service(viewer_token=VIEWER)


def post(running: RunningService, body: object, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else running.auth
    return httpx.post(f"{running.url}/events/deployments", json=body, headers=headers, timeout=10)


def test_a_deployment_is_recorded_audited_and_listed(running: RunningService) -> None:
    body = {
        "service": "support-bot",
        "kind": "prompt",
        "version": "p-42",
        "previous_version": "p-41",
        "model_id": "support-bot",
        "actor": "ci@example.com",
    }

    answer = post(running, body)

    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == "p-42"
    listed = httpx.get(
        f"{running.url}/events/deployments",
        params={"service": "support-bot"},
        headers={"Authorization": f"Bearer {VIEWER}"},
    ).json()
    assert [d["version"] for d in listed] == ["p-42"]
    with Session(running.engine) as session:
        event = session.exec(select(AuditEvent)).one()
    assert event.kind == "deployment.recorded"
    assert "prompt p-42 deployed to support-bot" in event.data
    assert event.actor == "[REDACTED:email]"
    assert "ci@example.com" not in event.data


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"service": "s", "kind": "model", "version": "1", "colour": "red"}, "colour"),
        ({"service": "s", "kind": "weights", "version": "1"}, "kind"),
        ({"service": "s", "kind": "model"}, "version"),
    ],
)
def test_bad_deployments_are_refused_and_change_nothing(
    running: RunningService, body: dict[str, str], words: str
) -> None:
    answer = post(running, body)
    assert answer.status_code == 422
    assert words in answer.json()["detail"]
    assert running.rows() == (0, 0)


def test_deployments_need_the_webhook_token(running: RunningService) -> None:
    answer = post(running, {"service": "s", "kind": "model", "version": "1"}, token="nope")
    assert answer.status_code == 401


def test_the_changes_probe_finds_deployments_in_the_window(running: RunningService) -> None:
    now = datetime.now(UTC)
    for minutes, version in ((200, "old"), (20, "recent")):
        post(
            running,
            {
                "service": "support-bot",
                "kind": "model",
                "version": version,
                "deployed_at": (now - timedelta(minutes=minutes)).isoformat(),
            },
        )
    source = DeploymentChangeSource(running.engine)

    found = source.recent(service="support-bot", model_id=None, around=now, window_minutes=60)
    none = source.recent(service="other", model_id=None, around=now, window_minutes=60)

    assert found.status == "ok"
    assert [d["version"] for d in found.evidence["deployments"]] == ["recent"]
    assert found.evidence["deployments"][0]["minutes_before_breach"] == pytest.approx(20, abs=0.2)
    assert none.status == "no_data"


def test_the_changes_probe_finds_only_changes_that_could_have_caused_the_breach(
    running: RunningService,
) -> None:
    now = datetime.now(UTC)
    for version, fields in (
        ("staging-only", {"environment": "staging"}),
        ("prod", {"environment": "Production"}),
        ("everywhere", {}),
        ("us-only", {"environment": "production", "region": "us-east-1"}),
        ("eu-only", {"environment": "production", "region": "eu-west-1"}),
        ("other-model", {"environment": "production", "model_id": "support-bot-v9"}),
        ("other-service", {"service": "billing-bot", "environment": "production"}),
    ):
        answer = post(
            running,
            {
                "service": "support-bot",
                "kind": "config",
                "version": version,
                "deployed_at": (now - timedelta(minutes=10)).isoformat(),
                **fields,
            },
        )
        assert answer.status_code == 201, answer.text
    source = DeploymentChangeSource(running.engine)

    found = source.recent(
        service="support-bot",
        model_id="support-bot",
        environment="production",
        region="eu-west-1",
        around=now,
        window_minutes=60,
    )
    staging = source.recent(
        service="support-bot",
        model_id="support-bot",
        environment="staging",
        region=None,
        around=now,
        window_minutes=60,
    )

    assert sorted(d["version"] for d in found.evidence["deployments"]) == [
        "eu-only",
        "everywhere",
        "prod",
    ]
    assert found.asked["environment"] == "production" and found.asked["region"] == "eu-west-1"
    assert sorted(d["version"] for d in staging.evidence["deployments"]) == [
        "everywhere",
        "staging-only",
    ]


@pytest.mark.parametrize(
    ("deployed_at", "words"),
    [
        ("2026-11-27T02:00:00", "timezone"),  # naive: which moment is it?
        ("0001-01-01T00:00:00+14:00", "out of range"),
        ("9999-12-31T23:59:59-14:00", "out of range"),
    ],
)
def test_a_deployment_time_without_offset_or_out_of_range_is_422(
    running: RunningService, deployed_at: str, words: str
) -> None:
    body = {"service": "s", "kind": "model", "version": "1", "deployed_at": deployed_at}
    answer = post(running, body)
    assert answer.status_code == 422, answer.text
    assert "deployed_at" in answer.json()["detail"] and words in answer.json()["detail"]
    assert running.rows() == (0, 0)


@pytest.mark.parametrize("field", ["service", "version", "description"])
def test_deployment_text_no_database_could_store_is_422(
    running: RunningService, field: str
) -> None:
    body = {"service": "s", "kind": "model", "version": "1", field: "a\u0000b"}
    answer = post(running, body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["detail"] and "NUL" in answer.json()["detail"]
    assert running.rows() == (0, 0)


def test_a_deployment_body_over_the_webhook_limit_is_413(start_service: ServiceFactory) -> None:
    running = start_service(max_body_bytes=4096)
    body = {"service": "s", "kind": "model", "version": "1", "description": "x" * 5000}
    answer = post(running, body)
    assert answer.status_code == 413
    assert "limit of 4096 bytes" in answer.json()["detail"]
    assert running.rows() == (0, 0)


@pytest.mark.parametrize(
    "since", ["2026-11-27T02:00:00", "0001-01-01T00:00:00+14:00", "99999-01-01T00:00:00Z"]
)
def test_listing_deployments_since_a_naive_or_extreme_time_is_422(
    running: RunningService, since: str
) -> None:
    answer = httpx.get(
        f"{running.url}/events/deployments",
        params={"since": since},
        headers={"Authorization": f"Bearer {VIEWER}"},
    )
    assert answer.status_code == 422, answer.text
    assert "since" in answer.json()["detail"]
