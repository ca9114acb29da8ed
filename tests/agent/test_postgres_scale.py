"""Scale-out on PostgreSQL: two API replicas and two worker processes share one database.

A storm of 500 alerts over 50 fingerprints, sent to both replicas at once, makes 50 incidents,
each investigated once and paged once, and every accepted alert is processed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from agent.alerts.models import Alert
from agent.incidents.models import Incident, page_dedup_key
from agent.outbox.models import OutboxMessage, OutboxState
from audit.models import AuditEvent
from audit.service import verify_chain
from sandbox.stack import SandboxStack
from tests.fleet import Fleet, wait_for
from tests.sample import arize_alert

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

FINGERPRINTS = 50
PER_FINGERPRINT = 10


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, sandbox: SandboxStack) -> Iterator[Fleet]:
    # Slack takes ~1 message a second per channel and each process paces its own posts:
    # with 2 worker processes, each posts at most every 2 seconds.
    pace = {"REMEDIATOR_SLACK_MIN_INTERVAL_SECONDS": "2"}
    with Fleet(tmp_path, postgres_url, sandbox, REMEDIATOR_WORKER_LEASE_SECONDS="10", **pace) as f:
        yield f


def storm() -> list[dict[str, Any]]:
    """Return 500 distinct deliveries: 10 per model in a row, each a different moment of it.

    Repeats of one fingerprint arrive together, so workers correlate them at the same time.
    """
    start = datetime.now(UTC) - timedelta(minutes=5)
    models = [arize_alert()["model_id"] for _ in range(FINGERPRINTS)]
    return [
        arize_alert(model_id=model, triggered_at=(start + timedelta(seconds=n)).isoformat())
        for model in models
        for n in range(PER_FINGERPRINT)
    ]


def test_two_apis_and_two_workers_investigate_each_fingerprint_once(
    fleet: Fleet, sandbox: SandboxStack
) -> None:
    # All four at once: they migrate the empty database and set up the checkpoints together.
    apis = [fleet.start_api("api-1"), fleet.start_api("api-2")]
    fleet.start_worker("worker-1", concurrency=2)
    fleet.start_worker("worker-2", concurrency=2)
    fleet.wait_started()
    payloads = storm()
    clients = [httpx.Client(timeout=60) for _ in apis]

    def send(numbered: tuple[int, dict[str, Any]]) -> httpx.Response:
        n, payload = numbered
        return fleet.post(apis[n % 2], payload, clients[n % 2])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, enumerate(payloads)))
    accepted_in = time.monotonic() - started
    for client in clients:
        client.close()
    assert [a.status_code for a in answers] == [202] * len(payloads)
    accepted = {a.json()["alert_id"] for a in answers}

    def drained() -> bool:
        with Session(fleet.engine) as session:
            waiting = session.exec(select(Alert).where(col(Alert.state) != "done")).first()
            running = session.exec(
                select(Incident).where(col(Incident.run_state) != "completed")
            ).first()
            unsent = session.exec(
                select(OutboxMessage).where(col(OutboxMessage.state) == OutboxState.pending)
            ).first()
            return waiting is None and running is None and unsent is None

    wait_for(drained, 480, "every alert and incident to be processed, every message sent")
    drained_in = time.monotonic() - started

    with Session(fleet.engine) as session:
        alerts = session.exec(select(Alert)).all()
        incidents = session.exec(select(Incident)).all()
        matched = session.exec(
            select(AuditEvent.incident_id).where(col(AuditEvent.kind) == "runbook.matched")
        ).all()
        digested = session.exec(
            select(AuditEvent.incident_id).where(col(AuditEvent.kind) == "notification.digested")
        ).all()
        chain = verify_chain(session=session, key=fleet.env["REMEDIATOR_AUDIT_KEY"].encode())
    seen = sandbox.pagerduty.snapshot()
    posts = [str(m["blocks"]) for m in sandbox.slack.snapshot()["messages"]]
    # Each incident is told once: in a message (thread) of its own, or, past the channel's rate,
    # as a line of the channel's digest.
    threads = [sum(1 for p in posts if str(i.id) in p) for i in incidents]
    told = [n + digested.count(i.id) for n, i in zip(threads, incidents, strict=True)]
    keys = {page_dedup_key(i.id) for i in incidents}
    triggers = [e for e in seen["accepted"] if e["dedup_key"] in keys]
    held = [a for a in seen["alerts"] if a["dedup_key"] in keys]
    print(
        f"\nscale: {len(payloads)} alerts over {FINGERPRINTS} fingerprints to 2 APIs, "
        f"2 workers x 2 loops: accepted in {accepted_in:.1f}s, drained in {drained_in:.1f}s, "
        f"{len(incidents)} incidents, {len(matched)} investigations, {len(triggers)} PagerDuty "
        f"triggers, {len(held)} PagerDuty alerts, {sum(threads)} Slack threads"
    )
    assert {str(a.id) for a in alerts} == accepted
    assert all(a.state == "done" and a.incident_id is not None for a in alerts)
    assert len(incidents) == FINGERPRINTS
    assert sorted(str(i) for i in matched) == sorted(str(i.id) for i in incidents)
    assert len(triggers) == len(held) == FINGERPRINTS
    assert told == [1] * FINGERPRINTS  # told once each: its own thread or a digest line
    assert chain.ok, chain
