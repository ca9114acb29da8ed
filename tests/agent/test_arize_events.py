"""Arize deliveries by event: the webhook id as idempotency key, prompt versions as changes,
other events audited and never breaches."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from agent.alerts.arize import DEFAULT_FIELD_PATHS, BreachMappingError, map_arize_payload
from agent.alerts.arize_events import event_of, kind_of, map_prompt_event
from agent.alerts.events import accept_event
from agent.alerts.models import Alert, WebhookDelivery
from agent.alerts.service import DeliveryMeta, accept_alert
from agent.changes.models import Deployment
from agent.changes.source import DeploymentChangeSource
from agent.store.audit_log import AuditLog
from agent.store.db import make_engine, session_scope, upgrade
from audit.models import AuditEvent
from sandbox.arize_deliveries import (
    PROMPT_CREATED,
    PROMPT_LABELED,
    PROMPT_UNLABELED,
    ArizeWebhook,
    encode,
    new_signing_secret,
    prompt_event,
    send,
)
from tests.conftest import RunningService, ServiceFactory
from tests.sample import arize_alert

KEY = b"k" * 32


def hook(running: RunningService) -> ArizeWebhook:
    token = running.settings.webhook_token.get_secret_value()
    return ArizeWebhook(f"{running.url}/webhooks/arize", token=token)


def counts(running: RunningService) -> tuple[int, int, int, int]:
    """(alerts, deployments, other deliveries, audit events)."""
    return (
        running.count(Alert),
        running.count(Deployment),
        running.count(WebhookDelivery),
        running.count(AuditEvent),
    )


def changes(running: RunningService) -> list[Deployment]:
    with Session(running.engine) as session:
        return list(session.exec(select(Deployment).order_by(col(Deployment.received_at))))


def audit_events(running: RunningService, kind: str) -> list[dict[str, Any]]:
    with Session(running.engine) as session:
        rows = session.exec(select(AuditEvent).where(col(AuditEvent.kind) == kind)).all()
    return [json.loads(row.data) for row in rows]


# --- the webhook id ---------------------------------------------------------------------------


def test_a_retry_is_a_duplicate_whatever_its_body_and_writes_nothing(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    alert = arize_alert()
    first = send(hook(running), alert, event="monitor.triggered", webhook_id="evt-retry")
    before = (running.count(Alert), len(audit_events(running, "alert.received")))

    # A retry of the same event: its body may differ (here a later timestamp).
    alert["triggered_at"] = datetime.now(UTC).isoformat()
    again = send(hook(running), alert, event="monitor.triggered", webhook_id="evt-retry")

    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["alert_id"] == first.json()["alert_id"]
    assert (running.count(Alert), len(audit_events(running, "alert.received"))) == before
    other = send(hook(running), alert, event="monitor.triggered", webhook_id="evt-other")
    assert other.status_code == 202  # another id, another body: another alert


def test_the_writer_process_stores_the_delivery_details_and_dedups_by_id(
    start_service: ServiceFactory,
) -> None:
    running = start_service(intake_writer="process")
    alert = arize_alert()

    first = send(hook(running), alert, event="monitor.triggered", webhook_id="evt-proc")
    alert["triggered_at"] = datetime.now(UTC).isoformat()
    again = send(hook(running), alert, event="monitor.triggered", webhook_id="evt-proc")

    assert (first.status_code, again.status_code) == (202, 200), again.text
    with Session(running.engine) as session:
        [stored] = session.exec(select(Alert)).all()
    assert (stored.webhook_id, stored.webhook_event, stored.auth_mode) == (
        "evt-proc",
        "monitor.triggered",
        "bearer",
    )


def test_deliveries_without_an_id_keep_the_body_as_their_key(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    webhook = hook(running)
    body = json.dumps(arize_alert()).encode()
    headers = webhook.headers(body, event=None, webhook_id=None)

    answers = [httpx.post(webhook.url, content=body, headers=headers) for _ in range(2)]

    assert [a.status_code for a in answers] == [202, 200]
    assert running.count(Alert) == 1


def test_concurrent_identical_deliveries_store_one_alert(start_service: ServiceFactory) -> None:
    running = start_service()
    webhook = hook(running)
    body = json.dumps(arize_alert()).encode()
    headers = webhook.headers(body, event="monitor.triggered", webhook_id="evt-storm")
    gate = threading.Barrier(4)

    def deliver(_: int) -> httpx.Response:
        gate.wait()
        return httpx.post(webhook.url, content=body, headers=headers, timeout=10)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(deliver, range(4)))

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 202]
    assert len({a.json()["alert_id"] for a in answers}) == 1
    assert running.count(Alert) == 1


def test_a_webhook_id_longer_than_stored_is_400(start_service: ServiceFactory) -> None:
    running = start_service()

    answer = send(hook(running), arize_alert(), webhook_id="x" * 300)

    assert answer.status_code == 400
    assert "X-Arize-Webhook-Id is 300 characters long" in answer.json()["detail"]
    assert running.rows() == (0, 0)


def migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once, each on a thread of its own; return results or exceptions."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        try:
            return call()
        except Exception as exc:  # reported, not raised: the test says what it expects
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def store_alert(url: str, body: dict[str, Any], webhook_id: str) -> bool:
    """Store an alert as one replica would: its own engine, its own transaction."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            _, created = accept_alert(
                session=session,
                audit=AuditLog(key=KEY),
                breach=map_arize_payload(body, DEFAULT_FIELD_PATHS),
                payload=body,
                body_sha256=uuid.uuid4().hex * 2,  # every copy's body differs
                meta=DeliveryMeta(webhook_id, "monitor.triggered", "hmac", "base64"),
            )
        return created
    finally:
        engine.dispose()


