"""The review API (viewer role), the post-incident exports, and redaction before storage."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from agent.incidents.service import alert_ids_of
from audit.models import AuditEvent
from audit.proofs import verify_export
from audit.service import events_for
from audit.signing import TrustedKeys, public_path
from sandbox.stack import SandboxStack
from tests.conftest import RunningService, ServiceFactory, sandbox_overrides, seed_demo_logs
from tests.sample import arize_alert

VIEWER = secrets.token_urlsafe(24)


@pytest.fixture
def reviewed(start_service: ServiceFactory, sandbox: SandboxStack) -> tuple[RunningService, str]:
    """A service with a viewer token and one incident: breached twice, then resolved."""
    running = start_service(
        viewer_token=VIEWER, public_url="https://remediator.example", **sandbox_overrides(sandbox)
    )
    alert = arize_alert(service="support")
    seed_demo_logs(sandbox, alert["model_id"], alert["model_version"], datetime.now(UTC))
    first = running.wait_alert(running.post_alert(alert).json()["alert_id"])
    running.wait_alert(
        running.post_alert(
            dict(alert, current_value=6100, triggered_at="2026-11-27T02:05:00Z")
        ).json()["alert_id"]
    )
    running.wait_alert(running.post_alert(dict(alert, status="Healthy")).json()["alert_id"])
    return running, first["incident_id"]


def get(
    running: RunningService, path: str, token: str | None = VIEWER, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{running.url}{path}", headers=headers, params=params, timeout=10)


def test_review_needs_the_viewer_token(reviewed: tuple[RunningService, str]) -> None:
    running, _ = reviewed
    assert get(running, "/incidents", token=None).status_code == 401
    webhook_token = running.settings.webhook_token.get_secret_value()
    assert get(running, "/incidents", token=webhook_token).status_code == 401
    assert get(running, "/incidents").status_code == 200


def test_review_is_refused_when_no_viewer_token_is_configured(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    answer = get(running, "/incidents", token="anything")
    assert answer.status_code == 403
    assert "REMEDIATOR_VIEWER_TOKEN" in answer.json()["detail"]


def test_incidents_are_listed_and_filtered(reviewed: tuple[RunningService, str]) -> None:
    running, incident_id = reviewed
    listed = get(running, "/incidents").json()
    assert [i["id"] for i in listed["incidents"]] == [incident_id]
    assert listed["incidents"][0]["service"] == "support"
    assert get(running, "/incidents", status="resolved").json()["total"] == 1
    assert get(running, "/incidents", status="open").json()["total"] == 0
    assert get(running, "/incidents", service="other").json()["total"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert get(running, "/incidents", since=future).json()["total"] == 0
    assert get(running, "/incidents", status="exploded").status_code == 422
    assert get(running, "/incidents", limit="0").status_code == 422


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"since": "2026-11-27T02:00:00"}, "since"),  # naive
        ({"until": "2026-11-27T02:00:00"}, "until"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "out of range"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "out of range"),
        ({"since": "10000-01-01T00:00:00Z"}, "since"),
        ({"offset": str(2**63)}, "offset"),
        ({"offset": str(2**31)}, "offset"),
        ({"service": "a\u0000b"}, "NUL"),
        ({"model": "m" * 513}, "model"),
    ],
)
def test_bad_listing_parameters_are_422_naming_them(
    start_service: ServiceFactory, params: dict[str, str], words: str
) -> None:
    running = start_service(viewer_token=VIEWER)
    answer = get(running, "/incidents", **params)
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"]


def test_incident_detail_and_audit_trail(reviewed: tuple[RunningService, str]) -> None:
    running, incident_id = reviewed
    detail = get(running, f"/incidents/{incident_id}").json()
    audit = get(running, f"/incidents/{incident_id}/audit").json()

    assert detail["incident"]["status"] == "resolved"
    assert len(detail["alerts"]) == 3
    assert detail["chain"]["verified"] is True
    kinds = [e["kind"] for e in audit["events"]]
    assert kinds[:2] == ["alert.received", "incident.opened"]
    assert kinds.count("alert.received") == 3
    assert "incident.resolved" in kinds
    assert [e["seq"] for e in audit["events"]] == sorted(e["seq"] for e in audit["events"])
    assert get(running, "/incidents/00000000-0000-0000-0000-000000000000").status_code == 404


def test_markdown_export_reads_as_a_post_incident_review(
    reviewed: tuple[RunningService, str],
) -> None:
    running, incident_id = reviewed
    answer = get(running, f"/incidents/{incident_id}/export", format="md")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/markdown")
    text = answer.text
    for section in (
        "# Post-incident review:",
        "## Summary",
        "## Impact",
        "## Timeline",
        "## Evidence",
        "## Actions and approvals",
        "## Links",
    ):
        assert section in text
    assert "- **Threshold:** > 2000" in text
    assert "- **Peak value:** 6100 (over 3 alert(s))" in text
    assert "- **Segments:** region=eu-west-1" in text
    assert "retrieval failed: vector store query timed out after 3000 ms" in text
    assert "PagerDuty accepted the trigger" in text
    assert f"PagerDuty alert (dedup_key): remediator/incident/{incident_id}" in text
    assert f"https://remediator.example/ui/incidents/{incident_id}" in text
    assert "verified:" in text and "It is resolved." in text


def test_json_lines_export_holds_every_event(reviewed: tuple[RunningService, str]) -> None:
    running, incident_id = reviewed
    answer = get(running, f"/incidents/{incident_id}/export", format="json")
    records = [json.loads(line) for line in answer.text.splitlines()]
    audit = get(running, f"/incidents/{incident_id}/audit").json()

    assert answer.headers["content-type"] == "application/x-ndjson"
    assert records[0]["type"] == "incident" and records[0]["id"] == incident_id
    assert [r["seq"] for r in records if r["type"] == "event"] == [
        e["seq"] for e in audit["events"]
    ]
    assert records[-2] == {"type": "verification", **audit["chain"]}
    # Sealed and proven: it verifies with the service's public key alone.
    assert records[-1]["type"] == "seal"
    public = public_path(running.settings.audit_signing_key_file)
    verdict = verify_export(answer.content, TrustedKeys.from_files([public]))
    assert verdict.ok and verdict.events == len(audit["events"]), verdict.reason
    assert get(running, f"/incidents/{incident_id}/export", format="pdf").status_code == 422


def test_secrets_and_pii_in_an_alert_never_reach_the_database(
    start_service: ServiceFactory, tmp_path: Path
) -> None:
    running = start_service(redact_fields=["customer_ref"])
    openai_key = "sk-proj-" + "A1b2C3d4" * 5
    alert = arize_alert(
        note="escalate to alice.ops@example.com or +44 20 7946 0958",
        headers={"Authorization": f"Bearer {openai_key}"},
        debug=[f"retrying with key {openai_key}", {"customer_ref": "ACME-7731"}],
    )

    done = running.wait_alert(running.post_alert(alert).json()["alert_id"])
    raw = next(e for e in get_events(running, done["incident_id"]) if e.kind == "alert.received")

    stored = json.loads(raw.data)["raw"]
    assert stored["headers"]["Authorization"] == "[REDACTED:field]"
    assert stored["note"] == "escalate to [REDACTED:email] or [REDACTED:phone]"
    assert stored["debug"] == [
        "retrying with key [REDACTED:openai_key]",
        {"customer_ref": "[REDACTED:field]"},
    ]
    database = running.settings.sqlite_path
    assert database is not None
    everything = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for secret in (openai_key, "alice.ops@example.com", "ACME-7731", "7946 0958"):
        assert secret.encode() not in everything


def get_events(running: RunningService, incident_id: str) -> list[AuditEvent]:
    with Session(running.engine) as session:
        ids = alert_ids_of(session=session, incident_id=uuid.UUID(incident_id))
        return list(events_for(session=session, incident_id=uuid.UUID(incident_id), alert_ids=ids))
