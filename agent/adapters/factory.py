"""The one adapter factory: every outside system's adapter that the settings and catalog name.

`build_adapters` makes the service-wide ones (logs, pager, chat, PagerDuty REST, the analyst) from
the settings; each catalogued service's own (logs, dependencies, endpoint, failover, pagers) are
built the first time a run asks for them. Secrets come from the environment variables the catalog
names (read from the mapping given, the process environment by default); a missing one leaves that
adapter out and says why (dry-run), instead of failing the whole service. An adapter that is not
configured is None: the agent records what it would have done.

Each adapter's module (and so its SDK: boto3, google-cloud-logging, qdrant-client, langchain-openai,
the Arize SDK...) is imported where that adapter is built, so a deployment loads only the SDKs its
settings and catalog use: a service without GCP logs never imports google.cloud.logging, one
without an analyst endpoint never imports the analyst.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agent.settings import Settings
from runbooks.catalog import Catalog, Service
from tools.pager.pacing import KeyPacer
from tools.protocols import (
    ChatWorkspace,
    Checkable,
    FailoverBackend,
    HealthProbe,
    LogSource,
    Pager,
    PromptRegistry,
    Route,
)

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from qdrant_client import QdrantClient

    from tools.analyst.llm import LlmAnalyst
    from tools.arize.monitors import ArizeMonitors
    from tools.pager.pagerduty_rest import PagerDutyRestPager

log = structlog.get_logger(__name__)


@dataclass
class ServiceTools:
    """The adapters of one service, and what could not be built (with the reason)."""

    service: str
    logs: list[LogSource] = field(default_factory=list)
    vector_db: HealthProbe | None = None
    embeddings: HealthProbe | None = None
    endpoint: HealthProbe | None = None
    route_probe: Callable[[Route], HealthProbe] | None = None
    """The endpoint's known-answer prompts sent to one route directly (the primary, before a
    failback); None when the catalog describes no endpoint (or its key is missing)."""
    failover: FailoverBackend | None = None
    pagers: dict[str, Pager] = field(default_factory=dict)
    """PagerDuty per team name (the service's team and its dependencies' owners)."""
    missing: dict[str, str] = field(default_factory=dict)
    """Integration → why it is not configured."""

    def adapters(self) -> list[tuple[str, Checkable]]:
        """Return (role, adapter) for every adapter built."""
        found: list[tuple[str, Checkable]] = [(f"logs.{a.name}", a) for a in self.logs]
        for role in ("vector_db", "embeddings", "endpoint", "failover"):
            adapter = getattr(self, role)
            if adapter is not None:
                found.append((role, adapter))
        found += [(f"pager.{team}", pager) for team, pager in self.pagers.items()]
        return found


@dataclass
class Adapters:
    """The service-wide adapters, and each catalogued service's, built once and then reused."""

    settings: Settings
    catalog: Catalog | None
    env: Mapping[str, str]
    logs: LogSource | None = None
    pager: Pager | None = None
    chat: ChatWorkspace | None = None
    incidents: PagerDutyRestPager | None = None
    """PagerDuty REST (notes on paged incidents), when an API key is configured."""
    analyst: LlmAnalyst | None = None
    """The optional LLM analyst, when an analyst endpoint is configured."""
    prompts: PromptRegistry | None = None
    """Arize prompt versions and labels (prompt rollbacks), when an Arize API key is set."""
    arize: ArizeMonitors | None = None
    """Arize's REST API (monitors, tags), when an API key is configured and the SDK installed."""
    arize_missing: str | None = None
    """Why Arize's API is not used although a key is configured (the SDK is not installed)."""
    page_pacer: KeyPacer | None = None
    """PagerDuty's per-routing-key pace, shared by every pager built here (one per key)."""
    _services: dict[str, ServiceTools] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _aws: boto3.Session | None = field(default=None, repr=False)
    _qdrant: dict[tuple[str, str | None], QdrantClient] = field(default_factory=dict, repr=False)

    @property
    def chat_channel(self) -> str | None:
        """Return the Slack channel of incidents without a catalogued channel of their own."""
        return self.settings.slack_channel

    def configured(self) -> dict[str, bool]:
        """Return which service-wide integrations are live (the rest are dry-run)."""
        return {
            "logs": self.logs is not None,
            "pager": self.pager is not None,
            "chat": self.chat is not None and self.chat_channel is not None,
        }

    def for_service(self, name: str | None) -> ServiceTools | None:
        """Return a catalogued service's adapters (None when it is not catalogued).

        Raises ValueError when the catalog names a file that cannot be read (a canary).
        """
        if name is None or self.catalog is None or name not in self.catalog.services:
            return None
        with self._lock:
            if name not in self._services:
                self._services[name] = _service_tools(self, self.catalog, name)
            return self._services[name]

    def aws_client(self, name: str, config: Config | None = None, region: str | None = None) -> Any:
        """Return a boto3 client in `region` (the settings' by default) from the one Session.

        botocore loads and parses its data (the endpoints, each service's model) once per
        Session: a Session of its own per client would hold a copy each (about 9 MB). Called
        while adapters are built (by `build_adapters`, or under `for_service`'s lock): a Session
        is not thread-safe, the clients it makes are.
        """
        session: Any = self.aws_session()  # the stubs type each service's client apart
        return session.client(
            name,
            region_name=region or self.settings.aws_region,
            endpoint_url=self.settings.aws_endpoint_url,
            config=config,
        )

    def aws_session(self) -> boto3.Session:
        """Return the boto3 Session every AWS client of these adapters is made from."""
        if self._aws is None:
            self._aws = _aws_session(self.settings, self.env)
        return self._aws

    def qdrant_client(self, location: str, api_key: str | None) -> QdrantClient:
        """Return the one client of a Qdrant (URL or path) and key, for all its probes.

        Called while adapters are built, under `for_service`'s lock, like `aws_client`.
        """
        from tools.probes.qdrant import open_client

        if (location, api_key) not in self._qdrant:
            self._qdrant[location, api_key] = open_client(location, api_key=api_key)
        return self._qdrant[location, api_key]

    def warm_up(self) -> None:
        """Build every catalogued service's adapters now, so the first incident is not slower."""
        for name in self.catalog.services if self.catalog is not None else []:
            self.for_service(name)
        if self.arize is not None:
            self.arize.warm_up()  # the SDK takes over a second to import: not on the first alert