def check_replicas_store_one_alert(url: str) -> None:
    engine = migrated(url)
    body = arize_alert()

    outcomes = race([lambda: store_alert(url, body, "evt-replicas") for _ in range(3)])

    assert sorted(outcomes) == [False, False, True], outcomes
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Alert)).one() == 1
    # The database itself holds the key, whatever a writer checks first.
    row = {
        "source": "arize",
        "monitor_key": "m",
        "body_sha256": "f" * 64,
        "status": "triggered",
        "fingerprint": "f",
        "breach_json": "{}",
        "received_at": datetime.now(UTC),
        "state": "pending",
        "attempts": 0,
        "webhook_id": "evt-replicas",
    }
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.connection().execute(insert(Alert.__table__), [{**row, "id": uuid.uuid4()}])  # type: ignore[attr-defined]
    engine.dispose()


def test_replicas_store_one_alert_per_webhook_id_on_sqlite(tmp_path: Path) -> None:
    check_replicas_store_one_alert(f"sqlite:///{tmp_path / 'r.db'}")


@pytest.mark.postgres
def test_replicas_store_one_alert_per_webhook_id_on_postgres(postgres_url: str) -> None:
    check_replicas_store_one_alert(postgres_url)


def check_replicas_store_one_event(url: str) -> None:
    engine = migrated(url)
    body = prompt_event(PROMPT_LABELED, prompt_id="p-1", version_id="v-2", label="production")
    meta = DeliveryMeta("evt-prompt", PROMPT_LABELED, "bearer")
    prompt = map_prompt_event(PROMPT_LABELED, body)

    def store() -> bool:
        own = make_engine(url)
        try:
            receipt = accept_event(
                own,
                AuditLog(key=KEY),
                source="arize",
                meta=meta,
                body_sha256="a" * 64,
                payload=body,
                prompt=prompt,
                catalog=None,
            )
            return receipt.created
        finally:
            own.dispose()

    outcomes = race([store for _ in range(3)])

    assert sorted(outcomes) == [False, False, True], outcomes
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Deployment)).one() == 1
        assert session.exec(select(func.count()).select_from(WebhookDelivery)).one() == 1
    engine.dispose()


def test_replicas_record_one_prompt_event_per_webhook_id_on_sqlite(tmp_path: Path) -> None:
    check_replicas_store_one_event(f"sqlite:///{tmp_path / 'e.db'}")


