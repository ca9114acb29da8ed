"""Build each catalogued service's adapters: its logs, dependencies, endpoint, failover and pager.

Secrets come from the environment variables the catalog names; a missing one leaves that adapter
out and says why (dry-run), instead of failing the whole service.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from google.auth.credentials import AnonymousCredentials

from agent.settings import Settings
from runbooks.catalog import Catalog, Service
from tools.cloudwatch_more import CloudWatchEventsLogSource, CloudWatchMetricSource, MetricSpec
from tools.failover_file import FileFailoverBackend
from tools.failover_gateway import GatewayFailoverBackend
from tools.failover_ssm import SsmFailoverBackend, make_ssm_client
from tools.logs_cloudwatch import CloudWatchLogSource
from tools.logs_gcp import GcpLogSource
from tools.pager_pagerduty import PagerDutyEventsPager
from tools.probe_embeddings import EmbeddingProbe, load_golden_vectors
from tools.probe_endpoint import DEFAULT_PROMPTS, DiagnosticPrompt, EndpointProbe
from tools.probe_vectordb import Canary, HttpReadinessProbe, QdrantProbe
from tools.protocols import Checkable, FailoverBackend, HealthProbe, LogSource, Pager


@dataclass
class ServiceTools:
    """The adapters of one service, and what could not be built (with the reason)."""

    service: str
    logs: list[LogSource] = field(default_factory=list)
    vector_db: HealthProbe | None = None
    embeddings: HealthProbe | None = None
    endpoint: HealthProbe | None = None
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


def build_service_tools(
    settings: Settings,
    catalog: Catalog,
    name: str,
    env: Mapping[str, str] = os.environ,
) -> ServiceTools:
    """Create the adapters the catalog describes for one service."""
    spec = catalog.services[name]
    tools = ServiceTools(service=name)
    _logs(settings, spec, tools)
    _dependencies(spec, tools, env)
    _endpoint(spec, tools, env)
    _failover(settings, spec, tools, env)
    owners = {spec.team}
    for dependency in (spec.dependencies.vector_db, spec.dependencies.embeddings):
        if dependency is not None:
            owners.add(dependency.owner)
    for team_name in sorted(owners):
        team = catalog.teams[team_name]
        key = env.get(team.pagerduty_routing_key_env or "")
        if key:
            tools.pagers[team_name] = PagerDutyEventsPager(
                key,
                base_url=settings.pagerduty_events_url,
                ca_bundle=settings.pagerduty_ca_bundle,
                timeout_seconds=settings.pagerduty_timeout_seconds,
            )
        else:
            tools.missing[f"pager.{team_name}"] = _unset(team.pagerduty_routing_key_env)
    return tools


def _logs(settings: Settings, spec: Service, tools: ServiceTools) -> None:
    if spec.logs.cloudwatch is not None:
        client = boto3.client(
            "logs",
            region_name=spec.logs.cloudwatch.region or settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            config=Config(
                connect_timeout=5,
                read_timeout=int(settings.logs_query_timeout_seconds) + 5,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )
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
            metrics = boto3.client(
                "cloudwatch",
                region_name=spec.logs.cloudwatch.region or settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
            )
            tools.logs.append(
                CloudWatchMetricSource(
                    metrics,
                    [MetricSpec(**m.model_dump()) for m in spec.logs.cloudwatch.metrics],
                )
            )
    if spec.logs.gcp is not None:
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


def _dependencies(spec: Service, tools: ServiceTools, env: Mapping[str, str]) -> None:
    vector = spec.dependencies.vector_db
    if vector is not None and vector.kind == "http" and vector.readiness_url:
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
            tools.vector_db = QdrantProbe.connect(
                vector.url or str(vector.path),
                load_canary(Path(vector.canary_file)),
                api_key=env.get(vector.api_key_env or "") or None,
                budget_ms=vector.latency_budget_ms,
            )
    embeddings = spec.dependencies.embeddings
    if embeddings is not None:
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
    prompts = [
        DiagnosticPrompt(f"prompt-{i + 1}", p.prompt, p.expected, p.match)
        for i, p in enumerate(endpoint.prompts)
    ]
    prices = {model: price.model_dump() for model, price in spec.prices.items()}
    tools.endpoint = EndpointProbe(
        base_url=endpoint.base_url,
        api_key=key or "unset",
        model=endpoint.model,
        prompts=prompts or DEFAULT_PROMPTS,
        prices=prices,
        latency_budget_ms=endpoint.latency_budget_ms,
        timeout_seconds=endpoint.timeout_seconds,
    )


def _failover(
    settings: Settings, spec: Service, tools: ServiceTools, env: Mapping[str, str]
) -> None:
    failover = spec.failover
    if failover is None:
        return
    if failover.backend == "ssm":
        client = make_ssm_client(settings.aws_region, endpoint_url=settings.aws_endpoint_url)
        tools.failover = SsmFailoverBackend(client, prefix=failover.parameter_prefix)
    elif failover.backend == "gateway" and failover.gateway_url:
        token = env.get(failover.gateway_token_env or "")
        if not token:
            tools.missing["failover"] = _unset(failover.gateway_token_env)
            return
        tools.failover = GatewayFailoverBackend(failover.gateway_url, token)
    elif failover.routes_file:
        tools.failover = FileFailoverBackend(Path(failover.routes_file))


def load_canary(path: Path) -> Canary:
    """Read a canary file written by `remediator baseline capture`."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return Canary(
            str(data["collection"]), tuple(float(x) for x in data["vector"]), data["expected_id"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a canary file ({exc})") from None


def save_canary(canary: Canary, path: Path) -> None:
    """Write a canary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "collection": canary.collection,
                "vector": list(canary.vector),
                "expected_id": canary.expected_id,
            }
        ),
        encoding="utf-8",
    )


def _unset(variable: str | None) -> str:
    if not variable:
        return "no environment variable named in the catalog"
    return f"environment variable {variable} is not set"
