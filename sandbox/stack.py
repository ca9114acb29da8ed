"""All sandbox emulators together: PagerDuty (HTTPS), Slack and AWS (moto), with their settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.aws import SANDBOX_CREDENTIALS, SANDBOX_REGION, start_moto
from sandbox.pagerduty import PagerDutyState, create_pagerduty_app
from sandbox.server import EmulatorServer
from sandbox.slack import SlackState, create_slack_app
from sandbox.tls import make_self_signed

DEMO_CHANNEL = "C0INCIDENTS"
DEMO_LOG_GROUP = "/llm/chat-gateway"


@dataclass
class SandboxStack:
    """Start every emulator on loopback and say how to point the service at them."""

    workdir: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    routing_key: str = field(default_factory=lambda: secrets.token_hex(16))
    slack_token: str = field(default_factory=lambda: "xoxb-sandbox-" + secrets.token_hex(12))
    channel: str = DEMO_CHANNEL
    log_group: str = DEMO_LOG_GROUP
    pagerduty: PagerDutyState = field(init=False)
    slack: SlackState = field(init=False)
    _servers: list[EmulatorServer] = field(default_factory=list, init=False)
    _moto: Any = field(default=None, init=False)
    cert_path: Path = field(init=False)
    aws_url: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.pagerduty = PagerDutyState(routing_keys={self.routing_key})
        self.slack = SlackState(token=self.slack_token, channels={self.channel})

    def start(self) -> SandboxStack:
        """Start PagerDuty over HTTPS with a fresh self-signed certificate, Slack and moto."""
        self.cert_path, key_path = make_self_signed(self.workdir / "tls")
        pagerduty = EmulatorServer(
            create_pagerduty_app(self.pagerduty),
            host=self.host,
            port=self.ports.get("pagerduty", 0),
            certfile=self.cert_path,
            keyfile=key_path,
        )
        slack = EmulatorServer(
            create_slack_app(self.slack), host=self.host, port=self.ports.get("slack", 0)
        )
        self._servers = [pagerduty.start(), slack.start()]
        self._moto, self.aws_url = start_moto(self.host, self.ports.get("aws", 0))
        return self

    @property
    def pagerduty_url(self) -> str:
        """Return the PagerDuty emulator's base URL."""
        return self._servers[0].url

    @property
    def slack_url(self) -> str:
        """Return the Slack emulator's Web API base URL (ending in /api/)."""
        return self._servers[1].url + "/api/"

    def service_env(self) -> dict[str, str]:
        """Return the environment that points the service at these emulators."""
        return {
            "REMEDIATOR_PAGERDUTY_ROUTING_KEY": self.routing_key,
            "REMEDIATOR_PAGERDUTY_EVENTS_URL": self.pagerduty_url,
            "REMEDIATOR_PAGERDUTY_CA_BUNDLE": str(self.cert_path),
            "REMEDIATOR_SLACK_BOT_TOKEN": self.slack_token,
            "REMEDIATOR_SLACK_BASE_URL": self.slack_url,
            "REMEDIATOR_SLACK_CHANNEL": self.channel,
            "REMEDIATOR_AWS_ENDPOINT_URL": self.aws_url,
            "REMEDIATOR_AWS_REGION": SANDBOX_REGION,
            "REMEDIATOR_CLOUDWATCH_LOG_GROUPS": self.log_group,
            **SANDBOX_CREDENTIALS,
        }

    def stop(self) -> None:
        """Stop every emulator."""
        for server in self._servers:
            server.stop()
        if self._moto is not None:
            self._moto.stop()