@pytest.mark.postgres
def test_replicas_record_one_prompt_event_per_webhook_id_on_postgres(postgres_url: str) -> None:
    check_replicas_store_one_event(postgres_url)


# --- prompt version events as changes -----------------------------------------------------------


def test_a_prompt_labeled_into_production_is_recorded_as_a_change(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    body = prompt_event(
        PROMPT_LABELED,
        prompt_id="UHJvbXB0OjE6YWJjZA==",
        version_id="UHJvbXB0VmVyc2lvbjo3OmFiY2Q=",
        label="production",
        prompt_name="support-bot",
    )

    answer = send(hook(running), body, event=PROMPT_LABELED, webhook_id="evt-p1")

    assert answer.status_code == 202, answer.text
    assert answer.json()["recorded_as"] == "change"
    assert answer.json()["services"] == ["support-bot"]
    [change] = changes(running)
    assert (change.kind, change.service) == ("prompt", "support-bot")
    assert change.prompt_id == "UHJvbXB0OjE6YWJjZA=="
    assert change.version == "UHJvbXB0VmVyc2lvbjo3OmFiY2Q="
    assert (change.label, change.event) == ("production", PROMPT_LABELED)
    assert change.prompt_name == "support-bot"
    assert change.actor == "prompt-author@example.com"
    assert running.count(Alert) == 0  # never a breach
    [received] = audit_events(running, "arize.event.received")
    assert received["delivery"]["webhook_id"] == "evt-p1"
    assert received["delivery"]["auth_mode"] == "bearer"
    assert received["raw"]["data"]["label"] == "production"
    assert received["mapped_by"] == "name"
    [recorded] = audit_events(running, "deployment.recorded")
    assert recorded["prompt_id"] == change.prompt_id
    before = counts(running)

    again = send(hook(running), body, event=PROMPT_LABELED, webhook_id="evt-p1")

    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["delivery_id"] == answer.json()["delivery_id"]
    assert counts(running) == before


def write_catalog(path: Path) -> Path:
    path.write_text(
        "teams:\n  ml: {}\n"
        "services:\n"
        "  support-bot:\n    models: [support-model]\n    team: ml\n"
        "    arize_prompts: [prompt-shared, Support system prompt]\n"
        "  search-bot:\n    models: [search-model]\n    team: ml\n"
        "    arize_prompts: [prompt-shared]\n"
    )
    return path


def test_the_catalog_maps_a_prompt_to_the_services_that_list_it(
    start_service: ServiceFactory, tmp_path: Path
) -> None:
    running = start_service(catalog_file=write_catalog(tmp_path / "catalog.yaml"))

    by_name = send(
        hook(running),
        {"prompt_name": "Support system prompt", "version_id": "v1", "label": "production"},
        event=PROMPT_LABELED,
    )
    shared = send(
        hook(running),
        {"prompt_id": "prompt-shared", "version_id": "v9", "label": "production"},
        event=PROMPT_LABELED,
    )
    unlisted = send(
        hook(running),
        {"prompt_id": "prompt-x", "version_id": "v3", "label": "production"},
        event=PROMPT_LABELED,
    )

    assert by_name.json()["services"] == ["support-bot"], by_name.text
    assert shared.json()["services"] == ["support-bot", "search-bot"]
    assert unlisted.json()["services"] == ["prompt-x"]  # no catalog entry: its own name
    assert [c.service for c in changes(running)] == [
        "support-bot",
        "support-bot",
        "search-bot",
        "prompt-x",
    ]
    assert [e["mapped_by"] for e in audit_events(running, "arize.event.received")] == [
        "catalog",
        "catalog",
        "name",
    ]


def test_the_previous_version_is_the_last_one_recorded_with_that_label(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    webhook = hook(running)
    common = {"prompt_id": "p-7", "prompt_name": "support-bot"}

    send(webhook, {**common, "version_id": "v1", "label": "production"}, event=PROMPT_LABELED)
    send(webhook, {**common, "version_id": "v1", "label": "production"}, event=PROMPT_UNLABELED)
    send(webhook, {**common, "version_id": "v2", "label": "production"}, event=PROMPT_LABELED)
    said = send(
        webhook,
        {**common, "version_id": "v3", "label": "production", "previous_version_id": "v0"},
        event=PROMPT_LABELED,
    )

    assert said.status_code == 202
    assert [(c.version, c.previous_version) for c in changes(running)] == [
        ("v1", None),
        ("v1", None),
        ("v2", "v1"),
        ("v3", "v0"),  # what the body says wins
    ]


def test_only_a_label_moved_into_production_is_a_suspect_change(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    webhook = hook(running)
    ten_minutes_ago = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()

    def prompt(event: str, version: str, label: str | None) -> None:
        body = prompt_event(
            event,
            prompt_id="p-1",
            prompt_name="support-bot",
            version_id=version,
            label=label,
            occurred_at=ten_minutes_ago,
        )
        assert send(webhook, body, event=event).status_code == 202

    prompt(PROMPT_CREATED, "v2", None)
    prompt(PROMPT_LABELED, "v2", "staging")
    prompt(PROMPT_UNLABELED, "v1", "production")
    prompt(PROMPT_LABELED, "v2", "production")

    found = DeploymentChangeSource(running.engine).recent(
        service="support-bot", model_id=None, around=datetime.now(UTC), window_minutes=30
    )

    assert len(changes(running)) == 4  # every event is recorded...
    [suspect] = found.evidence["deployments"]  # ...one of them can have caused a breach
    assert suspect["kind"] == "prompt"
    assert (suspect["version"], suspect["previous_version"]) == ("v2", "v1")
    assert (suspect["prompt_id"], suspect["label"]) == ("p-1", "production")
    assert suspect["event"] == PROMPT_LABELED
    assert 9.5 <= suspect["minutes_before_breach"] <= 11
    other = DeploymentChangeSource(running.engine).recent(
        service="search-bot", model_id=None, around=datetime.now(UTC), window_minutes=30
    )
    assert other.evidence.get("deployments") is None  # another service's prompt


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"version_id": "v1", "label": "production"}, "prompt identity"),
        ({"prompt_id": "p", "label": "production"}, "prompt version id"),
        ({"prompt_id": "p", "version_id": "v1"}, "label"),
        ({"something": "else"}, "prompt identity"),
    ],
)
def test_a_prompt_event_without_its_fields_is_422_naming_them(
    start_service: ServiceFactory, body: dict[str, Any], missing: str
) -> None:
    running = start_service()

    answer = send(hook(running), body, event=PROMPT_LABELED)

    assert answer.status_code == 422, answer.text
    assert missing in answer.json()["detail"]
    assert any(missing in item for item in answer.json()["missing"])
    assert counts(running) == (0, 0, 0, 0)


