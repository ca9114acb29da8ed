"""All sandbox emulators together (PagerDuty over HTTPS, Slack, AWS, Arize, …), their settings."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from qdrant_client import QdrantClient

from audit.signing import generate_key_file
from sandbox.arize import ArizeState, create_arize_app
from sandbox.aws import SANDBOX_CREDENTIALS, SANDBOX_REGION, seed_log_lines, start_moto
from sandbox.gateway import GatewayState, create_gateway_app
from sandbox.gateway_proxy import add_proxy_routes
from sandbox.gcp_logging import GcpLoggingState, create_gcp_logging_app
from sandbox.openai_server import create_openai_app
from sandbox.openai_state import OpenAIServerState
from sandbox.pagerduty import PagerDutyState, create_pagerduty_app
from sandbox.server import EmulatorServer
from sandbox.slack import SlackState, create_slack_app
from sandbox.tls import make_self_signed
from sandbox.vectordb import VectorDBState, create_vectordb_app
from tools.probes.canary import seed_canary

DEMO_CHANNEL = "C0INCIDENTS"
DEMO_LOG_GROUP = "/llm/chat-gateway"
DEMO_SERVICE = "support-bot"
CHAT_MODEL = "support-bot-v3"
FALLBACK_MODEL = "support-bot-v2"
EMBEDDING_MODEL = "text-embedding-3-small"
COLLECTION = "support-articles"
TEAMS = ("assistant-team", "search-platform", "ml-platform")
# Teams that own no service: who the shipped runbooks name as approvers, so the catalog knows
# them (the service refuses a runbook approver no team lists). They give nobody rights.
APPROVER_TEAMS = {
    "sre-oncall": ["S0SREONCALL"],
    "llm-platform": ["S0LLMPLATFORM"],
    "support-leads": ["U0ALICE"],
}
# Right answers to the catalog's diagnostic prompts, as a healthy endpoint gives them.
DIAGNOSTIC_ANSWERS = {"17 + 25": "42", "capital of France": "Paris"}


@dataclass
class SandboxStack:
    """Start every emulator (on loopback by default) and say how to point the service at them."""

    workdir: Path
    host: str = "127.0.0.1"
    public_host: str | None = None
    """The name other machines reach the emulators by (in URLs and the certificate)."""
    ports: dict[str, int] = field(default_factory=dict)
    routing_key: str = field(default_factory=lambda: secrets.token_hex(16))
    slack_token: str = field(default_factory=lambda: "xoxb-sandbox-" + secrets.token_hex(12))
    channel: str = DEMO_CHANNEL
    log_group: str = DEMO_LOG_GROUP
    pagerduty: PagerDutyState = field(init=False)
    slack: SlackState = field(init=False)
    openai: OpenAIServerState = field(init=False)
    vectordb: VectorDBState = field(init=False)
    gateway: GatewayState = field(init=False)
    gcp: GcpLoggingState = field(init=False)
    arize: ArizeState = field(init=False)
    arize_api_key: str = field(default_factory=lambda: "ak-sandbox-" + secrets.token_hex(12))
    team_keys: dict[str, str] = field(init=False)
    openai_key: str = field(default_factory=lambda: "sk-sandbox-" + secrets.token_hex(8))
    gateway_token: str = field(default_factory=lambda: secrets.token_hex(16))
    pagerduty_api_key: str = field(default_factory=lambda: "u+" + secrets.token_hex(9))
    _servers: list[EmulatorServer] = field(default_factory=list, init=False)
    _moto: Any = field(default=None, init=False)
    cert_path: Path = field(init=False)
    aws_url: str = field(default="", init=False)
    urls: dict[str, str] = field(default_factory=dict, init=False)
    canary: Any = field(default=None, init=False)
    _catalog_env: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.team_keys = {team: secrets.token_hex(16) for team in TEAMS}
        self.pagerduty = PagerDutyState(
            routing_keys={self.routing_key, *self.team_keys.values()},
            rest_api_keys={self.pagerduty_api_key},
        )
        self.slack = SlackState(token=self.slack_token, channels={self.channel})
        self.openai = OpenAIServerState(api_keys={self.openai_key})
        self.openai.add_chat_model(CHAT_MODEL, default="OK", rules=dict(DIAGNOSTIC_ANSWERS))
        self.openai.add_chat_model(FALLBACK_MODEL, default="OK", rules=dict(DIAGNOSTIC_ANSWERS))
        self.openai.add_embedding_model(EMBEDDING_MODEL, dimension=32)
        self.vectordb = VectorDBState()
        self.gateway = GatewayState(admin_token=self.gateway_token)
        self.gateway.reset(
            {DEMO_SERVICE: {"provider": "openai", "model": CHAT_MODEL, "region": "eu-west-1"}}
        )
        self.gcp = GcpLoggingState()
        self.arize = ArizeState(api_keys={self.arize_api_key})

    def start(self) -> SandboxStack:
        """Start PagerDuty over HTTPS with a fresh self-signed certificate, Slack and moto.

        Also makes the audit signing key every process of the service shares (one key: what
        one process signs, the others verify).
        """
        generate_key_file(self.signing_key_file)
        names = [self.public_host] if self.public_host else []
        self.cert_path, key_path = make_self_signed(self.workdir / "tls", names)
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
        openai = EmulatorServer(
            create_openai_app(self.openai), host=self.host, port=self.ports.get("openai", 0)
        )
        gateway_app = create_gateway_app(self.gateway)
        add_proxy_routes(gateway_app, self.gateway, openai.url + "/v1")
        others = {
            "openai": openai,
            **{
                name: EmulatorServer(app, host=self.host, port=self.ports.get(name, 0))
                for name, app in (
                    ("vectordb", create_vectordb_app(self.vectordb)),
                    ("gateway", gateway_app),
                    ("gcp", create_gcp_logging_app(self.gcp)),
                    ("arize", create_arize_app(self.arize)),
                )
            },
        }
        self._servers = [pagerduty.start(), slack.start()]
        self._servers += [server.start() for server in others.values()]
        self.urls = {name: server.url for name, server in others.items()}
        self._moto, self.aws_url = start_moto(self.host, self.ports.get("aws", 0))
        seed_log_lines(self.aws_url, self.log_group, "gateway-0", [])
        client = QdrantClient(url=self.urls["vectordb"], check_compatibility=False)
        self.canary = seed_canary(client, COLLECTION, 32)
        client.close()
        return self

    @property
    def pagerduty_url(self) -> str:
        """Return the PagerDuty emulator's base URL."""
        return self.public(self._servers[0].url)

    @property
    def slack_url(self) -> str:
        """Return the Slack emulator's Web API base URL (ending in /api/)."""
        return self.public(self._servers[1].url) + "/api/"

    def public(self, url: str) -> str:
        """Return a URL of an emulator as other machines reach it (with `public_host`)."""
        if not self.public_host:
            return url
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{self.public_host}:{rest.rsplit(':', 1)[1]}"

    def service_env(self) -> dict[str, str]:
        """Return the environment that points the service at these emulators."""
        return {
            "REMEDIATOR_PAGERDUTY_ROUTING_KEY": self.routing_key,
            "REMEDIATOR_PAGERDUTY_EVENTS_URL": self.pagerduty_url,
            "REMEDIATOR_PAGERDUTY_CA_BUNDLE": str(self.cert_path),
            "REMEDIATOR_PAGERDUTY_API_KEY": self.pagerduty_api_key,
            "REMEDIATOR_PAGERDUTY_FROM_EMAIL": "remediator@example.com",
            "REMEDIATOR_PAGERDUTY_REST_URL": self.pagerduty_url,
            "REMEDIATOR_SLACK_BOT_TOKEN": self.slack_token,
            "REMEDIATOR_SLACK_BASE_URL": self.slack_url,
            "REMEDIATOR_SLACK_CHANNEL": self.channel,
            "REMEDIATOR_AWS_ENDPOINT_URL": self.public(self.aws_url),
            "REMEDIATOR_AWS_REGION": SANDBOX_REGION,
            "REMEDIATOR_CLOUDWATCH_LOG_GROUPS": self.log_group,
            "REMEDIATOR_AUDIT_SIGNING_KEY_FILE": str(self.signing_key_file),
            **self.arize_env(),
            **SANDBOX_CREDENTIALS,
        }

    def arize_env(self) -> dict[str, str]:
        """Return the settings that point the service at the Arize emulator (REST v2, http)."""
        host, _, port = self.public(self.urls["arize"]).partition("://")[2].rpartition(":")
        return {
            "REMEDIATOR_ARIZE_API_KEY": self.arize_api_key,
            "REMEDIATOR_ARIZE_API_HOST": host,
            "REMEDIATOR_ARIZE_API_SCHEME": "http",
            "REMEDIATOR_ARIZE_API_PORT": port,
            "REMEDIATOR_ARIZE_SPACE_ID": self.arize.space_id,
        }

    @property
    def signing_key_file(self) -> Path:
        """Return the audit signing key the service's processes share (its public key: `.pub`)."""
        return self.workdir / "audit-signing-key.pem"

    def write_catalog(self, path: Path) -> Path:
        """Write a service catalog whose every integration points at these emulators."""
        folder = path.parent
        urls = {name: self.public(url) for name, url in self.urls.items()}
        canary_file = folder / "baselines" / "vector-canary.json"
        canary_file.parent.mkdir(parents=True, exist_ok=True)
        canary_file.write_text(
            json.dumps(
                {
                    "collection": self.canary.collection,
                    "vector": list(self.canary.vector),
                    "expected_id": self.canary.expected_id,
                }
            )
        )
        team_env = {team: f"SANDBOX_PD_KEY_{team.upper().replace('-', '_')}" for team in TEAMS}
        catalog = {
            "teams": {
                **{
                    team: {
                        "pagerduty_routing_key_env": team_env[team],
                        "slack_channel": self.channel,
                    }
                    for team in TEAMS
                },
                **{team: {"approvers": who} for team, who in APPROVER_TEAMS.items()},
            },
            "services": {
                DEMO_SERVICE: {
                    "models": [DEMO_SERVICE],
                    "team": "assistant-team",
                    "slack_channel": self.channel,
                    "logs": {
                        "cloudwatch": {"log_groups": [self.log_group], "region": SANDBOX_REGION},
                        "gcp": {
                            "project": self.gcp.project,
                            "resource_type": "k8s_container",
                            "api_endpoint": urls["gcp"],
                            "anonymous": True,
                        },
                    },
                    "endpoint": {
                        # Through the gateway, by the service's alias: a failover moves it.
                        "base_url": urls["gateway"] + "/v1",
                        "model": DEMO_SERVICE,
                        "region": "eu-west-1",
                        # One route directly (the primary, before a failback), past the alias.
                        "route_model": "{provider}/{model}@{region}",
                        "api_key_env": "SANDBOX_OPENAI_KEY",
                        "latency_budget_ms": 10000,
                        "prompts": [
                            {
                                "prompt": "What is 17 + 25? Answer with the number only.",
                                "match": "exact",
                                "expected": "42",
                            },
                            {
                                "prompt": "Name the capital of France in one word.",
                                "match": "contains",
                                "expected": "Paris",
                            },
                        ],
                    },
                    "dependencies": {
                        "vector_db": {
                            "kind": "qdrant",
                            "url": urls["vectordb"],
                            "collection": COLLECTION,
                            "canary_file": str(canary_file),
                            "owner": "search-platform",
                            # Generous budgets: a loaded test machine must not look like a fault.
                            "latency_budget_ms": 5000,
                        },
                        "embeddings": {
                            "base_url": urls["openai"] + "/v1",
                            "model": EMBEDDING_MODEL,
                            "api_key_env": "SANDBOX_OPENAI_KEY",
                            "golden_file": str(folder / "baselines" / "golden.json"),
                            "owner": "ml-platform",
                            "latency_budget_ms": 5000,
                        },
                    },
                    "failover": {
                        "backend": "gateway",
                        "gateway_url": urls["gateway"],
                        "gateway_token_env": "SANDBOX_GATEWAY_TOKEN",
                        "targets": [
                            {
                                "name": "backup-region",
                                "provider": "openai",
                                "model": CHAT_MODEL,
                                "region": "us-east-1",
                            },
                            {
                                "name": "fallback-model",
                                "provider": "openai",
                                "model": FALLBACK_MODEL,
                                "region": "eu-west-1",
                            },
                        ],
                    },
                    "prices": {CHAT_MODEL: {"input_per_1k": 0.0025, "output_per_1k": 0.01}},
                }
            },
        }
        path.write_text(yaml.safe_dump(catalog, sort_keys=False))
        self._catalog_env = {
            "SANDBOX_OPENAI_KEY": self.openai_key,
            "SANDBOX_GATEWAY_TOKEN": self.gateway_token,
            **{team_env[team]: key for team, key in self.team_keys.items()},
        }
        return path

    def catalog_env(self) -> dict[str, str]:
        """Return the secrets the written catalog names (call write_catalog first)."""
        return dict(self._catalog_env)

    def stop(self) -> None:
        """Stop every emulator."""
        for server in self._servers:
            server.stop()
        if self._moto is not None:
            self._moto.stop()