def build_adapters(
    settings: Settings, catalog: Catalog | None = None, env: Mapping[str, str] = os.environ
) -> Adapters:
    """Create one adapter per configured service-wide integration; services' come on demand."""
    adapters = Adapters(
        settings=settings,
        catalog=catalog,
        env=env,
        page_pacer=KeyPacer(settings.pagerduty_events_per_minute),
    )
    if settings.cloudwatch_log_groups:
        from tools.logs.cloudwatch_insights import CloudWatchLogSource

        adapters.logs = CloudWatchLogSource(
            adapters.aws_client("logs", _logs_config(settings)),
            settings.cloudwatch_log_groups,
            timeout_seconds=settings.logs_query_timeout_seconds,
        )
    if settings.pagerduty_routing_key is not None:
        from tools.pager.pagerduty_events import PagerDutyEventsPager

        adapters.pager = PagerDutyEventsPager(
            settings.pagerduty_routing_key.get_secret_value(),
            base_url=settings.pagerduty_events_url,
            ca_bundle=settings.pagerduty_ca_bundle,
            timeout_seconds=settings.pagerduty_timeout_seconds,
            pacer=adapters.page_pacer,
        )
    if settings.slack_bot_token is not None:
        from tools.chat.slack import SlackChat

        adapters.chat = SlackChat(
            settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_base_url,
            timeout_seconds=settings.slack_timeout_seconds,
            min_interval_seconds=settings.slack_min_interval_seconds,
        )
    if settings.pagerduty_api_key is not None and settings.pagerduty_from_email:
        from tools.pager.pagerduty_rest import PagerDutyRestPager

        adapters.incidents = PagerDutyRestPager(
            settings.pagerduty_api_key.get_secret_value(),
            from_email=settings.pagerduty_from_email,
            base_url=settings.pagerduty_rest_url,
            ca_bundle=settings.pagerduty_ca_bundle,
            timeout_seconds=settings.pagerduty_timeout_seconds,
        )
    if settings.arize_api_key is not None:
        _arize(settings, adapters)
    if settings.analyst_base_url:
        from tools.analyst.llm import LlmAnalyst  # langchain and openai: only for an analyst

        key = settings.analyst_api_key.get_secret_value() if settings.analyst_api_key else "unset"
        adapters.analyst = LlmAnalyst(
            base_url=settings.analyst_base_url, api_key=key, model=settings.analyst_model
        )
    return adapters