# --- other events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event", ["evaluator.version.created", "online_task.run.failed", "dataset.something.new"]
)
def test_other_events_are_audited_and_never_breaches(
    start_service: ServiceFactory, event: str
) -> None:
    running = start_service()
    # Even a body that would map as a breach is not one when its event is not an alert.
    body = {**arize_alert(), "event": event}

    answer = send(hook(running), body, event=event, webhook_id="evt-o")
    again = send(hook(running), body, event=event, webhook_id="evt-o")

    assert answer.status_code == 202, answer.text
    assert answer.json()["recorded_as"] == "audited"
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert counts(running)[:3] == (0, 0, 1)
    [received] = audit_events(running, "arize.event.received")
    assert received["delivery"]["event"] == event
    assert received["raw"]["status"] == body["status"]
    assert received["outcome"] == "audited"


def test_the_event_may_come_from_the_body_and_alert_events_can_be_listed(
    start_service: ServiceFactory,
) -> None:
    running = start_service(arize_alert_events=["alert.fired"])
    webhook = hook(running)
    token = running.settings.webhook_token.get_secret_value()

    from_body = httpx.post(
        webhook.url,
        json={"event": "online_task.run.failed", "task": "t"},
        headers={"Authorization": token},
    )
    listed = send(webhook, arize_alert(), event="alert.fired")
    monitor = send(webhook, arize_alert(), event="monitor.alert.triggered")

    assert from_body.json()["recorded_as"] == "audited", from_body.text
    assert "alert_id" in listed.json()
    assert "alert_id" in monitor.json()
    assert running.count(Alert) == 2


