"""A breach through the real HTTP API, the worker, the graph and the emulators."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from agent.incidents.models import Incident
from audit.models import AuditEvent
from audit.service import verify_chain
from sandbox.stack import SandboxStack
from tests.conftest import RunningService, seed_demo_logs
from tests.sample import arize_alert


def test_breach_pages_once_posts_once_and_audits_a_valid_chain(
    service: RunningService, sandbox: SandboxStack
) -> None:
    alert = arize_alert()
    seed_demo_logs(sandbox, alert["model_id"], alert["model_version"], datetime.now(UTC))

    answer = service.post_alert(alert)

    assert answer.status_code == 202, answer.text
    alert_id = answer.json()["alert_id"]
    done = service.wait_alert(alert_id)
    assert done["state"] == "done", done
    incident_id = done["incident_id"]
    dedup_key = f"remediator/incident/{incident_id}"
    triggers = [t for t in sandbox.pagerduty.triggers() if t["dedup_key"] == dedup_key]
    assert len(triggers) == 1
    assert triggers[0]["payload"]["severity"] == "critical"
    assert alert["model_id"] in triggers[0]["payload"]["summary"]
    messages = [m for m in sandbox.slack.snapshot()["messages"] if incident_id in str(m["blocks"])]
    assert len(messages) == 1
    assert alert["model_id"] in messages[0]["text"]

    with Session(service.engine) as session:
        incident = session.get(Incident, uuid.UUID(incident_id))
        assert incident is not None
        assert incident.run_state == "completed"
        assert incident.slack_thread_ts == messages[0]["ts"]
        kinds = [
            e.kind
            for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))  # type: ignore[arg-type]
        ]
        result = verify_chain(
            session=session, key=service.settings.audit_key.get_secret_value().encode()
        )
    assert kinds[:3] == ["alert.received", "incident.opened", "runbook.matched"]
    assert kinds[3:5] == ["probe.completed", "probe.completed"]  # logs and changes, in parallel
    assert kinds[5:] == [
        "diagnosis.made",
        "decision.made",
        "action.started",
        "action.succeeded",
        "notification.sent",
        "note.added",
        "run.completed",
    ]
    assert result.ok, result


def test_log_evidence_names_the_errors_of_the_breached_model(
    service: RunningService, sandbox: SandboxStack
) -> None:
    alert = arize_alert()
    seed_demo_logs(sandbox, alert["model_id"], alert["model_version"], datetime.now(UTC))

    done = service.wait_alert(service.post_alert(alert).json()["alert_id"])

    trigger = next(
        t
        for t in sandbox.pagerduty.triggers()
        if t["dedup_key"] == f"remediator/incident/{done['incident_id']}"
    )
    evidence = " ".join(trigger["payload"]["custom_details"]["evidence"])
    assert "logs (CloudWatch /llm/chat-gateway): degraded" in evidence
    assert "vector store query timed out" in evidence


def test_redelivery_answers_200_with_the_same_alert_and_writes_nothing(
    service: RunningService,
) -> None:
    alert = arize_alert()
    first = service.post_alert(alert)
    service.wait_alert(first.json()["alert_id"])
    before = service.rows()

    again = service.post_alert(alert)

    assert again.status_code == 200
    assert again.json()["alert_id"] == first.json()["alert_id"]
    assert again.json()["status"] == "duplicate"
    assert service.rows() == before
    assert service.count(Incident) == 1


def test_repeated_breach_of_one_fingerprint_groups_into_one_incident(
    service: RunningService, sandbox: SandboxStack
) -> None:
    alert = arize_alert()
    first = service.wait_alert(service.post_alert(alert).json()["alert_id"])
    later = dict(alert, current_value=5120, triggered_at=datetime.now(UTC).isoformat())

    second = service.wait_alert(service.post_alert(later).json()["alert_id"])

    assert second["incident_id"] == first["incident_id"]
    assert service.count(Incident) == 1
    dedup_key = f"remediator/incident/{first['incident_id']}"
    assert len([t for t in sandbox.pagerduty.triggers() if t["dedup_key"] == dedup_key]) == 1


def test_resolved_alert_resolves_the_incident_and_its_page(
    service: RunningService, sandbox: SandboxStack
) -> None:
    alert = arize_alert()
    opened = service.wait_alert(service.post_alert(alert).json()["alert_id"])
    healthy = dict(alert, status="Healthy", current_value=900)

    resolved = service.wait_alert(service.post_alert(healthy).json()["alert_id"])

    assert resolved["incident_id"] == opened["incident_id"]
    with Session(service.engine) as session:
        incident = session.get(Incident, uuid.UUID(opened["incident_id"]))
        assert incident is not None and incident.status == "resolved"
    dedup_key = f"remediator/incident/{opened['incident_id']}"
    alerts = [a for a in sandbox.pagerduty.snapshot()["alerts"] if a["dedup_key"] == dedup_key]
    assert [a["status"] for a in alerts] == ["resolved"]
    thread = [m for m in sandbox.slack.snapshot()["messages"] if m["thread_ts"]]
    assert any(alert["model_id"] in m["text"] and "Resolved" in m["text"] for m in thread)


def test_without_integrations_the_agent_records_what_it_would_have_done(
    start_service: object,
) -> None:
    running = start_service()  # type: ignore[operator]
    done = running.wait_alert(running.post_alert(arize_alert()).json()["alert_id"])

    assert done["state"] == "done"
    with Session(running.engine) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.incident_id == uuid.UUID(done["incident_id"]))
        ).all()
    kinds = {e.kind for e in events}
    assert {"probe.completed", "action.dry_run", "notification.dry_run"} <= kinds
    assert "action.succeeded" not in kinds
    assert any("logs: not configured" in e.data for e in events if e.kind == "probe.completed")


def test_triggered_breach_time_outside_now_still_investigates_its_own_window(
    service: RunningService,
) -> None:
    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    done = service.wait_alert(service.post_alert(arize_alert(triggered_at=old)).json()["alert_id"])

    with Session(service.engine) as session:
        probe = next(
            e
            for e in session.exec(
                select(AuditEvent).where(
                    AuditEvent.incident_id == uuid.UUID(done["incident_id"]),
                    AuditEvent.kind == "probe.completed",
                )
            )
            if '"tool":"cloudwatch_logs"' in e.data
        )
    assert '"status":"no_data"' in probe.data


def test_make_demo_command_plays_a_breach_end_to_end(tmp_path: object) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "sandbox", "demo", "--no-keep"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "audit chain OK" in finished.stdout
    assert "[demo] demo passed" in finished.stdout
    assert "action.succeeded" in finished.stdout
