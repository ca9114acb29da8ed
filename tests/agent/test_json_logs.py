"""REMEDIATOR_LOG_FORMAT=json: every line the process writes is JSON, and work carries its ids."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.stack import SandboxStack
from tests.conftest import FINISHED, seed_demo_logs
from tests.sample import arize_alert


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """`remediator serve` in a child process, its output in a file."""

    def __init__(self, url: str, token: str, log: Path, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {token}"}
        self.log = log
        self.process = process

    def wait(self, alert_id: str) -> dict[str, Any]:
        """Poll the alert until it is done and its incident's run is over."""
        deadline = time.monotonic() + 60
        while True:
            body: dict[str, Any] = httpx.get(
                f"{self.url}/alerts/{alert_id}", headers=self.auth, timeout=5
            ).json()
            settled = body["incident_id"] is None or body["incident_run_state"] in FINISHED
            if body["state"] in ("done", "failed") and settled or time.monotonic() > deadline:
                return body
            time.sleep(0.1)

    def lines(self) -> list[dict[str, Any]]:
        """Stop the process and return every line it wrote, each parsed as JSON."""
        self.process.terminate()
        self.process.wait(timeout=30)
        text = self.log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def served(tmp_path: Path, sandbox: SandboxStack) -> Iterator[Served]:
    port, token = _free_port(), secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
    env.update(sandbox.service_env())
    env.update(
        {
            "REMEDIATOR_ENV": "dev",
            "REMEDIATOR_LOG_FORMAT": "json",
            "REMEDIATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'remediator.db'}",
            "REMEDIATOR_RUNBOOKS_DIR": str(tmp_path),  # no runbooks: the built-in policy
            "REMEDIATOR_WEBHOOK_TOKEN": token,
            "REMEDIATOR_AUDIT_KEY": secrets.token_urlsafe(32),
            "REMEDIATOR_PORT": str(port),
            "REMEDIATOR_WORKER_POLL_SECONDS": "0.1",
        }
    )
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Served(f"http://127.0.0.1:{port}", token, log, process)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield running
    if process.poll() is None:
        process.kill()
        process.wait()


def test_log_lines_of_an_alert_and_of_its_incident_carry_their_ids(
    served: Served, sandbox: SandboxStack
) -> None:
    alert = arize_alert()
    seed_demo_logs(sandbox, alert["model_id"], alert["model_version"], datetime.now(UTC))
    # The PagerDuty SDK logs its retries itself, knowing nothing of our ids: only the bound
    # context can put them there. First the incident's page is retried, then the resolve.
    sandbox.pagerduty.fail_next(500)
    opening = httpx.post(f"{served.url}/webhooks/arize", json=alert, headers=served.auth)
    opened = served.wait(opening.json()["alert_id"])
    sandbox.pagerduty.fail_next(500)
    healthy = dict(alert, status="Healthy", current_value=900)
    resolving = httpx.post(f"{served.url}/webhooks/arize", json=healthy, headers=served.auth)
    resolved = served.wait(resolving.json()["alert_id"])

    lines = served.lines()

    assert opened["incident_run_state"] == "completed", opened
    assert resolved["state"] == "done", resolved
    retries = [line for line in lines if line.get("logger", "").startswith("pagerduty")]
    assert len(retries) == 2, retries
    page_retry, resolve_retry = retries
    assert "retrying" in page_retry["event"]
    assert page_retry["incident_id"] == opened["incident_id"]
    assert resolve_retry["alert_id"] == resolving.json()["alert_id"]
    completed = [line for line in lines if line["event"] == "incident.run_completed"]
    assert [line["incident_id"] for line in completed] == [opened["incident_id"]]
    claimed = {line["alert_id"] for line in lines if line["event"] == "alert.claimed"}
    assert claimed == {opening.json()["alert_id"], resolving.json()["alert_id"]}
    # uvicorn's access lines are JSON too, through the same handler.
    assert any("POST /webhooks/arize" in line["event"] for line in lines)
    assert all({"event", "level", "timestamp"} <= line.keys() for line in lines)


LINES_FROM_TWO_KINDS_OF_LOGGER = """
import logging, sys, threading
import structlog
from agent.telemetry.logs import configure_logging
from agent.settings import Settings

configure_logging(Settings(_env_file=None, env="dev", log_format="json"))
ours, theirs = structlog.get_logger("ours"), logging.getLogger("theirs")

def write(n):
    for i in range(400):
        if n % 2:
            ours.info("ours.line", n=n, i=i, padding="x" * 200)
        else:
            theirs.warning("theirs line %s %s %s", n, i, "y" * 200)

threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_json_lines_of_structlog_and_the_standard_library_never_interleave(
    tmp_path: Path,
) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", LINES_FROM_TWO_KINDS_OF_LOGGER],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")},
    )
    assert finished.returncode == 0, finished.stderr
    # One stream, whole lines: what a log shipper reading stdout needs.
    parsed = [json.loads(line) for line in finished.stdout.splitlines() if line]
    assert len(parsed) == 1600 and finished.stderr == ""
    assert {p["event"] for p in parsed if p.get("logger") != "theirs"} == {"ours.line"}