# --- the mapping, unit ----------------------------------------------------------------------


def test_the_kind_of_a_delivery() -> None:
    assert kind_of(None) == "alert"
    assert kind_of("monitor.triggered") == "alert"
    assert kind_of("MONITOR_ALERT") == "alert"
    assert kind_of("alert.fired", ["alert.fired"]) == "alert"
    assert kind_of(PROMPT_LABELED) == "prompt"
    assert kind_of("evaluator.version.created") == "other"
    assert kind_of("anything.else") == "other"


def test_a_monitor_body_with_its_own_event_field_stays_an_alert() -> None:
    assert event_of(None, {"event": "triggered", "monitor_id": "m"}) is None
    assert event_of(None, {"event": PROMPT_LABELED}) == PROMPT_LABELED
    assert event_of(" prompt.version.created ", {"event": "x"}) == PROMPT_CREATED


@pytest.mark.parametrize(
    "body",
    [
        {"prompt_id": "P", "version_id": "V", "label": "production"},
        {"promptId": "P", "versionId": "V", "labelName": "production"},
        {"data": {"prompt": {"id": "P"}, "prompt_version": {"id": "V"}, "label": "production"}},
        {
            "event": PROMPT_LABELED,
            "data": {"prompt_version": {"id": "V", "prompt_id": "P"}},
            "label": {"name": "production"},
        },
        {"id": "V", "prompt_id": "P", "labels": ["production"]},  # a PromptVersion itself
        {
            "payload": {
                "version": {"id": "V", "prompt_id": "P", "labels": ["staging", "production"]},
                "label_name": "production",
            }
        },
    ],
)
def test_prompt_bodies_are_mapped_tolerantly(body: dict[str, Any]) -> None:
    change = map_prompt_event(PROMPT_LABELED, body)

    assert (change.prompt_id, change.version, change.label) == ("P", "V", "production")


def test_an_unreadable_time_falls_back_and_an_overlong_id_is_refused() -> None:
    base = {"prompt_id": "P", "version_id": "V", "label": "production"}
    assert map_prompt_event(PROMPT_LABELED, {**base, "timestamp": "yesterday"}).at is None
    with pytest.raises(BreachMappingError, match="version is longer"):
        map_prompt_event(PROMPT_LABELED, {**base, "version_id": "v" * 201})


def test_a_signed_event_replayed_under_another_id_is_a_duplicate(
    start_service: ServiceFactory,
) -> None:
    secret = new_signing_secret()
    running = start_service(arize_auth="hmac", arize_signing_secret=secret)
    webhook = ArizeWebhook(f"{running.url}/webhooks/arize", auth="hmac", signing_secret=secret)
    body = encode(prompt_event(PROMPT_LABELED, prompt_id="p", version_id="v", label="production"))
    headers = webhook.headers(body, event=PROMPT_LABELED, webhook_id="evt-signed")

    first = httpx.post(webhook.url, content=body, headers=headers)
    # The id header is not signed: a captured request resent under a new id is the same event.
    replay = httpx.post(
        webhook.url, content=body, headers={**headers, "X-Arize-Webhook-Id": "evt-forged"}
    )
    retry = send(webhook, body, event=PROMPT_LABELED, webhook_id="evt-signed")  # re-signed
    later = send(webhook, body, event=PROMPT_LABELED, webhook_id="evt-new", timestamp=1)

    assert first.status_code == 202, first.text
    assert [replay.status_code, retry.status_code] == [200, 200]
    assert replay.json()["delivery_id"] == first.json()["delivery_id"]
    assert later.status_code == 401  # a new id cannot revive an old signature either
    assert len(changes(running)) == 1
