"""POST /webhooks/arize authenticates Arize as it really sends: bearer, hmac or a custom header.

The deliveries are signed by sandbox/arize_deliveries.py, written from Arize's description and
not from the service's code, so each accepted signature shows the two agree.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from pydantic import ValidationError
from sqlmodel import Session, col, select

from agent.alerts.arize_auth import (
    AuthRefused,
    check_bearer,
    check_header,
    check_signature,
    signing_keys,
)
from agent.alerts.models import Alert
from agent.cli.common import load_settings
from agent.settings import Settings
from audit.models import AuditEvent
from sandbox.arize_deliveries import (
    KEY_FORMS,
    ArizeWebhook,
    KeyForm,
    encode,
    new_signing_secret,
    send,
    signature,
)
from tests.conftest import RunningService, ServiceFactory
from tests.sample import arize_alert

SECRET = new_signing_secret()
NOW = 1_800_000_000
BODY = json.dumps({"monitor_id": "m-1", "status": "triggered"}).encode()


def verify(
    body: bytes = BODY,
    *,
    signatures: list[str],
    timestamp: str | None = str(NOW),
    secret: str = SECRET,
    now: float = NOW,
) -> Any:
    return check_signature(secret, body, signatures=signatures, timestamp=timestamp, now=now)


def refusal(**kwargs: Any) -> str:
    with pytest.raises(AuthRefused) as caught:
        verify(**kwargs)
    return str(caught.value)


# --- hmac, as a function ---------------------------------------------------------------------


@pytest.mark.parametrize("key_form", KEY_FORMS)
def test_each_key_form_is_accepted_and_named(key_form: KeyForm) -> None:
    verified = verify(signatures=[signature(SECRET, NOW, BODY, key_form)])

    assert (verified.mode, verified.key_form) == ("hmac", key_form)


def test_the_three_key_forms_are_three_different_keys() -> None:
    keys = dict(signing_keys(SECRET))

    assert set(keys) == {"whsec", "after_prefix", "base64"}
    assert len(set(keys.values())) == 3
    assert keys["whsec"] == SECRET.encode()
    assert keys["after_prefix"] == SECRET.removeprefix("whsec_").encode()


def test_a_secret_whose_text_is_not_base64_still_has_its_other_two_forms() -> None:
    secret = "whsec_not*base64!"
    names = [name for name, _ in signing_keys(secret)]

    assert names == ["whsec", "after_prefix"]
    assert verify(signatures=[signature(secret, NOW, BODY, "after_prefix")], secret=secret)


@pytest.mark.parametrize("key_form", KEY_FORMS)
def test_a_changed_byte_of_the_body_is_refused(key_form: KeyForm) -> None:
    signed = signature(SECRET, NOW, BODY, key_form)
    changed = BODY.replace(b"m-1", b"m-2")

    assert "does not match the body" in refusal(body=changed, signatures=[signed])


def test_a_changed_timestamp_is_refused() -> None:
    signed = signature(SECRET, NOW, BODY)

    detail = refusal(signatures=[signed], timestamp=str(NOW - 1), now=NOW)

    assert "does not match" in detail


def test_an_old_or_future_timestamp_is_refused_and_the_edge_of_the_window_is_not() -> None:
    old, future = NOW - 301, NOW + 301
    assert "301s old" in refusal(signatures=[signature(SECRET, old, BODY)], timestamp=str(old))
    assert "in the future" in refusal(
        signatures=[signature(SECRET, future, BODY)], timestamp=str(future)
    )
    edge = NOW - 300
    assert verify(signatures=[signature(SECRET, edge, BODY)], timestamp=str(edge)).mode == "hmac"


def test_missing_headers_are_named() -> None:
    assert "missing X-Arize-Webhook-Signature header" in refusal(signatures=[])
    assert "missing X-Arize-Webhook-Timestamp header" in refusal(
        signatures=[signature(SECRET, NOW, BODY)], timestamp=None
    )
    both = refusal(signatures=[], timestamp=None)
    assert "X-Arize-Webhook-Signature and X-Arize-Webhook-Timestamp" in both


def test_a_timestamp_that_is_not_unix_seconds_is_refused() -> None:
    detail = refusal(signatures=[signature(SECRET, NOW, BODY)], timestamp="2026-12-06T10:00Z")

    assert "is not Unix seconds" in detail


def test_a_wrong_secret_is_refused() -> None:
    other = new_signing_secret()

    for key_form in KEY_FORMS:
        detail = refusal(signatures=[signature(other, NOW, BODY, key_form)])
        assert "wrong signing secret" in detail


def test_a_header_without_a_v1_value_is_refused() -> None:
    hex_digest = signature(SECRET, NOW, BODY).removeprefix("v1=")

    assert "no v1=" in refusal(signatures=[f"v0={hex_digest}"])
    assert "no v1=" in refusal(signatures=["v1=not-hex"])


def test_rotation_one_matching_v1_value_among_several_is_enough() -> None:
    stale = signature(new_signing_secret(), NOW, BODY)
    good = signature(SECRET, NOW, BODY, "base64")

    assert verify(signatures=[f"{stale} {good}"]).key_form == "base64"
    assert verify(signatures=[f"{stale},{good}"]).key_form == "base64"
    assert verify(signatures=[stale, good]).key_form == "base64"  # the header repeated
    assert verify(signatures=[good.upper().replace("V1=", "v1=")]).mode == "hmac"
    assert "does not match" in refusal(signatures=[f"{stale} {stale}"])


# --- bearer and header, as functions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "configured"),
    [
        ("tok-123456", "tok-123456"),
        ("Bearer tok-123456", "tok-123456"),
        ("bearer   tok-123456", "tok-123456"),
        ("tok-123456", "Bearer tok-123456"),
        ("Bearer tok-123456", "Bearer tok-123456"),
    ],
)
def test_bearer_accepts_the_token_with_or_without_its_prefix(sent: str, configured: str) -> None:
    assert check_bearer(sent, configured).mode == "bearer"


@pytest.mark.parametrize("sent", ["tok-123457", "Bearer tok-12345", "Basic tok-123456", "Bearer"])
def test_bearer_refuses_anything_else(sent: str) -> None:
    with pytest.raises(AuthRefused, match="invalid webhook token"):
        check_bearer(sent, "tok-123456")


def test_bearer_names_a_missing_header() -> None:
    for sent in (None, "", "  "):
        with pytest.raises(AuthRefused, match="missing Authorization header"):
            check_bearer(sent, "tok-123456")


def test_header_mode_compares_the_named_header() -> None:
    assert check_header("s3cret-value", "X-Hook", "s3cret-value").mode == "header"
    with pytest.raises(AuthRefused, match="missing X-Hook header"):
        check_header(None, "X-Hook", "s3cret-value")
    with pytest.raises(AuthRefused, match="does not match"):
        check_header("s3cret-valuf", "X-Hook", "s3cret-value")


# --- settings ---------------------------------------------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, env="dev", **values)  # type: ignore[call-arg]


def test_bearer_is_the_default_and_keeps_the_webhook_token() -> None:
    built = settings(webhook_token="tok-123456")

    assert built.arize_auth == "bearer"
    assert check_bearer("tok-123456", built.webhook_token.get_secret_value()).mode == "bearer"


def test_hmac_without_a_signing_secret_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="REMEDIATOR_ARIZE_SIGNING_SECRET"):
        settings(arize_auth="hmac")
    with pytest.raises(ValidationError, match="REMEDIATOR_ARIZE_SIGNING_SECRET"):
        settings(arize_auth="hmac", arize_signing_secret="  ")
    assert settings(arize_auth="hmac", arize_signing_secret=SECRET).arize_auth == "hmac"


def test_header_without_its_secret_is_refused_and_a_bad_header_name_too() -> None:
    with pytest.raises(ValidationError, match="REMEDIATOR_ARIZE_HEADER_SECRET"):
        settings(arize_auth="header")
    with pytest.raises(ValidationError, match="arize_header_name"):
        settings(arize_header_name="Bad Header: x")


def test_production_refuses_a_placeholder_header_secret() -> None:
    with pytest.raises(ValidationError, match="REMEDIATOR_ARIZE_HEADER_SECRET is a placeholder"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            webhook_token="k" * 32,
            audit_key="k" * 32,
            arize_auth="header",
            arize_header_secret="changeme",
        )


def test_the_cli_says_why_it_will_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    monkeypatch.setenv("REMEDIATOR_ARIZE_AUTH", "hmac")
    monkeypatch.delenv("REMEDIATOR_ARIZE_SIGNING_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file there

    with pytest.raises(typer.Exit):
        load_settings()

    assert "REMEDIATOR_ARIZE_AUTH=hmac needs REMEDIATOR_ARIZE_SIGNING_SECRET" in (
        capsys.readouterr().err
    )


# --- through the service ----------------------------------------------------------------------


def webhook(running: RunningService, **values: Any) -> ArizeWebhook:
    return ArizeWebhook(f"{running.url}/webhooks/arize", **values)


def stored_delivery(running: RunningService, alert_id: str) -> tuple[Alert, dict[str, Any]]:
    with Session(running.engine) as session:
        alert = session.exec(select(Alert).where(col(Alert.id) == uuid.UUID(alert_id))).one()
        event = session.exec(
            select(AuditEvent).where(
                col(AuditEvent.kind) == "alert.received", col(AuditEvent.alert_id) == alert.id
            )
        ).one()
    return alert, json.loads(event.data)


@pytest.mark.parametrize("key_form", KEY_FORMS)
def test_a_signed_delivery_is_accepted_with_its_mode_event_and_id_recorded(
    start_service: ServiceFactory, key_form: KeyForm
) -> None:
    running = start_service(arize_auth="hmac", arize_signing_secret=SECRET)
    hook = webhook(running, auth="hmac", signing_secret=SECRET, key_form=key_form)

    answer = send(hook, arize_alert(), event="monitor.triggered", webhook_id="evt-1")

    assert answer.status_code == 202, answer.text
    alert, event = stored_delivery(running, answer.json()["alert_id"])
    assert (alert.webhook_id, alert.webhook_event, alert.auth_mode) == (
        "evt-1",
        "monitor.triggered",
        "hmac",
    )
    assert event["delivery"] == {
        "webhook_id": "evt-1",
        "event": "monitor.triggered",
        "auth_mode": "hmac",
        "key_form": key_form,
    }
    shown = httpx.get(f"{running.url}/alerts/{alert.id}", headers=running.auth, timeout=10)
    assert shown.json()["auth_mode"] == "hmac"
    assert shown.json()["webhook_id"] == "evt-1"


def test_signed_deliveries_that_do_not_verify_are_401_and_write_nothing(
    start_service: ServiceFactory,
) -> None:
    running = start_service(arize_auth="hmac", arize_signing_secret=SECRET)
    hook = webhook(running, auth="hmac", signing_secret=SECRET)
    body = encode(arize_alert())
    headers = hook.headers(body, event=None, webhook_id="evt-2")
    url = f"{running.url}/webhooks/arize"

    tampered = httpx.post(url, content=body.replace(b"}", b" }", 1), headers=headers)
    old = int(time.time()) - 3600
    stale = httpx.post(
        url, content=body, headers=hook.headers(body, event=None, webhook_id="e", timestamp=old)
    )
    unsigned = httpx.post(url, content=body, headers={**headers, "X-Arize-Webhook-Signature": ""})
    bearer = httpx.post(
        url, content=body, headers={**running.auth, "Content-Type": "application/json"}
    )
    wrong = send(webhook(running, auth="hmac", signing_secret=new_signing_secret()), body)

    for answer, words in (
        (tampered, "does not match the body"),
        (stale, "old"),
        (unsigned, "missing X-Arize-Webhook-Signature"),
        (bearer, "missing X-Arize-Webhook-Signature"),
        (wrong, "wrong signing secret"),
    ):
        assert answer.status_code == 401, answer.text
        assert words in answer.json()["detail"]
    assert running.rows() == (0, 0)
    assert httpx.post(url, content=body, headers=headers).status_code == 202


def test_bearer_accepts_the_token_arize_sends_verbatim(start_service: ServiceFactory) -> None:
    running = start_service()
    token = running.settings.webhook_token.get_secret_value()

    plain = send(webhook(running, token=token), arize_alert())
    prefixed = send(webhook(running, token=f"Bearer {token}"), arize_alert())
    wrong = send(webhook(running, token=token + "x"), arize_alert())

    assert (plain.status_code, prefixed.status_code) == (202, 202), plain.text
    assert wrong.status_code == 401
    assert "invalid webhook token" in wrong.json()["detail"]
    alert, _ = stored_delivery(running, plain.json()["alert_id"])
    assert alert.auth_mode == "bearer"


def test_header_mode_accepts_its_header_and_nothing_else(start_service: ServiceFactory) -> None:
    running = start_service(
        arize_auth="header", arize_header_name="X-Hook-Secret", arize_header_secret="hs-" + "x" * 20
    )
    good = webhook(
        running, auth="header", header_name="X-Hook-Secret", header_value="hs-" + "x" * 20
    )
    wrong = webhook(running, auth="header", header_name="X-Hook-Secret", header_value="hs-nope")
    token = running.settings.webhook_token.get_secret_value()

    refused = [
        send(wrong, arize_alert()),
        send(webhook(running, token=token), arize_alert()),  # the bearer token is not enough
    ]

    assert [a.status_code for a in refused] == [401, 401]
    assert "does not match" in refused[0].json()["detail"]
    assert "missing X-Hook-Secret header" in refused[1].json()["detail"]
    assert running.rows() == (0, 0)
    accepted = send(good, arize_alert())
    assert accepted.status_code == 202, accepted.text
    assert stored_delivery(running, accepted.json()["alert_id"])[0].auth_mode == "header"


def test_the_alertmanager_route_keeps_its_bearer_token(start_service: ServiceFactory) -> None:
    running = start_service(arize_auth="hmac", arize_signing_secret=SECRET)

    answer = httpx.post(
        f"{running.url}/webhooks/alertmanager",
        json={"version": "4", "status": "firing", "alerts": []},
        headers={"Authorization": "Bearer wrong"},
        timeout=10,
    )

    assert answer.status_code == 401
    assert "invalid webhook token" in answer.json()["detail"]
