"""Claims, leases and resumption: an accepted alert is processed once even across a crash."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agent.alerts.arize import DEFAULT_FIELD_PATHS, map_arize_payload
from agent.alerts.models import Alert
from agent.alerts.service import accept_alert, claim_next_alert
from agent.graph.builder import build_graph
from agent.graph.runner import GraphRunner, make_checkpointer
from agent.incidents.models import Incident
from agent.incidents.service import open_incident
from agent.settings import Settings
from agent.store.db import session_scope, upgrade
from agent.wiring import build_services
from agent.worker.loop import Worker
from audit.models import AuditEvent
from tests.conftest import make_settings
from tests.sample import arize_alert


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class Parts:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        services = build_services(settings, clock)
        self.engine = services.engine
        upgrade(self.engine)
        self.audit = services.audit
        self.context = services.run_context()
        self.checkpointer = make_checkpointer(settings)
        self.worker = Worker(
            services, GraphRunner(self.context, self.checkpointer), worker_id="w-test"
        )

    def accept(self, **changes: Any) -> uuid.UUID:
        payload = arize_alert(**changes)
        breach = map_arize_payload(payload, DEFAULT_FIELD_PATHS)
        with session_scope(self.engine) as session:
            alert, _ = accept_alert(
                session=session,
                audit=self.audit,
                breach=breach,
                payload=payload,
                body_sha256=hashlib.sha256(repr(payload).encode()).hexdigest(),
            )
            return alert.id

    def drain(self) -> int:
        """Let the worker do everything that is due now; return how many steps it took."""
        steps = 0
        while self.worker.run_once():
            steps += 1
        return steps

    def kinds(self) -> list[str]:
        with Session(self.engine) as session:
            return [e.kind for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))]  # type: ignore[arg-type]

    def alert(self, alert_id: uuid.UUID) -> Alert:
        with Session(self.engine) as session:
            found = session.get(Alert, alert_id)
            assert found is not None
            return found


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    return Parts(make_settings(tmp_path, worker_lease_seconds=60, worker_max_attempts=2), Clock())


def claim(parts: Parts, worker_id: str = "w-1") -> Alert | None:
    with session_scope(parts.engine) as session:
        return claim_next_alert(
            session=session, worker_id=worker_id, now=parts.clock, lease=timedelta(seconds=60)
        )


def crash_after_probing(parts: Parts, alert_id: uuid.UUID) -> Incident:
    """Play a worker that claimed the alert, opened its incident and ran its graph up to the
    probes, then crashed (its claims' leases run out)."""
    claim(parts, "crashed-worker")
    with session_scope(parts.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        breach = alert.breach()
        incident = open_incident(session=session, audit=parts.audit, alert=alert, breach=breach)
    config: dict[str, Any] = {"configurable": {"thread_id": str(incident.id)}}
    build_graph(parts.checkpointer).invoke(
        {"incident_id": str(incident.id), "breach": breach.model_dump(mode="json")},
        config,
        context=parts.context,
        durability="sync",
        interrupt_after=["probe"],
    )
    return incident


def test_a_claimed_alert_is_not_claimed_again_until_its_lease_expires(parts: Parts) -> None:
    alert_id = parts.accept()

    first = claim(parts, "w-1")
    parts.clock.advance(59)
    during = claim(parts, "w-2")
    parts.clock.advance(2)
    after = claim(parts, "w-2")

    assert first is not None and first.id == alert_id
    assert during is None
    assert after is not None and after.id == alert_id
    assert (after.claimed_by, after.attempts) == ("w-2", 2)


def test_a_crash_after_correlation_resumes_without_a_second_incident(parts: Parts) -> None:
    alert_id = parts.accept()
    crashed = claim(parts, "crashed-worker")
    assert crashed is not None
    with session_scope(parts.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        open_incident(session=session, audit=parts.audit, alert=alert, breach=alert.breach())
    parts.clock.advance(61)

    # The re-claimed alert, then the incident's investigation: up to its actions, then the rest.
    assert parts.drain() == 3

    with Session(parts.engine) as session:
        incidents = session.exec(select(Incident)).all()
    assert len(incidents) == 1
    assert incidents[0].run_state == "completed"
    assert parts.kinds().count("incident.opened") == 1
    assert parts.kinds().count("run.completed") == 1
    assert parts.alert(alert_id).state == "done"


def test_an_interrupted_graph_run_continues_after_its_last_checkpoint(parts: Parts) -> None:
    alert_id = parts.accept()
    crash_after_probing(parts, alert_id)
    assert parts.kinds()[-1] == "probe.completed"
    parts.clock.advance(61)

    parts.drain()

    kinds = parts.kinds()
    assert kinds.count("runbook.matched") == 1
    assert kinds.count("probe.completed") == 2  # logs and changes, once each
    assert kinds.count("decision.made") == 1
    assert kinds.count("action.dry_run") == 1
    assert kinds[-1] == "run.completed"


def test_an_alert_that_keeps_failing_is_given_up_and_audited(parts: Parts) -> None:
    alert_id = parts.accept()
    for _ in range(2):
        claim(parts, "crashing-worker")
        parts.clock.advance(61)

    parts.worker.run_once()

    alert = parts.alert(alert_id)
    assert alert.state == "failed"
    assert alert.error == "gave up after 2 attempts"
    assert parts.kinds()[-1] == "alert.failed"
    assert claim(parts) is None


def test_a_resolved_alert_without_an_open_incident_is_recorded_and_ignored(parts: Parts) -> None:
    alert_id = parts.accept(status="Healthy")

    parts.worker.run_once()

    assert parts.alert(alert_id).state == "done"
    assert parts.kinds() == ["alert.received", "alert.ignored"]


def test_repeat_interval_with_a_clock_re_notifies_only_after_it(tmp_path: Path) -> None:
    parts = Parts(make_settings(tmp_path, repeat_interval_seconds=600), Clock())
    parts.accept(model_id="bot-x", current_value=4000)
    parts.drain()

    parts.clock.advance(9 * 60)
    parts.accept(model_id="bot-x", current_value=4100)
    parts.drain()
    assert parts.kinds().count("incident.renotified") == 0
    assert parts.kinds().count("alert.grouped") == 1

    parts.clock.advance(2 * 60)
    parts.accept(model_id="bot-x", current_value=4200)
    parts.drain()
    assert parts.kinds().count("incident.renotified") == 1

    parts.clock.advance(60)
    parts.accept(model_id="bot-x", current_value=4300)
    parts.drain()
    assert parts.kinds().count("incident.renotified") == 1  # the interval restarts at the notice
    with Session(parts.engine) as session:
        assert len(session.exec(select(Incident)).all()) == 1


def test_breaches_within_the_group_wait_make_one_incident_investigated_once(
    tmp_path: Path,
) -> None:
    parts = Parts(make_settings(tmp_path, group_wait_seconds=30), Clock())
    for second in range(5):
        parts.accept(model_id="bot-g", current_value=4000 + second)
        parts.drain()
        parts.clock.advance(5)
    assert "runbook.matched" not in parts.kinds()  # still waiting for the group to form

    parts.clock.advance(10)
    parts.drain()

    with Session(parts.engine) as session:
        incidents = session.exec(select(Incident)).all()
        grouped = session.exec(select(Alert).where(Alert.incident_id == incidents[0].id)).all()
    assert len(incidents) == 1 and len(grouped) == 5
    assert incidents[0].run_state == "completed"
    assert parts.kinds().count("runbook.matched") == 1


def test_an_incident_resolved_during_its_group_wait_is_not_investigated(tmp_path: Path) -> None:
    parts = Parts(make_settings(tmp_path, group_wait_seconds=30), Clock())
    parts.accept(model_id="bot-r", current_value=4000)
    parts.drain()
    parts.accept(model_id="bot-r", status="Healthy")
    parts.drain()

    parts.clock.advance(31)
    parts.drain()

    assert "runbook.matched" not in parts.kinds()
    assert parts.kinds()[-1] == "run.skipped"


def test_every_due_investigation_acts_before_any_run_reports(parts: Parts) -> None:
    """A run stops after its first actions and queues the rest behind the runs already due: in
    a storm, the second incident is paged before the first is reported on."""
    first, second = parts.accept(model_id="bot-a"), parts.accept(model_id="bot-b")
    for _ in (first, second):
        assert parts.worker._alert_once()
        parts.clock.advance(1)  # opened one after the other: due in that order
    assert parts.worker._incident_once()
    with Session(parts.engine) as session:
        incidents = {i.id: i for i in session.exec(select(Incident)).all()}
    a, b = sorted(incidents.values(), key=lambda i: i.opened_at)
    assert (a.run_state, a.claimed_by, a.lease_until) == ("running", None, None)

    parts.drain()

    with Session(parts.engine) as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()  # type: ignore[arg-type]

    def at(incident: Incident, kind: str) -> int:
        [index] = [
            n for n, e in enumerate(events) if e.incident_id == incident.id and e.kind == kind
        ]
        return index

    assert at(a, "action.dry_run") < at(b, "action.dry_run") < at(a, "run.completed")
    with Session(parts.engine) as session:
        states = {i.run_state for i in session.exec(select(Incident)).all()}
    assert states == {"completed"}
    # Each run acted once: resuming the rest took no action again.
    assert [e.kind for e in events].count("action.dry_run") == 2


def test_a_new_investigation_goes_before_a_waiting_alert(parts: Parts) -> None:
    """Correlating a repeat alert waits while an incident that has not acted yet is due."""
    parts.accept(model_id="bot-a")
    assert parts.worker._alert_once()  # opens the incident: its investigation is due
    repeat = parts.accept(model_id="bot-a")
    parts.worker._turn = False  # the next turn would be the alerts'

    assert parts.worker.run_once()

    assert parts.alert(repeat).state != "done"
    assert parts.kinds()[-1] == "action.dry_run"  # the investigation ran until it acted
    parts.drain()
    assert parts.alert(repeat).state == "done"
    assert parts.kinds().count("action.dry_run") == 1


def test_a_run_that_acted_reports_even_if_its_incident_resolved_meanwhile(parts: Parts) -> None:
    parts.accept(model_id="bot-a")
    assert parts.worker._alert_once()
    assert parts.worker._incident_once()  # acted, the rest queued
    parts.accept(model_id="bot-a", status="Healthy")
    assert parts.worker._alert_once()  # the incident resolves

    parts.drain()

    kinds = parts.kinds()
    assert "run.skipped" not in kinds
    assert kinds.count("action.dry_run") == 1  # nothing acted twice
    with Session(parts.engine) as session:
        [incident] = session.exec(select(Incident)).all()
    assert (incident.status, incident.run_state) == ("resolved", "completed")


def test_a_run_stopped_before_acting_takes_no_action_once_resolved(parts: Parts) -> None:
    alert_id = parts.accept(model_id="bot-a")
    incident = crash_after_probing(parts, alert_id)
    with session_scope(parts.engine) as session:
        found = session.get(Incident, incident.id)
        assert found is not None
        found.run_state = "running"  # the crashed worker had started it
        session.add(found)
    parts.clock.advance(61)
    resolving = parts.accept(model_id="bot-a", status="Healthy")
    while parts.alert(resolving).state != "done":
        assert parts.worker._alert_once()  # the crashed worker's alert, then the resolution

    parts.drain()

    kinds = parts.kinds()
    assert "action.dry_run" not in kinds and "decision.made" not in kinds
    assert kinds[-1] == "run.skipped"
