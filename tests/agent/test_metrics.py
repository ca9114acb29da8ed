"""GET /metrics: the counters move with what the service does, with the right labels."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agent.alerts.models import Alert
from agent.incidents.service import claim_due_incident, open_incident
from agent.store.db import session_scope
from agent.telemetry.server import start_metrics_server
from agent.wiring import build_services
from sandbox.stack import SandboxStack
from tests.agent.test_worker import Clock, Parts, claim
from tests.conftest import RunningService, ServiceFactory, make_settings, seed_demo_logs
from tests.sample import arize_alert
from tools.retry import count_retry

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Return every sample of a Prometheus text exposition by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    """GET /metrics and parse it, insisting on a 200."""
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value, 0 when the series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_good_bad_token_and_malformed_alerts_move_their_counters(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    before = scrape(running.url)

    alert = arize_alert()
    good = running.post_alert(alert)
    bad_token = httpx.post(
        f"{running.url}/webhooks/arize",
        json=arize_alert(),
        headers={"Authorization": "Bearer not-the-token"},
        timeout=10,
    )
    malformed = httpx.post(
        f"{running.url}/webhooks/arize",
        content=b'{"monitor_name": ',
        headers={**running.auth, "Content-Type": "application/json"},
        timeout=10,
    )
    again = running.post_alert(alert)
    after = scrape(running.url)

    assert (good.status_code, bad_token.status_code, malformed.status_code) == (202, 401, 400)
    assert again.status_code == 200

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("remediator_alerts_received_total", source="arize") == 4
    assert delta("remediator_alerts_accepted_total", source="arize") == 1
    assert delta("remediator_alerts_refused_total", source="arize", reason="bad_token") == 1
    assert delta("remediator_alerts_refused_total", source="arize", reason="bad_json") == 1
    assert delta("remediator_alerts_refused_total", source="arize", reason="duplicate") == 1
    assert delta("remediator_alerts_refused_total", source="arize", reason="unmapped") == 0


def test_every_refusal_reason_of_the_alertmanager_webhook_is_labelled(
    start_service: ServiceFactory,
) -> None:
    running = start_service(max_body_bytes=64)
    url = f"{running.url}/webhooks/alertmanager"
    json_headers = {**running.auth, "Content-Type": "application/json"}
    before = scrape(running.url)

    answers = [
        httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"}),
        httpx.post(url, content=b"{}", headers={**running.auth, "Content-Type": "text/plain"}),
        httpx.post(url, content=b'{"x": "' + b"a" * 100 + b'"}', headers=json_headers),
        httpx.post(url, content=b"[1, 2]", headers=json_headers),
        httpx.post(url, content=b'{"version": "4"}', headers=json_headers),
    ]
    after = scrape(running.url)

    assert [a.status_code for a in answers] == [401, 415, 413, 422, 422]
    for reason in ("bad_token", "wrong_content_type", "too_large", "not_object", "unmapped"):
        labels = {"source": "alertmanager", "reason": reason}
        moved = value(after, "remediator_alerts_refused_total", **labels) - value(
            before, "remediator_alerts_refused_total", **labels
        )
        assert moved == 1, reason


def test_a_run_through_the_sandbox_moves_probes_actions_retries_and_incidents(
    service: RunningService, sandbox: SandboxStack
) -> None:
    alert = arize_alert()
    seed_demo_logs(sandbox, alert["model_id"], alert["model_version"], datetime.now(UTC))
    before = scrape(service.url)
    sandbox.pagerduty.fail_next(500)  # the trigger is retried once by the SDK

    done = service.wait_alert(service.post_alert(alert).json()["alert_id"])
    after = scrape(service.url)

    assert done["incident_run_state"] == "completed", done

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # The built-in policy probes the logs (CloudWatch, degraded by the seeded errors) and changes.
    assert delta("remediator_probe_seconds_count", tool="cloudwatch_logs", status="degraded") == 1
    assert delta("remediator_probe_seconds_count", tool="changes", status="no_data") == 1
    assert delta("remediator_probe_seconds_sum", tool="cloudwatch_logs", status="degraded") > 0
    assert delta("remediator_actions_total", kind="page", outcome="done") == 1
    assert delta("remediator_outgoing_retries_total", system="pagerduty_events") == 1
    assert value(after, "remediator_runs_in_flight") == 0
    assert value(after, "remediator_incidents", status="open", run_state="completed") == 1
    assert value(after, "remediator_incidents", status="resolved", run_state="completed") == 0


def test_replicas_on_one_database_report_the_same_incidents(
    start_service: ServiceFactory,
) -> None:
    first = start_service()
    second = start_service()  # same SQLite file: another replica of the same deployment

    first.wait_alert(first.post_alert(arize_alert()).json()["alert_id"])

    for replica in (first, second):
        samples = scrape(replica.url)
        assert value(samples, "remediator_incidents", status="open", run_state="completed") == 1


def test_a_metrics_token_is_required_once_set(start_service: ServiceFactory) -> None:
    token = "metrics-" + "t" * 24
    running = start_service(metrics_token=token)

    missing = httpx.get(f"{running.url}/metrics", timeout=10)
    webhook_token = httpx.get(f"{running.url}/metrics", headers=running.auth, timeout=10)
    samples = scrape(running.url, {"Authorization": f"Bearer {token}"})

    assert (missing.status_code, webhook_token.status_code) == (401, 401)
    assert "metrics token" in missing.json()["detail"]
    assert ("remediator_runs_in_flight", frozenset()) in samples


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_worker_metrics_server_serves_the_same_metrics_behind_the_token(
    tmp_path: Path,
) -> None:
    token = "metrics-" + "w" * 24
    parts = Parts(make_settings(tmp_path), Clock())
    parts.accept()
    parts.drain()
    settings = make_settings(tmp_path, metrics_port=_free_port(), metrics_token=token)

    server = start_metrics_server(settings, parts.engine)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.port}"
        refused = httpx.get(f"{url}/metrics", timeout=10)
        samples = scrape(url, {"Authorization": f"Bearer {token}"})
    finally:
        server.stop()

    assert refused.status_code == 401
    assert value(samples, "remediator_incidents", status="open", run_state="completed") == 1
    assert ("remediator_runs_in_flight", frozenset()) in samples
    assert start_metrics_server(make_settings(tmp_path)) is None  # no port set: no server


def expiries(kind: str) -> float:
    """Return the lease-expiry counter of one kind."""
    return REGISTRY.get_sample_value("remediator_worker_lease_expiries_total", {"kind": kind}) or 0


def test_claims_that_take_over_an_expired_lease_are_counted(tmp_path: Path) -> None:
    parts = Parts(make_settings(tmp_path, worker_lease_seconds=60), Clock())
    alerts, incidents = expiries("alert"), expiries("incident")
    alert_id = parts.accept()

    assert claim(parts, "crashed-worker") is not None
    first_claims = expiries("alert") - alerts
    parts.clock.advance(61)
    assert claim(parts, "w-2") is not None

    with session_scope(parts.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        open_incident(session=session, audit=parts.audit, alert=alert, breach=alert.breach())
    assert claim_incident(parts, "crashed-worker") is not None
    first_incident_claims = expiries("incident") - incidents
    parts.clock.advance(61)
    assert claim_incident(parts, "w-2") is not None

    assert (first_claims, expiries("alert") - alerts) == (0, 1)
    assert (first_incident_claims, expiries("incident") - incidents) == (0, 1)


def claim_incident(parts: Parts, worker_id: str) -> object:
    """Claim the due incident for a worker, as the worker does."""
    with session_scope(parts.engine) as session:
        return claim_due_incident(
            session=session, worker_id=worker_id, now=parts.clock, lease=timedelta(seconds=60)
        )


def test_the_service_counts_each_adapter_retry_in_its_metric(tmp_path: Path) -> None:
    def count() -> float:
        value = REGISTRY.get_sample_value(
            "remediator_outgoing_retries_total", {"system": "test-system"}
        )
        return value or 0.0

    build_services(make_settings(tmp_path))  # adds the hook, once however often it is built
    build_services(make_settings(tmp_path))
    before = count()
    count_retry("test-system")
    count_retry("test-system")

    assert count() - before == 2
