"""API and worker processes on one PostgreSQL database, started as an operator would start them."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from agent.store.db import make_engine
from audit.models import AuditEvent
from sandbox.stack import SandboxStack

REMEDIATOR = Path(sys.executable).with_name("remediator")


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


class Fleet:
    """Processes of `remediator serve --no-worker` and `remediator worker` sharing a database."""

    def __init__(
        self, workdir: Path, database_url: str, stack: SandboxStack, **settings: str
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.token = secrets.token_urlsafe(24)
        runbooks = workdir / "no-runbooks"  # the built-in policy: investigate, then page
        runbooks.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            **stack.service_env(),
            "REMEDIATOR_ENV": "dev",
            "REMEDIATOR_DATABASE_URL": database_url,
            "REMEDIATOR_WEBHOOK_TOKEN": self.token,
            "REMEDIATOR_AUDIT_KEY": secrets.token_urlsafe(32),
            "REMEDIATOR_RUNBOOKS_DIR": str(runbooks),
            "REMEDIATOR_WORKER_POLL_SECONDS": "0.1",
            "REMEDIATOR_SLACK_MIN_INTERVAL_SECONDS": "0",
            "REMEDIATOR_LOG_FORMAT": "json",
            **settings,
        }
        self.engine: Engine = make_engine(database_url)  # the processes migrate it
        self.processes: list[subprocess.Popen[bytes]] = []
        self._starting: list[tuple[str, subprocess.Popen[bytes], str | None]] = []
        self._logs: list[IO[bytes]] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")
        self._logs.append(log)
        process = subprocess.Popen(
            [str(REMEDIATOR), *args], env=self.env, cwd=self.workdir, stdout=log, stderr=log
        )
        self.processes.append(process)
        return process

    def start_api(self, name: str) -> str:
        """Start an API replica without a worker; return its URL (see wait_started)."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = self._spawn(name, ["serve", "--no-worker", "--port", str(port)])
        self._starting.append((name, process, url))
        return url

    def start_worker(self, name: str, concurrency: int = 1) -> subprocess.Popen[bytes]:
        """Start a worker process (see wait_started)."""
        process = self._spawn(name, ["worker", "--concurrency", str(concurrency)])
        self._starting.append((name, process, None))
        return process

    def wait_started(self) -> None:
        """Wait until every process started answers /healthz (APIs) or logged its start."""
        for name, process, url in self._starting:

            def up(name: str = name, process: Any = process, url: str | None = url) -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited: {self.log(name)[-2000:]}")
                if url is None:
                    return "workers.started" in self.log(name)
                try:
                    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, 90, f"{name} to start")
        self._starting.clear()

    def api(self, name: str) -> str:
        """Start an API replica and wait until it answers."""
        url = self.start_api(name)
        self.wait_started()
        return url

    def worker(self, name: str, concurrency: int = 1) -> subprocess.Popen[bytes]:
        """Start a worker process and wait until its loops run."""
        process = self.start_worker(name, concurrency)
        self.wait_started()
        return process

    def log(self, name: str) -> str:
        """Return what a process wrote so far."""
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def post(self, url: str, payload: Any, client: httpx.Client | None = None) -> httpx.Response:
        """POST an Arize alert with the webhook token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if client is None:
            return httpx.post(f"{url}/webhooks/arize", json=payload, headers=headers, timeout=30)
        return client.post(f"{url}/webhooks/arize", json=payload, headers=headers, timeout=30)

    def kinds(self, incident_id: Any = None) -> list[str]:
        """Return the audit event kinds, oldest first (of one incident, when given)."""
        query = select(AuditEvent.kind).order_by(col(AuditEvent.seq))
        if incident_id is not None:
            query = query.where(AuditEvent.incident_id == incident_id)
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def count(self, model: Any, *where: Any) -> int:
        """Return the number of rows of a table that match."""
        with Session(self.engine) as session:
            query = select(func.count()).select_from(model).where(*where)
            return int(session.exec(query).one())

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM every process still running, then SIGKILL what does not exit."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        self.engine.dispose()