def _arize(settings: Settings, adapters: Adapters) -> None:
    """Build the Arize adapter, or say why not: the SDK is the optional extra `arize`."""
    assert settings.arize_api_key is not None
    if importlib.util.find_spec("arize") is None:  # looked up, not imported: it is heavy
        adapters.arize_missing = (
            "REMEDIATOR_ARIZE_API_KEY is set but the Arize SDK is not installed: "
            "pip install 'llm-remediator[arize]'"
        )
        return
    from tools.arize.client import ArizeConnection, make_client
    from tools.arize.monitors import ArizeMonitors
    from tools.arize.prompts import ArizePromptRegistry

    connection = ArizeConnection(
        api_key=settings.arize_api_key.get_secret_value(),
        host=settings.arize_api_host,
        scheme=settings.arize_api_scheme,
        port=settings.arize_api_port,
        space_id=settings.arize_space_id,
    )
    adapters.arize = ArizeMonitors(connection, deadline_seconds=settings.arize_deadline_seconds)
    adapters.prompts = ArizePromptRegistry(
        make_client(connection), timeout_seconds=settings.arize_deadline_seconds
    )


def _aws_session(settings: Settings, env: Mapping[str, str]) -> boto3.Session:
    """Return a boto3 Session whose credentials come from `env` (then boto3's usual chain)."""
    import boto3

    return boto3.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=settings.aws_region,
    )


def _logs_config(settings: Settings) -> Config:
    from botocore.config import Config

    return Config(
        connect_timeout=5,
        read_timeout=int(settings.logs_query_timeout_seconds) + 5,
        retries={"mode": "standard", "max_attempts": 3},
    )


def _service_tools(adapters: Adapters, catalog: Catalog, name: str) -> ServiceTools:
    """Create the adapters the catalog describes for one service."""
    settings, env = adapters.settings, adapters.env
    spec = catalog.services[name]
    tools = ServiceTools(service=name)
    _logs(adapters, spec, tools)
    _dependencies(adapters, spec, tools)
    _endpoint(spec, tools, env)
    _failover(adapters, spec, tools)
    owners = {spec.team}
    for dependency in (spec.dependencies.vector_db, spec.dependencies.embeddings):
        if dependency is not None:
            owners.add(dependency.owner)
    for team_name in sorted(owners):
        team = catalog.teams[team_name]
        key = env.get(team.pagerduty_routing_key_env or "")
        if key:
            from tools.pager.pagerduty_events import PagerDutyEventsPager

            tools.pagers[team_name] = PagerDutyEventsPager(
                key,
                base_url=settings.pagerduty_events_url,
                ca_bundle=settings.pagerduty_ca_bundle,
                timeout_seconds=settings.pagerduty_timeout_seconds,
                pacer=adapters.page_pacer,
            )
        else:
            tools.missing[f"pager.{team_name}"] = _unset(team.pagerduty_routing_key_env)
    return tools


def _logs(adapters: Adapters, spec: Service, tools: ServiceTools) -> None:
    settings = adapters.settings
    if spec.logs.cloudwatch is not None:
        from tools.logs.cloudwatch_events import CloudWatchEventsLogSource
        from tools.logs.cloudwatch_insights import CloudWatchLogSource

        region = spec.logs.cloudwatch.region
        client = adapters.aws_client("logs", _logs_config(settings), region)
        source = (
            CloudWatchEventsLogSource
            if spec.logs.cloudwatch.mode == "filter"
            else CloudWatchLogSource
        )
        tools.logs.append(
            source(
                client,
                spec.logs.cloudwatch.log_groups,
                timeout_seconds=settings.logs_query_timeout_seconds,
            )
        )
        if spec.logs.cloudwatch.metrics:
            from tools.logs.cloudwatch_metrics import CloudWatchMetricSource, MetricSpec

            metrics = adapters.aws_client("cloudwatch", region=region)
            tools.logs.append(
                CloudWatchMetricSource(
                    metrics,
                    [MetricSpec(**m.model_dump()) for m in spec.logs.cloudwatch.metrics],
                )
            )
    if spec.logs.gcp is not None:
        from google.auth.credentials import AnonymousCredentials

        from tools.logs.gcp import GcpLogSource

        gcp = spec.logs.gcp
        tools.logs.append(
            GcpLogSource(
                gcp.project,
                resource_type=gcp.resource_type,
                resource_labels=gcp.resource_labels,
                model_field=gcp.model_field,
                version_field=gcp.version_field,
                credentials=AnonymousCredentials() if gcp.anonymous else None,  # type: ignore[no-untyped-call]
                api_endpoint=gcp.api_endpoint,
                timeout_seconds=settings.logs_query_timeout_seconds,
            )
        )


