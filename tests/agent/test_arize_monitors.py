"""The monitor as the source of truth: enrichment of a new breach, resolve-by-poll (CLEARED),
NO_DATA reported once, tags while open, one replica per read. The real SDK against the emulator.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agent.adapters.checks import run_checks
from agent.adapters.factory import build_adapters
from agent.alerts.arize import DEFAULT_FIELD_PATHS, map_arize_payload
from agent.alerts.service import accept_alert
from agent.graph.runner import GraphRunner, make_checkpointer
from agent.incidents.models import Incident
from agent.monitors.models import MonitorWatch
from agent.monitors.poll import MonitorPoller, tag_name
from agent.settings import Settings
from agent.store.db import session_scope, upgrade
from agent.wiring import build_services
from agent.worker.loop import Worker
from audit.models import AuditEvent
from sandbox.stack import SandboxStack
from tests.conftest import make_settings, sandbox_overrides
from tests.outbox import empty_outbox

POLL = 30.0


class Clock:
    def __init__(self) -> None:
        self.moment = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def arize_overrides(stack: SandboxStack, **changes: Any) -> dict[str, Any]:
    env = stack.arize_env()
    values: dict[str, Any] = {
        "arize_api_key": env["REMEDIATOR_ARIZE_API_KEY"],
        "arize_api_host": env["REMEDIATOR_ARIZE_API_HOST"],
        "arize_api_scheme": "http",
        "arize_api_port": int(env["REMEDIATOR_ARIZE_API_PORT"]),
        "arize_space_id": env["REMEDIATOR_ARIZE_SPACE_ID"],
        "arize_monitor_poll_seconds": POLL,
        "arize_deadline_seconds": 3,
    }
    values.update(changes)
    return values


class Parts:
    def __init__(self, settings: Settings, stack: SandboxStack) -> None:
        self.clock = Clock()
        self.stack = stack
        services = build_services(settings, self.clock)
        self.engine = services.engine
        upgrade(self.engine)
        self.audit = services.audit
        self.runner = GraphRunner(services.run_context(), make_checkpointer(settings))
        self.worker = Worker(services, self.runner, worker_id="w-1")
        self.services = services

    def poller(self, worker_id: str) -> MonitorPoller:
        return MonitorPoller(
            settings=self.services.settings,
            engine=self.engine,
            audit=self.audit,
            adapters=self.runner.context.tools,
            now=self.clock,
            worker_id=worker_id,
        )

    def deliver(self, payload: dict[str, Any]) -> uuid.UUID:
        breach = map_arize_payload(payload, DEFAULT_FIELD_PATHS)
        with session_scope(self.engine) as session:
            alert, _ = accept_alert(
                session=session,
                audit=self.audit,
                breach=breach,
                payload=payload,
                body_sha256=hashlib.sha256(json.dumps(payload).encode()).hexdigest(),
            )
            return alert.id

    def drain(self) -> None:
        while self.worker.run_once():
            pass

    def poll(self) -> int:
        read = self.poller("w-1").poll_due()
        self.drain()
        return read

    def send_outbox(self) -> None:
        """Send what the outbox holds (a message a busy moment left queued for the sender)."""
        chat = self.runner.context.tools.chat
        empty_outbox(self.engine, self.audit, chat, self.clock)

    def incident(self) -> Incident:
        with Session(self.engine) as session:
            [incident] = session.exec(select(Incident)).all()
            session.expunge(incident)
            return incident

    def events(self, kind: str) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            rows = session.exec(select(AuditEvent).where(AuditEvent.kind == kind)).all()
            return [json.loads(r.data) for r in rows]


@pytest.fixture
def parts(sandbox: SandboxStack, tmp_path: Path) -> Parts:
    settings = make_settings(tmp_path, **sandbox_overrides(sandbox), **arize_overrides(sandbox))
    return Parts(settings, sandbox)


def sparse_monitor(stack: SandboxStack, **fields: Any) -> str:
    values: dict[str, Any] = {
        "metric": "P95",
        "dimension": {"category": "SPAN_ATTRIBUTE", "name": "latency_ms"},
        "threshold": {"type": "MANUAL_SINGLE", "operator": "GREATER_THAN", "value": 2000},
        "latest_computed_value": 4870,
        "evaluated_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "filters": [
            {
                "dimension": {"category": "SPAN_ATTRIBUTE", "name": "region"},
                "operator": "EQUALS",
                "values": ["eu-west-1"],
            }
        ],
    }
    values.update(fields)
    return stack.arize.add_monitor(f"support-bot latency {uuid.uuid4().hex[:6]}", **values)


def monitor_reads(stack: SandboxStack, monitor_id: str) -> int:
    requests = stack.arize.snapshot()["requests"]
    return sum(1 for r in requests if r["path"] == f"/v2/monitors/{monitor_id}")


def test_a_sparse_body_is_filled_from_its_monitor(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack)

    parts.deliver({"monitor_id": monitor_id, "status": "Triggered", "model_id": "support-bot"})
    parts.drain()

    breach = parts.runner.state(parts.incident().id)["breach"]
    assert breach["metric"] == "latency_ms P95"
    assert (breach["threshold"], breach["operator"], breach["value"]) == (2000, ">", 4870)
    assert breach["segment"] == {"region": "eu-west-1"}
    assert breach["url"].endswith(monitor_id)
    assert breach["triggered_at"] is not None
    [enriched] = parts.events("monitor.enriched")
    assert "threshold" in enriched["filled"] and enriched["kept"] == []
    [matched] = parts.events("runbook.matched")
    assert matched["metric"] == "latency_p95"  # the decision used the monitor's metric


def test_the_alerts_own_fields_win(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack)

    parts.deliver(
        {"monitor_id": monitor_id, "status": "Triggered", "threshold": 1000, "metric": "errors"}
    )
    parts.drain()

    breach = parts.runner.state(parts.incident().id)["breach"]
    assert (breach["threshold"], breach["metric"]) == (1000, "errors")
    assert breach["value"] == 4870  # filled: the alert had none
    [enriched] = parts.events("monitor.enriched")
    assert {"threshold", "metric"} <= set(enriched["kept"])


@pytest.mark.parametrize("fault", ["503", "slow"])
def test_a_failing_or_slow_api_never_holds_the_investigation(
    sandbox: SandboxStack, tmp_path: Path, fault: str
) -> None:
    settings = make_settings(
        tmp_path,
        **sandbox_overrides(sandbox),
        **arize_overrides(sandbox, arize_deadline_seconds=0.5),
    )
    parts = Parts(settings, sandbox)
    parts.runner.context.tools.warm_up()
    monitor_id = sparse_monitor(parts.stack)
    path = f"/v2/monitors/{monitor_id}"
    if fault == "503":
        parts.stack.arize.fail_next(503, path_prefix=path)
    else:
        parts.stack.arize.slow_next(3, times=4, path_prefix=path)

    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()

    incident = parts.incident()
    assert incident.run_state == "completed"
    [failed] = parts.events("monitor.enrichment_failed")
    assert "goes on with the alert's own fields" in failed["summary"]
    assert parts.runner.state(incident.id)["breach"]["threshold"] is None


def test_cleared_resolves_the_incident_like_a_resolve_delivery_and_untags(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack)
    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()
    incident = parts.incident()
    assert parts.poll() == 1  # the first read: still TRIGGERED, the tag goes on
    assert parts.stack.arize.tag_names(monitor_id) == [tag_name(incident.id)]

    parts.stack.arize.set_monitor(monitor_id, status="CLEARED")
    assert parts.poll() == 0  # not due before the interval
    parts.clock.advance(POLL)
    parts.poll()
    parts.poll()  # the resolution made the watch due at once: the tag comes off

    assert parts.incident().status == "resolved"
    kinds = [k for k in ("monitor.cleared", "incident.resolved", "monitor.untagged")]
    assert all(len(parts.events(kind)) == 1 for kind in kinds)
    assert parts.stack.arize.tag_names(monitor_id) == []
    resolves = [
        e
        for e in parts.stack.pagerduty.snapshot()["accepted"]
        if e["event_action"] == "resolve" and str(incident.id) in e["dedup_key"]
    ]
    assert resolves  # the page was resolved, as for a resolve delivery
    with Session(parts.engine) as session:
        watch = session.get(MonitorWatch, incident.id)
        assert watch is not None and watch.next_poll_at is None  # the watch has ended
    parts.clock.advance(POLL)
    assert parts.poll() == 0


def test_no_data_is_reported_once_and_is_not_health(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack, status="NO_DATA")
    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()

    for _ in range(3):
        parts.poll()
        parts.clock.advance(POLL)

    incident = parts.incident()
    assert incident.status == "open"
    [reported] = parts.events("monitor.no_data")
    assert reported["notification"]["status"] == "queued"  # the outbox sends it
    parts.send_outbox()
    notes = [
        m
        for m in parts.stack.slack.messages
        if m.get("thread_ts") == incident.slack_thread_ts and "NO_DATA" in m.get("text", "")
    ]
    assert len(notes) == 1


def test_no_data_is_said_once_per_incident_even_when_it_comes_back(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack, status="NO_DATA")
    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()

    for status in ("NO_DATA", "TRIGGERED", "NO_DATA"):
        parts.stack.arize.set_monitor(monitor_id, status=status)
        parts.poll()
        parts.clock.advance(POLL)

    assert len(parts.events("monitor.no_data")) == 1


def test_a_resolve_delivery_still_resolves_and_the_tag_comes_off(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack)
    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()
    parts.poll()

    parts.deliver({"monitor_id": monitor_id, "status": "Healthy"})
    parts.drain()
    parts.poll()

    assert parts.incident().status == "resolved"
    assert parts.events("monitor.cleared") == []
    assert parts.stack.arize.tag_names(monitor_id) == []


def test_each_read_is_taken_by_one_replica(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack)
    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()
    before = monitor_reads(parts.stack, monitor_id)

    read = [parts.poller(f"replica-{n}").poll_due() for n in range(3)]

    assert sorted(read) == [0, 0, 1]
    assert monitor_reads(parts.stack, monitor_id) == before + 1


def test_a_tag_failure_is_audited_once_then_the_tag_is_created_once(parts: Parts) -> None:
    monitor_id = sparse_monitor(parts.stack)
    parts.deliver({"monitor_id": monitor_id, "status": "Triggered"})
    parts.drain()
    parts.stack.arize.fail_next(500, times=2, path_prefix="/v2/tags")

    for _ in range(3):
        parts.poll()
        parts.clock.advance(POLL)

    assert len(parts.events("monitor.tag_failed")) == 1
    assert len(parts.events("monitor.tagged")) == 1
    name = tag_name(parts.incident().id)
    assert parts.stack.arize.tag_names(monitor_id) == [name]
    created = [t for t in parts.stack.arize.snapshot()["tags"].values() if t["name"] == name]
    assert len(created) == 1


def test_a_monitor_name_is_not_read_or_watched(parts: Parts) -> None:
    parts.deliver({"monitor_id": "mon-support-bot-latency-p95", "status": "Triggered"})
    parts.drain()

    assert len(parts.events("monitor.not_read")) == 1
    with Session(parts.engine) as session:
        assert session.exec(select(MonitorWatch)).all() == []


def test_doctor_checks_the_arize_key_and_reach(sandbox: SandboxStack, tmp_path: Path) -> None:
    good = make_settings(tmp_path, **arize_overrides(sandbox))
    bad = make_settings(tmp_path, **arize_overrides(sandbox, arize_api_key="ak-wrong"))

    [ok] = [r for r in run_checks(good, build_adapters(good)) if r.role == "arize"]
    [refused] = [r for r in run_checks(bad, build_adapters(bad)) if r.role == "arize"]

    assert ok.ok and "API key accepted" in ok.detail
    assert not refused.ok and "refused the API key" in refused.detail


@pytest.mark.postgres
def test_concurrent_replicas_take_one_read_on_postgresql(postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from agent.monitors.service import take_watch, watch_monitor
    from agent.store.db import make_engine

    engine = make_engine(postgres_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        incident = Incident(fingerprint="f" * 32, title="t", monitor_key="m", opened_at=now)
        session.add(incident)
        session.flush()
        incident_id = incident.id
        watch_monitor(session=session, incident_id=incident_id, monitor_id="m", now=now)

    def take(n: int) -> bool:
        return take_watch(
            engine, incident_id, worker_id=f"r-{n}", now=now, next_at=now + timedelta(seconds=POLL)
        )

    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(take, range(8)))
    engine.dispose()

    assert taken.count(True) == 1
