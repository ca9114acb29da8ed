"""A scenario's service catalog: services built like the demo service, teams and Slack user groups.

With no `catalog` section the catalog is today's: the demo service `support-bot` alone. Every
other service is a copy of it under its own name, pointing at the same emulators: its endpoint is
its own alias at the gateway, its routes are upstream models of its own (so a fault by region
or provider still hits every service there), its logs are the same log group.
"""

from __future__ import annotations

import copy
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from sandbox.evaluation.systems import BUDGET_MS, Strict
from sandbox.stack import CHAT_MODEL, DEMO_SERVICE, EMBEDDING_MODEL, TEAMS, SandboxStack
from tools.probes.embeddings import capture_golden_vectors, save_golden_vectors

NAME = r"^[a-z0-9][a-z0-9-]*$"
SLACK_ID = r"^[USW][A-Z0-9]{2,}$"
Dependency = Literal["vector_db", "embeddings"]
DEPENDENCIES: tuple[Dependency, ...] = ("vector_db", "embeddings")


class ServiceWorld(Strict):
    """One service of the catalog, built like the demo service unless told otherwise."""

    models: list[str] = Field(default_factory=list)
    """The model ids alerts name; default: the service's own name."""
    team: str = "assistant-team"
    failover: bool = True
    """False: the service has no failover targets (nothing to fail over to)."""
    dependencies: list[Dependency] = Field(default_factory=lambda: list(DEPENDENCIES))
    owners: dict[Dependency, str] = Field(default_factory=dict)
    """Who owns each dependency; default search-platform (vector DB), ml-platform (embeddings)."""


class TeamWorld(Strict):
    """A team: its approvers (Slack users U…, or user groups S…)."""

    approvers: list[str] = Field(default_factory=list)

    @field_validator("approvers")
    @classmethod
    def _slack_ids(cls, approvers: list[str]) -> list[str]:
        bad = [a for a in approvers if not re.match(SLACK_ID, a)]
        if bad:
            raise ValueError(f"not a Slack user or group id: {', '.join(bad)}")
        return approvers


class CatalogWorld(Strict):
    """The catalog's services, extra teams (or approvers of the sandbox's), Slack user groups."""

    services: dict[str, ServiceWorld] = Field(
        default_factory=lambda: {DEMO_SERVICE: ServiceWorld(models=[DEMO_SERVICE])}
    )
    teams: dict[str, TeamWorld] = Field(default_factory=dict)
    usergroups: dict[str, list[str]] = Field(default_factory=dict)
    """Slack user group id (S…) → its members' user ids."""

    @model_validator(mode="after")
    def _known_names(self) -> CatalogWorld:
        teams = set(TEAMS) | set(self.teams)
        for name, service in self.services.items():
            if not re.match(NAME, name):
                raise ValueError(f"services.{name}: a service name is lower-case words and '-'")
            owners = [service.team, *service.owners.values()]
            unknown = sorted({team for team in owners if team not in teams})
            if unknown:
                raise ValueError(
                    f"services.{name}: unknown team {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(teams))})"
                )
        for group, members in self.usergroups.items():
            if not group.startswith("S") or not re.match(SLACK_ID, group):
                raise ValueError(f"usergroups.{group}: a user group id starts with S")
            bad = [m for m in members if not re.match(SLACK_ID, m) or m.startswith("S")]
            if bad:
                raise ValueError(f"usergroups.{group}: not a user id: {', '.join(bad)}")
        return self

    def models_of(self, service: str) -> list[str]:
        """Return the model ids of a service (its own name by default)."""
        return self.services[service].models or [service]


@dataclass(frozen=True)
class RouteModel:
    """An upstream model of the sandbox: which service and route it serves, and where."""

    service: str
    route: str
    provider: str
    region: str


def route_model_name(service: str, model: str | None) -> str:
    """Return the model a service's route names: the demo's own, or the service's variant."""
    base = model or CHAT_MODEL
    if service == DEMO_SERVICE:
        return base
    return base.replace(DEMO_SERVICE, service, 1) if base.startswith(DEMO_SERVICE) else base


def write_catalog(
    stack: SandboxStack,
    world: CatalogWorld,
    routes: dict[str, tuple[str, str, str]],
    path: Path,
) -> tuple[dict[str, RouteModel], dict[str, str]]:
    """Write the catalog; return the upstream models (name → route) and the secrets it names.

    `routes` maps a route name to (provider, region, model) as the scenario's `routes` set them.
    """
    stack.write_catalog(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    demo = data["services"].pop(DEMO_SERVICE)
    env = stack.catalog_env()
    for team, team_spec in world.teams.items():
        if team not in data["teams"]:
            key_env = f"SANDBOX_PD_KEY_{team.upper().replace('-', '_')}"
            key = stack.team_keys.setdefault(team, secrets.token_hex(16))
            assert stack.pagerduty.routing_keys is not None
            stack.pagerduty.routing_keys.add(key)
            env[key_env] = key
            data["teams"][team] = {"pagerduty_routing_key_env": key_env}
            data["teams"][team]["slack_channel"] = stack.channel
        data["teams"][team]["approvers"] = list(team_spec.approvers)
    stack.slack.usergroups.update({g: list(m) for g, m in world.usergroups.items()})
    upstream: dict[str, RouteModel] = {}
    gateway: dict[str, dict[str, Any]] = {}
    for name, spec in world.services.items():
        service = copy.deepcopy(demo)
        service["models"] = world.models_of(name)
        service["team"] = spec.team
        provider, region, model = routes["primary"]
        service["endpoint"].update(
            model=name,
            provider=provider,
            region=region,
            latency_budget_ms=BUDGET_MS,
            timeout_seconds=5,
        )
        deps = service["dependencies"]
        for dependency in ("vector_db", "embeddings"):
            if dependency not in spec.dependencies:
                del deps[dependency]
                continue
            deps[dependency]["latency_budget_ms"] = BUDGET_MS
            if dependency in spec.owners:
                deps[dependency]["owner"] = spec.owners[dependency]
        if not deps:
            del service["dependencies"]
        targets = []
        for route, (provider, region, model) in routes.items():
            upstream_name = f"{route_model_name(name, model)}-{provider}-{region}"
            upstream[upstream_name] = RouteModel(name, route, provider, region)
            if route == "primary":
                gateway[name] = {"provider": provider, "model": upstream_name, "region": region}
            else:
                targets.append(
                    {"name": route, "provider": provider, "model": upstream_name, "region": region}
                )
        if spec.failover:
            service["failover"]["targets"] = targets
        else:
            del service["failover"]
        data["services"][name] = service
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    stack.gateway.reset(gateway)
    # Golden vectors come from the healthy service, before any drift is staged.
    golden = capture_golden_vectors(
        base_url=stack.urls["openai"] + "/v1", api_key=stack.openai_key, model=EMBEDDING_MODEL
    )
    golden_file = demo["dependencies"]["embeddings"]["golden_file"]
    save_golden_vectors(golden, Path(golden_file))
    return upstream, env
