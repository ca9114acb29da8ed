"""Shared fixtures: the sandbox emulators, test Settings, and the service on a real port."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from agent.alerts.models import Alert
from agent.api.app import create_app
from agent.settings import Settings
from agent.store.db import make_engine, upgrade
from audit.models import AuditEvent
from sandbox.aws import SANDBOX_CREDENTIALS, demo_log_lines, seed_log_lines
from sandbox.openai_server import create_openai_app
from sandbox.openai_state import OpenAIServerState
from sandbox.server import EmulatorServer
from sandbox.stack import SandboxStack

# The SDKs read proxies and AWS credentials from the environment; tests use neither.
for _name in list(os.environ):
    if _name.lower().endswith("_proxy") or _name.startswith("REMEDIATOR_"):
        del os.environ[_name]
os.environ.update(SANDBOX_CREDENTIALS)
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    """Every emulator, started once for the session."""
    stack = SandboxStack(tmp_path_factory.mktemp("sandbox")).start()
    yield stack
    stack.stop()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Return development Settings on a fresh SQLite file, ignoring any .env file.

    Unless a test names runbooks, none are loaded: the built-in policy (investigate, then page
    on-call) governs, which is what the ingest and audit tests rely on.
    """
    no_runbooks = tmp_path / "no-runbooks"
    no_runbooks.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "runbooks_dir": no_runbooks,
        "env": "dev",
        "database_url": f"sqlite:///{tmp_path / 'remediator.db'}",
        "webhook_token": secrets.token_urlsafe(24),
        "audit_key": secrets.token_urlsafe(32),
        "audit_signing_key_file": tmp_path / "audit-signing-key.pem",
        "worker_poll_seconds": 0.05,
        # In-process writes: a writer process per test app would add a second of start-up each.
        # tests/agent/test_intake.py runs the ack path with the writer process too.
        "intake_writer": "thread",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def sandbox_overrides(stack: SandboxStack) -> dict[str, Any]:
    """Return the Settings values that point every integration at the sandbox."""
    return {
        "pagerduty_routing_key": stack.routing_key,
        "pagerduty_events_url": stack.pagerduty_url,
        "pagerduty_ca_bundle": stack.cert_path,
        "pagerduty_api_key": stack.pagerduty_api_key,
        "pagerduty_from_email": "remediator@example.com",
        "pagerduty_rest_url": stack.pagerduty_url,
        "slack_bot_token": stack.slack_token,
        "slack_base_url": stack.slack_url,
        "slack_channel": stack.channel,
        "aws_endpoint_url": stack.aws_url,
        "cloudwatch_log_groups": [stack.log_group],
    }


class RunningService:
    """The service on a loopback port, with helpers to talk to it and read its database."""

    def __init__(self, settings: Settings, server: EmulatorServer) -> None:
        self.settings = settings
        self.server = server
        self.url = server.url
        self.engine: Engine = make_engine(settings.database_url)
        self.auth = {"Authorization": f"Bearer {settings.webhook_token.get_secret_value()}"}

    def stop(self) -> None:
        """Stop the service (its worker finishes its step first), e.g. to restart it."""
        self.server.stop()

    def post_alert(self, payload: Any, **kwargs: Any) -> httpx.Response:
        """POST a JSON alert with the webhook token."""
        kwargs.setdefault("timeout", 10)
        return httpx.post(f"{self.url}/webhooks/arize", json=payload, headers=self.auth, **kwargs)

    def wait_alert(self, alert_id: str, timeout: float = 30) -> dict[str, Any]:
        """Poll GET /alerts/{id} until the alert is correlated and its incident's run is over."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = httpx.get(
                f"{self.url}/alerts/{alert_id}", headers=self.auth, timeout=5
            ).json()
            settled = body["incident_id"] is None or body["incident_run_state"] in FINISHED
            if body["state"] == "failed" or (body["state"] == "done" and settled):
                return body
            if time.monotonic() > deadline:
                return body
            time.sleep(0.05)

    def count(self, model: Any) -> int:
        """Return the number of rows of a table."""
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(model)).one())

    def rows(self) -> tuple[int, int]:
        """Return (alert rows, audit events)."""
        return self.count(Alert), self.count(AuditEvent)


ServiceFactory = Callable[..., RunningService]
FINISHED = ("completed", "failed", "skipped")


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start the service (API and worker) on a free port with the given Settings overrides."""
    servers: list[EmulatorServer] = []

    def start(**overrides: Any) -> RunningService:
        settings = make_settings(tmp_path, **overrides)
        server = EmulatorServer(create_app(settings), lifespan="on").start()
        servers.append(server)
        return RunningService(settings, server)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def service(start_service: ServiceFactory, sandbox: SandboxStack) -> RunningService:
    """The service wired to every sandbox emulator."""
    return start_service(**sandbox_overrides(sandbox))


@pytest.fixture(scope="module")
def openai_server(request: pytest.FixtureRequest) -> Iterator[tuple[OpenAIServerState, str]]:
    """An OpenAI-compatible sandbox server for one test module, accepting the module's KEY."""
    state = OpenAIServerState(api_keys={request.module.KEY})
    running = EmulatorServer(create_openai_app(state)).start()
    yield state, running.url
    running.stop()


@pytest.fixture
def catalog_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxStack]:
    """A fresh sandbox per test, its catalog written and its secrets in the environment."""
    stack = SandboxStack(tmp_path / "sandbox").start()
    catalog = stack.write_catalog(tmp_path / "services.yaml")
    for name, value in stack.catalog_env().items():
        monkeypatch.setenv(name, value)
    stack.catalog_path = catalog  # type: ignore[attr-defined]
    yield stack
    stack.stop()


@pytest.fixture
def migrated_engine(tmp_path: Path) -> Engine:
    """A migrated SQLite database of its own."""
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    return engine


def seed_demo_logs(stack: SandboxStack, model_id: str, version: str, around: Any) -> None:
    """Write the demo's gateway log lines for one model into the sandbox's log group."""
    seed_log_lines(
        stack.aws_url, stack.log_group, f"gw-{model_id}", demo_log_lines(model_id, version, around)
    )


POSTGRES_ADMIN_URL = os.environ.get(
    "REMEDIATOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards.

    Skipped when no server answers, except under CI=true, where PostgreSQL is required.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"remediator_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"no PostgreSQL server reachable at {POSTGRES_ADMIN_URL}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
