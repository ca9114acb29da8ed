"""Leases: renewed by their holder only, handed back on shutdown, counted when they expire."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from agent.alerts.models import Alert
from agent.incidents.models import Incident
from agent.incidents.service import claim_due_incident, open_incident
from agent.store.db import session_scope
from agent.store.leases import lease_expiries, release_lease, renew_lease
from tests.agent.test_worker import Clock, Parts, claim
from tests.conftest import make_settings


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    return Parts(make_settings(tmp_path, worker_lease_seconds=60), Clock())


def claim_incident(parts: Parts, worker_id: str) -> Incident | None:
    with session_scope(parts.engine) as session:
        return claim_due_incident(
            session=session, worker_id=worker_id, now=parts.clock, lease=timedelta(seconds=60)
        )


def test_only_the_holder_renews_and_a_renewed_lease_is_not_taken(parts: Parts) -> None:
    alert_id = parts.accept()
    claim(parts, "w-1")
    parts.clock.advance(50)

    assert renew_lease(parts.engine, Alert, alert_id, "w-1", parts.clock() + timedelta(seconds=60))
    assert not renew_lease(
        parts.engine, Alert, alert_id, "w-2", parts.clock() + timedelta(seconds=60)
    )
    parts.clock.advance(50)  # past the first lease, within the renewed one
    assert claim(parts, "w-2") is None


def test_an_expired_incident_lease_is_taken_over_and_counted(parts: Parts) -> None:
    alert_id = parts.accept()
    with session_scope(parts.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        incident = open_incident(
            session=session, audit=parts.audit, alert=alert, breach=alert.breach()
        )
    before = lease_expiries()
    assert claim_incident(parts, "w-1") is not None
    assert claim_incident(parts, "w-2") is None  # held
    parts.clock.advance(61)

    taken = claim_incident(parts, "w-2")

    assert taken is not None and taken.id == incident.id and taken.claimed_by == "w-2"
    assert lease_expiries() == before + 1


def test_a_released_alert_is_claimed_at_once_and_not_counted_as_expired(parts: Parts) -> None:
    alert_id = parts.accept()
    claim(parts, "w-1")
    before = lease_expiries()

    assert release_lease(parts.engine, Alert, alert_id, "w-1")
    taken = claim(parts, "w-2")

    assert taken is not None and taken.id == alert_id
    assert lease_expiries() == before
    assert not release_lease(parts.engine, Alert, alert_id, "w-1")  # no longer w-1's
    with Session(parts.engine) as session:
        stored = session.get(Alert, alert_id)
        assert stored is not None and stored.claimed_by == "w-2"


def test_the_worker_command_serves_metrics_and_stops_on_sigterm_with_exit_0(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "REMEDIATOR_ENV": "dev",
        "REMEDIATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "REMEDIATOR_LOG_FORMAT": "json",
        "REMEDIATOR_HOST": "127.0.0.1",
        "REMEDIATOR_METRICS_PORT": str(port),
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "worker", "--concurrency", "2"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=out,
        )
        deadline = time.monotonic() + 60
        while "workers.started" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert scraped.status_code == 200 and "remediator_incidents" in scraped.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    text = log.read_text()
    assert text.count('"worker.started"') == 2
    assert "workers.stopped" in text
