"""The service catalog: each LLM service, where its logs are, what it depends on, who owns it.

Secrets never appear here: routing keys and API keys are named by the environment variable that
holds them (`*_env`).
"""

from __future__ import annotations

from pathlib import Path
from string import Formatter
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbooks.loader import load_model

SHIPPED_CATALOG = Path(__file__).parent / "services.yaml"
ROUTE_FIELDS = frozenset({"provider", "model", "region"})


class Strict(BaseModel):
    """A catalog section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(Strict):
    """Who gets paged and told, and who may approve."""

    pagerduty_routing_key_env: str | None = None
    slack_channel: str | None = None
    approvers: list[str] = Field(default_factory=list)


class CloudWatchMetric(Strict):
    """A CloudWatch metric read for the breach window; over `threshold` counts as breached."""

    namespace: str
    name: str
    stat: str = "Average"
    dimensions: dict[str, str] = Field(default_factory=dict)
    threshold: float | None = None
    period_seconds: int = Field(60, ge=1)


class CloudWatchLogs(Strict):
    """CloudWatch Logs over these log groups (Insights, or filter_log_events), and metrics."""

    log_groups: list[str] = Field(min_length=1)
    region: str | None = None
    mode: Literal["insights", "filter"] = "insights"
    metrics: list[CloudWatchMetric] = Field(default_factory=list)


class GcpLogs(Strict):
    """Cloud Logging entries of this project and resource."""

    project: str
    resource_type: str
    resource_labels: dict[str, str] = Field(default_factory=dict)
    model_field: str = "labels.model_id"
    version_field: str = "labels.model_version"
    api_endpoint: str | None = None
    anonymous: bool = Field(
        False, description="Send no credentials (only for a local emulator at api_endpoint)."
    )


class Logs(Strict):
    """Where the service's logs are."""

    cloudwatch: CloudWatchLogs | None = None
    gcp: GcpLogs | None = None


class DiagnosticPrompt(Strict):
    """A prompt with a known answer: exactly, containing, or matching a regex."""

    prompt: str
    match: Literal["exact", "contains", "regex"] = "contains"
    expected: str


class Price(Strict):
    """USD per 1,000 tokens."""

    input_per_1k: float = Field(ge=0)
    output_per_1k: float = Field(ge=0)


class Endpoint(Strict):
    """The OpenAI-compatible endpoint that serves the model, and how to probe it."""

    base_url: str
    model: str
    provider: str = "openai"
    region: str | None = Field(
        None, description="The region the primary route serves from (never a `segment_only`)."
    )
    api_key_env: str | None = None
    timeout_seconds: float = Field(10, gt=0)
    latency_budget_ms: float = Field(5000, gt=0)
    prompts: list[DiagnosticPrompt] = Field(default_factory=list)
    route_model: str | None = Field(
        None,
        description="How `base_url` serves one route directly, past the routing that failover "
        "switches: a model name template over the route's {provider}, {model} and {region} "
        "(a LiteLLM-style gateway's deployment name, e.g. `{provider}/{model}@{region}`). "
        "Before a failback the known-answer prompts go to the route that would be restored this "
        "way. Unset: `model` at `base_url` is the primary route itself.",
    )

    @field_validator("route_model")
    @classmethod
    def _route_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            fields = {name for _, name, _, _ in Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"not a template: {exc}") from None
        unknown = fields - ROUTE_FIELDS
        if unknown or not fields:
            raise ValueError(
                "a template naming at least one of {provider}, {model}, {region}"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            )
        return value

    def model_for(self, provider: str, model: str, region: str | None) -> str:
        """Return the model name that reaches one route directly (`model` without a template)."""
        if self.route_model is None:
            return self.model
        return self.route_model.format(provider=provider, model=model, region=region or "")


class VectorDb(Strict):
    """The vector store behind retrieval: a Qdrant collection, or any store's readiness URL."""

    kind: Literal["qdrant", "http"] = "qdrant"
    url: str | None = None
    path: str | None = None
    collection: str | None = None
    readiness_url: str | None = None
    api_key_env: str | None = None
    canary_file: str | None = Field(
        None, description="JSON {collection, vector, expected_id}: `remediator baseline capture`."
    )
    latency_budget_ms: float = Field(500, gt=0)
    owner: str

    @model_validator(mode="after")
    def _where(self) -> VectorDb:
        if self.kind == "qdrant" and not (self.url or self.path):
            raise ValueError("a qdrant vector_db needs `url` or `path`")
        if self.kind == "qdrant" and not self.collection:
            raise ValueError("a qdrant vector_db needs `collection`")
        if self.kind == "http" and not self.readiness_url:
            raise ValueError("an http vector_db needs `readiness_url`")
        return self


