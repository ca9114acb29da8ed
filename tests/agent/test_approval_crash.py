"""RELIABILITY case 5: SIGKILL around an approved action; the action still happens exactly once.

The service runs as a real `remediator serve` process against the emulators. It is killed with
SIGKILL (no clean-up of any kind) at two moments, then started again on the same database:
- after the approval is recorded but before the action (Slack is made to hang on the edit of the
  request, which comes before the action): the restarted worker takes the action once;
- after the gateway carried out the failover but before the run could checkpoint it (the gateway
  holds its answer): the restarted worker repeats the call with the same idempotency key and the
  gateway, which keeps one effect per key, still shows a single route change.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from agent.store.db import make_engine
from audit.models import AuditEvent
from audit.service import verify_chain
from sandbox.slack import click, interaction
from sandbox.stack import DEMO_SERVICE, SandboxStack
from tests.agent.test_approvals import (
    APPROVER,
    RUNBOOK,
    SIGNING_SECRET,
    request_message,
    wait_for,
)
from tests.conftest import sandbox_overrides
from tests.sample import arize_alert

APPROVE = "remediator.approve"
AUDIT_KEY = "audit-key-for-crash-tests-0123456789"
WEBHOOK_TOKEN = "webhook-token-for-crash-tests-0123"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxStack]:
    stack = SandboxStack(tmp_path / "sandbox").start()
    stack.catalog_path = stack.write_catalog(tmp_path / "services.yaml")  # type: ignore[attr-defined]
    stack.gateway.failing_regions["eu-west-1"] = 503
    yield stack
    stack.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """`remediator serve` (API and worker) as its own process, on the test's database."""

    def __init__(self, world: SandboxStack, folder: Path) -> None:
        runbooks = folder / "runbooks"
        runbooks.mkdir(exist_ok=True)
        (runbooks / "approval.yaml").write_text(
            RUNBOOK.format(ttl=600, approvers=f"[{APPROVER}]", failback="auto")
        )
        values: dict[str, Any] = {
            **sandbox_overrides(world),
            "catalog_file": world.catalog_path,  # type: ignore[attr-defined]
            "runbooks_dir": runbooks,
            "database_url": f"sqlite:///{folder / 'remediator.db'}",
            "env": "dev",
            "webhook_token": WEBHOOK_TOKEN,
            "audit_key": AUDIT_KEY,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_timeout_seconds": 60,
            "worker_poll_seconds": 0.05,
            "worker_lease_seconds": 2,
        }
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.lower().endswith("_proxy") and not key.startswith("REMEDIATOR_")
        }
        self.env.update(world.catalog_env())
        for key, value in values.items():
            text = ",".join(value) if isinstance(value, list) else str(value)
            self.env[f"REMEDIATOR_{key.upper()}"] = text
        self.database_url = values["database_url"]
        self.logs = folder / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> ServeProcess:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.logs.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "serve", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._healthy, timeout=60, what="the service to start")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.logs.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no lease release."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def post_alert(self, alert: dict[str, Any]) -> str:
        answer = httpx.post(
            f"{self.url}/webhooks/arize",
            json=alert,
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["alert_id"])

    def run_state(self, alert_id: str) -> str | None:
        answer = httpx.get(
            f"{self.url}/alerts/{alert_id}",
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
            timeout=5,
        )
        state: str | None = answer.json().get("incident_run_state")
        return state

    def kinds(self) -> list[str]:
        with Session(make_engine(self.database_url)) as session:
            events = session.exec(select(AuditEvent).order_by(AuditEvent.seq))  # type: ignore[arg-type]
            return [e.kind for e in events]

    def chain_ok(self) -> bool:
        with Session(make_engine(self.database_url)) as session:
            return verify_chain(session=session, key=AUDIT_KEY.encode()).ok


@pytest.fixture
def serve(world: SandboxStack, tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(world, tmp_path)
    yield process
    process.stop()


def paused_for_approval(serve: ServeProcess, world: SandboxStack) -> tuple[str, dict[str, Any]]:
    alert_id = serve.post_alert(arize_alert(model_id=DEMO_SERVICE))
    message = request_message(world)
    wait_for(lambda: serve.run_state(alert_id) == "waiting", what="the run to pause")
    return alert_id, message


def test_killed_after_the_approval_before_the_action_acts_once_after_restart(
    world: SandboxStack, serve: ServeProcess
) -> None:
    serve.start()
    alert_id, message = paused_for_approval(serve, world)
    world.slack.delay_seconds = 45  # the resumed run hangs on the edit that precedes the action

    answer = click(
        f"{serve.url}/slack/interactions", SIGNING_SECRET, interaction(message, APPROVE, APPROVER)
    )
    assert answer.json()["outcome"] == "approved"
    wait_for(lambda: "approval.approved" in serve.kinds(), what="the decision to be stored")
    time.sleep(1)  # let the worker resume and reach the hanging Slack call
    assert world.gateway.history == []
    serve.kill()

    world.slack.delay_seconds = 0
    serve.start()
    wait_for(lambda: serve.run_state(alert_id) == "completed", timeout=90, what="the run to finish")

    assert len(world.gateway.history) == 1
    puts = [r for r in world.gateway.snapshot()["received"] if r["method"] == "PUT"]
    assert len(puts) == 1
    assert serve.kinds().count("approval.approved") == 1
    assert serve.kinds().count("action.succeeded") >= 1
    assert serve.chain_ok()


def test_killed_after_the_action_before_its_checkpoint_repeats_it_with_the_same_key(
    world: SandboxStack, serve: ServeProcess
) -> None:
    serve.start()
    alert_id, message = paused_for_approval(serve, world)
    world.gateway.hold_next(30)  # the failover is carried out, its answer held back

    click(
        f"{serve.url}/slack/interactions", SIGNING_SECRET, interaction(message, APPROVE, APPROVER)
    )
    wait_for(lambda: world.gateway.history, what="the gateway to carry out the failover")
    serve.kill()
    assert "action.succeeded" not in serve.kinds()[serve.kinds().index("action.started") :]

    serve.start()
    wait_for(lambda: serve.run_state(alert_id) == "completed", timeout=90, what="the run to finish")

    puts = [r for r in world.gateway.snapshot()["received"] if r["method"] == "PUT"]
    assert len(puts) == 2
    assert puts[0]["idempotency_key"] == puts[1]["idempotency_key"]
    assert len(world.gateway.history) == 1
    assert world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    assert serve.chain_ok()
