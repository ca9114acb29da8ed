"""Crash safety on PostgreSQL: workers and API replicas killed with SIGKILL lose and repeat nothing.

RELIABILITY.md cases 5 (kill between decision and action, and between action and checkpoint)
and 12 (kill the API right after its 202). The crash windows come from the PagerDuty emulator
holding an event (sandbox/pagerduty.py `hold_next`), not from hooks in the product.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from agent.alerts.models import Alert
from agent.incidents.models import Incident, page_dedup_key
from sandbox.pagerduty import HoldPoint
from sandbox.stack import SandboxStack
from tests.fleet import Fleet, wait_for
from tests.sample import arize_alert

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

LEASE = "3"  # seconds: short, so a dead worker's run is taken over soon


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, sandbox: SandboxStack) -> Iterator[Fleet]:
    timeout = {"REMEDIATOR_PAGERDUTY_TIMEOUT_SECONDS": "60"}  # longer than any hold
    with Fleet(
        tmp_path, postgres_url, sandbox, REMEDIATOR_WORKER_LEASE_SECONDS=LEASE, **timeout
    ) as f:
        yield f
    sandbox.pagerduty.holds.clear()


def incident_of(fleet: Fleet, alert_id: str) -> uuid.UUID | None:
    with Session(fleet.engine) as session:
        alert = session.get(Alert, uuid.UUID(alert_id))
        return alert.incident_id if alert is not None else None


def run_state(fleet: Fleet, incident_id: uuid.UUID) -> str | None:
    with Session(fleet.engine) as session:
        incident = session.get(Incident, incident_id)
        return incident.run_state if incident is not None else None


def pagerduty_events(stack: SandboxStack, dedup_key: str) -> tuple[list[Any], list[Any]]:
    """Return the trigger events received and the alerts held for one dedup key."""
    seen = stack.pagerduty.snapshot()
    triggers = [e for e in seen["accepted"] if e["dedup_key"] == dedup_key]
    alerts = [a for a in seen["alerts"] if a["dedup_key"] == dedup_key]
    return triggers, alerts


@pytest.mark.parametrize("window", ["before", "after"])
def test_a_worker_killed_around_its_page_is_replaced_and_pages_once(
    fleet: Fleet, sandbox: SandboxStack, window: HoldPoint
) -> None:
    api = fleet.api("api")
    first = fleet.worker("worker-1")
    sandbox.pagerduty.hold_next(40, when=window)
    answer = fleet.post(api, arize_alert())
    assert answer.status_code == 202
    incident_id = wait_for(lambda: incident_of(fleet, answer.json()["alert_id"]), 60, "incident")
    dedup_key = page_dedup_key(incident_id)

    # The worker is inside its PagerDuty call: decided (checkpointed), page sent or not yet.
    wait_for(lambda: sandbox.pagerduty.held, 60, "the worker's page to be held")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    triggers_at_kill = len(pagerduty_events(sandbox, dedup_key)[0])
    fleet.worker("worker-2")
    wait_for(lambda: run_state(fleet, incident_id) == "completed", 120, "the run to complete")

    triggers, alerts = pagerduty_events(sandbox, dedup_key)
    kinds = fleet.kinds(incident_id)
    print(
        f"\nkill {window} the page: triggers at kill {triggers_at_kill}, triggers {len(triggers)}, "
        f"PagerDuty alerts {len(alerts)}"
    )
    assert len(alerts) == 1  # one effect: the retry carried the same dedup_key
    assert alerts[0]["events"] == len(triggers)
    # Before: the killed call never took effect; after: it did, and the retry was deduplicated.
    assert (triggers_at_kill, len(triggers)) == ((0, 1) if window == "before" else (1, 2))
    # Resumed from the checkpoint: the investigation and the decision are not redone.
    assert kinds.count("runbook.matched") == 1
    assert kinds.count("decision.made") == 1
    assert kinds.count("action.succeeded") == 1
    assert kinds.count("run.completed") == 1
    assert "worker.lease_expired" in fleet.log("worker-2")
    assert str(incident_id) in fleet.log("worker-2")


def test_an_api_killed_right_after_its_202s_loses_no_alert(
    fleet: Fleet, sandbox: SandboxStack
) -> None:
    doomed = fleet.api("api-doomed")
    doomed_process = fleet.processes[-1]
    survivor = fleet.api("api-survivor")
    fleet.worker("worker", concurrency=2)
    accepted: list[str] = []
    lock = threading.Lock()

    def send(payload: dict[str, Any]) -> None:
        try:
            answer = fleet.post(doomed, payload)
        except httpx.TransportError:  # killed under the request: nothing was promised
            return
        if answer.status_code != 202:
            return
        with lock:
            accepted.append(str(answer.json()["alert_id"]))
            if len(accepted) == 10:  # SIGKILL right after a 202, with more requests in flight
                doomed_process.send_signal(signal.SIGKILL)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, [arize_alert() for _ in range(40)]))
    doomed_process.wait(timeout=10)
    assert doomed_process.returncode == -signal.SIGKILL
    assert len(accepted) >= 10

    def settled(alert_id: str) -> bool:
        body = httpx.get(
            f"{survivor}/alerts/{alert_id}",
            headers={"Authorization": f"Bearer {fleet.token}"},
            timeout=10,
        ).json()
        return bool(body["state"] == "done" and body["incident_run_state"] == "completed")

    for alert_id in accepted:
        wait_for(lambda a=alert_id: settled(a), 120, f"alert {alert_id} to be processed")
    print(f"\nAPI killed after {len(accepted)} alerts were accepted: every one processed once")
    for alert_id in accepted:
        incident_id = incident_of(fleet, alert_id)
        assert incident_id is not None
        kinds = fleet.kinds(incident_id)
        assert kinds.count("incident.opened") == 1
        assert kinds.count("runbook.matched") == 1
        assert kinds.count("run.completed") == 1
        triggers, alerts = pagerduty_events(sandbox, page_dedup_key(incident_id))
        assert (len(triggers), len(alerts)) == (1, 1)


def test_a_run_longer_than_its_lease_stays_with_its_worker(
    fleet: Fleet, sandbox: SandboxStack
) -> None:
    api = fleet.api("api")
    fleet.worker("worker-1")
    fleet.worker("worker-2")
    sandbox.pagerduty.hold_next(4 * float(LEASE), when="after")  # the run outlives its lease
    answer = fleet.post(api, arize_alert())
    incident_id = wait_for(lambda: incident_of(fleet, answer.json()["alert_id"]), 60, "incident")

    wait_for(lambda: run_state(fleet, incident_id) == "completed", 120, "the run to complete")

    triggers, alerts = pagerduty_events(sandbox, page_dedup_key(incident_id))
    assert (len(triggers), len(alerts)) == (1, 1)
    assert fleet.kinds(incident_id).count("runbook.matched") == 1
    for name in ("worker-1", "worker-2"):
        assert "worker.lease_expired" not in fleet.log(name)


def test_sigterm_hands_the_run_in_hand_to_another_worker_at_once(
    fleet: Fleet, sandbox: SandboxStack
) -> None:
    fleet.env["REMEDIATOR_WORKER_SHUTDOWN_SECONDS"] = "1"
    fleet.env["REMEDIATOR_WORKER_LEASE_SECONDS"] = "600"  # only a release lets worker-2 in
    api = fleet.api("api")
    first = fleet.worker("worker-1")
    sandbox.pagerduty.hold_next(40, when="before")
    answer = fleet.post(api, arize_alert())
    incident_id = wait_for(lambda: incident_of(fleet, answer.json()["alert_id"]), 60, "incident")
    wait_for(lambda: sandbox.pagerduty.held, 60, "the worker's page to be held")

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    fleet.worker("worker-2")
    wait_for(lambda: run_state(fleet, incident_id) == "completed", 120, "the run to complete")

    assert "worker.lease_released" in fleet.log("worker-1")
    assert "worker.lease_expired" not in fleet.log("worker-2")
    triggers, alerts = pagerduty_events(sandbox, page_dedup_key(incident_id))
    assert (len(triggers), len(alerts)) == (1, 1)
    assert fleet.kinds(incident_id).count("decision.made") == 1
