"""The worker: claim accepted alerts, correlate them into incidents, and run the graph."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import structlog
from sqlmodel import Session, col, select

from agent.alerts.models import Alert, Breach
from agent.alerts.service import claim_next_alert, finish_alert
from agent.approvals.service import wake_incident
from agent.failovers.service import held_for_fingerprint, wake_held
from agent.graph.runner import GraphRunner
from agent.incidents.models import Incident, IncidentStatus, RunState
from agent.incidents.service import (
    CLAIMABLE,
    attach_alert,
    claim_due_incident,
    find_open_incident,
    lock_fingerprint,
    new_run_due,
    open_incident,
    park_incident,
    requeue_incident,
    resolve_incident,
    set_run_state,
)
from agent.monitors.poll import MonitorPoller
from agent.monitors.service import hurry_watch
from agent.store.db import session_scope
from agent.store.leases import Leased, heartbeat, release_lease
from agent.telemetry import metrics
from agent.telemetry.logs import log_ids
from agent.wiring import Services

log = structlog.get_logger(__name__)
WORKER_ACTOR = "worker"


class Worker:
    """Process accepted alerts one at a time until told to stop."""

    def __init__(
        self, services: Services, runner: GraphRunner, *, worker_id: str | None = None
    ) -> None:
        self._settings = services.settings
        self._engine = services.engine
        self._audit = services.audit
        self._runner = runner
        self._now = services.clock
        self._turn = False
        self._wake = threading.Event()
        self._holding: tuple[Leased, uuid.UUID] | None = None
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._monitors = MonitorPoller(
            settings=services.settings,
            engine=services.engine,
            audit=services.audit,
            adapters=runner.context.tools,
            now=services.clock,
            worker_id=self.worker_id,
        )

    def run(self, stop: threading.Event) -> None:
        """Poll for work until `stop` is set; an unexpected error is logged, never fatal."""
        log.info("worker.started", worker_id=self.worker_id)
        last_checkpoint = time.monotonic()
        last_poll = 0.0
        poll_every = min(self._settings.arize_monitor_poll_seconds, 1.0)
        while not stop.is_set():
            try:
                worked = self.run_once()
                if poll_every > 0 and time.monotonic() - last_poll >= poll_every:
                    # Open incidents' Arize monitors (each due read taken by one replica).
                    worked = self._monitors.poll_due() > 0 or worked
                    last_poll = time.monotonic()
                interval = self._settings.audit_checkpoint_seconds
                if interval and time.monotonic() - last_checkpoint >= interval:
                    self._audit.checkpoint(self._engine, self._settings.audit_checkpoint_file)
                    last_checkpoint = time.monotonic()
            except Exception:
                log.exception("worker.error", worker_id=self.worker_id)
                worked = False
            if not worked:
                # Sleep until the poll interval passes, or until a decision wakes us sooner.
                self._wake.wait(self._settings.worker_poll_seconds)
                self._wake.clear()
        log.info("worker.stopped", worker_id=self.worker_id)

    def wake(self) -> None:
        """Look for work now instead of at the next poll (an approval was just decided)."""
        self._wake.set()

    def run_once(self) -> bool:
        """Start a new investigation, else correlate an alert or carry on a run, taking turns;
        False when idle.

        A new investigation goes first: it runs until it has acted (the page sent), so in a
        storm every new incident is paged before repeat alerts are counted or any run reports.
        Then taking turns keeps a storm of alerts from starving the runs (an approval's
        decision, a report), and long runs from delaying correlation.
        """
        if self._new_run_due() and self._incident_once(new_only=True):
            return True
        self._turn = not self._turn
        first, second = (
            (self._alert_once, self._incident_once)
            if self._turn
            else (self._incident_once, self._alert_once)
        )
        return first() or second()

    def _new_run_due(self) -> bool:
        with Session(self._engine) as session:  # a read: no lock, no write turn
            return new_run_due(session=session, now=self._now())

    def _incident_once(self, *, new_only: bool = False) -> bool:
        """Claim one incident whose investigation is due and run (or resume) its graph;
        `new_only`: only a run that has not started."""
        claimed_at = self._now()
        with session_scope(self._engine) as session:
            incident = claim_due_incident(
                session=session,
                worker_id=self.worker_id,
                now=self._now,
                lease=self._lease,
                states=(RunState.pending,) if new_only else CLAIMABLE,
            )
            if incident is None:
                return False
            incident_id, status, run_state = incident.id, incident.status, incident.run_state
            first = session.exec(
                select(Alert)
                .where(Alert.incident_id == incident_id)
                .order_by(col(Alert.received_at))
            ).first()
            breach = first.breach() if first is not None else None
        with self._leased(Incident, incident_id):
            self._run_claimed(incident_id, status, run_state, breach, claimed_at)
        return True

    def _run_claimed(
        self,
        incident_id: uuid.UUID,
        status: IncidentStatus,
        run_state: RunState,
        breach: Breach | None,
        claimed_at: datetime,
    ) -> None:
        if (
            status == IncidentStatus.resolved
            and run_state == RunState.waiting
            and self._runner.finished(incident_id)
        ):
            self._settle_failbacks(incident_id, claimed_at)
            return
        # A paused run of a resolved incident is resumed, so its approval is cancelled and the
        # run ends, and so is one that has acted (it reports what it did); one that has not
        # acted yet (never started, or stopped by a crash before its actions) takes none now.
        if breach is None or (
            status != IncidentStatus.open
            and run_state != RunState.waiting
            and not self._runner.acted(incident_id)
        ):
            summary = "resolved before it was investigated: nothing to do"
            self._end_run(incident_id, RunState.skipped, "run.skipped", summary)
            return
        try:
            self._run_graph(incident_id, breach, claimed_at)
        except Exception:
            log.exception("incident.run_failed", incident_id=str(incident_id))

    def _alert_once(self) -> bool:
        """Claim and correlate one alert; return False when none was waiting."""
        with session_scope(self._engine) as session:
            alert = claim_next_alert(
                session=session,
                worker_id=self.worker_id,
                now=self._now,
                lease=self._lease,
            )
            if alert is None:
                return False
            alert_id, attempts = alert.id, alert.attempts
        log.info("alert.claimed", alert_id=str(alert_id), attempt=attempts)
        if attempts > self._settings.worker_max_attempts:
            self._fail(alert_id, f"gave up after {attempts - 1} attempts")
            return True
        try:
            with self._leased(Alert, alert_id):
                self._process(alert_id)
        except Exception as exc:
            log.exception("alert.failed", alert_id=str(alert_id))
            self._fail(alert_id, f"{type(exc).__name__}: {exc}")
        return True

    @log_ids
    def _process(self, alert_id: uuid.UUID) -> None:
        resolved: Incident | None = None
        repeat: Incident | None = None
        with session_scope(self._engine) as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            breach = alert.breach()
            if alert.incident_id is not None:
                # A retry after a crash: the correlation was committed (the incident's run is
                # claimed on its own); only the resolution's outside effects may be unfinished.
                incident = session.get(Incident, alert.incident_id)
                assert incident is not None
                if breach.status == "resolved" and incident.status == IncidentStatus.resolved:
                    resolved = incident
            else:
                lock_fingerprint(session=session, fingerprint=alert.fingerprint)
                open_one = find_open_incident(session=session, fingerprint=alert.fingerprint)
                if breach.status == "triggered" and open_one is None:
                    open_incident(
                        session=session,
                        audit=self._audit,
                        alert=alert,
                        breach=breach,
                        group_wait=timedelta(seconds=self._settings.group_wait_seconds),
                    )
                elif breach.status == "resolved" and open_one is not None:
                    resolve_incident(
                        session=session, audit=self._audit, alert=alert, incident=open_one
                    )
                    # A run paused for an approval resumes now, to cancel it and finish.
                    wake_incident(session=session, incident_id=open_one.id, now=self._now())
                    # Its Arize monitor's tag comes off at the next turn, not the next interval.
                    hurry_watch(session=session, incident_id=open_one.id, now=self._now())
                    resolved = open_one
                elif open_one is not None:
                    attach_alert(session=session, audit=self._audit, alert=alert, incident=open_one)
                    if breach.status == "triggered" and self._repeat_due(open_one):
                        open_one.last_notified_at = self._now()
                        session.add(open_one)
                        repeat = open_one
                else:
                    held = (
                        held_for_fingerprint(session=session, fingerprint=alert.fingerprint)
                        if breach.status == "resolved"
                        else []
                    )
                    for incident in held:
                        # A later resolution tries a failback held back at the last one again.
                        wake_held(session=session, service=str(incident.service), now=self._now())
                    summary = f"{breach.status} alert with no open incident: nothing to do"
                    if held:
                        summary = (
                            f"{breach.status} alert with no open incident: the held failback of "
                            f"incident {held[-1].id} is tried again"
                        )
                    self._audit.record(
                        session,
                        "alert.ignored",
                        {"summary": summary},
                        actor=WORKER_ACTOR,
                        alert_id=alert.id,
                    )
        if resolved is not None:
            before = self._now()
            wake = self._runner.resolve(resolved)
            if wake is not None:  # a failback waits for its approval
                with session_scope(self._engine) as session:
                    park_incident(
                        session=session, incident_id=resolved.id, wake=wake, claimed_at=before
                    )
        if repeat is not None:
            self._runner.renotify(repeat, breach, alert_id=alert_id)
        with session_scope(self._engine) as session:
            finish_alert(session=session, alert_id=alert_id, now=self._now)

    @metrics.RUNS_IN_FLIGHT.track_inprogress()
    @log_ids
    def _run_graph(self, incident_id: uuid.UUID, breach: Breach, claimed_at: datetime) -> None:
        with session_scope(self._engine) as session:
            set_run_state(session=session, incident_id=incident_id, state=RunState.running)
        try:
            outcome = self._runner.run(incident_id, breach, yield_after_acting=True)
        except Exception as exc:
            summary = f"the graph run failed: {type(exc).__name__}: {exc}"
            self._end_run(incident_id, RunState.failed, "run.failed", summary)
            raise
        if outcome.yielded:
            # Acted (paged): the rest of the run queues behind the runs already due, so a storm
            # pages every incident before it reports on any. Claimed again like a resumed run.
            with session_scope(self._engine) as session:
                requeue_incident(session=session, incident_id=incident_id, now=self._now())
            log.info("incident.acted", incident_id=str(incident_id))
            return
        if outcome.waiting_until is not None:
            with session_scope(self._engine) as session:
                park_incident(
                    session=session,
                    incident_id=incident_id,
                    wake=outcome.waiting_until,
                    claimed_at=claimed_at,
                )
            log.info(
                "incident.waiting_for_approval",
                incident_id=str(incident_id),
                until=outcome.waiting_until.isoformat(),
            )
            return
        summary = "investigation and actions finished"
        self._end_run(incident_id, RunState.completed, "run.completed", summary)
        log.info("incident.run_completed", incident_id=str(incident_id))

    def _end_run(self, incident_id: uuid.UUID, state: RunState, kind: str, summary: str) -> None:
        """Set the run's last state and record the audit event that says why, together."""
        with session_scope(self._engine) as session:
            set_run_state(session=session, incident_id=incident_id, state=state)
            self._audit.record(
                session, kind, {"summary": summary}, actor=WORKER_ACTOR, incident_id=incident_id
            )

    def _settle_failbacks(self, incident_id: uuid.UUID, claimed_at: datetime) -> None:
        """Carry out the decided failbacks of a resolved incident; wait again for the rest."""
        with session_scope(self._engine) as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None
            session.expunge(incident)
        wake = self._runner.settle(incident)
        with session_scope(self._engine) as session:
            if wake is not None:
                park_incident(
                    session=session, incident_id=incident_id, wake=wake, claimed_at=claimed_at
                )
            else:
                set_run_state(session=session, incident_id=incident_id, state=RunState.completed)

    @contextmanager
    def _leased(self, model: Leased, item_id: uuid.UUID) -> Iterator[None]:
        """Hold the claim's lease (heartbeat) while the block runs; remember it for release()."""
        self._holding = (model, item_id)
        try:
            with heartbeat(
                self._engine,
                model,
                item_id,
                worker_id=self.worker_id,
                lease=self._lease,
                now=self._now,
            ):
                yield
        finally:
            self._holding = None

    def release(self) -> None:
        """Give back the lease of the work in hand (shutdown), so another worker takes it now."""
        holding = self._holding
        if holding is not None and release_lease(self._engine, *holding, self.worker_id):
            kind = holding[0].__name__.lower()
            log.info(
                "worker.lease_released", worker_id=self.worker_id, **{f"{kind}_id": str(holding[1])}
            )

    @property
    def _lease(self) -> timedelta:
        """How long a claim holds without a heartbeat."""
        return timedelta(seconds=self._settings.worker_lease_seconds)

    def _repeat_due(self, incident: Incident) -> bool:
        """Tell whether the last notice is older than the repeat interval (Alertmanager's)."""
        last = incident.last_notified_at or incident.opened_at
        elapsed = (self._now() - last).total_seconds()
        return elapsed >= self._settings.repeat_interval_seconds

    @log_ids
    def _fail(self, alert_id: uuid.UUID, reason: str) -> None:
        reason = self._audit.redactor.text(reason)  # an exception's text may quote the alert
        with session_scope(self._engine) as session:
            finish_alert(session=session, alert_id=alert_id, now=self._now, error=reason)
            self._audit.record(
                session,
                "alert.failed",
                {"summary": f"alert could not be processed: {reason}"},
                actor=WORKER_ACTOR,
                alert_id=alert_id,
            )


def start_worker_thread(worker: Worker) -> tuple[threading.Thread, threading.Event]:
    """Run a worker on a daemon thread; set the returned event to stop it."""
    stop = _StopEvent(worker)
    thread = threading.Thread(
        target=worker.run, args=(stop,), name="remediator-worker", daemon=True
    )
    thread.start()
    return thread, stop


class _StopEvent(threading.Event):
    """The worker's stop flag; setting it also ends the worker's wait for work at once."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker

    def set(self) -> None:
        super().set()
        self._worker.wake()
