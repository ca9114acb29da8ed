"""Prometheus Alertmanager webhooks (version 4) become the same breaches and incidents."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from agent.alerts.alertmanager import map_alertmanager_payload
from agent.alerts.arize import BreachMappingError
from agent.incidents.models import Incident
from audit.models import AuditEvent
from runbooks.library import SHIPPED_RUNBOOKS
from tests.conftest import RunningService, ServiceFactory


def group(
    status: str = "firing", regions: tuple[str, ...] = ("eu", "us"), model: str = ""
) -> dict[str, Any]:
    model = model or f"rag-{uuid.uuid4().hex[:6]}"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="LLMErrorRate"}',
        "status": status,
        "receiver": "remediator",
        "groupLabels": {"alertname": "LLMErrorRate"},
        "commonLabels": {"alertname": "LLMErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "LLMErrorRate",
                    "model": model,
                    "model_version": "7",
                    "environment": "prod",
                    "severity": "critical",
                    "region": region,
                },
                "annotations": {
                    "value": "0.12",
                    "threshold": "0.05",
                    "operator": ">",
                    "summary": "error rate above 5%",
                },
                "startsAt": "2026-11-27T02:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
                "fingerprint": f"f{region}",
            }
            for region in regions
        ],
    }


def test_each_alert_of_a_group_maps_to_a_breach() -> None:
    mapped = map_alertmanager_payload(group(model="rag"))

    breaches = [breach for breach, _ in mapped]
    assert [b.segment for b in breaches] == [{"region": "eu"}, {"region": "us"}]
    first = breaches[0]
    assert (first.source, first.monitor_name, first.status) == (
        "alertmanager",
        "LLMErrorRate",
        "triggered",
    )
    assert (first.model_id, first.model_version, first.environment) == ("rag", "7", "prod")
    assert (first.value, first.threshold, first.operator) == (0.12, 0.05, ">")
    assert breaches[0].fingerprint() != breaches[1].fingerprint()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"version": "3"}, 'version must be "4"'),
        ({"alerts": []}, "alerts must be a non-empty list"),
        (
            {"alerts": [{"status": "firing", "labels": {}, "annotations": {}}]},
            "alerts[0]: alert has no alertname label",
        ),
        (
            {"alerts": [{"status": "pending", "labels": {"alertname": "x"}}]},
            "status must be firing or resolved",
        ),
    ],
)
def test_malformed_groups_are_refused_naming_the_problem(
    change: dict[str, Any], words: str
) -> None:
    with pytest.raises(BreachMappingError, match=words.replace("[", r"\[").replace("]", r"\]")):
        map_alertmanager_payload({**group(), **change})


def post(running: RunningService, body: Any) -> httpx.Response:
    return httpx.post(
        f"{running.url}/webhooks/alertmanager", json=body, headers=running.auth, timeout=10
    )


def test_a_group_opens_one_incident_per_segment_and_resolves_them(
    start_service: ServiceFactory,
) -> None:
    running = start_service()
    firing = group()

    answer = post(running, firing)

    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2
    ids = [a["alert_id"] for a in answer.json()["alerts"]]
    incidents = {running.wait_alert(i)["incident_id"] for i in ids}
    assert len(incidents) == 2

    again = post(running, firing)
    assert again.status_code == 200 and again.json()["duplicates"] == 2

    resolved = group("resolved", model=firing["alerts"][0]["labels"]["model"])
    done = [running.wait_alert(a["alert_id"]) for a in post(running, resolved).json()["alerts"]]
    assert {d["incident_id"] for d in done} == incidents
    assert [d["status"] for d in done] == ["resolved", "resolved"]


def test_a_bad_group_writes_nothing(start_service: ServiceFactory) -> None:
    running = start_service()
    body = group()
    body["alerts"][1]["labels"].pop("alertname")

    answer = post(running, body)

    assert answer.status_code == 422
    assert "alerts[1]" in answer.json()["detail"]
    assert running.rows() == (0, 0)


def test_alertmanager_needs_the_webhook_token(start_service: ServiceFactory) -> None:
    running = start_service()
    answer = httpx.post(f"{running.url}/webhooks/alertmanager", json=group(), timeout=10)
    assert answer.status_code == 401


def services_group(alertname: str, services: tuple[str, ...]) -> dict[str, Any]:
    """One group of one alert name for several services, without a `metric` label."""
    body = group(regions=("eu",) * len(services))
    body["groupLabels"] = body["commonLabels"] = {"alertname": alertname}
    for alert, service in zip(body["alerts"], services, strict=True):
        labels = alert["labels"]
        labels.update(alertname=alertname, service=service)
        labels.pop("model")
    return body


def test_alerts_of_one_name_for_different_services_are_different_incidents() -> None:
    mapped = map_alertmanager_payload(services_group("RagAnswersSlow", ("rag", "chat")))

    rag, chat = (breach for breach, _ in mapped)
    assert rag.fingerprint() != chat.fingerprint()
    assert rag.title().startswith("RagAnswersSlow breach on rag (prod)")
    assert chat.title().startswith("RagAnswersSlow breach on chat (prod)")


def test_an_alert_without_a_metric_label_is_matched_by_its_name_per_service(
    start_service: ServiceFactory,
) -> None:
    running = start_service(runbooks_dir=SHIPPED_RUNBOOKS)
    services = tuple(f"svc-{uuid.uuid4().hex[:6]}" for _ in range(4))

    answer = post(running, services_group("RagAnswersSlow", services))

    assert answer.status_code == 202, answer.text
    done = [running.wait_alert(a["alert_id"]) for a in answer.json()["alerts"]]
    incidents = [d["incident_id"] for d in done]
    assert len(set(incidents)) == 4
    with Session(running.engine) as session:
        matched = session.exec(select(AuditEvent).where(AuditEvent.kind == "runbook.matched")).all()
        titles = {i.service: i.title for i in session.exec(select(Incident)).all()}
    assert len(matched) == 4
    assert all('"runbook":"latency@1"' in e.data.replace(" ", "") for e in matched)
    assert all(titles[s].startswith(f"RagAnswersSlow breach on {s}") for s in services)