def _dependencies(adapters: Adapters, spec: Service, tools: ServiceTools) -> None:
    env = adapters.env
    vector = spec.dependencies.vector_db
    if vector is not None and vector.kind == "http" and vector.readiness_url:
        from tools.probes.http_readiness import HttpReadinessProbe

        tools.vector_db = HttpReadinessProbe(
            vector.readiness_url, budget_ms=vector.latency_budget_ms
        )
    elif vector is not None:
        if not vector.canary_file or not Path(vector.canary_file).exists():
            tools.missing["vector_db"] = (
                f"no canary: run `remediator baseline capture {tools.service}` "
                f"(expected at {vector.canary_file or 'dependencies.vector_db.canary_file'})"
            )
        else:
            from tools.probes.canary import load_canary
            from tools.probes.qdrant import QdrantProbe

            tools.vector_db = QdrantProbe(
                adapters.qdrant_client(
                    vector.url or str(vector.path), env.get(vector.api_key_env or "") or None
                ),
                load_canary(Path(vector.canary_file)),
                budget_ms=vector.latency_budget_ms,
            )
    embeddings = spec.dependencies.embeddings
    if embeddings is not None:
        from tools.probes.embeddings import EmbeddingProbe, load_golden_vectors

        golden = None
        if embeddings.golden_file and Path(embeddings.golden_file).exists():
            golden = load_golden_vectors(Path(embeddings.golden_file))
        tools.embeddings = EmbeddingProbe(
            base_url=embeddings.base_url,
            api_key=env.get(embeddings.api_key_env or "", "") or "unset",
            model=embeddings.model,
            golden=golden,
            min_similarity=embeddings.min_similarity,
            latency_budget_ms=embeddings.latency_budget_ms,
        )
        if golden is None:
            tools.missing["embeddings.golden"] = (
                f"no golden vectors yet: run `remediator baseline capture {tools.service}`; "
                "until then only latency and dimension are checked"
            )


def _endpoint(spec: Service, tools: ServiceTools, env: Mapping[str, str]) -> None:
    endpoint = spec.endpoint
    if endpoint is None:
        return
    key = env.get(endpoint.api_key_env or "")
    if endpoint.api_key_env and not key:
        tools.missing["endpoint"] = _unset(endpoint.api_key_env)
        return
    from tools.probes.endpoint import DEFAULT_PROMPTS, DiagnosticPrompt, EndpointProbe

    prompts = [
        DiagnosticPrompt(f"prompt-{i + 1}", p.prompt, p.expected, p.match)
        for i, p in enumerate(endpoint.prompts)
    ]
    prices = {model: price.model_dump() for model, price in spec.prices.items()}
    probe = EndpointProbe(
        base_url=endpoint.base_url,
        api_key=key or "unset",
        model=endpoint.model,
        prompts=prompts or DEFAULT_PROMPTS,
        prices=prices,
        latency_budget_ms=endpoint.latency_budget_ms,
        timeout_seconds=endpoint.timeout_seconds,
    )
    tools.endpoint = probe

    def route_probe(route: Route) -> HealthProbe:
        return probe.for_model(endpoint.model_for(route.provider, route.model, route.region))

    tools.route_probe = route_probe


def _failover(adapters: Adapters, spec: Service, tools: ServiceTools) -> None:
    failover = spec.failover
    if failover is None:
        return
    if failover.backend == "ssm":
        from tools.failover.ssm import SsmFailoverBackend, make_ssm_client

        client = make_ssm_client(
            adapters.settings.aws_region,
            endpoint_url=adapters.settings.aws_endpoint_url,
            session=adapters.aws_session(),
        )
        tools.failover = SsmFailoverBackend(client, prefix=failover.parameter_prefix)
    elif failover.backend == "gateway" and failover.gateway_url:
        token = adapters.env.get(failover.gateway_token_env or "")
        if not token:
            tools.missing["failover"] = _unset(failover.gateway_token_env)
            return
        from tools.failover.gateway import GatewayFailoverBackend

        tools.failover = GatewayFailoverBackend(failover.gateway_url, token)
    elif failover.routes_file:
        from tools.failover.file import FileFailoverBackend

        tools.failover = FileFailoverBackend(Path(failover.routes_file))


def _unset(variable: str | None) -> str:
    if not variable:
        return "no environment variable named in the catalog"
    return f"environment variable {variable} is not set"