class Embeddings(Strict):
    """The embedding service, probed with canary texts against golden vectors."""

    base_url: str
    model: str
    api_key_env: str | None = None
    golden_file: str | None = None
    min_similarity: float = Field(0.98, gt=0, le=1)
    latency_budget_ms: float = Field(2000, gt=0)
    owner: str


class Dependencies(Strict):
    """What the service needs to answer well."""

    vector_db: VectorDb | None = None
    embeddings: Embeddings | None = None


class FailoverTarget(Strict):
    """A route the service can be moved to."""

    name: str
    provider: str
    model: str
    region: str | None = None


class Failover(Strict):
    """How the service's route is switched, and where to."""

    backend: Literal["ssm", "gateway", "file"]
    parameter_prefix: str = "/remediator/routes"
    gateway_url: str | None = None
    gateway_token_env: str | None = None
    routes_file: str | None = None
    targets: list[FailoverTarget] = Field(min_length=1)

    @model_validator(mode="after")
    def _backend_settings(self) -> Failover:
        if self.backend == "gateway" and not self.gateway_url:
            raise ValueError("the gateway backend needs `gateway_url`")
        if self.backend == "file" and not self.routes_file:
            raise ValueError("the file backend needs `routes_file`")
        return self


class Service(Strict):
    """One LLM service as the agent sees it."""

    models: list[str] = Field(min_length=1)
    team: str
    slack_channel: str | None = None
    logs: Logs = Field(default_factory=Logs)
    endpoint: Endpoint | None = None
    dependencies: Dependencies = Field(default_factory=Dependencies)
    failover: Failover | None = None
    prices: dict[str, Price] = Field(default_factory=dict)
    arize_prompts: list[str] = Field(
        default_factory=list,
        description="The Arize prompts (ids or names) this service serves: their version "
        "events (a label moved to `production`) are this service's changes.",
    )

    @model_validator(mode="after")
    def _primary_reachable(self) -> Service:
        failover, endpoint = self.failover, self.endpoint
        if failover is None or endpoint is None or endpoint.route_model is not None:
            return self
        if failover.backend == "gateway" and _origin(endpoint.base_url) == _origin(
            failover.gateway_url or ""
        ):
            raise ValueError(
                "endpoint.route_model is needed: the endpoint is reached through the gateway "
                "whose route failover switches, so without it the check before a failback would "
                "probe the failover route, not the primary"
            )
        return self


class Catalog(Strict):
    """Every service and team the agent knows."""

    teams: dict[str, Team] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _teams_exist(self) -> Catalog:
        for name, service in self.services.items():
            owners = [("team", service.team)]
            if service.dependencies.vector_db:
                owners.append(
                    ("dependencies.vector_db.owner", service.dependencies.vector_db.owner)
                )
            if service.dependencies.embeddings:
                owners.append(
                    ("dependencies.embeddings.owner", service.dependencies.embeddings.owner)
                )
            for where, team in owners:
                if team not in self.teams:
                    raise ValueError(f"services.{name}.{where}: no team {team!r} in `teams`")
        return self

    def service_for(
        self, *, service: str | None, model_id: str | None
    ) -> tuple[str, Service] | None:
        """Return the service named by the alert, else the one that serves its model."""
        if service and service in self.services:
            return service, self.services[service]
        for name, spec in self.services.items():
            if model_id and model_id in spec.models:
                return name, spec
        return None

    def services_for_prompt(self, *, prompt_id: str | None, prompt_name: str | None) -> list[str]:
        """Return the services that list this Arize prompt (by id or name) in `arize_prompts`."""
        keys = {key for key in (prompt_id, prompt_name) if key}
        return [name for name, spec in self.services.items() if keys & set(spec.arize_prompts)]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").casefold(), parts.port


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file (raises ConfigError naming file, line and key)."""
    return load_model(path, Catalog)
